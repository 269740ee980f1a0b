//! `rmtk serve`: an OpenAI-compatible server for a decoder (policy or judge), a reward
//! model and the verifier, each optional, on axum.
//!
//! One engine thread owns the models and decodes with continuous batching
//! ([`engine`]); HTTP handlers on a tokio runtime turn requests into engine messages and
//! the engine's events into OpenAI-shaped answers ([`openai`]) or reward answers
//! ([`rewards`]). The JSON shapes are documented in `docs/serving.md`.

pub mod engine;
pub mod openai;
pub mod rewards;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::device::{DeviceSpec, Job, run_on};
use crate::kernels::FusedOps;
use crate::models::load::ComputeDtype;
use crate::models::{ModelDir, Tokenizer, load_causal_lm_in};
use crate::verify::{Verifier, VerifierArgs, build_verifier};
use engine::{Engine, Msg, Registry};

/// Serve a decoder, a reward model and the verifier over HTTP (OpenAI-compatible
/// completions and chat, vLLM's runtime LoRA API, reward and verify endpoints).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// A decoder folder in Hugging Face layout (policy or judge), served under
    /// /v1/completions and /v1/chat/completions.
    #[arg(long)]
    pub model: Option<String>,
    /// The name requests use for the decoder (default: its folder name).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// LoRA adapters to load at start, as NAME=PATH (repeatable); more can be loaded at
    /// run time with POST /v1/load_lora_adapter.
    #[arg(long, value_parser = parse_lora_module)]
    pub lora_modules: Vec<(String, String)>,
    /// A reward model folder (from `rmtk train-rm`, or any one-label
    /// *ForSequenceClassification), served under /pooling, /get_reward and
    /// /v1/rewards/group.
    #[arg(long)]
    pub reward_model: Option<String>,
    #[command(flatten)]
    pub verifier: VerifierArgs,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// 0 picks a free port (the address is printed).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` on /v1/* and the reward endpoints; the key is
    /// read from this environment variable (never printed).
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// Sequences decoded at once (KV cache slots).
    #[arg(long, default_value_t = 16)]
    pub max_num_seqs: usize,
    /// Longest prompt plus completion, in tokens (default: the model's
    /// max_position_embeddings, at most 4096).
    #[arg(long)]
    pub max_model_len: Option<usize>,
    /// Requests held at once (decoding and waiting); beyond it requests get 503.
    #[arg(long, default_value_t = 256)]
    pub max_queued_requests: usize,
    /// The dtype the decoder and the reward model compute in.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: ComputeDtype,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

fn parse_lora_module(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), path.to_string()))
        }
        _ => Err(format!("`{s}`: give NAME=PATH")),
    }
}

/// An error answered as OpenAI does: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::SERVICE_UNAVAILABLE => "service_unavailable",
            StatusCode::PAYLOAD_TOO_LARGE => "context_length_exceeded",
            s if s.is_server_error() => "internal_server_error",
            _ => "invalid_request_error",
        }
    }
}

