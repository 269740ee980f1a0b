//! Attention: which keys each query sees ([`AttnLayout`]), and the CPU kernels, forward
//! and backward, that never keep a score matrix between the two. The forward also reads
//! keys and values from a KV cache's slots (decoding; see `models::kv_cache`).
//!
//! The kernels work per (batch row, key/value head): the query heads that share that
//! key/value head are handled together, so grouped-query attention reads each key and
//! value once and sums their gradients in one place (in a fixed order: bitwise repeatable).
//! Queries go in blocks of [`QUERY_BLOCK`]; a block's scores exist only while it is being
//! worked on, and its products run on the `gemm` crate (the multiply burn-flex uses).
//! The forward keeps the log-sum-exp of each query's scores; the backward recomputes the
//! probabilities from it (FlashAttention's recipe, with blocks as wide as the keys).

use rayon::prelude::*;

use super::math;

/// Which keys each query of a `[batch, seq]` input sees. Query `i` of row `b` stands at
/// key position `p = query_start[b] + i` (its row's past length plus `i`; 0 plus `i`
/// without a cache) and sees key `j` when `key_start[b] <= j < key_end[b]`, `j <= p` if
/// causal, and `p - j < window` if `window > 0`; and every query sees its own position,
/// so that no row of scores is all masked (a padding query's output is never read).
/// These are the masks the models built before there were kernels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttnLayout {
    pub key_start: Vec<usize>,
    pub key_end: Vec<usize>,
    pub query_start: Vec<usize>,
    pub causal: bool,
    /// 0 when attention does not slide.
    pub window: usize,
}

impl AttnLayout {
    /// The layout of rows whose real tokens are `valid` (`batch * seq`, row-major), or
    /// `None` when some row's real tokens are not one run (no model builds such a row).
    pub fn from_valid(
        valid: &[bool],
        batch: usize,
        seq: usize,
        causal: bool,
        window: usize,
    ) -> Option<Self> {
        let mut key_start = Vec::with_capacity(batch);
        let mut key_end = Vec::with_capacity(batch);
        for row in valid.chunks(seq.max(1)).take(batch) {
            let start = row.iter().position(|&v| v).unwrap_or(0);
            let end = row.iter().rposition(|&v| v).map_or(start, |e| e + 1);
            if row[start..end].iter().any(|&v| !v) {
                return None;
            }
            key_start.push(start);
            key_end.push(end);
        }
        Some(Self {
            query_start: vec![0; key_start.len()],
            key_start,
            key_end,
            causal,
            window,
        })
    }

    pub fn batch(&self) -> usize {
        self.key_start.len()
    }

    /// Whether query `i` of row `b` sees key `j`.
    #[inline]
    pub fn sees(&self, b: usize, i: usize, j: usize) -> bool {
        let i = self.query_start[b] + i;
        j == i
            || (self.key_start[b] <= j
                && j < self.key_end[b]
                && (!self.causal || j <= i)
                && (self.window == 0 || i < j + self.window))
    }

    /// The keys query `i` of row `b` sees besides itself: `[lo, hi)` (possibly empty).
    #[inline]
    pub fn interval(&self, b: usize, i: usize) -> (usize, usize) {
        let i = self.query_start[b] + i;
        let mut lo = self.key_start[b];
        if self.window > 0 {
            lo = lo.max((i + 1).saturating_sub(self.window));
        }
        let hi = if self.causal {
            self.key_end[b].min(i + 1)
        } else {
            self.key_end[b]
        };
        (lo, hi.max(lo))
    }

    /// The keys query `i` of row `b` sees among the first `width`: `[lo, hi)`, and the
    /// query's own key position when it lies outside that interval (a padding query).
    #[inline]
    fn row_keys(&self, b: usize, i: usize, width: usize) -> (usize, usize, Option<usize>) {
        let (lo, hi) = self.interval(b, i);
        let hi = hi.min(width);
        let lo = lo.min(hi);
        let own = self.query_start[b] + i;
        (
            lo,
            hi,
            (own < width && !(lo..hi).contains(&own)).then_some(own),
        )
    }

    /// Every key real, no window and no past: the mask is plain causal (or none).
    pub fn is_full(&self, keys: usize) -> bool {
        self.window == 0
            && self.query_start.iter().all(|&s| s == 0)
            && self.key_start.iter().all(|&s| s == 0)
            && self.key_end.iter().all(|&e| e == keys)
    }

    /// One past the last key any query in `rows` of row `b` can see.
    fn keys_needed(&self, b: usize, rows: std::ops::Range<usize>, keys: usize) -> usize {
        let last = self.query_start[b] + rows.end - 1;
        let hi = if self.causal {
            self.key_end[b].min(last + 1)
        } else {
            self.key_end[b]
        };
        hi.max(last + 1).min(keys)
    }
}

