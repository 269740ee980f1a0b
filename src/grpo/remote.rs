//! Rollouts from an OpenAI-compatible server (vLLM, SGLang, `rmtk serve`) instead of
//! the trainer's own decoder.
//!
//! Each prompt group is one `POST {url}/completions` with the prompt as token ids (the
//! chat template already applied), `n` completions, the run's sampling settings,
//! `logprobs: 0` (the sampled tokens' log-probabilities) and `return_token_ids`. Its
//! `seed` is the run's seed and `seed_stream` (rmtk's extension) the group's first
//! random stream, so `rmtk serve` samples completion `s` from exactly the stream a
//! local rollout would use; other servers ignore the extension and sample from the
//! seed.
//!
//! The policy reaches the server as a LoRA adapter: after every update the trainer
//! saves it under `--rollout-adapter-dir` (the server must be able to read that path)
//! and loads it with vLLM's `POST {url}/load_lora_adapter` under a new name,
//! `rmtk-policy-v{version}`, then unloads versions no rollout can still use. Full-weight
//! sync is not supported.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::rollout::{Group, RolloutSeed};
use crate::models::generate::{Completion, FinishReason, SamplingParams};
use crate::verify::http::{HttpFailure, RetryPolicy, RetryingClient, Secret, run_concurrently};

/// `rmtk grpo`'s options for rollouts from a server.
#[derive(Debug, Clone, clap::Args)]
pub struct RolloutArgs {
    /// An OpenAI-compatible server that generates the rollouts (vLLM, SGLang, `rmtk
    /// serve`), e.g. http://127.0.0.1:8000/v1; needs LoRA (--lora-r, or a LoRA policy):
    /// the policy is synced to it as an adapter after every update.
    #[arg(long)]
    pub rollout_url: Option<String>,
    /// The server's name for the policy's base model; if given, checked against the
    /// server's /v1/models at the start.
    #[arg(long, requires = "rollout_url")]
    pub rollout_model: Option<String>,
    /// Truncated importance sampling: each token's loss is weighted by
    /// min(exp(logp_trainer - logp_rollout), CAP), correcting the rollout/trainer
    /// mismatch (TRL's correction).
    #[arg(long, default_value_t = 2.0)]
    pub rollout_is_cap: f64,
    /// Requests in flight at once (one per prompt group).
    #[arg(long, default_value_t = 8)]
    pub rollout_concurrency: usize,
    /// Seconds allowed for one request.
    #[arg(long, default_value_t = 600.0)]
    pub rollout_timeout: f64,
    /// Retries after a failed request (connection errors, timeouts, 429, 5xx).
    #[arg(long, default_value_t = 3)]
    pub rollout_retries: u32,
    /// The environment variable holding the server's API key, if it needs one.
    #[arg(long)]
    pub rollout_api_key_env: Option<String>,
    /// Where adapters are written for the server to load (default:
    /// OUTPUT/rollout-adapters; an absolute path the server can read).
    #[arg(long)]
    pub rollout_adapter_dir: Option<PathBuf>,
    /// Generate the next step's rollouts while the current update runs (from a policy at
    /// most --max-staleness versions old).
    #[arg(long, requires = "rollout_url")]
    pub async_rollouts: bool,
    /// With --async-rollouts: the first rounds of this many coming steps are requested
    /// ahead, so a rollout's policy trails the one it trains by at most this many
    /// versions.
    #[arg(long, default_value_t = 1)]
    pub max_staleness: u64,
}