impl ApiError {
    /// The JSON body: `{"error": {"message", "type", "param", "code"}}`.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind(),
            "param": null,
            "code": self.status.as_u16(),
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// What the handlers share.
pub struct AppState {
    /// The decoder's served name, if a decoder is served.
    pub model_name: Option<String>,
    pub tokenizer: Option<Arc<Tokenizer>>,
    /// The decoder's embedding rows: prompt token ids must be below.
    pub vocab_size: usize,
    pub max_model_len: usize,
    pub max_num_seqs: usize,
    pub max_queued: usize,
    pub reward_model_name: Option<String>,
    pub engine: mpsc::Sender<Msg>,
    pub registry: Arc<Registry>,
    /// Requests held now (the queue bound).
    pub load: AtomicUsize,
    pub verifier: Arc<Mutex<Verifier>>,
    api_key: Option<String>,
    pub created: u64,
    next_id: AtomicUsize,
}

impl AppState {
    /// Send a message to the engine.
    pub fn send(&self, msg: Msg) -> Result<(), ApiError> {
        self.engine.send(msg).map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the engine has stopped (the server is shutting down)",
            )
        })
    }

    /// Hold a place in the queue for the life of the returned guard, or 503 when the
    /// server holds `--max-queued-requests` already.
    pub fn admit(self: &Arc<Self>) -> Result<LoadGuard, ApiError> {
        let before = self.load.fetch_add(1, Ordering::SeqCst);
        let guard = LoadGuard(self.clone());
        if before >= self.max_queued {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the server holds {before} requests (--max-queued-requests {}); retry later",
                    self.max_queued
                ),
            ));
        }
        Ok(guard)
    }

    /// A fresh id for a response (`prefix-N`).
    pub fn id(&self, prefix: &str) -> String {
        format!(
            "{prefix}-{}-{}",
            self.created,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The adapter a request's `model` names: `Ok(None)` for the decoder itself, 404
    /// for a name the server does not serve.
    pub fn resolve_model(&self, model: Option<&str>) -> Result<Option<String>, ApiError> {
        let Some(base) = &self.model_name else {
            return Err(ApiError::not_found(
                "this server hosts no decoder (start it with --model)",
            ));
        };
        match model {
            None => Ok(None),
            Some(m) if m == base => Ok(None),
            Some(m) if self.registry.has_adapter(m) => Ok(Some(m.to_string())),
            Some(m) => Err(ApiError::not_found(format!(
                "the model `{m}` does not exist; this server serves {}",
                self.model_names().join(", ")
            ))),
        }
    }

    fn model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.model_name.iter().cloned().collect();
        let adapters = self.registry.adapters.read().expect("not poisoned");
        names.extend(adapters.iter().map(|(n, _)| n.clone()));
        names.extend(self.reward_model_name.iter().cloned());
        names
    }
}

/// A place in the server's queue, given back on drop.
pub struct LoadGuard(Arc<AppState>);

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.load.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Compare two secrets in time that depends on their lengths only.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for i in 0..given.len().max(expected.len()) {
        let a = given.get(i).copied().unwrap_or(0);
        let b = expected.get(i).copied().unwrap_or(0xff);
        diff |= a ^ b;
    }
    diff == 0
}

async fn require_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(key) = &state.api_key {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_secret(given.as_bytes(), key.as_bytes()) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong API key (send `Authorization: Bearer KEY`)",
            )
            .into_response();
        }
    }
    next.run(request).await
}

async fn health() -> StatusCode {
    StatusCode::OK
}

async fn models(State(state): State<Arc<AppState>>) -> Response {
    let card = |id: &str, root: &str, parent: Option<&str>| {
        json!({
            "id": id,
            "object": "model",
            "created": state.created,
            "owned_by": "rmtk",
            "root": root,
            "parent": parent,
            "max_model_len": state.max_model_len,
        })
    };
    let mut data = Vec::new();
    if let Some(base) = &state.model_name {
        data.push(card(base, base, None));
        let adapters = state.registry.adapters.read().expect("not poisoned");
        for (name, path) in adapters.iter() {
            data.push(card(name, path, Some(base)));
        }
    }
    if let Some(rm) = &state.reward_model_name {
        data.push(card(rm, rm, None));
    }
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// Parse a JSON body: 400 with serde's message on malformed JSON or a wrong field.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))
}

/// The router over a state (the tests serve it on loopback).
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/load_lora_adapter", post(openai::load_lora_adapter))
        .route("/v1/unload_lora_adapter", post(openai::unload_lora_adapter))
        .route("/pooling", post(rewards::pooling))
        .route("/v1/verify", post(rewards::verify))
        .route("/v1/rewards/group", post(rewards::group))
        .route("/get_reward", post(rewards::openrlhf))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .route("/health", get(health))
        .merge(api)
        .with_state(state)
}

pub fn run(cfg: ServeConfig) -> Result<()> {
    if cfg.model.is_none() && cfg.reward_model.is_none() {
        eprintln!("serve: no --model and no --reward-model: serving the verifier alone");
    }
    if cfg.max_num_seqs == 0 || cfg.max_queued_requests == 0 {
        bail!("--max-num-seqs and --max-queued-requests must be at least 1");
    }
    if !cfg.lora_modules.is_empty() && cfg.model.is_none() {
        bail!("--lora-modules needs --model (the adapters' base decoder)");
    }
    cfg.verifier.validate()?;
    let api_key = match &cfg.api_key_env {
        Some(var) => {
            let key = std::env::var(var)
                .with_context(|| format!("--api-key-env {var}: the variable is not set"))?;
            if key.is_empty() {
                bail!("--api-key-env {var}: the variable is empty");
            }
            Some(key)
        }
        None => None,
    };
    let device = cfg.device;
    run_on(device, ServeJob { cfg, api_key })
}

