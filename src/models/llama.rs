//! The Llama decoder family: Llama 2/3/3.x, Qwen2/Qwen2.5, Mistral, SmolLM2.
//!
//! RMSNorm, rotate-half RoPE (with Llama 3 frequency scaling), grouped-query attention,
//! SwiGLU MLP, tied or untied output embeddings. Field names are the checkpoint's keys
//! (`model.layers.N.self_attn.q_proj.weight`), so loading needs no table.
//!
//! Batches may be padded on either side: every row gets its own positions (the count of
//! real tokens before it) and padding keys are masked. Decoding appends to the slots of a
//! [`KvCache`] (`kv_cache.rs`), written in place.

use burn::nn::{Embedding, EmbeddingConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use serde_json::Value;

use crate::kernels::{self, AttnLayout, FusedOps};

use super::kv_cache::{KvCache, KvCacheSpec, SlotId, StepRows};

use super::config::{ConfigError, get_bool, get_f64, get_usize, opt_usize};
use super::layers::RmsNorm;
use super::linear::Linear;

/// RoPE frequency scaling, as `rope_scaling` in config.json.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Llama 3.1: long wavelengths divided by `factor`, short kept, smooth in between.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
    /// Positions divided by `factor`.
    Linear { factor: f64 },
}

/// Everything the decoder needs from config.json.
#[derive(Debug, Clone)]
pub struct LlamaConfig {
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<RopeScaling>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Bias on q, k and v (Qwen2 always; Llama when `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on o_proj (Llama's `attention_bias` covers it; Qwen2 has none).
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub sliding_window: Option<usize>,
}

impl LlamaConfig {
    /// Read a Hugging Face config.json of model type llama, qwen2 or mistral. Both the
    /// classic keys (`rope_theta`, `rope_scaling`) and transformers 5's `rope_parameters`
    /// are understood.
    pub fn from_hf(json: &Value) -> Result<Self, ConfigError> {
        let model_type = json
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("llama")
            .to_string();
        let hidden_size = get_usize(json, "hidden_size")?;
        let num_attention_heads = get_usize(json, "num_attention_heads")?;
        let num_key_value_heads =
            opt_usize(json, "num_key_value_heads")?.unwrap_or(num_attention_heads);
        let head_dim = opt_usize(json, "head_dim")?.unwrap_or(hidden_size / num_attention_heads);
        if num_attention_heads % num_key_value_heads != 0 {
            return Err(ConfigError::invalid(format!(
                "num_attention_heads ({num_attention_heads}) is not a multiple of num_key_value_heads ({num_key_value_heads})"
            )));
        }
        let rope_params = json.get("rope_parameters").filter(|v| v.is_object());
        let rope_theta = match rope_params.and_then(|p| p.get("rope_theta")) {
            Some(v) => v.as_f64().ok_or_else(|| {
                ConfigError::invalid("rope_parameters.rope_theta is not a number")
            })?,
            None => get_f64(json, "rope_theta").unwrap_or(10_000.0),
        };
        let scaling = json
            .get("rope_scaling")
            .filter(|v| v.is_object())
            .or(rope_params);
        let rope_scaling = match scaling {
            None => None,
            Some(s) => parse_rope_scaling(s)?,
        };
        let attention_bias = get_bool(json, "attention_bias").unwrap_or(false);
        let is_qwen2 = model_type == "qwen2";
        let sliding_window = if is_qwen2 {
            // Qwen2 only slides when asked to; its configs carry a window regardless.
            if get_bool(json, "use_sliding_window").unwrap_or(false) {
                opt_usize(json, "sliding_window")?
            } else {
                None
            }
        } else {
            opt_usize(json, "sliding_window")?
        };
        Ok(Self {
            vocab_size: get_usize(json, "vocab_size")?,
            hidden_size,
            intermediate_size: get_usize(json, "intermediate_size")?,
            num_hidden_layers: get_usize(json, "num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: get_f64(json, "rms_norm_eps").unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings: opt_usize(json, "max_position_embeddings")?.unwrap_or(4096),
            tie_word_embeddings: get_bool(json, "tie_word_embeddings").unwrap_or(is_qwen2),
            qkv_bias: is_qwen2 || attention_bias,
            o_bias: !is_qwen2 && attention_bias,
            mlp_bias: get_bool(json, "mlp_bias").unwrap_or(false),
            sliding_window,
            model_type,
        })
    }

    /// The decoder stack with lazily initialised (random) weights.
    pub fn init_model<B: FusedOps>(&self, device: &B::Device) -> LlamaModel<B> {
        let layers = (0..self.num_hidden_layers)
            .map(|_| DecoderLayer {
                self_attn: Attention {
                    q_proj: linear(
                        self.hidden_size,
                        self.num_attention_heads * self.head_dim,
                        self.qkv_bias,
                        device,
                    ),
                    k_proj: linear(
                        self.hidden_size,
                        self.num_key_value_heads * self.head_dim,
                        self.qkv_bias,
                        device,
                    ),
                    v_proj: linear(
                        self.hidden_size,
                        self.num_key_value_heads * self.head_dim,
                        self.qkv_bias,
                        device,
                    ),
                    o_proj: linear(
                        self.num_attention_heads * self.head_dim,
                        self.hidden_size,
                        self.o_bias,
                        device,
                    ),
                    num_heads: self.num_attention_heads,
                    num_kv_heads: self.num_key_value_heads,
                    head_dim: self.head_dim,
                },
                mlp: Mlp {
                    gate_proj: linear(
                        self.hidden_size,
                        self.intermediate_size,
                        self.mlp_bias,
                        device,
                    ),
                    up_proj: linear(
                        self.hidden_size,
                        self.intermediate_size,
                        self.mlp_bias,
                        device,
                    ),
                    down_proj: linear(
                        self.intermediate_size,
                        self.hidden_size,
                        self.mlp_bias,
                        device,
                    ),
                },
                input_layernorm: RmsNorm::new(self.hidden_size, self.rms_norm_eps, device),
                post_attention_layernorm: RmsNorm::new(self.hidden_size, self.rms_norm_eps, device),
            })
            .collect();
        LlamaModel {
            embed_tokens: EmbeddingConfig::new(self.vocab_size, self.hidden_size).init(device),
            layers,
            norm: RmsNorm::new(self.hidden_size, self.rms_norm_eps, device),
            inv_freq: self.inv_freq(),
            sliding_window: self.sliding_window.unwrap_or(0),
            activations: None,
        }
    }

    /// A causal LM: the decoder plus an output projection unless embeddings are tied.
    pub fn init_causal_lm<B: FusedOps>(&self, device: &B::Device) -> LlamaForCausalLM<B> {
        LlamaForCausalLM {
            model: self.init_model(device),
            lm_head: (!self.tie_word_embeddings)
                .then(|| linear(self.hidden_size, self.vocab_size, false, device)),
        }
    }

    /// RoPE inverse frequencies, computed in f32 as transformers does, then scaled.
    pub fn inv_freq(&self) -> Vec<f32> {
        let dim = self.head_dim;
        let base = self.rope_theta as f32;
        let mut freqs: Vec<f32> = (0..dim / 2)
            .map(|i| 1.0 / base.powf((2 * i) as f32 / dim as f32))
            .collect();
        match &self.rope_scaling {
            None => {}
            Some(RopeScaling::Linear { factor }) => {
                for f in &mut freqs {
                    *f /= *factor as f32;
                }
            }
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings: old,
            }) => {
                let (factor, low, high, old) = (
                    *factor as f32,
                    *low_freq_factor as f32,
                    *high_freq_factor as f32,
                    *old as f32,
                );
                let low_wavelen = old / low;
                let high_wavelen = old / high;
                for f in &mut freqs {
                    let wavelen = 2.0 * std::f32::consts::PI / *f;
                    if wavelen > low_wavelen {
                        *f /= factor;
                    } else if wavelen >= high_wavelen {
                        let smooth = (old / wavelen - low) / (high - low);
                        *f = (1.0 - smooth) * *f / factor + smooth * *f;
                    }
                }
            }
        }
        freqs
    }

    pub fn num_parameters(&self) -> usize {
        let (h, i, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let attn = h * q
            + 2 * h * kv
            + q * h
            + if self.qkv_bias { q + 2 * kv } else { 0 }
            + if self.o_bias { h } else { 0 };
        let mlp = 3 * h * i + if self.mlp_bias { 2 * i + h } else { 0 };
        let layer = attn + mlp + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { h * v };
        v * h + self.num_hidden_layers * layer + h + head
    }
}

fn parse_rope_scaling(s: &Value) -> Result<Option<RopeScaling>, ConfigError> {
    let kind = s
        .get("rope_type")
        .or_else(|| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let num = |key: &str| {
        s.get(key).and_then(Value::as_f64).ok_or_else(|| {
            ConfigError::invalid(format!(
                "rope scaling of type {kind} needs a number `{key}`"
            ))
        })
    };
    match kind {
        "default" => Ok(None),
        "llama3" => Ok(Some(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        })),
        "linear" => Ok(Some(RopeScaling::Linear {
            factor: num("factor")?,
        })),
        other => Err(ConfigError::invalid(format!(
            "rope scaling of type `{other}` is not supported (supported: default, linear, llama3)"
        ))),
    }
}

fn linear<B: FusedOps>(d_in: usize, d_out: usize, bias: bool, device: &B::Device) -> Linear<B> {
    Linear::new(d_in, d_out, bias, device)
}

/// `LlamaForCausalLM` (and Qwen2/Mistral): the decoder and its output head.
#[derive(Module, Debug)]
pub struct LlamaForCausalLM<B: Backend> {
    pub model: LlamaModel<B>,
    /// Absent when the output projection is tied to the input embeddings.
    pub lm_head: Option<Linear<B>>,
}

/// The decoder stack (`model.*` keys).
#[derive(Module, Debug)]
pub struct LlamaModel<B: Backend> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    inv_freq: Vec<f32>,
    /// 0 when attention does not slide.
    sliding_window: usize,
    /// The activations' dtype where it is not the weights' (mixed precision: f32 master
    /// weights computing in bf16 or f16, each read in it where it is used); `None`: the
    /// embedding table's.
    activations: Option<burn::tensor::DType>,
}

#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub self_attn: Attention<B>,
    pub mlp: Mlp<B>,
    pub input_layernorm: RmsNorm<B>,
    pub post_attention_layernorm: RmsNorm<B>,
}

#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub o_proj: Linear<B>,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
}

#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub gate_proj: Linear<B>,
    pub up_proj: Linear<B>,
    pub down_proj: Linear<B>,
}

/// Which tokens of a `[batch, seq]` input are real; row-major `batch * seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddingMask {
    pub batch: usize,
    pub seq: usize,
    pub valid: Vec<bool>,
}

impl PaddingMask {
    pub fn all_valid(batch: usize, seq: usize) -> Self {
        Self {
            batch,
            seq,
            valid: vec![true; batch * seq],
        }
    }

    pub fn row(&self, b: usize) -> &[bool] {
        &self.valid[b * self.seq..(b + 1) * self.seq]
    }

    /// Each token's position: the number of real tokens before it in its row (0 for
    /// padding), row-major `batch * seq`.
    pub fn positions(&self) -> Vec<i64> {
        let mut positions = Vec::with_capacity(self.valid.len());
        for b in 0..self.batch {
            let mut next = 0i64;
            for &real in self.row(b) {
                positions.push(if real { next } else { 0 });
                next += i64::from(real);
            }
        }
        positions
    }

    pub fn has_padding(&self) -> bool {
        self.valid.iter().any(|v| !v)
    }
}

/// Where a layer's attention finds its keys and values.
enum Keys<'a, B: FusedOps> {
    /// The input's own tokens, as the layout lets each query see them.
    Own(&'a AttnLayout),
    /// The input's own tokens under a dense mask `[batch, 1, seq, seq]`, true where
    /// attention is forbidden (rows whose real tokens are not one run).
    Masked(Tensor<B, 4, Bool>),
    /// A KV cache's slots, to which the input's tokens are appended first.
    Cache {
        cache: &'a mut KvCache<B>,
        layer: usize,
        rows: &'a StepRows<B>,
    },
}

impl<B: Backend> LlamaModel<B> {
    /// Every linear layer under its checkpoint path (`{prefix}.layers.N.self_attn.q_proj`),
    /// in layer order: what LoRA targets and PEFT's keys are matched against.
    pub fn linears_mut(&mut self, prefix: &str) -> Vec<(String, &mut Linear<B>)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let at = |name: &str, group: &str| format!("{prefix}.layers.{i}.{group}.{name}");
            let a = &mut layer.self_attn;
            out.push((at("q_proj", "self_attn"), &mut a.q_proj));
            out.push((at("k_proj", "self_attn"), &mut a.k_proj));
            out.push((at("v_proj", "self_attn"), &mut a.v_proj));
            out.push((at("o_proj", "self_attn"), &mut a.o_proj));
            let m = &mut layer.mlp;
            out.push((at("gate_proj", "mlp"), &mut m.gate_proj));
            out.push((at("up_proj", "mlp"), &mut m.up_proj));
            out.push((at("down_proj", "mlp"), &mut m.down_proj));
        }
        out
    }

