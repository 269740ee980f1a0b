//! The fused ops on the CPU backend (`Flex`): one pass over rows, rayon across rows.
//!
//! The kernels handle f32; other dtypes take the plain composition. Row reductions
//! (a norm's statistics) run inside one task; reductions across rows (a norm weight's
//! gradient) are summed per fixed block of [`ROW_BLOCK`] rows and the blocks added in
//! order, so results do not depend on the number of threads.

use burn::backend::Flex;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Bytes, DType, Shape, TensorMetadata};
use burn_flex::{FlexTensor, Layout};
use rayon::prelude::*;
use std::cell::Cell;

use super::attention::{self, AttnLayout, Dims, View};
use super::{
    AdamWStep, FusedOps, Mode, float, linear_backward_plain, linear_plain, math, plain, prim,
};
use std::f32::consts::FRAC_1_SQRT_2;

/// Rows per block of a cross-row reduction, and per rayon task.
const ROW_BLOCK: usize = 16;

fn all_f32(ts: &[&FlexTensor]) -> bool {
    ts.iter().all(|t| t.dtype() == DType::F32)
}

/// The tensor's f32 elements in row-major order (copied only when not contiguous).
fn contiguous(t: FlexTensor) -> FlexTensor {
    let t = t.to_contiguous();
    debug_assert!(t.as_slice::<f32>().is_some());
    t
}

fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32 tensor")
}

fn tensor(data: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// Sum of `a[i] * b[i]` in 16 independent lanes (vectorisable), lanes added pairwise.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (ac, at) = a.split_at(a.len() - a.len() % 16);
    let (bc, bt) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(16).zip(bc.chunks_exact(16)) {
        for l in 0..16 {
            acc[l] += x[l] * y[l];
        }
    }
    for (l, (x, y)) in at.iter().zip(bt).enumerate() {
        acc[l] += x * y;
    }
    lanes_sum(acc)
}

#[inline]
fn sum(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (ac, at) = a.split_at(a.len() - a.len() % 16);
    for x in ac.chunks_exact(16) {
        for l in 0..16 {
            acc[l] += x[l];
        }
    }
    for (l, x) in at.iter().enumerate() {
        acc[l] += x;
    }
    lanes_sum(acc)
}

#[inline]
fn lanes_sum(mut acc: [f32; 16]) -> f32 {
    let mut w = 8;
    while w > 0 {
        for l in 0..w {
            acc[l] += acc[l + w];
        }
        w /= 2;
    }
    acc[0]
}