struct ServeJob {
    cfg: ServeConfig,
    api_key: Option<String>,
}

impl Job for ServeJob {
    type Output = ();

    fn run<B: FusedOps>(self, device: B::Device) -> Result<()> {
        let cfg = self.cfg;
        let registry = Arc::new(Registry::default());
        let (decoder, model_name, tokenizer, max_model_len, vocab_size) = match &cfg.model {
            Some(spec) => {
                let dir = ModelDir::open(spec)?;
                let llama = dir.llama_config()?;
                let tok = Arc::new(dir.tokenizer()?);
                let limit = llama.max_position_embeddings;
                let len = cfg.max_model_len.unwrap_or(limit.min(4096));
                if len > limit {
                    bail!(
                        "--max-model-len {len} exceeds the model's max_position_embeddings {limit}"
                    );
                }
                let lm = load_causal_lm_in::<B>(&dir, &device, cfg.dtype.burn())?;
                let name = cfg.served_model_name.clone().unwrap_or(dir.name.clone());
                (
                    Some((lm, tok.clone())),
                    Some(name),
                    Some(tok),
                    len,
                    llama.vocab_size,
                )
            }
            None => (None, None, None, 0, 0),
        };
        let rm = match &cfg.reward_model {
            Some(spec) => {
                let mut loaded = crate::rm::LoadedRm::open(spec)?;
                loaded.dtype = cfg.dtype;
                let model = loaded.load::<B>(&device)?;
                Some(rewards::RmState::new(loaded, model, device.clone())?)
            }
            None => None,
        };
        let reward_model_name = rm.as_ref().map(|r| r.name().to_string());
        let verifier = build_verifier::<B>(&cfg.verifier, &device)?;
        let mut engine = Engine::new(
            decoder,
            cfg.max_num_seqs,
            max_model_len,
            registry.clone(),
            rm,
        );
        for (name, path) in &cfg.lora_modules {
            engine
                .load_adapter(name, path)
                .map_err(|e| anyhow::anyhow!("--lora-modules {name}={path}: {}", e.message))?;
        }
        let (tx, rx) = mpsc::channel();
        let state = Arc::new(AppState {
            model_name,
            tokenizer,
            vocab_size,
            max_model_len,
            max_num_seqs: cfg.max_num_seqs,
            max_queued: cfg.max_queued_requests,
            reward_model_name,
            engine: tx,
            registry,
            load: AtomicUsize::new(0),
            verifier: Arc::new(Mutex::new(verifier)),
            api_key: self.api_key,
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            next_id: AtomicUsize::new(0),
        });
        let addr: SocketAddr = format!("{}:{}", cfg.host, cfg.port)
            .parse()
            .with_context(|| format!("--host {} --port {}", cfg.host, cfg.port))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .with_context(|| format!("binding {addr}"))?;
        let bound = listener.local_addr()?;
        eprintln!("serve: listening on http://{bound}");
        for name in state.model_names() {
            eprintln!("serve: model `{name}`");
        }
        let app = router(state);
        let server = std::thread::spawn(move || -> Result<()> {
            runtime.block_on(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown_signal())
                    .await
            })?;
            Ok(())
        });
        // The engine runs here until the server (the last holder of its sender) is gone.
        engine.run(rx)?;
        server
            .join()
            .map_err(|_| anyhow::anyhow!("the HTTP server thread panicked"))??;
        eprintln!("serve: stopped");
        Ok(())
    }
}

/// SIGTERM or Ctrl-C: stop accepting connections; requests in flight finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    futures_util::future::select(Box::pin(ctrl_c), Box::pin(term)).await;
    eprintln!(
        "serve: shutting down after the requests in flight (a second SIGTERM or Ctrl-C stops at once)"
    );
    tokio::spawn(async {
        let again = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        futures_util::future::select(Box::pin(again), Box::pin(term)).await;
        eprintln!("serve: stopped at once by a second signal; requests in flight were dropped");
        std::process::exit(1);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"abcd", b"abc"));
        assert!(!same_secret(b"", b"abc"));
    }

    #[test]
    fn lora_modules_parse() {
        assert_eq!(
            parse_lora_module("a=/x/y").unwrap(),
            ("a".to_string(), "/x/y".to_string())
        );
        assert!(parse_lora_module("a").is_err());
        assert!(parse_lora_module("=b").is_err());
    }
}
