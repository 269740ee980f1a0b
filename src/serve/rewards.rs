//! The reward endpoints of `rmtk serve`:
//! - `POST /pooling`: reward model scores in the shape vLLM answers for a served reward
//!   model (`{"data": [{"index", "object": "pooling", "data": [reward]}]}`);
//! - `POST /v1/verify`: rows as `rmtk verify --input` reads them, back with the verdict
//!   columns `rmtk verify` writes;
//! - `POST /v1/rewards/group`: the responses of one prompt scored, verified and mixed
//!   as `rmtk grpo` mixes them (RLMR by default);
//! - `POST /get_reward`: OpenRLHF's `--remote_rm_url` shape (`{"query", "prompts",
//!   "labels"}` in, `{"rewards", "scores", "extra_logs"}` out), the reward model's score.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

use super::engine::Msg;
use super::{ApiError, AppState, parse_body};
use crate::data::prefs::{Content, Layout, SeqEncoder, SeqSpec, content_cell};
use crate::data::{Row, Table};
use crate::grpo::mixing::{MixConfig, Mixing, mix_with_rubric};
use crate::kernels::FusedOps;
use crate::models::reward::RewardModel;
use crate::rm::LoadedRm;
use crate::rm::score::reward_json;

/// The reward model as the engine holds it.
pub struct RmState<B: FusedOps> {
    rm: LoadedRm,
    model: RewardModel<B>,
    spec: SeqSpec,
    vocab: usize,
    device: B::Device,
}

impl<B: FusedOps> RmState<B> {
    pub fn new(rm: LoadedRm, model: RewardModel<B>, device: B::Device) -> anyhow::Result<Self> {
        let spec = rm.seq_spec(None, None)?.for_scoring();
        let vocab = crate::rm::model_vocab(&rm.dir)?;
        Ok(Self {
            rm,
            model,
            spec,
            vocab,
            device,
        })
    }

    pub fn name(&self) -> &str {
        &self.rm.dir.name
    }

    /// Rewards of rows `{prompt?, response}` (text or messages), exactly as `rmtk score`
    /// computes them for the same rows in a file, and the tokens the model read.
    pub fn score(&self, rows: Vec<Row>) -> Result<(Vec<f32>, usize), ApiError> {
        if rows.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let has_prompt = rows.iter().any(|r| r.contains_key("prompt"));
        let table = Table {
            path: "request".into(),
            columns: ["prompt", "response"].map(String::from).to_vec(),
            types: vec![String::new(); 2],
            rows,
            bad: Vec::new(),
        };
        let encoder = SeqEncoder::new(&self.rm.tokenizer, self.spec.clone(), self.vocab);
        let mut seqs = Vec::with_capacity(table.rows.len());
        for row in 0..table.rows.len() {
            let bad = |e: crate::data::DataError| ApiError::bad_request(e.to_string());
            let prompt: Option<Content> = match has_prompt {
                true => {
                    Some(content_cell(&table, row, "prompt", Layout::Auto, "user").map_err(bad)?)
                }
                false => None,
            };
            let response =
                content_cell(&table, row, "response", Layout::Auto, "assistant").map_err(bad)?;
            let seq = encoder
                .encode(prompt.as_ref(), &response)
                .map_err(|m| ApiError::bad_request(format!("request row {row}: {m}")))?;
            seqs.push(seq);
        }
        let refs: Vec<_> = seqs.iter().collect();
        let tokens = seqs.iter().map(|s| s.ids.len()).sum();
        let rewards = self
            .rm
            .rewards(&self.model, &refs, 16, &self.device, |_| {})
            .map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{e:#}"),
                )
            })?;
        Ok((rewards, tokens))
    }
}

/// Ask the engine for reward model scores.
async fn score(state: &Arc<AppState>, rows: Vec<Row>) -> Result<(Vec<f32>, usize), ApiError> {
    if state.reward_model_name.is_none() {
        return Err(ApiError::not_found(
            "this server hosts no reward model (start it with --reward-model)",
        ));
    }
    let _place = state.admit()?;
    let (reply, answer) = oneshot::channel();
    state.send(Msg::Score { rows, reply })?;
    answer.await.map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "the engine stopped before scoring",
        )
    })?
}

