//! `train-rm --lora-r` end to end on the tiny backbones: the output is a PEFT adapter
//! folder (keys and shapes as PEFT writes them), only the adapters and the head move
//! and hold optimizer state, `score` reads the adapter folder and the `--merge-lora`
//! export gives the same rewards, a run resumed from a checkpoint ends bit for bit where
//! the whole run did, and bad LoRA input gets a clear error.

use crate::rm_support;

use rm_support::*;
use rmtk::models::load::Weights;
use serde_json::{Value, json};

/// train-rm with LoRA and the tests' defaults; `set` replaces or adds flags ("" for a
/// switch).
fn args(
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
        ("--lr", "5e-3"),
        ("--seed", "3"),
        ("--save-every", "2"),
        ("--lora-r", "4"),
        ("--lora-alpha", "8"),
        ("--lora-dropout", "0.1"),
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
    let mut out = vec!["train-rm".to_string()];
    for (k, v) in flags {
        out.push(k);
        if !v.is_empty() {
            out.push(v);
        }
    }
    out
}

fn rewards(model: &std::path::Path, input: &std::path::Path, out: &std::path::Path) -> Vec<f64> {
    ok(rmtk().args([
        "score",
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]));
    rmtk::data::read_table(out)
        .unwrap()
        .rows
        .iter()
        .map(|r| r["reward"].as_f64().unwrap())
        .collect()
}

#[test]
fn decoder_lora_saves_a_peft_adapter_that_scores_like_its_merge_and_resumes_bitwise() {
    let model = tiny_model("llama", "lora");
    let dir = tmp("lora");
    let data = dir.join("train.parquet");
    write_rows(&data, &text_pairs(24, 4));
    let out = dir.join("rm");
    let log = ok(rmtk().args(args(
        &model,
        &data,
        &out,
        &[
            ("--lora-target-modules", "all-linear"),
            ("--merge-lora", ""),
        ],
    )));
    assert!(
        log.contains("LoRA r=4 alpha=8 on 14 linear layers"),
        "{log}"
    );

    // PEFT's folder: its config and its keys, PyTorch layouts; no full weights.
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(config["peft_type"], json!("LORA"));
    assert_eq!(config["task_type"], json!("SEQ_CLS"));
    assert_eq!(config["r"], json!(4));
    assert_eq!(config["lora_alpha"], json!(8.0));
    assert_eq!(
        config["target_modules"],
        json!([
            "down_proj",
            "gate_proj",
            "k_proj",
            "o_proj",
            "q_proj",
            "up_proj",
            "v_proj"
        ])
    );
    assert_eq!(config["modules_to_save"], json!(["classifier", "score"]));
    let base = std::fs::canonicalize(&model).unwrap();
    assert_eq!(
        config["base_model_name_or_path"],
        json!(base.display().to_string())
    );
    assert!(!out.join("model.safetensors").exists());
    let w = Weights::from_files(&[out.join("adapter_model.safetensors")]).unwrap();
    let q = "base_model.model.model.layers.0.self_attn.q_proj";
    assert_eq!(
        w.shape(&format!("{q}.lora_A.weight")),
        Some(&[4usize, 64][..])
    );
    assert_eq!(
        w.shape(&format!("{q}.lora_B.weight")),
        Some(&[64usize, 4][..])
    );
    let kv = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight";
    assert_eq!(w.shape(kv), Some(&[32usize, 4][..]));
    assert_eq!(
        w.shape("base_model.model.score.weight"),
        Some(&[1usize, 64][..])
    );
    assert_eq!(w.names().count(), 2 * 14 + 1);
    // The adapters trained: B moved away from its zero start.
    let (b, _) = w.read_f32(&format!("{q}.lora_B.weight")).unwrap().unwrap();
    assert!(b.iter().any(|v| *v != 0.0));

    // The optimizer holds state for the adapters and the head only.
    let ck = out.join("checkpoint-2");
    let opt = Weights::from_files(&[ck.join("optimizer.safetensors")]).unwrap();
    assert_eq!(opt.names().count(), 2 * (2 * 14 + 1));
    assert!(
        opt.names()
            .all(|n| n.contains(".lora_") || n.starts_with("score."))
    );
    assert!(ck.join("adapter_config.json").is_file());

    // score reads the adapter folder; the merged export scores the same.
    let rows: Vec<Value> = (0..6)
        .map(|i| json!({"prompt": format!("the day {i}"), "response": "a good day is here"}))
        .chain(
            (0..4).map(|i| json!({"prompt": "the night", "response": format!("it was {i} dark")})),
        )
        .collect();
    let input = dir.join("rows.jsonl");
    write_rows(&input, &rows);
    let adapted = rewards(&out, &input, &dir.join("a.jsonl"));
    let merged = rewards(&out.join("merged"), &input, &dir.join("m.jsonl"));
    assert!(out.join("merged/model.safetensors").is_file());
    for (x, y) in adapted.iter().zip(&merged) {
        assert!((x - y).abs() < 1e-4, "{adapted:?} vs {merged:?}");
    }
    // ... and not the base's zero-adapter rewards: the head and adapters learned.
    assert!(adapted.iter().any(|r| r.abs() > 1e-3));

    // Resume: the run's folder cut back to its checkpoint at update 2 ends where the
    // whole run did, bit for bit (dropout masks included).
    let cut = dir.join("cut");
    resume_from_checkpoint_2(&out, &cut);
    let whole = std::fs::read(out.join("adapter_model.safetensors")).unwrap();
    let resumed = std::fs::read(cut.join("adapter_model.safetensors")).unwrap();
    assert!(whole == resumed, "the resumed adapter differs");
}

