//! The fused ops as plain compositions of burn ops: the reference every kernel is tested
//! against, the path `RMTK_KERNELS=plain` runs, and what backends without kernels of
//! their own (CUDA) run. The forward compositions are the models' code from before the
//! kernels existed, so this path keeps those numerics. The backward compositions are the
//! closed-form gradients, written once for every backend.

use burn::prelude::*;
use burn::tensor::activation::{sigmoid, silu};

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
