//! Backbone throughput: forward tokens/s at batch x length, KV-cached decode tokens/s at
//! batch 1 and 8 after short prompts, and whole greedy generations of a batch of 16 prompts
//! of 80-500 tokens (prefill included). `cargo bench --bench backbone
//! [--features bench-ndarray|cuda] -- [--backend flex|ndarray|cuda] [--dtype f32|bf16]
//! [--model DIR] [--random-weights SEED] [--batch 8] [--seq 512] [--prompt 32] [--new 64]
//! [--reps 3] [--no-chat]`. `--random-weights` needs only the folder's config.json (the
//! GPU check runs Qwen2.5-0.5B's shape this way: scripts/gpu-check.sh).
//! Prints one JSON line per measurement (scripts/bench-models.sh tabulates them).

mod common;

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::DType;
use rmtk::kernels::FusedOps;
use rmtk::models::{self, LlamaForCausalLM, ModelDir, PaddingMask, SlotId};

struct Args {
    backend: String,
    dtype: String,
    model: String,
    random_weights: Option<u64>,
    batch: usize,
    seq: usize,
    prompt: usize,
    new: usize,
    reps: usize,
    no_chat: bool,
}

fn parse() -> Args {
    let mut a = Args {
        backend: "flex".into(),
        dtype: "f32".into(),
        model: "models/smollm2-135m-instruct".into(),
        random_weights: None,
        batch: 8,
        seq: 512,
        prompt: 32,
        new: 64,
        reps: 3,
        no_chat: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--backend" => a.backend = v,
            "--dtype" => a.dtype = v,
            "--model" => a.model = v,
            "--random-weights" => a.random_weights = Some(v.parse().expect("--random-weights")),
            "--batch" => a.batch = v.parse().expect("--batch"),
            "--seq" => a.seq = v.parse().expect("--seq"),
            "--prompt" => a.prompt = v.parse().expect("--prompt"),
            "--new" => a.new = v.parse().expect("--new"),
            "--reps" => a.reps = v.parse().expect("--reps"),
            "--no-chat" => {
                a.no_chat = true;
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
    sync(lm.model.forward(ids.clone(), &mask)); // warm-up
    let mut best = f64::MAX;
    for _ in 0..a.reps {
        let t = Instant::now();
        // Logits of every position, as training a reward model or scoring needs the
        // hidden states and generation the logits.
        sync(lm.forward(ids.clone(), &mask));
        best = best.min(t.elapsed().as_secs_f64());
    }
    (a.batch * a.seq) as f64 / best
}

/// Greedy next tokens of each row, read on the host as generation reads them.
fn greedy<B: FusedOps>(logits: Tensor<B, 2>) -> Vec<u32> {
    let n = logits.dims()[0];
    logits
        .argmax(1)
        .reshape([n])
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .expect("ids")
        .into_iter()
        .map(|t| t as u32)
        .collect()
}

/// Prefill `prompts` (one slot each, in one ragged step), then decode `new` greedy tokens
/// per row; returns (prefill seconds, decode seconds).
fn prefill_and_decode<B: FusedOps>(
    lm: &LlamaForCausalLM<B>,
    prompts: &[Vec<u32>],
    new: usize,
) -> (f64, f64) {
    let t = Instant::now();
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(1);
    let mut cache = lm.new_cache(prompts.len(), longest + new);
    let slots: Vec<SlotId> = prompts.iter().map(|_| cache.alloc().unwrap()).collect();
    let rows: Vec<(SlotId, &[u32])> = slots
        .iter()
        .zip(prompts)
        .map(|(&s, p)| (s, p.as_slice()))
        .collect();
    let mut next = greedy(lm.step(&mut cache, &rows));
    let prefill = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..new {
        let singles: Vec<[u32; 1]> = next.iter().map(|&t| [t]).collect();
        let rows: Vec<(SlotId, &[u32])> = slots
            .iter()
            .zip(&singles)
            .map(|(&s, t)| (s, t.as_slice()))
            .collect();
        next = greedy(lm.step(&mut cache, &rows));
    }
    (prefill, t.elapsed().as_secs_f64())
}

/// Decode tokens/s after `batch` prompts of `a.prompt` tokens (the prefill not timed).
fn decode_bench<B: FusedOps>(lm: &LlamaForCausalLM<B>, a: &Args, batch: usize) -> f64 {
    let vocab = lm.model.vocab_size();
    let prompts: Vec<Vec<u32>> = (0..batch)
        .map(|_| {
            common::tokens(a.prompt, vocab, 7)
                .map(|t| t as u32)
                .collect()
        })
        .collect();
    let mut best = f64::MAX;
    for rep in 0..a.reps.max(1) + 1 {
        let (_, decode) = prefill_and_decode(lm, &prompts, a.new);
        if rep > 0 {
            best = best.min(decode);
        }
    }
    (batch * a.new) as f64 / best
}

/// The lengths of the chat-like batch: 16 prompts from 80 to 500 tokens, evenly spread
/// (scripts/bench-torch.py makes the same).
fn chat_lengths() -> Vec<usize> {
    (0..16).map(|i| 80 + i * 28).collect()
}

/// Generated tokens/s of a whole greedy generation (prefill included, as `generate`
/// and a GRPO rollout pay it) for 16 prompts of 80-500 tokens; and the prefill's share.
fn chat_bench<B: FusedOps>(lm: &LlamaForCausalLM<B>, a: &Args) -> (f64, f64) {
    let vocab = lm.model.vocab_size();
    let prompts: Vec<Vec<u32>> = chat_lengths()
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            common::tokens(n, vocab, 100 + i as u64)
                .map(|t| t as u32)
                .collect()
        })
        .collect();
    let mut best = (f64::MAX, 0.0);
    for rep in 0..a.reps.max(1) + 1 {
        let (prefill, decode) = prefill_and_decode(lm, &prompts, a.new);
        if rep > 0 && prefill + decode < best.0 {
            best = (prefill + decode, prefill);
        }
    }
    ((prompts.len() * a.new) as f64 / best.0, best.1)
}

