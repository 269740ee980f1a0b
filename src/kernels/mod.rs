//! Fused operations with hand-written backward passes, as a burn backend extension.
//!
//! The models call the free functions of this module by name ([`rms_norm`], [`rope`],
//! [`swiglu`], [`layer_norm`], [`attention`]; decoding [`kv_write`], [`kv_copy`] and
//! [`cached_attention`]; the optimizer [`adamw`]). Each is a method
//! of [`FusedOps`], a trait over burn's
//! `Backend` whose default bodies are the plain compositions of burn ops in [`plain`]
//! (today's numerics, and what CUDA runs). The CPU backend (`Flex`) overrides them with
//! single-pass kernels ([`flex`]), and `Autodiff<B>` records one graph node per fused op
//! whose backward is the backend's own `*_backward` method ([`autodiff`]), so training
//! keeps one saved tensor per op instead of every intermediate of the composition (and
//! attention keeps no score matrix at all: its backward recomputes the scores).
//!
//! The fused path is on by default; `RMTK_KERNELS=plain` (or [`scoped`] for one thread,
//! as the parity tests do) runs the plain compositions instead. The switch is read when
//! an op is dispatched, and the backward node follows the forward that made it.
//!
//! Reductions over rows (a norm weight's gradient) are split into fixed blocks of rows
//! summed in a fixed order, never by thread count, so results are bitwise repeatable.

pub mod attention;
pub mod autodiff;
pub mod flex;
pub mod math;
pub mod plain;

pub use attention::AttnLayout;

use std::cell::Cell;
use std::sync::OnceLock;

use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn::tensor::ops::FloatTensor;

/// Which implementation the fused ops dispatch to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The backend's own kernels (where it has them).
    Fused,
    /// The plain compositions of burn ops.
    Plain,
}

thread_local! {
    static OVERRIDE: Cell<Option<Mode>> = const { Cell::new(None) };
}

/// The process default: `RMTK_KERNELS=plain|fused` (unset: fused).
fn process_mode() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("RMTK_KERNELS").as_deref() {
        Ok("plain") => Mode::Plain,
        Ok("fused") | Ok("") | Err(_) => Mode::Fused,
        Ok(other) => {
            eprintln!("RMTK_KERNELS={other} is not plain or fused; using fused kernels");
            Mode::Fused
        }
    })
}

/// The mode in force on this thread.
pub fn mode() -> Mode {
    OVERRIDE.with(Cell::get).unwrap_or_else(process_mode)
}

/// Run `f` with `mode` in force on this thread (restored afterwards, even on panic).
pub fn scoped<R>(mode: Mode, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Mode>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|m| m.set(self.0));
        }
    }
    let _restore = Restore(OVERRIDE.with(|m| m.replace(Some(mode))));
    f()
}

/// A backend with fused operations. Every method has a default (the plain composition),
/// so a backend opts in by `impl FusedOps for MyBackend {}` and overrides what it has.
///
/// Shapes: norms take `x: [rows, dim]` and reduce over `dim`; `rope` takes
/// `x: [batch, seq, heads, head_dim]` and `cos, sin: [batch, seq, head_dim / 2]`;
/// `swiglu` takes two tensors of one shape `[rows, dim]`. All of one call share a dtype.
pub trait FusedOps: Backend {
    /// True when this backend's own kernels run (its overrides exist and the mode is
    /// [`Mode::Fused`]). `Autodiff<B>` records fused nodes only when `B` says true.
    fn fused_enabled() -> bool {
        false
    }

    /// Not an op: the bytes the device's allocator holds reserved now, where the backend
    /// has one (CUDA); `None` on the CPU, where the process's resident memory says it.
    /// The trainers sample it to report a device's peak beside their estimate.
    fn device_memory(_device: &Self::Device) -> Option<u64> {
        None
    }

    /// Whether the plain path's attention may call burn's attention op
    /// (`module::attention`); where not, it is written out as matmuls and a masked softmax
    /// ([`plain::written_attention`]), which materialises the scores. CUDA says no: on an
    /// H200, padded batches got rewards far from the CPU's, and burn-cubecl 0.21's
    /// attention op (autotuned among flash kernels and a fallback; the one op that takes
    /// the mask) is the prime suspect (README, "On a GPU").
    fn burn_attention() -> bool {
        true
    }

    /// `x / sqrt(mean(x^2) + eps) * weight`.
    fn rms_norm(x: FloatTensor<Self>, weight: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        plain::rms_norm::<Self>(float(x), float(weight), eps)
            .into_primitive()
            .tensor()
    }