/// A copy of the run's folder `out` at `cut`, cut back to its checkpoint at update 2 (the
/// config and the metrics kept), resumed to the end.
fn resume_from_checkpoint_2(out: &std::path::Path, cut: &std::path::Path) {
    copy_dir(out, cut);
    for entry in std::fs::read_dir(cut).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name != "checkpoint-2" && name != "train_config.json" && name != "metrics.jsonl" {
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
    std::fs::write(cut.join("latest"), "checkpoint-2").unwrap();
    ok(rmtk().args(["train-rm", "--resume", cut.to_str().unwrap()]));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let dst = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dst);
        } else {
            std::fs::copy(&p, &dst).unwrap();
        }
    }
}

#[test]
fn encoder_lora_on_dense_adapts_the_pooler_too() {
    let model = tiny_model("bert", "lora-bert");
    let dir = tmp("lora-bert");
    let data = dir.join("train.parquet");
    write_rows(&data, &text_pairs(12, 5));
    let out = dir.join("rm");
    let log = ok(rmtk().args(args(
        &model,
        &data,
        &out,
        &[("--lora-target-modules", "dense"), ("--save-every", "0")],
    )));
    // 3 dense layers in each of 2 layers, and the pooler's (PEFT's matching).
    assert!(log.contains("on 7 linear layers"), "{log}");
    let w = Weights::from_files(&[out.join("adapter_model.safetensors")]).unwrap();
    assert!(w.contains("base_model.model.bert.pooler.dense.lora_A.weight"));
    assert!(w.contains("base_model.model.classifier.weight"));
    assert!(w.contains("base_model.model.classifier.bias"));
    let input = dir.join("rows.jsonl");
    write_rows(
        &input,
        &[json!({"prompt": "the day", "response": "a good day"})],
    );
    assert_eq!(rewards(&out, &input, &dir.join("s.jsonl")).len(), 1);
}

