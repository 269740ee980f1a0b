//! The fused kernels (`src/kernels/`) against the plain compositions of burn ops: each op
//! forward and backward on random inputs of awkward sizes, one reward-model training step
//! per backbone (loss, every parameter's gradient, the weights after an AdamW update), and
//! the kernels' results independent of the number of threads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use rmtk::kernels::{self, AttnLayout, Mode};
use rmtk::models::ModelDir;
use rmtk::models::load::{collect_tensors, param_infos};
use rmtk::models::reward::{HeadInit, RewardBatch, RewardModel};
use rmtk::rm::bt_loss;
use rmtk::train::{AdamW, AdamWConfig, LrSchedule, ScheduleKind, Updater};

type B = rmtk::device::Cpu;
type A = Autodiff<B>;

const TOL: f32 = 1e-5;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Deterministic values in [-scale, scale).
fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn tensor<Bk: Backend, const D: usize>(shape: [usize; D], seed: u64, scale: f32) -> Tensor<Bk, D> {
    let n = shape.iter().product();
    Tensor::from_data(
        TensorData::new(random(n, seed, scale), shape),
        &Default::default(),
    )
}

fn host<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

/// Largest difference relative to the reference's scale (absolute below 1).
fn diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

fn assert_close(what: &str, fused: &[f32], plain: &[f32]) {
    let d = diff(fused, plain);
    assert!(d <= TOL, "{what}: fused and plain differ by {d}");
}

/// Run an op's forward and backward in one mode: output, then each input's gradient of
/// `sum(out * probe)`.
fn run_op<const N: usize, const D: usize>(
    mode: Mode,
    inputs: &[Tensor<B, D>; N],
    op: impl Fn(&[Tensor<A, D>]) -> Tensor<A, D>,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    kernels::scoped(mode, || {
        let xs: Vec<Tensor<A, D>> = inputs
            .iter()
            .map(|x| Tensor::<A, D>::from_inner(x.clone()).require_grad())
            .collect();
        let out = op(&xs);
        let probe = tensor::<A, D>(out.dims(), 99, 1.0);
        let loss = (out.clone() * probe).sum();
        let grads = loss.backward();
        let gs = xs
            .iter()
            .map(|x| host(x.grad(&grads).expect("gradient")))
            .collect();
        (host(out), gs)
    })
}

fn check_op<const N: usize, const D: usize>(
    name: &str,
    inputs: [Tensor<B, D>; N],
    op: impl Fn(&[Tensor<A, D>]) -> Tensor<A, D> + Copy,
) {
    let (yf, gf) = run_op(Mode::Fused, &inputs, op);
    let (yp, gp) = run_op(Mode::Plain, &inputs, op);
    assert_close(&format!("{name} forward"), &yf, &yp);
    for (i, (f, p)) in gf.iter().zip(&gp).enumerate() {
        assert_close(&format!("{name} gradient of input {i}"), f, p);
    }
    // The inner backend alone (inference) takes the same kernels.
    let inner = |mode| {
        kernels::scoped(mode, || {
            let xs: Vec<Tensor<A, D>> = inputs.iter().cloned().map(Tensor::from_inner).collect();
            host(op(&xs).inner())
        })
    };
    assert_close(&format!("{name} inference"), &inner(Mode::Fused), &yp);
    assert_eq!(inner(Mode::Plain), yp, "{name}: plain inference");
}

