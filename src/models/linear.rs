//! The linear layer of every model, `y = x W (+ b)`, with an optional LoRA adapter
//! (Hu et al. 2021, as PEFT implements it):
//! `y = x W (+ b) + scaling * (dropout(x) A) B`, `scaling = alpha / r` (or
//! `alpha / sqrt(r)` with rsLoRA), A drawn like PEFT's default (Kaiming-uniform,
//! bound `1 / sqrt(in)`), B zero, so a fresh adapter changes nothing.
//!
//! Field names are the checkpoint's keys (`q_proj.weight`, `q_proj.lora_A.weight`), so
//! loading and saving need no remapping; in memory every matrix is `[in, out]` (burn's
//! layout; `load.rs` transposes on the way in and out).
//!
//! Under LoRA the base weight and bias are frozen (no gradient, no optimizer state);
//! `enabled: false` switches the adapter off (the base model, e.g. a KL reference)
//! without a second copy of the weights.

// Field names are checkpoint keys (`lora_A`), and the derive's generated code uses them.
#![allow(non_snake_case)]

use std::cell::RefCell;

use burn::module::Param;
use burn::nn::LinearConfig;
use burn::prelude::*;
use burn::tensor::DType;

use crate::kernels::{FusedOps, like};
use burn::tensor::TensorPrimitive;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Module, Debug)]
pub struct Linear<B: Backend> {
    /// `[in, out]`.
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// `[in, r]` (PEFT stores `[r, in]`).
    pub lora_A: Option<LoraFactor<B>>,
    /// `[r, out]` (PEFT stores `[out, r]`).
    pub lora_B: Option<LoraFactor<B>>,
    pub lora_scaling: f64,
    pub lora_dropout: f64,
    pub lora_enabled: bool,
}

/// One LoRA matrix (its own module, so its key is `lora_A.weight` as in PEFT).
#[derive(Module, Debug)]
pub struct LoraFactor<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
}

/// An adapter's shape and strength, PEFT's `LoraConfig` fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoraShape {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f64,
    pub rslora: bool,
}

impl LoraShape {
    /// PEFT's `scaling`: `alpha / r`, or `alpha / sqrt(r)` with rsLoRA.
    pub fn scaling(&self) -> f64 {
        if self.rslora {
            self.alpha / (self.r as f64).sqrt()
        } else {
            self.alpha / self.r as f64
        }
    }
}

impl<B: Backend> Linear<B> {
    /// A layer with lazily initialised weights (burn's `LinearConfig` init: nothing is
    /// allocated before the checkpoint fills it).
    pub fn new(d_in: usize, d_out: usize, bias: bool, device: &B::Device) -> Self {
        let plain = LinearConfig::new(d_in, d_out)
            .with_bias(bias)
            .init::<B>(device);
        Self {
            weight: plain.weight,
            bias: plain.bias,
            lora_A: None,
            lora_B: None,
            lora_scaling: 0.0,
            lora_dropout: 0.0,
            lora_enabled: false,
        }
    }

    /// A layer holding the given `[in, out]` weight (no bias).
    pub fn from_weight(weight: Param<Tensor<B, 2>>) -> Self {
        Self {
            weight,
            bias: None,
            lora_A: None,
            lora_B: None,
            lora_scaling: 0.0,
            lora_dropout: 0.0,
            lora_enabled: false,
        }
    }

    pub fn d_in(&self) -> usize {
        self.weight.lazy_shape().as_slice()[0]
    }

    pub fn d_out(&self) -> usize {
        self.weight.lazy_shape().as_slice()[1]
    }

    pub fn has_lora(&self) -> bool {
        self.lora_A.is_some()
    }

    /// The adapter's rank, if it has one.
    pub fn lora_rank(&self) -> Option<usize> {
        self.lora_A
            .as_ref()
            .map(|a| a.weight.lazy_shape().as_slice()[1])
    }

    /// `x: [.., in]` -> `[.., out]`, computed as one `[rows, in]` product (burn's
    /// `Linear` on a 3-d input would broadcast the weight into a batched product).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D>
    where
        B: FusedOps,
    {
        let dims = x.dims();
        let d_in = dims[D - 1];
        let rows: usize = dims[..D - 1].iter().product();
        let x = x.reshape([rows, d_in]);
        // Parameters are read in the activations' dtype (f32 masters under bf16
        // activations; the cast's backward hands the master an f32 gradient).
        let dtype = x.dtype();
        let base = Tensor::from_primitive(TensorPrimitive::Float(B::fused_linear(
            x.clone().into_primitive().tensor(),
            like(self.weight.val(), dtype).into_primitive().tensor(),
            self.bias
                .as_ref()
                .map(|b| like(b.val(), dtype).into_primitive().tensor()),
        )));
        let y = match (&self.lora_A, &self.lora_B) {
            (Some(a), Some(b)) if self.lora_enabled => {
                let x = dropout(x, self.lora_dropout);
                base + x
                    .matmul(like(a.weight.val(), dtype))
                    .matmul(like(b.weight.val(), dtype))
                    .mul_scalar(self.lora_scaling)
            }
            _ => base,
        };
        let mut out = dims;
        out[D - 1] = y.dims()[1];
        y.reshape(out)
    }

