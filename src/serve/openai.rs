//! OpenAI-compatible `/v1/completions` and `/v1/chat/completions` (with server-sent
//! events), and vLLM's runtime LoRA endpoints.
//!
//! Log-probabilities are the model's raw distribution (before temperature, top-k and
//! top-p), as vLLM reports them by default. Choice `i` of a request with `seed` S samples
//! from `row_rng(S, i)`: the request `{"prompt": P, "seed": S}` gives the tokens of
//! `rmtk generate --prompt P --seed S`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::engine::{Event, GenRequest, Msg, TokenLogprob};
use super::rewards::OneOrMany;
use super::{ApiError, AppState, LoadGuard, parse_body};
use crate::data::{Prompt, encode_prompt};
use crate::models::Message;
use crate::models::Tokenizer;
use crate::models::generate::{Completion, FinishReason, SamplingParams};

/// The sampling fields both endpoints share.
#[derive(Debug, Deserialize, Default)]
struct Sampling {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    max_tokens: Option<i64>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    /// 0 or -1: every token.
    #[serde(default)]
    top_k: Option<i64>,
    #[serde(default)]
    n: Option<i64>,
    #[serde(default)]
    stop: Option<OneOrMany<String>>,
    #[serde(default)]
    seed: Option<u64>,
    /// rmtk's extension: choice `i` samples from stream `seed_stream + i` of `seed`
    /// (what `rmtk grpo --rollout-url` sends, so a server's rollouts are a local run's).
    #[serde(default)]
    seed_stream: u64,
    /// vLLM's: go on past the end-of-sequence token (benchmarks).
    #[serde(default)]
    ignore_eos: bool,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    /// vLLM's: return the prompt's and each choice's token ids.
    #[serde(default)]
    return_token_ids: bool,
}

#[derive(Debug, Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PromptField {
    Text(String),
    Tokens(Vec<u32>),
    Texts(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct CompletionRequest {
    prompt: PromptField,
    /// The number of alternatives per token (0: the sampled token's alone).
    #[serde(default)]
    logprobs: Option<usize>,
    #[serde(default)]
    echo: bool,
    #[serde(flatten)]
    sampling: Sampling,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ContentField {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: String,
    content: ContentField,
}

#[derive(Debug, Deserialize)]
struct ChatRequest {
    messages: Vec<ChatMessage>,
    #[serde(default)]
    max_completion_tokens: Option<i64>,
    #[serde(default)]
    logprobs: bool,
    #[serde(default)]
    top_logprobs: Option<usize>,
    #[serde(flatten)]
    sampling: Sampling,
}

/// Which endpoint a request came through: it shapes the answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Completion,
    Chat,
}

/// A validated request, ready for the engine.
struct Prepared {
    kind: Kind,
    model: String,
    adapter: Option<String>,
    prompt: Vec<u32>,
    params: SamplingParams,
    n: usize,
    seed: u64,
    seed_stream: u64,
    ignore_eos: bool,
    logprobs: Option<usize>,
    stream: bool,
    include_usage: bool,
    return_token_ids: bool,
}

/// The most alternatives per token a request may ask for (vLLM's default cap).
const MAX_LOGPROBS: usize = 20;

fn prepare(
    state: &AppState,
    kind: Kind,
    s: Sampling,
    prompt: Vec<u32>,
    default_max: usize,
    logprobs: Option<usize>,
) -> Result<Prepared, ApiError> {
    if prompt.is_empty() {
        return Err(ApiError::bad_request("the prompt encodes to no tokens"));
    }
    let adapter = state.resolve_model(s.model.as_deref())?;
    let model = s
        .model
        .clone()
        .or(state.model_name.clone())
        .unwrap_or_default();
    let max_tokens = match s.max_tokens {
        None => default_max,
        Some(m) if m < 1 => {
            return Err(ApiError::bad_request(format!(
                "max_tokens must be at least 1, not {m}"
            )));
        }
        Some(m) => m as usize,
    };
    if prompt.len() + max_tokens > state.max_model_len {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "this model's maximum context length is {} tokens; the prompt has {} and max_tokens asks for {max_tokens} more",
                state.max_model_len,
                prompt.len()
            ),
        ));
    }
    let temperature = s.temperature.unwrap_or(1.0);
    if !(temperature.is_finite() && temperature >= 0.0) {
        return Err(ApiError::bad_request(format!(
            "temperature must be >= 0, not {temperature}"
        )));
    }
    let top_p = s.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::bad_request(format!(
            "top_p must be in (0, 1], not {top_p}"
        )));
    }
    let top_k = match s.top_k {
        None | Some(-1) | Some(0) => 0,
        Some(k) if k > 0 => k as usize,
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "top_k must be -1, 0 (off) or positive, not {k}"
            )));
        }
    };
    let n = match s.n {
        None => 1,
        Some(n) if n >= 1 && n as usize <= state.max_num_seqs => n as usize,
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "n must be between 1 and {} (--max-num-seqs), not {n}",
                state.max_num_seqs
            )));
        }
    };
    if let Some(k) = logprobs
        && k > MAX_LOGPROBS
    {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_LOGPROBS} log-probabilities per token, not {k}"
        )));
    }
    let stop = s.stop.map(OneOrMany::into_vec).unwrap_or_default();
    Ok(Prepared {
        kind,
        model,
        adapter,
        prompt,
        params: SamplingParams {
            temperature,
            top_p,
            top_k,
            max_new_tokens: max_tokens,
            stop,
        },
        n,
        seed: s.seed.unwrap_or_else(rand::random),
        seed_stream: s.seed_stream,
        ignore_eos: s.ignore_eos,
        logprobs,
        stream: s.stream,
        include_usage: s.stream_options.is_some_and(|o| o.include_usage),
        return_token_ids: s.return_token_ids,
    })
}

