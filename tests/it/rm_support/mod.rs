//! Shared helpers of the reward-model integration tests: tiny model folders with
//! word-level tokenizers, generated preference data, the `rmtk` binary.

#![allow(dead_code)] // each test module uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value, json};

/// Words both tiny tokenizers know (`scripts/gen-tiny-tokenizers.py`).
pub const WORDS: [&str; 117] = [
    "the", "a", "of", "and", "to", "in", "is", "it", "that", "was", "he", "for", "on", "are", "as",
    "with", "his", "they", "at", "be", "this", "from", "have", "or", "by", "one", "had", "not",
    "but", "what", "all", "were", "when", "we", "there", "can", "an", "your", "which", "their",
    "said", "if", "do", "will", "each", "about", "how", "up", "out", "them", "then", "she", "many",
    "some", "so", "these", "would", "other", "into", "has", "more", "her", "two", "like", "him",
    "see", "time", "could", "no", "make", "than", "first", "been", "its", "who", "now", "people",
    "my", "made", "over", "did", "down", "only", "way", "find", "use", "may", "water", "long",
    "little", "very", "after", "words", "called", "just", "where", "most", "know", "get",
    "through", "back", "much", "before", "go", "good", "new", "write", "our", "used", "me", "man",
    "too", "any", "day", "same", "right", "look",
];

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub fn rmtk() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rmtk"));
    cmd.env("HF_HUB_OFFLINE", "1").env_remove("RMTK_PROGRESS");
    cmd
}

/// A fresh, empty temporary folder.
pub fn tmp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rmtk-rm-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A model folder: a tiny fixture's config and weights with a word-level tokenizer.
/// `kind` is "llama" or "bert".
pub fn tiny_model(kind: &str, tag: &str) -> PathBuf {
    let dst = tmp(&format!("model-{tag}"));
    let fixture = root().join("tests/fixtures").join(format!("tiny-{kind}"));
    for name in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture.join(name), dst.join(name)).unwrap();
    }
    let tok = root().join("tests/fixtures/tiny-tokenizers").join(kind);
    for name in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(tok.join(name), dst.join(name)).unwrap();
    }
    dst
}

/// A small deterministic generator.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub fn sentence(rng: &mut Lcg, words: usize) -> String {
    (0..words)
        .map(|_| WORDS[rng.below(WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// `n` text-layout pairs; the chosen response always contains "good", the rejected one
/// "bad" (an easy signal for "the loss falls").
pub fn text_pairs(n: usize, seed: u64) -> Vec<Value> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|_| {
            let p = 3 + rng.below(6);
            let c = 2 + rng.below(8);
            let r = 2 + rng.below(8);
            json!({
                "prompt": sentence(&mut rng, p),
                "chosen": format!("{} good", sentence(&mut rng, c)),
                "rejected": format!("{} way", sentence(&mut rng, r)),
            })
        })
        .collect()
}

/// The same pairs in the conversational layout (prompt messages + assistant turns).
pub fn chat_pairs(n: usize, seed: u64) -> Vec<Value> {
    text_pairs(n, seed)
        .into_iter()
        .map(|v| {
            json!({
                "prompt": [{"role": "user", "content": v["prompt"]}],
                "chosen": [{"role": "assistant", "content": v["chosen"]}],
                "rejected": [{"role": "assistant", "content": v["rejected"]}],
            })
        })
        .collect()
}

pub fn write_rows(path: &Path, rows: &[Value]) {
    let rows: Vec<Map<String, Value>> = rows
        .iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect();
    rmtk::data::write_rows(path, &rows).unwrap();
}

/// The records of a metrics.jsonl, without the wall-clock fields.
pub fn metrics(dir: &Path) -> Vec<Map<String, Value>> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut m: Map<String, Value> = serde_json::from_str(l).unwrap();
            m.remove("tokens_per_s");
            m.remove("step_seconds");
            m
        })
        .collect()
}

/// Run and require success; returns stderr.
pub fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{cmd:?} failed: {stderr}");
    stderr
}

/// Run and require success; returns stdout read as one JSON value (`eval-rm`, `info
/// --json`).
pub fn ok_json(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Run and require a clean failure (exit 1, a last line starting `error: `, no panic);
/// returns that line.
pub fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{cmd:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{cmd:?} panicked: {stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or("").to_string();
    assert!(last.starts_with("error: "), "{stderr}");
    last
}

/// Every file under a folder with its bytes (to check nothing changed).
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}