    /// Attach a fresh adapter (A as PEFT draws it, B zero) and freeze the base.
    pub fn attach_lora(&mut self, shape: &LoraShape, rng: &mut ChaCha8Rng) {
        let (d_in, d_out, r) = (self.d_in(), self.d_out(), shape.r);
        let device = self.weight.lazy_device();
        // PEFT: kaiming_uniform_(A, a=sqrt(5)) on A's [r, in]: bound = 1 / sqrt(in).
        // Drawn in PEFT's [r, in] order, stored [in, r].
        let bound = 1.0 / (d_in as f64).sqrt();
        let mut a = vec![0.0f32; d_in * r];
        for row in 0..r {
            for col in 0..d_in {
                a[col * r + row] = rng.random_range(-bound..bound) as f32;
            }
        }
        let a = Tensor::<B, 2>::from_data(TensorData::new(a, [d_in, r]), &device);
        let b = Tensor::<B, 2>::zeros([r, d_out], &device);
        self.set_lora(a, b, shape);
    }

    /// Set the adapter's matrices (burn layout: A `[in, r]`, B `[r, out]`) and freeze the
    /// base.
    pub fn set_lora(&mut self, a: Tensor<B, 2>, b: Tensor<B, 2>, shape: &LoraShape) {
        self.freeze_base();
        self.lora_A = Some(LoraFactor {
            weight: Param::from_tensor(a),
        });
        self.lora_B = Some(LoraFactor {
            weight: Param::from_tensor(b),
        });
        self.lora_scaling = shape.scaling();
        self.lora_dropout = shape.dropout;
        self.lora_enabled = true;
    }

    /// The base weight and bias without gradients (and so without optimizer state).
    pub fn freeze_base(&mut self) {
        self.weight = self.weight.clone().set_require_grad(false);
        self.bias = self.bias.take().map(|b| b.set_require_grad(false));
    }

    /// The adapter removed: the base layer alone (shares the base's storage).
    pub fn drop_lora(&mut self) {
        self.lora_A = None;
        self.lora_B = None;
        self.lora_enabled = false;
    }

    /// `W + scaling * A B` folded into the weight, the adapter removed: a plain layer
    /// that computes what the adapted one did (dropout off).
    pub fn merged(self) -> Self {
        match (&self.lora_A, &self.lora_B) {
            (Some(a), Some(b)) => {
                let delta = a
                    .weight
                    .val()
                    .matmul(b.weight.val())
                    .mul_scalar(self.lora_scaling);
                let id = self.weight.id;
                // In f32, then back to the base's dtype.
                let w = self.weight.val();
                let dtype = w.dtype();
                let weight = like(like(w, DType::F32) + delta, dtype).detach();
                Self {
                    weight: Param::initialized(id, weight),
                    bias: self.bias,
                    lora_A: None,
                    lora_B: None,
                    lora_scaling: 0.0,
                    lora_dropout: 0.0,
                    lora_enabled: false,
                }
            }
            _ => self,
        }
    }
}

thread_local! {
    /// The random stream LoRA dropout draws from, set only around a training forward
    /// pass (`with_dropout`); absent, dropout is off (evaluation, scoring, generation).
    static DROPOUT: RefCell<Option<ChaCha8Rng>> = const { RefCell::new(None) };
}

/// Run `f` (a training forward pass) with LoRA dropout drawing from a stream seeded by
/// `seed`: the same seed gives the same masks, so a resumed run repeats them.
pub fn with_dropout<R>(seed: u64, f: impl FnOnce() -> R) -> R {
    let previous = DROPOUT.with(|d| d.replace(Some(ChaCha8Rng::seed_from_u64(seed))));
    let out = f();
    DROPOUT.with(|d| *d.borrow_mut() = previous);
    out
}