fn tokenizer(state: &AppState) -> Result<&Tokenizer, ApiError> {
    state
        .tokenizer
        .as_deref()
        .ok_or_else(|| ApiError::not_found("this server hosts no decoder (start it with --model)"))
}

pub async fn completions(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let run = async {
        let req: CompletionRequest = parse_body(&body)?;
        let tok = tokenizer(&state)?;
        if req.echo {
            return Err(ApiError::bad_request("echo is not supported"));
        }
        let prompt = match req.prompt {
            PromptField::Text(t) if t.is_empty() => {
                return Err(ApiError::bad_request("the prompt is empty"));
            }
            PromptField::Text(t) => tok
                .encode(&t, true)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
            PromptField::Tokens(ids) if ids.is_empty() => {
                return Err(ApiError::bad_request("the prompt is empty"));
            }
            PromptField::Tokens(ids) => {
                let vocab = state.vocab_size;
                if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
                    return Err(ApiError::bad_request(format!(
                        "token id {bad} is outside the vocabulary ({vocab} tokens)"
                    )));
                }
                ids
            }
            PromptField::Texts(mut texts) if texts.len() == 1 && !texts[0].is_empty() => tok
                .encode(&texts.remove(0), true)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
            PromptField::Texts(_) => {
                return Err(ApiError::bad_request(
                    "send one prompt per request (a list of prompts is not supported; use n for several completions of one prompt)",
                ));
            }
        };
        let prepared = prepare(
            &state,
            Kind::Completion,
            req.sampling,
            prompt,
            16,
            req.logprobs,
        )?;
        Ok(generate(&state, prepared).await)
    };
    run.await.unwrap_or_else(|e: ApiError| e.into_response())
}

pub async fn chat_completions(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let run = async {
        let mut req: ChatRequest = parse_body(&body)?;
        let tok = tokenizer(&state)?;
        let mut messages = Vec::with_capacity(req.messages.len());
        for (i, m) in req.messages.iter().enumerate() {
            let content = match &m.content {
                ContentField::Text(t) => t.clone(),
                ContentField::Parts(parts) => {
                    let mut text = String::new();
                    for p in parts {
                        match (p.kind.as_str(), &p.text) {
                            ("text", Some(t)) => text.push_str(t),
                            (kind, _) => {
                                return Err(ApiError::bad_request(format!(
                                    "messages[{i}]: content parts of type `{kind}` are not supported (text only)"
                                )));
                            }
                        }
                    }
                    text
                }
            };
            messages.push(Message::new(&m.role, &content));
        }
        if messages.is_empty() {
            return Err(ApiError::bad_request("`messages` is empty"));
        }
        let prompt = encode_prompt(tok, &Prompt::Chat(messages), true, None)
            .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
        if req.sampling.max_tokens.is_none() {
            req.sampling.max_tokens = req.max_completion_tokens;
        }
        let default_max = state.max_model_len.saturating_sub(prompt.len()).max(1);
        let logprobs = match (req.logprobs, req.top_logprobs) {
            (false, Some(k)) if k > 0 => {
                return Err(ApiError::bad_request("top_logprobs needs logprobs: true"));
            }
            (false, _) => None,
            (true, k) => Some(k.unwrap_or(0)),
        };
        let prepared = prepare(
            &state,
            Kind::Chat,
            req.sampling,
            prompt,
            default_max,
            logprobs,
        )?;
        Ok(generate(&state, prepared).await)
    };
    run.await.unwrap_or_else(|e: ApiError| e.into_response())
}