/// Per-column sums over rows of per-block partials: `partial(block_rows, out)` adds one
/// block's contribution to `out` (zeroed, `dim` long); blocks are added in order.
fn column_sums(
    rows: usize,
    dim: usize,
    partial: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync,
) -> Vec<f32> {
    let blocks = rows.div_ceil(ROW_BLOCK);
    let parts: Vec<Vec<f32>> = (0..blocks)
        .into_par_iter()
        .map(|b| {
            let mut out = vec![0.0f32; dim];
            math::vectorized(|| partial(b * ROW_BLOCK..((b + 1) * ROW_BLOCK).min(rows), &mut out));
            out
        })
        .collect();
    let mut total = vec![0.0f32; dim];
    for p in parts {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

/// A 2-d f32 tensor as a matrix, possibly transposed (strides swapped, as burn-flex's
/// `swap_dims` does).
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

impl<'a> Mat<'a> {
    fn of(t: &'a FlexTensor) -> Self {
        let (rows, cols) = dims2(t);
        let s = t.layout().strides();
        Self {
            data: &t.storage::<f32>()[t.layout().start_offset()..],
            rows,
            cols,
            row_stride: s[0],
            col_stride: s[1],
        }
    }

    fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `lhs [m, k] @ rhs [k, n]` as burn-flex's matmul computes it: the same `gemm` call, so
/// the same bits, into a buffer that is not zeroed first (burn-flex zeroes every output,
/// a pass over memory that the product then overwrites).
fn matmul_2d(lhs: Mat, rhs: Mat) -> Vec<f32> {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    debug_assert_eq!(k, rhs.rows);
    let len = m * n;
    if k == 0 || len == 0 {
        return vec![0.0; len];
    }
    // burn-flex's threshold for splitting a product across threads.
    let parallelism = if m * n * k >= 192 * 192 * 192 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let mut out: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: the strides and offsets are the tensors' own, so every element read is
    // inside them; `out` has room for `m x n`, and gemm with `read_dst = false` writes
    // every element of it (k > 0) before `set_len` makes them readable.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.data.as_ptr(),
            lhs.col_stride,
            lhs.row_stride,
            rhs.data.as_ptr(),
            rhs.col_stride,
            rhs.row_stride,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
        out.set_len(len);
    }
    out
}

fn dims2(t: &FlexTensor) -> (usize, usize) {
    let s = t.shape();
    (s[0], s[1])
}

impl FusedOps for Flex {
    fn fused_enabled() -> bool {
        super::mode() == Mode::Fused
    }

    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        let f32s = all_f32(&[&x, &weight]) && bias.as_ref().is_none_or(|b| all_f32(&[b]));
        if !Self::fused_enabled() || !f32s || x.shape().num_dims() != 2 {
            return linear_plain::<Self>(x, weight, bias);
        }
        let (rows, d_out) = (x.shape()[0], weight.shape()[1]);
        let mut out = matmul_2d(Mat::of(&x), Mat::of(&weight));
        if let Some(b) = bias {
            let b = contiguous(b);
            let bs = values(&b);
            // The add burn's linear does after its product (`out + bias`, same bits), in
            // place instead of into a new tensor.
            out.par_chunks_mut(d_out * ROW_BLOCK).for_each(|o| {
                math::vectorized(|| {
                    for row in o.chunks_exact_mut(d_out) {
                        for (o, &b) in row.iter_mut().zip(bs) {
                            *o += b;
                        }
                    }
                })
            });
        }
        tensor(out, Shape::new([rows, d_out]))
    }

    fn fused_linear_backward(
        x: Option<FloatTensor<Self>>,
        weight: Option<FloatTensor<Self>>,
        grad: FloatTensor<Self>,
        want_bias: bool,
    ) -> [Option<FloatTensor<Self>>; 3] {
        let f32s = [&x, &weight]
            .into_iter()
            .flatten()
            .chain([&grad])
            .all(|t| t.dtype() == DType::F32 && t.shape().num_dims() == 2);
        if !f32s {
            return linear_backward_plain::<Self>(x, weight, grad, want_bias);
        }
        // burn's linear_x_backward and linear_weight_backward: `grad @ weight^T` and
        // `x^T @ grad`, the transposes being stride swaps.
        let dx = weight.map(|w| {
            let out = matmul_2d(Mat::of(&grad), Mat::of(&w).t());
            tensor(out, Shape::new([grad.shape()[0], w.shape()[0]]))
        });
        let dw = x.map(|x| {
            let out = matmul_2d(Mat::of(&x).t(), Mat::of(&grad));
            tensor(out, Shape::new([x.shape()[1], grad.shape()[1]]))
        });
        let db = want_bias
            .then(|| <Self as burn::tensor::ops::ModuleOps<Self>>::linear_bias_backward(grad));
        [dx, dw, db]
    }

    fn rms_norm(x: FloatTensor<Self>, weight: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        if !Self::fused_enabled() || !all_f32(&[&x, &weight]) {
            return prim(plain::rms_norm::<Self>(float(x), float(weight), eps));
        }
        let (x, w) = (contiguous(x), contiguous(weight));
        let (rows, dim) = dims2(&x);
        let (xs, ws) = (values(&x), values(&w));
        let mut out = vec![0.0f32; rows * dim];
        out.par_chunks_mut(dim * ROW_BLOCK)
            .zip(xs.par_chunks(dim * ROW_BLOCK))
            .for_each(|(o, xb)| {
                math::vectorized(|| {
                    for (orow, xrow) in o.chunks_exact_mut(dim).zip(xb.chunks_exact(dim)) {
                        let r = rstd(dot(xrow, xrow), dim, eps);
                        for ((o, &x), &w) in orow.iter_mut().zip(xrow).zip(ws) {
                            *o = (x * r) * w;
                        }
                    }
                })
            });
        tensor(out, x.shape())
    }

    fn rms_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        eps: f64,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        if !all_f32(&[&x, &weight, &grad]) {
            let (dx, dw) =
                plain::rms_norm_backward::<Self>(float(x), float(weight), eps, float(grad));
            return (prim(dx), prim(dw));
        }
        let (x, w, g) = (contiguous(x), contiguous(weight), contiguous(grad));
        let (rows, dim) = dims2(&x);
        let (xs, ws, gs) = (values(&x), values(&w), values(&g));
        // Each row's 1 / rms, once for both passes.
        let rs: Vec<f32> = xs
            .par_chunks(dim)
            .map(|row| math::vectorized(|| rstd(dot(row, row), dim, eps)))
            .collect();
        let mut dx = vec![0.0f32; rows * dim];
        dx.par_chunks_mut(dim * ROW_BLOCK)
            .zip(xs.par_chunks(dim * ROW_BLOCK))
            .zip(gs.par_chunks(dim * ROW_BLOCK))
            .zip(rs.par_chunks(ROW_BLOCK))
            .for_each(|(((d, xb), gb), rb)| {
                math::vectorized(|| {
                    let mut gw = vec![0.0f32; dim];
                    for (((drow, xrow), grow), &r) in d
                        .chunks_exact_mut(dim)
                        .zip(xb.chunks_exact(dim))
                        .zip(gb.chunks_exact(dim))
                        .zip(rb)
                    {
                        for ((gw, &g), &w) in gw.iter_mut().zip(grow).zip(ws) {
                            *gw = g * w;
                        }
                        // The chain rule through `x * r`, `r = rsqrt(v + eps)`, `v = mean(x^2)`,
                        // rounded in the order PyTorch's autograd rounds it.
                        let dv = (-0.5 * dot(&gw, xrow)) * (r * r * r) / dim as f32;
                        for ((d, &gw), &x) in drow.iter_mut().zip(&gw).zip(xrow) {
                            *d = gw * r + dv * (2.0 * x);
                        }
                    }
                })
            });
        let dw = column_sums(rows, dim, |range, out| {
            for row in range {
                let xrow = &xs[row * dim..(row + 1) * dim];
                let grow = &gs[row * dim..(row + 1) * dim];
                let r = rs[row];
                for ((o, &g), &x) in out.iter_mut().zip(grow).zip(xrow) {
                    *o += g * (x * r);
                }
            }
        });
        (tensor(dx, x.shape()), tensor(dw, w.shape()))
    }

    fn fused_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        if !Self::fused_enabled() || !all_f32(&[&x, &weight, &bias]) {
            return prim(plain::layer_norm::<Self>(
                float(x),
                float(weight),
                float(bias),
                eps,
            ));
        }
        let (x, w, b) = (contiguous(x), contiguous(weight), contiguous(bias));
        let (rows, dim) = dims2(&x);
        let (xs, ws, bs) = (values(&x), values(&w), values(&b));
        let mut out = vec![0.0f32; rows * dim];
        out.par_chunks_mut(dim * ROW_BLOCK)
            .zip(xs.par_chunks(dim * ROW_BLOCK))
            .for_each(|(o, xb)| {
                math::vectorized(|| {
                    for (orow, xrow) in o.chunks_exact_mut(dim).zip(xb.chunks_exact(dim)) {
                        let (mean, r) = mean_rstd(xrow, eps);
                        for (((o, &x), &w), &b) in orow.iter_mut().zip(xrow).zip(ws).zip(bs) {
                            *o = ((x - mean) * r) * w + b;
                        }
                    }
                })
            });
        tensor(out, x.shape())
    }

    fn layer_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        eps: f64,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if !all_f32(&[&x, &weight, &grad]) {
            let (dx, dw, db) =
                plain::layer_norm_backward::<Self>(float(x), float(weight), eps, float(grad));
            return (prim(dx), prim(dw), prim(db));
        }
        let (x, w, g) = (contiguous(x), contiguous(weight), contiguous(grad));
        let (rows, dim) = dims2(&x);
        let (xs, ws, gs) = (values(&x), values(&w), values(&g));
        let n = dim as f32;
        // Each row's (mean, 1 / std), once for both passes.
        let stats: Vec<(f32, f32)> = xs
            .par_chunks(dim)
            .map(|row| math::vectorized(|| mean_rstd(row, eps)))
            .collect();
        let mut dx = vec![0.0f32; rows * dim];
        dx.par_chunks_mut(dim * ROW_BLOCK)
            .zip(xs.par_chunks(dim * ROW_BLOCK))
            .zip(gs.par_chunks(dim * ROW_BLOCK))
            .zip(stats.par_chunks(ROW_BLOCK))
            .for_each(|(((d, xb), gb), sb)| {
                math::vectorized(|| {
                    let mut gw = vec![0.0f32; dim];
                    let mut xhat = vec![0.0f32; dim];
                    for (((drow, xrow), grow), &(mean, r)) in d
                        .chunks_exact_mut(dim)
                        .zip(xb.chunks_exact(dim))
                        .zip(gb.chunks_exact(dim))
                        .zip(sb)
                    {
                        for (h, &x) in xhat.iter_mut().zip(xrow) {
                            *h = (x - mean) * r;
                        }
                        for ((gw, &g), &w) in gw.iter_mut().zip(grow).zip(ws) {
                            *gw = g * w;
                        }
                        let g_mean = sum(&gw) / n;
                        let proj = dot(&gw, &xhat) / n;
                        for ((d, &gw), &h) in drow.iter_mut().zip(&gw).zip(&xhat) {
                            *d = (gw - g_mean - h * proj) * r;
                        }
                    }
                })
            });
        let sums = column_sums(rows, 2 * dim, |range, out| {
            let (dw, db) = out.split_at_mut(dim);
            for row in range {
                let xrow = &xs[row * dim..(row + 1) * dim];
                let grow = &gs[row * dim..(row + 1) * dim];
                let (mean, r) = stats[row];
                for (((dw, db), &g), &x) in dw.iter_mut().zip(db.iter_mut()).zip(grow).zip(xrow) {
                    *dw += g * ((x - mean) * r);
                    *db += g;
                }
            }
        });
        let (dw, db) = sums.split_at(dim);
        (
            tensor(dx, x.shape()),
            tensor(dw.to_vec(), w.shape()),
            tensor(db.to_vec(), w.shape()),
        )
    }

    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if !Self::fused_enabled() || !all_f32(&[&x, &cos, &sin]) {
            return prim(plain::rope::<Self>(float(x), float(cos), float(sin)));
        }
        rope_f32(x, cos, sin, false)
    }

    fn rope_backward(
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if !all_f32(&[&grad, &cos, &sin]) {
            let neg_sin = plain_neg(sin);
            return prim(plain::rope::<Self>(float(grad), float(cos), float(neg_sin)));
        }
        rope_f32(grad, cos, sin, true)
    }

    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        layout: &AttnLayout,
    ) -> FloatTensor<Self> {
        if !Self::fused_enabled() || !all_f32(&[&q, &k, &v]) {
            return prim(plain::attend::<Self>(
                float(q),
                float(k),
                float(v),
                layout,
                Self::burn_attention(),
            ));
        }
        Self::attention_lse(q, k, v, layout).0
    }

    fn attention_lse(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        layout: &AttnLayout,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        if !all_f32(&[&q, &k, &v]) {
            let (out, lse) = plain::attention_lse::<Self>(
                float(q),
                float(k),
                float(v),
                layout,
                Self::burn_attention(),
            );
            return (prim(out), prim(lse));
        }
        let (out, lse, dims) = attention_f32(q, k, v, None, layout);
        (
            out,
            tensor(lse, Shape::new([dims.batch, dims.heads, dims.seq])),
        )
    }

    fn attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        layout: &AttnLayout,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if !all_f32(&[&q, &k, &v, &out, &lse, &grad]) {
            let (dq, dk, dv) = plain::attention_backward::<Self>(
                float(q),
                float(k),
                float(v),
                float(out),
                float(lse),
                float(grad),
                layout,
            );
            return (prim(dq), prim(dk), prim(dv));
        }
        let (q, k, v) = (
            inner_contiguous(q),
            inner_contiguous(k),
            inner_contiguous(v),
        );
        let (out, grad, lse) = (
            inner_contiguous(out),
            inner_contiguous(grad),
            contiguous(lse),
        );
        let dims = attn_dims(&q, &k);
        let (dq, dk, dv) = attention::backward(
            view(&q),
            view(&k),
            view(&v),
            view(&out),
            values(&lse),
            view(&grad),
            dims,
            layout,
            attn_scale(dims.d),
        );
        (
            tensor(dq, q.shape()),
            tensor(dk, k.shape()),
            tensor(dv, k.shape()),
        )
    }

    fn kv_write(
        cache: FloatTensor<Self>,
        new: FloatTensor<Self>,
        slots: &[usize],
        starts: &[usize],
        lens: &[usize],
    ) -> FloatTensor<Self> {
        if !Self::fused_enabled() || !all_f32(&[&cache, &new]) {
            return prim(plain::kv_write::<Self>(
                float(cache),
                float(new),
                slots,
                starts,
                lens,
            ));
        }
        let mut cache = cache_owned(cache);
        let new = inner_contiguous(new);
        let (src, dst_shape) = (view(&new), cache.shape());
        let (capacity, heads, d) = (dst_shape[1], dst_shape[2], dst_shape[3]);
        let dst = cache.storage_mut::<f32>();
        for (i, ((&slot, &start), &len)) in slots.iter().zip(starts).zip(lens).enumerate() {
            assert!(start + len <= capacity, "KV cache slot {slot} overflows");
            for p in 0..len {
                for h in 0..heads {
                    let at = ((slot * capacity + start + p) * heads + h) * d;
                    // SAFETY: [i, p, h, ..d] lies inside `new` (its shape).
                    let row = unsafe { std::slice::from_raw_parts(src.at(i, p, h), d) };
                    dst[at..at + d].copy_from_slice(row);
                }
            }
        }
        cache
    }

    fn kv_copy(
        cache: FloatTensor<Self>,
        src: usize,
        dst: &[usize],
        len: usize,
    ) -> FloatTensor<Self> {
        if !Self::fused_enabled() || !all_f32(&[&cache]) {
            return prim(plain::kv_copy::<Self>(float(cache), src, dst, len));
        }
        let mut cache = cache_owned(cache);
        let shape = cache.shape();
        let slot_len = shape[1] * shape[2] * shape[3];
        let n = len * shape[2] * shape[3];
        let data = cache.storage_mut::<f32>();
        for &slot in dst {
            data.copy_within(src * slot_len..src * slot_len + n, slot * slot_len);
        }
        cache
    }

    fn cached_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        slots: &[usize],
        layout: &AttnLayout,
    ) -> FloatTensor<Self> {
        if !Self::fused_enabled() || !all_f32(&[&q, &k, &v]) {
            return prim(plain::cached_attention::<Self>(
                float(q),
                float(k),
                float(v),
                slots,
                layout,
                Self::burn_attention(),
            ));
        }
        attention_f32(q, k, v, Some(slots), layout).0
    }

    fn adamw(
        p: FloatTensor<Self>,
        g: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: &AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if !Self::fused_enabled() || !all_f32(&[&p, &g, &m, &v]) {
            let (p, m, v) = plain::adamw::<Self>(float(p), float(g), float(m), float(v), step);
            return (prim(p), prim(m), prim(v));
        }
        // Written in place where the buffers are this call's alone (the usual case: the
        // moments come out of the optimizer's map, the parameter out of the module).
        let (mut p, mut m, mut v, g) = (owned(p), owned(m), owned(v), contiguous(g));
        let s = *step;
        let gs = values(&g);
        let (ps, ms, vs) = (
            p.storage_mut::<f32>(),
            m.storage_mut::<f32>(),
            v.storage_mut::<f32>(),
        );
        ps.par_chunks_mut(ELEM_BLOCK)
            .zip(ms.par_chunks_mut(ELEM_BLOCK))
            .zip(vs.par_chunks_mut(ELEM_BLOCK))
            .zip(gs.par_chunks(ELEM_BLOCK))
            .for_each(|(((pb, mb), vb), gb)| {
                math::vectorized(|| {
                    for (((p, m), v), &g) in pb.iter_mut().zip(mb).zip(vb).zip(gb) {
                        // The plain composition's operations, one rounding each, same order.
                        let g = if s.grad_scale != 1.0 {
                            g * s.grad_scale
                        } else {
                            g
                        };
                        let pd = if s.decay != 1.0 { *p * s.decay } else { *p };
                        *m = *m + (g - *m) * s.one_minus_beta1;
                        *v = *v * s.beta2 + (g * s.one_minus_beta2) * g;
                        let denom = v.sqrt() / s.bias2_sqrt + s.eps;
                        *p = pd - (*m / denom) * s.step_size;
                    }
                })
            });
        (p, m, v)
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if !Self::fused_enabled() || !all_f32(&[&x]) {
            return prim(plain::gelu::<Self>(float(x)));
        }
        let x = contiguous(x);
        let xs = values(&x);
        let mut out = vec![0.0f32; xs.len()];
        out.par_chunks_mut(ELEM_BLOCK)
            .zip(xs.par_chunks(ELEM_BLOCK))
            .for_each(|(o, xb)| {
                math::vectorized(|| {
                    for (o, &x) in o.iter_mut().zip(xb) {
                        *o = math::erf_exp_arg(x * FRAC_1_SQRT_2);
                    }
                    math::exp_in_place(o);
                    for (o, &x) in o.iter_mut().zip(xb) {
                        *o = 0.5 * x * (1.0 + math::erf_with(x * FRAC_1_SQRT_2, *o));
                    }
                })
            });
        tensor(out, x.shape())
    }

    fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        if !all_f32(&[&x, &grad]) {
            return prim(plain::gelu_backward::<Self>(float(x), float(grad)));
        }
        let (x, dy) = (contiguous(x), contiguous(grad));
        let (xs, dys) = (values(&x), values(&dy));
        // 1 / sqrt(2 pi)
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        let mut dx = vec![0.0f32; xs.len()];
        dx.par_chunks_mut(ELEM_BLOCK)
            .zip(xs.par_chunks(ELEM_BLOCK).zip(dys.par_chunks(ELEM_BLOCK)))
            .for_each(|(d, (xb, yb))| {
                math::vectorized(|| {
                    // The two exponentials a block at a time: erf's in `d`, the density's in
                    // `e`.
                    let mut e = [0.0f32; EXP_BLOCK];
                    for ((d, xb), yb) in d
                        .chunks_mut(EXP_BLOCK)
                        .zip(xb.chunks(EXP_BLOCK))
                        .zip(yb.chunks(EXP_BLOCK))
                    {
                        let e = &mut e[..d.len()];
                        for ((d, e), &x) in d.iter_mut().zip(e.iter_mut()).zip(xb) {
                            *d = math::erf_exp_arg(x * FRAC_1_SQRT_2);
                            *e = -0.5 * x * x;
                        }
                        math::exp_in_place(d);
                        math::exp_in_place(e);
                        for (((d, &e), &x), &y) in d.iter_mut().zip(e.iter()).zip(xb).zip(yb) {
                            let cdf = 0.5 * (1.0 + math::erf_with(x * FRAC_1_SQRT_2, *d));
                            let pdf = INV_SQRT_2PI * e;
                            *d = y * (cdf + x * pdf);
                        }
                    }
                })
            });
        tensor(dx, x.shape())
    }

    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        if !Self::fused_enabled() || !all_f32(&[&gate, &up]) {
            return prim(plain::swiglu::<Self>(float(gate), float(up)));
        }
        let (g, u) = (contiguous(gate), contiguous(up));
        let (gs, us) = (values(&g), values(&u));
        let mut out = vec![0.0f32; gs.len()];
        out.par_chunks_mut(ELEM_BLOCK)
            .zip(gs.par_chunks(ELEM_BLOCK).zip(us.par_chunks(ELEM_BLOCK)))
            .for_each(|(o, (gb, ub))| {
                math::vectorized(|| {
                    for (o, &g) in o.iter_mut().zip(gb) {
                        *o = -g;
                    }
                    math::exp_in_place(o);
                    // silu(g) * u, silu as PyTorch computes it: g / (1 + exp(-g)).
                    for ((o, &g), &u) in o.iter_mut().zip(gb).zip(ub) {
                        *o = g / (1.0 + *o) * u;
                    }
                })
            });
        tensor(out, g.shape())
    }

    fn swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        if !all_f32(&[&gate, &up, &grad]) {
            let (dg, du) = plain::swiglu_backward::<Self>(float(gate), float(up), float(grad));
            return (prim(dg), prim(du));
        }
        let (g, u, dy) = (contiguous(gate), contiguous(up), contiguous(grad));
        let (gs, us, dys) = (values(&g), values(&u), values(&dy));
        let mut dg = vec![0.0f32; gs.len()];
        let mut du = vec![0.0f32; gs.len()];
        dg.par_chunks_mut(ELEM_BLOCK)
            .zip(du.par_chunks_mut(ELEM_BLOCK))
            .zip(gs.par_chunks(ELEM_BLOCK).zip(us.par_chunks(ELEM_BLOCK)))
            .zip(dys.par_chunks(ELEM_BLOCK))
            .for_each(|(((dg, du), (gb, ub)), yb)| {
                math::vectorized(|| {
                    for (dg, &g) in dg.iter_mut().zip(gb) {
                        *dg = -g;
                    }
                    math::exp_in_place(dg);
                    for ((((dg, du), &g), &u), &y) in
                        dg.iter_mut().zip(du.iter_mut()).zip(gb).zip(ub).zip(yb)
                    {
                        // PyTorch's silu backward, and its rounding order (one exp for both).
                        let e1 = 1.0 + *dg;
                        let s = 1.0 / e1;
                        *dg = ((y * u) * s) * (1.0 + g * (1.0 - s));
                        *du = y * (g / e1);
                    }
                })
            });
        (tensor(dg, g.shape()), tensor(du, g.shape()))
    }
}