fn run<B: FusedOps>(a: &Args, device: B::Device) {
    let mut model = ModelDir::open(&a.model).expect("model folder (run scripts/fetch-models.sh)");
    model.random_weights = a.random_weights;
    let dtype = match a.dtype.as_str() {
        "f32" => DType::F32,
        "bf16" => DType::BF16,
        other => panic!("--dtype {other}: f32 or bf16"),
    };
    let lm = models::load_causal_lm_in::<B>(&model, &device, dtype).expect("load");
    let fwd = forward_bench(&lm, a, &device);
    println!(
        "{{\"engine\":\"rmtk-{}\",\"dtype\":\"{}\",\"what\":\"forward\",\"batch\":{},\"seq\":{},\"tokens_per_s\":{fwd:.1}}}",
        a.backend, a.dtype, a.batch, a.seq
    );
    for batch in [1, 8] {
        let dec = decode_bench(&lm, a, batch);
        println!(
            "{{\"engine\":\"rmtk-{}\",\"dtype\":\"{}\",\"what\":\"decode\",\"batch\":{batch},\"prompt\":{},\"new\":{},\"tokens_per_s\":{dec:.1}}}",
            a.backend, a.dtype, a.prompt, a.new
        );
    }
    if !a.no_chat {
        let (chat, prefill) = chat_bench(&lm, a);
        println!(
            "{{\"engine\":\"rmtk-{}\",\"dtype\":\"{}\",\"what\":\"chat\",\"batch\":16,\"prompt\":\"80-500\",\"new\":{},\"tokens_per_s\":{chat:.1},\"prefill_s\":{prefill:.3}}}",
            a.backend, a.dtype, a.new
        );
    }
}

fn main() {
    // As the binary runs (src/main.rs).
    rmtk::util::tune_allocator();
    let a = parse();
    match a.backend.as_str() {
        "flex" => run::<burn::backend::Flex>(&a, Default::default()),
        #[cfg(feature = "bench-ndarray")]
        "ndarray" => run::<burn::backend::NdArray>(&a, Default::default()),
        #[cfg(feature = "cuda")]
        "cuda" => run::<rmtk::device::Gpu>(&a, burn::backend::cuda::CudaDevice::new(0)),
        other => panic!(
            "unknown backend {other} (flex; ndarray with --features bench-ndarray; cuda with --features cuda)"
        ),
    }
}
