//! What every JSON-over-HTTP endpoint rmtk calls shares: the remote judge
//! ([`super::remote`]) and GRPO's reward endpoint (`crate::grpo::reward_url`).
//!
//! * [`RetryingClient`]: a blocking `ureq` client with a timeout per request; connection
//!   failures, timeouts, HTTP 429 and 5xx and answers its parser rejects are retried
//!   with exponential backoff and jitter (honouring `Retry-After`); other 4xx answers
//!   are not retried. The API key goes only into the `Authorization` header and is
//!   scrubbed from every error message.
//! * [`DiskCache`]: answers on disk, one file per request, named by a hash of the
//!   request and holding the request itself (a hash collision is a miss, not a wrong
//!   answer); written atomically.
//! * [`run_concurrently`]: jobs on at most `concurrency` threads, none started once
//!   one has failed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};

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

    pub(crate) fn expose(&self) -> &str {
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

/// How a [`RetryingClient`] retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Limit for one request, connection included.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff; doubled on each retry, up to `max_backoff`, times a random
    /// factor in [0.5, 1).
    pub backoff: Duration,
    pub max_backoff: Duration,
}

/// Why a request failed for good (every text already scrubbed of the API key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFailure {
    /// Unreachable, timed out, or 429/5xx through every attempt.
    Down { attempts: u32, last_error: String },
    /// A 4xx other than 429: not retried.
    Rejected { status: u16, body: String },
    /// Answered, but the parser rejected the answer through every attempt.
    BadResponse { attempts: u32, detail: String },
}

/// One failed attempt.
enum Failure {
    /// Worth retrying: connection, timeout, 429, 5xx.
    Transient(String, Option<Duration>),
    /// The body was not what the parser expects (also retried).
    Malformed(String),
    /// A 4xx other than 429.
    Refused(u16, String),
}