/// Queue a prepared request and answer it, whole or streamed.
async fn generate(state: &Arc<AppState>, p: Prepared) -> Response {
    let place = match state.admit() {
        Ok(place) => place,
        Err(e) => return e.into_response(),
    };
    let (events, rx) = mpsc::unbounded_channel();
    let request = GenRequest {
        adapter: p.adapter.clone(),
        prompt: p.prompt.clone(),
        params: p.params.clone(),
        n: p.n,
        seed: p.seed,
        seed_stream: p.seed_stream,
        ignore_eos: p.ignore_eos,
        logprobs: p.logprobs,
        events,
    };
    if let Err(e) = state.send(Msg::Generate(request)) {
        return e.into_response();
    }
    let id = state.id(match p.kind {
        Kind::Completion => "cmpl",
        Kind::Chat => "chatcmpl",
    });
    if p.stream {
        stream_answer(state.clone(), p, id, rx, place).into_response()
    } else {
        whole_answer(state, &p, &id, rx).await
    }
}

/// One choice as it is being built: its tokens' log-probs (when asked for), then its
/// completion (text and ids).
#[derive(Default)]
struct ChoiceState {
    tokens: Vec<TokenLogprob>,
    done: Option<Completion>,
}

fn finish_reason(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Eos | FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

/// A token as text for log-probability lists (its own decoding, special tokens kept).
fn token_text(tok: &Tokenizer, id: u32) -> String {
    tok.decode(&[id], false).unwrap_or_default()
}

/// Completions' `logprobs` of `tokens`, whose text starts at byte `offset` of the choice's.
fn completion_logprobs(
    tok: &Tokenizer,
    tokens: &[TokenLogprob],
    with_top: bool,
    mut offset: usize,
) -> Value {
    let mut offsets = Vec::with_capacity(tokens.len());
    let texts: Vec<String> = tokens
        .iter()
        .map(|t| {
            let s = token_text(tok, t.id);
            offsets.push(offset);
            offset += s.len();
            s
        })
        .collect();
    json!({
        "tokens": texts,
        "token_logprobs": tokens.iter().map(|t| t.logprob).collect::<Vec<_>>(),
        "top_logprobs": tokens.iter().map(|t| {
            if with_top {
                let map: serde_json::Map<String, Value> = t.top.iter()
                    .map(|(id, lp)| (token_text(tok, *id), json!(lp))).collect();
                Value::Object(map)
            } else {
                Value::Null
            }
        }).collect::<Vec<_>>(),
        "text_offset": offsets,
    })
}

fn chat_logprobs(tok: &Tokenizer, tokens: &[TokenLogprob]) -> Value {
    let entry = |id: u32, lp: f32| {
        let text = token_text(tok, id);
        json!({"token": text, "logprob": lp, "bytes": text.as_bytes()})
    };
    let content: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let mut e = entry(t.id, t.logprob);
            e["top_logprobs"] =
                Value::Array(t.top.iter().map(|(id, lp)| entry(*id, *lp)).collect());
            e
        })
        .collect();
    json!({"content": content})
}

fn usage(prompt: usize, completion: usize) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

