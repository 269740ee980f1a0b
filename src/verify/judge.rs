//! The LLM judge: what it is asked ([`Template`]), how its answer is read (the
//! probability of "yes" against "no"), and the judge hosted on Burn ([`BurnJudge`]).
//!
//! A judge answers [`JudgeQuery`]s: an instruction (the user's prompt), one constraint
//! phrased as text, and a response. The template turns a query into the user message;
//! the judge's verdict is read at the answer position as
//! `P(yes) / (P(yes) + P(no))`, where `P(yes)` sums the probability of every
//! single-token spelling of the word ("yes", "Yes", "YES", with and without a leading
//! space) and `P(no)` likewise. With `reason`, the judge first writes a short
//! rationale (greedy, bounded), then `Verdict:` is appended and the probability is
//! read after it.
//!
//! The remote judge ([`super::remote`]) uses the same template and the same reading,
//! from the endpoint's top log-probabilities.

use crate::kernels::FusedOps;
use std::borrow::Cow;
use std::path::Path;

use burn::prelude::*;

use crate::models::generate::{SamplingParams, generate, row_rng};
use crate::models::{LlamaForCausalLM, Message, ModelDir, PaddingMask, Tokenizer};

/// The default template (`data/judge/default.txt`).
pub const DEFAULT_TEMPLATE: &str = include_str!("../../data/judge/default.txt");

/// The constraint text used when a row names no constraints: the judge reads them from
/// the instruction itself (the RLMR paper's setting).
pub const PROMPT_CONSTRAINTS: &str = "Every constraint that the INSTRUCTION states about the form of the response (for example its length, format, sections, keywords, language, letter case, punctuation, and how it starts or ends). The response must satisfy all of them.";

/// What `{answer_format}` becomes without a rationale.
pub const PLAIN_ANSWER: &str = "Answer with one word: Yes or No.";

/// What `{answer_format}` becomes with `--judge-reason`.
pub const REASON_ANSWER: &str = "First explain in one or two short sentences whether the constraint is met. Then write your verdict on a new line as \"Verdict: Yes\" or \"Verdict: No\".";

/// Appended after a rationale; the verdict is read at the next token.
pub const VERDICT_CUE: &str = "Verdict:";

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 4] = ["instruction", "constraints", "response", "answer_format"];

/// One question to a judge: does `response`, written for `instruction`, satisfy
/// `constraint`?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgeQuery<'a> {
    /// The instruction (prompt) the response answers.
    pub instruction: &'a str,
    /// One constraint as text (an IFEval instruction through
    /// [`super::rules::Instruction::describe`], a free-text constraint as given, or
    /// [`PROMPT_CONSTRAINTS`]).
    pub constraint: Cow<'a, str>,
    pub response: &'a str,
}

/// A judge's answer to one query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JudgeAnswer {
    /// `P(yes) / (P(yes) + P(no))`; `None` when the judge gave no yes/no answer
    /// (a remote judge without log-probabilities that answered something else, or a
    /// query that does not fit the judge's context). The verifier counts `None` as a
    /// failure.
    pub probability: Option<f32>,
    /// The rationale written before the verdict (`--judge-reason`).
    pub rationale: Option<String>,
    /// Something the verdict's reader should know (the response was shortened to fit,
    /// or why there is no probability).
    pub note: Option<String>,
    /// `P(yes) + P(no)` at the answer position, where known: how much of its
    /// probability the judge put on answering at all.
    pub answer_mass: Option<f32>,
}

/// Why a judge could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JudgeError {
    /// The endpoint could not be reached, timed out, or kept answering 429/5xx through
    /// every retry. A trainer should stop cleanly here (its checkpoint intact) rather
    /// than count the responses as failed.
    #[error(
        "judge endpoint {url} is down: {attempts} attempts failed, the last with: {last_error}"
    )]
    EndpointDown {
        url: String,
        attempts: u32,
        last_error: String,
    },
    /// The endpoint refused the request (a 4xx other than 429: wrong model name, bad
    /// key, unsupported parameter); retrying would not help.
    #[error("judge endpoint {url} refused the request with HTTP {status}: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    /// The endpoint answered, but not with a chat completion, through every retry.
    #[error("judge endpoint {url} sent no usable chat completion in {attempts} attempts: {detail}")]
    BadResponse {
        url: String,
        attempts: u32,
        detail: String,
    },
    /// The template or the judge's configuration is unusable.
    #[error("judge: {0}")]
    Config(String),
    /// The local model failed (tokenizer, chat template).
    #[error("judge model: {0}")]
    Model(String),
}