/// The attention kernel's forward on f32 tensors (see [`attention::forward`]): the output
/// `[batch, seq, heads, d]`, the log-sum-exp and the shapes.
fn attention_f32(
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    kv_rows: Option<&[usize]>,
    layout: &AttnLayout,
) -> (FlexTensor, Vec<f32>, Dims) {
    let (q, k, v) = (
        inner_contiguous(q),
        inner_contiguous(k),
        inner_contiguous(v),
    );
    let dims = attn_dims(&q, &k);
    let (out, lse) = attention::forward(
        view(&q),
        view(&k),
        view(&v),
        kv_rows,
        dims,
        layout,
        attn_scale(dims.d),
    );
    (tensor(out, q.shape()), lse, dims)
}

/// Whether `t` is a contiguous f32 tensor that owns its whole buffer alone.
fn writable(t: &FlexTensor) -> bool {
    let n = t.layout().num_elements();
    t.layout().contiguous_offsets() == Some((0, n)) && t.bytes().len() == n * 4 && t.is_unique()
}

/// A contiguous f32 tensor that owns its whole buffer alone (copied if not), so its
/// storage can be written in place.
fn owned(t: FlexTensor) -> FlexTensor {
    if writable(&t) {
        return t;
    }
    let shape = t.shape();
    let t = contiguous(t);
    tensor(values(&t).to_vec(), shape)
}