    /// True when any linear layer carries a LoRA adapter.
    pub fn has_lora(&self) -> bool {
        self.layers.iter().any(|l| {
            let (a, m) = (&l.self_attn, &l.mlp);
            [&a.q_proj, &a.k_proj, &a.v_proj, &a.o_proj]
                .into_iter()
                .chain([&m.gate_proj, &m.up_proj, &m.down_proj])
                .any(Linear::has_lora)
        })
    }
}

impl<B: FusedOps> LlamaModel<B> {
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    pub fn hidden_size(&self) -> usize {
        self.embed_tokens.weight.lazy_shape().as_slice()[1]
    }

    pub fn vocab_size(&self) -> usize {
        self.embed_tokens.weight.lazy_shape().as_slice()[0]
    }

    /// Hidden states after the final norm, `[batch, seq, hidden]`, of a padded batch.
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>, mask: &PaddingMask) -> Tensor<B, 3> {
        let ctx = self.context(mask, &input_ids.device());
        let mut x = self.embed(input_ids);
        for i in 0..self.layers.len() {
            x = self.block(i, x, &ctx);
        }
        self.finish(x)
    }

    /// What every block of one `[batch, seq]` input shares: RoPE tables and the mask.
    /// (The block API: `forward` is `embed`, then `block` for each layer, then `finish`;
    /// activation checkpointing replays one block at a time.)
    pub fn context(&self, mask: &PaddingMask, device: &B::Device) -> DecoderCtx<B> {
        let (batch, seq) = (mask.batch, mask.seq);
        let positions =
            Tensor::<B, 2, Int>::from_data(TensorData::new(mask.positions(), [batch, seq]), device);
        let rope = self.rope_tables(positions);
        let layout = AttnLayout::from_valid(&mask.valid, batch, seq, true, self.sliding_window);
        let dense = match layout {
            Some(_) => None,
            None => Some(self.dense_mask(mask, device)),
        };
        DecoderCtx {
            rope,
            layout,
            dense,
        }
    }

    /// The token embeddings, `[batch, seq, hidden]`: the first block's input.
    pub fn embed(&self, input_ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        kernels::like(
            self.embed_tokens.forward(input_ids),
            self.activations_dtype(),
        )
    }

    /// Compute in `dtype` whatever the weights' dtype (mixed precision; see the field).
    pub fn set_activations(&mut self, dtype: burn::tensor::DType) {
        self.activations = Some(dtype);
    }

    /// The dtype the activations (and a KV cache) are in.
    pub fn activations_dtype(&self) -> burn::tensor::DType {
        self.activations
            .unwrap_or_else(|| self.embed_tokens.weight.val().dtype())
    }

    /// Decoder layer `i` on the residual stream `x`.
    pub fn block(&self, i: usize, x: Tensor<B, 3>, ctx: &DecoderCtx<B>) -> Tensor<B, 3> {
        let keys = match (&ctx.layout, &ctx.dense) {
            (Some(layout), _) => Keys::Own(layout),
            (None, Some(m)) => Keys::Masked(m.clone()),
            (None, None) => unreachable!("one of the two is built"),
        };
        self.layers[i].forward(x, &ctx.rope, keys)
    }

    /// The final norm after the last block.
    pub fn finish(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.norm.forward(x)
    }

    /// Append each row's tokens to its cache slot and return their hidden states after
    /// the final norm, `[tokens, hidden]`: row 0's tokens, then row 1's, ... (packed: no
    /// padding runs through the model). A row may be a prompt being prefilled or one token
    /// being decoded.
    pub fn forward_cached(
        &self,
        cache: &mut KvCache<B>,
        rows: &[(SlotId, &[u32])],
    ) -> Tensor<B, 2> {
        assert!(!rows.is_empty(), "a step needs at least one row");
        assert!(
            rows.iter().all(|(_, t)| !t.is_empty()),
            "every row of a step has a token"
        );
        let device = self.embed_tokens.weight.device();
        let ids: Vec<SlotId> = rows.iter().map(|(s, _)| *s).collect();
        let lens: Vec<usize> = rows.iter().map(|(_, t)| t.len()).collect();
        let starts = cache.starts(&ids, &lens);
        let total: usize = lens.iter().sum();
        let tokens: Vec<i64> = rows
            .iter()
            .flat_map(|(_, t)| t.iter().map(|&id| i64::from(id)))
            .collect();
        let positions: Vec<i64> = starts
            .iter()
            .zip(&lens)
            .flat_map(|(&s, &n)| (s..s + n).map(|p| p as i64))
            .collect();
        let step = StepRows::new(&ids, lens, starts, self.sliding_window, &device);
        let input = Tensor::<B, 2, Int>::from_data(TensorData::new(tokens, [1, total]), &device);
        let positions =
            Tensor::<B, 2, Int>::from_data(TensorData::new(positions, [1, total]), &device);
        let rope = self.rope_tables(positions);
        let mut x = self.embed(input);
        for (i, layer) in self.layers.iter().enumerate() {
            let keys = Keys::Cache {
                cache: &mut *cache,
                layer: i,
                rows: &step,
            };
            x = layer.forward(x, &rope, keys);
        }
        cache.advance(&ids, &step.lens);
        let hidden = x.dims()[2];
        self.norm.forward(x).reshape([total, hidden])
    }

    /// `[batch, 1, seq, seq]`, true where attention is forbidden: causal, real keys only,
    /// within the window; every query sees itself so no row is all masked.
    fn dense_mask(&self, mask: &PaddingMask, device: &B::Device) -> Tensor<B, 4, Bool> {
        let (batch, seq, window) = (mask.batch, mask.seq, self.sliding_window);
        let mut forbid = Vec::with_capacity(batch * seq * seq);
        for b in 0..batch {
            let valid = mask.row(b);
            for q in 0..seq {
                for (k, &real) in valid.iter().enumerate() {
                    let allowed = (real && k <= q && (window == 0 || q - k < window)) || k == q;
                    forbid.push(!allowed);
                }
            }
        }
        Tensor::from_data(TensorData::new(forbid, [batch, 1, seq, seq]), device)
    }

    /// The cosines and sines of every token's rotation angles, `[batch, seq, head_dim / 2]`.
    fn rope_tables(&self, positions: Tensor<B, 2, Int>) -> RopeTables<B> {
        let device = positions.device();
        let [batch, seq] = positions.dims();
        let half = self.inv_freq.len();
        let inv_freq =
            Tensor::<B, 1>::from_data(TensorData::new(self.inv_freq.clone(), [half]), &device);
        // Angles in f32, as transformers computes them: position * inverse frequency.
        let angles = positions.float().reshape([batch, seq, 1]) * inv_freq.reshape([1, 1, half]);
        RopeTables {
            cos: angles.clone().cos(),
            sin: angles.sin(),
        }
    }
}

