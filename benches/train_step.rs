//! One reward-model training step on CPU (forward, Bradley-Terry loss, backward), and the
//! matrix multiplies of that step alone.
//!
//! `cargo bench --bench train_step -- [--model DIR] [--batch 4] [--seq 256] [--reps 3]
//! [--gemm]`: `--batch` counts sequences (pairs x 2), every one `--seq` real tokens
//! (no padding). Prints one JSON line per measurement: the step's best forward and
//! backward seconds over `--reps` after a warm-up; with `--gemm`, GFLOP/s of each
//! distinct product shape of the step (forward `X W`, backward `dY W^T` and `X^T dY`) as
//! burn-flex runs them. `scripts/bench-step.sh` runs this beside PyTorch
//! (`scripts/bench_step.py`) on the same shapes. `RMTK_KERNELS=plain` times the plain ops.

mod common;

use std::time::Instant;

use burn::backend::Autodiff;
use burn::prelude::*;
use rmtk::models::ModelDir;
use rmtk::models::reward::{HeadInit, RewardBatch, RewardModel};
use rmtk::rm::bt_loss;
use serde_json::Value;

type B = burn::backend::Flex;
type A = Autodiff<B>;

struct Args {
    model: String,
    batch: usize,
    seq: usize,
    reps: usize,
    gemm: bool,
}

