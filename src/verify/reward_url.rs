//! Rewards from an HTTP endpoint of your own, in the shape of OpenRLHF's
//! `--remote_rm_url`, so an OpenRLHF reward server works unchanged: the writing reward
//! of `rmtk grpo --reward-url`, and the score of a rubric item whose `check` is a URL
//! ([`super::rubric`]).
//!
//! Request (POST, JSON), one per batch of `--reward-batch-size` completions:
//! `{"query": [prompt + completion, ...], "prompts": [prompt, ...], "labels": [label, ...],
//! "responses": [completion, ...]}`; for GRPO's writing reward the prompt is the one the
//! policy saw (its chat template applied) and the label is empty, for a rubric item the
//! label is the item's criterion; `responses` is rmtk's addition (servers that ignore it
//! are unaffected).
//! Answer: `{"rewards": [r, ...]}`, one number per query, in order (other keys, such as
//! OpenRLHF's `scores` and `extra_logs`, are ignored).
//!
//! Timeouts, retries with backoff and jitter, the on-disk cache (keyed by URL and
//! request), concurrency and the API key are the remote judge's
//! ([`crate::verify::http`]). A reward that is not a finite number is an error naming
//! the completion, not retried; an endpoint still down after its retries is
//! [`RewardError::EndpointDown`], on which the trainer stops with its checkpoint intact.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

use serde_json::{Value, json};

use crate::verify::http::{
    DiskCache, HttpFailure, RetryPolicy, RetryingClient, Secret, run_concurrently,
};

/// How [`RemoteReward`] talks to its endpoint.
#[derive(Debug, Clone)]
pub struct RewardUrlOptions {
    /// The full URL requests are POSTed to (`http://host:5000/get_reward`).
    pub url: String,
    pub api_key: Option<Secret>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Completions per request.
    pub batch_size: usize,
    pub timeout: Duration,
    pub retries: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Where answers are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

impl RewardUrlOptions {
    /// Defaults for everything but the endpoint.
    pub fn new(url: &str) -> RewardUrlOptions {
        RewardUrlOptions {
            url: url.to_owned(),
            api_key: None,
            concurrency: 4,
            batch_size: 16,
            timeout: Duration::from_secs(120),
            retries: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            cache_dir: None,
        }
    }
}

/// The endpoint options on the command line (the URL checks of rubrics, in `rmtk
/// verify` and `rmtk grpo`, and `rmtk grpo --reward-url`).
#[derive(Debug, Clone, clap::Args)]
pub struct RewardArgs {
    /// Reward endpoints (rubric URL checks; rmtk grpo's --reward-url): seconds allowed
    /// for one request.
    #[arg(long, default_value_t = 120.0)]
    pub reward_timeout: f64,
    /// Reward endpoints: retries after a failed request (connection errors, timeouts,
    /// HTTP 429 and 5xx, unreadable answers), with exponential backoff and jitter.
    #[arg(long, default_value_t = 5)]
    pub reward_retries: u32,
    /// Reward endpoints: first backoff in seconds (doubled per retry, at most 60 s).
    #[arg(long, default_value_t = 1.0)]
    pub reward_backoff: f64,
    /// Reward endpoints: requests in flight at once (per endpoint).
    #[arg(long, default_value_t = 4)]
    pub reward_concurrency: usize,
    /// Reward endpoints: completions per request.
    #[arg(long, default_value_t = 16)]
    pub reward_batch_size: usize,
    /// Reward endpoints: the answer cache folder (default: ~/.cache/rmtk/reward).
    #[arg(long)]
    pub reward_cache: Option<PathBuf>,
    /// Reward endpoints: don't read or write the answer cache.
    #[arg(long, conflicts_with = "reward_cache")]
    pub no_reward_cache: bool,
    /// Reward endpoints: the environment variable holding the API key, sent as
    /// `Authorization: Bearer KEY` when set (never printed) to --reward-url and to the
    /// rubric URLs of the origins given with --reward-key-origin.
    #[arg(long, default_value = "REWARD_API_KEY")]
    pub reward_api_key_env: String,
    /// An origin (`https://host:port`) whose rubric URLs get the API key; repeatable.
    /// Rubric URLs come from the data, so none gets the key unless its origin is named.
    #[arg(long = "reward-key-origin", value_name = "ORIGIN")]
    pub reward_key_origins: Vec<String>,
}

/// A URL's origin, `scheme://host[:port]`, lowercased.
pub fn origin(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{}://{}", scheme.to_lowercase(), host.to_lowercase())
}

impl RewardArgs {
    /// Checks what needs no network.
    pub fn validate(&self) -> Result<()> {
        if self.reward_concurrency == 0 || self.reward_batch_size == 0 {
            bail!("--reward-concurrency and --reward-batch-size must be at least 1");
        }
        if !(self.reward_timeout.is_finite() && self.reward_timeout > 0.0) {
            bail!("--reward-timeout must be a positive number of seconds");
        }
        if !(self.reward_backoff.is_finite() && self.reward_backoff >= 0.0) {
            bail!("--reward-backoff must be a number of seconds >= 0");
        }
        Ok(())
    }

