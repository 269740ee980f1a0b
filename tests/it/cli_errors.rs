//! Bad input to the model commands: each is one clear line on stderr and a non-zero
//! exit, never a panic or a backtrace.

use std::path::{Path, PathBuf};
use std::process::Command;

fn rmtk() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rmtk"));
    cmd.env("RUST_BACKTRACE", "1").env("HF_HUB_OFFLINE", "1");
    cmd
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// A copy of a fixture model in a fresh temporary folder.
fn copy_fixture(name: &str, tag: &str) -> PathBuf {
    let src = root().join("tests/fixtures").join(name);
    let dst = std::env::temp_dir().join(format!("rmtk-cli-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    dst
}

/// Run, and return stderr after checking the failure is clean.
fn fails_cleanly(args: &[&str]) -> String {
    let out = rmtk().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(!stderr.contains("backtrace"), "{args:?}: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: one line expected: {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[test]
fn nonexistent_model_path() {
    let err = fails_cleanly(&["info", "--model", "./no/such/model"]);
    assert!(err.contains("no such folder"), "{err}");
    let err = fails_cleanly(&["generate", "--model", "./no/such/model", "--prompt", "hi"]);
    assert!(err.contains("./no/such/model"), "{err}");
}

#[test]
fn unknown_architecture() {
    let dir = copy_fixture("tiny-llama", "arch");
    let cfg = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"llama\"", "\"gpt2\"");
    std::fs::write(&cfg, text).unwrap();
    let err = fails_cleanly(&["info", "--model", dir.to_str().unwrap()]);
    assert!(err.contains("model type `gpt2` is not supported"), "{err}");
}

#[test]
fn truncated_and_corrupt_safetensors() {
    let dir = copy_fixture("tiny-llama", "trunc");
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails_cleanly(&["info", "--model", dir.to_str().unwrap()]);
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(err.contains("truncated or corrupt"), "{err}");

    std::fs::write(&weights, b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage").unwrap();
    let err = fails_cleanly(&["info", "--model", dir.to_str().unwrap()]);
    assert!(err.contains("truncated or corrupt"), "{err}");
}

#[test]
fn missing_tensor_and_wrong_shape_name_the_tensor() {
    let dir = copy_fixture("tiny-llama", "shape");
    let cfg = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"intermediate_size\": 160", "\"intermediate_size\": 128");
    std::fs::write(&cfg, text).unwrap();
    // Generation needs a tokenizer: borrow SmolLM2's only if present; the shape check runs first.
    let err = fails_cleanly(&["info", "--model", dir.to_str().unwrap()]);
    assert!(err.contains("model.layers.0.mlp.gate_proj.weight"), "{err}");
    assert!(
        err.contains("[160, 64]") && err.contains("[128, 64]"),
        "{err}"
    );

    let dir = copy_fixture("tiny-qwen2", "missing");
    let index = dir.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index).unwrap();
    let shard = text
        .lines()
        .find(|l| l.contains("model.norm.weight"))
        .and_then(|l| l.split('"').nth(3))
        .unwrap()
        .to_string();
    std::fs::remove_file(dir.join(&shard)).unwrap();
    let err = fails_cleanly(&["info", "--model", dir.to_str().unwrap()]);
    assert!(err.contains(&shard), "{err}");
}

#[test]
fn tokenizer_that_does_not_fit_the_embedding() {
    let smol = root().join("models/smollm2-135m-instruct/tokenizer.json");
    assert!(smol.is_file(), "run scripts/fetch-models.sh first");
    let dir = copy_fixture("tiny-llama", "tok");
    std::fs::copy(&smol, dir.join("tokenizer.json")).unwrap();
    let err = fails_cleanly(&[
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompt",
        "hi",
    ]);
    assert!(err.contains("embedding has only 256 rows"), "{err}");
}

#[test]
fn empty_prompt() {
    let smol = root().join("models/smollm2-135m-instruct");
    assert!(smol.is_dir(), "run scripts/fetch-models.sh first");
    let err = fails_cleanly(&[
        "generate",
        "--model",
        smol.to_str().unwrap(),
        "--prompt",
        "",
    ]);
    assert!(err.contains("prompt is empty"), "{err}");
}

#[test]
fn cuda_is_a_clear_error_without_the_feature() {
    if cfg!(feature = "cuda") {
        return;
    }
    let smol = root().join("models/smollm2-135m-instruct");
    let err = fails_cleanly(&[
        "generate",
        "--model",
        smol.to_str().unwrap(),
        "--prompt",
        "hi",
        "--device",
        "cuda",
    ]);
    assert!(err.contains("built without CUDA"), "{err}");
}
