//! Scalar reward models in Hugging Face's sequence-classification layout, so that
//! `AutoModelForSequenceClassification` loads what rmtk saves and gives the same rewards:
//! - decoders (`LlamaForSequenceClassification`, Qwen2, Mistral): `model.*` plus
//!   `score.weight` (no bias), read at the last real token of each row;
//! - encoders (`BertForSequenceClassification`): `bert.*` (with the pooler) plus
//!   `classifier`, read from the pooled `[CLS]` output. The head has no bias in
//!   training; a zero `classifier.bias` is written so transformers finds one.

use crate::kernels::{FusedOps, like};
use std::path::Path;

use anyhow::{Context, Result};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde_json::{Value, json};

use super::bert::{BertModel, EncoderCtx};
use super::config::Family;
use super::linear::Linear;
use super::llama::{DecoderCtx, LlamaModel, PaddingMask};
use super::load::{self, LoadOptions, NamedTensor, SaveDtype};
use super::peft::{self, AdapterMeta, LoraConfig, TaskType};
use super::{ModelDir, load_module_with};

#[derive(Module, Debug)]
pub struct DecoderRewardModel<B: Backend> {
    pub model: LlamaModel<B>,
    pub score: Linear<B>,
}

#[derive(Module, Debug)]
pub struct EncoderRewardModel<B: Backend> {
    pub bert: BertModel<B>,
    pub classifier: Linear<B>,
}

/// A backbone with a scalar head.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum RewardModel<B: Backend> {
    Decoder(DecoderRewardModel<B>),
    Encoder(EncoderRewardModel<B>),
}

/// Token ids of a batch for a reward model.
#[derive(Debug, Clone)]
pub struct RewardBatch<B: Backend> {
    pub input_ids: Tensor<B, 2, Int>,
    /// Segment ids for encoders (0 for the prompt, 1 for the response); `None` for decoders.
    pub token_type_ids: Option<Tensor<B, 2, Int>>,
    pub mask: PaddingMask,
    /// Decoders: the position each row's score is read at; `None` reads the last real
    /// token of each row (by the mask).
    pub score_at: Option<Vec<usize>>,
}

impl<B: FusedOps> RewardBatch<B> {
    /// Right-pad token rows with `pad_id` into one batch. A decoder reads each row's
    /// score where transformers' `*ForSequenceClassification` reads it: at the rightmost
    /// token whose id is not `pad_id` (position 0 if there is none), so a saved model
    /// gives the same rewards there. A trailing EOS that doubles as the pad token is
    /// therefore skipped, as in TRL.
    pub fn from_rows(
        rows: &[Vec<u32>],
        token_types: Option<&[Vec<u32>]>,
        pad_id: u32,
        device: &B::Device,
    ) -> Self {
        let batch = rows.len();
        let seq = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch * seq);
        let mut valid = Vec::with_capacity(batch * seq);
        let mut score_at = Vec::with_capacity(batch);
        for row in rows {
            ids.extend(row.iter().map(|&t| i64::from(t)));
            ids.extend(std::iter::repeat_n(i64::from(pad_id), seq - row.len()));
            valid.extend(std::iter::repeat_n(true, row.len()));
            valid.extend(std::iter::repeat_n(false, seq - row.len()));
            score_at.push(row.iter().rposition(|&t| t != pad_id).unwrap_or(0));
        }
        let token_type_ids = token_types.map(|types| {
            let mut out = Vec::with_capacity(batch * seq);
            for (t, row) in types.iter().zip(rows) {
                debug_assert_eq!(t.len(), row.len(), "token types match the ids");
                out.extend(t.iter().map(|&v| i64::from(v)));
                out.extend(std::iter::repeat_n(0i64, seq - t.len()));
            }
            Tensor::<B, 2, Int>::from_data(TensorData::new(out, [batch, seq]), device)
        });
        Self {
            input_ids: Tensor::from_data(TensorData::new(ids, [batch, seq]), device),
            token_type_ids,
            mask: PaddingMask { batch, seq, valid },
            score_at: Some(score_at),
        }
    }

    /// Number of real (non-padding) tokens.
    pub fn num_tokens(&self) -> usize {
        self.mask.valid.iter().filter(|&&v| v).count()
    }
}