thread_local! {
    /// Writes to a KV cache buffer on this thread that found it shared, so copied it
    /// first (a test keeps this at 0 through decoding: the cache is written in place).
    static KV_SHARED_WRITES: Cell<usize> = const { Cell::new(0) };
}

/// How many KV cache writes on this thread so far had to copy the cache first.
pub fn kv_shared_writes() -> usize {
    KV_SHARED_WRITES.with(Cell::get)
}

/// [`owned`] for a KV cache buffer, counting the copies.
fn cache_owned(t: FlexTensor) -> FlexTensor {
    if !writable(&t) {
        KV_SHARED_WRITES.with(|c| c.set(c.get() + 1));
    }
    owned(t)
}

/// A 4-d tensor whose last dimension is contiguous (copied into row-major order if not).
fn inner_contiguous(t: FlexTensor) -> FlexTensor {
    let strides = t.layout().strides();
    if strides.len() == 4 && strides[3] == 1 && strides[..3].iter().all(|&s| s >= 0) {
        t
    } else {
        t.to_contiguous()
    }
}

fn view(t: &FlexTensor) -> View<'_> {
    let s = t.layout().strides();
    View {
        data: t.storage::<f32>(),
        offset: t.layout().start_offset(),
        batch: s[0] as usize,
        pos: s[1] as usize,
        head: s[2] as usize,
    }
}

