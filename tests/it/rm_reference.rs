//! rmtk's reward-model training step against PyTorch (`scripts/gen-rm-goldens.py`): from
//! the same initial weights and the same batch, the rewards, the Bradley-Terry loss
//! (margins and centring), the gradient norm, the clipped AdamW update (two steps,
//! decoupled weight decay with transformers' no-decay rule) and the optimizer's moments
//! match `torch.optim.AdamW` within 1e-5.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rmtk::models::ModelDir;
use rmtk::models::load::{Weights, collect_tensors, param_id, param_infos};
use rmtk::models::reward::{HeadInit, RewardBatch, RewardModel};
use rmtk::rm::bt_loss;
use rmtk::train::optim::decays;
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

fn host(t: Tensor<A, 1>) -> Vec<f32> {
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
        &std::fs::read_to_string(root().join(format!("tests/golden/rm-{name}.json"))).unwrap(),
    )
    .unwrap();
    let want =
        Weights::from_files(&[root().join(format!("tests/golden/rm-{name}.safetensors"))]).unwrap();
    let device = Default::default();
    let dir = ModelDir::open_dir(&root().join("tests/fixtures").join(name), name).unwrap();
    let mut model = RewardModel::<A>::from_pretrained(&dir, HeadInit { seed: 0 }, &device).unwrap();

    // The same head as the reference.
    let head = f32s(&g["head"]);
    let h = head.len();
    let key = g["head_key"].as_str().unwrap();
    let weight = Param::initialized(
        param_id(key),
        Tensor::<A, 2>::from_data(TensorData::new(head, [h, 1]), &device).require_grad(),
    );
    match &mut model {
        RewardModel::Decoder(m) => m.score.weight = weight,
        RewardModel::Encoder(m) => m.classifier.weight = weight,
    }

    // The same trainable parameters, and the same ones spared from weight decay.
    let infos = param_infos(&model);
    let names: BTreeSet<String> = infos.iter().map(|p| p.name.clone()).collect();
    let trained: BTreeSet<String> = g["trained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, trained);
    let no_decay: BTreeSet<String> = names.iter().filter(|n| !decays(n)).cloned().collect();
    let want_no_decay: BTreeSet<String> = g["no_decay"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(no_decay, want_no_decay);

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
        AdamW::<B>::new(cfg, infos),
        schedule,
        g["max_grad_norm"].as_f64(),
    );
    let mut my_m1: std::collections::HashMap<String, Vec<f32>> = Default::default();
    for step in 1..=2 {
        let gs = &g[format!("step{step}")];
        let rewards = model.forward(&input);
        let chosen = rewards.clone().narrow(0, 0, k);
        let rejected = rewards.narrow(0, k, k);
        let rc = host(chosen.clone());
        let rr = host(rejected.clone());
        let d = max_diff(&rc, &f32s(&gs["rewards_chosen"]))
            .max(max_diff(&rr, &f32s(&gs["rewards_rejected"])));
        assert!(
            d < 1e-5,
            "{name} step {step}: rewards differ by {d}: {rc:?} {rr:?}"
        );
        let margin = Tensor::<A, 1>::from_data(TensorData::new(margins.clone(), [k]), &device);
        let loss = bt_loss(
            chosen,
            rejected,
            Some(margin),
            g["center_rewards_coef"].as_f64().unwrap(),
        );
        let lv = host(loss.clone())[0];
        let want_loss = gs["loss"].as_f64().unwrap() as f32;
        assert!(
            (lv - want_loss).abs() < 1e-5,
            "{name} step {step}: loss {lv} vs {want_loss}"
        );
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let (updated, stats) = updater.apply(model, grads);
        model = updated;
        let want_norm = gs["grad_norm"].as_f64().unwrap() as f32;
        assert!(
            (stats.grad_norm - want_norm).abs() < 1e-5 * want_norm.max(1.0),
            "{name} step {step}: grad norm {} vs {want_norm}",
            stats.grad_norm
        );
        // Elements whose PyTorch gradient is float noise (non-zero but below 1e-6: BERT's
        // key bias has an exactly-zero gradient in exact arithmetic) make Adam's update
        // noise too: they are held to the bound of any Adam step, |update| <= lr per step.
        // Every other element, exact zeros included, within 1e-5.
        let lr = g["lr"].as_f64().unwrap() as f32;
        let b1 = betas[0];
        let (mut worst, mut worst_noise, mut noise) = ((0.0f32, String::new()), 0.0f32, 0usize);
        let mut total = 0usize;
        let mine: std::collections::HashMap<String, Vec<f32>> = updater
            .optim
            .state_tensors()
            .into_iter()
            .map(|t| (t.values(), t.name))
            .map(|(v, n)| (n, v))
            .collect();
        if step == 1 {
            my_m1 = mine.clone();
        }
        for t in collect_tensors(&model) {
            let (values, shape) = want
                .read_f32(&format!("step{step}/{}", t.name))
                .unwrap()
                .unwrap();
            assert_eq!(shape, t.shape, "{}", t.name);
            let m1 = want
                .read_f32(&format!("step1/{}.exp_avg", t.name))
                .unwrap()
                .unwrap()
                .0;
            let m2 = want
                .read_f32(&format!("step2/{}.exp_avg", t.name))
                .unwrap()
                .unwrap()
                .0;
            for i in 0..values.len() {
                // This step's clipped gradient, PyTorch's and rmtk's, from the moments.
                let grads = |m1: f32, m2: f32| (m1 / (1.0 - b1), (m2 - b1 * m1) / (1.0 - b1));
                let (t1, t2) = grads(m1[i], m2[i]);
                let my1 = my_m1[&format!("{}.exp_avg", t.name)][i];
                let (r1, r2) = if step == 2 {
                    grads(my1, mine[&format!("{}.exp_avg", t.name)][i])
                } else {
                    (my1 / (1.0 - b1), 0.0)
                };
                let tiny = |a: f32, b: f32| (a != 0.0 || b != 0.0) && a.abs().max(b.abs()) < 1e-6;
                let noisy = tiny(t1, r1) || (step == 2 && tiny(t2, r2));
                let d = (t.values[i] - values[i]).abs();
                total += 1;
                if noisy {
                    noise += 1;
                    worst_noise = worst_noise.max(d);
                } else if d > worst.0 {
                    worst = (d, t.name.clone());
                }
            }
        }
        assert!(
            worst.0 < 1e-5,
            "{name} step {step}: parameters differ by up to {} ({})",
            worst.0,
            worst.1
        );
        assert!(
            worst_noise <= 1.01 * lr * step as f32,
            "{name} step {step}: a noise-gradient element moved by {worst_noise}"
        );
        eprintln!(
            "{name} step {step}: loss {lv:.7} (torch {want_loss:.7}), grad norm {:.6}, max parameter diff {:.2e} ({}); {noise} of {total} elements with 0 < |grad| < 1e-6 differ by up to {worst_noise:.2e}",
            stats.grad_norm, worst.0, worst.1
        );
        if step == 1 {
            // The optimizer state, by parameter name in PyTorch layout, is torch's.
            let (mut dm, mut dv) = (0.0f32, 0.0f32);
            for t in updater.optim.state_tensors() {
                let (values, _) = want
                    .read_f32(&format!("step1/{}", t.name))
                    .unwrap()
                    .unwrap();
                let d = max_diff(&t.values(), &values);
                if t.name.ends_with("exp_avg") {
                    dm = dm.max(d);
                } else {
                    dv = dv.max(d);
                }
            }
            assert!(
                dm < 1e-5 && dv < 1e-6,
                "{name}: moments differ by {dm} / {dv}"
            );
        }
    }
}

#[test]
fn tiny_llama_reward_step_matches_pytorch() {
    check("tiny-llama");
}

#[test]
fn tiny_bert_reward_step_matches_pytorch() {
    check("tiny-bert");
}
