//! The fused ops as plain compositions of burn ops: the reference every kernel is tested
//! against, the path `RMTK_KERNELS=plain` runs, and what backends without kernels of
//! their own (CUDA) run. The forward compositions are the models' code from before the
//! kernels existed, so this path keeps those numerics. The backward compositions are the
//! closed-form gradients, written once for every backend.

use burn::prelude::*;
use burn::tensor::activation::{sigmoid, silu, softmax};
use burn::tensor::module;
use burn::tensor::ops::AttentionModuleOptions;

use super::{AdamWStep, AttnLayout};

/// `x / sqrt(mean(x^2) + eps) * weight` over the last dimension of `x: [rows, dim]`.
pub fn rms_norm<B: Backend>(x: Tensor<B, 2>, weight: Tensor<B, 1>, eps: f64) -> Tensor<B, 2> {
    let variance = x.clone().square().mean_dim(1);
    let normed = x * variance.add_scalar(eps).sqrt().recip();
    normed * weight.unsqueeze()
}

/// `(dx, dweight)` of [`rms_norm`] given the output gradient.
///
/// With `r = 1 / sqrt(mean(x^2) + eps)` and `g = grad * weight`:
/// `dx = g * r - (sum(g * x) * r^3 / 2) / dim * 2x` (the chain rule through `x * r`, the
/// reciprocal square root and the mean of squares, in the order PyTorch's autograd takes
/// it), `dweight = sum over rows of grad * x * r`.
pub fn rms_norm_backward<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 1>,
    eps: f64,
    grad: Tensor<B, 2>,
) -> (Tensor<B, 2>, Tensor<B, 1>) {
    let dim = x.dims()[1] as f64;
    let r = x
        .clone()
        .square()
        .mean_dim(1)
        .add_scalar(eps)
        .sqrt()
        .recip();
    let g = grad.clone() * weight.unsqueeze();
    // d/dr, then through rsqrt (-r^3 / 2) and the mean of squares (2x / dim).
    let r3 = r.clone() * r.clone() * r.clone();
    let dv = (g.clone() * x.clone()).sum_dim(1).mul_scalar(-0.5) * r3;
    let dx = g * r.clone() + dv.div_scalar(dim) * x.clone().mul_scalar(2.0);
    let dw = (grad * (x * r)).sum_dim(0).squeeze_dim(0);
    (dx, dw)
}

/// `(x - mean) / sqrt(var + eps) * weight + bias` over the last dimension, biased variance.
pub fn layer_norm<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 1>,
    bias: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, 2> {
    let mean = x.clone().mean_dim(1);
    let centered = x - mean;
    let variance = centered.clone().square().mean_dim(1);
    let normed = centered * variance.add_scalar(eps).sqrt().recip();
    normed * weight.unsqueeze() + bias.unsqueeze()
}

/// `(dx, dweight, dbias)` of [`layer_norm`] given the output gradient.
///
/// With `xhat` the normalised input, `r = 1 / sqrt(var + eps)` and `g = grad * weight`:
/// `dx = r * (g - mean(g) - xhat * mean(g * xhat))`.
pub fn layer_norm_backward<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 1>,
    eps: f64,
    grad: Tensor<B, 2>,
) -> (Tensor<B, 2>, Tensor<B, 1>, Tensor<B, 1>) {
    let centered = x.clone() - x.mean_dim(1);
    let r = centered
        .clone()
        .square()
        .mean_dim(1)
        .add_scalar(eps)
        .sqrt()
        .recip();
    let xhat = centered * r.clone();
    let g = grad.clone() * weight.unsqueeze();
    let g_mean = g.clone().mean_dim(1);
    let proj = (g.clone() * xhat.clone()).mean_dim(1);
    let dx = (g - g_mean - xhat.clone() * proj) * r;
    let dw = (grad.clone() * xhat).sum_dim(0).squeeze_dim(0);
    let db = grad.sum_dim(0).squeeze_dim(0);
    (dx, dw, db)
}

