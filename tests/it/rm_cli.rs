//! `train-rm`, `score` and `eval-rm` end to end on the tiny backbones with word-level
//! tokenizers, and their answers to bad input: a clear error naming file, row and
//! column (or, with --skip-bad-rows, a count), and an output folder left as it was.

use crate::rm_support;

use rm_support::*;
use serde_json::{Value, json};

/// train-rm arguments with the tests' defaults; `set` replaces or adds flags.
fn train_args(
    model: &std::path::Path,
    data: &std::path::Path,
    out: &std::path::Path,
    set: &[(&str, &str)],
) -> Vec<String> {
    let mut flags: Vec<(String, String)> = [
        ("--model", model.to_str().unwrap()),
        ("--data", data.to_str().unwrap()),
        ("--output", out.to_str().unwrap()),
        ("--batch-size", "4"),
        ("--epochs", "2"),
        ("--lr", "1e-3"),
        ("--seed", "5"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in set {
        match flags.iter_mut().find(|(f, _)| f == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => flags.push((k.to_string(), v.to_string())),
        }
    }
    let mut args = vec!["train-rm".to_string()];
    for (k, v) in flags {
        args.push(k);
        if !v.is_empty() {
            args.push(v);
        }
    }
    args
}

#[test]
fn decoder_trains_saves_a_hf_folder_scores_and_evaluates() {
    let model = tiny_model("llama", "e2e");
    let dir = tmp("e2e");
    let data = dir.join("train.parquet");
    write_rows(&data, &chat_pairs(24, 1));
    let test = dir.join("test.jsonl");
    write_rows(&test, &chat_pairs(8, 99));
    let out = dir.join("rm");
    let log = ok(rmtk().args(train_args(
        &model,
        &data,
        &out,
        &[
            ("--eval-data", test.to_str().unwrap()),
            ("--eval-every", "3"),
            ("--save-every", "4"),
        ],
    )));
    assert!(
        log.contains("train: ") && log.contains("24 pairs (conversational"),
        "{log}"
    );
    assert!(log.contains("done: 12 updates"), "{log}");

    // A Hugging Face sequence-classification folder.
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["architectures"],
        json!(["LlamaForSequenceClassification"])
    );
    assert_eq!(config["num_labels"], json!(1));
    assert_eq!(config["pad_token_id"], json!(0));
    for f in [
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "rmtk_reward_model.json",
        "eval_results.json",
        "train_summary.json",
        "train_config.json",
        "latest",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let w = rmtk::models::load::Weights::from_dir(&out).unwrap();
    assert_eq!(w.shape("score.weight"), Some(&[1usize, 64][..]));
    assert!(!w.contains("lm_head.weight"));
    // Checkpoints 4, 8, 12, each a loadable model with optimizer and trainer state.
    for s in [4, 8, 12] {
        let ck = out.join(format!("checkpoint-{s}"));
        for f in [
            "model.safetensors",
            "config.json",
            "optimizer.safetensors",
            "trainer_state.json",
        ] {
            assert!(ck.join(f).is_file(), "{}", ck.join(f).display());
        }
    }
    // Metrics: one record per update with every field, and evaluations at 3, 6, 9, 12.
    let m = metrics(&out);
    let train: Vec<_> = m.iter().filter(|r| r.contains_key("loss")).collect();
    assert_eq!(train.len(), 12);
    for key in [
        "step",
        "epoch",
        "loss",
        "accuracy",
        "margin",
        "reward_mean",
        "reward_std",
        "lr",
        "grad_norm",
        "tokens",
    ] {
        assert!(train[0].contains_key(key), "{key}");
    }
    let evals: Vec<u64> = m
        .iter()
        .filter(|r| r.contains_key("eval_loss"))
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(evals, [3, 6, 9, 12]);
    // lr decays linearly from 1e-3 to 0.
    assert_eq!(train[0]["lr"], json!(1e-3));
    assert!(train[11]["lr"].as_f64().unwrap() < 1e-4);

    // score: rows of prompt + response (messages and text), rewards in a new column.
    let rows = vec![
        json!({"id": 1, "prompt": [{"role": "user", "content": "the day"}], "response": [{"role": "assistant", "content": "a good day"}]}),
        json!({"id": 2, "prompt": "the day", "response": "a good day"}),
    ];
    let input = dir.join("score-in.jsonl");
    write_rows(&input, &rows);
    let scored = dir.join("scored.parquet");
    ok(rmtk().args([
        "score",
        "--model",
        out.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        scored.to_str().unwrap(),
    ]));
    let t = rmtk::data::read_table(&scored).unwrap();
    assert_eq!(t.columns, ["id", "prompt", "response", "reward"]);
    let r: Vec<f64> = t
        .rows
        .iter()
        .map(|r| r["reward"].as_f64().unwrap())
        .collect();
    // The chat-template rendering and the plain one are different sequences.
    assert_ne!(r[0], r[1]);

    // eval-rm: the JSON on stdout agrees with scoring the pairs one side at a time.
    let ev = ok_json(rmtk().args([
        "eval-rm",
        "--model",
        out.to_str().unwrap(),
        "--data",
        test.to_str().unwrap(),
    ]));
    assert_eq!(ev["pairs"], json!(8));
    let final_eval: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval_results.json")).unwrap())
            .unwrap();
    assert!(
        (ev["accuracy"].as_f64().unwrap() - final_eval["eval_accuracy"].as_f64().unwrap()).abs()
            < 1e-9
    );
    assert!(
        (ev["loss"].as_f64().unwrap() - final_eval["eval_loss"].as_f64().unwrap()).abs() < 1e-6
    );
    let pairs = chat_pairs(8, 99);
    let sides = |key: &str| -> Vec<Value> {
        pairs
            .iter()
            .map(|p| json!({"prompt": p["prompt"], "response": p[key]}))
            .collect()
    };
    let mut means = Vec::new();
    let mut side_rewards: Vec<Vec<f32>> = Vec::new();
    for key in ["chosen", "rejected"] {
        let i = dir.join(format!("{key}.jsonl"));
        let o = dir.join(format!("{key}-scored.jsonl"));
        write_rows(&i, &sides(key));
        ok(rmtk().args([
            "score",
            "--model",
            out.to_str().unwrap(),
            "--input",
            i.to_str().unwrap(),
            "--output",
            o.to_str().unwrap(),
            "--batch-size",
            "3",
        ]));
        let t = rmtk::data::read_table(&o).unwrap();
        let rewards: Vec<f32> = t
            .rows
            .iter()
            .map(|r| r["reward"].as_f64().unwrap() as f32)
            .collect();
        means.push(rewards.iter().map(|&r| f64::from(r)).sum::<f64>() / 8.0);
        side_rewards.push(rewards);
    }
    // TRL's names, per batch of --batch-size pairs then averaged (batches of 3, 3, 2).
    let ev3 = ok_json(rmtk().args([
        "eval-rm",
        "--model",
        out.to_str().unwrap(),
        "--data",
        test.to_str().unwrap(),
        "--batch-size",
        "3",
    ]));
    let want = rmtk::rm::trl_metrics::trl_pair_metrics(
        side_rewards[0].chunks(3).zip(side_rewards[1].chunks(3)),
    )
    .unwrap();
    for (name, v) in want.named() {
        let got = ev3["trl"][format!("eval_{name}")].as_f64().unwrap();
        assert!((got - v).abs() < 1e-5, "eval_{name}: {got} vs {v}");
    }
    assert!(
        (means[0] - ev["chosen_reward_mean"].as_f64().unwrap()).abs() < 1e-5,
        "{means:?} {ev}"
    );
    assert!(
        (means[1] - ev["rejected_reward_mean"].as_f64().unwrap()).abs() < 1e-5,
        "{means:?} {ev}"
    );
}

/// TRL RewardTrainer's names beside rmtk's: per batch, then averaged, on the update's
/// micro-batches and on `--eval-batch-size` batches of the held-out pairs in file order;
/// recomputed here from `eval_rewards.jsonl`.
#[test]
fn train_rm_writes_trl_reward_trainer_metrics_beside_its_own() {
    let model = tiny_model("bert", "trl-metrics");
    let dir = tmp("trl-metrics");
    let data = dir.join("train.jsonl");
    write_rows(&data, &text_pairs(20, 4));
    let test = dir.join("test.jsonl");
    write_rows(&test, &text_pairs(7, 41));
    let out = dir.join("rm");
    ok(rmtk().args(train_args(
        &model,
        &data,
        &out,
        &[
            ("--eval-data", test.to_str().unwrap()),
            ("--eval-every", "3"),
            ("--eval-on-start", ""),
            ("--eval-batch-size", "3"),
            ("--grad-accum", "2"),
            ("--epochs", "1"),
            ("--save-every", "0"),
        ],
    )));
    let f = |r: &serde_json::Map<String, Value>, k: &str| {
        r[k].as_f64().unwrap_or_else(|| panic!("no {k} in {r:?}"))
    };
    let m = metrics(&out);
    let train: Vec<_> = m.iter().filter(|r| r.contains_key("loss")).collect();
    assert!(!train.is_empty());
    for r in &train {
        let (min, mean, max) = (f(r, "min_reward"), f(r, "mean_reward"), f(r, "max_reward"));
        assert!(min <= mean && mean <= max, "{r:?}");
        assert!((0.0..=1.0).contains(&f(r, "trl/accuracy")), "{r:?}");
        assert!(f(r, "trl/margin").is_finite());
        // rmtk's pooled numbers stay under their own names.
        assert!((0.0..=1.0).contains(&f(r, "accuracy")), "{r:?}");
        // Two micro-batches of 4 pairs: TRL's means of batch means are rmtk's pooled ones.
        if r["pairs"] == json!(8) {
            assert!(
                (f(r, "trl/accuracy") - f(r, "accuracy")).abs() < 1e-6,
                "{r:?}"
            );
            assert!((f(r, "trl/margin") - f(r, "margin")).abs() < 1e-5, "{r:?}");
            assert!((mean - f(r, "reward_mean")).abs() < 1e-5, "{r:?}");
        }
    }
    // Evaluations: batches of 3, 3 and 1 pairs, each weighing the same.
    let evals: Vec<_> = m.iter().filter(|r| r.contains_key("eval_loss")).collect();
    let rewards: Vec<Value> = std::fs::read_to_string(out.join("eval_rewards.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(evals.len(), rewards.len());
    assert!(!evals.is_empty());
    for (r, rw) in evals.iter().zip(&rewards) {
        assert_eq!(r["step"], rw["step"]);
        let side = |k: &str| -> Vec<f64> {
            rw[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let (c, j) = (side("chosen"), side("rejected"));
        assert_eq!(c.len(), 7);
        let mut want = [0.0f64; 5];
        let batches: Vec<(&[f64], &[f64])> = c.chunks(3).zip(j.chunks(3)).collect();
        for (bc, bj) in &batches {
            let k = bc.len() as f64;
            let all: Vec<f64> = bc.iter().chain(bj.iter()).copied().collect();
            want[0] += bc.iter().zip(bj.iter()).filter(|(a, b)| a > b).count() as f64 / k;
            want[1] += bc.iter().zip(bj.iter()).map(|(a, b)| a - b).sum::<f64>() / k;
            want[2] += all.iter().copied().fold(f64::INFINITY, f64::min);
            want[3] += all.iter().sum::<f64>() / all.len() as f64;
            want[4] += all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        }
        let names = [
            "eval_trl/accuracy",
            "eval_trl/margin",
            "eval_min_reward",
            "eval_mean_reward",
            "eval_max_reward",
        ];
        for (name, w) in names.iter().zip(want) {
            let w = w / batches.len() as f64;
            assert!(
                (f(r, name) - w).abs() < 1e-4,
                "{name}: {} vs {w} in {r:?}",
                f(r, name)
            );
        }
        assert!((0.0..=1.0).contains(&f(r, "eval_accuracy")));
    }
}

#[test]
fn encoder_trains_on_text_pairs_with_margins_and_learns() {
    let model = tiny_model("bert", "enc");
    let dir = tmp("enc");
    let data = dir.join("train.jsonl");
    let mut rows = text_pairs(32, 3);
    for (i, r) in rows.iter_mut().enumerate() {
        r["margin"] = json!((i % 3) as f64 * 0.5);
    }
    write_rows(&data, &rows);
    let out = dir.join("rm");
    let log = ok(rmtk().args(train_args(
        &model,
        &data,
        &out,
        &[
            ("--epochs", "6"),
            ("--eval-data", data.to_str().unwrap()),
            ("--eval-on-start", ""),
            ("--center-rewards-coef", "0.01"),
            ("--grad-accum", "2"),
            ("--save-every", "0"),
        ],
    )));
    assert!(log.contains("margins from `margin`"), "{log}");
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["architectures"],
        json!(["BertForSequenceClassification"])
    );
    let w = rmtk::models::load::Weights::from_dir(&out).unwrap();
    assert_eq!(w.shape("classifier.weight"), Some(&[1usize, 32][..]));
    assert!(w.contains("classifier.bias") && w.contains("bert.pooler.dense.weight"));
    // The easy signal ("good" in every chosen response) is learnt.
    let m = metrics(&out);
    let evals: Vec<&serde_json::Map<String, Value>> =
        m.iter().filter(|r| r.contains_key("eval_loss")).collect();
    let first = evals.first().unwrap()["eval_loss"].as_f64().unwrap();
    let last = evals.last().unwrap()["eval_loss"].as_f64().unwrap();
    assert_eq!(evals.first().unwrap()["step"], json!(0));
    assert!(last < first, "eval loss {first} -> {last}");
    // Grad accumulation 2 with batch 4: 32 pairs make 4 updates per epoch.
    assert_eq!(m.iter().filter(|r| r.contains_key("loss")).count(), 24);
    assert_eq!(
        m.iter().find(|r| r.contains_key("loss")).unwrap()["pairs"],
        json!(8)
    );
}

#[test]
fn overlong_pairs_are_filtered_or_truncated_and_counted() {
    let model = tiny_model("llama", "long");
    let dir = tmp("long");
    let data = dir.join("train.jsonl");
    let mut rows = text_pairs(10, 4);
    rows[3]["chosen"] = json!(vec!["the"; 40].join(" "));
    rows[7]["rejected"] = json!(vec!["a"; 50].join(" "));
    // Two sides that differ only past the cut: identical once cut, so dropped.
    let same = vec!["the"; 40].join(" ");
    rows[5]["chosen"] = json!(format!("{same} good"));
    rows[5]["rejected"] = json!(format!("{same} bad"));
    write_rows(&data, &rows);
    let out = dir.join("filter");
    let log = ok(rmtk().args(train_args(
        &model,
        &data,
        &out,
        &[("--max-length", "24"), ("--max-steps", "1")],
    )));
    assert!(
        log.contains("--max-length 24 (filter): 3 pairs dropped"),
        "{log}"
    );
    assert!(log.contains("7 training pairs"), "{log}");
    let out = dir.join("truncate");
    let log = ok(rmtk().args(train_args(
        &model,
        &data,
        &out,
        &[
            ("--max-length", "24"),
            ("--overlong", "truncate"),
            ("--max-steps", "1"),
        ],
    )));
    assert!(
        log.contains(
            "--max-length 24 (truncate: prompts cut, responses kept): 3 pairs cut, a response in 3 of them; dropped as identical once cut: 1"
        ),
        "{log}"
    );
    assert!(log.contains("9 training pairs"), "{log}");
    // eval-rm reads the same rule from the model and drops the same pair.
    let ev = ok_json(rmtk().args([
        "eval-rm",
        "--model",
        out.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]));
    assert_eq!(
        (
            &ev["pairs"],
            &ev["truncated_pairs"],
            &ev["identical_pairs_dropped"]
        ),
        (&json!(9), &json!(3), &json!(1)),
        "{ev}"
    );
    // Longer than the model takes is refused.
    let err = fails(rmtk().args(train_args(
        &model,
        &data,
        &dir.join("x"),
        &[("--max-length", "100000")],
    )));
    assert!(
        err.contains("more than model") && err.contains("512 positions"),
        "{err}"
    );
}

#[test]
fn eval_fraction_holds_out_a_fixed_split() {
    let model = tiny_model("llama", "split");
    let dir = tmp("split");
    let data = dir.join("train.jsonl");
    write_rows(&data, &text_pairs(20, 8));
    let run = |name: &str, seed: &str| {
        let out = dir.join(name);
        let log = ok(rmtk().args(train_args(
            &model,
            &data,
            &out,
            &[
                ("--eval-fraction", "0.25"),
                ("--max-steps", "2"),
                ("--seed", seed),
            ],
        )));
        assert!(log.contains("5 pairs held out, 15 for training"), "{log}");
        metrics(&out)
    };
    let a = run("a", "1");
    let b = run("b", "1");
    assert_eq!(a, b, "same seed, same metrics");
    let c = run("c", "2");
    // A different --seed changes the head and the order, not the held-out pairs.
    assert_eq!(
        a.last().unwrap()["eval_pairs"],
        c.last().unwrap()["eval_pairs"]
    );
    assert_ne!(a, c);
}

#[test]
fn the_best_evaluation_is_kept_and_loaded_at_the_end() {
    let model = tiny_model("llama", "best");
    let dir = tmp("best");
    let data = dir.join("train.jsonl");
    write_rows(&data, &text_pairs(16, 11));
    // Held-out pairs labelled the other way round: the more the model learns the
    // training signal, the worse it does on them, so their accuracy peaks before the end.
    let flipped: Vec<Value> = text_pairs(12, 12)
        .into_iter()
        .map(|mut v| {
            let c = v["chosen"].take();
            v["chosen"] = v["rejected"].take();
            v["rejected"] = c;
            v
        })
        .collect();
    let held_out = dir.join("eval.jsonl");
    write_rows(&held_out, &flipped);
    let out = dir.join("rm");
    let log = ok(rmtk().args(train_args(
        &model,
        &data,
        &out,
        &[
            ("--eval-data", held_out.to_str().unwrap()),
            ("--eval-every", "1"),
            ("--save-every", "1"),
            ("--metric-for-best-model", "eval_accuracy"),
            ("--load-best-model-at-end", ""),
        ],
    )));
    let evals: Vec<(u64, f64)> = metrics(&out)
        .iter()
        .filter_map(|r| Some((r["step"].as_u64()?, r.get("eval_accuracy")?.as_f64()?)))
        .collect();
    let top = evals.iter().map(|e| e.1).fold(f64::MIN, f64::max);
    let best_step = evals.iter().find(|e| e.1 == top).unwrap().0;
    let last_step = evals.last().unwrap().0;
    assert!(
        best_step < last_step && evals.last().unwrap().1 < top,
        "the accuracy should peak before the end: {evals:?}"
    );
    assert!(
        log.contains(&format!(
            "--load-best-model-at-end: the model of update {best_step}"
        )),
        "{log}"
    );
    // best-model/ holds the peak's weights (the checkpoint of that update has the same),
    // and the run's model is that one, not the last update's.
    let weights = |d: &std::path::Path| std::fs::read(d.join("model.safetensors")).unwrap();
    let best = weights(&out.join("best-model"));
    assert_eq!(best, weights(&out.join(format!("checkpoint-{best_step}"))));
    assert_eq!(weights(&out), best);
    assert_ne!(
        weights(&out),
        weights(&out.join(format!("checkpoint-{last_step}")))
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("train_summary.json")).unwrap()).unwrap();
    assert_eq!(summary["best"]["step"], json!(best_step));
    assert_eq!(summary["best"]["metric"], json!("eval_accuracy"));
    let results: Value =
        serde_json::from_slice(&std::fs::read(out.join("eval_results.json")).unwrap()).unwrap();
    assert_eq!(results["step"], json!(best_step));
    // eval-rm on the saved model agrees with the peak's accuracy.
    let ev = ok_json(rmtk().args([
        "eval-rm",
        "--model",
        out.to_str().unwrap(),
        "--data",
        held_out.to_str().unwrap(),
    ]));
    assert_eq!(ev["accuracy"].as_f64().unwrap(), top);
    // Without held-out pairs there is nothing to choose by.
    let err = fails(rmtk().args(train_args(
        &model,
        &data,
        &dir.join("x"),
        &[("--load-best-model-at-end", "")],
    )));
    assert!(err.contains("need evaluations"), "{err}");
}

#[test]
fn eval_rm_reports_length_bias_and_groups() {
    let model = tiny_model("llama", "bias");
    let dir = tmp("bias");
    let data = dir.join("train.jsonl");
    write_rows(&data, &text_pairs(16, 21));
    let out = dir.join("rm");
    ok(rmtk().args(train_args(&model, &data, &out, &[("--max-steps", "4")])));
    let mut rows = text_pairs(20, 22);
    for (i, r) in rows.iter_mut().enumerate() {
        r["subset"] = json!(["chat", "code", "safety"][i % 3]);
    }
    let test = dir.join("test.parquet");
    write_rows(&test, &rows);
    let out_json = dir.join("eval.json");
    let ev = ok_json(rmtk().args([
        "eval-rm",
        "--model",
        out.to_str().unwrap(),
        "--data",
        test.to_str().unwrap(),
        "--by",
        "subset",
        "--output",
        out_json.to_str().unwrap(),
    ]));
    let acc = ev["accuracy"].as_f64().unwrap();
    // Per subset: 7 + 7 + 6 pairs, whose accuracies average back to the whole.
    let groups = ev["by"]["groups"].as_object().unwrap();
    let counts: Vec<u64> = groups
        .values()
        .map(|g| g["pairs"].as_u64().unwrap())
        .collect();
    assert_eq!(
        groups.keys().collect::<Vec<_>>(),
        ["chat", "code", "safety"]
    );
    assert_eq!(counts, [7, 7, 6]);
    let weighted = |parts: &[&Value]| {
        parts
            .iter()
            .map(|g| g["accuracy"].as_f64().unwrap_or(0.0) * g["pairs"].as_f64().unwrap())
            .sum::<f64>()
            / 20.0
    };
    // (JSON numbers carry 7 significant digits.)
    assert!((weighted(&groups.values().collect::<Vec<_>>()) - acc).abs() < 1e-6);
    // Length: every response ranked; the pairs split by which side is longer.
    let lb = &ev["length_bias"];
    assert_eq!(lb["responses"], json!(40));
    let rho = lb["spearman_reward_tokens"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&rho), "{lb}");
    let splits = [
        &lb["chosen_longer"],
        &lb["chosen_shorter"],
        &lb["same_length"],
    ];
    let pairs: u64 = splits.iter().map(|s| s["pairs"].as_u64().unwrap()).sum();
    assert_eq!(pairs, 20);
    assert!((weighted(&splits) - acc).abs() < 1e-6, "{lb}");
    let buckets = lb["buckets"].as_array().unwrap();
    assert!(buckets.len() >= 2, "{lb}");
    let in_buckets: u64 = buckets
        .iter()
        .map(|b| b["responses"].as_u64().unwrap())
        .sum();
    assert_eq!(in_buckets, 40);
    // --output holds the same JSON.
    let saved: Value = serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    assert_eq!(saved, ev);
    // A --by column the file lacks is named, with the columns it has.
    let err = fails(rmtk().args([
        "eval-rm",
        "--model",
        out.to_str().unwrap(),
        "--data",
        test.to_str().unwrap(),
        "--by",
        "subst",
    ]));
    assert!(err.contains("subst") && err.contains("subset"), "{err}");
}

#[test]
fn eval_rm_benchmark_formats_score_every_response() {
    let model = tiny_model("llama", "bench");
    let dir = tmp("bench");
    let data = dir.join("train.jsonl");
    write_rows(&data, &text_pairs(16, 31));
    let rm = dir.join("rm");
    ok(rmtk().args(train_args(&model, &data, &rm, &[("--max-steps", "2")])));
    for (format, subset_key) in [
        ("rewardbench", "subset"),
        ("rewardbench2", "subset"),
        ("rm-bench", "domain"),
    ] {
        let fixture = root().join(format!("tests/fixtures/benchmarks/{format}.jsonl"));
        let ev = ok_json(rmtk().args([
            "eval-rm",
            "--model",
            rm.to_str().unwrap(),
            "--data",
            fixture.to_str().unwrap(),
            "--format",
            format,
            "--batch-size",
            "1",
        ]));
        // Every response scored by `rmtk score` (one row each), fed to the benchmark's
        // scoring (tested against the benchmark's own code in src/rm/bench.rs): the same
        // report as eval-rm's.
        let rows: Vec<Value> = std::fs::read_to_string(&fixture)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let responses = |v: &Value| -> Vec<Value> {
            match v {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            }
        };
        let mut score_rows = Vec::new();
        for r in &rows {
            for resp in responses(&r["chosen"])
                .into_iter()
                .chain(responses(&r["rejected"]))
            {
                score_rows.push(json!({"prompt": r["prompt"], "response": resp}));
            }
        }
        let input = dir.join(format!("{format}-rows.jsonl"));
        write_rows(&input, &score_rows);
        let scored_path = dir.join(format!("{format}-scored.jsonl"));
        ok(rmtk().args([
            "score",
            "--model",
            rm.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            scored_path.to_str().unwrap(),
            "--batch-size",
            "1",
            // The benchmarks go through the chat template, as their own code does.
            "--layout",
            "chat",
        ]));
        let rewards: Vec<f64> = std::fs::read_to_string(&scored_path)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["reward"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            ev["responses"].as_u64().unwrap() as usize,
            rewards.len(),
            "{format}"
        );
        let mut next = rewards.into_iter();
        let scored: Vec<rmtk::rm::bench::Scored> = rows
            .iter()
            .map(|r| rmtk::rm::bench::Scored {
                id: r["id"]
                    .as_str()
                    .map_or_else(|| r["id"].to_string(), str::to_string),
                subset: r[subset_key].as_str().unwrap().to_string(),
                chosen: next.by_ref().take(responses(&r["chosen"]).len()).collect(),
                rejected: next
                    .by_ref()
                    .take(responses(&r["rejected"]).len())
                    .collect(),
            })
            .collect();
        let want = match format {
            "rewardbench" => rmtk::rm::bench::rewardbench(&scored),
            "rewardbench2" => rmtk::rm::bench::rewardbench2(&scored),
            _ => rmtk::rm::bench::rm_bench(&scored),
        };
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&ev[k], v, "{format}: {k}");
        }
        assert_eq!(ev["rows"].as_u64().unwrap() as usize, rows.len());
    }
    // A row of the wrong shape is named.
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"prompt\": \"p\", \"chosen\": [\"a\", \"b\"], \"rejected\": [\"c\", \"d\", \"e\"], \"domain\": \"chat\"}\n",
    )
    .unwrap();
    let err = fails(rmtk().args([
        "eval-rm",
        "--model",
        rm.to_str().unwrap(),
        "--data",
        bad.to_str().unwrap(),
        "--format",
        "rm-bench",
    ]));
    assert!(
        err.contains("bad.jsonl: row 0, column `chosen`: has 2 responses; this format has 3"),
        "{err}"
    );
}