impl RolloutArgs {
    pub fn validate(&self, lora: bool) -> Result<()> {
        let Some(url) = &self.rollout_url else {
            return Ok(());
        };
        if !lora {
            bail!(
                "--rollout-url {url} needs a LoRA policy (--lora-r N, or a LoRA adapter as --policy): the trainer syncs the policy to the server as an adapter after each update (vLLM's load_lora_adapter); full-weight sync is not supported"
            );
        }
        if !(self.rollout_is_cap.is_finite() && self.rollout_is_cap >= 1.0) {
            bail!("--rollout-is-cap must be a number >= 1");
        }
        if self.rollout_concurrency == 0 {
            bail!("--rollout-concurrency must be at least 1");
        }
        if !(self.rollout_timeout.is_finite() && self.rollout_timeout > 0.0) {
            bail!("--rollout-timeout must be a positive number of seconds");
        }
        if self.async_rollouts && self.max_staleness == 0 {
            bail!("--max-staleness must be at least 1 with --async-rollouts");
        }
        Ok(())
    }
}

/// Prompt groups from the server, each with its completions' sampled log-probabilities.
pub type RemoteGroups = Vec<(Group, Vec<Vec<f32>>)>;

/// One completion from the server with the log-probabilities it sampled with.
#[derive(Debug, Clone)]
pub struct RemoteCompletion {
    pub completion: Completion,
    pub logprobs: Vec<f32>,
}

/// The server, and which adapter version it serves.
pub struct RolloutServer {
    completions: RetryingClient,
    load: RetryingClient,
    unload: RetryingClient,
    concurrency: usize,
    adapter_dir: PathBuf,
    /// Loaded adapter names, oldest first (at most `keep`).
    loaded: std::sync::Mutex<Vec<(u64, String)>>,
    /// Versions kept loaded: the newest and those rollouts in flight may still use.
    keep: usize,
    /// `GET {url}/models`.
    models_url: String,
    api_key: Option<Secret>,
}

/// A URL's endpoint under a base such as `http://host:8000/v1`.
fn endpoint(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base.strip_suffix("/completions").unwrap_or(base);
    format!("{base}/{path}")
}

/// The error of a failed request, naming the endpoint.
pub fn describe(url: &str, e: &HttpFailure) -> String {
    match e {
        HttpFailure::Down {
            attempts,
            last_error,
        } => format!("the rollout server {url} is down ({attempts} attempts; last: {last_error})"),
        HttpFailure::Rejected { status, body } => {
            format!("the rollout server {url} refused the request (HTTP {status}): {body}")
        }
        HttpFailure::BadResponse { attempts, detail } => format!(
            "the rollout server {url} gave an unreadable answer ({attempts} attempts): {detail}"
        ),
    }
}

impl RolloutServer {
    pub fn new(args: &RolloutArgs, output: &Path) -> Result<Self> {
        let url = args
            .rollout_url
            .as_deref()
            .expect("called with --rollout-url");
        let api_key = match &args.rollout_api_key_env {
            Some(var) => Some(Secret::from_env(var).ok_or_else(|| {
                anyhow::anyhow!("--rollout-api-key-env {var}: the variable is not set")
            })?),
            None => None,
        };
        let policy = RetryPolicy {
            timeout: Duration::from_secs_f64(args.rollout_timeout),
            retries: args.rollout_retries,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        };
        let client = |path: &str| {
            RetryingClient::new(
                endpoint(url, path),
                api_key.clone(),
                policy.clone(),
                args.rollout_concurrency,
            )
        };
        let adapter_dir = match &args.rollout_adapter_dir {
            Some(d) => d.clone(),
            None => output.join("rollout-adapters"),
        };
        let adapter_dir = std::path::absolute(&adapter_dir)?;
        Ok(Self {
            completions: client("completions"),
            load: client("load_lora_adapter"),
            unload: client("unload_lora_adapter"),
            concurrency: args.rollout_concurrency,
            adapter_dir,
            loaded: Default::default(),
            // Prefetched rollouts use versions up to --max-staleness old.
            keep: if args.async_rollouts {
                args.max_staleness as usize + 1
            } else {
                2
            },
            models_url: endpoint(url, "models"),
            api_key,
        })
    }

    pub fn url(&self) -> &str {
        self.completions.url()
    }