    /// The options of an endpoint named in the data (a rubric URL): the API key only
    /// when its origin was named with --reward-key-origin.
    pub fn data_url_options(&self, url: &str) -> RewardUrlOptions {
        let mut options = self.options(url);
        let wanted = origin(url);
        if !self
            .reward_key_origins
            .iter()
            .any(|o| origin(o.trim_end_matches('/')) == wanted)
        {
            options.api_key = None;
        }
        options
    }

    /// Whether rubric URLs of `url`'s origin get the API key.
    pub fn key_goes_to(&self, url: &str) -> bool {
        self.data_url_options(url).api_key.is_some()
    }

    /// The options of an endpoint at `url` given on the command line (the API key
    /// read from its variable).
    pub fn options(&self, url: &str) -> RewardUrlOptions {
        RewardUrlOptions {
            api_key: Secret::from_env(&self.reward_api_key_env),
            concurrency: self.reward_concurrency,
            batch_size: self.reward_batch_size,
            timeout: Duration::from_secs_f64(self.reward_timeout),
            retries: self.reward_retries,
            backoff: Duration::from_secs_f64(self.reward_backoff),
            max_backoff: Duration::from_secs(60),
            cache_dir: if self.no_reward_cache {
                None
            } else {
                Some(match &self.reward_cache {
                    Some(dir) => dir.clone(),
                    None => crate::verify::http::default_cache_dir("reward"),
                })
            },
            ..RewardUrlOptions::new(url)
        }
    }
}

impl Default for RewardArgs {
    /// The command line's defaults, without a cache.
    fn default() -> RewardArgs {
        RewardArgs {
            reward_timeout: 120.0,
            reward_retries: 5,
            reward_backoff: 1.0,
            reward_concurrency: 4,
            reward_batch_size: 16,
            reward_cache: None,
            no_reward_cache: true,
            reward_api_key_env: "REWARD_API_KEY".into(),
            reward_key_origins: Vec::new(),
        }
    }
}

/// Why the endpoint gave no rewards (every text scrubbed of the API key).
#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    /// Unreachable, timed out, or 429/5xx through every retry: stop, resume later.
    #[error(
        "reward endpoint {url} is down: {attempts} attempts failed, the last with: {last_error}"
    )]
    EndpointDown {
        url: String,
        attempts: u32,
        last_error: String,
    },
    /// A 4xx other than 429 (not retried).
    #[error("reward endpoint {url} refused the request with HTTP {status}: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    /// Answers without a usable `rewards` list through every retry.
    #[error("reward endpoint {url} sent no usable answer in {attempts} attempts: {detail}")]
    BadResponse {
        url: String,
        attempts: u32,
        detail: String,
    },
    /// A reward that is not a finite number (not retried: the function gave it).
    #[error("reward endpoint {url}: the reward of {item} is {value}, not a finite number")]
    NotFinite {
        url: String,
        item: String,
        value: String,
    },
    #[error("{0}")]
    Config(String),
}

impl RewardError {
    /// True when the endpoint could not be reached through its retries.
    pub fn is_endpoint_down(&self) -> bool {
        matches!(self, RewardError::EndpointDown { .. })
    }
}

/// One completion to score.
#[derive(Debug, Clone)]
pub struct RewardItem<'a> {
    /// The prompt as the policy saw it.
    pub prompt: &'a str,
    pub response: &'a str,
    /// OpenRLHF's label: empty for the writing reward, the criterion for a rubric item.
    pub label: &'a str,
    /// How errors name it (`completion 2 of prompt data.jsonl:7`).
    pub name: String,
}

/// The writing reward behind an HTTP endpoint.
pub struct RemoteReward {
    options: RewardUrlOptions,
    client: RetryingClient,
    cache: Option<DiskCache>,
}

