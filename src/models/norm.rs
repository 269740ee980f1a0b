//! Normalisation layers with the parameter names Hugging Face checkpoints use
//! (`weight`, `bias`), so they load without renaming.

use burn::module::Param;
use burn::prelude::*;

/// Root-mean-square norm (Llama family): `x / sqrt(mean(x^2) + eps) * weight`.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    pub fn new(size: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            weight: crate::models::load::new_param(Tensor::ones([size], device)),
            eps,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let variance = x.clone().square().mean_dim(D - 1);
        let normed = x * (variance.add_scalar(self.eps)).sqrt().recip();
        normed * self.weight.val().unsqueeze()
    }
}

/// Layer norm (BERT): `(x - mean) / sqrt(var + eps) * weight + bias`, biased variance.
#[derive(Module, Debug)]
pub struct LayerNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Backend> LayerNorm<B> {
    pub fn new(size: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            weight: crate::models::load::new_param(Tensor::ones([size], device)),
            bias: crate::models::load::new_param(Tensor::zeros([size], device)),
            eps,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let mean = x.clone().mean_dim(D - 1);
        let centered = x - mean;
        let variance = centered.clone().square().mean_dim(D - 1);
        let normed = centered * variance.add_scalar(self.eps).sqrt().recip();
        normed * self.weight.val().unsqueeze() + self.bias.val().unsqueeze()
    }
}
