//! The remote judge: an OpenAI-compatible chat-completions endpoint (vLLM, SGLang,
//! llama.cpp's server, OpenAI itself).
//!
//! * One request per distinct query (identical queries in a call are asked once),
//!   at most `concurrency` in flight, on a blocking HTTP client (no async runtime).
//! * Each request has a timeout; connection failures, timeouts, HTTP 429 and 5xx and
//!   unparseable bodies are retried with exponential backoff and jitter (honouring
//!   `Retry-After`); other 4xx answers are not retried. When retries run out the error
//!   is [`JudgeError::EndpointDown`] (or [`JudgeError::BadResponse`]), which a trainer
//!   can tell apart and stop on.
//! * Answers are cached on disk, one file per request, named by a hash of the request
//!   (model, full prompt, parameters) and holding the request itself, so a re-run pays
//!   nothing twice and a hash collision is a miss, not a wrong answer. Files are
//!   written atomically.
//! * The verdict is read like the local judge's: `P(yes) / (P(yes) + P(no))` from the
//!   first answer token's top log-probabilities when the endpoint returns them, else
//!   the answer's text (`Yes`/`No`, or `Verdict: ...` after a rationale) as 1 or 0.
//! * The API key comes from an environment variable, goes only into the
//!   `Authorization` header, and is scrubbed from every error message.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

pub use super::http::Secret;
use super::http::{DiskCache, HttpFailure, RetryPolicy, RetryingClient, run_concurrently};
use super::judge::{
    Judge, JudgeAnswer, JudgeError, JudgeQuery, NO_SPELLINGS, Template, YES_SPELLINGS,
    parse_verdict_text,
};

/// How a [`RemoteJudge`] talks to its endpoint.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// The endpoint: a base URL (`http://host:8000/v1`), to which
    /// `/chat/completions` is appended, or the full chat-completions URL.
    pub url: String,
    /// The model name the endpoint serves.
    pub model: String,
    pub api_key: Option<Secret>,
    pub template: Template,
    /// Ask for a rationale before the verdict.
    pub reason: bool,
    /// Longest rationale, in tokens.
    pub reason_tokens: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Limit for one request, connection included.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff; doubled on each retry, up to `max_backoff`, times a random
    /// factor in [0.5, 1).
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Where answers are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Ask for top log-probabilities (a probability rather than a 0/1 verdict).
    pub logprobs: bool,
}

impl RemoteOptions {
    /// Defaults for everything but the endpoint and the model.
    pub fn new(url: &str, model: &str) -> RemoteOptions {
        RemoteOptions {
            url: url.to_owned(),
            model: model.to_owned(),
            api_key: None,
            template: Template::default(),
            reason: false,
            reason_tokens: 256,
            concurrency: 8,
            timeout: Duration::from_secs(60),
            retries: 5,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            cache_dir: None,
            logprobs: true,
        }
    }
}

/// Request counts of a [`RemoteJudge`], for the run's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteStats {
    /// HTTP requests sent (retries included).
    pub requests: u64,
    /// Requests that were retries.
    pub retries: u64,
    /// Queries answered from the cache.
    pub cache_hits: u64,
    /// Cache files that could not be written (the answers were still used).
    pub cache_write_failures: u64,
}

/// A judge behind an OpenAI-compatible chat-completions endpoint.
pub struct RemoteJudge {
    options: RemoteOptions,
    client: RetryingClient,
    cache: Option<DiskCache>,
}