#[test]
fn each_fused_op_matches_its_plain_composition() {
    // 37 rows of 70: neither a multiple of the kernels' lanes nor of their row blocks.
    let (rows, dim) = (37, 70);
    check_op(
        "rms_norm",
        [tensor([rows, dim], 1, 3.0), tensor([1, dim], 2, 1.0)],
        |t| kernels::rms_norm(t[0].clone(), t[1].clone().reshape([dim]), 1e-6),
    );
    check_op("gelu", [tensor([rows, dim], 7, 4.0)], |t| {
        kernels::gelu(t[0].clone())
    });
    check_op(
        "layer_norm",
        [
            tensor([rows, dim], 3, 3.0),
            tensor([1, dim], 4, 1.0),
            tensor([1, dim], 5, 1.0),
        ],
        |t| {
            kernels::layer_norm(
                t[0].clone(),
                t[1].clone().reshape([dim]),
                t[2].clone().reshape([dim]),
                1e-12,
            )
        },
    );
    check_op(
        "swiglu",
        [tensor([rows, dim], 6, 6.0), tensor([rows, dim], 7, 2.0)],
        |t| kernels::swiglu(t[0].clone(), t[1].clone()),
    );
    // RoPE: [batch, seq, heads, head_dim] with angles [batch, seq, head_dim / 2].
    let (batch, seq, heads, d) = (3, 5, 3, 18);
    let angles = tensor::<B, 3>([batch, seq, d / 2], 8, 40.0);
    let (cos, sin) = (angles.clone().cos(), angles.sin());
    let (c, s) = (
        Tensor::<A, 3>::from_inner(cos),
        Tensor::<A, 3>::from_inner(sin),
    );
    let rope = move |t: &[Tensor<A, 4>]| kernels::rope(t[0].clone(), c.clone(), s.clone());
    let x = tensor::<B, 4>([batch, seq, heads, d], 9, 2.0);
    let (yf, gf) = run_op(Mode::Fused, std::array::from_ref(&x), &rope);
    let (yp, gp) = run_op(Mode::Plain, &[x], &rope);
    assert_close("rope forward", &yf, &yp);
    assert_close("rope gradient", &gf[0], &gp[0]);
}

type Grads = <A as burn::tensor::backend::AutodiffBackend>::Gradients;

/// Attention cases: `[batch, seq, heads, d]` queries over `[batch, keys, kv_heads, d]`:
/// grouped heads (3 query heads per key/value head) and not; rows left-padded,
/// right-padded and full; causal, sliding and bidirectional; sizes that are no multiple of
/// the kernel's blocks. Each: a name, the layout and the inputs.
fn attention_cases() -> Vec<(&'static str, AttnLayout, [Tensor<B, 4>; 3])> {
    let cases = [
        (
            "causal, left-padded, GQA 3",
            3,
            1,
            true,
            0,
            vec![(0, 133), (5, 133), (40, 133)],
        ),
        ("causal, full, GQA 1", 2, 2, true, 0, vec![(0, 70), (0, 70)]),
        ("sliding window 9", 3, 1, true, 9, vec![(2, 41), (0, 41)]),
        (
            "bidirectional, right-padded",
            2,
            2,
            false,
            0,
            vec![(0, 150), (0, 97), (0, 3)],
        ),
    ];
    cases
        .into_iter()
        .map(|(name, heads, kv_heads, causal, window, rows)| {
            let seq = rows[0].1;
            let batch = rows.len();
            let d = 16;
            let layout = AttnLayout {
                key_start: rows.iter().map(|r| r.0).collect(),
                key_end: rows.iter().map(|r| r.1.min(seq)).collect(),
                query_start: vec![0; batch],
                causal,
                window,
            };
            let inputs = [
                tensor::<B, 4>([batch, seq, heads, d], 21, 1.5),
                tensor::<B, 4>([batch, seq, kv_heads, d], 22, 1.5),
                tensor::<B, 4>([batch, seq, kv_heads, d], 23, 1.0),
            ];
            (name, layout, inputs)
        })
        .collect()
}

#[test]
fn fused_attention_matches_burns_attention() {
    for (name, layout, inputs) in attention_cases() {
        let layout = &layout;
        check_op(name, inputs, |t| {
            kernels::attention(t[0].clone(), t[1].clone(), t[2].clone(), layout)
        });
    }
}

