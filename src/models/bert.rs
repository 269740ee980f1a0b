//! The BERT encoder family (BERT, MiniLM): absolute positions, token types, post-norm
//! layers with LayerNorm and GELU, and the pooler. Field names are the checkpoint's keys
//! (`encoder.layer.N.attention.self.query.weight`); `self_` stands for the key `self`,
//! which Rust reserves (the loader drops a keyword's trailing underscore).

// The checkpoint's key is `LayerNorm`; the field keeps its spelling.
#![allow(non_snake_case)]

use burn::nn::{Embedding, EmbeddingConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu_approximate;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use serde_json::Value;

use crate::kernels::{self, AttnLayout, FusedOps};

use super::config::{ConfigError, get_f64, get_usize, opt_usize};
use super::layers::LayerNorm;
use super::linear::Linear;
use super::llama::PaddingMask;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU (erf), HF `gelu`.
    Gelu,
    /// Tanh approximation, HF `gelu_new` / `gelu_pytorch_tanh`.
    GeluTanh,
}

#[derive(Debug, Clone)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: Option<usize>,
}

impl BertConfig {
    pub fn from_hf(json: &Value) -> Result<Self, ConfigError> {
        let act = json
            .get("hidden_act")
            .and_then(Value::as_str)
            .unwrap_or("gelu");
        let hidden_act = match act {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            other => {
                return Err(ConfigError::invalid(format!(
                    "hidden_act `{other}` is not supported for BERT (supported: gelu, gelu_new, gelu_pytorch_tanh)"
                )));
            }
        };
        if let Some(kind) = json.get("position_embedding_type").and_then(Value::as_str)
            && kind != "absolute"
        {
            return Err(ConfigError::invalid(format!(
                "position_embedding_type `{kind}` is not supported (only absolute)"
            )));
        }
        let hidden_size = get_usize(json, "hidden_size")?;
        let num_attention_heads = get_usize(json, "num_attention_heads")?;
        if hidden_size % num_attention_heads != 0 {
            return Err(ConfigError::invalid(format!(
                "hidden_size ({hidden_size}) is not a multiple of num_attention_heads ({num_attention_heads})"
            )));
        }
        Ok(Self {
            vocab_size: get_usize(json, "vocab_size")?,
            hidden_size,
            num_hidden_layers: get_usize(json, "num_hidden_layers")?,
            num_attention_heads,
            intermediate_size: get_usize(json, "intermediate_size")?,
            hidden_act,
            max_position_embeddings: opt_usize(json, "max_position_embeddings")?.unwrap_or(512),
            type_vocab_size: opt_usize(json, "type_vocab_size")?.unwrap_or(2),
            layer_norm_eps: get_f64(json, "layer_norm_eps").unwrap_or(1e-12),
            pad_token_id: opt_usize(json, "pad_token_id")?,
        })
    }

    /// The encoder with lazily initialised weights; `with_pooler` adds `pooler.dense`.
    pub fn init<B: FusedOps>(&self, with_pooler: bool, device: &B::Device) -> BertModel<B> {
        let h = self.hidden_size;
        let lin = |i, o| Linear::new(i, o, true, device);
        let layer = || BertLayer {
            attention: BertAttention {
                self_: BertSelfAttention {
                    query: lin(h, h),
                    key: lin(h, h),
                    value: lin(h, h),
                    num_heads: self.num_attention_heads,
                },
                output: BertAddNorm {
                    dense: lin(h, h),
                    LayerNorm: LayerNorm::new(h, self.layer_norm_eps, device),
                },
            },
            intermediate: BertIntermediate {
                dense: lin(h, self.intermediate_size),
            },
            output: BertAddNorm {
                dense: lin(self.intermediate_size, h),
                LayerNorm: LayerNorm::new(h, self.layer_norm_eps, device),
            },
            tanh_gelu: self.hidden_act == Activation::GeluTanh,
        };
        BertModel {
            embeddings: BertEmbeddings {
                word_embeddings: EmbeddingConfig::new(self.vocab_size, h).init(device),
                position_embeddings: EmbeddingConfig::new(self.max_position_embeddings, h)
                    .init(device),
                token_type_embeddings: EmbeddingConfig::new(self.type_vocab_size, h).init(device),
                LayerNorm: LayerNorm::new(h, self.layer_norm_eps, device),
            },
            encoder: BertEncoder {
                layer: (0..self.num_hidden_layers).map(|_| layer()).collect(),
            },
            pooler: with_pooler.then(|| BertPooler { dense: lin(h, h) }),
            activations: None,
        }
    }

