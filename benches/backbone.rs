//! Backbone throughput on CPU: forward tokens/s at batch x length, and KV-cached decode
//! tokens/s at batch 1 and 8. `cargo bench --bench backbone [--features bench-ndarray]
//! -- [--backend flex|ndarray]
//! [--model DIR] [--batch 8] [--seq 512] [--prompt 32] [--new 64] [--reps 3]`.
//! Prints one JSON line per measurement (scripts/bench-models.sh tabulates them).

mod common;

use std::time::Instant;

use burn::prelude::*;
use rmtk::kernels::FusedOps;
use rmtk::models::{self, LlamaForCausalLM, ModelDir, PaddingMask};

struct Args {
    backend: String,
    model: String,
    batch: usize,
    seq: usize,
    prompt: usize,
    new: usize,
    reps: usize,
}

fn parse() -> Args {
    let mut a = Args {
        backend: "flex".into(),
        model: "models/smollm2-135m-instruct".into(),
        batch: 8,
        seq: 512,
        prompt: 32,
        new: 64,
        reps: 3,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--backend" => a.backend = v,
            "--model" => a.model = v,
            "--batch" => a.batch = v.parse().expect("--batch"),
            "--seq" => a.seq = v.parse().expect("--seq"),
            "--prompt" => a.prompt = v.parse().expect("--prompt"),
            "--new" => a.new = v.parse().expect("--new"),
            "--reps" => a.reps = v.parse().expect("--reps"),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// The benches' token ids, as burn's `Int` data.
fn ids(n: usize, vocab: usize, salt: u64) -> Vec<i64> {
    common::tokens(n, vocab, salt).map(|t| t as i64).collect()
}

fn sync<B: FusedOps>(t: Tensor<B, 3>) {
    let _ = t.narrow(2, 0, 1).into_data();
}

fn forward_bench<B: FusedOps>(lm: &LlamaForCausalLM<B>, a: &Args, device: &B::Device) -> f64 {
    let vocab = lm.model.vocab_size();
    let ids = Tensor::<B, 2, Int>::from_data(
        TensorData::new(ids(a.batch * a.seq, vocab, 1), [a.batch, a.seq]),
        device,
    );
    let mask = PaddingMask::all_valid(a.batch, a.seq);
    sync(lm.model.forward(ids.clone(), &mask, None)); // warm-up
    let mut best = f64::MAX;
    for _ in 0..a.reps {
        let t = Instant::now();
        // Logits of every position, as training a reward model or scoring needs the
        // hidden states and generation the logits.
        sync(lm.forward(ids.clone(), &mask, None));
        best = best.min(t.elapsed().as_secs_f64());
    }
    (a.batch * a.seq) as f64 / best
}

fn decode_bench<B: FusedOps>(
    lm: &LlamaForCausalLM<B>,
    a: &Args,
    batch: usize,
    device: &B::Device,
) -> f64 {
    let vocab = lm.model.vocab_size();
    let mut best = f64::MAX;
    for rep in 0..a.reps.max(1) + 1 {
        let ids = Tensor::<B, 2, Int>::from_data(
            TensorData::new(ids(batch * a.prompt, vocab, 7), [batch, a.prompt]),
            device,
        );
        let mut cache = lm.new_cache(batch);
        let logits = lm.forward(
            ids,
            &PaddingMask::all_valid(batch, a.prompt),
            Some(&mut cache),
        );
        let mut next = logits
            .narrow(1, a.prompt - 1, 1)
            .argmax(2)
            .reshape([batch, 1]);
        let t = Instant::now();
        for _ in 0..a.new {
            let logits = lm.forward(next, &PaddingMask::all_valid(batch, 1), Some(&mut cache));
            next = logits.argmax(2).reshape([batch, 1]);
            // Generation reads the next tokens on the host every step.
            let _ = next.to_data();
        }
        if rep > 0 {
            best = best.min(t.elapsed().as_secs_f64());
        }
    }
    (batch * a.new) as f64 / best
}

fn run<B: FusedOps>(a: &Args) {
    let device = B::Device::default();
    let model = ModelDir::open(&a.model).expect("model folder (run scripts/fetch-models.sh)");
    let lm = models::load_causal_lm::<B>(&model, &device).expect("load");
    let fwd = forward_bench(&lm, a, &device);
    println!(
        "{{\"engine\":\"rmtk-{}\",\"what\":\"forward\",\"batch\":{},\"seq\":{},\"tokens_per_s\":{fwd:.1}}}",
        a.backend, a.batch, a.seq
    );
    for batch in [1, 8] {
        let dec = decode_bench(&lm, a, batch, &device);
        println!(
            "{{\"engine\":\"rmtk-{}\",\"what\":\"decode\",\"batch\":{batch},\"prompt\":{},\"new\":{},\"tokens_per_s\":{dec:.1}}}",
            a.backend, a.prompt, a.new
        );
    }
}

fn main() {
    let a = parse();
    match a.backend.as_str() {
        "flex" => run::<burn::backend::Flex>(&a),
        #[cfg(feature = "bench-ndarray")]
        "ndarray" => run::<burn::backend::NdArray>(&a),
        other => panic!("unknown backend {other} (flex; ndarray with --features bench-ndarray)"),
    }
}