#[test]
fn written_out_attention_matches_burns_attention_op() {
    // What CUDA runs (matmuls and a masked softmax, `FusedOps::burn_attention` false)
    // against burn's attention op, forward and backward, and the log-sum-exp the fused
    // backward keeps computed both ways.
    use rmtk::kernels::plain;
    for (name, layout, inputs) in attention_cases() {
        let layout = &layout;
        let by = |burn_op: bool| {
            run_op(Mode::Plain, &inputs, |t| {
                plain::attend(t[0].clone(), t[1].clone(), t[2].clone(), layout, burn_op)
            })
        };
        let (yw, gw) = by(false);
        let (yb, gb) = by(true);
        assert_close(&format!("{name}: written-out forward"), &yw, &yb);
        for (i, (w, b)) in gw.iter().zip(&gb).enumerate() {
            assert_close(&format!("{name}: written-out gradient of input {i}"), w, b);
        }
        let [q, k, v] = inputs;
        let lse = |burn_op: bool| {
            let (out, lse) = plain::attention_lse(q.clone(), k.clone(), v.clone(), layout, burn_op);
            (host(out), host(lse))
        };
        let (ow, lw) = lse(false);
        let (ob, lb) = lse(true);
        assert_close(&format!("{name}: attention_lse output"), &ow, &ob);
        assert_eq!(
            lw, lb,
            "{name}: the log-sum-exp does not depend on the output's path"
        );
    }
}

#[test]
fn cached_attention_and_cache_writes_match_the_plain_ops() {
    // A ragged step over a KV cache: rows read slots out of order, start at different
    // past lengths (one a prefill from 0), grouped-query heads 6 over 2.
    let (slots, capacity, heads, kv_heads, d) = (4, 40, 6, 2, 16);
    let rows: [(usize, usize, usize); 3] = [(2, 10, 1), (0, 0, 7), (3, 25, 3)]; // slot, start, len
    let width = 7;
    let k = tensor::<B, 4>([slots, capacity, kv_heads, d], 41, 1.5);
    let v = tensor::<B, 4>([slots, capacity, kv_heads, d], 42, 1.0);
    let new_k = tensor::<B, 4>([3, width, kv_heads, d], 43, 1.5);
    let new_v = tensor::<B, 4>([3, width, kv_heads, d], 44, 1.0);
    let q = tensor::<B, 4>([3, width, heads, d], 45, 1.5);
    let slot_ids: Vec<usize> = rows.iter().map(|r| r.0).collect();
    let starts: Vec<usize> = rows.iter().map(|r| r.1).collect();
    let lens: Vec<usize> = rows.iter().map(|r| r.2).collect();
    for window in [0, 5] {
        let layout = AttnLayout {
            key_start: vec![0; 3],
            key_end: rows.iter().map(|r| r.1 + r.2).collect(),
            query_start: starts.clone(),
            causal: true,
            window,
        };
        let run = |mode| {
            kernels::scoped(mode, || {
                let k = kernels::kv_write(k.clone(), new_k.clone(), &slot_ids, &starts, &lens);
                let v = kernels::kv_write(v.clone(), new_v.clone(), &slot_ids, &starts, &lens);
                let k = kernels::kv_copy(k, 2, &[1], 11);
                let out = kernels::cached_attention(q.clone(), k.clone(), v, &slot_ids, &layout);
                (host(k), host(out))
            })
        };
        let ((fused_k, fused), (plain_k, plain)) = (run(Mode::Fused), run(Mode::Plain));
        assert!(
            fused_k == plain_k,
            "kv_write and kv_copy: fused and plain caches differ"
        );
        // Padding queries' outputs are never read; compare the real ones.
        for (b, &(_, _, len)) in rows.iter().enumerate() {
            let at = |x: &[f32]| x[b * width * heads * d..(b * width + len) * heads * d].to_vec();
            assert_close(
                &format!("cached attention row {b}, window {window}"),
                &at(&fused),
                &at(&plain),
            );
        }
    }
    // The caller's cache handle was shared: the writes went to a copy of it.
    assert_eq!(host(k), random(slots * capacity * kv_heads * d, 41, 1.5));
}