fn attn_dims(q: &FlexTensor, k: &FlexTensor) -> Dims {
    let (qs, ks) = (q.shape(), k.shape());
    Dims {
        batch: qs[0],
        seq: qs[1],
        keys: ks[1],
        heads: qs[2],
        kv_heads: ks[2],
        d: qs[3],
    }
}

/// `1 / sqrt(head_dim)`, as burn's attention (and transformers') scale the scores.
fn attn_scale(d: usize) -> f32 {
    (1.0 / (d as f64).sqrt()) as f32
}

/// Elements per rayon task of the elementwise kernels.
const ELEM_BLOCK: usize = 16 * 1024;

/// Elements per stack buffer of exponentials inside an [`ELEM_BLOCK`].
const EXP_BLOCK: usize = 1024;

fn plain_neg(t: FlexTensor) -> FlexTensor {
    <Flex as burn::tensor::ops::FloatTensorOps<Flex>>::float_neg(t)
}

#[inline]
fn rstd(sum_sq: f32, dim: usize, eps: f64) -> f32 {
    1.0 / (sum_sq / dim as f32 + eps as f32).sqrt()
}

#[inline]
fn mean_rstd(row: &[f32], eps: f64) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let mut acc = [0.0f32; 16];
    for (i, &x) in row.iter().enumerate() {
        let c = x - mean;
        acc[i % 16] += c * c;
    }
    let var = lanes_sum(acc) / n;
    (mean, 1.0 / (var + eps as f32).sqrt())
}