/// Rotate-half RoPE: `x * cos + rotate_half(x) * sin` with `rotate_half(x) = [-x2, x1]`.
/// `x: [batch, seq, heads, head_dim]`, `cos, sin: [batch, seq, head_dim / 2]`.
pub fn rope<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 3>, sin: Tensor<B, 3>) -> Tensor<B, 4> {
    let [batch, seq, heads, d] = x.dims();
    let half = d / 2;
    let full = |t: Tensor<B, 3>| {
        Tensor::cat(vec![t.clone(), t], 2)
            .unsqueeze_dim::<4>(2)
            .expand([batch, seq, heads, d])
    };
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.clone().narrow(3, half, half);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * full(cos) + rotated * full(sin)
}

/// `silu(gate) * up`.
pub fn swiglu<B: Backend>(gate: Tensor<B, 2>, up: Tensor<B, 2>) -> Tensor<B, 2> {
    silu(gate) * up
}

/// `(dgate, dup)` of [`swiglu`]: with `s = sigmoid(gate)`,
/// `dgate = grad * up * s * (1 + gate * (1 - s))`, `dup = grad * gate * s`.
pub fn swiglu_backward<B: Backend>(
    gate: Tensor<B, 2>,
    up: Tensor<B, 2>,
    grad: Tensor<B, 2>,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let s = sigmoid(gate.clone());
    let silu = gate.clone() * s.clone();
    let dsilu = s.clone() * (gate * (s.neg().add_scalar(1.0))).add_scalar(1.0);
    let dgate = grad.clone() * up * dsilu;
    let dup = grad * silu;
    (dgate, dup)
}

/// Exact GELU, `0.5 x (1 + erf(x / sqrt(2)))` (burn's op).
pub fn gelu<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    burn::tensor::activation::gelu(x)
}

/// `dx` of [`gelu`]: `grad * (0.5 (1 + erf(x / sqrt(2))) + x e^(-x^2 / 2) / sqrt(2 pi))`.
pub fn gelu_backward<B: Backend>(x: Tensor<B, 2>, grad: Tensor<B, 2>) -> Tensor<B, 2> {
    let cdf = x
        .clone()
        .div_scalar(std::f64::consts::SQRT_2)
        .erf()
        .add_scalar(1.0)
        .mul_scalar(0.5);
    let pdf = x
        .clone()
        .square()
        .mul_scalar(-0.5)
        .exp()
        .mul_scalar(1.0 / (2.0 * std::f64::consts::PI).sqrt());
    grad * (cdf + x * pdf)
}

/// The layout's mask, `[batch, 1, seq, keys]`, true where a query may not look; unless
/// `explicit`, `None` when every key is real and no window slides (plain causal, or
/// nothing, masks it).
fn attention_mask<B: Backend>(
    layout: &AttnLayout,
    seq: usize,
    keys: usize,
    explicit: bool,
    device: &B::Device,
) -> Option<Tensor<B, 4, Bool>> {
    if !explicit && layout.is_full(keys) {
        return None;
    }
    let batch = layout.batch();
    let mut forbid = Vec::with_capacity(batch * seq * keys);
    for b in 0..batch {
        for i in 0..seq {
            forbid.extend((0..keys).map(|j| !layout.sees(b, i, j)));
        }
    }
    Some(Tensor::from_data(
        TensorData::new(forbid, [batch, 1, seq, keys]),
        device,
    ))
}

/// Key/value heads `[batch, kv_heads, keys, d]` repeated to `heads` (transformers'
/// `repeat_kv` order: query head `j` reads key/value head `j / rep`).
fn repeat_kv<B: Backend>(t: Tensor<B, 4>, rep: usize) -> Tensor<B, 4> {
    if rep == 1 {
        return t;
    }
    let [batch, kv, keys, d] = t.dims();
    t.unsqueeze_dim::<5>(2)
        .expand([batch, kv, rep, keys, d])
        .reshape([batch, kv * rep, keys, d])
}

/// Scaled dot-product attention of token-major `q: [batch, seq, heads, d]` over
/// `k, v: [batch, keys, kv_heads, d]`: by burn's attention op when `burn_op`, else
/// written out ([`written_attention`]; see [`super::FusedOps::burn_attention`]).
pub fn attend<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    layout: &AttnLayout,
    burn_op: bool,
) -> Tensor<B, 4> {
    if burn_op {
        attention(q, k, v, layout)
    } else {
        written_attention(q, k, v, layout)
    }
}

/// [`attention`] as matmuls and a masked softmax: `softmax(q k^T / sqrt(d) + mask) v`,
/// with the `[batch, heads, seq, keys]` scores materialised.
pub fn written_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    layout: &AttnLayout,
) -> Tensor<B, 4> {
    let heads = q.dims()[2];
    let probs = softmax(masked_scores(q, k, layout), 3);
    weigh_values(probs, v, heads)
}