/// A `/pooling` input: a text (the whole sequence), or rmtk's `{prompt, response}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PoolInput {
    Text(String),
    Pair { prompt: Value, response: Value },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolingRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    input: Option<OneOrMany<PoolInput>>,
    /// A conversation ending in the assistant turn to score.
    #[serde(default)]
    messages: Option<Value>,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

fn check_reward_model(state: &AppState, model: Option<&str>) -> Result<(), ApiError> {
    match (model, &state.reward_model_name) {
        (Some(m), Some(rm)) if m != rm => Err(ApiError::not_found(format!(
            "the model `{m}` is not this server's reward model `{rm}`"
        ))),
        _ => Ok(()),
    }
}

pub async fn pooling(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    match pooling_inner(&state, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn pooling_inner(state: &Arc<AppState>, body: &[u8]) -> Result<Response, ApiError> {
    let req: PoolingRequest = parse_body(body)?;
    let _ = (&req.encoding_format, &req.user);
    check_reward_model(state, req.model.as_deref())?;
    let rows: Vec<Row> = match (req.input, req.messages) {
        (Some(input), None) => input
            .into_vec()
            .into_iter()
            .map(|i| match i {
                PoolInput::Text(t) => Row::from_iter([("response".to_string(), json!(t))]),
                PoolInput::Pair { prompt, response } => Row::from_iter([
                    ("prompt".to_string(), prompt),
                    ("response".to_string(), response),
                ]),
            })
            .collect(),
        (None, Some(Value::Array(messages))) => {
            let Some((last, before)) = messages.split_last() else {
                return Err(ApiError::bad_request("`messages` is empty"));
            };
            if last.get("role").and_then(Value::as_str) != Some("assistant") {
                return Err(ApiError::bad_request(
                    "`messages` must end with the assistant turn to score",
                ));
            }
            let mut row = Row::from_iter([("response".to_string(), json!([last]))]);
            if !before.is_empty() {
                row.insert("prompt".into(), Value::Array(before.to_vec()));
            }
            vec![row]
        }
        (None, Some(_)) => return Err(ApiError::bad_request("`messages` must be a list")),
        _ => {
            return Err(ApiError::bad_request(
                "give either `input` (a text, a list of texts, or {prompt, response} objects) or `messages`",
            ));
        }
    };
    let (rewards, tokens) = score(state, rows).await?;
    let data: Vec<Value> = rewards
        .iter()
        .enumerate()
        .map(|(i, &r)| json!({"index": i, "object": "pooling", "data": [reward_json(r)]}))
        .collect();
    Ok(axum::Json(json!({
        "id": state.id("pool"),
        "object": "list",
        "created": state.created,
        "model": state.reward_model_name,
        "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
    }))
    .into_response())
}

/// Verify rows on a blocking thread (rules in parallel, a judge, URL checks).
async fn verify_rows(state: &Arc<AppState>, rows: Vec<Row>) -> Result<Vec<Row>, ApiError> {
    let verifier = state.verifier.clone();
    tokio::task::spawn_blocking(move || {
        let verifier = verifier.lock().expect("not poisoned");
        crate::verify::verify_rows(&verifier, rows, "request")
    })
    .await
    .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::bad_request(format!("{e:#}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    rows: Vec<Map<String, Value>>,
}

pub async fn verify(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let run = async {
        let req: VerifyRequest = parse_body(&body)?;
        if req.rows.is_empty() {
            return Err(ApiError::bad_request("`rows` is empty"));
        }
        let _place = state.admit()?;
        let rows = verify_rows(&state, req.rows).await?;
        Ok(axum::Json(json!({"object": "list", "rows": rows})).into_response())
    };
    run.await.unwrap_or_else(|e: ApiError| e.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupRequest {
    prompt: Value,
    responses: Vec<String>,
    #[serde(default)]
    instruction_id_list: Option<Value>,
    #[serde(default)]
    kwargs: Option<Value>,
    #[serde(default)]
    constraints: Option<Value>,
    #[serde(default)]
    rubric: Option<Value>,
    #[serde(default)]
    mixing: Option<Mixing>,
    #[serde(default)]
    gamma: Option<f64>,
    #[serde(default)]
    constraint_weight: Option<f64>,
    #[serde(default)]
    rubric_weight: Option<f64>,
}

pub async fn group(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    group_inner(&state, &body)
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn group_inner(state: &Arc<AppState>, body: &[u8]) -> Result<Response, ApiError> {
    let req: GroupRequest = parse_body(body)?;
    if req.responses.is_empty() {
        return Err(ApiError::bad_request("`responses` is empty"));
    }
    let cfg = MixConfig {
        mixing: req.mixing.unwrap_or(Mixing::Rlmr),
        gamma: req.gamma.unwrap_or(1.0),
        constraint_weight: req.constraint_weight.unwrap_or(1.0),
        rubric_weight: req.rubric_weight.unwrap_or(1.0),
    };
    let verify_input: Vec<Row> = req
        .responses
        .iter()
        .map(|r| {
            let mut row = Row::new();
            row.insert("prompt".into(), req.prompt.clone());
            row.insert("response".into(), json!(r));
            for (key, value) in [
                ("instruction_id_list", &req.instruction_id_list),
                ("kwargs", &req.kwargs),
                ("constraints", &req.constraints),
                ("rubric", &req.rubric),
            ] {
                if let Some(v) = value {
                    row.insert(key.into(), v.clone());
                }
            }
            row
        })
        .collect();
    let writing: Vec<f64> = if cfg.mixing == Mixing::ConstraintOnly {
        vec![0.0; req.responses.len()]
    } else {
        let rows = req
            .responses
            .iter()
            .map(|r| {
                Row::from_iter([
                    ("prompt".to_string(), req.prompt.clone()),
                    ("response".to_string(), json!(r)),
                ])
            })
            .collect();
        score(state, rows)
            .await?
            .0
            .into_iter()
            .map(f64::from)
            .collect()
    };
    let _place = state.admit()?;
    let verified = verify_rows(state, verify_input).await?;
    let pass: Vec<bool> = verified
        .iter()
        .map(|r| r.get("pass").and_then(Value::as_bool).unwrap_or(false))
        .collect();
    let with_rubric = req.rubric.is_some();
    let rubric: Vec<f64> = if with_rubric {
        verified
            .iter()
            .map(|r| r.get("rubric_score").and_then(Value::as_f64).unwrap_or(0.0))
            .collect()
    } else {
        Vec::new()
    };
    let mixed = mix_with_rubric(&writing, &pass, &rubric, &cfg);
    Ok(axum::Json(json!({
        "object": "reward.group",
        "mixing": cfg.mixing,
        "rewards": mixed.rewards,
        "writing_rewards": writing,
        "pass": pass,
        "rubric_scores": with_rubric.then_some(rubric),
        "delta": mixed.delta,
        "violators": mixed.violators,
        "verdicts": verified,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
struct OpenRlhfRequest {
    query: Vec<String>,
    #[serde(default)]
    prompts: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<Value>,
    #[serde(default)]
    responses: Option<Vec<String>>,
}

pub async fn openrlhf(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let run = async {
        let req: OpenRlhfRequest = parse_body(&body)?;
        let _ = &req.labels;
        let n = req.query.len();
        for (what, len) in [
            ("prompts", req.prompts.as_ref().map(Vec::len)),
            ("responses", req.responses.as_ref().map(Vec::len)),
        ] {
            if let Some(len) = len
                && len != n
            {
                return Err(ApiError::bad_request(format!(
                    "`{what}` has {len} entries and `query` {n}: one per query"
                )));
            }
        }
        // The response: given, or the query past its prompt; without prompts the whole
        // query is scored.
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let query = &req.query[i];
            let row = match (&req.prompts, &req.responses) {
                (Some(p), Some(r)) => [("prompt", json!(p[i])), ("response", json!(r[i]))].to_vec(),
                (Some(p), None) => match query.strip_prefix(p[i].as_str()) {
                    Some(rest) => [("prompt", json!(p[i])), ("response", json!(rest))].to_vec(),
                    None => {
                        return Err(ApiError::bad_request(format!(
                            "query {i} does not start with prompts[{i}]; send `responses` too"
                        )));
                    }
                },
                (None, _) => [("response", json!(query))].to_vec(),
            };
            rows.push(
                row.into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<Row>(),
            );
        }
        let rewards: Vec<Value> = score(&state, rows)
            .await?
            .0
            .into_iter()
            .map(reward_json)
            .collect();
        Ok(axum::Json(json!({
            "rewards": rewards,
            "scores": rewards,
            "extra_logs": {},
        }))
        .into_response())
    };
    run.await.unwrap_or_else(|e: ApiError| e.into_response())
}