impl RemoteJudge {
    pub fn new(options: RemoteOptions) -> Result<RemoteJudge, JudgeError> {
        let url = options.url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(JudgeError::Config(format!(
                "--judge-url {url:?} should start with http:// or https://"
            )));
        }
        if options.concurrency == 0 {
            return Err(JudgeError::Config(
                "--judge-concurrency must be at least 1".into(),
            ));
        }
        if options.model.trim().is_empty() {
            return Err(JudgeError::Config(
                "the remote judge needs the model name the endpoint serves (--judge-model)".into(),
            ));
        }
        let endpoint = if url.trim_end_matches('/').ends_with("/chat/completions") {
            url.trim_end_matches('/').to_owned()
        } else {
            format!("{}/chat/completions", url.trim_end_matches('/'))
        };
        let cache =
            match &options.cache_dir {
                Some(dir) => Some(DiskCache::open(dir).map_err(|e| {
                    JudgeError::Config(format!("judge cache {}: {e}", dir.display()))
                })?),
                None => None,
            };
        let client = RetryingClient::new(
            endpoint,
            options.api_key.clone(),
            RetryPolicy {
                timeout: options.timeout,
                retries: options.retries,
                backoff: options.backoff,
                max_backoff: options.max_backoff,
            },
            options.concurrency,
        );
        Ok(RemoteJudge {
            options,
            client,
            cache,
        })
    }

    /// The chat-completions URL requests go to.
    pub fn endpoint(&self) -> &str {
        self.client.url()
    }

    pub fn stats(&self) -> RemoteStats {
        RemoteStats {
            requests: self.client.requests(),
            retries: self.client.retries(),
            cache_hits: self.cache.as_ref().map_or(0, DiskCache::hits),
            cache_write_failures: self.cache.as_ref().map_or(0, DiskCache::write_failures),
        }
    }

    /// The request body for one rendered prompt.
    fn request_body(&self, prompt: &str) -> Value {
        let mut body = json!({
            "model": self.options.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.0,
            "max_tokens": if self.options.reason { self.options.reason_tokens + 8 } else { 4 },
        });
        if self.options.logprobs && !self.options.reason {
            body["logprobs"] = json!(true);
            body["top_logprobs"] = json!(20);
        }
        body
    }

    /// One query: from the cache, else from the endpoint (then cached).
    fn ask(&self, prompt: &str) -> Result<JudgeAnswer, JudgeError> {
        let body = self.request_body(prompt);
        if let Some(cache) = &self.cache
            && let Some(answer) = cache.get(&body, read_answer)
        {
            return Ok(answer);
        }
        let reason = self.options.reason;
        let url = self.endpoint().to_owned();
        let answer = self
            .client
            .post_json(&body, |reply| parse_completion(reply, reason))
            .map_err(|failure| match failure {
                HttpFailure::Down {
                    attempts,
                    last_error,
                } => JudgeError::EndpointDown {
                    url,
                    attempts,
                    last_error,
                },
                HttpFailure::Rejected { status, body } => {
                    JudgeError::Rejected { url, status, body }
                }
                HttpFailure::BadResponse { attempts, detail } => JudgeError::BadResponse {
                    url,
                    attempts,
                    detail,
                },
            })?;
        if let Some(cache) = &self.cache {
            cache.put(&body, answer_json(&answer));
        }
        Ok(answer)
    }
}

impl Judge for RemoteJudge {
    fn judge(&self, queries: &[JudgeQuery<'_>]) -> Result<Vec<JudgeAnswer>, JudgeError> {
        let prompts: Vec<String> = queries
            .iter()
            .map(|q| self.options.template.render(q, self.options.reason))
            .collect();
        // Ask each distinct prompt once.
        let mut unique: Vec<&str> = Vec::new();
        let mut index_of = std::collections::HashMap::new();
        let slots: Vec<usize> = prompts
            .iter()
            .map(|p| {
                *index_of.entry(p.as_str()).or_insert_with(|| {
                    unique.push(p);
                    unique.len() - 1
                })
            })
            .collect();
        let answers = run_concurrently(unique.len(), self.options.concurrency, |i| {
            self.ask(unique[i])
        })?;
        Ok(slots.into_iter().map(|i| answers[i].clone()).collect())
    }

    fn describe(&self) -> String {
        format!("{} at {}", self.options.model, self.endpoint())
    }

    fn writes_rationales(&self) -> bool {
        self.options.reason
    }

    fn stats(&self) -> Option<String> {
        let s = self.stats();
        Some(format!(
            "{} requests ({} retries), {} answers from the cache{}",
            s.requests,
            s.retries,
            s.cache_hits,
            if s.cache_write_failures > 0 {
                format!(
                    ", {} cache files could not be written",
                    s.cache_write_failures
                )
            } else {
                String::new()
            }
        ))
    }
}

/// Reads a chat completion: the verdict from the first answer token's top
/// log-probabilities when present, else from the text.
pub fn parse_completion(reply: &str, reason: bool) -> Result<JudgeAnswer, String> {
    let value: Value = serde_json::from_str(reply).map_err(|e| {
        format!(
            "the body is not JSON ({e}): {}",
            crate::data::truncate(reply.trim(), 200)
        )
    })?;
    let choice = value
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| {
            format!(
                "no `choices` in the answer: {}",
                crate::data::truncate(&value.to_string(), 200)
            )
        })?;
    let text = match choice.pointer("/message/content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => return Err(format!("`message.content` is not text: {other}")),
    };
    if !reason && let Some(probability) = logprob_verdict(choice) {
        return Ok(JudgeAnswer {
            probability: Some(probability.0),
            rationale: None,
            note: None,
            answer_mass: Some(probability.1),
        });
    }
    if choice.pointer("/message").is_none() {
        return Err("the first choice has no `message`".into());
    }
    let verdict = parse_verdict_text(&text);
    let rationale = reason.then(|| {
        let cut = text
            .to_lowercase()
            .rfind("verdict")
            .map_or(text.len(), |at| at);
        text[..cut].trim().to_owned()
    });
    Ok(JudgeAnswer {
        probability: verdict.map(|yes| if yes { 1.0 } else { 0.0 }),
        rationale,
        note: verdict.is_none().then(|| {
            format!(
                "the judge answered {:?}, not yes or no",
                crate::data::truncate(text.trim(), 80)
            )
        }),
        answer_mass: None,
    })
}

