//! The remote judge against a small OpenAI-compatible server started on loopback:
//! normal answers (log-probabilities and text), a timeout, a 500 then success,
//! malformed JSON, an endpoint that is down, a refused key (never printed), the
//! concurrency limit and the answer cache.
//!
//! The loopback [`Server`] is shared with the other endpoint tests (`reward_url`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmtk::verify::judge::{Judge, JudgeError, JudgeQuery};
use rmtk::verify::remote::{RemoteJudge, RemoteOptions, Secret};
use rmtk::verify::{ConstraintSet, Mode, Verifier, VerifierOptions, VerifyItem};
use serde_json::{Value, json};

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) authorization: Option<String>,
    pub(crate) body: Value,
}

/// What the server sends back.
pub(crate) enum Reply {
    Status(u16, String),
    /// Wait, then reply.
    Late(Duration, Box<Reply>),
}

type Handler = dyn Fn(usize, &Seen) -> Reply + Send + Sync;

/// A JSON server on 127.0.0.1 that answers at most `max_requests` requests (one
/// thread per connection) and stops by itself: when they are used up, after 30 seconds
/// (or the lifetime given), or when dropped; later connections are refused. It
/// listens on loopback only.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    pub(crate) in_flight_max: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Server {
    pub(crate) fn start(
        max_requests: usize,
        handler: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
    ) -> Server {
        Server::start_for(max_requests, Duration::from_secs(30), handler)
    }

    pub(crate) fn start_for(
        max_requests: usize,
        lifetime: Duration,
        handler: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
    ) -> Server {
        Server::start_at(
            "127.0.0.1:0".parse().unwrap(),
            max_requests,
            lifetime,
            handler,
        )
    }

    /// A server on a given address (a free port again once an earlier server on it
    /// has stopped listening).
    pub(crate) fn start_at(
        addr: SocketAddr,
        max_requests: usize,
        lifetime: Duration,
        handler: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let in_flight_max = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, max2, stop2) = (seen.clone(), in_flight_max.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + lifetime;
            let mut workers = Vec::new();
            let mut served = 0;
            while served < max_requests
                && Instant::now() < deadline
                && !stop2.load(Ordering::SeqCst)
            {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let n = served;
                        served += 1;
                        let (seen, handler, in_flight, max) = (
                            seen2.clone(),
                            handler.clone(),
                            in_flight.clone(),
                            max2.clone(),
                        );
                        workers.push(std::thread::spawn(move || {
                            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            max.fetch_max(now, Ordering::SeqCst);
                            serve_one(stream, n, &*handler, &seen);
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                        }));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => break,
                }
            }
            // Later connections are refused rather than left waiting.
            drop(listener);
            for w in workers {
                let _ = w.join();
            }
        });
        Server {
            addr,
            seen,
            in_flight_max,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_one(stream: TcpStream, n: usize, handler: &Handler, seen: &Mutex<Vec<Seen>>) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Seen {
        authorization,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    seen.lock().unwrap().push(request.clone());
    let mut reply = handler(n, &request);
    while let Reply::Late(wait, inner) = reply {
        std::thread::sleep(wait);
        reply = *inner;
    }
    let Reply::Status(status, text) = reply else {
        unreachable!()
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.flush();
}

/// A completion whose first token's top log-probabilities give P(yes) = `p`.
fn logprob_answer(p: f64) -> Reply {
    let answer = if p >= 0.5 { "Yes" } else { "No" };
    Reply::Status(
        200,
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
            "logprobs": {"content": [{"token": answer, "logprob": -0.1, "top_logprobs": [
                {"token": "Yes", "logprob": p.ln()}, {"token": "No", "logprob": (1.0 - p).ln()}]}]}}]})
        .to_string(),
    )
}

fn text_answer(text: &str) -> Reply {
    Reply::Status(
        200,
        json!({"choices": [{"message": {"role": "assistant", "content": text}}]}).to_string(),
    )
}

fn options(url: &str) -> RemoteOptions {
    let mut o = RemoteOptions::new(url, "judge-7b");
    o.timeout = Duration::from_secs(5);
    o.retries = 2;
    o.backoff = Duration::from_millis(10);
    o.max_backoff = Duration::from_millis(50);
    o.concurrency = 4;
    o
}