/// What the blocks of one batch share (see [`RewardModel::context`]).
pub enum RmCtx<B: Backend> {
    Decoder(DecoderCtx<B>),
    Encoder(EncoderCtx<B>),
}

/// Where a fresh head comes from.
#[derive(Debug, Clone, Copy)]
pub struct HeadInit {
    pub seed: u64,
}

impl<B: FusedOps> RewardModel<B> {
    /// A pretrained backbone (any supported family) with a new head drawn from
    /// N(0, 1/(hidden+1)), or, if the checkpoint already has a head, that head.
    pub fn from_pretrained(model: &ModelDir, init: HeadInit, device: &B::Device) -> Result<Self> {
        Self::from_pretrained_in(model, init, device, DType::F32)
    }

    /// As [`RewardModel::from_pretrained`], the backbone created and loaded directly in
    /// `dtype` (each tensor converted as it is read). The head stays an f32 parameter,
    /// and rewards come out in f32.
    pub fn from_pretrained_in(
        model: &ModelDir,
        init: HeadInit,
        device: &B::Device,
        dtype: DType,
    ) -> Result<Self> {
        let weights = model.weights()?;
        let head_key = match model.family {
            Family::Llama => "score.weight",
            Family::Bert => "classifier.weight",
        };
        let has_head = weights.contains(head_key);
        if has_head && model.adapter.is_some() {
            anyhow::bail!(
                "model `{}`: its base already has a reward head (`{head_key}`); an adapter's head belongs in the adapter",
                model.name
            );
        }
        let fresh = Self::init(model, init, device)?;
        let options = LoadOptions {
            allow_missing: if has_head {
                vec![]
            } else {
                vec![head_key.into()]
            },
            // A bare `BertModel` checkpoint has no `bert.` prefix.
            strip_prefixes: vec!["bert.".into()],
            add_prefixes: vec![],
            dtype: Some(dtype),
        };
        let (mut loaded, _unused) = load_module_with(fresh, &weights, &options, model)?;
        // The head is trained whole: an f32 master whatever the backbone's dtype.
        let head = loaded.head_mut();
        if head.weight.val().dtype() != DType::F32 {
            let (id, w, _) = head.weight.clone().consume();
            head.weight = Param::initialized(id, w.cast(DType::F32).detach().require_grad());
        }
        if let (RewardModel::Encoder(m), false) = (&loaded, has_head)
            && m.bert.pooler.is_none()
        {
            anyhow::bail!("model `{}`: the encoder has no pooler", model.name);
        }
        match &model.adapter {
            Some(adapter) => loaded.load_adapter(adapter),
            None => Ok(loaded),
        }
    }

    /// Mixed precision: the weights stay as they are (f32 masters) and the activations
    /// run in `dtype`; `None` leaves the model as it is.
    pub fn with_activations(mut self, dtype: Option<DType>) -> Self {
        if let Some(dtype) = dtype {
            match &mut self {
                RewardModel::Decoder(m) => m.model.set_activations(dtype),
                RewardModel::Encoder(m) => m.bert.set_activations(dtype),
            }
        }
        self
    }

    /// Put a PEFT adapter's factors and head into a model loaded from its base: the base
    /// frozen, the factors and the head trainable (a resumed LoRA run goes on from here).
    fn load_adapter(self, adapter: &peft::AdapterDir) -> Result<Self> {
        let weights = adapter.weights()?;
        let mut model = self.no_grad();
        adapter.apply(model.linears_mut(), &weights)?;
        let family = model.family();
        let head = model.head_mut();
        let key = format!("{}{}", peft::KEY_PREFIX, head_name(family));
        let weight_key = format!("{key}.weight");
        let (values, shape) = weights.read_f32(&weight_key).with_context(|| {
            format!(
                "{}: no reward head `{weight_key}` in the adapter (is it a sequence-classification adapter with the head in modules_to_save?)",
                adapter.dir.display()
            )
        })??;
        let hidden = head.d_in();
        if shape != [1, hidden] {
            anyhow::bail!(
                "{}: `{weight_key}` has shape {shape:?}, but the base model's head takes [1, {hidden}]",
                adapter.dir.display()
            );
        }
        let device = head.weight.lazy_device();
        head.weight = Param::initialized(
            load::param_id(&format!("{}.weight", head_name(family))),
            Tensor::from_data(TensorData::new(values, [hidden, 1]), &device).require_grad(),
        );
        Ok(model)
    }