    /// Requests sent and retries, for the log.
    pub fn describe_stats(&self) -> String {
        format!(
            "{} requests, {} retries",
            self.completions.requests() + self.load.requests() + self.unload.requests(),
            self.completions.retries() + self.load.retries() + self.unload.retries()
        )
    }

    /// Check that the server lists `model` (the policy's base) among its models.
    pub fn check_model(&self, model: &str) -> Result<(), String> {
        let mut request = ureq::get(&self.models_url).timeout(Duration::from_secs(30));
        if let Some(key) = &self.api_key {
            request = request.set("Authorization", &format!("Bearer {}", key.expose()));
        }
        let answer: Value = request
            .call()
            .map_err(|e| format!("GET {}: {e}", self.models_url))?
            .into_json()
            .map_err(|e| format!("GET {}: not JSON: {e}", self.models_url))?;
        let ids: Vec<&str> = answer
            .get("data")
            .and_then(Value::as_array)
            .map(|d| d.iter().filter_map(|m| m.get("id")?.as_str()).collect())
            .unwrap_or_default();
        if ids.contains(&model) {
            Ok(())
        } else {
            Err(format!(
                "the server at {} does not serve it (it serves: {})",
                self.models_url,
                ids.join(", ")
            ))
        }
    }

    /// The folder version `version` of the adapter is written to.
    pub fn adapter_path(&self, version: u64) -> PathBuf {
        self.adapter_dir.join(format!("v{version}"))
    }

    /// The adapter name of version `version`.
    pub fn adapter_name(version: u64) -> String {
        format!("rmtk-policy-v{version}")
    }

    /// Load the adapter written at [`RolloutServer::adapter_path`] as version `version`,
    /// then unload (and delete) the versions older than the last `keep`. Returns its name.
    pub fn push(&self, version: u64) -> Result<String, String> {
        let name = Self::adapter_name(version);
        let path = self.adapter_path(version);
        // A server that already has this name (a resumed run) gets it replaced.
        let _ = self
            .unload
            .post_json(&json!({"lora_name": name}), |_| Ok::<(), String>(()));
        self.load
            .post_json(
                &json!({"lora_name": name, "lora_path": path.to_string_lossy()}),
                |_| Ok(()),
            )
            .map_err(|e| describe(self.load.url(), &e))?;
        let mut loaded = self.loaded.lock().expect("not poisoned");
        loaded.push((version, name.clone()));
        while loaded.len() > self.keep {
            let (old, old_name) = loaded.remove(0);
            // An old version that cannot be unloaded only costs the server memory.
            let _ = self
                .unload
                .post_json(&json!({"lora_name": old_name}), |_| Ok::<(), String>(()));
            let _ = std::fs::remove_dir_all(self.adapter_path(old));
        }
        Ok(name)
    }

    /// `n` completions of each prompt from adapter `model`, sampling as `params` says;
    /// group `slot`'s completion `s` draws from stream `seed.stream(slot, s, n)`.
    pub fn generate_groups(
        &self,
        model: &str,
        prompts: &[Vec<u32>],
        indices: &[usize],
        n: usize,
        params: &SamplingParams,
        seed: RolloutSeed,
    ) -> Result<RemoteGroups, String> {
        let url = self.completions.url().to_string();
        let answers = run_concurrently(prompts.len(), self.concurrency, |slot| {
            let body = json!({
                "model": model,
                "prompt": prompts[slot],
                "n": n,
                "max_tokens": params.max_new_tokens,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "top_k": if params.top_k == 0 { -1 } else { params.top_k as i64 },
                "seed": seed.seed,
                "seed_stream": seed.stream_of(slot, 0, n),
                "logprobs": 0,
                "return_token_ids": true,
            });
            self.completions
                .post_json(&body, |reply| parse_choices(reply, n))
                .map_err(|e| describe(&url, &e))
        })?;
        Ok(indices
            .iter()
            .zip(answers)
            .map(|(&prompt, choices)| {
                let (completions, logprobs) = choices
                    .into_iter()
                    .map(|c| (c.completion, c.logprobs))
                    .unzip();
                (
                    Group {
                        prompt,
                        completions,
                    },
                    logprobs,
                )
            })
            .collect())
    }
}

