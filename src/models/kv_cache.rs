//! The KV cache of decoding: keys and values of past tokens in preallocated slots,
//! written in place.
//!
//! A sequence owns a slot for its lifetime. Each layer's keys and values are one buffer
//! `[slots, capacity, kv_heads, head_dim]`, allocated once; a step writes each row's new
//! tokens at its slot's length (`kernels::kv_write`) and attention reads the slots through
//! an index (`kernels::cached_attention`), so nothing is concatenated, nothing is
//! gathered, no padding is stored and grouped-query heads are never expanded. A finished
//! sequence frees its slot in O(1); `fork` copies a prefilled prompt into more slots (n
//! samples of one prompt share its prefill).

use burn::prelude::*;

use crate::kernels::{self, FusedOps};

/// Sizes of a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvCacheSpec {
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Sequences held at once.
    pub slots: usize,
    /// Tokens per sequence (prompt and generated).
    pub capacity: usize,
    /// The keys' and values' dtype: the model's activations'.
    pub dtype: burn::tensor::DType,
}

impl KvCacheSpec {
    /// Bytes of the buffers (keys and values of every layer).
    pub fn bytes(&self) -> u64 {
        2 * (self.layers * self.slots * self.capacity * self.kv_heads * self.head_dim) as u64
            * self.dtype.size() as u64
    }
}

/// One sequence's place in a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotId(u32);

impl SlotId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The rows of one step over a cache: row `i` appends `lens[i]` tokens to slot
/// `slots[i]`, whose length before the step is `layout.query_start[i]`. The model runs the
/// rows' tokens packed, one after another; attention lays them out as a right-padded
/// `[rows, width]` batch (`pad`) and packs its output again (`unpad`); both are `None`
/// when every row has `width` tokens (decoding), where packed and padded coincide.
#[derive(Debug, Clone)]
pub(crate) struct StepRows<B: Backend> {
    pub slots: Vec<usize>,
    pub lens: Vec<usize>,
    pub width: usize,
    pub layout: kernels::AttnLayout,
    /// `[rows * width]`: the packed token each padded place reads (a padding place reads
    /// its row's last token; its result is dropped).
    pad: Option<Tensor<B, 1, Int>>,
    /// `[tokens]`: the padded place of each packed token.
    unpad: Option<Tensor<B, 1, Int>>,
}

impl<B: Backend> StepRows<B> {
    pub fn new(
        slots: &[SlotId],
        lens: Vec<usize>,
        starts: Vec<usize>,
        window: usize,
        device: &B::Device,
    ) -> Self {
        let n = lens.len();
        let width = lens.iter().copied().max().unwrap_or(0);
        let (pad, unpad) = if lens.iter().all(|&l| l == width) {
            (None, None)
        } else {
            let mut pad = Vec::with_capacity(n * width);
            let mut unpad = Vec::with_capacity(lens.iter().sum());
            let mut offset = 0;
            for (b, &len) in lens.iter().enumerate() {
                pad.extend((0..width).map(|i| (offset + i.min(len - 1)) as i64));
                unpad.extend((0..len).map(|i| (b * width + i) as i64));
                offset += len;
            }
            let index = |v: Vec<i64>| {
                let len = v.len();
                Tensor::<B, 1, Int>::from_data(TensorData::new(v, [len]), device)
            };
            (Some(index(pad)), Some(index(unpad)))
        };
        Self {
            slots: slots.iter().map(|s| s.index()).collect(),
            layout: kernels::AttnLayout {
                key_start: vec![0; n],
                key_end: starts.iter().zip(&lens).map(|(s, l)| s + l).collect(),
                query_start: starts,
                causal: true,
                window,
            },
            lens,
            width,
            pad,
            unpad,
        }
    }

    /// Packed `[1, tokens, heads, d]` to padded `[rows, width, heads, d]`.
    fn padded(&self, t: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, total, heads, d] = t.dims();
        let (rows, width) = (self.lens.len(), self.width);
        match &self.pad {
            None => t.reshape([rows, width, heads, d]),
            Some(pad) => t
                .reshape([total, heads * d])
                .select(0, pad.clone())
                .reshape([rows, width, heads, d]),
        }
    }

    /// Padded `[rows, width, heads, d]` to packed `[1, tokens, heads, d]`.
    fn packed(&self, t: Tensor<B, 4>) -> Tensor<B, 4> {
        let [rows, width, heads, d] = t.dims();
        match &self.unpad {
            None => t.reshape([1, rows * width, heads, d]),
            Some(unpad) => {
                let total = unpad.dims()[0];
                t.reshape([rows * width, heads * d])
                    .select(0, unpad.clone())
                    .reshape([1, total, heads, d])
            }
        }
    }
}

