//! Building blocks the architectures share: normalisation layers with the parameter
//! names Hugging Face checkpoints use (`weight`, `bias`), and a row-folded linear.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;

/// `layer(x)` for `x: [batch, seq, in]`, computed as one `[batch * seq, in]` matrix
/// product. burn's `Linear` on a 3-d input broadcasts the weight into a batched
/// product, which streams the weight once per row of the batch.
pub fn project<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [batch, seq, d_in] = x.dims();
    let y = layer.forward(x.reshape([batch * seq, d_in]));
    let d_out = y.dims()[1];
    y.reshape([batch, seq, d_out])
}

/// Root-mean-square norm (Llama family): `x / sqrt(mean(x^2) + eps) * weight`.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    pub fn new(size: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            weight: super::load::new_param(Tensor::ones([size], device)),
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
            weight: super::load::new_param(Tensor::ones([size], device)),
            bias: super::load::new_param(Tensor::zeros([size], device)),
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