/// The `n` choices of a completions answer, in index order, each with its token ids and
/// their log-probabilities.
pub fn parse_choices(reply: &str, n: usize) -> Result<Vec<RemoteCompletion>, String> {
    let value: Value = serde_json::from_str(reply).map_err(|e| format!("not JSON: {e}"))?;
    let choices = value
        .get("choices")
        .and_then(Value::as_array)
        .ok_or("no `choices` list")?;
    if choices.len() != n {
        return Err(format!("{} choices for n = {n}", choices.len()));
    }
    let mut out: Vec<Option<RemoteCompletion>> = vec![None; n];
    for c in choices {
        let index = c
            .get("index")
            .and_then(Value::as_u64)
            .ok_or("a choice without `index`")? as usize;
        if index >= n || out[index].is_some() {
            return Err(format!("choice index {index} out of place"));
        }
        let ids: Vec<u32> = c
            .get("token_ids")
            .and_then(Value::as_array)
            .ok_or("a choice without `token_ids` (the server must support `return_token_ids`)")?
            .iter()
            .map(|v| {
                v.as_u64()
                    .map(|t| t as u32)
                    .ok_or("a token id that is not a number")
            })
            .collect::<Result<_, _>>()?;
        let logprobs: Vec<f32> = c
            .pointer("/logprobs/token_logprobs")
            .and_then(Value::as_array)
            .ok_or("a choice without `logprobs.token_logprobs`")?
            .iter()
            .map(|v| {
                v.as_f64()
                    .map(|x| x as f32)
                    .ok_or("a log-probability that is not a number")
            })
            .collect::<Result<_, _>>()?;
        if logprobs.len() != ids.len() {
            return Err(format!(
                "{} log-probabilities for {} tokens",
                logprobs.len(),
                ids.len()
            ));
        }
        let text = c
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let finish = match c.get("finish_reason").and_then(Value::as_str) {
            Some("length") => FinishReason::Length,
            _ => FinishReason::Eos,
        };
        out[index] = Some(RemoteCompletion {
            completion: Completion { ids, text, finish },
            logprobs,
        });
    }
    Ok(out
        .into_iter()
        .map(|c| c.expect("every index seen"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_sit_under_the_base() {
        assert_eq!(
            endpoint("http://h:8000/v1/", "completions"),
            "http://h:8000/v1/completions"
        );
        assert_eq!(
            endpoint("http://h:8000/v1/completions", "load_lora_adapter"),
            "http://h:8000/v1/load_lora_adapter"
        );
    }

    #[test]
    fn choices_are_read_in_index_order_and_checked() {
        let reply = json!({"choices": [
            {"index": 1, "text": "b", "token_ids": [5], "finish_reason": "length",
             "logprobs": {"token_logprobs": [-0.5]}},
            {"index": 0, "text": "a", "token_ids": [3, 2], "finish_reason": "stop",
             "logprobs": {"token_logprobs": [-1.0, -0.25]}},
        ]})
        .to_string();
        let got = parse_choices(&reply, 2).unwrap();
        assert_eq!(got[0].completion.ids, [3, 2]);
        assert_eq!(got[0].completion.finish, FinishReason::Eos);
        assert_eq!(got[1].completion.finish, FinishReason::Length);
        assert_eq!(got[1].logprobs, [-0.5]);
        assert!(parse_choices(&reply, 3).unwrap_err().contains("2 choices"));
        let no_ids = json!({"choices": [{"index": 0, "text": "a"}]}).to_string();
        assert!(
            parse_choices(&no_ids, 1)
                .unwrap_err()
                .contains("return_token_ids")
        );
    }
}