impl JudgeError {
    /// True for [`JudgeError::EndpointDown`]: the endpoint is unreachable after
    /// retries (as opposed to refusing or misunderstanding the request).
    pub fn is_endpoint_down(&self) -> bool {
        matches!(self, JudgeError::EndpointDown { .. })
    }
}

/// A judge: anything that turns queries into yes-probabilities.
///
/// Implemented by [`BurnJudge`] (a local decoder on any Burn backend) and
/// [`super::remote::RemoteJudge`] (an OpenAI-compatible endpoint). `judge` gets every
/// query of a [`super::Verifier::verify`] call at once, so it can batch them.
pub trait Judge {
    /// One answer per query, in order.
    fn judge(&self, queries: &[JudgeQuery<'_>]) -> Result<Vec<JudgeAnswer>, JudgeError>;

    /// A short description for logs, e.g. `smollm2-135m-instruct (burn)`.
    fn describe(&self) -> String;

    /// Whether answers carry a rationale.
    fn writes_rationales(&self) -> bool {
        false
    }

    /// A line of statistics for the run's summary (requests, retries, cache hits).
    fn stats(&self) -> Option<String> {
        None
    }
}

// ---------------------------------------------------------------------------------
// Template
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Slot(&'static str),
}

/// A judge prompt template: text with the placeholders `{instruction}`,
/// `{constraints}`, `{response}` (required) and `{answer_format}`.
///
/// Placeholders are replaced in one pass, so braces inside the substituted texts
/// are left alone. `{answer_format}` becomes [`PLAIN_ANSWER`] or, with a rationale,
/// [`REASON_ANSWER`]; a template without it must ask for a one-word Yes/No itself,
/// and the rationale request is then appended at its end. Other `{word}` placeholders
/// are refused (a typo would otherwise reach the judge); braces around anything else
/// (JSON examples) are plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    source: String,
}

impl Default for Template {
    fn default() -> Template {
        Template::parse(DEFAULT_TEMPLATE, "the default template")
            .expect("the default template is valid")
    }
}

impl Template {
    /// Parses a template; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Template, JudgeError> {
        // A file's final newline is not part of the message.
        let text = text.trim_end_matches(['\n', '\r']);
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(after.len());
            let closes = after[name_len..].starts_with('}');
            if name_len > 0 && closes {
                let name = &after[..name_len];
                let slot = match name {
                    "constraint" => Some("constraints"),
                    _ => PLACEHOLDERS.iter().copied().find(|p| *p == name),
                };
                let Some(slot) = slot else {
                    return Err(JudgeError::Config(format!(
                        "{source}: unknown placeholder {{{name}}}; the placeholders are {}",
                        PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                    )));
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Slot(slot));
                rest = &after[name_len + 1..];
            } else {
                literal.push('{');
                rest = after;
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        let template = Template {
            pieces,
            source: source.to_owned(),
        };
        for required in ["response", "constraints"] {
            if !template.has(required) {
                return Err(JudgeError::Config(format!(
                    "{source}: the template has no {{{required}}} placeholder"
                )));
            }
        }
        Ok(template)
    }

    /// Reads a template file.
    pub fn from_file(path: &Path) -> Result<Template, JudgeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| JudgeError::Config(format!("--judge-template {}: {e}", path.display())))?;
        Template::parse(&text, &format!("--judge-template {}", path.display()))
    }

    fn has(&self, slot: &str) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Slot(s) if *s == slot))
    }

    /// Where the template came from, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The user message for `query`; `reason` asks for a rationale first.
    pub fn render(&self, query: &JudgeQuery<'_>, reason: bool) -> String {
        let answer = if reason { REASON_ANSWER } else { PLAIN_ANSWER };
        let mut out = String::with_capacity(
            query.instruction.len() + query.constraint.len() + query.response.len() + 1024,
        );
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Slot("instruction") => out.push_str(query.instruction),
                Piece::Slot("constraints") => out.push_str(&query.constraint),
                Piece::Slot("response") => out.push_str(query.response),
                Piece::Slot(_) => out.push_str(answer),
            }
        }
        if reason && !self.has("answer_format") {
            out.push_str("\n\n");
            out.push_str(REASON_ANSWER);
        }
        out
    }
}

