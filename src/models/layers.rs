//! Building blocks the architectures share: normalisation layers with the parameter
//! names Hugging Face checkpoints use (`weight`, `bias`). The linear layer is in
//! `linear.rs`.

use burn::module::Param;
use burn::prelude::*;

use crate::kernels::{self, FusedOps};

/// Root-mean-square norm (Llama family): `x / sqrt(mean(x^2) + eps) * weight`.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: FusedOps> RmsNorm<B> {
    pub fn new(size: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            weight: super::load::new_param(Tensor::ones([size], device)),
            eps,
        }
    }
}

impl<B: FusedOps> RmsNorm<B> {
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        kernels::rms_norm(x, self.weight.val(), self.eps)
    }
}

/// Layer norm (BERT): `(x - mean) / sqrt(var + eps) * weight + bias`, biased variance.
#[derive(Module, Debug)]
pub struct LayerNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: FusedOps> LayerNorm<B> {
    pub fn new(size: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            weight: super::load::new_param(Tensor::ones([size], device)),
            bias: super::load::new_param(Tensor::zeros([size], device)),
            eps,
        }
    }
}

impl<B: FusedOps> LayerNorm<B> {
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        kernels::layer_norm(x, self.weight.val(), self.bias.val(), self.eps)
    }
}