/// Keys and values of every layer, and each slot's length.
#[derive(Debug)]
pub struct KvCache<B: Backend> {
    spec: KvCacheSpec,
    /// Per layer; `None` only while a layer's buffer is being written.
    keys: Vec<Option<Tensor<B, 4>>>,
    values: Vec<Option<Tensor<B, 4>>>,
    lens: Vec<usize>,
    in_use: Vec<bool>,
    /// Free slots, the lowest last (popped first).
    free: Vec<u32>,
}

impl<B: FusedOps> KvCache<B> {
    /// A cache of `spec.slots` empty slots, zeroed once.
    pub fn new(spec: KvCacheSpec, device: &B::Device) -> Self {
        let shape = [spec.slots, spec.capacity, spec.kv_heads, spec.head_dim];
        let buffer = || Some(Tensor::<B, 4>::zeros(shape, (device, spec.dtype)));
        Self {
            spec,
            keys: (0..spec.layers).map(|_| buffer()).collect(),
            values: (0..spec.layers).map(|_| buffer()).collect(),
            lens: vec![0; spec.slots],
            in_use: vec![false; spec.slots],
            free: (0..spec.slots as u32).rev().collect(),
        }
    }

    pub fn spec(&self) -> &KvCacheSpec {
        &self.spec
    }

    /// Tokens a slot can hold.
    pub fn capacity(&self) -> usize {
        self.spec.capacity
    }

    /// An empty slot, or `None` when every slot is taken.
    pub fn alloc(&mut self) -> Option<SlotId> {
        let slot = self.free.pop()?;
        self.in_use[slot as usize] = true;
        self.lens[slot as usize] = 0;
        Some(SlotId(slot))
    }

    /// Give a slot back (its contents are forgotten, not cleared).
    pub fn free(&mut self, slot: SlotId) {
        let i = slot.index();
        assert!(self.in_use[i], "KV cache slot {i} freed twice");
        self.in_use[i] = false;
        self.lens[i] = 0;
        self.free.push(slot.0);
    }

    /// Tokens held by a slot.
    pub fn len(&self, slot: SlotId) -> usize {
        self.lens[slot.index()]
    }

    /// Slots in use.
    pub fn used(&self) -> usize {
        self.spec.slots - self.free.len()
    }

    /// `n` new slots holding a copy of `src`'s tokens, or `None` (and nothing taken) when
    /// fewer than `n` slots are free.
    pub fn fork(&mut self, src: SlotId, n: usize) -> Option<Vec<SlotId>> {
        if self.free.len() < n {
            return None;
        }
        let slots: Vec<SlotId> = (0..n).map(|_| self.alloc().expect("checked")).collect();
        let len = self.len(src);
        let dst: Vec<usize> = slots.iter().map(|s| s.index()).collect();
        for layer in 0..self.spec.layers {
            for buffers in [&mut self.keys, &mut self.values] {
                let t = buffers[layer].take().expect("a layer buffer");
                buffers[layer] = Some(kernels::kv_copy(t, src.index(), &dst, len));
            }
        }
        for s in &slots {
            self.lens[s.index()] = len;
        }
        Some(slots)
    }

    /// Forget a slot's tokens past `len` (roll back).
    pub fn truncate(&mut self, slot: SlotId, len: usize) {
        let l = &mut self.lens[slot.index()];
        *l = (*l).min(len);
    }

    /// Free every slot.
    pub fn reset(&mut self) {
        self.lens.fill(0);
        self.in_use.fill(false);
        self.free = (0..self.spec.slots as u32).rev().collect();
    }

