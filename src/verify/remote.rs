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

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};

use super::judge::{
    Judge, JudgeAnswer, JudgeError, JudgeQuery, NO_SPELLINGS, Template, YES_SPELLINGS,
    parse_verdict_text,
};

/// A secret that never prints: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Reads the secret from environment variable `name`; `None` when unset or empty.
    pub fn from_env(name: &str) -> Option<Secret> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| Secret(v.trim().to_owned()))
    }

    fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced by `<redacted>`.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "<redacted>")
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

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
    endpoint: String,
    agent: ureq::Agent,
    requests: AtomicU64,
    retries: AtomicU64,
    cache_hits: AtomicU64,
    cache_write_failures: AtomicU64,
}

/// One failed attempt.
enum Failure {
    /// Worth retrying: connection, timeout, 429, 5xx.
    Transient(String, Option<Duration>),
    /// The body was not a chat completion (also retried).
    Malformed(String),
    /// A 4xx other than 429.
    Refused(u16, String),
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
        if let Some(dir) = &options.cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| JudgeError::Config(format!("judge cache {}: {e}", dir.display())))?;
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(options.timeout.min(Duration::from_secs(30)))
            .timeout(options.timeout)
            .max_idle_connections_per_host(options.concurrency)
            .build();
        Ok(RemoteJudge {
            options,
            endpoint,
            agent,
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_write_failures: AtomicU64::new(0),
        })
    }

    /// The chat-completions URL requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn stats(&self) -> RemoteStats {
        RemoteStats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            cache_write_failures: self.cache_write_failures.load(Ordering::Relaxed),
        }
    }

    fn scrub(&self, text: &str) -> String {
        match &self.options.api_key {
            Some(key) => key.scrub(text),
            None => text.to_owned(),
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
        let cache = self
            .options
            .cache_dir
            .as_deref()
            .map(|dir| (dir, cache_name(&body)));
        if let Some((dir, name)) = &cache
            && let Some(answer) = read_cached(&dir.join(name), &body)
        {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(answer);
        }
        let answer = self.post_with_retries(&body)?;
        if let Some((dir, name)) = &cache {
            let record = json!({"request": body, "answer": answer_json(&answer)});
            let bytes = serde_json::to_vec_pretty(&record).expect("JSON values serialize");
            if crate::util::write_atomic(&dir.join(name), &bytes).is_err() {
                self.cache_write_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(answer)
    }

    fn post_with_retries(&self, body: &Value) -> Result<JudgeAnswer, JudgeError> {
        let text = serde_json::to_string(body).expect("JSON values serialize");
        let attempts = self.options.retries + 1;
        let mut last = Failure::Transient(String::new(), None);
        for attempt in 0..attempts {
            if attempt > 0 {
                self.retries.fetch_add(1, Ordering::Relaxed);
                let hint = match &last {
                    Failure::Transient(_, hint) => *hint,
                    _ => None,
                };
                std::thread::sleep(self.backoff(attempt, hint));
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            last = match self.post(&text) {
                Ok(reply) => match parse_completion(&reply, self.options.reason) {
                    Ok(answer) => return Ok(answer),
                    Err(detail) => Failure::Malformed(detail),
                },
                Err(Failure::Refused(status, body)) => {
                    return Err(JudgeError::Rejected {
                        url: self.endpoint.clone(),
                        status,
                        body: self.scrub(&body),
                    });
                }
                Err(other) => other,
            };
        }
        Err(match last {
            Failure::Malformed(detail) => JudgeError::BadResponse {
                url: self.endpoint.clone(),
                attempts,
                detail: self.scrub(&detail),
            },
            Failure::Transient(error, _) | Failure::Refused(_, error) => JudgeError::EndpointDown {
                url: self.endpoint.clone(),
                attempts,
                last_error: self.scrub(&error),
            },
        })
    }

    /// How long to wait before retry `attempt` (1-based).
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .options
            .backoff
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.options.max_backoff);
        let jittered = exp.mul_f64(rand::rng().random_range(0.5..1.0));
        match retry_after {
            Some(wait) => wait.min(self.options.max_backoff).max(jittered),
            None => jittered,
        }
    }

    /// One HTTP attempt: the body of a 2xx answer, or why not.
    fn post(&self, body: &str) -> Result<String, Failure> {
        let mut request = self
            .agent
            .post(&self.endpoint)
            .set("Content-Type", "application/json");
        if let Some(key) = &self.options.api_key {
            request = request.set("Authorization", &format!("Bearer {}", key.expose()));
        }
        match request.send_string(body) {
            Ok(response) => response
                .into_string()
                .map_err(|e| Failure::Transient(format!("reading the answer: {e}"), None)),
            Err(ureq::Error::Status(status, response)) => {
                let retry_after = response
                    .header("retry-after")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64);
                let body = response.into_string().unwrap_or_default();
                let body = crate::data::truncate(body.trim(), 300);
                if status == 429 || status >= 500 {
                    Err(Failure::Transient(
                        format!("HTTP {status}: {body}"),
                        retry_after,
                    ))
                } else {
                    Err(Failure::Refused(status, body))
                }
            }
            Err(ureq::Error::Transport(transport)) => {
                Err(Failure::Transient(transport.to_string(), None))
            }
        }
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
        let results: Mutex<Vec<Option<Result<JudgeAnswer, JudgeError>>>> =
            Mutex::new(vec![None; unique.len()]);
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let workers = self.options.concurrency.min(unique.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        // Once one query has failed for good, start no new ones.
                        if failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(prompt) = unique.get(i) else { break };
                        let result = self.ask(prompt);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        results.lock().expect("no worker panics while holding it")[i] =
                            Some(result);
                    }
                });
            }
        });
        let results = results.into_inner().expect("the workers are done");
        let mut answers = Vec::with_capacity(unique.len());
        for result in results {
            match result {
                Some(Ok(answer)) => answers.push(answer),
                Some(Err(e)) => return Err(e),
                // Not asked because another query failed: that failure is returned.
                None => {}
            }
        }
        if answers.len() < unique.len() {
            // Unreachable in practice (a missing answer means an error was stored),
            // kept as an error rather than a panic.
            return Err(JudgeError::Config("a judge query went unanswered".into()));
        }
        Ok(slots.into_iter().map(|i| answers[i].clone()).collect())
    }

    fn describe(&self) -> String {
        format!("{} at {}", self.options.model, self.endpoint)
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

/// A cached answer, if the file exists and holds exactly this request.
fn read_cached(path: &Path, body: &Value) -> Option<JudgeAnswer> {
    let text = std::fs::read_to_string(path).ok()?;
    let record: Value = serde_json::from_str(&text).ok()?;
    if record.get("request")? != body {
        return None;
    }
    let answer = record.get("answer")?;
    let text_of = |k: &str| answer.get(k).and_then(Value::as_str).map(str::to_owned);
    let number_of = |k: &str| answer.get(k).and_then(Value::as_f64).map(|v| v as f32);
    Some(JudgeAnswer {
        probability: number_of("probability"),
        rationale: text_of("rationale"),
        note: text_of("note"),
        answer_mass: number_of("answer_mass"),
    })
}

/// The cache file name of a request: a 128-bit hash of its JSON text. The file also
/// holds the request, so a collision is only a miss.
fn cache_name(body: &Value) -> String {
    let text = serde_json::to_string(body).expect("JSON values serialize");
    format!("{}.json", crate::util::fnv128_hex(text.as_bytes()))
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
        let a = cache_name(&json!({"model": "m", "x": 1}));
        assert_eq!(a, cache_name(&json!({"model": "m", "x": 1})));
        assert_ne!(a, cache_name(&json!({"model": "m", "x": 2})));
        assert_eq!(a.len(), 32 + 5);
    }
}