#[test]
fn bad_lora_input_gets_clear_errors() {
    let model = tiny_model("llama", "lora-bad");
    let dir = tmp("lora-bad");
    let data = dir.join("train.parquet");
    write_rows(&data, &text_pairs(8, 6));

    // Targets that match nothing: the error lists the layers there are.
    let err = fails(rmtk().args(args(
        &model,
        &data,
        &dir.join("none"),
        &[("--lora-target-modules", "query,value")],
    )));
    assert!(
        err.contains("no linear layer of this model matches")
            && err.contains("q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"),
        "{err}"
    );

    // LoRA flags without a rank.
    let err = fails(rmtk().args([
        "train-rm",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--output",
        dir.join("x").to_str().unwrap(),
        "--merge-lora",
    ]));
    assert!(err.contains("need --lora-r"), "{err}");

    // A loss scale that is not a power of two would make unscaling inexact.
    let err = fails(rmtk().args(args(
        &model,
        &data,
        &dir.join("scale"),
        &[("--dtype", "f16"), ("--initial-loss-scale", "1000")],
    )));
    assert!(
        err.contains("--initial-loss-scale 1000 must be a power of two"),
        "{err}"
    );

    // An adapter whose base does not match: a factor's shape names module and shapes.
    // (tiny qwen2: the same attention shapes as tiny llama, a narrower MLP.)
    let out = dir.join("ok");
    ok(rmtk().args(args(
        &model,
        &data,
        &out,
        &[
            ("--save-every", "0"),
            ("--epochs", "1"),
            ("--lora-target-modules", "all-linear"),
        ],
    )));
    let cfg_path = out.join("adapter_config.json");
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    let other = tmp("lora-bad-base");
    // (sharded: the fixture tests that path too)
    let fixture = root().join("tests/fixtures/tiny-qwen2");
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name == "config.json" || name.contains("safetensors") {
            std::fs::copy(&p, other.join(&name)).unwrap();
        }
    }
    for name in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(model.join(name), other.join(name)).unwrap();
    }
    cfg["base_model_name_or_path"] = json!(other.display().to_string());
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let input = dir.join("rows.jsonl");
    write_rows(&input, &[json!({"prompt": "a", "response": "b"})]);
    let err = fails(rmtk().args([
        "score",
        "--model",
        out.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        dir.join("s.jsonl").to_str().unwrap(),
    ]));
    assert!(
        err.contains("another base") && err.contains("gate_proj") && err.contains("[128, 4]"),
        "{err}"
    );
    // --base-model puts the adapter back on its own base.
    ok(rmtk().args([
        "score",
        "--model",
        out.to_str().unwrap(),
        "--base-model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        dir.join("s.jsonl").to_str().unwrap(),
    ]));
}

/// Reduced precision follows f32: bf16, and f16 with a loss scale that does not
/// overflow (`--initial-loss-scale 1024`), under LoRA (the frozen base in that dtype) and
/// in full fine-tuning (f32 master weights computing in it), each within 0.02 of its f32
/// run's loss at every one of 50 updates. From PyTorch's default scale (65536) f16
/// overflows at first: those updates are skipped and the scale halves, and the run
/// still learns.
#[test]
fn reduced_precision_training_follows_the_f32_run() {
    type Line = serde_json::Map<String, Value>;
    let model = tiny_model("llama", "lora-bf16");
    let dir = tmp("lora-bf16");
    let data = dir.join("train.parquet");
    write_rows(&data, &text_pairs(24, 8));
    let run = |lora_r: &str, dtype: &str, scale: &str| -> Vec<Line> {
        let out = dir.join(format!("r{lora_r}-{dtype}-{scale}"));
        let mut set = vec![
            ("--dtype", dtype),
            ("--lora-r", lora_r),
            ("--max-steps", "50"),
            ("--save-every", "0"),
            ("--initial-loss-scale", scale),
        ];
        if lora_r == "0" {
            set.extend([("--lr", "5e-4"), ("--lora-dropout", "0")]);
        } else {
            set.extend([("--lr", "2e-3"), ("--lora-target-modules", "all-linear")]);
        }
        ok(rmtk().args(args(&model, &data, &out, &set)));
        let lines: Vec<Line> = metrics(&out)
            .into_iter()
            .filter(|r| r.get("loss").is_some())
            .collect();
        assert_eq!(lines.len(), 50);
        // f16 logs its loss scale and whether the update was skipped; the scale halves
        // at each skip (no 2000 good updates in a row here to double it).
        let mut want = scale.parse::<f64>().unwrap();
        for r in &lines {
            let logged = r.get("loss_scale").and_then(Value::as_f64);
            if dtype == "f16" {
                assert_eq!(logged, Some(want), "{r:?}");
                if r["skipped"].as_bool().unwrap() {
                    want /= 2.0;
                }
            } else {
                assert!(logged.is_none() && r.get("skipped").is_none(), "{r:?}");
            }
        }
        lines
    };
    let losses = |lines: &[Line]| -> Vec<f64> {
        lines.iter().map(|r| r["loss"].as_f64().unwrap()).collect()
    };
    let skips = |lines: &[Line]| lines.iter().filter(|r| r["skipped"] == json!(true)).count();
    for lora_r in ["4", "0"] {
        let f32_run = losses(&run(lora_r, "f32", "65536"));
        for (dtype, scale) in [("bf16", "65536"), ("f16", "1024")] {
            let lines = run(lora_r, dtype, scale);
            if dtype == "f16" {
                assert_eq!(skips(&lines), 0, "{lines:?}");
            }
            let low = losses(&lines);
            let worst = f32_run
                .iter()
                .zip(&low)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < 0.02,
                "r={lora_r} {dtype} strays {worst} from f32: {f32_run:?} vs {low:?}"
            );
            eprintln!(
                "r={lora_r} {dtype} vs f32 over 50 updates: max |loss difference| {worst:.4}"
            );
        }
        // The default scale: overflow at first, skipped; it learns all the same (the loss
        // well below ln 2).
        let lines = run(lora_r, "f16", "65536");
        let skipped = skips(&lines);
        let low = losses(&lines);
        assert!(low[40..].iter().sum::<f64>() / 10.0 < 0.6, "{low:?}");
        eprintln!("r={lora_r} f16 from 65536: {skipped} updates skipped");
    }
}

