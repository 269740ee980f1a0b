//! `rmtk grpo` end to end on tiny models: a tiny Llama policy (word-level tokenizer),
//! a reward model trained by `rmtk train-rm` on a tiny BERT (another tokenizer: each
//! model tokenizes its own text), and IFEval rules as constraints. Checks the metrics,
//! samples and checkpoints, the TOML config, a bitwise kill-and-resume, and bad input:
//! empty or unverifiable prompt files, non-finite rewards, a verifier endpoint that
//! is down; and the writing reward from an HTTP endpoint (`--reward-url`).

use crate::rm_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rm_support::*;
use serde_json::{Value, json};

/// Prompts of words from the tiny tokenizer's vocabulary, each asking for fewer than
/// `limit` words (a sampled completion sometimes meets it, sometimes not).
fn prompt_rows(n: usize, seed: u64, limit: u64) -> Vec<Value> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|_| {
            json!({
                "prompt": sentence(&mut rng, 5),
                "instruction_id_list": ["length_constraints:number_words"],
                "kwargs": [{"relation": "less than", "num_words": limit}],
            })
        })
        .collect()
}

/// A tiny policy, a tiny reward model trained by rmtk, and train/eval prompt files.
struct Setup {
    dir: PathBuf,
    policy: PathBuf,
    rm: PathBuf,
    train: PathBuf,
    eval: PathBuf,
}

fn setup(tag: &str) -> Setup {
    let dir = tmp(&format!("grpo-{tag}"));
    let policy = tiny_model("llama", &format!("grpo-policy-{tag}"));
    let backbone = tiny_model("bert", &format!("grpo-rm-{tag}"));
    let prefs = dir.join("prefs.jsonl");
    write_rows(&prefs, &text_pairs(24, 3));
    let rm = dir.join("rm");
    ok(rmtk().args([
        "train-rm",
        "--model",
        backbone.to_str().unwrap(),
        "--data",
        prefs.to_str().unwrap(),
        "--output",
        rm.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--save-every",
        "0",
    ]));
    let train = dir.join("train.jsonl");
    write_rows(&train, &prompt_rows(10, 5, 14));
    let eval = dir.join("eval.parquet");
    write_rows(&eval, &prompt_rows(4, 77, 14));
    Setup {
        dir,
        policy,
        rm,
        train,
        eval,
    }
}