// ---------------------------------------------------------------------------------
// Reading yes and no
// ---------------------------------------------------------------------------------

/// The spellings of the two answers whose probabilities are summed.
pub const YES_SPELLINGS: [&str; 6] = ["Yes", "yes", "YES", " Yes", " yes", " YES"];
pub const NO_SPELLINGS: [&str; 6] = ["No", "no", "NO", " No", " no", " NO"];

/// The token ids of "yes" and "no" in one vocabulary: every spelling in
/// [`YES_SPELLINGS`] / [`NO_SPELLINGS`] that the tokenizer encodes as a single token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerTokens {
    pub yes: Vec<u32>,
    pub no: Vec<u32>,
}

impl AnswerTokens {
    pub fn for_tokenizer(tok: &Tokenizer) -> Result<AnswerTokens, JudgeError> {
        let ids = |spellings: &[&str]| -> Result<Vec<u32>, JudgeError> {
            let mut ids = Vec::new();
            for s in spellings {
                let encoded = tok
                    .encode(s, false)
                    .map_err(|e| JudgeError::Model(e.to_string()))?;
                if let [id] = encoded[..]
                    && !ids.contains(&id)
                {
                    ids.push(id);
                }
            }
            Ok(ids)
        };
        let (yes, no) = (ids(&YES_SPELLINGS)?, ids(&NO_SPELLINGS)?);
        if yes.is_empty() || no.is_empty() {
            return Err(JudgeError::Config(
                "the judge's tokenizer has no single token for \"Yes\" or \"No\" in any spelling; this model cannot be a yes/no judge".into(),
            ));
        }
        if yes.iter().any(|id| no.contains(id)) {
            return Err(JudgeError::Config(
                "the judge's tokenizer maps \"Yes\" and \"No\" to the same token".into(),
            ));
        }
        Ok(AnswerTokens { yes, no })
    }

    /// `(P(yes) / (P(yes) + P(no)), P(yes) + P(no))` from one row of logits. The ratio
    /// is computed from log-sum-exps, so it stays exact when both are tiny; the second
    /// number (the mass the model puts on a yes/no answer at all) says how much the
    /// ratio means.
    pub fn probability(&self, logits: &[f32]) -> (f32, f32) {
        let lse = |ids: &mut dyn Iterator<Item = f32>| -> f64 {
            let values: Vec<f64> = ids.map(f64::from).collect();
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if max == f64::NEG_INFINITY {
                return max;
            }
            max + values.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
        };
        let pick = |ids: &[u32]| -> Vec<f32> {
            ids.iter()
                .filter_map(|&i| logits.get(i as usize).copied())
                .collect()
        };
        let (yes, no) = (pick(&self.yes), pick(&self.no));
        let lse_yes = lse(&mut yes.iter().copied());
        let lse_no = lse(&mut no.iter().copied());
        let lse_all = lse(&mut logits.iter().copied());
        let lse_both = lse(&mut yes.iter().chain(&no).copied());
        let ratio = 1.0 / (1.0 + (lse_no - lse_yes).exp());
        let mass = (lse_both - lse_all).exp();
        (ratio as f32, mass as f32)
    }
}

/// Reads a yes/no verdict from an answer's text: the word after the last `Verdict:`,
/// else the answer's first word. `None` when neither is yes or no.
pub fn parse_verdict_text(text: &str) -> Option<bool> {
    let word_after = |s: &str| -> Option<bool> {
        let word: String = s
            .trim_start_matches(|c: char| !c.is_alphanumeric())
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        match word.to_lowercase().as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        }
    };
    let lower = text.to_lowercase();
    if let Some(at) = lower.rfind("verdict") {
        let after = &lower[at + "verdict".len()..];
        if let Some(v) = word_after(after) {
            return Some(v);
        }
    }
    word_after(&lower)
}

// ---------------------------------------------------------------------------------
// The judge on Burn
// ---------------------------------------------------------------------------------

/// How a [`BurnJudge`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnJudgeOptions {
    pub template: Template,
    /// Write a rationale before the verdict.
    pub reason: bool,
    /// Longest rationale, in tokens.
    pub reason_tokens: usize,
    /// Sequences per forward pass.
    pub batch_size: usize,
    /// Longest judge input in tokens; longer responses are shortened in the middle
    /// (the answer's note says so).
    pub max_tokens: usize,
    /// The dtype the judge computes in.
    pub dtype: crate::models::load::ComputeDtype,
}

