//! Kill and resume: a `train-rm` run killed with SIGKILL after a checkpoint and resumed
//! with `--resume` ends with the same weights, bit for bit, and the same metrics as a
//! run never interrupted (tiny decoder, grad accumulation, warmup + cosine schedule,
//! weight decay, clipping, periodic evaluation).

use crate::rm_support;

use std::time::{Duration, Instant};

use rm_support::*;

#[test]
fn killed_and_resumed_run_ends_bitwise_identical() {
    let model = tiny_model("llama", "resume");
    let dir = tmp("resume");
    let data = dir.join("train.parquet");
    write_rows(&data, &text_pairs(44, 11));
    let args = |out: &std::path::Path| -> Vec<String> {
        [
            "train-rm",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--batch-size",
            "4",
            "--grad-accum",
            "2",
            "--epochs",
            "8",
            "--lr",
            "2e-3",
            "--weight-decay",
            "0.01",
            "--lr-scheduler",
            "cosine",
            "--warmup-steps",
            "3",
            "--max-grad-norm",
            "0.5",
            "--eval-fraction",
            "0.1",
            "--eval-every",
            "5",
            "--save-every",
            "2",
            "--seed",
            "9",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };

    let whole = dir.join("whole");
    ok(rmtk().args(args(&whole)));

    // Start again, and kill it once a checkpoint past the first few exists.
    let cut = dir.join("cut");
    let mut child = rmtk()
        .args(args(&cut))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let pointer = cut.join("latest");
    loop {
        let step = std::fs::read_to_string(&pointer).ok().and_then(|s| {
            s.trim()
                .strip_prefix("checkpoint-")
                .and_then(|n| n.parse::<u64>().ok())
        });
        if step.is_some_and(|s| s >= 6) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "the run was not killed mid-way: {status:?}"
        );
    }
    assert!(
        !cut.join("model.safetensors").exists(),
        "the run had already finished"
    );

    let log = ok(rmtk().args(["train-rm", "--resume", cut.to_str().unwrap()]));
    assert!(log.contains("resuming"), "{log}");

    let a = std::fs::read(whole.join("model.safetensors")).unwrap();
    let b = std::fs::read(cut.join("model.safetensors")).unwrap();
    assert!(
        a == b,
        "the resumed run's weights differ from the uninterrupted run's"
    );
    assert_eq!(metrics(&whole), metrics(&cut));
    // Each evaluation's per-pair rewards (for `rmtk plot`) are cut back and redone alike.
    let rewards = |d: &std::path::Path| std::fs::read(d.join("eval_rewards.jsonl")).unwrap();
    let evals = metrics(&whole)
        .iter()
        .filter(|r| r.contains_key("eval_loss"))
        .count();
    assert_eq!(
        String::from_utf8(rewards(&whole)).unwrap().lines().count(),
        evals,
        "a line per evaluation"
    );
    assert!(rewards(&whole) == rewards(&cut), "eval rewards differ");
    let last_ck =
        |d: &std::path::Path| std::fs::read(d.join("checkpoint-22/optimizer.safetensors")).unwrap();
    assert!(last_ck(&whole) == last_ck(&cut), "optimizer states differ");
}