impl RemoteReward {
    pub fn new(options: RewardUrlOptions) -> Result<RemoteReward, RewardError> {
        let url = options.url.trim().to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(RewardError::Config(format!(
                "--reward-url {url:?} should start with http:// or https://"
            )));
        }
        if options.concurrency == 0 || options.batch_size == 0 {
            return Err(RewardError::Config(
                "--reward-concurrency and --reward-batch-size must be at least 1".into(),
            ));
        }
        let cache = match &options.cache_dir {
            Some(dir) => Some(DiskCache::open(dir).map_err(|e| {
                RewardError::Config(format!("--reward-cache {}: {e}", dir.display()))
            })?),
            None => None,
        };
        let client = RetryingClient::new(
            url,
            options.api_key.clone(),
            RetryPolicy {
                timeout: options.timeout,
                retries: options.retries,
                backoff: options.backoff,
                max_backoff: options.max_backoff,
            },
            options.concurrency,
        );
        Ok(RemoteReward {
            options,
            client,
            cache,
        })
    }

    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// `(requests, retries, cache hits)`.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.client.requests(),
            self.client.retries(),
            self.cache.as_ref().map_or(0, DiskCache::hits),
        )
    }

    /// The request counts, for the run's log.
    pub fn describe_stats(&self) -> String {
        let (requests, retries, hits) = self.counts();
        format!("{requests} requests ({retries} retries), {hits} batches from the cache")
    }

    /// One reward per item, in order.
    pub fn score(&self, items: &[RewardItem<'_>]) -> Result<Vec<f64>, RewardError> {
        let batches: Vec<&[RewardItem<'_>]> = items.chunks(self.options.batch_size).collect();
        let scored = run_concurrently(batches.len(), self.options.concurrency, |b| {
            self.score_batch(batches[b])
        })?;
        Ok(scored.into_iter().flatten().collect())
    }

    fn score_batch(&self, items: &[RewardItem<'_>]) -> Result<Vec<f64>, RewardError> {
        let body = request_body(items);
        // The URL is part of the key: two reward functions never share answers.
        let key = json!({"url": self.url(), "body": body});
        if let Some(cache) = &self.cache
            && let Some(rewards) = cache.get(&key, |answer| read_cached(answer, items.len()))
        {
            return Ok(rewards);
        }
        let n = items.len();
        let url = self.url().to_owned();
        let values = self
            .client
            .post_json(&body, |reply| parse_rewards(reply, n))
            .map_err(|failure| match failure {
                HttpFailure::Down {
                    attempts,
                    last_error,
                } => RewardError::EndpointDown {
                    url: url.clone(),
                    attempts,
                    last_error,
                },
                HttpFailure::Rejected { status, body } => RewardError::Rejected {
                    url: url.clone(),
                    status,
                    body,
                },
                HttpFailure::BadResponse { attempts, detail } => RewardError::BadResponse {
                    url: url.clone(),
                    attempts,
                    detail,
                },
            })?;
        let mut rewards = Vec::with_capacity(n);
        for (value, item) in values.iter().zip(items) {
            match value.as_f64().filter(|v| v.is_finite()) {
                Some(v) => rewards.push(v),
                None => {
                    return Err(RewardError::NotFinite {
                        url,
                        item: item.name.clone(),
                        value: self
                            .client
                            .scrub(&crate::data::truncate(&value.to_string(), 80)),
                    });
                }
            }
        }
        if let Some(cache) = &self.cache {
            cache.put(&key, json!(rewards));
        }
        Ok(rewards)
    }
}

/// OpenRLHF's request for a batch, plus the completions alone.
pub fn request_body(items: &[RewardItem<'_>]) -> Value {
    json!({
        "query": items.iter().map(|i| format!("{}{}", i.prompt, i.response)).collect::<Vec<_>>(),
        "prompts": items.iter().map(|i| i.prompt).collect::<Vec<_>>(),
        "labels": items.iter().map(|i| i.label).collect::<Vec<_>>(),
        "responses": items.iter().map(|i| i.response).collect::<Vec<_>>(),
    })
}

/// The `rewards` of an answer: `n` values, numbers or not (the caller names the items
/// that are not finite numbers). Python's `json.dumps` writes `NaN` and `Infinity`,
/// which JSON lacks: they are read as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn parse_rewards(reply: &str, n: usize) -> Result<Vec<Value>, String> {
    let value: Value = serde_json::from_str(&quote_non_finite(reply)).map_err(|e| {
        format!(
            "the body is not JSON ({e}): {}",
            crate::data::truncate(reply.trim(), 200)
        )
    })?;
    let rewards = value
        .get("rewards")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            format!(
                "no `rewards` list in the answer: {}",
                crate::data::truncate(&value.to_string(), 200)
            )
        })?;
    if rewards.len() != n {
        return Err(format!(
            "{} rewards for {n} queries: {}",
            rewards.len(),
            crate::data::truncate(&value.to_string(), 200)
        ));
    }
    Ok(rewards.clone())
}