    /// Write one layer's new keys and values (packed, `[1, tokens, kv_heads, head_dim]`)
    /// at the slots' current lengths, then run attention of `q` (packed, `[1, tokens,
    /// heads, head_dim]`) over the slots and return its output packed; the lengths move
    /// on in [`KvCache::advance`] once every layer has been written.
    pub(crate) fn attend(
        &mut self,
        layer: usize,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        rows: &StepRows<B>,
    ) -> Tensor<B, 4> {
        let StepRows {
            slots,
            lens,
            layout,
            ..
        } = rows;
        let starts = &layout.query_start;
        let keys = self.keys[layer].take().expect("a layer buffer");
        let keys = kernels::kv_write(keys, rows.padded(k), slots, starts, lens);
        let values = self.values[layer].take().expect("a layer buffer");
        let values = kernels::kv_write(values, rows.padded(v), slots, starts, lens);
        // The clones passed to attention are dropped when it returns, so the next write
        // finds the buffers unshared again.
        let out =
            kernels::cached_attention(rows.padded(q), keys.clone(), values.clone(), slots, layout);
        self.keys[layer] = Some(keys);
        self.values[layer] = Some(values);
        rows.packed(out)
    }

    /// Slot lengths before a step of `lens` new tokens per slot, checked against the
    /// capacity.
    pub(crate) fn starts(&self, slots: &[SlotId], lens: &[usize]) -> Vec<usize> {
        slots
            .iter()
            .zip(lens)
            .map(|(s, &n)| {
                let i = s.index();
                assert!(self.in_use[i], "KV cache slot {i} is not allocated");
                assert!(
                    self.lens[i] + n <= self.spec.capacity,
                    "KV cache slot {i} holds {} tokens; {n} more exceed its capacity {}",
                    self.lens[i],
                    self.spec.capacity
                );
                self.lens[i]
            })
            .collect()
    }

    /// Record that each slot received `lens` more tokens.
    pub(crate) fn advance(&mut self, slots: &[SlotId], lens: &[usize]) {
        for (s, &n) in slots.iter().zip(lens) {
            self.lens[s.index()] += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn spec() -> KvCacheSpec {
        KvCacheSpec {
            layers: 2,
            kv_heads: 2,
            head_dim: 3,
            slots: 3,
            capacity: 5,
            dtype: burn::tensor::DType::F32,
        }
    }

    #[test]
    fn slots_are_allocated_freed_and_forked() {
        let mut c = KvCache::<Flex>::new(spec(), &Default::default());
        assert_eq!(spec().bytes(), 2 * 2 * 3 * 5 * 2 * 3 * 4);
        let a = c.alloc().unwrap();
        let b = c.alloc().unwrap();
        assert_eq!((a.index(), b.index()), (0, 1));
        c.advance(&[a], &[4]);
        assert_eq!(c.len(a), 4);
        assert!(c.fork(a, 2).is_none(), "one slot free, two asked");
        c.free(b);
        let forks = c.fork(a, 2).unwrap();
        assert_eq!(forks.iter().map(|s| c.len(*s)).collect::<Vec<_>>(), [4, 4]);
        assert!(c.alloc().is_none());
        c.truncate(a, 2);
        assert_eq!(c.len(a), 2);
        c.reset();
        assert_eq!(c.used(), 0);
    }

    #[test]
    fn writes_land_in_their_slots_and_forks_copy_them() {
        let device = Default::default();
        let mut c = KvCache::<Flex>::new(spec(), &device);
        let (a, b) = (c.alloc().unwrap(), c.alloc().unwrap());
        // Two rows of 2 new tokens; row 1 has only 1 real one.
        let new = Tensor::<Flex, 1, Int>::arange(0..24, &device)
            .float()
            .reshape([2, 2, 2, 3]);
        let slots = [a.index(), b.index()];
        let keys = c.keys[0].take().unwrap();
        let keys = kernels::kv_write(keys, new.clone(), &slots, &[0, 0], &[2, 1]);
        c.keys[0] = Some(keys);
        c.advance(&[a, b], &[2, 1]);
        let forked = c.fork(a, 1).unwrap()[0];
        let got = c.keys[0]
            .clone()
            .unwrap()
            .into_data()
            .into_vec::<f32>()
            .unwrap();
        let slot = |s: usize, p: usize| &got[(s * 5 + p) * 6..(s * 5 + p + 1) * 6];
        let want: Vec<f32> = (0..24).map(|x| x as f32).collect();
        assert_eq!(slot(a.index(), 0), &want[0..6]);
        assert_eq!(slot(a.index(), 1), &want[6..12]);
        assert_eq!(slot(b.index(), 0), &want[12..18]);
        assert_eq!(slot(b.index(), 1), &[0.0; 6], "padding is not stored");
        assert_eq!(slot(forked.index(), 1), &want[6..12]);
        assert_eq!(c.len(forked), 2);
    }
}