async fn whole_answer(
    state: &Arc<AppState>,
    p: &Prepared,
    id: &str,
    mut rx: mpsc::UnboundedReceiver<Event>,
) -> Response {
    let mut choices: Vec<ChoiceState> = (0..p.n).map(|_| ChoiceState::default()).collect();
    let mut remaining = p.n;
    let mut generated = 0usize;
    while remaining > 0 {
        match rx.recv().await {
            Some(Event::Token {
                choice, logprob, ..
            }) => {
                generated += 1;
                choices[choice].tokens.extend(logprob);
            }
            Some(Event::Done { choice, completion }) => {
                choices[choice].done = Some(completion);
                remaining -= 1;
            }
            Some(Event::Failed(message)) => {
                return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message).into_response();
            }
            None => {
                return lost(p, generated == 0).into_response();
            }
        }
    }
    let tok = state.tokenizer.as_deref().expect("a decoder");
    let completion_tokens = generated;
    let out: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let done = c.done.as_ref().expect("every choice ended");
            let logprobs = match (p.logprobs, p.kind) {
                (None, _) => Value::Null,
                (Some(k), Kind::Completion) => completion_logprobs(tok, &c.tokens, k > 0, 0),
                (Some(_), Kind::Chat) => chat_logprobs(tok, &c.tokens),
            };
            let mut choice = match p.kind {
                Kind::Completion => json!({
                    "index": i,
                    "text": done.text,
                    "logprobs": logprobs,
                    "finish_reason": finish_reason(done.finish),
                }),
                Kind::Chat => json!({
                    "index": i,
                    "message": {"role": "assistant", "content": done.text},
                    "logprobs": logprobs,
                    "finish_reason": finish_reason(done.finish),
                }),
            };
            if p.return_token_ids {
                choice["token_ids"] = json!(done.ids);
            }
            choice
        })
        .collect();
    let mut body = json!({
        "id": id,
        "object": match p.kind { Kind::Completion => "text_completion", Kind::Chat => "chat.completion" },
        "created": state.created,
        "model": p.model,
        "choices": out,
        "usage": usage(p.prompt.len(), completion_tokens),
    });
    if p.return_token_ids {
        body["prompt_token_ids"] = json!(p.prompt);
    }
    axum::Json(body).into_response()
}

/// The engine dropped a request: its adapter was unloaded before it started, or the
/// engine stopped.
fn lost(p: &Prepared, nothing_generated: bool) -> ApiError {
    match (&p.adapter, nothing_generated) {
        (Some(name), true) => ApiError::not_found(format!(
            "the adapter `{name}` was unloaded before the request started"
        )),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine stopped before the request finished",
        ),
    }
}

/// What the stream keeps between events.
struct StreamState {
    state: Arc<AppState>,
    p: Prepared,
    id: String,
    rx: mpsc::UnboundedReceiver<Event>,
    remaining: usize,
    completion_tokens: usize,
    /// Chat: whether each choice's first chunk (with the role) went out.
    started: Vec<bool>,
    /// Completions: each choice's `text_offset` of its next token.
    offsets: Vec<usize>,
    finished: bool,
    _place: LoadGuard,
}

fn stream_answer(
    state: Arc<AppState>,
    p: Prepared,
    id: String,
    rx: mpsc::UnboundedReceiver<Event>,
    place: LoadGuard,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let n = p.n;
    let st = StreamState {
        state,
        p,
        id,
        rx,
        remaining: n,
        completion_tokens: 0,
        started: vec![false; n],
        offsets: vec![0; n],
        finished: false,
        _place: place,
    };
    let events = stream::unfold(st, |mut st| async move {
        if st.finished {
            return None;
        }
        let mut out: Vec<SseEvent> = Vec::new();
        if st.remaining == 0 {
            if st.p.include_usage {
                let chunk = st.chunk(
                    Vec::new(),
                    Some(usage(st.p.prompt.len(), st.completion_tokens)),
                );
                out.push(SseEvent::default().data(chunk.to_string()));
            }
            out.push(SseEvent::default().data("[DONE]"));
            st.finished = true;
            return Some((out, st));
        }
        match st.rx.recv().await {
            Some(Event::Token {
                choice,
                id,
                text,
                logprob,
            }) => {
                st.completion_tokens += 1;
                // A token whose text is held back (a possible stop string) or empty (EOS)
                // sends nothing unless its id or log-prob was asked for.
                if !text.is_empty() || logprob.is_some() || st.p.return_token_ids {
                    let c = st.choice_chunk(choice, &text, Some(id), logprob.as_ref(), None);
                    out.push(SseEvent::default().data(c.to_string()));
                }
            }
            Some(Event::Done { choice, completion }) => {
                st.remaining -= 1;
                let c = st.choice_chunk(choice, "", None, None, Some(&completion));
                out.push(SseEvent::default().data(c.to_string()));
            }
            Some(Event::Failed(message)) => {
                let e = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message);
                out.push(SseEvent::default().data(e.body().to_string()));
                st.finished = true;
            }
            None => {
                let e = lost(&st.p, st.completion_tokens == 0);
                out.push(SseEvent::default().data(e.body().to_string()));
                st.finished = true;
            }
        }
        Some((out, st))
    })
    .flat_map(|events| stream::iter(events.into_iter().map(Ok)));
    Sse::new(events)
}