#[test]
fn bad_input_names_file_row_and_column() {
    let model = tiny_model("llama", "bad");
    let dir = tmp("bad");
    let out = dir.join("out");
    let run = |data: &std::path::Path| fails(rmtk().args(train_args(&model, data, &out, &[])));

    let not_parquet = dir.join("fake.parquet");
    std::fs::write(&not_parquet, "prompt,chosen,rejected\n").unwrap();
    let err = run(&not_parquet);
    assert!(err.contains("fake.parquet: not a parquet file"), "{err}");

    let misspelled = dir.join("misspelled.parquet");
    write_rows(
        &misspelled,
        &[json!({"prompt": "p", "choosen": "a", "rejected": "b"})],
    );
    let err = run(&misspelled);
    assert!(err.contains("misspelled.parquet: no column `chosen` (columns found: prompt, choosen, rejected); did you mean `choosen`?"), "{err}");

    // A parquet column of the wrong type (integers), and a cell of the wrong type.
    let rows: Vec<Value> = (0..4)
        .map(|i| json!({"prompt": "p", "chosen": i, "rejected": "b"}))
        .collect();
    let types = dir.join("types.parquet");
    write_rows(&types, &rows);
    let err = run(&types);
    assert!(err.contains("types.parquet: row 0, column `chosen`: should be text or a list of {role, content} messages, found a number: 0"), "{err}");
    let mut rows = text_pairs(6, 2);
    rows[2]["chosen"] = json!(17);
    let types = dir.join("types.jsonl");
    write_rows(&types, &rows);
    let err = run(&types);
    assert!(err.contains("types.jsonl: row 2, column `chosen`: should be text or a list of {role, content} messages, found a number: 17"), "{err}");

    let mut rows = text_pairs(6, 2);
    rows[4]["rejected"] = Value::Null;
    rows[1]["prompt"] = json!("  ");
    let nulls = dir.join("nulls.jsonl");
    write_rows(&nulls, &rows);
    let err = run(&nulls);
    assert!(
        err.contains("nulls.jsonl: row 1, column `prompt`: is empty"),
        "{err}"
    );

    let mut rows = text_pairs(6, 2);
    rows[5]["rejected"] = rows[5]["chosen"].clone();
    let same = dir.join("same.jsonl");
    write_rows(&same, &rows);
    let err = run(&same);
    assert!(
        err.contains("same.jsonl: row 5, column `rejected`: is identical to `chosen`"),
        "{err}"
    );
    // Nothing was written for any of these.
    assert!(!out.exists());

    // --skip-bad-rows: skipped and counted.
    let mut rows = text_pairs(10, 2);
    rows[1]["chosen"] = json!(3.5);
    rows[4]["rejected"] = Value::Null;
    rows[6]["rejected"] = rows[6]["chosen"].clone();
    let mixed = dir.join("mixed.jsonl");
    write_rows(&mixed, &rows);
    let mut text = std::fs::read_to_string(&mixed).unwrap();
    text.push_str("{not json\n");
    std::fs::write(&mixed, text).unwrap();
    let log = ok(rmtk().args(train_args(
        &model,
        &mixed,
        &out,
        &[("--skip-bad-rows", ""), ("--max-steps", "1")],
    )));
    assert!(
        log.contains("skipped 4 bad rows (--skip-bad-rows)"),
        "{log}"
    );
    assert!(log.contains("7 training pairs"), "{log}");
    assert!(
        log.contains("mixed.jsonl: row 10: line 11 is not valid JSON"),
        "{log}"
    );
    // The run's own log keeps what was said before the output folder existed.
    let file_log = std::fs::read_to_string(out.join("train.log")).unwrap();
    assert!(
        file_log.contains("skipped 4 bad rows (--skip-bad-rows)"),
        "{file_log}"
    );
    assert!(file_log.contains("7 training pairs"), "{file_log}");
}