fn query<'a>(constraint: &'a str, response: &'a str) -> JudgeQuery<'a> {
    JudgeQuery {
        instruction: "Write a haiku.",
        constraint: constraint.into(),
        response,
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rmtk-remote-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn prompt_of(seen: &Seen) -> String {
    seen.body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn normal_answers_with_logprobs_and_text() {
    let server = Server::start(3, |_, seen| {
        let prompt = prompt_of(seen);
        if prompt.contains("GOOD") {
            logprob_answer(0.9)
        } else if prompt.contains("BAD") {
            logprob_answer(0.2)
        } else {
            text_answer("No.")
        }
    });
    let judge = RemoteJudge::new(options(&server.url())).unwrap();
    let answers = judge
        .judge(&[
            query("No commas.", "GOOD haiku"),
            query("No commas.", "BAD, haiku"),
            query("No commas.", "plain"),
            // The same query again is asked once.
            query("No commas.", "GOOD haiku"),
        ])
        .unwrap();
    let p: Vec<Option<f32>> = answers.iter().map(|a| a.probability).collect();
    assert!((p[0].unwrap() - 0.9).abs() < 1e-5, "{p:?}");
    assert!((p[1].unwrap() - 0.2).abs() < 1e-5, "{p:?}");
    assert_eq!(p[2], Some(0.0));
    assert_eq!(p[3], p[0]);
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    let body = &seen[0].body;
    assert_eq!(body["model"], "judge-7b");
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["logprobs"], true);
    let prompt = prompt_of(&seen[0]);
    assert!(
        prompt.contains("CONSTRAINT:\nNo commas.")
            && prompt.contains("INSTRUCTION:\nWrite a haiku."),
        "{prompt}"
    );
    assert!(seen.iter().all(|s| s.authorization.is_none()));
    assert_eq!(judge.stats().requests, 3);
}

#[test]
fn a_timeout_is_retried() {
    let server = Server::start(2, |n, _| {
        if n == 0 {
            Reply::Late(Duration::from_millis(1500), Box::new(logprob_answer(0.9)))
        } else {
            logprob_answer(0.8)
        }
    });
    let mut o = options(&server.url());
    o.timeout = Duration::from_millis(400);
    let judge = RemoteJudge::new(o).unwrap();
    let started = Instant::now();
    let answers = judge.judge(&[query("c", "r")]).unwrap();
    assert!((answers[0].probability.unwrap() - 0.8).abs() < 1e-5);
    assert_eq!(judge.stats().retries, 1);
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_500_then_success() {
    let server = Server::start(2, |n, _| {
        if n == 0 {
            Reply::Status(500, "{\"error\": \"overloaded\"}".into())
        } else {
            logprob_answer(0.7)
        }
    });
    let judge = RemoteJudge::new(options(&server.url())).unwrap();
    let answers = judge.judge(&[query("c", "r")]).unwrap();
    assert!((answers[0].probability.unwrap() - 0.7).abs() < 1e-5);
    let stats = judge.stats();
    assert_eq!((stats.requests, stats.retries), (2, 1));
}

#[test]
fn malformed_json_is_retried_then_reported() {
    let server = Server::start(2, |n, _| {
        if n == 0 {
            Reply::Status(200, "{\"choices\": [ not json".into())
        } else {
            logprob_answer(0.6)
        }
    });
    let judge = RemoteJudge::new(options(&server.url())).unwrap();
    assert!(
        (judge.judge(&[query("c", "r")]).unwrap()[0]
            .probability
            .unwrap()
            - 0.6)
            .abs()
            < 1e-5
    );

    let server = Server::start(3, |_, _| Reply::Status(200, "<html>gateway</html>".into()));
    let judge = RemoteJudge::new(options(&server.url())).unwrap();
    let err = judge.judge(&[query("c", "r")]).unwrap_err();
    assert!(
        matches!(err, JudgeError::BadResponse { attempts: 3, .. }),
        "{err}"
    );
    assert!(!err.is_endpoint_down());
    assert!(err.to_string().contains("not JSON"), "{err}");
}

#[test]
fn an_endpoint_that_stays_down_is_a_distinct_error() {
    // A port nobody listens on.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let judge = RemoteJudge::new(options(&format!("http://{addr}/v1"))).unwrap();
    let constraints = ConstraintSet::texts(&["Rhymes."]).unwrap();
    let verifier = Verifier::new(
        VerifierOptions {
            mode: Mode::Hybrid,
            ..VerifierOptions::default()
        },
        Some(Box::new(judge)),
    )
    .unwrap();
    let err = verifier
        .verify(&[VerifyItem {
            prompt: "p",
            response: "r",
            constraints: &constraints,
        }])
        .unwrap_err();
    assert!(err.is_endpoint_down(), "{err}");
    assert!(err.to_string().contains("3 attempts"), "{err}");

    // 503s through every retry are "down" too.
    let server = Server::start(3, |_, _| Reply::Status(503, "busy".into()));
    let judge = RemoteJudge::new(options(&server.url())).unwrap();
    let err = judge.judge(&[query("c", "r")]).unwrap_err();
    assert!(err.is_endpoint_down(), "{err}");
    assert!(err.to_string().contains("HTTP 503"), "{err}");
}

#[test]
fn a_refused_key_is_not_retried_and_never_printed() {
    const KEY: &str = "sk-test-0123456789abcdef";
    let server = Server::start(1, |_, seen| {
        // A careless server that echoes the credentials it was sent.
        Reply::Status(
            401,
            json!({"error": format!("invalid key {}", seen.authorization.clone().unwrap_or_default())}).to_string(),
        )
    });
    let mut o = options(&server.url());
    o.api_key = Some(Secret::new(KEY));
    let judge = RemoteJudge::new(o).unwrap();
    let err = judge.judge(&[query("c", "r")]).unwrap_err();
    assert!(
        matches!(err, JudgeError::Rejected { status: 401, .. }),
        "{err}"
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains(KEY), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert_eq!(
        server.requests()[0].authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(judge.stats().requests, 1);
}

#[test]
fn the_command_reads_the_key_from_the_environment_and_never_prints_it() {
    const KEY: &str = "sk-cli-secret-9876543210";
    let server = Server::start(3, |_, seen| {
        Reply::Status(
            500,
            format!(
                "upstream rejected {}",
                seen.authorization.clone().unwrap_or_default()
            ),
        )
    });
    let dir = temp_dir("cli-key");
    let input = dir.join("rows.jsonl");
    std::fs::write(&input, "{\"prompt\": \"Write a haiku.\", \"response\": \"Rain\", \"constraints\": [\"Rhymes.\"]}\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rmtk"))
        .args(["verify", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(dir.join("out.jsonl"))
        .args(["--judge-model", "judge-7b", "--judge-url", &server.url()])
        .args([
            "--judge-api-key-env",
            "RMTK_TEST_JUDGE_KEY",
            "--judge-retries",
            "2",
            "--judge-backoff",
            "0.01",
        ])
        .arg("--judge-cache")
        .arg(dir.join("cache"))
        .env("RMTK_TEST_JUDGE_KEY", KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is down"), "{stderr}");
    assert!(stderr.contains("<redacted>"), "{stderr}");
    assert!(!stderr.contains(KEY) && !stdout.contains(KEY), "{stderr}");
    assert!(
        server
            .requests()
            .iter()
            .all(|s| s.authorization.as_deref() == Some(&*format!("Bearer {KEY}")))
    );
    // Nothing verified, but the progress file says where a --resume would start.
    assert!(stderr.contains("--resume"), "{stderr}");
}

#[test]
fn concurrency_is_bounded() {
    let server = Server::start(8, |_, _| {
        Reply::Late(Duration::from_millis(150), Box::new(logprob_answer(0.9)))
    });
    let mut o = options(&server.url());
    o.concurrency = 3;
    let judge = RemoteJudge::new(o).unwrap();
    let responses: Vec<String> = (0..8).map(|i| format!("response {i}")).collect();
    let queries: Vec<JudgeQuery> = responses.iter().map(|r| query("c", r)).collect();
    let answers = judge.judge(&queries).unwrap();
    assert_eq!(answers.len(), 8);
    let max = server.in_flight_max.load(Ordering::SeqCst);
    assert!(
        (2..=3).contains(&max),
        "{max} requests were in flight at once"
    );
}

#[test]
fn a_rerun_is_answered_from_the_cache() {
    let dir = temp_dir("cache");
    let server = Server::start(2, |_, seen| {
        if prompt_of(seen).contains("one") {
            logprob_answer(0.9)
        } else {
            logprob_answer(0.1)
        }
    });
    let mut o = options(&server.url());
    o.cache_dir = Some(dir.clone());
    o.api_key = Some(Secret::new("sk-not-in-the-cache"));
    let queries = [query("c", "one"), query("c", "two")];
    let first = RemoteJudge::new(o.clone())
        .unwrap()
        .judge(&queries)
        .unwrap();
    assert_eq!(server.requests().len(), 2);
    // Same model, prompts and parameters: nothing is sent again.
    let again = RemoteJudge::new(o.clone()).unwrap();
    assert_eq!(again.judge(&queries).unwrap(), first);
    assert_eq!(again.stats().requests, 0);
    assert_eq!(again.stats().cache_hits, 2);
    assert_eq!(server.requests().len(), 2);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("sk-not-in-the-cache"));
        assert!(text.contains("judge-7b"));
    }
    // Another model is another key: it misses (and, with the server gone, fails).
    o.model = "judge-70b".into();
    o.retries = 0;
    drop(server);
    let other = RemoteJudge::new(o).unwrap();
    assert!(other.judge(&queries[..1]).is_err());
    assert_eq!(other.stats().cache_hits, 0);
}
