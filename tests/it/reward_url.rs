//! GRPO's reward endpoint (`--reward-url`) against a small server on loopback (the
//! remote judge's test server): OpenRLHF's request shape, rewards in order across
//! concurrent batches, a timeout then an answer, malformed answers, a reward that is
//! not a finite number, and the cache. The end-to-end run (a clear stop when the
//! endpoint stays down, then `--resume`) is in `grpo_cli`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rmtk::verify::http::Secret;
use rmtk::verify::reward_url::{RemoteReward, RewardError, RewardItem, RewardUrlOptions};
use serde_json::{Value, json};

use crate::verify_remote::{Reply, Seen, Server};

/// The reward the test servers give a response: the number it ends with.
fn reward_of(response: &str) -> f64 {
    response
        .rsplit(' ')
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(-1.0)
}

/// OpenRLHF's answer for a request, rewards from [`reward_of`].
fn answer(seen: &Seen) -> Reply {
    let rewards: Vec<f64> = seen.body["responses"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|v| reward_of(v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    Reply::Status(
        200,
        json!({"rewards": rewards, "scores": rewards, "extra_logs": {}}).to_string(),
    )
}

fn options(server: &Server) -> RewardUrlOptions {
    let mut o = RewardUrlOptions::new(&format!("http://{}/get_reward", server.addr));
    o.timeout = Duration::from_secs(5);
    o.retries = 2;
    o.backoff = Duration::from_millis(10);
    o.max_backoff = Duration::from_millis(50);
    o
}

fn items(responses: &[String]) -> Vec<RewardItem<'_>> {
    responses
        .iter()
        .enumerate()
        .map(|(i, r)| RewardItem {
            prompt: "<|user|>Write.<|assistant|>",
            response: r,
            label: "",
            name: format!("completion {i}"),
        })
        .collect()
}

fn responses(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("answer number {i}")).collect()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rmtk-reward-url-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn rewards_arrive_in_order_across_concurrent_batches() {
    // Earlier batches answer later, so they finish out of order.
    let server = Server::start(4, |_, seen| {
        let first = seen.body["responses"][0].as_str().unwrap_or("").to_owned();
        let wait = 200u64.saturating_sub(20 * reward_of(&first) as u64);
        Reply::Late(Duration::from_millis(wait), Box::new(answer(seen)))
    });
    let mut o = options(&server);
    o.batch_size = 3;
    o.concurrency = 4;
    o.api_key = Some(Secret::new("sk-reward-key"));
    let reward = RemoteReward::new(o).unwrap();
    let texts = responses(10);
    let rewards = reward.score(&items(&texts)).unwrap();
    assert_eq!(rewards, (0..10).map(f64::from).collect::<Vec<_>>());
    let seen = server.requests();
    assert_eq!(seen.len(), 4, "10 completions in batches of 3");
    assert!(
        server
            .in_flight_max
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 2
    );
    for s in &seen {
        assert_eq!(s.authorization.as_deref(), Some("Bearer sk-reward-key"));
        let n = s.body["query"].as_array().unwrap().len();
        assert!((1..=3).contains(&n));
        for k in 0..n {
            let prompt = s.body["prompts"][k].as_str().unwrap();
            let response = s.body["responses"][k].as_str().unwrap();
            assert_eq!(prompt, "<|user|>Write.<|assistant|>");
            assert_eq!(
                s.body["query"][k].as_str().unwrap(),
                format!("{prompt}{response}")
            );
            assert_eq!(s.body["labels"][k], json!(""));
        }
    }
    assert_eq!(reward.counts(), (4, 0, 0));
}

#[test]
fn a_timeout_is_retried_then_answered() {
    let server = Server::start(2, |n, seen| {
        if n == 0 {
            Reply::Late(Duration::from_millis(1500), Box::new(answer(seen)))
        } else {
            answer(seen)
        }
    });
    let mut o = options(&server);
    o.timeout = Duration::from_millis(400);
    let reward = RemoteReward::new(o).unwrap();
    let started = Instant::now();
    let texts = responses(3);
    assert_eq!(reward.score(&items(&texts)).unwrap(), vec![0.0, 1.0, 2.0]);
    assert_eq!(reward.counts(), (2, 1, 0));
    assert!(started.elapsed() < Duration::from_millis(1400));
}

#[test]
fn malformed_answers_are_retried_then_reported() {
    // Not JSON, then the right answer.
    let server = Server::start(2, |n, seen| {
        if n == 0 {
            Reply::Status(200, "{\"rewards\": [ not json".into())
        } else {
            answer(seen)
        }
    });
    let reward = RemoteReward::new(options(&server)).unwrap();
    let texts = responses(2);
    assert_eq!(reward.score(&items(&texts)).unwrap(), vec![0.0, 1.0]);
    assert_eq!(reward.counts().1, 1);

    // Too few rewards through every attempt: a bad answer, not a down endpoint.
    let server = Server::start(3, |_, _| {
        Reply::Status(200, json!({"rewards": [1.0]}).to_string())
    });
    let err = RemoteReward::new(options(&server))
        .unwrap()
        .score(&items(&texts))
        .unwrap_err();
    assert!(
        matches!(err, RewardError::BadResponse { attempts: 3, .. }),
        "{err}"
    );
    assert!(!err.is_endpoint_down());
    assert!(err.to_string().contains("1 rewards for 2 queries"), "{err}");

    // 503 through every attempt: down.
    let server = Server::start(3, |_, _| Reply::Status(503, "busy".into()));
    let err = RemoteReward::new(options(&server))
        .unwrap()
        .score(&items(&texts))
        .unwrap_err();
    assert!(err.is_endpoint_down(), "{err}");
    assert!(err.to_string().contains("HTTP 503"), "{err}");
}

#[test]
fn a_reward_that_is_not_a_finite_number_names_its_item() {
    // Python's json.dumps writes NaN; a null or a string is no number either.
    for bad in ["NaN", "null", "\"high\"", "Infinity"] {
        let server = Server::start(1, move |_, _| {
            Reply::Status(200, format!("{{\"rewards\": [0.5, {bad}]}}"))
        });
        let reward = RemoteReward::new(options(&server)).unwrap();
        let texts = responses(2);
        let err = reward.score(&items(&texts)).unwrap_err();
        assert!(matches!(err, RewardError::NotFinite { .. }), "{bad}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("completion 1") && text.contains("not a finite number"),
            "{text}"
        );
        // The reward function gave it: not retried.
        assert_eq!(reward.counts().0, 1, "{bad}");
    }
}

#[test]
fn a_second_run_is_answered_from_the_cache() {
    let dir = temp_dir("cache");
    let server = Server::start(2, |_, seen| answer(seen));
    let mut o = options(&server);
    o.batch_size = 2;
    o.cache_dir = Some(dir.clone());
    o.api_key = Some(Secret::new("sk-not-in-the-cache"));
    let texts = responses(4);
    let first = RemoteReward::new(o.clone()).unwrap();
    assert_eq!(
        first.score(&items(&texts)).unwrap(),
        vec![0.0, 1.0, 2.0, 3.0]
    );
    assert_eq!(server.requests().len(), 2);
    let again = RemoteReward::new(o.clone()).unwrap();
    assert_eq!(
        again.score(&items(&texts)).unwrap(),
        vec![0.0, 1.0, 2.0, 3.0]
    );
    assert_eq!(again.counts(), (0, 0, 2));
    assert_eq!(server.requests().len(), 2);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("sk-not-in-the-cache"));
        let record: Value = serde_json::from_str(&text).unwrap();
        assert!(
            record["request"]["url"]
                .as_str()
                .unwrap()
                .ends_with("/get_reward")
        );
    }
    // Another endpoint is another key: a miss (and, with nothing listening, down).
    drop(server);
    let mut other = o;
    other.url = "http://127.0.0.1:9/get_reward".into();
    other.retries = 0;
    let other = RemoteReward::new(other).unwrap();
    assert!(other.score(&items(&texts)).unwrap_err().is_endpoint_down());
    assert_eq!(other.counts().2, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