/// A JSON POST client with retries (see the module's documentation).
pub struct RetryingClient {
    url: String,
    api_key: Option<Secret>,
    policy: RetryPolicy,
    agent: ureq::Agent,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl RetryingClient {
    /// A client for `url`, keeping up to `connections` idle connections.
    pub fn new(
        url: String,
        api_key: Option<Secret>,
        policy: RetryPolicy,
        connections: usize,
    ) -> RetryingClient {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(policy.timeout.min(Duration::from_secs(30)))
            .timeout(policy.timeout)
            .max_idle_connections_per_host(connections.max(1))
            .build();
        RetryingClient {
            url,
            api_key,
            policy,
            agent,
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// HTTP requests sent (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests that were retries.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub fn scrub(&self, text: &str) -> String {
        match &self.api_key {
            Some(key) => key.scrub(text),
            None => text.to_owned(),
        }
    }

    /// POSTs `body` until `parse` accepts a 2xx answer's text or the retries run out.
    pub fn post_json<T>(
        &self,
        body: &Value,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, HttpFailure> {
        let text = serde_json::to_string(body).expect("JSON values serialize");
        let attempts = self.policy.retries + 1;
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
                Ok(reply) => match parse(&reply) {
                    Ok(answer) => return Ok(answer),
                    Err(detail) => Failure::Malformed(detail),
                },
                Err(Failure::Refused(status, body)) => {
                    return Err(HttpFailure::Rejected {
                        status,
                        body: self.scrub(&body),
                    });
                }
                Err(other) => other,
            };
        }
        Err(match last {
            Failure::Malformed(detail) => HttpFailure::BadResponse {
                attempts,
                detail: self.scrub(&detail),
            },
            Failure::Transient(error, _) | Failure::Refused(_, error) => HttpFailure::Down {
                attempts,
                last_error: self.scrub(&error),
            },
        })
    }

    /// How long to wait before retry `attempt` (1-based).
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .policy
            .backoff
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.policy.max_backoff);
        let jittered = exp.mul_f64(rand::rng().random_range(0.5..1.0));
        match retry_after {
            Some(wait) => wait.min(self.policy.max_backoff).max(jittered),
            None => jittered,
        }
    }

    /// One HTTP attempt: the body of a 2xx answer, or why not.
    fn post(&self, body: &str) -> Result<String, Failure> {
        let mut request = self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
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

/// Answers cached on disk by request (see the module's documentation).
pub struct DiskCache {
    dir: PathBuf,
    hits: AtomicU64,
    write_failures: AtomicU64,
}

impl DiskCache {
    /// Creates `dir` if needed.
    pub fn open(dir: &Path) -> std::io::Result<DiskCache> {
        std::fs::create_dir_all(dir)?;
        Ok(DiskCache {
            dir: dir.to_path_buf(),
            hits: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
        })
    }

    /// Requests answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Files that could not be written (the answers were still used).
    pub fn write_failures(&self) -> u64 {
        self.write_failures.load(Ordering::Relaxed)
    }

    /// The answer stored for exactly this request, if `read` accepts it.
    pub fn get<T>(&self, request: &Value, read: impl Fn(&Value) -> Option<T>) -> Option<T> {
        let text = std::fs::read_to_string(self.dir.join(cache_name(request))).ok()?;
        let record: Value = serde_json::from_str(&text).ok()?;
        if record.get("request")? != request {
            return None;
        }
        let answer = read(record.get("answer")?)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(answer)
    }

    pub fn put(&self, request: &Value, answer: Value) {
        let record = json!({"request": request, "answer": answer});
        let bytes = serde_json::to_vec_pretty(&record).expect("JSON values serialize");
        if crate::util::write_atomic(&self.dir.join(cache_name(request)), &bytes).is_err() {
            self.write_failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The cache file name of a request: a 128-bit hash of its JSON text. The file also
/// holds the request, so a collision is only a miss.
pub fn cache_name(body: &Value) -> String {
    let text = serde_json::to_string(body).expect("JSON values serialize");
    format!("{}.json", crate::util::fnv128_hex(text.as_bytes()))
}

/// `~/.cache/rmtk/NAME` (or `$XDG_CACHE_HOME/rmtk/NAME`; `.rmtk-NAME-cache` when
/// neither is set).
pub fn default_cache_dir(name: &str) -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .map(|base| base.join("rmtk").join(name))
        .unwrap_or_else(|| PathBuf::from(format!(".rmtk-{name}-cache")))
}

/// `job(i)` for every `i < jobs` on at most `concurrency` threads, the results in
/// order. Once a job has failed no new one starts, and the first failure (in job
/// order) is returned.
pub fn run_concurrently<T: Send, E: Send>(
    jobs: usize,
    concurrency: usize,
    job: impl Fn(usize) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let results: Mutex<Vec<Option<Result<T, E>>>> = Mutex::new((0..jobs).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = concurrency.max(1).min(jobs);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    // Once one job has failed for good, start no new ones.
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        break;
                    }
                    let result = job(i);
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().expect("no worker panics while holding it")[i] = Some(result);
                }
            });
        }
    });
    let results = results.into_inner().expect("the workers are done");
    let mut out = Vec::with_capacity(jobs);
    let mut first_error = None;
    for result in results {
        match result {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) if first_error.is_none() => first_error = Some(e),
            // A later failure, or not run because another job failed: the first
            // failure is returned.
            Some(Err(_)) | None => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            assert_eq!(out.len(), jobs, "a job that did not fail went unrun");
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_in_order_and_stop_at_a_failure() {
        let out = run_concurrently(10, 3, |i| Ok::<_, String>(i * 2)).unwrap();
        assert_eq!(out, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        assert!(run_concurrently(0, 3, Ok::<_, String>).unwrap().is_empty());
        let err = run_concurrently(10, 1, |i| {
            if i >= 4 {
                Err(format!("job {i}"))
            } else {
                Ok(i)
            }
        })
        .unwrap_err();
        // One thread: job 4 fails, none after it starts.
        assert_eq!(err, "job 4");
    }

    #[test]
    fn the_cache_holds_exactly_its_request() {
        let dir = std::env::temp_dir().join(format!("rmtk-http-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = DiskCache::open(&dir).unwrap();
        let request = json!({"query": ["a"]});
        assert_eq!(cache.get(&request, |v| v.as_f64()), None);
        cache.put(&request, json!(1.5));
        assert_eq!(cache.get(&request, |v| v.as_f64()), Some(1.5));
        assert_eq!(cache.get(&json!({"query": ["b"]}), |v| v.as_f64()), None);
        assert_eq!(cache.hits(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn backoff_grows_within_its_bounds() {
        let client = RetryingClient::new(
            "http://127.0.0.1:9/".into(),
            None,
            RetryPolicy {
                timeout: Duration::from_secs(1),
                retries: 5,
                backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(350),
            },
            1,
        );
        for (attempt, full) in [(1, 100), (2, 200), (3, 350), (9, 350)] {
            let wait = client.backoff(attempt, None);
            let full = Duration::from_millis(full);
            assert!(wait >= full / 2 && wait < full, "{attempt}: {wait:?}");
        }
        // Retry-After wins when longer, but never past the cap.
        assert_eq!(
            client.backoff(1, Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
        assert_eq!(
            client.backoff(1, Some(Duration::from_secs(9))),
            Duration::from_millis(350)
        );
    }
}