fn grpo_args(s: &Setup, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "grpo",
        "--policy",
        s.policy.to_str().unwrap(),
        "--reward-model",
        s.rm.to_str().unwrap(),
        "--prompts",
        s.train.to_str().unwrap(),
        "--eval-prompts",
        s.eval.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--num-generations",
        "4",
        "--batch-prompts",
        "2",
        "--max-new-tokens",
        "14",
        "--lr",
        "1e-3",
        "--seed",
        "7",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn train_lines(out: &Path) -> Vec<serde_json::Map<String, Value>> {
    metrics(out)
        .into_iter()
        .filter(|r| r.get("split").is_none())
        .collect()
}

#[test]
fn grpo_trains_logs_and_saves_loadable_checkpoints() {
    let s = setup("e2e");
    let out = s.dir.join("run");
    // Some options from a TOML file; the command line overrides one of them.
    let toml = s.dir.join("run.toml");
    std::fs::write(
        &toml,
        "max_steps = 3\nsave_every = 2\neval-every = 2\nppo_epochs = 2\nmini_batches = 2\nbeta = 0.05\nmicro_batch_size = 3\noverlong = \"soft\"\noverlong_cache = 4\nsamples_per_step = 1000\n",
    )
    .unwrap();
    let log = ok(rmtk().args(grpo_args(
        &s,
        &out,
        &["--config", toml.to_str().unwrap(), "--max-steps", "4"],
    )));
    assert!(log.contains("done: 4 steps"), "{log}");

    let lines = train_lines(&out);
    assert_eq!(lines.len(), 4, "one line per step");
    let raw = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(raw.matches("\"tokens_per_s\"").count(), 4, "{raw}");
    for (i, rec) in lines.iter().enumerate() {
        assert_eq!(rec["step"], json!(i + 1));
        for key in [
            "pass_rate",
            "writing_reward_mean",
            "writing_reward_std",
            "delta_mean",
            "violators",
            "filtered_group_rate",
            "generation_rounds",
            "response_len_mean",
            "response_len_max",
            "truncation_rate",
            "time_generation_s",
            "time_scoring_s",
            "generation_tokens_per_s",
        ] {
            assert!(rec.contains_key(key), "step {}: no {key} in {rec:?}", i + 1);
        }
        if rec.get("skipped").is_none() {
            for key in [
                "kl",
                "clip_fraction",
                "entropy",
                "loss",
                "grad_norm",
                "time_update_s",
            ] {
                assert!(rec[key].is_number(), "step {}: {key} in {rec:?}", i + 1);
            }
            // Two PPO epochs of two mini-batches: four updates a step.
            assert_eq!(rec["updates"], json!(4));
        }
        // Under RLMR every violator the update sees has a negative advantage.
        if let Some(f) = rec["violator_negative_adv_frac"].as_f64() {
            assert_eq!(f, 1.0, "step {}", i + 1);
        }
    }
    let updated = lines.iter().filter(|r| r.get("skipped").is_none()).count();
    assert!(
        updated >= 2,
        "only {updated} of 4 steps made an update: {lines:?}"
    );
    let samples: Vec<Value> = std::fs::read_to_string(out.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    check_trl_metrics(&lines, &samples, 4);
    let evals: Vec<_> = metrics(&out)
        .into_iter()
        .filter(|r| r.get("split") == Some(&json!("eval")))
        .collect();
    let eval_steps: Vec<u64> = evals.iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(eval_steps, vec![0, 2, 4]);
    for r in &evals {
        for (trl, own) in [
            ("completions/mean_length", "response_len_mean"),
            ("completions/max_length", "response_len_max"),
            ("completions/clipped_ratio", "truncation_rate"),
        ] {
            assert_eq!(r[trl], r[own], "{r:?}");
        }
    }

    let samples = std::fs::read_to_string(out.join("samples.jsonl")).unwrap();
    let first: Value = serde_json::from_str(samples.lines().next().unwrap()).unwrap();
    for key in [
        "prompt",
        "completion",
        "writing_reward",
        "pass",
        "advantage",
    ] {
        assert!(first.get(key).is_some(), "sample without {key}: {first}");
    }
    // Checkpoints 2 and 4, each a Hugging Face folder rmtk generate loads.
    assert_eq!(
        std::fs::read_to_string(out.join("latest")).unwrap().trim(),
        "checkpoint-4"
    );
    for dir in [out.join("checkpoint-2"), out.clone()] {
        for f in ["model.safetensors", "config.json", "tokenizer.json"] {
            assert!(dir.join(f).is_file(), "{} has no {f}", dir.display());
        }
        let text = ok(rmtk().args([
            "generate",
            "--model",
            dir.to_str().unwrap(),
            "--prompt",
            "the cat",
            "--greedy",
            "--max-new-tokens",
            "4",
        ]));
        let _ = text;
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("train_summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["steps"], json!(4));
    assert!(summary["first_eval"]["pass_rate"].is_number());

    // The same output folder again is refused, and nothing in it changes.
    let before = std::fs::read(out.join("model.safetensors")).unwrap();
    let err = fails(rmtk().args(grpo_args(&s, &out, &["--max-steps", "1"])));
    assert!(err.contains("already holds a GRPO run"), "{err}");
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        before
    );

    // rmtk plot draws the run.
    ok(rmtk().args(["plot", out.to_str().unwrap()]));
    assert!(out.join("metrics.png").is_file());
}

/// TRL GRPOTrainer's names beside rmtk's, on every train line: the lengths equal rmtk's;
/// `reward` and `reward_std` are those of every completion the step generated (all in
/// `samples.jsonl` here, as `reward`, or `writing_reward + w * pass` under GDPO:
/// `gdpo_weight`), dropped groups included; the loss-side ones are plausible and
/// consistent with rmtk's.
fn check_trl_metrics(lines: &[serde_json::Map<String, Value>], samples: &[Value], n: usize) {
    check_trl_metrics_with(lines, samples, n, None)
}

fn check_trl_metrics_with(
    lines: &[serde_json::Map<String, Value>],
    samples: &[Value],
    n: usize,
    gdpo_weight: Option<f64>,
) {
    let f = |r: &serde_json::Map<String, Value>, k: &str| {
        r[k].as_f64().unwrap_or_else(|| panic!("no {k} in {r:?}"))
    };
    for r in lines {
        let step = r["step"].clone();
        for (trl, own) in [
            ("completions/mean_length", "response_len_mean"),
            ("completions/max_length", "response_len_max"),
            ("completions/clipped_ratio", "truncation_rate"),
        ] {
            assert_eq!(r[trl], r[own], "step {step}: {trl}");
        }
        let (min, max) = (
            f(r, "completions/min_length"),
            f(r, "completions/max_length"),
        );
        assert!(min <= f(r, "completions/mean_length") && min >= 0.0);
        let term = f(r, "completions/mean_terminated_length");
        assert!(term == 0.0 || (term >= f(r, "completions/min_terminated_length") && term <= max));
        // Every completion generated in the step, dropped groups included.
        let rows: Vec<&Value> = samples.iter().filter(|s| s["step"] == step).collect();
        let generated = f(r, "generated_tokens");
        let tokens: f64 = rows.iter().map(|s| s["tokens"].as_f64().unwrap()).sum();
        assert_eq!(
            tokens, generated,
            "step {step}: samples.jsonl holds every completion"
        );
        let reward = |s: &Value| match gdpo_weight {
            Some(w) => {
                s["writing_reward"].as_f64().unwrap()
                    + w * f64::from(u8::from(s["pass"].as_bool().unwrap()))
            }
            None => s["reward"].as_f64().unwrap(),
        };
        let rewards: Vec<f64> = rows.iter().map(|s| reward(s)).collect();
        let k = rewards.len() as f64;
        let mean = rewards.iter().sum::<f64>() / k;
        let std = (rewards.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
        let tol = 1e-5 * (1.0 + mean.abs() + std);
        assert!(
            (f(r, "reward") - mean).abs() < tol,
            "step {step}: {} vs {mean}",
            f(r, "reward")
        );
        assert!(
            (f(r, "reward_std") - std).abs() < tol,
            "step {step}: {} vs {std}",
            f(r, "reward_std")
        );
        // Whole groups: a multiple of n completions out of all of them.
        let zero = f(r, "frac_reward_zero_std");
        assert!((0.0..=1.0).contains(&zero));
        if gdpo_weight.is_some() {
            assert!(
                zero == 0.0 || zero == 1.0,
                "GDPO tests the batch's std: {zero}"
            );
        } else {
            let groups = zero * k / n as f64;
            assert!(
                (groups - groups.round()).abs() < 1e-4,
                "step {step}: {zero}"
            );
        }
        if r.get("skipped").is_some() {
            assert!(r.get("clip_ratio/region_mean").is_none());
            continue;
        }
        let (low, high, region) = (
            f(r, "clip_ratio/low_mean"),
            f(r, "clip_ratio/high_mean"),
            f(r, "clip_ratio/region_mean"),
        );
        for v in [
            low,
            high,
            region,
            f(r, "clip_ratio/low_min"),
            f(r, "clip_ratio/high_max"),
        ] {
            assert!((0.0..=1.0).contains(&v), "step {step}: {r:?}");
        }
        assert!((low + high - region).abs() < 1e-5, "step {step}: {r:?}");
        // No clipped token for rmtk, none for TRL, and the other way round.
        assert_eq!(
            region == 0.0,
            f(r, "clip_fraction") == 0.0,
            "step {step}: {r:?}"
        );
        // kl and entropy: rmtk's under their names, TRL's means over micro-batches under trl/.
        let (ent, trl_ent) = (f(r, "entropy"), f(r, "trl/entropy"));
        assert!(ent > 0.0 && trl_ent > 0.0 && trl_ent < 2.0 * ent && ent < 2.0 * trl_ent);
        if let Some(kl) = r.get("kl").and_then(Value::as_f64) {
            // k3 is never negative (up to f32 rounding at a ratio of 1).
            let trl_kl = f(r, "trl/kl");
            assert!(kl > -1e-6 && trl_kl > -1e-6, "step {step}: {r:?}");
            assert!(kl.is_finite() && trl_kl.is_finite(), "step {step}: {r:?}");
        } else {
            assert!(r.get("trl/kl").is_none(), "no reference, no kl: {r:?}");
        }
    }
}

#[test]
fn killed_and_resumed_grpo_run_ends_bitwise_identical() {
    let s = setup("resume");
    let extra = [
        "--max-steps",
        "10",
        "--save-every",
        "2",
        "--beta",
        "0.02",
        "--ppo-epochs",
        "2",
        "--lr-scheduler",
        "cosine",
        "--warmup-steps",
        "2",
    ];
    let whole = s.dir.join("whole");
    ok(rmtk().args(grpo_args(&s, &whole, &extra)));
    let updated = train_lines(&whole)
        .iter()
        .filter(|r| r.get("skipped").is_none())
        .count();
    assert!(updated >= 4, "only {updated} of 10 steps made an update");

    let cut = s.dir.join("cut");
    let mut child = rmtk()
        .args(grpo_args(&s, &cut, &extra))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let step = std::fs::read_to_string(cut.join("latest"))
            .ok()
            .and_then(|t| {
                t.trim()
                    .strip_prefix("checkpoint-")
                    .and_then(|n| n.parse::<u64>().ok())
            });
        if step.is_some_and(|s| s >= 4) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_secs(300));
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!cut.join("train_summary.json").exists(), "killed too late");

    let log = ok(rmtk().args(["grpo", "--resume", cut.to_str().unwrap()]));
    assert!(log.contains("resuming"), "{log}");
    assert_eq!(
        std::fs::read(whole.join("model.safetensors")).unwrap(),
        std::fs::read(cut.join("model.safetensors")).unwrap(),
        "the resumed run ends with different weights"
    );
    // The metrics read as if the run had never stopped.
    let strip = |rows: Vec<serde_json::Map<String, Value>>| -> Vec<Value> {
        rows.into_iter()
            .map(|mut r| {
                r.retain(|k, _| {
                    !k.starts_with("time_") && !k.contains("per_s") && k != "step_time_s"
                });
                Value::Object(r)
            })
            .collect()
    };
    assert_eq!(strip(metrics(&whole)), strip(metrics(&cut)));
}

#[test]
fn bad_prompt_files_name_file_row_and_column() {
    let s = setup("bad");
    let run = |prompts: &Path, tag: &str| {
        let out = s.dir.join(tag);
        let mut args = grpo_args(&s, &out, &["--max-steps", "1"]);
        let i = args.iter().position(|a| a == "--prompts").unwrap();
        args[i + 1] = prompts.to_str().unwrap().to_string();
        fails(rmtk().args(args))
    };
    let empty = s.dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let err = run(&empty, "empty");
    assert!(err.contains("empty.jsonl") && err.contains("no"), "{err}");

    // A row without constraints cannot be verified by the rules alone.
    let mut rows = prompt_rows(3, 1, 9);
    rows[1] = json!({"prompt": "write about the sea"});
    let none = s.dir.join("none.jsonl");
    write_rows(&none, &rows);
    let err = run(&none, "none");
    assert!(
        err.contains("none.jsonl")
            && err.contains("row 1")
            && err.contains("instruction_id_list")
            && err.contains("judge"),
        "{err}"
    );

    // A misspelled column lists the columns found.
    let wrong = s.dir.join("wrong.jsonl");
    write_rows(&wrong, &[json!({"promt": "x", "instruction_id_list": []})]);
    let err = run(&wrong, "wrong");
    assert!(err.contains("prompt") && err.contains("promt"), "{err}");

    // An unknown instruction id names the row and the column.
    let mut rows = prompt_rows(2, 1, 9);
    rows[1]["instruction_id_list"] = json!(["length_constraints:number_wordz"]);
    let unknown = s.dir.join("unknown.jsonl");
    write_rows(&unknown, &rows);
    let err = run(&unknown, "unknown");
    assert!(
        err.contains("row 1") && err.contains("number_wordz"),
        "{err}"
    );
    // Nothing was created for runs that never started.
    assert!(!s.dir.join("none").join("metrics.jsonl").exists());
}

/// A copy of a reward model whose head outputs NaN.
fn nan_reward_model(rm: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(rm).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() && p.file_name().unwrap() != "model.safetensors" {
            std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    }
    let bytes = std::fs::read(rm.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        let mut data = view.data().to_vec();
        if name == "classifier.weight" || name == "score.weight" {
            assert_eq!(view.dtype(), safetensors::Dtype::F32);
            for chunk in data.chunks_mut(4) {
                chunk.copy_from_slice(&f32::NAN.to_le_bytes());
            }
        }
        owned.push((name, view.dtype(), view.shape().to_vec(), data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dst.join("model.safetensors")).unwrap();
}

#[test]
fn non_finite_rewards_skip_the_step_and_training_goes_on() {
    let s = setup("nan");
    let nan_rm = s.dir.join("nan-rm");
    nan_reward_model(&s.rm, &nan_rm);
    let out = s.dir.join("run");
    let mut args = grpo_args(&s, &out, &["--max-steps", "2"]);
    let i = args.iter().position(|a| a == "--reward-model").unwrap();
    args[i + 1] = nan_rm.to_str().unwrap().to_string();
    let log = ok(rmtk().args(args));
    assert!(
        log.contains("skipped") && log.contains("non-finite"),
        "{log}"
    );
    let lines = train_lines(&out);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|r| r["skipped"].is_string()), "{lines:?}");
    // No update was made, and the run still saved its policy.
    assert!(
        lines.iter().all(|r| r.get("updates").is_none()),
        "{lines:?}"
    );
    assert!(out.join("model.safetensors").is_file());
}

#[test]
fn a_verifier_endpoint_that_is_down_stops_the_run_with_its_checkpoint_intact() {
    let s = setup("down");
    let out = s.dir.join("run");
    ok(rmtk().args(grpo_args(
        &s,
        &out,
        &["--max-steps", "2", "--save-every", "2"],
    )));
    let weights = std::fs::read(out.join("checkpoint-2/model.safetensors")).unwrap();
    // Continue with a hybrid verifier whose remote judge cannot be reached (a port
    // nothing listens on), on prompts that also carry a free-text constraint.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = fails(rmtk().args([
        "grpo",
        "--resume",
        out.to_str().unwrap(),
        "--max-steps",
        "4",
        "--mode",
        "hybrid",
        "--judge-model",
        "judge",
        "--judge-url",
        &format!("http://127.0.0.1:{port}/v1"),
        "--judge-retries",
        "1",
        "--judge-backoff",
        "0",
        "--judge-timeout",
        "2",
        "--no-judge-cache",
        "--constraints-column",
        "prompt",
    ]));
    assert!(
        err.contains("endpoint is down")
            && err.contains("checkpoint-2")
            && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("checkpoint-2/model.safetensors")).unwrap(),
        weights
    );
    assert_eq!(
        std::fs::read_to_string(out.join("latest")).unwrap().trim(),
        "checkpoint-2"
    );
}