/// cos and sin of each token's RoPE angles, `[batch, seq, head_dim / 2]` (the two halves
/// of a head share them).
/// What the blocks of one input share (see [`LlamaModel::context`]).
pub struct DecoderCtx<B: Backend> {
    rope: RopeTables<B>,
    layout: Option<AttnLayout>,
    dense: Option<Tensor<B, 4, Bool>>,
}

struct RopeTables<B: Backend> {
    cos: Tensor<B, 3>,
    sin: Tensor<B, 3>,
}

impl<B: FusedOps> RopeTables<B> {
    /// Rotate-half RoPE of a projection `[batch, seq, heads * head_dim]`, returned as
    /// `[batch, seq, heads, head_dim]`.
    fn apply(&self, x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
        let [batch, seq, width] = x.dims();
        let x = x.reshape([batch, seq, heads, width / heads]);
        kernels::rope(x, self.cos.clone(), self.sin.clone())
    }
}

impl<B: FusedOps> DecoderLayer<B> {
    fn forward(&self, x: Tensor<B, 3>, rope: &RopeTables<B>, keys: Keys<'_, B>) -> Tensor<B, 3> {
        let h = self.input_layernorm.forward(x.clone());
        let x = x + self.self_attn.forward(h, rope, keys);
        let h = self.post_attention_layernorm.forward(x.clone());
        x + self.mlp.forward(h)
    }
}