impl Default for BurnJudgeOptions {
    fn default() -> BurnJudgeOptions {
        BurnJudgeOptions {
            template: Template::default(),
            reason: false,
            reason_tokens: 128,
            batch_size: 8,
            max_tokens: 2048,
            dtype: crate::models::load::ComputeDtype::F32,
        }
    }
}

/// A yes/no judge on a local decoder, generic over the Burn backend. The model is
/// loaded once and shared by every call.
pub struct BurnJudge<B: Backend> {
    lm: LlamaForCausalLM<B>,
    tok: Tokenizer,
    answers: AnswerTokens,
    options: BurnJudgeOptions,
    device: B::Device,
    name: String,
}

/// A query ready for the model.
struct Encoded {
    ids: Vec<u32>,
    note: Option<String>,
}

impl<B: FusedOps> BurnJudge<B> {
    /// Loads the decoder and tokenizer of `model` on `device`.
    pub fn load(
        model: &ModelDir,
        options: BurnJudgeOptions,
        device: &B::Device,
    ) -> anyhow::Result<BurnJudge<B>> {
        let tok = model.tokenizer()?;
        let lm = crate::models::load_causal_lm_in::<B>(model, device, options.dtype.burn())?;
        let dtype = match options.dtype {
            crate::models::load::ComputeDtype::F32 => String::new(),
            other => format!(", {}", other.name()),
        };
        Ok(BurnJudge::new(
            lm,
            tok,
            &format!("{} (burn{dtype})", model.name),
            options,
            device,
        )?)
    }

    /// A judge from a model already loaded.
    pub fn new(
        lm: LlamaForCausalLM<B>,
        tok: Tokenizer,
        name: &str,
        options: BurnJudgeOptions,
        device: &B::Device,
    ) -> Result<BurnJudge<B>, JudgeError> {
        if options.batch_size == 0 {
            return Err(JudgeError::Config(
                "the batch size must be at least 1".into(),
            ));
        }
        let floor = 256
            + if options.reason {
                options.reason_tokens
            } else {
                0
            };
        if options.max_tokens < floor {
            return Err(JudgeError::Config(format!(
                "--judge-max-tokens {} is too small (at least {floor} with these options)",
                options.max_tokens
            )));
        }
        let answers = AnswerTokens::for_tokenizer(&tok)?;
        Ok(BurnJudge {
            lm,
            tok,
            answers,
            options,
            device: device.clone(),
            name: name.to_owned(),
        })
    }

    /// The length in tokens of the judge's input for `query` (after any shortening).
    pub fn input_tokens(&self, query: &JudgeQuery<'_>) -> Result<usize, JudgeError> {
        self.encode(query).map(|e| e.ids.len())
    }

    /// The answer tokens this judge reads.
    pub fn answer_tokens(&self) -> &AnswerTokens {
        &self.answers
    }

    fn model_error(e: impl std::fmt::Display) -> JudgeError {
        JudgeError::Model(e.to_string())
    }

    /// The prompt as the model sees it: the rendered template as the user's turn of
    /// the chat template (with the generation prompt), or, for a model without one,
    /// the text followed by `Answer:` (or a new line before a rationale).
    fn prompt_ids(&self, query: &JudgeQuery<'_>) -> Result<Vec<u32>, JudgeError> {
        let text = self.options.template.render(query, self.options.reason);
        if self.tok.has_chat_template() {
            let chat = self
                .tok
                .apply_chat_template(&[Message::new("user", &text)], true)
                .map_err(Self::model_error)?;
            self.tok.encode(&chat, false).map_err(Self::model_error)
        } else {
            let suffix = if self.options.reason {
                "\n"
            } else {
                "\nAnswer:"
            };
            self.tok
                .encode(&format!("{text}{suffix}"), true)
                .map_err(Self::model_error)
        }
    }