#[test]
fn fused_adamw_rounds_exactly_as_the_plain_update() {
    // More elements than one rayon block, an odd count; clipping and decay on and off.
    let n = 70_001;
    let p = tensor::<B, 1>([n], 31, 1.0);
    let g = tensor::<B, 1>([n], 32, 0.1);
    let m = tensor::<B, 1>([n], 33, 0.01);
    let v = tensor::<B, 1>([n], 34, 0.001).abs();
    for (grad_scale, decay) in [(1.0f32, 1.0f32), (0.37, 0.9999)] {
        let step = kernels::AdamWStep {
            grad_scale,
            decay,
            one_minus_beta1: 0.1,
            beta2: 0.999,
            one_minus_beta2: (1.0f64 - 0.999) as f32,
            bias2_sqrt: (1.0f64 - 0.999f64.powi(3)).sqrt() as f32,
            eps: 1e-8,
            step_size: (1e-3 / (1.0 - 0.9f64.powi(3))) as f32,
        };
        let run = |mode| {
            kernels::scoped(mode, || {
                let (p, m, v) = kernels::adamw(p.clone(), g.clone(), m.clone(), v.clone(), &step);
                [host(p), host(m), host(v)]
                    .map(|x| x.into_iter().map(f32::to_bits).collect::<Vec<_>>())
            })
        };
        let (fused, plain) = (run(Mode::Fused), run(Mode::Plain));
        for (what, (f, p)) in ["parameter", "first moment", "second moment"]
            .iter()
            .zip(fused.iter().zip(&plain))
        {
            assert!(
                f == p,
                "adamw {what} (scale {grad_scale}, decay {decay}): fused and plain bits differ"
            );
        }
    }
    // The inputs were shared (cloned handles): the in-place kernel must not touch them.
    assert_eq!(host(p.clone()), random(n, 31, 1.0));
}

/// Every parameter's gradient under its checkpoint key, in the checkpoint's layout.
fn gradients(model: &RewardModel<A>, grads: &Grads) -> HashMap<String, Vec<f32>> {
    struct Visit<'a> {
        grads: &'a Grads,
        infos: HashMap<burn::module::ParamId, (String, bool)>,
        out: HashMap<String, Vec<f32>>,
    }
    impl ModuleVisitor<A> for Visit<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<A, D>>) {
            let (name, transposed) = self.infos[&param.id].clone();
            if let Some(g) = param.val().grad(self.grads) {
                let g = if transposed { g.transpose() } else { g };
                self.out.insert(name, host(g));
            }
        }
    }
    let infos = param_infos(model)
        .into_iter()
        .map(|p| (p.id, (p.name, p.transposed)))
        .collect();
    let mut v = Visit {
        grads,
        infos,
        out: HashMap::new(),
    };
    model.visit(&mut v);
    v.out
}

struct Step {
    rewards: Vec<f32>,
    loss: f32,
    grads: HashMap<String, Vec<f32>>,
    weights: HashMap<String, Vec<f32>>,
}

const LR: f64 = 1e-3;