impl<B: FusedOps> Attention<B> {
    fn forward(&self, x: Tensor<B, 3>, rope: &RopeTables<B>, keys: Keys<'_, B>) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let q = rope.apply(self.q_proj.forward(x.clone()), h);
        let k = rope.apply(self.k_proj.forward(x.clone()), kvh);
        let v = self.v_proj.forward(x).reshape([batch, seq, kvh, d]);
        let out = match keys {
            Keys::Own(layout) => kernels::attention(q, k, v, layout),
            Keys::Masked(mask) => masked_attention(q, k, v, mask),
            Keys::Cache { cache, layer, rows } => cache.attend(layer, q, k, v, rows),
        };
        self.o_proj.forward(out.reshape([batch, seq, h * d]))
    }
}

/// Attention of token-major `q: [batch, seq, heads, d]` over `k, v: [batch, seq, kv_heads,
/// d]` under a dense mask (true where forbidden), by burn's attention op.
fn masked_attention<B: FusedOps>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
) -> Tensor<B, 4> {
    let [batch, seq, heads, d] = q.dims();
    let kv_heads = k.dims()[2];
    let rep = heads / kv_heads;
    let expand = |t: Tensor<B, 4>| {
        t.swap_dims(1, 2)
            .unsqueeze_dim::<5>(2)
            .expand([batch, kv_heads, rep, seq, d])
            .reshape([batch, heads, seq, d])
    };
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal: false,
    };
    let mask = mask.expand([batch, heads, seq, seq]);
    attention(
        q.swap_dims(1, 2),
        expand(k),
        expand(v),
        Some(mask),
        None,
        options,
    )
    .swap_dims(1, 2)
}