#[test]
fn nothing_already_written_is_lost_on_error() {
    let model = tiny_model("llama", "keep");
    let dir = tmp("keep");
    let data = dir.join("train.jsonl");
    write_rows(&data, &text_pairs(8, 2));
    let out = dir.join("out");
    ok(rmtk().args(train_args(&model, &data, &out, &[("--save-every", "2")])));
    // A finished run is not resumed.
    let err = fails(rmtk().args(["train-rm", "--resume", out.to_str().unwrap()]));
    assert!(err.contains("that run is complete"), "{err}");
    // As if it had been killed after its last checkpoint, before finishing.
    std::fs::remove_file(out.join("train_summary.json")).unwrap();
    let before = snapshot(&out);

    // Starting a new run over it is refused.
    let err = fails(rmtk().args(train_args(&model, &data, &out, &[])));
    assert!(
        err.contains("already holds a training run") && err.contains("--resume"),
        "{err}"
    );
    // Resuming with different settings is refused.
    let err = fails(rmtk().args(train_args(
        &model,
        &data,
        &out,
        &[("--lr", "5e-4"), ("--resume", out.to_str().unwrap())],
    )));
    assert!(err.contains("--lr (run: 0.001, given: 0.0005)"), "{err}");
    // Resuming after the data went bad fails before touching anything.
    std::fs::write(
        &data,
        "{\"prompt\": \"p\", \"chosen\": null, \"rejected\": \"b\"}\n",
    )
    .unwrap();
    let err = fails(rmtk().args(["train-rm", "--resume", out.to_str().unwrap()]));
    assert!(err.contains("row 0, column `chosen`: is null"), "{err}");
    // score into an existing file with bad input leaves that file alone.
    let scored = out.join("scored.jsonl");
    std::fs::write(&scored, "keep me\n").unwrap();
    let input = dir.join("in.jsonl");
    write_rows(&input, &[json!({"prompt": "p", "answer": "x"})]);
    let err = fails(rmtk().args([
        "score",
        "--model",
        out.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        scored.to_str().unwrap(),
    ]));
    assert!(
        err.contains("no column `response` (columns found: prompt, answer)"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&scored).unwrap(), "keep me\n");
    std::fs::remove_file(&scored).unwrap();
    assert_eq!(snapshot(&out), before);

    // score on a backbone (no head) is refused clearly.
    let err = fails(rmtk().args([
        "score",
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        dir.join("x.jsonl").to_str().unwrap(),
    ]));
    assert!(err.contains("no reward head (`score.weight`)"), "{err}");
}