    pub fn num_parameters(&self, with_pooler: bool) -> usize {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let emb =
            (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h;
        emb + self.num_hidden_layers * layer + if with_pooler { h * h + h } else { 0 }
    }
}

#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    pub embeddings: BertEmbeddings<B>,
    pub encoder: BertEncoder<B>,
    pub pooler: Option<BertPooler<B>>,
    /// The activations' dtype where it is not the weights' (mixed precision: f32 master
    /// weights computing in bf16 or f16); `None`: the word embeddings'.
    activations: Option<burn::tensor::DType>,
}

#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    pub word_embeddings: Embedding<B>,
    pub position_embeddings: Embedding<B>,
    pub token_type_embeddings: Embedding<B>,
    pub LayerNorm: LayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct BertEncoder<B: Backend> {
    pub layer: Vec<BertLayer<B>>,
}

#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    pub attention: BertAttention<B>,
    pub intermediate: BertIntermediate<B>,
    pub output: BertAddNorm<B>,
    tanh_gelu: bool,
}

#[derive(Module, Debug)]
pub struct BertAttention<B: Backend> {
    pub self_: BertSelfAttention<B>,
    pub output: BertAddNorm<B>,
}

#[derive(Module, Debug)]
pub struct BertSelfAttention<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
    num_heads: usize,
}

/// `dense`, then `LayerNorm(residual + x)` (BertSelfOutput and BertOutput).
#[derive(Module, Debug)]
pub struct BertAddNorm<B: Backend> {
    pub dense: Linear<B>,
    pub LayerNorm: LayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct BertIntermediate<B: Backend> {
    pub dense: Linear<B>,
}

#[derive(Module, Debug)]
pub struct BertPooler<B: Backend> {
    pub dense: Linear<B>,
}

impl<B: Backend> BertModel<B> {
    /// Every linear layer under its checkpoint path
    /// (`{prefix}.encoder.layer.N.attention.self.query`, ..., `{prefix}.pooler.dense`),
    /// in layer order: what LoRA targets and PEFT's keys are matched against.
    pub fn linears_mut(&mut self, prefix: &str) -> Vec<(String, &mut Linear<B>)> {
        let mut out = Vec::new();
        for (i, layer) in self.encoder.layer.iter_mut().enumerate() {
            let at = |path: &str| format!("{prefix}.encoder.layer.{i}.{path}");
            let s = &mut layer.attention.self_;
            out.push((at("attention.self.query"), &mut s.query));
            out.push((at("attention.self.key"), &mut s.key));
            out.push((at("attention.self.value"), &mut s.value));
            out.push((
                at("attention.output.dense"),
                &mut layer.attention.output.dense,
            ));
            out.push((at("intermediate.dense"), &mut layer.intermediate.dense));
            out.push((at("output.dense"), &mut layer.output.dense));
        }
        if let Some(pooler) = &mut self.pooler {
            out.push((format!("{prefix}.pooler.dense"), &mut pooler.dense));
        }
        out
    }