    /// The backbone's linear layers under their checkpoint paths (the head left out:
    /// it is trained whole, PEFT's `modules_to_save`).
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear<B>)> {
        match self {
            RewardModel::Decoder(m) => m.model.linears_mut("model"),
            RewardModel::Encoder(m) => m.bert.linears_mut("bert"),
        }
    }

    fn head_mut(&mut self) -> &mut Linear<B> {
        match self {
            RewardModel::Decoder(m) => &mut m.score,
            RewardModel::Encoder(m) => &mut m.classifier,
        }
    }

    /// True when the backbone carries LoRA adapters.
    pub fn has_lora(&self) -> bool {
        match self {
            RewardModel::Decoder(m) => m.model.has_lora(),
            RewardModel::Encoder(m) => m.bert.has_lora(),
        }
    }

    /// LoRA on the backbone: every parameter frozen, fresh adapters (seeded) on the
    /// layers `cfg` targets, the head trainable. Returns the adapted layers' paths.
    pub fn apply_lora(self, cfg: &LoraConfig, seed: u64) -> Result<(Self, Vec<String>)> {
        let mut model = self.no_grad();
        let adapted = peft::attach(model.linears_mut(), cfg, seed)?;
        let head = model.head_mut();
        head.weight = head.weight.clone().set_require_grad(true);
        Ok((model, adapted))
    }

    /// The adapters folded into the weights: a plain model computing the same rewards.
    pub fn merge_lora(mut self) -> Self {
        for (_, lin) in self.linears_mut() {
            *lin = lin.clone().merged();
        }
        self
    }

    /// The architecture with random weights and a seeded head (tests, tiny models).
    pub fn init(model: &ModelDir, init: HeadInit, device: &B::Device) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(init.seed);
        Ok(match model.family {
            Family::Llama => {
                let cfg = model.llama_config()?;
                let score = head(cfg.hidden_size, &mut rng, device);
                RewardModel::Decoder(DecoderRewardModel {
                    model: cfg.init_model(device),
                    score,
                })
            }
            Family::Bert => {
                let cfg = model.bert_config()?;
                let classifier = head(cfg.hidden_size, &mut rng, device);
                RewardModel::Encoder(EncoderRewardModel {
                    bert: cfg.init(true, device),
                    classifier,
                })
            }
        })
    }

    pub fn family(&self) -> Family {
        match self {
            RewardModel::Decoder(_) => Family::Llama,
            RewardModel::Encoder(_) => Family::Bert,
        }
    }

    pub fn hidden_size(&self) -> usize {
        match self {
            RewardModel::Decoder(m) => m.model.hidden_size(),
            RewardModel::Encoder(m) => m.bert.hidden_size(),
        }
    }

    /// One reward per row, `[batch]`.
    pub fn forward(&self, batch: &RewardBatch<B>) -> Tensor<B, 1> {
        let ctx = self.context(batch);
        let mut x = self.embed(batch);
        for i in 0..self.num_blocks() {
            x = self.block(i, x, &ctx);
        }
        self.top(x, batch)
    }

    /// The backbone's blocks (layers). `forward` is `embed`, each `block`, then `top`;
    /// activation checkpointing (`train::checkpointing`) replays one block at a time.
    pub fn num_blocks(&self) -> usize {
        match self {
            RewardModel::Decoder(m) => m.model.layers.len(),
            RewardModel::Encoder(m) => m.bert.encoder.layer.len(),
        }
    }

    /// What every block of `batch` shares (positions, masks).
    pub fn context(&self, batch: &RewardBatch<B>) -> RmCtx<B> {
        let device = batch.input_ids.device();
        match self {
            RewardModel::Decoder(m) => RmCtx::Decoder(m.model.context(&batch.mask, &device)),
            RewardModel::Encoder(m) => RmCtx::Encoder(m.bert.context(&batch.mask, &device)),
        }
    }

    /// The first block's input.
    pub fn embed(&self, batch: &RewardBatch<B>) -> Tensor<B, 3> {
        match self {
            RewardModel::Decoder(m) => m.model.embed(batch.input_ids.clone()),
            RewardModel::Encoder(m) => m.bert.embed(
                batch.input_ids.clone(),
                batch.token_type_ids.clone(),
                &batch.mask,
            ),
        }
    }

    /// Block `i` on the residual stream.
    pub fn block(&self, i: usize, x: Tensor<B, 3>, ctx: &RmCtx<B>) -> Tensor<B, 3> {
        match (self, ctx) {
            (RewardModel::Decoder(m), RmCtx::Decoder(c)) => m.model.block(i, x, c),
            (RewardModel::Encoder(m), RmCtx::Encoder(c)) => m.bert.block(i, x, c),
            _ => panic!("a context built by another kind of model"),
        }
    }

    /// From the last block's output to the rewards (f32): the final norm and the last
    /// real token (decoders) or the pooler (encoders), then the head.
    pub fn top(&self, x: Tensor<B, 3>, batch: &RewardBatch<B>) -> Tensor<B, 1> {
        match self {
            RewardModel::Decoder(m) => {
                let hidden = m.model.finish(x);
                let [b, s, h] = hidden.dims();
                let last: Vec<i64> = (0..b)
                    .map(|r| {
                        let idx = match &batch.score_at {
                            Some(at) => at[r],
                            None => batch.mask.row(r).iter().rposition(|&v| v).unwrap_or(s - 1),
                        };
                        (r * s + idx) as i64
                    })
                    .collect();
                let idx =
                    Tensor::<B, 1, Int>::from_data(TensorData::new(last, [b]), &hidden.device());
                let picked = hidden.reshape([b * s, h]).select(0, idx);
                like(m.score.forward(picked).reshape([b]), DType::F32)
            }
            RewardModel::Encoder(m) => {
                let pooled = m
                    .bert
                    .pool(x)
                    .expect("reward encoders are built with a pooler");
                let b = pooled.dims()[0];
                like(m.classifier.forward(pooled).reshape([b]), DType::F32)
            }
        }
    }

    /// Save in Hugging Face sequence-classification layout: weights, config.json with
    /// `num_labels: 1` and the matching architecture, and the base model's tokenizer
    /// files. `pad_token_id` is the id rmtk pads with, which is how transformers finds
    /// the last real token of a decoder row.
    pub fn save_pretrained(
        &self,
        dir: &Path,
        base: &ModelDir,
        pad_token_id: u32,
        dtype: SaveDtype,
        lora: Option<&LoraConfig>,
    ) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some(lora) = lora {
            return self.save_adapter(dir, base, lora, dtype);
        }
        let mut tensors = load::module_tensors(self);
        if let RewardModel::Encoder(_) = self {
            tensors.push(load::SaveTensor::new(
                "classifier.bias".into(),
                vec![1],
                || vec![0.0],
            ));
        }
        load::save_safetensors(dir, &tensors, dtype, load::DEFAULT_MAX_SHARD_BYTES)
            .with_context(|| format!("writing weights to {}", dir.display()))?;
        let config = seq_cls_config(&base.config, self.family(), pad_token_id, dtype);
        load::write_json(&dir.join("config.json"), &config)
            .with_context(|| format!("writing {}", dir.join("config.json").display()))?;
        copy_tokenizer_files(&base.dir, dir)?;
        Ok(())
    }
}