#[test]
fn score_and_eval_report_bad_rows() {
    let model = tiny_model("llama", "sbad");
    let dir = tmp("sbad");
    let data = dir.join("train.jsonl");
    write_rows(&data, &text_pairs(8, 2));
    let out = dir.join("rm");
    ok(rmtk().args(train_args(&model, &data, &out, &[("--max-steps", "1")])));
    let input = dir.join("in.jsonl");
    write_rows(
        &input,
        &[
            json!({"prompt": "p", "response": "the day"}),
            json!({"prompt": "p", "response": null}),
            json!({"prompt": "p", "response": "a way"}),
        ],
    );
    let scored = dir.join("scored.jsonl");
    let err = fails(rmtk().args([
        "score",
        "--model",
        out.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        scored.to_str().unwrap(),
    ]));
    assert!(
        err.contains("in.jsonl: row 1, column `response`: is null"),
        "{err}"
    );
    assert!(!scored.exists());
    let log = ok(rmtk().args([
        "score",
        "--model",
        out.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        scored.to_str().unwrap(),
        "--skip-bad-rows",
    ]));
    assert!(log.contains("skipped 1 bad rows"), "{log}");
    let t = rmtk::data::read_table(&scored).unwrap();
    assert!(t.rows[1]["reward"].is_null() && t.rows[0]["reward"].is_number());
    let err = fails(rmtk().args([
        "eval-rm",
        "--model",
        out.to_str().unwrap(),
        "--data",
        input.to_str().unwrap(),
    ]));
    assert!(err.contains("no column `chosen`"), "{err}");
}