impl StreamState {
    fn chunk(&self, choices: Vec<Value>, usage: Option<Value>) -> Value {
        let mut c = json!({
            "id": self.id,
            "object": match self.p.kind { Kind::Completion => "text_completion", Kind::Chat => "chat.completion.chunk" },
            "created": self.state.created,
            "model": self.p.model,
            "choices": choices,
        });
        if let Some(u) = usage {
            c["usage"] = u;
        }
        c
    }

    fn choice_chunk(
        &mut self,
        index: usize,
        text: &str,
        token: Option<u32>,
        logprob: Option<&TokenLogprob>,
        done: Option<&Completion>,
    ) -> Value {
        let tok = self.state.tokenizer.as_deref().expect("a decoder");
        let finish = done.map(|d| finish_reason(d.finish));
        let logprobs = match (logprob, self.p.kind) {
            (None, _) => Value::Null,
            (Some(t), Kind::Completion) => {
                let at = self.offsets[index];
                self.offsets[index] += token_text(tok, t.id).len();
                completion_logprobs(tok, std::slice::from_ref(t), self.p.logprobs > Some(0), at)
            }
            (Some(t), Kind::Chat) => chat_logprobs(tok, std::slice::from_ref(t)),
        };
        let mut choice = match self.p.kind {
            Kind::Completion => json!({
                "index": index, "text": text, "logprobs": logprobs, "finish_reason": finish,
            }),
            Kind::Chat => {
                let mut delta = json!({});
                if !self.started[index] {
                    delta["role"] = json!("assistant");
                    self.started[index] = true;
                }
                if done.is_none() {
                    delta["content"] = json!(text);
                }
                json!({"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish})
            }
        };
        if self.p.return_token_ids
            && let Some(id) = token
        {
            choice["token_ids"] = json!([id]);
        }
        self.chunk(vec![choice], None)
    }
}

#[derive(Debug, Deserialize)]
struct LoadLora {
    lora_name: String,
    lora_path: String,
}

#[derive(Debug, Deserialize)]
struct UnloadLora {
    lora_name: String,
    #[serde(default)]
    #[allow(dead_code)]
    lora_int_id: Option<i64>,
}

async fn ask_engine(
    state: &AppState,
    msg: impl FnOnce(oneshot::Sender<Result<(), ApiError>>) -> Msg,
) -> Result<(), ApiError> {
    let (reply, answer) = oneshot::channel();
    state.send(msg(reply))?;
    answer.await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine stopped before answering",
        )
    })?
}

/// vLLM's `POST /v1/load_lora_adapter` (`{"lora_name", "lora_path"}`; the path is on
/// the server's filesystem). Answers 200 with a plain-text confirmation, as vLLM does.
pub async fn load_lora_adapter(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let run = async {
        let req: LoadLora = parse_body(&body)?;
        if state.model_name.is_none() {
            return Err(ApiError::not_found(
                "this server hosts no decoder to put an adapter on (start it with --model)",
            ));
        }
        if Some(&req.lora_name) == state.model_name.as_ref() {
            return Err(ApiError::bad_request(format!(
                "`{}` is the base model's name",
                req.lora_name
            )));
        }
        let (name, path) = (req.lora_name.clone(), req.lora_path.clone());
        ask_engine(&state, |reply| Msg::LoadAdapter { name, path, reply }).await?;
        eprintln!(
            "serve: loaded adapter `{}` from {}",
            req.lora_name, req.lora_path
        );
        Ok(format!(
            "Success: LoRA adapter '{}' added successfully.",
            req.lora_name
        )
        .into_response())
    };
    run.await.unwrap_or_else(|e: ApiError| e.into_response())
}

/// vLLM's `POST /v1/unload_lora_adapter` (`{"lora_name"}`). Requests already running
/// on the adapter finish on it.
pub async fn unload_lora_adapter(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let run = async {
        let req: UnloadLora = parse_body(&body)?;
        let name = req.lora_name.clone();
        ask_engine(&state, |reply| Msg::UnloadAdapter { name, reply }).await?;
        eprintln!("serve: unloaded adapter `{}`", req.lora_name);
        Ok(format!(
            "Success: LoRA adapter '{}' removed successfully.",
            req.lora_name
        )
        .into_response())
    };
    run.await.unwrap_or_else(|e: ApiError| e.into_response())
}