#[test]
fn gdpo_normalises_each_reward_in_its_group_and_advantages_over_the_batch() {
    let s = setup("gdpo");
    let out = s.dir.join("run");
    ok(rmtk().args(grpo_args(
        &s,
        &out,
        &[
            "--max-steps",
            "2",
            "--mixing",
            "gdpo",
            "--constraint-weight",
            "0.5",
            "--samples-per-step",
            "1000",
        ],
    )));
    let samples: Vec<Value> = std::fs::read_to_string(out.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    check_trl_metrics_with(&train_lines(&out), &samples, 4, Some(0.5));
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap();
    let mut checked = 0;
    for step in [1, 2] {
        let rows: Vec<&Value> = samples.iter().filter(|v| v["step"] == step).collect();
        assert_eq!(rows.len() % 4, 0, "whole groups of 4");
        // Each reward is centred within its group, so their weighted sum is too.
        for g in rows.chunks(4) {
            let sum: f64 = g.iter().map(|v| f(v, "reward")).sum();
            assert!(sum.abs() < 1e-6, "step {step}: group rewards sum to {sum}");
        }
        // Advantages: the kept responses' rewards normalised over the batch.
        let kept: Vec<&&Value> = rows.iter().filter(|v| v["kept"] == true).collect();
        if kept.len() < 2 {
            continue;
        }
        let r: Vec<f64> = kept.iter().map(|v| f(v, "reward")).collect();
        let m = r.iter().sum::<f64>() / r.len() as f64;
        let sd = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (r.len() - 1) as f64).sqrt();
        for (v, x) in kept.iter().zip(&r) {
            let want = (x - m) / (sd + 1e-4);
            assert!((f(v, "advantage") - want).abs() < 1e-4, "step {step}");
        }
        checked += 1;
    }
    assert!(checked > 0, "no step kept two responses");
}