/// The seed of one forward pass's dropout masks, mixed from the run's seed and two
/// counters (the update and the micro-batch): a resumed run draws the same masks
/// (SplitMix64's finaliser).
pub fn dropout_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Inverted dropout (`torch.nn.Dropout`): kept elements scaled by `1 / (1 - p)`.
fn dropout<B: Backend>(x: Tensor<B, 2>, p: f64) -> Tensor<B, 2> {
    if p <= 0.0 {
        return x;
    }
    let dims = x.dims();
    let n = dims[0] * dims[1];
    let keep = (1.0 / (1.0 - p)) as f32;
    let mask = DROPOUT.with(|d| {
        d.borrow_mut().as_mut().map(|rng| {
            (0..n)
                .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
                .collect::<Vec<f32>>()
        })
    });
    match mask {
        Some(mask) => {
            let mask =
                Tensor::<B, 2>::from_data(TensorData::new(mask, dims), (&x.device(), x.dtype()));
            x * mask
        }
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type B = Flex;
    type A = Autodiff<Flex>;

    fn shape(r: usize) -> LoraShape {
        LoraShape {
            r,
            alpha: 16.0,
            dropout: 0.0,
            rslora: false,
        }
    }

    fn layer<Bk: Backend>(d_in: usize, d_out: usize, seed: u64) -> Linear<Bk> {
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let w: Vec<f32> = (0..d_in * d_out)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let b: Vec<f32> = (0..d_out).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut lin = Linear::<Bk>::from_weight(Param::from_tensor(Tensor::from_data(
            TensorData::new(w, [d_in, d_out]),
            &device,
        )));
        lin.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [d_out]),
            &device,
        )));
        lin
    }

    fn host<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
        t.into_data().into_vec::<f32>().unwrap()
    }

    #[test]
    fn a_fresh_adapter_changes_nothing_and_scaling_follows_peft() {
        let device = Default::default();
        let x = Tensor::<B, 3>::random([2, 3, 8], burn::tensor::Distribution::Default, &device);
        let lin = layer::<B>(8, 5, 1);
        let before = host(lin.forward(x.clone()));
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut adapted = lin;
        adapted.attach_lora(&shape(4), &mut rng);
        assert_eq!(adapted.lora_rank(), Some(4));
        assert_eq!(host(adapted.forward(x)), before);
        assert_eq!(shape(4).scaling(), 4.0);
        let rs = LoraShape {
            rslora: true,
            ..shape(4)
        };
        assert_eq!(rs.scaling(), 8.0);
        // A's entries lie within PEFT's Kaiming bound.
        let a = host(adapted.lora_A.unwrap().weight.val());
        let bound = 1.0 / 8f32.sqrt();
        assert!(a.iter().all(|v| v.abs() <= bound));
        assert!(a.iter().any(|v| *v != 0.0));
    }

    #[test]
    fn merged_equals_adapted_and_disabled_equals_base() {
        let device = Default::default();
        let x = Tensor::<B, 2>::random([6, 8], burn::tensor::Distribution::Default, &device);
        let base = layer::<B>(8, 5, 2);
        let a = Tensor::<B, 2>::random([8, 3], burn::tensor::Distribution::Default, &device);
        let b = Tensor::<B, 2>::random([3, 5], burn::tensor::Distribution::Default, &device);
        let plain = host(base.forward(x.clone()));
        let mut adapted = base;
        adapted.set_lora(a.clone(), b.clone(), &shape(3));
        let want: Vec<f32> = {
            let delta = x.clone().matmul(a).matmul(b).mul_scalar(16.0 / 3.0);
            host(delta).iter().zip(&plain).map(|(d, p)| d + p).collect()
        };
        let got = host(adapted.forward(x.clone()));
        let merged = host(adapted.clone().merged().forward(x.clone()));
        for ((g, m), w) in got.iter().zip(&merged).zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
            assert!((m - w).abs() < 1e-5, "{m} vs {w}");
        }
        let mut off = adapted;
        off.lora_enabled = false;
        assert_eq!(host(off.forward(x)), plain);
    }

    #[test]
    fn only_the_adapter_gets_gradients() {
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut lin = layer::<A>(4, 3, 3);
        lin.attach_lora(&shape(2), &mut rng);
        // B starts at zero, so A's gradient would be zero: give B values first.
        lin.lora_B = Some(LoraFactor {
            weight: Param::from_tensor(Tensor::ones([2, 3], &device)),
        });
        let x = Tensor::<A, 2>::ones([2, 4], &device);
        let grads = lin.forward(x).sum().backward();
        assert!(lin.weight.grad(&grads).is_none());
        assert!(lin.bias.as_ref().unwrap().grad(&grads).is_none());
        let ga = lin.lora_A.as_ref().unwrap().weight.grad(&grads).unwrap();
        let gb = lin.lora_B.as_ref().unwrap().weight.grad(&grads).unwrap();
        assert!(ga.abs().sum().into_scalar() > 0.0);
        assert!(gb.abs().sum().into_scalar() > 0.0);
    }

    #[test]
    fn dropout_draws_from_the_training_stream_only() {
        let device = Default::default();
        let x = Tensor::<B, 2>::ones([4, 16], &device);
        let a = Tensor::<B, 2>::ones([16, 2], &device);
        let b = Tensor::<B, 2>::ones([2, 3], &device);
        let lora = LoraShape {
            dropout: 0.5,
            ..shape(2)
        };
        let mut lin = layer::<B>(16, 3, 4);
        lin.set_lora(a, b, &lora);
        let eval = host(lin.forward(x.clone()));
        let train1 = with_dropout(9, || host(lin.forward(x.clone())));
        let train2 = with_dropout(9, || host(lin.forward(x.clone())));
        let train3 = with_dropout(10, || host(lin.forward(x.clone())));
        assert_eq!(train1, train2, "same seed, same masks");
        assert_ne!(train1, eval);
        assert_ne!(train1, train3);
        // Outside the scope dropout is off again.
        assert_eq!(host(lin.forward(x)), eval);
    }
}