impl<B: FusedOps> Mlp<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = self.gate_proj.forward(x.clone());
        self.down_proj
            .forward(kernels::swiglu(gate, self.up_proj.forward(x)))
    }
}

impl<B: Backend> LlamaForCausalLM<B> {
    /// The decoder's linear layers under their checkpoint paths (the output head left
    /// out, as PEFT's `all-linear` leaves it).
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear<B>)> {
        self.model.linears_mut("model")
    }

    pub fn has_lora(&self) -> bool {
        self.model.has_lora()
    }

    /// LoRA on the decoder: every parameter frozen, fresh adapters (seeded) on the layers
    /// `cfg` targets. Returns the adapted layers' paths.
    pub fn apply_lora(
        self,
        cfg: &super::peft::LoraConfig,
        seed: u64,
    ) -> anyhow::Result<(Self, Vec<String>)> {
        let mut lm = self.no_grad();
        let adapted = super::peft::attach(lm.linears_mut(), cfg, seed)?;
        Ok((lm, adapted))
    }

    /// The base model: every adapter removed (the weights are shared, not copied).
    pub fn without_adapters(mut self) -> Self {
        for (_, lin) in self.linears_mut() {
            lin.drop_lora();
        }
        self
    }

    /// The adapters folded into the weights: a plain model computing the same logits.
    pub fn merge_lora(mut self) -> Self {
        for (_, lin) in self.linears_mut() {
            *lin = lin.clone().merged();
        }
        self
    }
}

