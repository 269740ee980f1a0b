//! rmtk's LoRA reward-model training step against PEFT (`scripts/gen-lora-goldens.py`):
//! rmtk loads the adapter PEFT saved at initialisation (both factors non-zero, the head
//! in `modules_to_save`) on the tiny fixture, and from the same batch the rewards, the
//! loss, the gradients of every LoRA factor and of the head, the gradient norm and the
//! parameters after two clipped AdamW steps match PEFT + PyTorch within 1e-5. Covers
//! all-linear targets (llama), rsLoRA and PEFT's `dense` matching the pooler (bert).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rmtk::models::ModelDir;
use rmtk::models::load::{Weights, collect_tensors, param_infos};
use rmtk::models::reward::{HeadInit, RewardBatch, RewardModel};
use rmtk::rm::bt_loss;
use rmtk::train::{AdamW, AdamWConfig, LrSchedule, ScheduleKind, Updater};
use serde_json::Value;

type B = rmtk::device::Cpu;
type A = Autodiff<B>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn rows(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

fn host<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check(name: &str) {
    let g: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join(format!("tests/golden/lora-{name}.json"))).unwrap(),
    )
    .unwrap();
    let want = Weights::from_files(&[root().join(format!("tests/golden/lora-{name}.safetensors"))])
        .unwrap();
    let device = Default::default();
    // The adapter PEFT saved, on the fixture it was made from.
    let fixture = root().join("tests/fixtures").join(name);
    let dir = ModelDir::open_dir_with_base(
        &root().join(format!("tests/golden/lora-{name}-init")),
        name,
        Some(fixture.to_str().unwrap()),
    )
    .unwrap();
    let adapter = dir.adapter.as_ref().expect("an adapter folder");
    let lora = &g["lora"];
    assert_eq!(adapter.config.shape.r, lora["r"].as_u64().unwrap() as usize);
    assert_eq!(
        adapter.config.shape.rslora,
        lora["rslora"].as_bool().unwrap()
    );
    let mut model = RewardModel::<A>::from_pretrained(&dir, HeadInit { seed: 0 }, &device).unwrap();

    // The same trainable parameters: the LoRA factors and the head, nothing else.
    let infos: Vec<_> = param_infos(&model)
        .into_iter()
        .filter(|p| p.trainable)
        .collect();
    let names: BTreeSet<String> = infos.iter().map(|p| p.name.clone()).collect();
    let trained: BTreeSet<String> = g["trained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, trained);

    let batch = &g["batch"];
    let mut all = rows(&batch["chosen"]);
    let k = all.len();
    all.extend(rows(&batch["rejected"]));
    let types = batch.get("chosen_types").map(|c| {
        let mut t = rows(c);
        t.extend(rows(&batch["rejected_types"]));
        t
    });
    let input = RewardBatch::<A>::from_rows(
        &all,
        types.as_deref(),
        g["pad_id"].as_u64().unwrap() as u32,
        &device,
    );
    let margins = f32s(&g["margins"]);
    let betas = f32s(&g["betas"]);
    let cfg = AdamWConfig {
        beta1: f64::from(betas[0]),
        beta2: f64::from(betas[1]),
        eps: g["eps"].as_f64().unwrap(),
        weight_decay: g["weight_decay"].as_f64().unwrap(),
    };
    let schedule = LrSchedule {
        kind: ScheduleKind::Constant,
        base_lr: g["lr"].as_f64().unwrap(),
        warmup_steps: 0,
        total_steps: 2,
    };
    let mut updater = Updater::new(
        AdamW::<B>::new(cfg, infos.clone()),
        schedule,
        g["max_grad_norm"].as_f64(),
    );
    for step in 1..=2 {
        let gs = &g[format!("step{step}")];
        let rewards = model.forward(&input);
        let chosen = rewards.clone().narrow(0, 0, k);
        let rejected = rewards.narrow(0, k, k);
        let rc = host(chosen.clone().inner());
        let rr = host(rejected.clone().inner());
        let d = max_diff(&rc, &f32s(&gs["rewards_chosen"]))
            .max(max_diff(&rr, &f32s(&gs["rewards_rejected"])));
        assert!(d < 1e-5, "{name} step {step}: rewards differ by {d}");
        let margin = Tensor::<A, 1>::from_data(TensorData::new(margins.clone(), [k]), &device);
        let loss = bt_loss(
            chosen,
            rejected,
            Some(margin),
            g["center_rewards_coef"].as_f64().unwrap(),
        );
        let lv = host(loss.clone().inner())[0];
        let want_loss = gs["loss"].as_f64().unwrap() as f32;
        assert!(
            (lv - want_loss).abs() < 1e-5,
            "{name} step {step}: loss {lv} vs {want_loss}"
        );
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        if step == 1 {
            // Every trained tensor's gradient, before clipping, in PyTorch layout.
            let mut worst = (0.0f32, String::new());
            for p in &infos {
                let g2 = grads
                    .get::<B, 2>(p.id)
                    .map(|t| if p.transposed { t.transpose() } else { t })
                    .unwrap_or_else(|| panic!("{name}: no gradient for {}", p.name));
                let (values, shape) = want
                    .read_f32(&format!("step1/{}.grad", p.name))
                    .unwrap()
                    .unwrap();
                assert_eq!(shape, p.torch_shape(), "{}", p.name);
                let d = max_diff(&host(g2), &values);
                if d > worst.0 {
                    worst = (d, p.name.clone());
                }
            }
            assert!(
                worst.0 < 1e-5,
                "{name}: gradients differ by up to {} ({})",
                worst.0,
                worst.1
            );
            eprintln!(
                "{name}: gradients of {} tensors within {:.2e}",
                infos.len(),
                worst.0
            );
        }
        let (updated, stats) = updater.apply(model, grads);
        model = updated;
        let want_norm = gs["grad_norm"].as_f64().unwrap() as f32;
        assert!(
            (stats.grad_norm - want_norm).abs() < 1e-5 * want_norm.max(1.0),
            "{name} step {step}: grad norm {} vs {want_norm}",
            stats.grad_norm
        );
        let trained: HashMap<&str, ()> = names.iter().map(|n| (n.as_str(), ())).collect();
        let mut worst = (0.0f32, String::new());
        let mut count = 0;
        for t in collect_tensors(&model) {
            if !trained.contains_key(t.name.as_str()) {
                continue;
            }
            count += 1;
            let (values, shape) = want
                .read_f32(&format!("step{step}/{}", t.name))
                .unwrap()
                .unwrap();
            assert_eq!(shape, t.shape, "{}", t.name);
            let d = max_diff(&t.values, &values);
            if d > worst.0 {
                worst = (d, t.name.clone());
            }
        }
        assert_eq!(count, names.len());
        assert!(
            worst.0 < 1e-5,
            "{name} step {step}: parameters differ by up to {} ({})",
            worst.0,
            worst.1
        );
        eprintln!(
            "{name} step {step}: loss {lv:.7} (peft {want_loss:.7}), grad norm {:.6}, max parameter diff {:.2e}",
            stats.grad_norm, worst.0
        );
    }
}

#[test]
fn tiny_llama_lora_step_matches_peft() {
    check("tiny-llama");
}

#[test]
fn tiny_bert_lora_step_matches_peft() {
    check("tiny-bert");
}