    /// True when any linear layer carries a LoRA adapter.
    pub fn has_lora(&self) -> bool {
        self.encoder.layer.iter().any(|l| {
            [
                &l.attention.self_.query,
                &l.attention.self_.key,
                &l.attention.self_.value,
                &l.attention.output.dense,
                &l.intermediate.dense,
                &l.output.dense,
            ]
            .into_iter()
            .any(Linear::has_lora)
        }) || self.pooler.as_ref().is_some_and(|p| p.dense.has_lora())
    }
}

impl<B: FusedOps> BertModel<B> {
    pub fn hidden_size(&self) -> usize {
        self.embeddings
            .word_embeddings
            .weight
            .lazy_shape()
            .as_slice()[1]
    }

    pub fn vocab_size(&self) -> usize {
        self.embeddings
            .word_embeddings
            .weight
            .lazy_shape()
            .as_slice()[0]
    }

    pub fn max_positions(&self) -> usize {
        self.embeddings
            .position_embeddings
            .weight
            .lazy_shape()
            .as_slice()[0]
    }

    /// Last hidden states `[batch, seq, hidden]` of right- or left-padded rows.
    /// Positions count from each row's first real token.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        mask: &PaddingMask,
    ) -> Tensor<B, 3> {
        let ctx = self.context(mask, &input_ids.device());
        let mut x = self.embed(input_ids, token_type_ids, mask);
        for i in 0..self.encoder.layer.len() {
            x = self.block(i, x, &ctx);
        }
        x
    }

    /// The embeddings (words, positions, token types) after their norm: the first
    /// block's input. (The block API, as `LlamaModel`'s.)
    pub fn embed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        mask: &PaddingMask,
    ) -> Tensor<B, 3> {
        let device = input_ids.device();
        let [batch, seq] = input_ids.dims();
        let positions = Tensor::<B, 2, Int>::from_data(
            TensorData::new(mask.positions(), [batch, seq]),
            &device,
        );
        let token_types = token_type_ids.unwrap_or_else(|| Tensor::zeros([batch, seq], &device));
        let e = &self.embeddings;
        let x = e.word_embeddings.forward(input_ids)
            + e.position_embeddings.forward(positions)
            + e.token_type_embeddings.forward(token_types);
        let dtype = self.activations_dtype();
        crate::kernels::like(e.LayerNorm.forward(x), dtype)
    }

    /// Compute in `dtype` whatever the weights' dtype (mixed precision; see the field).
    pub fn set_activations(&mut self, dtype: burn::tensor::DType) {
        self.activations = Some(dtype);
    }

    /// The dtype the activations are in.
    pub fn activations_dtype(&self) -> burn::tensor::DType {
        self.activations
            .unwrap_or_else(|| self.embeddings.word_embeddings.weight.val().dtype())
    }

    /// Encoder layer `i` on `x`.
    pub fn block(&self, i: usize, x: Tensor<B, 3>, ctx: &EncoderCtx<B>) -> Tensor<B, 3> {
        let attend = match ctx {
            EncoderCtx::Fused(layout) => Attend::Fused(layout),
            EncoderCtx::Mask(m) => Attend::Mask(m.clone()),
        };
        self.encoder.layer[i].forward(x, attend)
    }

    /// How the blocks of one input attend: one fused op when each row's real tokens are
    /// one run (left or right padding), else a dense mask.
    pub fn context(&self, mask: &PaddingMask, device: &B::Device) -> EncoderCtx<B> {
        let (batch, seq) = (mask.batch, mask.seq);
        if let Some(layout) = AttnLayout::from_valid(&mask.valid, batch, seq, false, 0) {
            return EncoderCtx::Fused(layout);
        }
        let device = device.clone();
        let attn_mask = if mask.has_padding() {
            // Keys that are padding are hidden; a padding query keeps itself so that its
            // row is never all -inf (its output is ignored).
            let mut forbid = Vec::with_capacity(batch * seq * seq);
            for b in 0..batch {
                let row = mask.row(b);
                for q in 0..seq {
                    forbid.extend(row.iter().enumerate().map(|(k, &real)| !(real || k == q)));
                }
            }
            Some(Tensor::<B, 4, Bool>::from_data(
                TensorData::new(forbid, [batch, 1, seq, seq]),
                &device,
            ))
        } else {
            None
        };
        EncoderCtx::Mask(attn_mask)
    }

    /// `tanh(dense(h[:, 0]))`, the pooled output BertForSequenceClassification reads.
    pub fn pool(&self, hidden: Tensor<B, 3>) -> Option<Tensor<B, 2>> {
        let pooler = self.pooler.as_ref()?;
        let [batch, _, h] = hidden.dims();
        let cls = hidden.narrow(1, 0, 1).reshape([batch, h]);
        Some(pooler.dense.forward(cls).tanh())
    }
}