/// `text` with the bare tokens `NaN`, `Infinity` and `-Infinity` (outside strings)
/// quoted.
fn quote_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if let Some(token) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t))
        {
            out.push('"');
            out.push_str(token);
            out.push('"');
            rest = &rest[token.len()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn read_cached(answer: &Value, n: usize) -> Option<Vec<f64>> {
    let rewards: Vec<f64> = answer
        .as_array()?
        .iter()
        .map(|v| v.as_f64().filter(|v| v.is_finite()))
        .collect::<Option<_>>()?;
    (rewards.len() == n).then_some(rewards)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item<'a>(prompt: &'a str, response: &'a str) -> RewardItem<'a> {
        RewardItem {
            prompt,
            response,
            label: "",
            name: format!("completion {response}"),
        }
    }

    #[test]
    fn the_request_is_openrlhfs_shape() {
        let body = request_body(&[item("<u>Hi</u>", "Hello"), item("<u>Hi</u>", "Hey")]);
        assert_eq!(
            body,
            json!({"query": ["<u>Hi</u>Hello", "<u>Hi</u>Hey"], "prompts": ["<u>Hi</u>", "<u>Hi</u>"],
                "labels": ["", ""], "responses": ["Hello", "Hey"]})
        );
    }

    #[test]
    fn answers_are_read_strictly() {
        let ok = parse_rewards(
            r#"{"rewards": [0.5, -1], "scores": [0.5, -1], "extra_logs": {}}"#,
            2,
        )
        .unwrap();
        assert_eq!(ok, vec![json!(0.5), json!(-1)]);
        assert!(
            parse_rewards("<html>502</html>", 1)
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            parse_rewards(r#"{"score": [1]}"#, 1)
                .unwrap_err()
                .contains("no `rewards`")
        );
        assert!(
            parse_rewards(r#"{"rewards": [1]}"#, 2)
                .unwrap_err()
                .contains("1 rewards for 2")
        );
        // Python's json.dumps(float("nan")): read, then refused by the caller by item.
        let odd = parse_rewards(r#"{"rewards": [NaN, -Infinity, "NaN text", null]}"#, 4).unwrap();
        assert_eq!(odd[0], json!("NaN"));
        assert_eq!(odd[1], json!("-Infinity"));
        assert_eq!(odd[2], json!("NaN text"));
        assert!(odd.iter().all(|v| v.as_f64().is_none()));
    }

    #[test]
    fn non_finite_tokens_are_quoted_only_outside_strings() {
        assert_eq!(
            quote_non_finite(r#"{"a": "x\"NaN", "b": [Infinity, NaN]}"#),
            r#"{"a": "x\"NaN", "b": ["Infinity", "NaN"]}"#
        );
    }

    #[test]
    fn the_key_goes_only_to_named_origins() {
        assert_eq!(
            origin("HTTPS://Example.org:8443/x/y?q"),
            "https://example.org:8443"
        );
        assert_eq!(origin("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
        let env = "RMTK_TEST_REWARD_KEY_ORIGINS";
        // SAFETY: the variable is unique to this test; no other thread reads it.
        unsafe { std::env::set_var(env, "sk-secret") };
        let args = RewardArgs {
            reward_api_key_env: env.into(),
            reward_key_origins: vec!["https://grader.example.org/".into()],
            ..RewardArgs::default()
        };
        assert!(
            args.options("http://anywhere:1/").api_key.is_some(),
            "typed by the user"
        );
        assert!(args.key_goes_to("https://grader.example.org/score"));
        assert!(!args.key_goes_to("https://grader.example.org:444/score"));
        assert!(!args.key_goes_to("http://grader.example.org/score"));
        assert!(!args.key_goes_to("https://evil.example.com/?https://grader.example.org"));
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(RemoteReward::new(RewardUrlOptions::new("localhost:5000")).is_err());
        let mut o = RewardUrlOptions::new("http://127.0.0.1:9/get_reward");
        o.batch_size = 0;
        assert!(RemoteReward::new(o).is_err());
        let mut o = RewardUrlOptions::new("http://127.0.0.1:9/get_reward");
        o.api_key = Some(Secret::new("sk-secret"));
        assert!(!format!("{o:?}").contains("sk-secret"));
    }

    #[test]
    fn an_endpoint_that_is_down_is_told_apart() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut o = RewardUrlOptions::new(&format!("http://{addr}/get_reward"));
        o.retries = 1;
        o.backoff = Duration::from_millis(1);
        o.timeout = Duration::from_secs(2);
        let reward = RemoteReward::new(o).unwrap();
        let err = reward.score(&[item("p", "r")]).unwrap_err();
        assert!(err.is_endpoint_down(), "{err}");
        assert!(err.to_string().contains("2 attempts"), "{err}");
        assert_eq!(reward.counts(), (2, 1, 0));
    }
}