    /// Gradients of [`FusedOps::rms_norm`] with respect to `x` and `weight`.
    fn rms_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        eps: f64,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dw) = plain::rms_norm_backward::<Self>(float(x), float(weight), eps, float(grad));
        (prim(dx), prim(dw))
    }

    /// `x [rows, d_in] @ weight [d_in, d_out] (+ bias [d_out])`: burn's `module::linear`,
    /// whose backward (`ModuleOps::linear_*_backward`) it keeps.
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        linear_plain::<Self>(x, weight, bias)
    }

    /// Gradients of [`FusedOps::fused_linear`] for the grad of its output: `x`'s (given the
    /// weight), the weight's (given `x`) and the bias's (when asked).
    fn fused_linear_backward(
        x: Option<FloatTensor<Self>>,
        weight: Option<FloatTensor<Self>>,
        grad: FloatTensor<Self>,
        want_bias: bool,
    ) -> [Option<FloatTensor<Self>>; 3] {
        linear_backward_plain::<Self>(x, weight, grad, want_bias)
    }

    /// `(x - mean) / sqrt(var + eps) * weight + bias`, biased variance.
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        prim(plain::layer_norm::<Self>(
            float(x),
            float(weight),
            float(bias),
            eps,
        ))
    }

    /// Gradients of [`FusedOps::layer_norm`] with respect to `x`, `weight` and `bias`.
    fn layer_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        eps: f64,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dw, db) =
            plain::layer_norm_backward::<Self>(float(x), float(weight), eps, float(grad));
        (prim(dx), prim(dw), prim(db))
    }

    /// Rotate-half RoPE: `x * cos + rotate_half(x) * sin`, the angles' halves shared.
    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        prim(plain::rope::<Self>(float(x), float(cos), float(sin)))
    }

    /// Gradient of [`FusedOps::rope`] with respect to `x`: the rotation by `-angle`.
    fn rope_backward(
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let neg_sin = Self::float_neg(sin);
        Self::rope(grad, cos, neg_sin)
    }

    /// Scaled dot-product attention with grouped-query heads, without a KV cache:
    /// `q: [batch, seq, heads, head_dim]`, `k, v: [batch, keys, kv_heads, head_dim]` (token
    /// major, as the projections' reshapes give them); query head `j` reads key/value head
    /// `j / (heads / kv_heads)`. Which keys each query sees is `layout`'s. Returns
    /// `[batch, seq, heads, head_dim]`.
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        layout: &AttnLayout,
    ) -> FloatTensor<Self> {
        prim(plain::attend::<Self>(
            float(q),
            float(k),
            float(v),
            layout,
            Self::burn_attention(),
        ))
    }

    /// [`FusedOps::attention`] and the log-sum-exp of each query's scores,
    /// `[batch, heads, seq]`, which its backward pass needs.
    fn attention_lse(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        layout: &AttnLayout,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (out, lse) = plain::attention_lse::<Self>(
            float(q),
            float(k),
            float(v),
            layout,
            Self::burn_attention(),
        );
        (prim(out), prim(lse))
    }

    /// Gradients of [`FusedOps::attention`] with respect to `q`, `k` and `v`, from the
    /// forward's output and log-sum-exp (scores are recomputed, never kept).
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        layout: &AttnLayout,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dq, dk, dv) = plain::attention_backward::<Self>(
            float(q),
            float(k),
            float(v),
            float(out),
            float(lse),
            float(grad),
            layout,
        );
        (prim(dq), prim(dk), prim(dv))
    }

    /// Inference only (a KV cache, `models::kv_cache`). Writes the first `lens[i]`
    /// positions of `new[i]` (`new: [rows, len, kv_heads, head_dim]`) into slot `slots[i]`
    /// of `cache: [slots, capacity, kv_heads, head_dim]` from position `starts[i]` on, and
    /// returns the cache. The CPU kernel writes in place when the buffer is the caller's
    /// alone (the cache's rule: no clone of its buffers outlives a layer's call).
    fn kv_write(
        cache: FloatTensor<Self>,
        new: FloatTensor<Self>,
        slots: &[usize],
        starts: &[usize],
        lens: &[usize],
    ) -> FloatTensor<Self> {
        prim(plain::kv_write::<Self>(
            float(cache),
            float(new),
            slots,
            starts,
            lens,
        ))
    }

    /// Inference only: copies positions `..len` of slot `src` of `cache` (as in
    /// [`FusedOps::kv_write`]) into each slot of `dst`, and returns the cache.
    fn kv_copy(
        cache: FloatTensor<Self>,
        src: usize,
        dst: &[usize],
        len: usize,
    ) -> FloatTensor<Self> {
        prim(plain::kv_copy::<Self>(float(cache), src, dst, len))
    }

    /// Inference only: attention of `q: [rows, seq, heads, head_dim]` over the keys and
    /// values of a KV cache, `k, v: [slots, capacity, kv_heads, head_dim]`; row `i` reads
    /// slot `slots[i]`, and `layout.query_start[i]` is the position of its first query
    /// (the slot's length before this step). Grouped-query heads as in
    /// [`FusedOps::fused_attention`]: the cache holds `kv_heads` heads, never expanded.
    fn cached_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        slots: &[usize],
        layout: &AttnLayout,
    ) -> FloatTensor<Self> {
        prim(plain::cached_attention::<Self>(
            float(q),
            float(k),
            float(v),
            slots,
            layout,
            Self::burn_attention(),
        ))
    }

    /// One AdamW update of a flattened parameter `p` with gradient `g` and moments `m`,
    /// `v` (all `[n]`): returns the new `(p, m, v)`. See [`AdamWStep`] for the arithmetic;
    /// the kernels round each element exactly as the plain composition does.
    fn adamw(
        p: FloatTensor<Self>,
        g: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: &AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (p, m, v) = plain::adamw::<Self>(float(p), float(g), float(m), float(v), step);
        (prim(p), prim(m), prim(v))
    }

    /// Exact GELU, `0.5 x (1 + erf(x / sqrt(2)))`, elementwise.
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        prim(plain::gelu::<Self>(float(x)))
    }

    /// The gradient of [`FusedOps::fused_gelu`] with respect to `x`.
    fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        prim(plain::gelu_backward::<Self>(float(x), float(grad)))
    }

    /// `silu(gate) * up`.
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        prim(plain::swiglu::<Self>(float(gate), float(up)))
    }

    /// Gradients of [`FusedOps::swiglu`] with respect to `gate` and `up`.
    fn swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dg, du) = plain::swiglu_backward::<Self>(float(gate), float(up), float(grad));
        (prim(dg), prim(du))
    }
}