/// `probs [batch, heads, seq, keys]` times the values `v: [batch, keys, kv_heads, d]`,
/// token major: `[batch, seq, heads, d]`.
fn weigh_values<B: Backend>(probs: Tensor<B, 4>, v: Tensor<B, 4>, heads: usize) -> Tensor<B, 4> {
    let kv_heads = v.dims()[2];
    let v = repeat_kv(v.swap_dims(1, 2), heads / kv_heads);
    probs.matmul(v).swap_dims(1, 2)
}

/// Scaled dot-product attention of token-major `q: [batch, seq, heads, d]` over
/// `k, v: [batch, keys, kv_heads, d]`, by burn's attention op on heads-major copies.
pub fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    layout: &AttnLayout,
) -> Tensor<B, 4> {
    let [batch, seq, heads, _] = q.dims();
    let [_, keys, kv_heads, _] = k.dims();
    let rep = heads / kv_heads;
    let mask = attention_mask::<B>(layout, seq, keys, false, &q.device());
    let causal = mask.is_none() && layout.causal;
    let mask = mask.map(|m| m.expand([batch, heads, seq, keys]));
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal: causal,
    };
    let k = repeat_kv(k.swap_dims(1, 2), rep);
    let v = repeat_kv(v.swap_dims(1, 2), rep);
    module::attention(q.swap_dims(1, 2), k, v, mask, None, options).swap_dims(1, 2)
}

/// [`attention`] over the slots of a KV cache `k, v: [slots, capacity, kv_heads, d]`:
/// row `i` of `q` reads slot `slots[i]` (gathered, then cut to the keys any query can see).
pub fn cached_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    slots: &[usize],
    layout: &AttnLayout,
    burn_op: bool,
) -> Tensor<B, 4> {
    let [rows, seq, _, _] = q.dims();
    let capacity = k.dims()[1];
    // Every query's own position included, so no row of the mask is empty.
    let keys = (0..rows)
        .map(|b| layout.key_end[b].max(layout.query_start[b] + seq))
        .max()
        .unwrap_or(1)
        .min(capacity);
    let idx = Tensor::<B, 1, Int>::from_data(
        TensorData::new(
            slots.iter().map(|&s| s as i64).collect::<Vec<_>>(),
            [slots.len()],
        ),
        &q.device(),
    );
    let k = k.select(0, idx.clone()).narrow(1, 0, keys);
    let v = v.select(0, idx).narrow(1, 0, keys);
    attend(q, k, v, layout, burn_op)
}

/// Write the first `lens[i]` positions of `new[i]` into slot `slots[i]` of `cache` from
/// position `starts[i]` on (one `slice_assign` per row).
pub fn kv_write<B: Backend>(
    mut cache: Tensor<B, 4>,
    new: Tensor<B, 4>,
    slots: &[usize],
    starts: &[usize],
    lens: &[usize],
) -> Tensor<B, 4> {
    let [_, _, heads, d] = cache.dims();
    for (i, ((&slot, &start), &len)) in slots.iter().zip(starts).zip(lens).enumerate() {
        if len == 0 {
            continue;
        }
        let part = new.clone().narrow(0, i, 1).narrow(1, 0, len);
        cache = cache.slice_assign([slot..slot + 1, start..start + len, 0..heads, 0..d], part);
    }
    cache
}

/// Copy positions `..len` of slot `src` into each slot of `dst`.
pub fn kv_copy<B: Backend>(
    mut cache: Tensor<B, 4>,
    src: usize,
    dst: &[usize],
    len: usize,
) -> Tensor<B, 4> {
    if len == 0 {
        return cache;
    }
    let [_, _, heads, d] = cache.dims();
    let part = cache.clone().narrow(0, src, 1).narrow(1, 0, len);
    for &slot in dst {
        cache = cache.slice_assign([slot..slot + 1, 0..len, 0..heads, 0..d], part.clone());
    }
    cache
}