/// One Bradley-Terry step of a fixture backbone: forward, loss, backward, AdamW update.
fn train_step(name: &str, mode: Mode) -> Step {
    kernels::scoped(mode, || {
        let device = Default::default();
        let dir = ModelDir::open_dir(&root().join("tests/fixtures").join(name), name).unwrap();
        let model = RewardModel::<A>::from_pretrained(&dir, HeadInit { seed: 7 }, &device).unwrap();
        // Two pairs of uneven lengths (padding on both kinds of rows).
        let rows: Vec<Vec<u32>> = vec![
            (5..29).collect(),
            (40..51).collect(),
            (7..22).rev().collect(),
            (60..90).step_by(2).collect(),
        ];
        let batch = RewardBatch::<A>::from_rows(&rows, None, 0, &device);
        let rewards = model.forward(&batch);
        let chosen = rewards.clone().narrow(0, 0, 2);
        let rejected = rewards.clone().narrow(0, 2, 2);
        let loss = bt_loss(chosen, rejected, None, 0.0);
        let raw = loss.backward();
        let grads = gradients(&model, &raw);
        let mut updater = Updater::new(
            AdamW::<B>::new(AdamWConfig::default(), param_infos(&model)),
            LrSchedule {
                kind: ScheduleKind::Constant,
                base_lr: LR,
                warmup_steps: 0,
                total_steps: 1,
            },
            Some(1.0),
        );
        let params = GradientsParams::from_grads(raw, &model);
        let (model, _) = updater.apply(model, params);
        let weights = collect_tensors(&model)
            .into_iter()
            .map(|t| (t.name, t.values))
            .collect();
        Step {
            rewards: host(rewards),
            loss: host(loss)[0],
            grads,
            weights,
        }
    })
}

fn check_step(name: &str) {
    let fused = train_step(name, Mode::Fused);
    let plain = train_step(name, Mode::Plain);
    assert_close(&format!("{name} rewards"), &fused.rewards, &plain.rewards);
    assert!(
        (fused.loss - plain.loss).abs() <= TOL,
        "{name} loss: {} vs {}",
        fused.loss,
        plain.loss
    );
    assert_eq!(
        fused.grads.len(),
        plain.grads.len(),
        "{name}: parameters with gradients"
    );
    for (key, p) in &plain.grads {
        assert_close(&format!("{name} gradient of {key}"), &fused.grads[key], p);
    }
    // Adam's first step moves a weight by about lr * sign(gradient). Where the gradient is
    // float noise (below 1e-6 in magnitude, e.g. exact zeros computed two ways) its sign is
    // noise too, so such weights are held to the bound of any step, 2 lr; every other
    // weight within 1e-5.
    for (key, p) in &plain.weights {
        let f = &fused.weights[key];
        let g = &plain.grads[key];
        for (i, ((a, b), g)) in f.iter().zip(p).zip(g).enumerate() {
            let bound = if g.abs() < 1e-6 { 2.0 * LR as f32 } else { TOL };
            assert!(
                (a - b).abs() <= bound,
                "{name} weight {key}[{i}]: fused {a} vs plain {b} (gradient {g})"
            );
        }
    }
}

#[test]
fn a_decoder_training_step_is_the_same_fused_and_plain() {
    check_step("tiny-llama");
}

#[test]
fn an_encoder_training_step_is_the_same_fused_and_plain() {
    check_step("tiny-bert");
}

#[test]
fn fused_kernels_do_not_depend_on_the_thread_count() {
    // The kernels with reductions across rows (a norm weight's gradient), on enough rows
    // for many blocks, under 1 and 3 threads: the same bits.
    let x = tensor::<B, 2>([301, 96], 11, 3.0);
    let w = tensor::<B, 2>([1, 96], 12, 1.0);
    let b = tensor::<B, 2>([1, 96], 13, 1.0);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let rms = run_op(Mode::Fused, &[x.clone(), w.clone()], |t| {
                kernels::rms_norm(t[0].clone(), t[1].clone().reshape([96]), 1e-6)
            });
            let ln = run_op(Mode::Fused, &[x.clone(), w.clone(), b.clone()], |t| {
                kernels::layer_norm(
                    t[0].clone(),
                    t[1].clone().reshape([96]),
                    t[2].clone().reshape([96]),
                    1e-12,
                )
            });
            [rms, ln]
        })
    };
    let bits = |r: [(Vec<f32>, Vec<Vec<f32>>); 2]| -> Vec<u32> {
        r.into_iter()
            .flat_map(|(y, gs)| y.into_iter().chain(gs.into_iter().flatten()))
            .map(f32::to_bits)
            .collect()
    };
    assert!(
        bits(run(1)) == bits(run(3)),
        "results differ between 1 and 3 threads"
    );
}