impl<B: FusedOps> LlamaForCausalLM<B> {
    /// Project hidden states to vocabulary logits.
    /// Logits in f32 whatever the activations' dtype (bf16 logits are cast up, as
    /// transformers does, before any softmax or sampling).
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let logits = self.logits_in(hidden);
        if logits.dtype() == burn::tensor::DType::F32 {
            logits
        } else {
            logits.cast(burn::tensor::DType::F32)
        }
    }

    fn logits_in(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => {
                let [b, s, h] = hidden.dims();
                let table = kernels::like(self.model.embed_tokens.weight.val(), hidden.dtype());
                let vocab = table.dims()[0];
                hidden
                    .reshape([b * s, h])
                    .matmul(table.transpose())
                    .reshape([b, s, vocab])
            }
        }
    }

    /// Logits of every position, `[batch, seq, vocab]`.
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>, mask: &PaddingMask) -> Tensor<B, 3> {
        self.logits(self.model.forward(input_ids, mask))
    }

    /// An empty KV cache of `slots` sequences of up to `capacity` tokens each.
    pub fn new_cache(&self, slots: usize, capacity: usize) -> KvCache<B> {
        let attn = &self.model.layers[0].self_attn;
        let spec = KvCacheSpec {
            layers: self.model.num_layers(),
            kv_heads: attn.num_kv_heads,
            head_dim: attn.head_dim,
            slots,
            capacity,
            dtype: self.model.activations_dtype(),
        };
        KvCache::new(spec, &self.model.embed_tokens.weight.device())
    }

    /// Append each row's tokens to its cache slot (see [`LlamaModel::forward_cached`]) and
    /// return the logits of each row's last token, `[rows, vocab]`.
    pub fn step(&self, cache: &mut KvCache<B>, rows: &[(SlotId, &[u32])]) -> Tensor<B, 2> {
        let hidden = self.model.forward_cached(cache, rows);
        let [total, h] = hidden.dims();
        let n = rows.len();
        let last = if total == n {
            hidden
        } else {
            let at: Vec<i64> = rows
                .iter()
                .scan(0, |end, (_, t)| {
                    *end += t.len();
                    Some(*end as i64 - 1)
                })
                .collect();
            let at = Tensor::<B, 1, Int>::from_data(TensorData::new(at, [n]), &hidden.device());
            hidden.select(0, at)
        };
        let logits = self.logits(last.reshape([n, 1, h]));
        let vocab = logits.dims()[2];
        logits.reshape([n, vocab])
    }

    /// Log-probability of each `targets[b, t]` under the distribution predicted from
    /// `hidden[b, t]`, and that distribution's entropy, `[batch, seq]` each.
    ///
    /// The vocabulary projection runs over `chunk` positions at a time, so no more than
    /// `batch * chunk * vocab` logits exist at once in the forward pass.
    pub fn token_logprobs(
        &self,
        hidden: Tensor<B, 3>,
        targets: Tensor<B, 2, Int>,
        chunk: usize,
        with_entropy: bool,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let [batch, seq, _] = hidden.dims();
        let chunk = chunk.max(1);
        let mut logps = Vec::new();
        let mut entropies = Vec::new();
        let mut start = 0;
        while start < seq {
            let len = chunk.min(seq - start);
            let h = hidden.clone().narrow(1, start, len);
            let t = targets.clone().narrow(1, start, len);
            let logp_all = log_softmax(self.logits(h), 2);
            if with_entropy {
                let p = softmax(logp_all.clone().detach(), 2);
                let ent = (p * logp_all.clone().detach()).sum_dim(2).neg();
                entropies.push(ent.reshape([batch, len]));
            }
            let picked = logp_all.gather(2, t.reshape([batch, len, 1]));
            logps.push(picked.reshape([batch, len]));
            start += len;
        }
        let entropy = with_entropy.then(|| Tensor::cat(entropies, 1));
        (Tensor::cat(logps, 1), entropy)
    }
}