/// RoPE on `[batch, seq, heads, d]` rows; `inverse` rotates by the negative angle.
fn rope_f32(x: FlexTensor, cos: FlexTensor, sin: FlexTensor, inverse: bool) -> FlexTensor {
    let (x, cos, sin) = (contiguous(x), contiguous(cos), contiguous(sin));
    let shape = x.shape();
    let (heads, d) = (shape[2], shape[3]);
    let half = d / 2;
    let (xs, cs, ss) = (values(&x), values(&cos), values(&sin));
    let mut out = vec![0.0f32; xs.len()];
    // One task per block of tokens; a token is `heads * d` values and `half` angles.
    let tok = heads * d;
    out.par_chunks_mut(tok * ROW_BLOCK)
        .zip(xs.par_chunks(tok * ROW_BLOCK))
        .enumerate()
        .for_each(|(blk, (o, xb))| {
            math::vectorized(|| {
                for (t, (otok, xtok)) in o
                    .chunks_exact_mut(tok)
                    .zip(xb.chunks_exact(tok))
                    .enumerate()
                {
                    let token = blk * ROW_BLOCK + t;
                    let c = &cs[token * half..(token + 1) * half];
                    let s = &ss[token * half..(token + 1) * half];
                    for (oh, xh) in otok.chunks_exact_mut(d).zip(xtok.chunks_exact(d)) {
                        let (x1, x2) = xh.split_at(half);
                        let (o1, o2) = oh.split_at_mut(half);
                        if inverse {
                            for i in 0..half {
                                o1[i] = x1[i] * c[i] + x2[i] * s[i];
                                o2[i] = x2[i] * c[i] - x1[i] * s[i];
                            }
                        } else {
                            for i in 0..half {
                                o1[i] = x1[i] * c[i] + (-x2[i]) * s[i];
                                o2[i] = x2[i] * c[i] + x1[i] * s[i];
                            }
                        }
                    }
                }
            })
        });
    tensor(out, shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;

    fn values_of(t: FloatTensor<Flex>) -> Vec<f32> {
        float::<Flex, 1>(t).into_data().to_vec::<f32>().unwrap()
    }

    /// The fused linear layer and its backward give burn's `module::linear` bits (the same
    /// multiply, no zeroing, the bias added in place), on a transposed input too.
    #[test]
    fn fused_linear_is_burns_linear() {
        if !Flex::fused_enabled() {
            return;
        }
        use burn::tensor::ops::ModuleOps;
        let dev = Default::default();
        let data = |n: usize, salt: f32| -> Vec<f32> {
            (0..n).map(|i| (i as f32 * 0.37 + salt).sin()).collect()
        };
        let t2 = |v: Vec<f32>, r: usize, c: usize| {
            Tensor::<Flex, 2>::from_data(TensorData::new(v, [r, c]), &dev)
        };
        let bits = |t: FloatTensor<Flex>| -> Vec<u32> {
            values_of(prim(float::<Flex, 2>(t).flatten::<1>(0, 1)))
                .into_iter()
                .map(f32::to_bits)
                .collect()
        };
        for (rows, d_in, d_out) in [(300, 70, 50), (3, 5, 2), (1, 384, 1536)] {
            let x = t2(data(rows * d_in, 0.1), rows, d_in);
            let xt = t2(data(rows * d_in, 0.2), d_in, rows).transpose();
            let w = t2(data(d_in * d_out, 0.3), d_in, d_out);
            let b = Tensor::<Flex, 1>::from_floats(data(d_out, 0.4).as_slice(), &dev);
            let g = t2(data(rows * d_out, 0.5), rows, d_out);
            for x in [x, xt] {
                for bias in [None, Some(b.clone())] {
                    let want = burn::tensor::module::linear(x.clone(), w.clone(), bias.clone());
                    let got = Flex::fused_linear(
                        prim(x.clone()),
                        prim(w.clone()),
                        bias.clone().map(prim),
                    );
                    assert_eq!(bits(got), bits(prim(want)), "{rows}x{d_in}x{d_out}");
                }
                let [dx, dw, db] = Flex::fused_linear_backward(
                    Some(prim(x.clone())),
                    Some(prim(w.clone())),
                    prim(g.clone()),
                    true,
                );
                let want_dx = Flex::linear_x_backward(prim(w.clone()), prim(g.clone()));
                let want_dw = Flex::linear_weight_backward(prim(x.clone()), prim(g.clone()));
                assert_eq!(bits(dx.unwrap()), bits(want_dx));
                assert_eq!(bits(dw.unwrap()), bits(want_dw));
                let db = float::<Flex, 1>(db.unwrap())
                    .into_data()
                    .to_vec::<f32>()
                    .unwrap();
                let want_db = float::<Flex, 1>(Flex::linear_bias_backward(prim(g.clone())));
                assert_eq!(db, want_db.into_data().to_vec::<f32>().unwrap());
            }
        }
    }

    /// The element loops, vectorised (`math::vectorized`, `math::exp_in_place`), give the
    /// bits of their formulas evaluated one element at a time with `f32::exp`.
    #[test]
    fn element_loops_are_their_scalar_formulas() {
        if !Flex::fused_enabled() {
            return;
        }
        let dev = Default::default();
        let n = 3 * ELEM_BLOCK + 77;
        let xs: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7919).sin() * 9.0).collect();
        let us: Vec<f32> = (0..n).map(|i| (i as f32 * 0.31).cos() * 2.0).collect();
        let t = |v: &[f32]| prim(Tensor::<Flex, 1>::from_floats(v, &dev));
        let gelu = values_of(Flex::fused_gelu(t(&xs)));
        let swiglu = values_of(Flex::swiglu(t(&xs), t(&us)));
        let dgelu = values_of(Flex::fused_gelu_backward(t(&xs), t(&us)));
        let (dg, du) = Flex::swiglu_backward(t(&xs), t(&us), t(&xs));
        let (dg, du) = (values_of(dg), values_of(du));
        for i in 0..n {
            let (x, u) = (xs[i], us[i]);
            let cdf = 0.5 * (1.0 + math::erf(x * FRAC_1_SQRT_2));
            assert_eq!(
                gelu[i].to_bits(),
                (0.5 * x * (1.0 + math::erf(x * FRAC_1_SQRT_2))).to_bits()
            );
            let pdf = 0.398_942_3 * (-0.5 * x * x).exp();
            assert_eq!(
                dgelu[i].to_bits(),
                (u * (cdf + x * pdf)).to_bits(),
                "gelu' at {x}"
            );
            let e1 = 1.0 + (-x).exp();
            assert_eq!(swiglu[i].to_bits(), (x / e1 * u).to_bits(), "swiglu at {x}");
            let s = 1.0 / e1;
            assert_eq!(
                dg[i].to_bits(),
                (((x * u) * s) * (1.0 + x * (1.0 - s))).to_bits()
            );
            assert_eq!(du[i].to_bits(), (x * (x / e1)).to_bits());
        }
    }
}