    /// Encodes a query, shortening the response in the middle when the whole would be
    /// longer than `max_tokens` (minus the rationale's room).
    fn encode(&self, query: &JudgeQuery<'_>) -> Result<Encoded, JudgeError> {
        let budget = self.options.max_tokens
            - if self.options.reason {
                self.options.reason_tokens + 8
            } else {
                0
            };
        let ids = self.prompt_ids(query)?;
        if ids.len() <= budget {
            return Ok(Encoded { ids, note: None });
        }
        let response = self
            .tok
            .encode(query.response, false)
            .map_err(Self::model_error)?;
        let around = ids.len().saturating_sub(response.len());
        // Room for the marker and for tokens merging differently at the seams.
        let mut keep = budget.saturating_sub(around + 24);
        for _ in 0..4 {
            if keep < 32 {
                break;
            }
            let head = self
                .tok
                .decode(&response[..keep / 2], false)
                .map_err(Self::model_error)?;
            let tail = self
                .tok
                .decode(&response[response.len() - (keep - keep / 2)..], false)
                .map_err(Self::model_error)?;
            let omitted = response.len() - keep;
            let shortened =
                format!("{head}\n[... {omitted} tokens of the response omitted ...]\n{tail}");
            let short_query = JudgeQuery {
                response: &shortened,
                ..query.clone()
            };
            let ids = self.prompt_ids(&short_query)?;
            if ids.len() <= budget {
                return Ok(Encoded {
                    ids,
                    note: Some(format!(
                        "the response ({} tokens) was shortened to its first and last {} tokens to fit --judge-max-tokens {}",
                        response.len(),
                        keep,
                        self.options.max_tokens
                    )),
                });
            }
            keep = keep.saturating_sub(ids.len() - budget + 16);
        }
        Err(JudgeError::Config(format!(
            "a judge prompt is {} tokens before its response, too long for --judge-max-tokens {}",
            around, self.options.max_tokens
        )))
    }

    /// `(probability, mass)` at the last position of each sequence, one forward pass.
    fn score(&self, seqs: &[Vec<u32>]) -> Vec<(f32, f32)> {
        let n = seqs.len();
        let width = seqs.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let pad = self.tok.pad_id() as i64;
        let mut ids = Vec::with_capacity(n * width);
        let mut valid = Vec::with_capacity(n * width);
        for s in seqs {
            // Left padding: every row's answer position is the last one.
            let padding = width - s.len();
            ids.extend(std::iter::repeat_n(pad, padding));
            ids.extend(s.iter().map(|&t| t as i64));
            valid.extend(std::iter::repeat_n(false, padding));
            valid.extend(std::iter::repeat_n(true, s.len()));
        }
        let mask = PaddingMask {
            batch: n,
            seq: width,
            valid,
        };
        let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, width]), &self.device);
        let hidden = self.lm.model.forward(input, &mask);
        let [b, s, h] = hidden.dims();
        let last = hidden.narrow(1, s - 1, 1).reshape([b, 1, h]);
        let logits = self
            .lm
            .logits(last)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("logits are floats");
        let vocab = logits.len() / n;
        logits
            .chunks(vocab)
            .map(|row| self.answers.probability(row))
            .collect()
    }

    /// Rationales for a batch of prompts: greedy, at most `reason_tokens`, cut at
    /// the verdict.
    fn rationales(&self, prompts: &[Vec<u32>]) -> Result<Vec<String>, JudgeError> {
        let mut params = SamplingParams::greedy(self.options.reason_tokens);
        params.stop = vec![VERDICT_CUE.to_owned(), "verdict:".to_owned()];
        let mut rngs: Vec<_> = (0..prompts.len()).map(|i| row_rng(0, i as u64)).collect();
        let done = generate(&self.lm, &self.tok, prompts, &params, &mut rngs, |_, _| {})
            .map_err(Self::model_error)?;
        Ok(done.into_iter().map(|c| c.text.trim().to_owned()).collect())
    }
}