/// Queries per block.
const QUERY_BLOCK: usize = 128;

/// A strided read-only view of a `[batch, pos, heads, d]` tensor, `d` contiguous.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub batch: usize,
    pub pos: usize,
    pub head: usize,
}

impl View<'_> {
    /// Pointer to `[b, p, h, 0]`.
    pub(crate) fn at(&self, b: usize, p: usize, h: usize) -> *const f32 {
        let i = self.offset + b * self.batch + p * self.pos + h * self.head;
        debug_assert!(i < self.data.len());
        // SAFETY: the index is inside the tensor (its shape and strides are the caller's).
        unsafe { self.data.as_ptr().add(i) }
    }
}

/// Shapes of one attention call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub batch: usize,
    pub seq: usize,
    pub keys: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub d: usize,
}

/// `dst[m, n] (+)= beta * lhs[m, k] @ rhs[k, n]`, each matrix given by its pointer, row
/// stride and column stride, on the calling thread.
///
/// SAFETY: every pointer with its strides must address `m x k`, `k x n` and `m x n`
/// valid elements; `dst` must not overlap the inputs.
#[allow(clippy::too_many_arguments)]
unsafe fn mm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const f32,
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: *const f32,
    rhs_rs: usize,
    rhs_cs: usize,
    beta: f32,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            1.0f32,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The largest of `xs` and `init` (NaNs ignored, as `f32::max` does), in 16 lanes so that
/// it vectorises; the maximum does not depend on the order.
#[inline]
fn max_of(xs: &[f32], init: f32) -> f32 {
    let mut acc = [init; 16];
    let mut chunks = xs.chunks_exact(16);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    let mut max = init;
    for &x in acc.iter().chain(chunks.remainder()) {
        max = max.max(x);
    }
    max
}

/// Softmax of each row of `scores` (`rows x width`, row stride `width`) over the keys the
/// layout lets it see (others become 0); returns each row's log-sum-exp.
fn softmax_rows(
    scores: &mut [f32],
    width: usize,
    layout: &AttnLayout,
    b: usize,
    first_query: usize,
    lse: &mut [f32],
) {
    for (r, (row, lse)) in scores.chunks_exact_mut(width).zip(lse).enumerate() {
        let i = first_query + r;
        let (lo, hi, own) = layout.row_keys(b, i, width);
        if lo == hi && own.is_none() {
            // A padding query past the end of its slot: no key at all, output 0.
            row.fill(0.0);
            *lse = f32::NEG_INFINITY;
            continue;
        }
        let own = own.map(|j| (j, row[j]));
        let max = max_of(&row[lo..hi], own.map_or(f32::NEG_INFINITY, |(_, s)| s));
        for s in &mut row[lo..hi] {
            *s -= max;
        }
        math::exp_in_place(&mut row[lo..hi]);
        // Added in order, one after another: the sums' rounding is the tests' (a lane-wise
        // sum moved a tiny Llama's second-step rewards 1.1e-5 from PyTorch's, over the
        // 1e-5 they hold).
        let mut sum = 0.0f32;
        for &s in &row[lo..hi] {
            sum += s;
        }
        let own = own.map(|(j, s)| (j, (s - max).exp()));
        sum += own.map_or(0.0, |(_, e)| e);
        row[..lo].fill(0.0);
        row[hi..].fill(0.0);
        if let Some((j, e)) = own {
            row[j] = e;
        }
        for s in row.iter_mut() {
            *s /= sum;
        }
        *lse = max + sum.ln();
    }
}

/// Copy one task's query-head rows (`[rep, seq, d]`, for row `b` and key/value head `g`)
/// into their places in a `[batch, seq, heads, d]` buffer.
fn scatter_query_heads(dst: &mut [f32], part: &[f32], b: usize, g: usize, dims: Dims) {
    let Dims {
        seq,
        heads,
        kv_heads,
        d,
        ..
    } = dims;
    let rep = heads / kv_heads;
    for (r, rows) in part.chunks_exact(seq * d).enumerate() {
        let h = g * rep + r;
        for (i, src) in rows.chunks_exact(d).enumerate() {
            let at = ((b * seq + i) * heads + h) * d;
            dst[at..at + d].copy_from_slice(src);
        }
    }
}

