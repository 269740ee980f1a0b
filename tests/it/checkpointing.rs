//! Block-level activation checkpointing (`train::checkpointing`) gives the gradients of
//! the plain backward pass: tiny llama and bert reward models, full fine-tuning and LoRA,
//! every parameter's gradient within 1e-6, the same rewards and loss.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rmtk::models::ModelDir;
use rmtk::models::linear::LoraShape;
use rmtk::models::load::param_infos;
use rmtk::models::peft::{LoraConfig, Targets};
use rmtk::models::reward::{HeadInit, RewardBatch, RewardModel};
use rmtk::rm::bt_loss;
use rmtk::train::checkpointing::reward_backward;

type B = rmtk::device::Cpu;
type A = Autodiff<B>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn host<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

fn check(name: &str, lora: bool) {
    let device = Default::default();
    let dir = ModelDir::open_dir(&root().join("tests/fixtures").join(name), name).unwrap();
    let mut model = RewardModel::<A>::from_pretrained(&dir, HeadInit { seed: 3 }, &device).unwrap();
    if lora {
        let cfg = LoraConfig {
            shape: LoraShape {
                r: 4,
                alpha: 8.0,
                dropout: 0.0,
                rslora: false,
            },
            targets: Targets::AllLinear,
        };
        model = model.apply_lora(&cfg, 5).unwrap().0;
        // B starts at zero: give every factor values so that every gradient is exercised.
        for (_, lin) in model.linears_mut() {
            let b = lin.lora_B.as_mut().unwrap();
            let dims = b.weight.val().dims();
            b.weight = burn::module::Param::from_tensor(Tensor::random(
                dims,
                burn::tensor::Distribution::Uniform(-0.1, 0.1),
                &device,
            ));
        }
    }
    // Ragged rows (right padding), 2 pairs.
    let rows: Vec<Vec<u32>> = vec![
        vec![5, 9, 13, 7, 21, 4, 8],
        vec![6, 11, 3],
        vec![5, 9, 14, 7, 20],
        vec![6, 12, 3, 17, 9, 10],
    ];
    let types: Option<Vec<Vec<u32>>> = (name == "tiny-bert").then(|| {
        rows.iter()
            .map(|r| (0..r.len()).map(|i| u32::from(i >= 2)).collect())
            .collect()
    });
    let batch = RewardBatch::<A>::from_rows(&rows, types.as_deref(), 0, &device);
    let loss_of = |rewards: Tensor<A, 1>| {
        let loss = bt_loss(
            rewards.clone().narrow(0, 0, 2),
            rewards.narrow(0, 2, 2),
            None,
            0.01,
        );
        (loss.clone(), loss)
    };

    let rewards = model.forward(&batch);
    let (loss, _) = loss_of(rewards.clone());
    let plain = GradientsParams::from_grads(loss.clone().backward(), &model);
    let out = reward_backward(&model, &batch, loss_of, None);

    assert_eq!(host(rewards.inner()), host(out.rewards));
    assert_eq!(host(loss.inner()), host(out.loss));
    let (mut worst, mut count) = (0.0f32, 0);
    let mut checkpointed = out.grads;
    for p in param_infos(&model) {
        let (a, b) = match p.shape.len() {
            1 => (
                plain.get::<B, 1>(p.id).map(host),
                checkpointed.remove::<B, 1>(p.id).map(host),
            ),
            _ => (
                plain.get::<B, 2>(p.id).map(host),
                checkpointed.remove::<B, 2>(p.id).map(host),
            ),
        };
        assert_eq!(
            a.is_some(),
            b.is_some(),
            "{name}: {} has a gradient in one pass only",
            p.name
        );
        if let (Some(a), Some(b)) = (a, b) {
            count += 1;
            for (x, y) in a.iter().zip(&b) {
                worst = worst.max((x - y).abs());
            }
        }
    }
    let expected = if lora {
        2 * model.linears_mut().len() + 1
    } else {
        param_infos(&model).len()
    };
    assert_eq!(count, expected, "{name}: gradients for {count} parameters");
    assert!(
        worst < 1e-6,
        "{name} (lora {lora}): gradients differ by {worst}"
    );
    eprintln!("{name} (lora {lora}): {count} gradients within {worst:.1e}");
    let _ = model.num_params();
}

#[test]
fn checkpointed_gradients_equal_the_plain_backward() {
    for name in ["tiny-llama", "tiny-bert"] {
        check(name, false);
        check(name, true);
    }
}