fn parse() -> Args {
    let mut a = Args {
        model: "models/smollm2-135m-instruct".into(),
        batch: 4,
        seq: 256,
        reps: 3,
        gemm: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--model" => a.model = v,
            "--batch" => a.batch = v.parse().expect("--batch"),
            "--seq" => a.seq = v.parse().expect("--seq"),
            "--reps" => a.reps = v.parse().expect("--reps"),
            "--gemm" => {
                a.gemm = true;
                i += 1;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn step(a: &Args) {
    let device = Default::default();
    let dir = ModelDir::open(&a.model).expect("model folder (run scripts/fetch-models.sh)");
    let model = RewardModel::<A>::from_pretrained(&dir, HeadInit { seed: 0 }, &device)
        .expect("load the model");
    let vocab = config(&a.model)["vocab_size"].as_u64().unwrap() as usize;
    let ids: Vec<u32> = common::tokens(a.batch * a.seq, vocab, 1)
        .map(|t| t as u32)
        .collect();
    let rows: Vec<Vec<u32>> = ids.chunks(a.seq).map(<[u32]>::to_vec).collect();
    let batch = RewardBatch::<A>::from_rows(&rows, None, 0, &device);
    let half = a.batch / 2;
    let (mut fwd, mut bwd) = (f64::MAX, f64::MAX);
    for rep in 0..=a.reps {
        let t = Instant::now();
        let rewards = model.forward(&batch);
        let loss = bt_loss(
            rewards.clone().narrow(0, 0, half),
            rewards.narrow(0, half, half),
            None,
            0.0,
        );
        let _ = loss.to_data();
        let f = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let grads = loss.backward();
        let b = t.elapsed().as_secs_f64();
        drop(grads);
        if rep > 0 {
            fwd = fwd.min(f);
            bwd = bwd.min(b);
        }
    }
    let mode = std::env::var("RMTK_KERNELS").unwrap_or_else(|_| "fused".into());
    println!(
        "{{\"engine\":\"rmtk\",\"kernels\":\"{mode}\",\"what\":\"step\",\"batch\":{},\"seq\":{},\"forward_s\":{fwd:.4},\"backward_s\":{bwd:.4},\"step_s\":{:.4},\"tokens_per_s\":{:.1}}}",
        a.batch,
        a.seq,
        fwd + bwd,
        (a.batch * a.seq) as f64 / (fwd + bwd)
    );
}

fn config(model: &str) -> Value {
    let text = std::fs::read_to_string(std::path::Path::new(model).join("config.json"))
        .expect("config.json");
    serde_json::from_str(&text).expect("config.json is JSON")
}

/// The distinct `[m, k] x [k, n]` products of one training step of the model's linear
/// layers, with how many times each runs per step.
fn gemm_shapes(cfg: &Value, tokens: usize) -> Vec<(String, usize, usize, usize, usize)> {
    let get = |k: &str| cfg[k].as_u64().map(|v| v as usize);
    let h = get("hidden_size").unwrap();
    let layers = get("num_hidden_layers").unwrap();
    let inter = get("intermediate_size").unwrap();
    let heads = get("num_attention_heads").unwrap();
    let kv = get("num_key_value_heads").unwrap_or(heads) * get("head_dim").unwrap_or(h / heads);
    // (name, in, out, count per layer)
    let linears: Vec<(&str, usize, usize, usize)> = if kv == h {
        // BERT: query, key, value, attention output; intermediate; output.
        vec![
            ("attn", h, h, 4),
            ("up", h, inter, 1),
            ("down", inter, h, 1),
        ]
    } else {
        vec![
            ("q_o", h, h, 2),
            ("k_v", h, kv, 2),
            ("gate_up", h, inter, 2),
            ("down", inter, h, 1),
        ]
    };
    let mut out = Vec::new();
    for (name, d_in, d_out, n) in linears {
        let count = n * layers;
        out.push((format!("{name} forward X W"), tokens, d_in, d_out, count));
        out.push((
            format!("{name} backward dY W^T"),
            tokens,
            d_out,
            d_in,
            count,
        ));
        out.push((
            format!("{name} backward X^T dY"),
            d_in,
            tokens,
            d_out,
            count,
        ));
    }
    out
}

fn gemm(a: &Args) {
    let device = Default::default();
    let cfg = config(&a.model);
    let tokens = a.batch * a.seq;
    let mut total_flop = 0.0;
    let mut total_s = 0.0;
    for (name, m, k, n, count) in gemm_shapes(&cfg, tokens) {
        // The layouts the step meets: activations row-major; the weight stored [in, out]
        // (burn's Linear); a transposed operand is a strided view, as in autodiff.
        let lhs_t = name.contains("X^T");
        let rhs_t = name.contains("W^T");
        let lhs = if lhs_t {
            Tensor::<B, 2>::random([k, m], burn::tensor::Distribution::Default, &device).transpose()
        } else {
            Tensor::<B, 2>::random([m, k], burn::tensor::Distribution::Default, &device)
        };
        let rhs = if rhs_t {
            Tensor::<B, 2>::random([n, k], burn::tensor::Distribution::Default, &device).transpose()
        } else {
            Tensor::<B, 2>::random([k, n], burn::tensor::Distribution::Default, &device)
        };
        let mut best = f64::MAX;
        for rep in 0..=a.reps {
            let t = Instant::now();
            let out = lhs.clone().matmul(rhs.clone());
            let _ = out.narrow(0, 0, 1).into_data();
            if rep > 0 {
                best = best.min(t.elapsed().as_secs_f64());
            }
        }
        let flop = 2.0 * (m * k * n) as f64;
        total_flop += flop * count as f64;
        total_s += best * count as f64;
        println!(
            "{{\"engine\":\"rmtk\",\"what\":\"gemm\",\"op\":\"{name}\",\"m\":{m},\"k\":{k},\"n\":{n},\"per_step\":{count},\"seconds\":{best:.6},\"gflops\":{:.1}}}",
            flop / best / 1e9
        );
    }
    println!(
        "{{\"engine\":\"rmtk\",\"what\":\"gemm_total\",\"tokens\":{tokens},\"seconds\":{total_s:.4},\"gflops\":{:.1}}}",
        total_flop / total_s / 1e9
    );
}

fn main() {
    // As the binary runs (src/main.rs).
    rmtk::util::tune_allocator();
    let a = parse();
    if a.gemm {
        gemm(&a);
    } else {
        step(&a);
    }
}
