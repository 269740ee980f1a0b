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
    copy_dir(&out, &cut);
    for entry in std::fs::read_dir(&cut).unwrap() {
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
    let whole = std::fs::read(out.join("adapter_model.safetensors")).unwrap();
    let resumed = std::fs::read(cut.join("adapter_model.safetensors")).unwrap();
    assert!(whole == resumed, "the resumed adapter differs");
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

#[test]
fn bf16_lora_training_follows_the_f32_run() {
    let model = tiny_model("llama", "lora-bf16");
    let dir = tmp("lora-bf16");
    let data = dir.join("train.parquet");
    write_rows(&data, &text_pairs(24, 8));
    let losses = |dtype: &str| -> Vec<f64> {
        let out = dir.join(dtype);
        ok(rmtk().args(args(
            &model,
            &data,
            &out,
            &[
                ("--dtype", dtype),
                ("--max-steps", "50"),
                ("--save-every", "0"),
                ("--lr", "2e-3"),
                ("--lora-target-modules", "all-linear"),
            ],
        )));
        metrics(&out)
            .iter()
            .filter_map(|r| r.get("loss").and_then(Value::as_f64))
            .collect()
    };
    let f32_run = losses("f32");
    let bf16_run = losses("bf16");
    assert_eq!(f32_run.len(), 50);
    assert_eq!(bf16_run.len(), 50);
    let worst = f32_run
        .iter()
        .zip(&bf16_run)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < 0.02,
        "bf16 strays {worst} from f32: {f32_run:?} vs {bf16_run:?}"
    );
    // It learned: the loss fell well below ln 2.
    assert!(
        bf16_run[40..].iter().sum::<f64>() / 10.0 < 0.6,
        "{bf16_run:?}"
    );
    eprintln!("bf16 vs f32 over 50 updates: max |loss difference| {worst:.4}");

    // f16 training and bf16 full fine-tuning are refused with the reason.
    let err = fails(rmtk().args(args(&model, &data, &dir.join("f16"), &[("--dtype", "f16")])));
    assert!(err.contains("dynamic loss scaling"), "{err}");
    let err = fails(rmtk().args([
        "train-rm",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--output",
        dir.join("full").to_str().unwrap(),
        "--dtype",
        "bf16",
    ]));
    assert!(err.contains("add --lora-r"), "{err}");
}

#[test]
fn gradient_checkpointing_trains_the_same_model() {
    // Full fine-tuning and LoRA, without dropout: bit for bit the same weights.
    for (kind, lora) in [("bert", "0"), ("llama", "4")] {
        let model = tiny_model(kind, &format!("ckpt-{kind}"));
        let dir = tmp(&format!("ckpt-{kind}"));
        let data = dir.join("train.parquet");
        write_rows(&data, &text_pairs(16, 9));
        let run = |tag: &str, extra: &[(&str, &str)]| -> Vec<u8> {
            let out = dir.join(tag);
            let mut set = vec![
                ("--lora-r", lora),
                ("--lora-dropout", "0"),
                ("--save-every", "0"),
                ("--max-steps", "6"),
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
            "{kind}: checkpointing changed the trained weights"
        );
    }
}