/// A batch of (prompt, continuation) pairs laid out for scoring continuations: prompts
/// left-padded to `prompt_width`, continuations right-padded to `width`, so every
/// continuation starts at the same column.
#[derive(Debug, Clone)]
pub struct ContinuationBatch<B: Backend> {
    pub input_ids: Tensor<B, 2, Int>,
    pub mask: PaddingMask,
    /// The continuation tokens, `[batch, width]` (padding where a row is shorter).
    pub targets: Tensor<B, 2, Int>,
    /// 1.0 where `targets` holds a real token, `[batch, width]`.
    pub target_mask: Tensor<B, 2>,
    pub prompt_width: usize,
    pub width: usize,
}

impl<B: FusedOps> ContinuationBatch<B> {
    pub fn new(prompts: &[&[u32]], continuations: &[&[u32]], pad: u32, device: &B::Device) -> Self {
        assert_eq!(
            prompts.len(),
            continuations.len(),
            "one continuation per prompt"
        );
        let n = prompts.len();
        let prompt_width = prompts.iter().map(|p| p.len()).max().unwrap_or(0).max(1);
        let width = continuations
            .iter()
            .map(|c| c.len())
            .max()
            .unwrap_or(0)
            .max(1);
        let total = prompt_width + width;
        let mut ids = Vec::with_capacity(n * total);
        let mut valid = Vec::with_capacity(n * total);
        let mut targets = Vec::with_capacity(n * width);
        let mut target_mask = Vec::with_capacity(n * width);
        for (p, c) in prompts.iter().zip(continuations) {
            let lead = prompt_width - p.len();
            let tail = width - c.len();
            ids.extend(std::iter::repeat_n(i64::from(pad), lead));
            ids.extend(p.iter().map(|&t| i64::from(t)));
            ids.extend(c.iter().map(|&t| i64::from(t)));
            ids.extend(std::iter::repeat_n(i64::from(pad), tail));
            valid.extend(std::iter::repeat_n(false, lead));
            valid.extend(std::iter::repeat_n(true, p.len() + c.len()));
            valid.extend(std::iter::repeat_n(false, tail));
            targets.extend(c.iter().map(|&t| i64::from(t)));
            targets.extend(std::iter::repeat_n(i64::from(pad), tail));
            target_mask.extend(std::iter::repeat_n(1.0f32, c.len()));
            target_mask.extend(std::iter::repeat_n(0.0f32, tail));
        }
        Self {
            input_ids: Tensor::from_data(TensorData::new(ids, [n, total]), device),
            mask: PaddingMask {
                batch: n,
                seq: total,
                valid,
            },
            targets: Tensor::from_data(TensorData::new(targets, [n, width]), device),
            target_mask: Tensor::from_data(TensorData::new(target_mask, [n, width]), device),
            prompt_width,
            width,
        }
    }
}

impl<B: FusedOps> LlamaForCausalLM<B> {
    /// Log-probability (and optionally the entropy) of every continuation token given
    /// its prompt and the continuation before it, `[batch, width]`; padding positions
    /// hold meaningless values (multiply by `target_mask`).
    pub fn continuation_logprobs(
        &self,
        batch: &ContinuationBatch<B>,
        chunk: usize,
        with_entropy: bool,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let hidden = self.model.forward(batch.input_ids.clone(), &batch.mask);
        // The state at column i predicts the token at column i + 1.
        let hidden = hidden.narrow(1, batch.prompt_width - 1, batch.width);
        self.token_logprobs(hidden, batch.targets.clone(), chunk, with_entropy)
    }
}