/// The forward pass: `out` `[batch, seq, heads, d]` and `lse` `[batch, heads, seq]`.
/// Query row `b` reads keys and values at `k`/`v` batch index `kv_rows[b]` (a cache
/// slot), or `b` itself when `kv_rows` is `None`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    q: View,
    k: View,
    v: View,
    kv_rows: Option<&[usize]>,
    dims: Dims,
    layout: &AttnLayout,
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let Dims {
        batch,
        seq,
        keys,
        heads,
        kv_heads,
        d,
    } = dims;
    let rep = heads / kv_heads;
    // One task per (row, kv head): its query heads' outputs, [rep, seq, d], and lse.
    let parts: Vec<(Vec<f32>, Vec<f32>)> = (0..batch * kv_heads)
        .into_par_iter()
        .map(|task| {
            math::vectorized(|| {
                let (b, g) = (task / kv_heads, task % kv_heads);
                let kb = kv_rows.map_or(b, |rows| rows[b]);
                let mut out = vec![0.0f32; rep * seq * d];
                let mut lse = vec![0.0f32; rep * seq];
                let mut scores = Vec::new();
                for r in 0..rep {
                    let h = g * rep + r;
                    for q0 in (0..seq).step_by(QUERY_BLOCK) {
                        let rows = QUERY_BLOCK.min(seq - q0);
                        let width = layout.keys_needed(b, q0..q0 + rows, keys);
                        scores.clear();
                        scores.resize(rows * width, 0.0);
                        // SAFETY: q rows q0.., k and v rows 0..width of this (b, head) are
                        // inside their tensors; `scores` and `out` are this task's own.
                        unsafe {
                            mm(
                                rows,
                                width,
                                d,
                                scores.as_mut_ptr(),
                                width,
                                false,
                                q.at(b, q0, h),
                                q.pos,
                                1,
                                k.at(kb, 0, g),
                                1,
                                k.pos,
                                scale,
                            );
                        }
                        let lse_rows = &mut lse[r * seq + q0..r * seq + q0 + rows];
                        softmax_rows(&mut scores, width, layout, b, q0, lse_rows);
                        let dst = &mut out[(r * seq + q0) * d..(r * seq + q0 + rows) * d];
                        // SAFETY: as above.
                        unsafe {
                            mm(
                                rows,
                                d,
                                width,
                                dst.as_mut_ptr(),
                                d,
                                false,
                                scores.as_ptr(),
                                width,
                                1,
                                v.at(kb, 0, g),
                                v.pos,
                                1,
                                1.0,
                            );
                        }
                    }
                }
                (out, lse)
            })
        })
        .collect();
    let mut out = vec![0.0f32; batch * seq * heads * d];
    let mut lse = vec![0.0f32; batch * heads * seq];
    for (task, (o, l)) in parts.into_iter().enumerate() {
        let (b, g) = (task / kv_heads, task % kv_heads);
        scatter_query_heads(&mut out, &o, b, g, dims);
        for r in 0..rep {
            let h = g * rep + r;
            let at = (b * heads + h) * seq;
            lse[at..at + seq].copy_from_slice(&l[r * seq..(r + 1) * seq]);
        }
    }
    (out, lse)
}