/// The constants of one AdamW update of one parameter, in f32 as the update uses them
/// (`torch.optim.AdamW`'s single-tensor arithmetic and order):
/// `g *= grad_scale; p *= decay; m += (g - m) * one_minus_beta1;
/// v = v * beta2 + (g * one_minus_beta2) * g; p -= m / (sqrt(v) / bias2_sqrt + eps) * step_size`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// The clipping factor (1: none).
    pub grad_scale: f32,
    /// `1 - lr * weight_decay`, or 1 for a parameter without decay.
    pub decay: f32,
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    /// `sqrt(1 - beta2^t)`.
    pub bias2_sqrt: f32,
    pub eps: f32,
    /// `lr / (1 - beta1^t)`.
    pub step_size: f32,
}

pub(crate) fn float<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

pub(crate) fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// Fold every leading dimension into rows: `[..., dim] -> [rows, dim]`.
/// `t` in `dtype` (a parameter in the activations' dtype: an f32 master read by bf16
/// activations, or a bf16 table read by f32 ones); no op, and no graph node, when equal.
pub fn like<B: Backend, const D: usize>(
    t: Tensor<B, D>,
    dtype: burn::tensor::DType,
) -> Tensor<B, D> {
    if t.dtype() == dtype { t } else { t.cast(dtype) }
}

fn rows<B: Backend, const D: usize>(x: Tensor<B, D>) -> (Tensor<B, 2>, [usize; D]) {
    let dims = x.dims();
    let last = dims[D - 1];
    let rows = dims[..D - 1].iter().product();
    (x.reshape([rows, last]), dims)
}

/// RMS norm over the last dimension of `x` (any rank).
pub fn rms_norm<B: FusedOps, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    let (x, dims) = rows(x);
    let dtype = x.dtype();
    let x = like(x, norm_dtype(dtype));
    let weight = like(weight, x.dtype());
    let y = B::rms_norm(prim(x), prim(weight), eps);
    like(float::<B, 2>(y), dtype).reshape(dims)
}

/// The dtype a norm computes in: f16 activations are normalised in f32, as transformers
/// does (f16's mean of squares overflows once an activation passes 256, which real
/// residual streams do); f32 and bf16 (f32's range) in their own.
fn norm_dtype(dtype: burn::tensor::DType) -> burn::tensor::DType {
    match dtype {
        burn::tensor::DType::F16 => burn::tensor::DType::F32,
        d => d,
    }
}

/// Layer norm over the last dimension of `x` (any rank).
pub fn layer_norm<B: FusedOps, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    bias: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    let (x, dims) = rows(x);
    let dtype = x.dtype();
    let x = like(x, norm_dtype(dtype));
    let (weight, bias) = (like(weight, x.dtype()), like(bias, x.dtype()));
    let y = B::fused_layer_norm(prim(x), prim(weight), prim(bias), eps);
    like(float::<B, 2>(y), dtype).reshape(dims)
}

/// Rotate-half RoPE of `x: [batch, seq, heads, head_dim]` by the angles whose cosines and
/// sines are `cos, sin: [batch, seq, head_dim / 2]`.
pub fn rope<B: FusedOps>(x: Tensor<B, 4>, cos: Tensor<B, 3>, sin: Tensor<B, 3>) -> Tensor<B, 4> {
    let (cos, sin) = (like(cos, x.dtype()), like(sin, x.dtype()));
    float(B::rope(prim(x), prim(cos), prim(sin)))
}