/// How a layer's attention is masked: by a layout (the fused op) or a dense mask.
/// How the blocks of one input attend (see [`BertModel::context`]).
pub enum EncoderCtx<B: Backend> {
    Fused(AttnLayout),
    Mask(Option<Tensor<B, 4, Bool>>),
}

enum Attend<'a, B: Backend> {
    Fused(&'a AttnLayout),
    Mask(Option<Tensor<B, 4, Bool>>),
}

impl<B: FusedOps> BertLayer<B> {
    fn forward(&self, x: Tensor<B, 3>, mask: Attend<B>) -> Tensor<B, 3> {
        let attn = self.attention.self_.forward(x.clone(), mask);
        let x = self.attention.output.forward(attn, x);
        let inter = self.intermediate.dense.forward(x.clone());
        let inter = if self.tanh_gelu {
            gelu_approximate(inter)
        } else {
            kernels::gelu(inter)
        };
        self.output.forward(inter, x)
    }
}

impl<B: FusedOps> BertAddNorm<B> {
    fn forward(&self, x: Tensor<B, 3>, residual: Tensor<B, 3>) -> Tensor<B, 3> {
        self.LayerNorm.forward(self.dense.forward(x) + residual)
    }
}

impl<B: FusedOps> BertSelfAttention<B> {
    fn forward(&self, x: Tensor<B, 3>, mask: Attend<B>) -> Tensor<B, 3> {
        let [batch, seq, hidden] = x.dims();
        let mask = match mask {
            Attend::Fused(layout) => {
                let h = self.num_heads;
                let tokens = |t: Tensor<B, 3>| t.reshape([batch, seq, h, hidden / h]);
                let q = tokens(self.query.forward(x.clone()));
                let k = tokens(self.key.forward(x.clone()));
                let v = tokens(self.value.forward(x));
                return kernels::attention(q, k, v, layout).reshape([batch, seq, hidden]);
            }
            Attend::Mask(mask) => mask,
        };
        let h = self.num_heads;
        let d = hidden / h;
        let heads = |t: Tensor<B, 3>| t.reshape([batch, seq, h, d]).swap_dims(1, 2);
        let q = heads(self.query.forward(x.clone()));
        let k = heads(self.key.forward(x.clone()));
        let v = heads(self.value.forward(x));
        let mask = mask.map(|m| m.expand([batch, h, seq, seq]));
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        };
        attention(q, k, v, mask, None, options)
            .swap_dims(1, 2)
            .reshape([batch, seq, hidden])
    }
}

/// Mean of the hidden states of real tokens (sentence-transformers pooling), `[batch, hidden]`.
pub fn mean_pool<B: FusedOps>(hidden: Tensor<B, 3>, mask: &PaddingMask) -> Tensor<B, 2> {
    let [batch, seq, h] = hidden.dims();
    let weights: Vec<f32> = mask.valid.iter().map(|&v| f32::from(u8::from(v))).collect();
    let w = Tensor::<B, 3>::from_data(TensorData::new(weights, [batch, seq, 1]), &hidden.device());
    let counts = w.clone().sum_dim(1).clamp_min(1e-9).reshape([batch, 1]);
    (hidden * w).sum_dim(1).reshape([batch, h]) / counts
}