impl<B: FusedOps> Judge for BurnJudge<B> {
    fn judge(&self, queries: &[JudgeQuery<'_>]) -> Result<Vec<JudgeAnswer>, JudgeError> {
        let encoded: Vec<Encoded> = queries
            .iter()
            .map(|q| self.encode(q))
            .collect::<Result<_, _>>()?;
        // Similar lengths share a batch: less padding.
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| encoded[i].ids.len());
        let mut answers = vec![JudgeAnswer::default(); encoded.len()];
        for batch in order.chunks(self.options.batch_size) {
            let prompts: Vec<Vec<u32>> = batch.iter().map(|&i| encoded[i].ids.clone()).collect();
            let (seqs, rationales) = if self.options.reason {
                let rationales = self.rationales(&prompts)?;
                let mut seqs = Vec::with_capacity(prompts.len());
                for (prompt, rationale) in prompts.iter().zip(&rationales) {
                    let cue = if rationale.is_empty() {
                        VERDICT_CUE.to_owned()
                    } else {
                        format!("{rationale}\n{VERDICT_CUE}")
                    };
                    let mut ids = prompt.clone();
                    ids.extend(self.tok.encode(&cue, false).map_err(Self::model_error)?);
                    seqs.push(ids);
                }
                (seqs, rationales.into_iter().map(Some).collect())
            } else {
                (prompts, vec![None; batch.len()])
            };
            let scores = self.score(&seqs);
            for ((&i, (probability, mass)), rationale) in batch.iter().zip(scores).zip(rationales) {
                answers[i] = JudgeAnswer {
                    probability: Some(probability),
                    rationale,
                    note: encoded[i].note.clone(),
                    answer_mass: Some(mass),
                };
            }
        }
        Ok(answers)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn writes_rationales(&self) -> bool {
        self.options.reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query<'a>(constraint: &'a str, response: &'a str) -> JudgeQuery<'a> {
        JudgeQuery {
            instruction: "Write {a} poem.",
            constraint: Cow::Borrowed(constraint),
            response,
        }
    }

    #[test]
    fn the_default_template_has_every_placeholder() {
        let t = Template::default();
        for p in PLACEHOLDERS {
            assert!(t.has(p), "{p}");
        }
        let text = t.render(&query("No commas.", "Roses {response} red"), false);
        assert!(text.contains("INSTRUCTION:\nWrite {a} poem."), "{text}");
        assert!(text.contains("CONSTRAINT:\nNo commas."), "{text}");
        // Placeholders inside substituted text stay as they are.
        assert!(text.contains("RESPONSE:\nRoses {response} red"), "{text}");
        assert!(text.ends_with(PLAIN_ANSWER), "{text}");
        let reasoned = t.render(&query("No commas.", "x"), true);
        assert!(reasoned.ends_with(REASON_ANSWER), "{reasoned}");
    }

    #[test]
    fn templates_are_checked() {
        let err = Template::parse("{response} {constraints} {respnose}", "t.txt").unwrap_err();
        assert!(
            err.to_string().contains("unknown placeholder {respnose}"),
            "{err}"
        );
        let err = Template::parse("{constraints} only", "t.txt").unwrap_err();
        assert!(err.to_string().contains("no {response}"), "{err}");
        // JSON-looking braces are text; {constraint} is accepted for {constraints}.
        let t = Template::parse("{\"a\": 1} {constraint}: {response}. {", "t.txt").unwrap();
        assert_eq!(t.render(&query("C", "R"), false), "{\"a\": 1} C: R. {");
        // Without {answer_format}, a rationale request is appended.
        assert!(t.render(&query("C", "R"), true).ends_with(REASON_ANSWER));
    }

    #[test]
    fn probability_sums_spellings_and_survives_tiny_masses() {
        let answers = AnswerTokens {
            yes: vec![0, 1],
            no: vec![2],
        };
        // P(yes) = p0 + p1 = P(no): ratio 1/2.
        let (p, mass) = answers.probability(&[0.0, 0.0, 2f32.ln(), 5.0]);
        assert!((p - 0.5).abs() < 1e-6, "{p}");
        assert!(mass > 0.0 && mass < 1.0);
        let (p, _) = answers.probability(&[1.0, 1.0, 1.0, 0.0]);
        assert!((p - 2.0 / 3.0).abs() < 1e-6, "{p}");
        // Logits far below the rest: the ratio is still exact.
        let (p, mass) = answers.probability(&[-200.0, -200.0, -200.0, 100.0]);
        assert!((p - 2.0 / 3.0).abs() < 1e-6, "{p}");
        assert!(mass < 1e-30);
    }

    #[test]
    fn verdicts_are_read_from_text() {
        assert_eq!(parse_verdict_text("Yes."), Some(true));
        assert_eq!(parse_verdict_text("  no, it has commas"), Some(false));
        assert_eq!(
            parse_verdict_text("It uses no commas at all.\nVerdict: Yes"),
            Some(true)
        );
        assert_eq!(parse_verdict_text("**Verdict:** NO"), Some(false));
        assert_eq!(parse_verdict_text("Maybe"), None);
        assert_eq!(parse_verdict_text(""), None);
    }

    #[test]
    fn endpoint_down_is_distinct() {
        let down = JudgeError::EndpointDown {
            url: "u".into(),
            attempts: 3,
            last_error: "refused".into(),
        };
        assert!(down.is_endpoint_down());
        assert!(!JudgeError::Config("x".into()).is_endpoint_down());
    }
}