/// Attention of token-major `q: [batch, seq, heads, head_dim]` over `k, v: [batch, keys,
/// kv_heads, head_dim]` (see [`FusedOps::attention`]).
pub fn attention<B: FusedOps>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    layout: &AttnLayout,
) -> Tensor<B, 4> {
    float(B::fused_attention(prim(q), prim(k), prim(v), layout))
}

/// Write `new: [rows, len, kv_heads, head_dim]` into a KV cache buffer (see
/// [`FusedOps::kv_write`]).
pub fn kv_write<B: FusedOps>(
    cache: Tensor<B, 4>,
    new: Tensor<B, 4>,
    slots: &[usize],
    starts: &[usize],
    lens: &[usize],
) -> Tensor<B, 4> {
    float(B::kv_write(prim(cache), prim(new), slots, starts, lens))
}

/// Copy the first `len` positions of slot `src` to the slots `dst` (see
/// [`FusedOps::kv_copy`]).
pub fn kv_copy<B: FusedOps>(
    cache: Tensor<B, 4>,
    src: usize,
    dst: &[usize],
    len: usize,
) -> Tensor<B, 4> {
    float(B::kv_copy(prim(cache), src, dst, len))
}

/// Attention of `q: [rows, seq, heads, head_dim]` over the cache slots `slots` (see
/// [`FusedOps::cached_attention`]).
pub fn cached_attention<B: FusedOps>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    slots: &[usize],
    layout: &AttnLayout,
) -> Tensor<B, 4> {
    float(B::cached_attention(
        prim(q),
        prim(k),
        prim(v),
        slots,
        layout,
    ))
}

/// One AdamW update of a flattened parameter: `(p, m, v)` (see [`AdamWStep`]).
pub fn adamw<B: FusedOps>(
    p: Tensor<B, 1>,
    g: Tensor<B, 1>,
    m: Tensor<B, 1>,
    v: Tensor<B, 1>,
    step: &AdamWStep,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let (p, m, v) = B::adamw(prim(p), prim(g), prim(m), prim(v), step);
    (float(p), float(m), float(v))
}

/// Exact GELU (HF `gelu`), elementwise (any rank).
pub fn gelu<B: FusedOps, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let (x, dims) = rows(x);
    float::<B, 2>(B::fused_gelu(prim(x))).reshape(dims)
}

/// `silu(gate) * up`, elementwise (any rank, equal shapes).
pub fn swiglu<B: FusedOps, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    let (gate, dims) = rows(gate);
    let (up, _) = rows(up);
    float::<B, 2>(B::swiglu(prim(gate), prim(up))).reshape(dims)
}

#[cfg(feature = "cuda")]
impl FusedOps for burn::backend::Cuda {
    fn device_memory(device: &Self::Device) -> Option<u64> {
        use burn::cubecl::Runtime;
        // The calling thread's stream: the trainers sample from the thread that runs them.
        let client = burn::cubecl::cuda::CudaRuntime::client(device);
        client.memory_usage().ok().map(|u| u.bytes_reserved)
    }

    /// No, unless `RMTK_CUDA_ATTENTION=burn` (to compare the two on a GPU:
    /// scripts/gpu-check.sh's parity stage).
    fn burn_attention() -> bool {
        static BURN: OnceLock<bool> = OnceLock::new();
        *BURN.get_or_init(|| std::env::var("RMTK_CUDA_ATTENTION").as_deref() == Ok("burn"))
    }
}

#[cfg(feature = "bench-ndarray")]
impl FusedOps for burn::backend::NdArray {}

/// burn's `module::linear`: the default of [`FusedOps::fused_linear`] and its fallback.
pub(crate) fn linear_plain<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: Option<FloatTensor<B>>,
) -> FloatTensor<B> {
    prim(burn::tensor::module::linear(
        float::<B, 2>(x),
        float(weight),
        bias.map(float::<B, 1>),
    ))
}

/// burn's backward of `module::linear` (`ModuleOps::linear_*_backward`): the default of
/// [`FusedOps::fused_linear_backward`].
pub(crate) fn linear_backward_plain<B: Backend>(
    x: Option<FloatTensor<B>>,
    weight: Option<FloatTensor<B>>,
    grad: FloatTensor<B>,
    want_bias: bool,
) -> [Option<FloatTensor<B>>; 3] {
    let dx = weight.map(|w| B::linear_x_backward(w, grad.clone()));
    let dw = x.map(|x| B::linear_weight_backward(x, grad.clone()));
    let db = want_bias.then(|| B::linear_bias_backward(grad));
    [dx, dw, db]
}