/// f16 full fine-tuning resumes bit for bit: the loss scale and its count of good
/// updates travel in the checkpoint.
#[test]
fn f16_full_fine_tuning_resumes_bitwise() {
    let model = tiny_model("bert", "f16-resume");
    let dir = tmp("f16-resume");
    let data = dir.join("train.parquet");
    write_rows(&data, &text_pairs(16, 5));
    let out = dir.join("whole");
    let set = [
        ("--lora-r", "0"),
        ("--lora-dropout", "0"),
        ("--dtype", "f16"),
        ("--lr", "1e-3"),
    ];
    ok(rmtk().args(args(&model, &data, &out, &set)));
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("checkpoint-2/trainer_state.json")).unwrap(),
    )
    .unwrap();
    assert!(
        state["loss_scale"]["scale"].as_f64().unwrap() >= 1.0,
        "{state}"
    );
    // The export is the base's stored dtype (f32): the masters, not the f16 copies.
    let w = Weights::from_files(&[out.join("model.safetensors")]).unwrap();
    assert_eq!(format!("{:?}", w.dominant_dtype().unwrap()), "F32");
    let cut = dir.join("cut");
    resume_from_checkpoint_2(&out, &cut);
    let whole = std::fs::read(out.join("model.safetensors")).unwrap();
    let resumed = std::fs::read(cut.join("model.safetensors")).unwrap();
    assert!(whole == resumed, "the resumed model differs");
}

#[test]
fn gradient_checkpointing_trains_the_same_model() {
    // Full fine-tuning and LoRA, without dropout: bit for bit the same weights; also in
    // mixed precision (the block replay computes in bf16 as the forward pass did).
    for (kind, lora, dtype) in [
        ("bert", "0", "f32"),
        ("llama", "4", "f32"),
        ("llama", "0", "bf16"),
    ] {
        let model = tiny_model(kind, &format!("ckpt-{kind}-{dtype}"));
        let dir = tmp(&format!("ckpt-{kind}-{dtype}"));
        let data = dir.join("train.parquet");
        write_rows(&data, &text_pairs(16, 9));
        let run = |tag: &str, extra: &[(&str, &str)]| -> Vec<u8> {
            let out = dir.join(tag);
            let mut set = vec![
                ("--lora-r", lora),
                ("--lora-dropout", "0"),
                ("--save-every", "0"),
                ("--max-steps", "6"),
                ("--dtype", dtype),
            ];
            set.extend_from_slice(extra);
            ok(rmtk().args(args(&model, &data, &out, &set)));
            let file = if lora == "0" {
                "model.safetensors"
            } else {
                "adapter_model.safetensors"
            };
            std::fs::read(out.join(file)).unwrap()
        };
        let plain = run("plain", &[]);
        let ckpt = run("ckpt", &[("--gradient-checkpointing", "")]);
        assert!(
            plain == ckpt,
            "{kind} {dtype}: checkpointing changed the trained weights"
        );
    }
}