/// The scores `q k^T / sqrt(d)` with masked entries at -inf, `[batch, heads, seq, keys]`.
fn masked_scores<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    layout: &AttnLayout,
) -> Tensor<B, 4> {
    let [batch, seq, heads, d] = q.dims();
    let [_, keys, kv_heads, _] = k.dims();
    let k = repeat_kv(k.swap_dims(1, 2), heads / kv_heads);
    let scores = q
        .swap_dims(1, 2)
        .matmul(k.swap_dims(2, 3))
        .mul_scalar(1.0 / (d as f64).sqrt());
    let forbid = attention_mask::<B>(layout, seq, keys, true, &scores.device())
        .expect("an explicit mask")
        .expand([batch, heads, seq, keys]);
    scores.mask_fill(forbid, f32::NEG_INFINITY)
}

/// [`attention`] and the log-sum-exp of each query's masked scores, `[batch, heads, seq]`.
pub fn attention_lse<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    layout: &AttnLayout,
    burn_op: bool,
) -> (Tensor<B, 4>, Tensor<B, 3>) {
    let heads = q.dims()[2];
    let scores = masked_scores(q.clone(), k.clone(), layout);
    let max = scores.clone().max_dim(3);
    let shifted = (scores - max.clone()).exp();
    let sum = shifted.clone().sum_dim(3);
    let lse = sum.clone().log() + max;
    let out = if burn_op {
        attention(q, k, v, layout)
    } else {
        weigh_values(shifted / sum, v, heads)
    };
    (out, lse.squeeze_dim(3))
}

/// `(dq, dk, dv)` of [`attention`] from its output and log-sum-exp: with `P` the
/// probabilities, `dv = P^T grad`, `ds = P * (grad v^T - rowsum(grad * out)) / sqrt(d)`,
/// `dq = ds k`, `dk = ds^T q`; key/value gradients summed over the query heads sharing them.
pub fn attention_backward<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    out: Tensor<B, 4>,
    lse: Tensor<B, 3>,
    grad: Tensor<B, 4>,
    layout: &AttnLayout,
) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
    let [batch, _, heads, d] = q.dims();
    let [_, keys, kv_heads, _] = k.dims();
    let rep = heads / kv_heads;
    let scale = 1.0 / (d as f64).sqrt();
    let p = (masked_scores(q.clone(), k.clone(), layout) - lse.unsqueeze_dim(3)).exp();
    let go = grad.clone().swap_dims(1, 2); // [batch, heads, seq, d]
    let kh = repeat_kv(k.swap_dims(1, 2), rep);
    let vh = repeat_kv(v.swap_dims(1, 2), rep);
    let delta = (grad * out).sum_dim(3).swap_dims(1, 2); // [batch, heads, seq, 1]
    let dp = go.clone().matmul(vh.swap_dims(2, 3));
    let ds = (p.clone() * (dp - delta)).mul_scalar(scale);
    let dq = ds.clone().matmul(kh).swap_dims(1, 2);
    let per_head_dk = ds.swap_dims(2, 3).matmul(q.swap_dims(1, 2));
    let per_head_dv = p.swap_dims(2, 3).matmul(go);
    // Sum each key/value head's `rep` query heads: [batch, kv_heads, rep, keys, d].
    let fold = |t: Tensor<B, 4>| {
        t.reshape([batch, kv_heads, rep, keys, d])
            .sum_dim(2)
            .reshape([batch, kv_heads, keys, d])
            .swap_dims(1, 2)
    };
    (dq, fold(per_head_dk), fold(per_head_dv))
}

/// One AdamW update (see [`AdamWStep`]) as burn ops: `(p, m, v)`.
pub fn adamw<B: Backend>(
    p: Tensor<B, 1>,
    g: Tensor<B, 1>,
    m: Tensor<B, 1>,
    v: Tensor<B, 1>,
    s: &AdamWStep,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let g = if s.grad_scale != 1.0 {
        g.mul_scalar(s.grad_scale)
    } else {
        g
    };
    let p = if s.decay != 1.0 {
        p.mul_scalar(s.decay)
    } else {
        p
    };
    // exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    let m = m.clone() + (g.clone() - m).mul_scalar(s.one_minus_beta1);
    let v = v.mul_scalar(s.beta2) + g.clone().mul_scalar(s.one_minus_beta2) * g;
    let denom = v.clone().sqrt().div_scalar(s.bias2_sqrt).add_scalar(s.eps);
    let p = p - (m.clone() / denom).mul_scalar(s.step_size);
    (p, m, v)
}