impl<B: FusedOps> RewardModel<B> {
    /// A PEFT adapter folder (`adapter_config.json`, `adapter_model.safetensors` with the
    /// factors and the head) plus the base's tokenizer files.
    fn save_adapter(
        &self,
        dir: &Path,
        base: &ModelDir,
        lora: &LoraConfig,
        dtype: SaveDtype,
    ) -> Result<()> {
        let family = self.family();
        let mut this = self.clone();
        let linears: Vec<(String, Linear<B>)> = this
            .linears_mut()
            .into_iter()
            .map(|(p, l)| (p, l.clone()))
            .collect();
        let refs: Vec<(String, &Linear<B>)> = linears.iter().map(|(p, l)| (p.clone(), l)).collect();
        let head = this.head_mut();
        let h = head.d_in();
        let values = head
            .weight
            .val()
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32 head");
        let name = head_name(family);
        let mut extra = vec![NamedTensor {
            name: format!("{name}.weight"),
            shape: vec![1, h],
            values,
        }];
        if family == Family::Bert {
            extra.push(NamedTensor {
                name: format!("{name}.bias"),
                shape: vec![1],
                values: vec![0.0],
            });
        }
        let base_model = base_model_name(base);
        let meta = AdapterMeta {
            config: lora,
            base_model: &base_model,
            task: TaskType::SeqCls,
            modules_to_save: &["classifier", "score"],
        };
        peft::save_adapter(dir, &refs, extra, &meta, dtype)
            .with_context(|| format!("writing the adapter to {}", dir.display()))?;
        copy_tokenizer_files(&base.dir, dir)
    }
}

