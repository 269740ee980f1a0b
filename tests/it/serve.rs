//! `rmtk serve` on loopback: OpenAI-compatible answers equal `rmtk generate`'s, log-probs
//! equal teacher-forced ones, concurrent requests equal the same requests alone,
//! runtime LoRA adapters serve beside the base, every reward endpoint equals the command
//! it stands for, bad requests get JSON errors and the server keeps serving, SIGTERM
//! finishes the request in flight.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burn::prelude::*;
use serde_json::{Value, json};

use super::rm_support::{chat_pairs, ok, rmtk, root, tiny_model, tmp, write_rows};
use rmtk::device::Cpu;
use rmtk::models::{self, ModelDir, PaddingMask};

fn smollm2() -> PathBuf {
    let dir = root().join("models/smollm2-135m-instruct");
    assert!(dir.is_dir(), "run scripts/fetch-models.sh first");
    dir
}

/// A running `rmtk serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = rmtk();
        cmd.arg("serve");
        if !args.contains(&"--port") {
            cmd.args(["--port", "0"]);
        }
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let base = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("serve exited: {}", log.lock().unwrap()))
                .unwrap();
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(addr) = line.strip_prefix("serve: listening on ") {
                break addr.to_string();
            }
        };
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Server { child, base, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The ids `/v1/models` lists.
    pub fn model_ids(&self) -> Vec<String> {
        let models: Value = ureq::get(&self.url("/v1/models"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// POST JSON; the status and the body (JSON, or a string for a text body).
    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_with(path, body, None)
    }

    fn post_with(&self, path: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
        let mut req = ureq::post(&self.url(path)).timeout(Duration::from_secs(300));
        if let Some(k) = key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        response(req.send_json(body.clone()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn response(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

fn ok_body(server: &Server, path: &str, body: &Value) -> Value {
    let (status, answer) = server.post(path, body);
    assert_eq!(status, 200, "{path} {body}: {answer}");
    answer
}

/// The error body OpenAI's clients read, with its status.
fn assert_error(got: (u16, Value), status: u16, says: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    let e = &got.1["error"];
    assert_eq!(e["code"], json!(status), "{}", got.1);
    let message = e["message"].as_str().unwrap();
    assert!(message.contains(says), "{message}");
}

fn token_ids(choice: &Value) -> Vec<u32> {
    choice["token_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

/// `rmtk generate` on one prompt: its streamed text.
fn generate(model: &Path, args: &[&str]) -> String {
    let out = rmtk()
        .args(["generate", "--model", model.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

fn greedy_completion(prompt: &str, max_tokens: usize, extra: Value) -> Value {
    let mut body = json!({
        "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
        "return_token_ids": true, "logprobs": 2,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

const PROMPTS: [&str; 16] = [
    "The history of the printing press",
    "Write a haiku about autumn rain.",
    "Once upon a time, in a small village,",
    "Explain photosynthesis to a child:",
    "My favourite recipe for bread is",
    "The three laws of thermodynamics are",
    "Dear hiring manager,",
    "In 1969, humans first",
    "A good night's sleep matters because",
    "def fibonacci(n):",
    "The capital of Australia is",
    "Ten tips for learning a language:",
    "The sea was calm that morning and",
    "Why do cats purr?",
    "Summary of the meeting:",
    "Rain, rain, go away,",
];

/// Same tokens, or, where they part, a choice between two tokens whose log-probs were
/// within 1e-4 (float rounding of a different batch make-up). Returns whether it flipped.
fn same_or_flip(alone: &Value, together: &Value) -> bool {
    let (a, b) = (token_ids(alone), token_ids(together));
    let Some(k) = a.iter().zip(&b).position(|(x, y)| x != y) else {
        assert_eq!(a, b, "one output is a prefix of the other");
        return false;
    };
    let top = |c: &Value| -> Vec<f64> {
        let tops = c["logprobs"]["top_logprobs"][k].as_object().unwrap();
        let mut v: Vec<f64> = tops.values().map(|x| x.as_f64().unwrap()).collect();
        v.sort_by(|x, y| y.total_cmp(x));
        v
    };
    let (ta, tb) = (top(alone), top(together));
    assert!(
        (ta[0] - ta[1]).abs() < 1e-4 || (tb[0] - tb[1]).abs() < 1e-4,
        "token {k} differs ({} vs {}) with a top-2 gap of {} / {}",
        a[k],
        b[k],
        ta[0] - ta[1],
        tb[0] - tb[1]
    );
    true
}

/// A LoRA adapter for SmolLM2 (q_proj and v_proj, r 8) with random factors large enough
/// to change its greedy outputs, in PEFT's layout.
fn smollm2_adapter(dir: &Path, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let config = json!({
        "peft_type": "LORA", "r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM",
        "base_model_name_or_path": smollm2().to_str().unwrap(),
    });
    std::fs::write(dir.join("adapter_config.json"), config.to_string()).unwrap();
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) as f32 * 0.2
    };
    let mut tensors: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
    for layer in 0..30 {
        for (module, out) in [("q_proj", 576), ("v_proj", 192)] {
            let key = format!("base_model.model.model.layers.{layer}.self_attn.{module}");
            for (name, shape) in [("lora_A", vec![8, 576]), ("lora_B", vec![out, 8])] {
                let n: usize = shape.iter().product();
                let bytes: Vec<u8> = (0..n).flat_map(|_| next().to_le_bytes()).collect();
                tensors.push((format!("{key}.{name}.weight"), bytes, shape));
            }
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(k, b, s)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("adapter_model.safetensors")).unwrap();
}

#[test]
fn serve_answers_like_generate_batches_continuously_and_hot_swaps_lora() {
    let smol = smollm2();
    let server = Server::start(&[
        "--model",
        smol.to_str().unwrap(),
        "--served-model-name",
        "smol",
        "--max-num-seqs",
        "16",
        "--max-model-len",
        "512",
    ]);

    // Chat, greedy: the tokens of `rmtk generate --chat --greedy`.
    let question = "Write one sentence about the moon.";
    let chat = ok_body(
        &server,
        "/v1/chat/completions",
        &json!({"model": "smol", "messages": [{"role": "user", "content": question}],
            "max_tokens": 24, "temperature": 0}),
    );
    let text = chat["choices"][0]["message"]["content"].as_str().unwrap();
    let want = generate(
        &smol,
        &[
            "--chat",
            "--prompt",
            question,
            "--greedy",
            "--max-new-tokens",
            "24",
        ],
    );
    assert_eq!(text, want);
    assert_eq!(chat["object"], json!("chat.completion"));
    assert_eq!(chat["model"], json!("smol"));
    assert_eq!(chat["usage"]["completion_tokens"], json!(24));

    // Streaming gives the same text, piece by piece, then [DONE].
    let stream = ureq::post(&server.url("/v1/chat/completions"))
        .send_json(json!({"messages": [{"role": "user", "content": question}],
            "max_tokens": 24, "temperature": 0, "stream": true,
            "stream_options": {"include_usage": true}}))
        .unwrap()
        .into_string()
        .unwrap();
    let chunks: Vec<&str> = stream
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(chunks.last(), Some(&"[DONE]"));
    let mut streamed = String::new();
    for c in &chunks[..chunks.len() - 1] {
        let v: Value = serde_json::from_str(c).unwrap();
        assert_eq!(v["object"], json!("chat.completion.chunk"));
        if let Some(piece) = v["choices"][0]["delta"]["content"].as_str() {
            streamed.push_str(piece);
        }
    }
    assert_eq!(streamed, text);
    let usage: Value = serde_json::from_str(chunks[chunks.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], json!(24));

    // A seeded sample: the tokens of `rmtk generate --seed`.
    let sampled = ok_body(
        &server,
        "/v1/completions",
        &json!({"prompt": PROMPTS[2], "max_tokens": 20, "temperature": 0.8, "seed": 11}),
    );
    let want = generate(
        &smol,
        &[
            "--prompt",
            PROMPTS[2],
            "--temperature",
            "0.8",
            "--seed",
            "11",
            "--max-new-tokens",
            "20",
        ],
    );
    assert_eq!(sampled["choices"][0]["text"].as_str().unwrap(), want);

    // Log-probs: the teacher-forced log-softmax of the raw logits, within 1e-4.
    let alone: Vec<Value> = PROMPTS
        .iter()
        .map(|p| {
            ok_body(
                &server,
                "/v1/completions",
                &greedy_completion(p, 16, json!({})),
            )
        })
        .collect();
    let dir = ModelDir::open(smol.to_str().unwrap()).unwrap();
    let device = Default::default();
    let lm = models::load_causal_lm::<Cpu>(&dir, &device).unwrap();
    for answer in alone.iter().take(3) {
        let prompt: Vec<u32> = answer["prompt_token_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let choice = &answer["choices"][0];
        let generated = token_ids(choice);
        let ids: Vec<i64> = prompt.iter().chain(&generated).map(|&t| t as i64).collect();
        let len = ids.len();
        let input = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(ids, [1, len]), &device);
        let logp = burn::tensor::activation::log_softmax(
            lm.forward(input, &PaddingMask::all_valid(1, len)),
            2,
        )
        .into_data()
        .into_vec::<f32>()
        .unwrap();
        let vocab = logp.len() / len;
        let served = choice["logprobs"]["token_logprobs"].as_array().unwrap();
        assert_eq!(served.len(), generated.len());
        for (k, (&t, s)) in generated.iter().zip(served).enumerate() {
            let at = prompt.len() - 1 + k;
            let want = logp[at * vocab + t as usize];
            let got = s.as_f64().unwrap() as f32;
            assert!(
                (got - want).abs() < 1e-4,
                "token {k}: served {got}, forced {want}"
            );
        }
    }

    // 16 concurrent requests: the outputs of the same requests one by one.
    let together: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = PROMPTS
            .iter()
            .map(|p| {
                let server = &server;
                s.spawn(move || {
                    ok_body(
                        server,
                        "/v1/completions",
                        &greedy_completion(p, 16, json!({})),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let flips = alone
        .iter()
        .zip(&together)
        .filter(|(a, t)| same_or_flip(&a["choices"][0], &t["choices"][0]))
        .count();
    eprintln!("16 concurrent requests: {flips} near-tie flips");
    assert!(flips <= 2, "{flips} flips");

    // A LoRA adapter loaded at run time serves its outputs while a base request decodes
    // at the same time; unloading restores the base.
    let tmpdir = tmp("serve-lora");
    let adapter = tmpdir.join("adapter");
    smollm2_adapter(&adapter, 3);
    let adapter_want = generate(
        &adapter,
        &["--prompt", PROMPTS[0], "--greedy", "--max-new-tokens", "16"],
    );
    let base_text = alone[0]["choices"][0]["text"].as_str().unwrap().to_string();
    assert_ne!(
        adapter_want, base_text,
        "the adapter should change the outputs"
    );
    let long_base = greedy_completion(PROMPTS[2], 64, json!({}));
    std::thread::scope(|s| {
        let server = &server;
        let base_run = s.spawn(move || ok_body(server, "/v1/completions", &long_base));
        std::thread::sleep(Duration::from_millis(300));
        let (status, body) = server.post(
            "/v1/load_lora_adapter",
            &json!({"lora_name": "moon", "lora_path": adapter.to_str().unwrap()}),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(server.model_ids(), ["smol", "moon"]);
        let adapted = ok_body(
            server,
            "/v1/completions",
            &greedy_completion(PROMPTS[0], 16, json!({"model": "moon"})),
        );
        assert_eq!(
            adapted["choices"][0]["text"].as_str().unwrap(),
            adapter_want
        );
        let base_during = ok_body(
            server,
            "/v1/completions",
            &greedy_completion(PROMPTS[0], 16, json!({})),
        );
        same_or_flip(&alone[0]["choices"][0], &base_during["choices"][0]);
        let long = base_run.join().unwrap();
        let long_alone = generate(
            &smol,
            &["--prompt", PROMPTS[2], "--greedy", "--max-new-tokens", "64"],
        );
        assert_eq!(long["choices"][0]["text"].as_str().unwrap(), long_alone);
    });
    let (status, body) = server.post("/v1/unload_lora_adapter", &json!({"lora_name": "moon"}));
    assert_eq!(status, 200, "{body}");
    assert_error(
        server.post(
            "/v1/completions",
            &greedy_completion(PROMPTS[0], 4, json!({"model": "moon"})),
        ),
        404,
        "`moon` does not exist",
    );
    let base_after = ok_body(
        &server,
        "/v1/completions",
        &greedy_completion(PROMPTS[0], 16, json!({})),
    );
    assert_eq!(
        base_after["choices"][0]["text"].as_str().unwrap(),
        base_text
    );
}

#[test]
fn bad_requests_get_json_errors_and_the_server_keeps_serving() {
    let smol = smollm2();
    let server = Server::start_with_env(
        &[
            "--model",
            smol.to_str().unwrap(),
            "--max-model-len",
            "64",
            "--api-key-env",
            "RMTK_TEST_KEY",
        ],
        &[("RMTK_TEST_KEY", "s3cret")],
    );
    let key = Some("s3cret");
    let good = json!({"prompt": "Hello", "max_tokens": 4, "temperature": 0});
    let post = |body: &Value| server.post_with("/v1/completions", body, key);
    assert_error(server.post("/v1/completions", &good), 401, "API key");
    assert_error(
        server.post_with("/v1/completions", &good, Some("s3cres")),
        401,
        "API key",
    );
    let raw = ureq::post(&server.url("/v1/completions"))
        .set("Authorization", "Bearer s3cret")
        .set("Content-Type", "application/json")
        .send_string("{\"prompt\": \"Hello\", ");
    assert_error(response(raw), 400, "not valid");
    assert_error(
        post(&json!({"prompt": "Hello", "model": "nope"})),
        404,
        "`nope` does not exist",
    );
    assert_error(
        post(&json!({"prompt": "Hello", "max_tokens": -3})),
        400,
        "max_tokens must be at least 1",
    );
    let long = "word ".repeat(80);
    assert_error(
        post(&json!({"prompt": long, "max_tokens": 4})),
        413,
        "maximum context length is 64",
    );
    assert_error(
        server.post_with(
            "/v1/load_lora_adapter",
            &json!({"lora_name": "x", "lora_path": "/no/such/adapter"}),
            key,
        ),
        404,
        "/no/such/adapter",
    );
    assert_error(
        server.post_with("/v1/unload_lora_adapter", &json!({"lora_name": "x"}), key),
        404,
        "no adapter named `x`",
    );
    assert_error(
        server.post_with("/pooling", &json!({"input": "hi"}), key),
        404,
        "no reward model",
    );
    // /health needs no key; the server still answers.
    assert_eq!(
        ureq::get(&server.url("/health")).call().unwrap().status(),
        200
    );
    let (status, body) = post(&good);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usage"]["completion_tokens"], json!(4));
    let log = server.log.lock().unwrap().clone();
    assert!(!log.contains("s3cret"), "the key was logged: {log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_full_queue_answers_503_at_once_and_sigterm_finishes_the_request_in_flight() {
    let smol = smollm2();
    let mut server = Server::start(&[
        "--model",
        smol.to_str().unwrap(),
        "--max-model-len",
        "256",
        "--max-queued-requests",
        "1",
    ]);
    let long = json!({"prompt": PROMPTS[2], "max_tokens": 48, "temperature": 0});
    std::thread::scope(|s| {
        let server_ref = &server;
        let in_flight = s.spawn(move || ok_body(server_ref, "/v1/completions", &long));
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        assert_error(
            server_ref.post("/v1/completions", &json!({"prompt": "Hi", "max_tokens": 2})),
            503,
            "--max-queued-requests 1",
        );
        let waited = started.elapsed();
        assert!(waited < Duration::from_millis(100), "503 took {waited:?}");
        // SIGTERM while the long request decodes: it completes, then the process exits 0.
        let pid = server_ref.child.id() as i32;
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let answer = in_flight.join().unwrap();
        assert_eq!(answer["usage"]["completion_tokens"], json!(48));
        let want = generate(
            &smol,
            &["--prompt", PROMPTS[2], "--greedy", "--max-new-tokens", "48"],
        );
        assert_eq!(answer["choices"][0]["text"].as_str().unwrap(), want);
    });
    let status = server.child.wait().unwrap();
    assert!(
        status.success(),
        "{status:?}: {}",
        server.log.lock().unwrap()
    );
    assert!(server.log.lock().unwrap().contains("serve: stopped"));
}

/// The rows of a JSONL file.
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `rmtk score --model rm --input input --output output`: the rows it wrote.
fn score_file(rm: &Path, input: &Path, output: &Path) -> Vec<Value> {
    ok(rmtk().args([
        "score",
        "--model",
        rm.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]));
    json_lines(output)
}

#[test]
fn reward_endpoints_equal_score_verify_and_the_mixing_function() {
    // A tiny reward model.
    let model = tiny_model("llama", "serve-rm");
    let dir = tmp("serve-rm");
    let data = dir.join("train.jsonl");
    write_rows(&data, &chat_pairs(8, 1));
    let rm = dir.join("rm");
    ok(rmtk().args([
        "train-rm",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--output",
        rm.to_str().unwrap(),
        "--batch-size",
        "4",
        "--epochs",
        "1",
    ]));
    let server = Server::start(&["--reward-model", rm.to_str().unwrap()]);

    // IFEval rows with real responses: prompt, response, instruction ids, kwargs.
    let ifeval = root().join("data/ifeval");
    let read = |name: &str| json_lines(&ifeval.join(name));
    let responses: std::collections::HashMap<String, String> =
        read("input_response_data_text_bison.jsonl")
            .into_iter()
            .map(|r| {
                (
                    r["prompt"].as_str().unwrap().to_string(),
                    r["response"].as_str().unwrap().to_string(),
                )
            })
            .collect();
    let rows: Vec<Value> = read("input_data.jsonl")
        .into_iter()
        .filter_map(|mut p| {
            let r = responses.get(p["prompt"].as_str().unwrap())?.clone();
            p["response"] = json!(r);
            Some(p)
        })
        .take(12)
        .collect();

    // /pooling with {prompt, response}: `rmtk score`'s rewards.
    let score_in = dir.join("score.jsonl");
    let pairs: Vec<Value> = rows
        .iter()
        .map(|r| json!({"prompt": r["prompt"], "response": r["response"]}))
        .collect();
    write_rows(&score_in, &pairs);
    let scored: Vec<f64> = score_file(&rm, &score_in, &dir.join("scored.jsonl"))
        .iter()
        .map(|r| r["reward"].as_f64().unwrap())
        .collect();
    let pooled = ok_body(&server, "/pooling", &json!({"input": pairs}));
    let served: Vec<f64> = pooled["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["object"], json!("pooling"));
            d["data"][0].as_f64().unwrap()
        })
        .collect();
    assert_eq!(served, scored);
    assert!(pooled["usage"]["prompt_tokens"].as_u64().unwrap() > 12);

    // A conversation in `messages`: the reward of that row as messages.
    let convo = json!([{"role": "user", "content": "the time of day"},
        {"role": "assistant", "content": "it was a good day"}]);
    let one = dir.join("one.jsonl");
    write_rows(
        &one,
        &[json!({"prompt": [convo[0]], "response": [convo[1]]})],
    );
    let want = score_file(&rm, &one, &dir.join("one-scored.jsonl")).remove(0);
    let got = ok_body(&server, "/pooling", &json!({"messages": convo}));
    assert_eq!(got["data"][0]["data"][0], want["reward"]);

    // OpenRLHF's shape: rewards for prompt + response.
    let queries: Vec<String> = pairs
        .iter()
        .map(|p| {
            format!(
                "{}{}",
                p["prompt"].as_str().unwrap(),
                p["response"].as_str().unwrap()
            )
        })
        .collect();
    let openrlhf = ok_body(
        &server,
        "/get_reward",
        &json!({"query": queries,
            "prompts": pairs.iter().map(|p| p["prompt"].clone()).collect::<Vec<_>>(),
            "labels": vec![""; pairs.len()]}),
    );
    let rewards: Vec<f64> = openrlhf["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(rewards, scored);
    assert_eq!(openrlhf["scores"], openrlhf["rewards"]);

    // /v1/verify: the rows `rmtk verify` writes.
    let verify_in = dir.join("verify.jsonl");
    write_rows(&verify_in, &rows);
    let verify_out = dir.join("verified.jsonl");
    ok(rmtk().args([
        "verify",
        "--input",
        verify_in.to_str().unwrap(),
        "--output",
        verify_out.to_str().unwrap(),
    ]));
    let written = json_lines(&verify_out);
    let verified = ok_body(&server, "/v1/verify", &json!({"rows": rows}));
    assert_eq!(verified["rows"], json!(written));
    assert!(
        written.iter().any(|r| r["pass"] == json!(true))
            && written.iter().any(|r| r["pass"] == json!(false)),
        "the rows should hold both verdicts"
    );

    // /v1/rewards/group: one prompt's responses scored, verified and mixed (RLMR).
    let prompt_row = &rows[0];
    let others: Vec<String> = rows
        .iter()
        .take(4)
        .map(|r| r["response"].as_str().unwrap().to_string())
        .collect();
    let group = ok_body(
        &server,
        "/v1/rewards/group",
        &json!({"prompt": prompt_row["prompt"], "responses": others,
            "instruction_id_list": prompt_row["instruction_id_list"],
            "kwargs": prompt_row["kwargs"]}),
    );
    let writing: Vec<f64> = group["writing_rewards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let pass: Vec<bool> = group["pass"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect();
    // The writing rewards are `rmtk score`'s for these pairs (f32 widened), the verdicts
    // `/v1/verify`'s, the rewards the mixing function's.
    let pairs_g: Vec<Value> = others
        .iter()
        .map(|r| json!({"prompt": prompt_row["prompt"], "response": r}))
        .collect();
    let pooled_g = ok_body(&server, "/pooling", &json!({"input": pairs_g}));
    for (w, d) in writing.iter().zip(pooled_g["data"].as_array().unwrap()) {
        assert!((w - d["data"][0].as_f64().unwrap()).abs() < 1e-6);
    }
    let verify_g: Vec<Value> = others
        .iter()
        .map(|r| {
            let mut row = prompt_row.clone();
            row["response"] = json!(r);
            row
        })
        .collect();
    let verdicts = ok_body(&server, "/v1/verify", &json!({"rows": verify_g}));
    let want_pass: Vec<bool> = verdicts["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pass"].as_bool().unwrap())
        .collect();
    assert_eq!(pass, want_pass);
    let cfg = rmtk::grpo::mixing::MixConfig {
        mixing: rmtk::grpo::mixing::Mixing::Rlmr,
        gamma: 1.0,
        constraint_weight: 1.0,
        rubric_weight: 1.0,
    };
    let mixed = rmtk::grpo::mixing::mix(&writing, &pass, &cfg);
    assert_eq!(group["rewards"], json!(mixed.rewards));
    assert_eq!(group["violators"], json!(mixed.violators));
}

/// Streaming never shows a character split across tokens: SmolLM2's byte-level tokens of
/// CJK text and emoji, pushed one at a time, give pieces without U+FFFD that add up to the
/// whole text.
#[test]
fn streamed_pieces_hold_back_characters_split_across_tokens() {
    let dir = ModelDir::open(smollm2().to_str().unwrap()).unwrap();
    let tok = dir.tokenizer().unwrap();
    let text = "Tea 茶 and cake 🍰🎂, 中文 words: ok";
    let ids = tok.encode(text, false).unwrap();
    assert!(
        ids.iter()
            .any(|&i| tok.decode(&[i], true).unwrap().contains('\u{FFFD}')),
        "the text should split a character across tokens"
    );
    let params = rmtk::models::generate::SamplingParams::greedy(ids.len());
    let mut seq = rmtk::models::generate::SeqText::default();
    let mut pieces = String::new();
    let mut done = None;
    for (k, &id) in ids.iter().enumerate() {
        let (piece, end) = seq
            .push(id, &tok, &[], &params, k + 1 == ids.len())
            .unwrap();
        assert!(!piece.contains('\u{FFFD}'), "piece {k}: {piece:?}");
        pieces.push_str(&piece);
        done = end;
    }
    let done = done.expect("ended at the token limit");
    assert_eq!(done.text, text);
    assert_eq!(pieces, text);
}