/// `(P(yes) / (P(yes) + P(no)), P(yes) + P(no))` from the top log-probabilities of the
/// first answer token that is not blank, if it lists either answer.
fn logprob_verdict(choice: &Value) -> Option<(f32, f32)> {
    let tokens = choice.pointer("/logprobs/content")?.as_array()?;
    let first = tokens.iter().find(|t| {
        t.get("token")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
    })?;
    let top = first.get("top_logprobs")?.as_array()?;
    let (mut yes, mut no) = (0.0f64, 0.0f64);
    for entry in top {
        let (Some(token), Some(logprob)) = (
            entry.get("token").and_then(Value::as_str),
            entry.get("logprob").and_then(Value::as_f64),
        ) else {
            continue;
        };
        if YES_SPELLINGS.contains(&token) {
            yes += logprob.exp();
        } else if NO_SPELLINGS.contains(&token) {
            no += logprob.exp();
        }
    }
    (yes + no > 0.0).then(|| ((yes / (yes + no)) as f32, (yes + no) as f32))
}

fn answer_json(answer: &JudgeAnswer) -> Value {
    json!({
        "probability": answer.probability,
        "rationale": answer.rationale,
        "note": answer.note,
        "answer_mass": answer.answer_mass,
    })
}

/// A cached answer, as [`answer_json`] wrote it.
fn read_answer(answer: &Value) -> Option<JudgeAnswer> {
    let text_of = |k: &str| answer.get(k).and_then(Value::as_str).map(str::to_owned);
    let number_of = |k: &str| answer.get(k).and_then(Value::as_f64).map(|v| v as f32);
    Some(JudgeAnswer {
        probability: number_of("probability"),
        rationale: text_of("rationale"),
        note: text_of("note"),
        answer_mass: number_of("answer_mass"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_are_read_from_logprobs_or_text() {
        let reply = json!({"choices": [{"message": {"content": "Yes"}, "logprobs": {"content": [
            {"token": "\n", "logprob": -0.1, "top_logprobs": []},
            {"token": "Yes", "logprob": -0.3, "top_logprobs": [
                {"token": "Yes", "logprob": (0.6f64).ln()},
                {"token": " yes", "logprob": (0.1f64).ln()},
                {"token": "No", "logprob": (0.2f64).ln()},
                {"token": "Maybe", "logprob": (0.1f64).ln()}]}]}}]});
        let answer = parse_completion(&reply.to_string(), false).unwrap();
        let p = answer.probability.unwrap();
        assert!((p - 0.7 / 0.9).abs() < 1e-6, "{p}");
        assert!((answer.answer_mass.unwrap() - 0.9).abs() < 1e-6);

        let text_only = json!({"choices": [{"message": {"content": "No."}}]});
        let answer = parse_completion(&text_only.to_string(), false).unwrap();
        assert_eq!(answer.probability, Some(0.0));

        let reasoned =
            json!({"choices": [{"message": {"content": "It has two commas.\nVerdict: No"}}]});
        let answer = parse_completion(&reasoned.to_string(), true).unwrap();
        assert_eq!(answer.probability, Some(0.0));
        assert_eq!(answer.rationale.as_deref(), Some("It has two commas."));

        let unsure = json!({"choices": [{"message": {"content": "I cannot tell."}}]});
        let answer = parse_completion(&unsure.to_string(), false).unwrap();
        assert_eq!(answer.probability, None);
        assert!(answer.note.unwrap().contains("not yes or no"));

        assert!(
            parse_completion("<html>502</html>", false)
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            parse_completion("{\"error\": \"x\"}", false)
                .unwrap_err()
                .contains("no `choices`")
        );
    }

    #[test]
    fn secrets_never_print() {
        let key = Secret::new("sk-very-secret");
        assert_eq!(format!("{key:?} {key}"), "<redacted> <redacted>");
        assert_eq!(
            key.scrub("Bearer sk-very-secret is invalid"),
            "Bearer <redacted> is invalid"
        );
        let mut options = RemoteOptions::new("http://127.0.0.1:9/v1", "m");
        options.api_key = Some(key);
        assert!(!format!("{options:?}").contains("sk-very-secret"));
    }

    #[test]
    fn endpoints_and_cache_names() {
        let judge = RemoteJudge::new(RemoteOptions::new("http://127.0.0.1:9/v1/", "m")).unwrap();
        assert_eq!(judge.endpoint(), "http://127.0.0.1:9/v1/chat/completions");
        let judge = RemoteJudge::new(RemoteOptions::new(
            "https://api.example.com/v1/chat/completions",
            "m",
        ))
        .unwrap();
        assert_eq!(
            judge.endpoint(),
            "https://api.example.com/v1/chat/completions"
        );
        assert!(RemoteJudge::new(RemoteOptions::new("localhost:8000", "m")).is_err());
        use crate::verify::http::cache_name;
        let a = cache_name(&json!({"model": "m", "x": 1}));
        assert_eq!(a, cache_name(&json!({"model": "m", "x": 1})));
        assert_ne!(a, cache_name(&json!({"model": "m", "x": 2})));
        assert_eq!(a.len(), 32 + 5);
    }
}