#[test]
fn a_rubric_gates_with_its_hard_items_and_adds_its_weighted_score() {
    let s = setup("rubric");
    // Rubric rows instead of listed constraints: the hard item is the same length
    // limit, two soft items of other lengths give the score.
    let rubric_rows = |n: usize, seed: u64| -> Vec<Value> {
        let mut rng = Lcg(seed);
        (0..n)
            .map(|_| {
                json!({
                    "prompt": sentence(&mut rng, 5),
                    "rubric": [
                        {"criterion": "Fewer than 14 words", "hard": true,
                         "check": {"rule": "length_constraints:number_words", "kwargs": {"relation": "less than", "num_words": 14}}},
                        {"criterion": "Fewer than 8 words", "weight": 3,
                         "check": {"rule": "length_constraints:number_words", "kwargs": {"relation": "less than", "num_words": 8}}},
                        {"criterion": "At least 4 words",
                         "check": {"rule": "length_constraints:number_words", "kwargs": {"relation": "at least", "num_words": 4}}},
                    ],
                })
            })
            .collect()
    };
    let train = s.dir.join("rubric-train.jsonl");
    write_rows(&train, &rubric_rows(10, 5));
    let eval = s.dir.join("rubric-eval.jsonl");
    write_rows(&eval, &rubric_rows(4, 77));
    let out = s.dir.join("run");
    let mut args = grpo_args(
        &s,
        &out,
        &[
            "--max-steps",
            "2",
            "--rubric-weight",
            "0.5",
            "--samples-per-step",
            "1000",
        ],
    );
    let at = |a: &Vec<String>, flag: &str| a.iter().position(|x| x == flag).unwrap() + 1;
    let (p, e) = (at(&args, "--prompts"), at(&args, "--eval-prompts"));
    args[p] = train.to_str().unwrap().into();
    args[e] = eval.to_str().unwrap().into();
    ok(rmtk().args(&args));

    let samples = read_samples(&out.join("samples.jsonl"));
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or_else(|| panic!("no {k} in {v}"));
    let (mut compliant, mut violators) = (0, 0);
    for v in &samples {
        let items: Vec<f64> = v["rubric_scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(items.len(), 3);
        // The verdict is the hard item's; the score the soft items' weighted mean.
        assert_eq!(v["pass"].as_bool().unwrap(), items[0] == 1.0, "{v}");
        let want = (3.0 * items[1] + items[2]) / 4.0;
        assert!((f(v, "rubric_score") - want).abs() < 1e-9, "{v}");
        if v["pass"] == true {
            // A compliant response keeps writing + w * rubric (RLMR leaves it as is).
            let sum = f(v, "writing_reward") + 0.5 * want;
            assert!((f(v, "reward") - sum).abs() < 1e-5, "{v}");
            compliant += 1;
        } else {
            violators += 1;
            if v["kept"] == true {
                assert!(f(v, "advantage") < 0.0, "a kept violator: {v}");
            }
        }
    }
    assert!(compliant > 0 && violators > 0, "{compliant} / {violators}");
    // RLMR on the sum: in a group with both kinds, every violator's reward trails the
    // group's mean by gamma (1), however high its rubric score.
    let mut mixed_groups = 0;
    for g in samples.chunks(4) {
        let pass: Vec<bool> = g.iter().map(|v| v["pass"] == true).collect();
        if pass.iter().all(|p| *p) || pass.iter().all(|p| !*p) {
            continue;
        }
        let mean = g.iter().map(|v| f(v, "reward")).sum::<f64>() / 4.0;
        for v in g.iter().filter(|v| v["pass"] == false) {
            assert!(f(v, "reward") <= mean - 1.0 + 1e-5, "{v} vs mean {mean}");
        }
        mixed_groups += 1;
    }
    assert!(
        mixed_groups > 0,
        "no group with violators and compliant responses"
    );
    for r in train_lines(&out) {
        assert!(r["rubric_score_mean"].as_f64().is_some(), "{r:?}");
        assert_eq!(r["rubric_score_mean"], r["rewards/rubric/mean"]);
        let hard = r["rubric_hard_pass_rate"].as_f64().unwrap();
        assert!((hard - r["pass_rate"].as_f64().unwrap()).abs() < 1e-9);
    }
    let evals: Vec<_> = metrics(&out)
        .into_iter()
        .filter(|r| r.get("split").is_some())
        .collect();
    assert!(!evals.is_empty());
    assert!(evals.iter().all(|r| r["rubric_score_mean"].is_number()));
}

#[test]
fn constraint_only_logs_the_writing_reward_when_given_a_reward_model() {
    let s = setup("conly");
    let out = s.dir.join("run");
    ok(rmtk().args(grpo_args(
        &s,
        &out,
        &["--max-steps", "1", "--mixing", "constraint-only"],
    )));
    let lines = metrics(&out);
    assert!(
        lines.iter().all(|r| r["writing_reward_mean"].is_number()),
        "{lines:?}"
    );
    // Without one, it trains on the verdicts alone.
    let out = s.dir.join("run-no-rm");
    let mut args = grpo_args(
        &s,
        &out,
        &["--max-steps", "1", "--mixing", "constraint-only"],
    );
    let i = args.iter().position(|a| a == "--reward-model").unwrap();
    args.drain(i..i + 2);
    ok(rmtk().args(args));
    assert!(
        metrics(&out)
            .iter()
            .all(|r| r.get("writing_reward_mean").is_none())
    );
}

#[test]
fn lora_policy_trains_against_its_base_saves_a_peft_adapter_and_resumes_bitwise() {
    lora_run("lora", "f32");
}

/// The same in bf16: the frozen base in bf16 (rollouts, the reference's and the policy's
/// log-probs), f32 adapters; resume is still bit for bit on the CPU.
#[test]
fn bf16_lora_policy_trains_and_resumes_bitwise() {
    lora_run("lora-bf16", "bf16");
}

/// f16: the same with dynamic loss scaling, whose state resumes with the run.
#[test]
fn f16_lora_policy_trains_and_resumes_bitwise() {
    lora_run("lora-f16", "f16");
}

/// Full fine-tuning in bf16 and f16: f32 master weights computing in the reduced dtype
/// (the reference held in it); the policy moves, f16 logs its loss scale, and the export
/// keeps the base's stored dtype.
#[test]
fn reduced_precision_full_fine_tuning_trains_f32_masters() {
    let s = setup("full-lowp");
    for dtype in ["bf16", "f16"] {
        let out = s.dir.join(dtype);
        let log = ok(rmtk().args(grpo_args(
            &s,
            &out,
            &["--dtype", dtype, "--max-steps", "2", "--beta", "0.05"],
        )));
        // The memory estimate at the start, the measured peak beside it at the end.
        assert!(
            log.contains("memory estimate for a step") && log.contains("memory: peak resident"),
            "{log}"
        );
        let lines = train_lines(&out);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let updated: Vec<_> = lines.iter().filter(|r| r.contains_key("loss")).collect();
        assert!(!updated.is_empty(), "{lines:?}");
        for r in updated {
            assert!(r["loss"].as_f64().is_some_and(f64::is_finite), "{r:?}");
            assert_eq!(r.contains_key("loss_scale"), dtype == "f16", "{r:?}");
        }
        let w = rmtk::models::load::Weights::from_files(&[out.join("model.safetensors")]).unwrap();
        assert_eq!(format!("{:?}", w.dominant_dtype().unwrap()), "F32");
        let base =
            rmtk::models::load::Weights::from_files(&[s.policy.join("model.safetensors")]).unwrap();
        let name = "model.layers.0.self_attn.q_proj.weight";
        let moved = w.read_f32(name).unwrap().unwrap().0 != base.read_f32(name).unwrap().unwrap().0;
        assert!(moved, "{dtype}: the policy did not move");
    }
}

fn lora_run(tag: &str, dtype: &str) {
    let s = setup(tag);
    let extra = [
        "--dtype",
        dtype,
        "--max-steps",
        "6",
        "--save-every",
        "2",
        "--beta",
        "0.05",
        "--ppo-epochs",
        "2",
        "--lora-r",
        "4",
        "--lora-alpha",
        "16",
        "--lora-dropout",
        "0.1",
        "--lora-target-modules",
        "all-linear",
        "--merge-lora",
    ];
    let whole = s.dir.join("whole");
    let log = ok(rmtk().args(grpo_args(&s, &whole, &extra)));
    assert!(
        log.contains("LoRA r=4 alpha=16 on 14 linear layers"),
        "{log}"
    );
    // The KL term is measured against the base (adapters off) and grows once the
    // adapters move.
    let kls: Vec<f64> = train_lines(&whole)
        .iter()
        .filter_map(|r| r.get("kl").and_then(Value::as_f64))
        .collect();
    assert!(kls.iter().any(|&k| k > 0.0), "{kls:?}");

    // A PEFT causal-LM adapter: factors only, no head, no full weights.
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(whole.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(config["task_type"], json!("CAUSAL_LM"));
    assert_eq!(config["modules_to_save"], json!([]));
    assert!(!whole.join("model.safetensors").exists());
    let w = rmtk::models::load::Weights::from_files(&[whole.join("adapter_model.safetensors")])
        .unwrap();
    assert_eq!(w.names().count(), 2 * 14);
    assert!(w.names().all(|n| n.contains(".lora_")));
    // The merged export is a plain causal LM that rmtk (and transformers) load.
    assert!(whole.join("merged/model.safetensors").is_file());
    for model in [whole.clone(), whole.join("merged")] {
        let out = ok(rmtk().args([
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "the day",
            "--max-new-tokens",
            "4",
            "--greedy",
            "--dtype",
            dtype,
        ]));
        assert!(!out.is_empty());
    }

    // The same run again, cut back to its checkpoint at step 2 and resumed: the same
    // adapter, bit for bit (dropout masks included).
    let cut = s.dir.join("cut");
    ok(rmtk().args(grpo_args(&s, &cut, &extra)));
    for entry in std::fs::read_dir(&cut).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let keep = name == "checkpoint-2" || !(p.is_dir() || name.starts_with("adapter_"));
        if !keep || name == "train_summary.json" {
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
    std::fs::write(cut.join("latest"), "checkpoint-2").unwrap();
    let log = ok(rmtk().args(["grpo", "--resume", cut.to_str().unwrap()]));
    assert!(log.contains("resuming"), "{log}");
    assert!(
        std::fs::read(whole.join("adapter_model.safetensors")).unwrap()
            == std::fs::read(cut.join("adapter_model.safetensors")).unwrap(),
        "the resumed run ends with a different adapter"
    );
}

/// `rmtk info --memory --for grpo` sizes a GRPO step of a policy: a KL term without LoRA
/// adds the reference's weights, and the policy must be a decoder.
#[test]
fn info_sizes_a_grpo_step() {
    let policy = tiny_model("llama", "info-grpo");
    let info = |extra: &[&str]| -> Value {
        let mut args = vec![
            "info",
            "--model",
            policy.to_str().unwrap(),
            "--memory",
            "--json",
            "--for",
            "grpo",
            "--prompt-length",
            "20",
            "--max-new-tokens",
            "12",
        ];
        args.extend_from_slice(extra);
        ok_json(rmtk().args(&args))
    };
    let plain = info(&[]);
    assert_eq!(plain["job"], json!("grpo"));
    assert_eq!(plain["tokens_per_micro_batch"], json!(4 * (20 + 12)));
    let params = plain["parameters"].as_u64().unwrap();
    let peak = |v: &Value| v["bytes"]["peak"].as_u64().unwrap();
    assert_eq!(peak(&info(&["--beta", "0.1"])) - peak(&plain), params * 4);
    assert_eq!(
        peak(&info(&["--beta", "0.1", "--dtype", "bf16"])) - peak(&info(&["--dtype", "bf16"])),
        params * 2
    );
    // Under LoRA the reference is the base: nothing more.
    let lora = ["--lora-r", "4"];
    assert_eq!(
        peak(&info(&[&lora[..], &["--beta", "0.1"]].concat())),
        peak(&info(&lora))
    );
    let encoder = tiny_model("bert", "info-grpo-bert");
    let err = fails(rmtk().args([
        "info",
        "--model",
        encoder.to_str().unwrap(),
        "--memory",
        "--for",
        "grpo",
    ]));
    assert!(err.contains("--for grpo needs a decoder"), "{err}");
}

/// `grpo --gradient-checkpointing` replays the update one block at a time and trains the
/// same policy: under LoRA (no dropout) the same adapter bit for bit; in full
/// fine-tuning (the tied embeddings' two gradients then add in another order) the same
/// losses within 1e-5.
#[test]
fn gradient_checkpointing_trains_the_same_policy() {
    let s = setup("ckpt");
    let run = |tag: &str, extra: &[&str]| -> Vec<f64> {
        let out = s.dir.join(tag);
        let mut flags = vec!["--max-steps", "3", "--beta", "0.05", "--ppo-epochs", "2"];
        flags.extend_from_slice(extra);
        ok(rmtk().args(grpo_args(&s, &out, &flags)));
        train_lines(&out)
            .iter()
            .filter_map(|r| r.get("loss").and_then(Value::as_f64))
            .collect()
    };
    let lora = [
        "--lora-r",
        "4",
        "--lora-dropout",
        "0",
        "--lora-target-modules",
        "all-linear",
    ];
    let plain = run("lora", &lora);
    let ckpt = run(
        "lora-ckpt",
        &[&lora[..], &["--gradient-checkpointing"]].concat(),
    );
    assert!(!plain.is_empty());
    assert_eq!(plain, ckpt);
    let adapter =
        |tag: &str| std::fs::read(s.dir.join(tag).join("adapter_model.safetensors")).unwrap();
    assert!(
        adapter("lora") == adapter("lora-ckpt"),
        "checkpointing changed the adapter"
    );

    let plain = run("full", &[]);
    let ckpt = run("full-ckpt", &["--gradient-checkpointing"]);
    assert!(!plain.is_empty());
    assert_eq!(plain.len(), ckpt.len());
    for (a, b) in plain.iter().zip(&ckpt) {
        assert!((a - b).abs() < 1e-5, "{plain:?} vs {ckpt:?}");
    }
}

/// `--reward-url`: the writing reward from an HTTP endpoint (OpenRLHF's shape) on
/// loopback. The rewards reach the right completions, a second run is answered from
/// the cache, an endpoint that stays down stops the run with its checkpoint intact,
/// and `--resume` goes on once it is back.
#[test]
fn a_reward_endpoint_gives_the_writing_reward_stops_when_down_and_resumes() {
    use crate::verify_remote::{Reply, Seen, Server};

    /// A tenth of a point per word of the completion.
    fn reward_of(response: &str) -> f64 {
        0.1 * response.split_whitespace().count() as f64
    }
    fn answer(_: usize, seen: &Seen) -> Reply {
        let responses = seen.body["responses"].as_array().unwrap();
        let rewards: Vec<f64> = responses
            .iter()
            .map(|r| reward_of(r.as_str().unwrap()))
            .collect();
        Reply::Status(200, json!({ "rewards": rewards }).to_string())
    }

    let dir = tmp("grpo-reward-url");
    let policy = tiny_model("llama", "grpo-policy-reward-url");
    let train = dir.join("train.jsonl");
    write_rows(&train, &prompt_rows(10, 5, 14));
    let eval = dir.join("eval.jsonl");
    write_rows(&eval, &prompt_rows(4, 77, 14));
    let cache = dir.join("reward-cache");
    let args = |out: &Path, url: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "grpo",
            "--policy",
            policy.to_str().unwrap(),
            "--reward-url",
            url,
            "--reward-retries",
            "1",
            "--reward-backoff",
            "0",
            "--reward-timeout",
            "5",
            "--reward-batch-size",
            "3",
            "--reward-concurrency",
            "2",
            "--reward-cache",
            cache.to_str().unwrap(),
            "--prompts",
            train.to_str().unwrap(),
            "--eval-prompts",
            eval.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--num-generations",
            "4",
            "--batch-prompts",
            "2",
            "--max-new-tokens",
            "14",
            "--lr",
            "1e-3",
            "--seed",
            "7",
            "--save-every",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    let server = Server::start_for(100_000, Duration::from_secs(900), answer);
    let url = format!("http://{}/get_reward", server.addr);
    let out = dir.join("run");
    let log = ok(rmtk().args(args(&out, &url, &["--max-steps", "2"])));
    assert!(log.contains(&format!("reward endpoint {url}")), "{log}");
    let sent = server.requests();
    assert!(!sent.is_empty());
    for s in &sent {
        let n = s.body["query"].as_array().unwrap().len();
        assert!((1..=3).contains(&n), "batches of at most 3");
        for k in 0..n {
            let prompt = s.body["prompts"][k].as_str().unwrap();
            let response = s.body["responses"][k].as_str().unwrap();
            assert!(!prompt.is_empty());
            assert_eq!(s.body["query"][k], json!(format!("{prompt}{response}")));
            assert_eq!(s.body["labels"][k], json!(""));
        }
    }
    // Each completion got its own reward, in training and in evaluation.
    for file in [SAMPLES, "eval_samples.jsonl"] {
        let samples = read_samples(&out.join(file));
        assert!(!samples.is_empty(), "{file}");
        for sample in samples {
            let expected = reward_of(sample["completion"].as_str().unwrap());
            let got = sample["writing_reward"].as_f64().unwrap();
            assert!((got - expected).abs() < 1e-6, "{file}: {got} vs {expected}");
        }
    }
    let lines = train_lines(&out);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["writing_reward_mean"].is_number()));

    // The same run in another folder: every batch from the cache, nothing sent.
    let log = ok(rmtk().args(args(&dir.join("again"), &url, &["--max-steps", "2"])));
    assert_eq!(server.requests().len(), sent.len());
    assert!(log.contains(": 0 requests (0 retries)"), "{log}");

    // The endpoint goes down: a clear stop, the last checkpoint intact.
    drop(server);
    std::thread::sleep(Duration::from_millis(100));
    let weights = std::fs::read(out.join("checkpoint-2/model.safetensors")).unwrap();
    let err = fails(rmtk().args([
        "grpo",
        "--resume",
        out.to_str().unwrap(),
        "--max-steps",
        "4",
    ]));
    assert!(
        err.contains("reward endpoint is down")
            && err.contains("checkpoint-2")
            && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("checkpoint-2/model.safetensors")).unwrap(),
        weights
    );
    assert_eq!(
        std::fs::read_to_string(out.join("latest")).unwrap().trim(),
        "checkpoint-2"
    );

    // Back (on another port): the run goes on from its checkpoint.
    let server = Server::start_for(100_000, Duration::from_secs(900), answer);
    let url = format!("http://{}/get_reward", server.addr);
    ok(rmtk().args([
        "grpo",
        "--resume",
        out.to_str().unwrap(),
        "--max-steps",
        "4",
        "--reward-url",
        &url,
    ]));
    assert!(!server.requests().is_empty());
    let steps: Vec<u64> = train_lines(&out)
        .iter()
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2, 3, 4]);

    // A reward model and a reward endpoint are two writing rewards.
    let both = rmtk()
        .args(args(&dir.join("both"), &url, &["--reward-model", "x"]))
        .output()
        .unwrap();
    assert!(!both.status.success());
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("--reward-model"),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
}