/// The head's module name (`score` for decoders, `classifier` for BERT).
pub fn head_name(family: Family) -> &'static str {
    match family {
        Family::Llama => "score",
        Family::Bert => "classifier",
    }
}

/// How an adapter names its base: the hub id the user gave, or the folder's absolute
/// path (a relative one would break when the adapter is used from elsewhere).
pub(crate) fn base_model_name(base: &ModelDir) -> String {
    let named = Path::new(&base.name);
    if named.is_dir() {
        std::fs::canonicalize(named)
            .unwrap_or_else(|_| named.to_path_buf())
            .display()
            .to_string()
    } else {
        base.name.clone()
    }
}

fn head<B: FusedOps>(hidden: usize, rng: &mut ChaCha8Rng, device: &B::Device) -> Linear<B> {
    let std = 1.0 / ((hidden + 1) as f64).sqrt();
    let normal = Normal::new(0.0, std).expect("std is positive");
    let values: Vec<f32> = (0..hidden).map(|_| normal.sample(rng) as f32).collect();
    Linear::from_weight(load::new_param(Tensor::from_data(
        TensorData::new(values, [hidden, 1]),
        device,
    )))
}

/// config.json of a sequence-classification model derived from its base config.
pub fn seq_cls_config(base: &Value, family: Family, pad_token_id: u32, dtype: SaveDtype) -> Value {
    let mut config = base.clone();
    let arch = match family {
        Family::Llama => {
            let model_type = base
                .get("model_type")
                .and_then(Value::as_str)
                .unwrap_or("llama");
            match model_type {
                "qwen2" => "Qwen2ForSequenceClassification",
                "mistral" => "MistralForSequenceClassification",
                _ => "LlamaForSequenceClassification",
            }
        }
        Family::Bert => "BertForSequenceClassification",
    };
    if let Some(obj) = config.as_object_mut() {
        obj.insert("architectures".into(), json!([arch]));
        obj.insert("num_labels".into(), json!(1));
        obj.insert("id2label".into(), json!({"0": "LABEL_0"}));
        obj.insert("label2id".into(), json!({"LABEL_0": 0}));
        obj.insert("pad_token_id".into(), json!(pad_token_id));
        obj.insert("problem_type".into(), json!("regression"));
        obj.insert("torch_dtype".into(), json!(dtype.torch_name()));
        obj.remove("dtype");
    }
    config
}

/// Copy the tokenizer files of a model folder (those that exist) into `dir`.
pub fn copy_tokenizer_files(from: &Path, dir: &Path) -> Result<()> {
    if from == dir {
        return Ok(());
    }
    for name in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "chat_template.jinja",
        "generation_config.json",
    ] {
        let src = from.join(name);
        if src.is_file() {
            let bytes =
                std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
            crate::util::write_atomic(&dir.join(name), &bytes)
                .with_context(|| format!("writing {}", dir.join(name).display()))?;
        }
    }
    Ok(())
}