/// The backward pass: `(dq [batch, seq, heads, d], dk, dv [batch, keys, kv_heads, d])`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    q: View,
    k: View,
    v: View,
    out: View,
    lse: &[f32],
    grad: View,
    dims: Dims,
    layout: &AttnLayout,
    scale: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims {
        batch,
        seq,
        keys,
        heads,
        kv_heads,
        d,
    } = dims;
    let rep = heads / kv_heads;
    type Part = (Vec<f32>, Vec<f32>, Vec<f32>);
    let parts: Vec<Part> = (0..batch * kv_heads)
        .into_par_iter()
        .map(|task| {
            math::vectorized(|| {
                let (b, g) = (task / kv_heads, task % kv_heads);
                let mut dq = vec![0.0f32; rep * seq * d];
                let mut dk = vec![0.0f32; keys * d];
                let mut dv = vec![0.0f32; keys * d];
                let (mut p, mut dp) = (Vec::new(), Vec::new());
                for r in 0..rep {
                    let h = g * rep + r;
                    let lse = &lse[(b * heads + h) * seq..(b * heads + h + 1) * seq];
                    for q0 in (0..seq).step_by(QUERY_BLOCK) {
                        let rows = QUERY_BLOCK.min(seq - q0);
                        let width = layout.keys_needed(b, q0..q0 + rows, keys);
                        p.clear();
                        p.resize(rows * width, 0.0);
                        dp.clear();
                        dp.resize(rows * width, 0.0);
                        // SAFETY (every product below): the rows and columns addressed are
                        // inside q, k, v, out and grad for this (b, head) and inside this
                        // task's own buffers, which never alias the inputs.
                        unsafe {
                            // Scores again, then probabilities from the saved log-sum-exp.
                            mm(
                                rows,
                                width,
                                d,
                                p.as_mut_ptr(),
                                width,
                                false,
                                q.at(b, q0, h),
                                q.pos,
                                1,
                                k.at(b, 0, g),
                                1,
                                k.pos,
                                scale,
                            );
                        }
                        for (rr, row) in p.chunks_exact_mut(width).enumerate() {
                            let i = q0 + rr;
                            let (lo, hi, own) = layout.row_keys(b, i, width);
                            let own = own.map(|j| (j, (row[j] - lse[i]).exp()));
                            for s in &mut row[lo..hi] {
                                *s -= lse[i];
                            }
                            math::exp_in_place(&mut row[lo..hi]);
                            row[..lo].fill(0.0);
                            row[hi..].fill(0.0);
                            if let Some((j, e)) = own {
                                row[j] = e;
                            }
                        }
                        unsafe {
                            // dV += P^T dO
                            mm(
                                width,
                                d,
                                rows,
                                dv.as_mut_ptr(),
                                d,
                                true,
                                p.as_ptr(),
                                1,
                                width,
                                grad.at(b, q0, h),
                                grad.pos,
                                1,
                                1.0,
                            );
                            // dP = dO V^T
                            mm(
                                rows,
                                width,
                                d,
                                dp.as_mut_ptr(),
                                width,
                                false,
                                grad.at(b, q0, h),
                                grad.pos,
                                1,
                                v.at(b, 0, g),
                                1,
                                v.pos,
                                1.0,
                            );
                        }
                        // dS = P * (dP - rowsum(dO * O)) * scale, in place of dP.
                        for (rr, (dprow, prow)) in dp
                            .chunks_exact_mut(width)
                            .zip(p.chunks_exact(width))
                            .enumerate()
                        {
                            let i = q0 + rr;
                            let (go, o) = (grad.at(b, i, h), out.at(b, i, h));
                            // SAFETY: d contiguous elements of grad and out at [b, i, h].
                            let (go, o) = unsafe {
                                (
                                    std::slice::from_raw_parts(go, d),
                                    std::slice::from_raw_parts(o, d),
                                )
                            };
                            let delta = super::flex::dot(go, o);
                            for (ds, &pv) in dprow.iter_mut().zip(prow) {
                                *ds = pv * (*ds - delta) * scale;
                            }
                        }
                        let dq_rows = &mut dq[(r * seq + q0) * d..(r * seq + q0 + rows) * d];
                        unsafe {
                            // dQ = dS K
                            mm(
                                rows,
                                d,
                                width,
                                dq_rows.as_mut_ptr(),
                                d,
                                false,
                                dp.as_ptr(),
                                width,
                                1,
                                k.at(b, 0, g),
                                k.pos,
                                1,
                                1.0,
                            );
                            // dK += dS^T Q
                            mm(
                                width,
                                d,
                                rows,
                                dk.as_mut_ptr(),
                                d,
                                true,
                                dp.as_ptr(),
                                1,
                                width,
                                q.at(b, q0, h),
                                q.pos,
                                1,
                                1.0,
                            );
                        }
                    }
                }
                (dq, dk, dv)
            })
        })
        .collect();
    let mut dq = vec![0.0f32; batch * seq * heads * d];
    let mut dk = vec![0.0f32; batch * keys * kv_heads * d];
    let mut dv = vec![0.0f32; batch * keys * kv_heads * d];
    for (task, (q_part, k_part, v_part)) in parts.into_iter().enumerate() {
        let (b, g) = (task / kv_heads, task % kv_heads);
        scatter_query_heads(&mut dq, &q_part, b, g, dims);
        for j in 0..keys {
            let at = ((b * keys + j) * kv_heads + g) * d;
            dk[at..at + d].copy_from_slice(&k_part[j * d..(j + 1) * d]);
            dv[at..at + d].copy_from_slice(&v_part[j * d..(j + 1) * d]);
        }
    }
    (dq, dk, dv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_the_mask() {
        let valid = |row: &str| row.chars().map(|c| c == '1').collect::<Vec<_>>();
        let rows = ["0011111111", "1111110000", "1111111111", "0000000000"];
        let flat: Vec<bool> = rows.iter().flat_map(|r| valid(r)).collect();
        for (causal, window) in [(true, 0), (true, 3), (false, 0)] {
            let layout = AttnLayout::from_valid(&flat, 4, 10, causal, window).unwrap();
            for b in 0..4 {
                for i in 0..10 {
                    let (lo, hi) = layout.interval(b, i);
                    for j in 0..10 {
                        assert_eq!(
                            layout.sees(b, i, j),
                            j == i || (lo..hi).contains(&j),
                            "row {b} query {i} key {j} (causal {causal}, window {window})"
                        );
                    }
                }
            }
        }
        assert!(AttnLayout::from_valid(&valid("1101"), 1, 4, true, 0).is_none());
    }
}