const SAMPLES: &str = "samples.jsonl";

fn read_samples(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `rmtk grpo --rollout-url` against `rmtk serve`: the first step's rollouts are a local
/// run's token for token, the importance ratio stays at 1 while the policy is synced as a
/// LoRA adapter after every update, asynchronous rollouts are never more than one version
/// old, and a server that dies ends the run with a clear stop and a working --resume.
#[test]
fn rollouts_from_rmtk_serve_match_local_ones_and_survive_a_dead_server() {
    use super::serve::Server;
    let s = setup("remote");
    let serve_args = |port: Option<&str>| -> Vec<String> {
        let mut a: Vec<String> = [
            "--model",
            s.policy.to_str().unwrap(),
            "--max-num-seqs",
            "16",
            "--max-model-len",
            "96",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        if let Some(p) = port {
            a.extend(["--port".to_string(), p.to_string()]);
        }
        a
    };
    let start = |port: Option<&str>| {
        let args = serve_args(port);
        Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let server = start(None);
    let url = server.url("/v1");
    let lora = [
        "--max-steps",
        "3",
        "--lora-r",
        "4",
        "--lora-alpha",
        "16",
        "--samples-per-step",
        "8",
        "--save-every",
        "1",
    ];
    let local = s.dir.join("local");
    ok(rmtk().args(grpo_args(&s, &local, &lora)));
    let remote = s.dir.join("remote");
    let mut extra: Vec<&str> = lora.to_vec();
    extra.extend(["--rollout-url", url.as_str()]);
    let log = ok(rmtk().args(grpo_args(&s, &remote, &extra)));
    assert!(log.contains("rollouts from"), "{log}");
    let first = |out: &Path| -> Vec<(String, u64)> {
        read_samples(&out.join("samples.jsonl"))
            .into_iter()
            .filter(|r| r["step"] == json!(1))
            .map(|r| {
                (
                    r["completion"].as_str().unwrap().to_string(),
                    r["tokens"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(first(&remote).len(), 8);
    assert_eq!(first(&remote), first(&local), "step-1 rollouts differ");
    let lines = train_lines(&remote);
    assert_eq!(lines.len(), 3);
    for r in &lines {
        let ratio = r["rollout_is_ratio_mean"].as_f64().unwrap();
        assert!(
            (0.99..=1.01).contains(&ratio),
            "step {}: ratio {ratio}",
            r["step"]
        );
        assert_eq!(r["rollout_staleness_max"], json!(0));
    }
    // The server serves the latest version and the one before it.
    let ids = server.model_ids();
    assert!(
        ids.iter().any(|i| i == "rmtk-policy-v2") && !ids.iter().any(|i| i == "rmtk-policy-v0"),
        "{ids:?}"
    );

    // Asynchronous: the next step's rollouts come from the version before the update.
    let asynchronous = s.dir.join("async");
    let mut extra_async = extra.clone();
    extra_async.push("--async-rollouts");
    ok(rmtk().args(grpo_args(&s, &asynchronous, &extra_async)));
    let lines = train_lines(&asynchronous);
    assert_eq!(lines.len(), 3);
    for r in &lines {
        let stale = r["rollout_staleness_max"].as_u64().unwrap();
        assert!(stale <= 1, "step {}: staleness {stale}", r["step"]);
        let ratio = r["rollout_is_ratio_mean"].as_f64().unwrap();
        assert!(ratio.is_finite() && ratio > 0.0);
    }
    assert_eq!(lines[1]["rollout_staleness_max"], json!(1));

    // Without LoRA: a clear error, before anything runs.
    let err = fails(rmtk().args(grpo_args(
        &s,
        &s.dir.join("full"),
        &["--rollout-url", url.as_str()],
    )));
    assert!(err.contains("needs a LoRA policy"), "{err}");

    // A server that is gone when the run needs it: a clear stop naming the intact
    // checkpoint, and a resume once it is back on the same port.
    let port = server.port().to_string();
    let dies = s.dir.join("dies");
    let mut extra_dies = extra.clone();
    extra_dies.extend([
        "--max-steps",
        "2",
        "--rollout-retries",
        "1",
        "--rollout-timeout",
        "10",
    ]);
    ok(rmtk().args(grpo_args(&s, &dies, &extra_dies)));
    drop(server);
    let more = [
        "grpo",
        "--resume",
        dies.to_str().unwrap(),
        "--max-steps",
        "4",
    ];
    let err = fails(rmtk().args(more));
    assert!(err.contains("rollout server"), "{err}");
    assert!(err.contains("checkpoint-2, is intact"), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let back = start(Some(&port));
    let log = ok(rmtk().args(more));
    assert!(log.contains("resuming"), "{log}");
    assert_eq!(train_lines(&dies).last().unwrap()["step"], json!(4));
    drop(back);

    // A server that takes the adapter, then fails every rollout mid-run: retried, then
    // a clear stop at that step with the checkpoint intact.
    let failing = rollout_server_that_fails_completions();
    let url = format!("http://{failing}/v1");
    let err = fails(rmtk().args([
        "grpo",
        "--resume",
        dies.to_str().unwrap(),
        "--max-steps",
        "6",
        "--rollout-url",
        &url,
        "--rollout-retries",
        "1",
    ]));
    assert!(err.contains("rollouts at step 5"), "{err}");
    assert!(err.contains("is down (2 attempts; last: HTTP 503"), "{err}");
    assert!(err.contains("checkpoint-4, is intact"), "{err}");
    assert_eq!(train_lines(&dies).last().unwrap()["step"], json!(4));

    // Asynchronous, two steps ahead: staleness reaches 2 and never passes it.
    let ahead = s.dir.join("ahead");
    let server = start(None);
    let url = server.url("/v1");
    let mut extra_ahead: Vec<&str> = lora.to_vec();
    extra_ahead.extend([
        "--max-steps",
        "4",
        "--rollout-url",
        url.as_str(),
        "--async-rollouts",
        "--max-staleness",
        "2",
    ]);
    ok(rmtk().args(grpo_args(&s, &ahead, &extra_ahead)));
    let stale: Vec<u64> = train_lines(&ahead)
        .iter()
        .map(|r| r["rollout_staleness_max"].as_u64().unwrap())
        .collect();
    assert_eq!(stale, [0, 1, 2, 2]);
}

/// A loopback server that accepts vLLM's LoRA calls and answers every completions request
/// with 503. Returns its address.
fn rollout_server_that_fails_completions() -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let (status, text) = if line.contains("lora_adapter") {
                        ("200 OK", "Success")
                    } else {
                        ("503 Service Unavailable", "{\"error\": \"overloaded\"}")
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if out.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}
