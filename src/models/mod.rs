//! Transformer backbones that load real Hugging Face checkpoints.
//!
//! One file per architecture (`llama.rs`, `bert.rs`), field names matching the
//! checkpoint keys; `load.rs` moves tensors in and out by those names; `tokenizer.rs`
//! and `generate.rs` turn text into ids and ids into text.

pub mod bert;
pub mod config;
pub mod generate;
pub mod hub;
pub mod kv_cache;
pub mod layers;
pub mod linear;
pub mod llama;
pub mod load;
pub mod peft;
pub mod reward;
pub mod tokenizer;

use burn::module::Module;
use burn::prelude::Backend;

use crate::kernels::FusedOps;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub use bert::{BertConfig, BertModel};
pub use config::Family;
pub use kv_cache::{KvCache, KvCacheSpec, SlotId};
pub use llama::{LlamaConfig, LlamaForCausalLM, PaddingMask};
pub use load::{LoadOptions, Weights};
pub use tokenizer::{Message, Tokenizer};

/// A model folder in Hugging Face layout, with its config read and its family known.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub dir: PathBuf,
    pub config: Value,
    pub family: Family,
    /// How the user named it (a folder or a hub id), for messages.
    pub name: String,
    /// When the user named a LoRA adapter folder: the adapter; `dir`, `config` and
    /// `family` are then its base model's.
    pub adapter: Option<peft::AdapterDir>,
    /// `--random-weights SEED`: the weights are drawn from this seed (see
    /// [`load::RandomInit`]) instead of read from the folder, which then needs only
    /// `config.json` and the tokenizer.
    pub random_weights: Option<u64>,
}

impl ModelDir {
    /// Resolve `--model` (a folder or a hub id) and read its config.json.
    pub fn open(spec: &str) -> Result<Self> {
        Self::open_with_base(spec, None)
    }

    /// As [`ModelDir::open`]; when `spec` is a LoRA adapter folder, `base` (if given)
    /// replaces the base its `adapter_config.json` names.
    pub fn open_with_base(spec: &str, base: Option<&str>) -> Result<Self> {
        let dir = hub::resolve(spec)?;
        Self::open_dir_with_base(&dir, spec, base)
    }

    /// A folder: a model, or a PEFT adapter folder (`adapter_config.json`, no
    /// `config.json`), opened on the base its config names.
    pub fn open_dir(dir: &Path, name: &str) -> Result<Self> {
        Self::open_dir_with_base(dir, name, None)
    }

    /// As [`ModelDir::open_dir`], an adapter's base replaced by `base` when given.
    pub fn open_dir_with_base(dir: &Path, name: &str, base: Option<&str>) -> Result<Self> {
        if !dir.join("config.json").is_file()
            && let Some(adapter) = peft::AdapterDir::open(dir)
                .with_context(|| format!("model `{name}`: reading its LoRA adapter"))?
        {
            let base_spec = base.unwrap_or(&adapter.base_model).to_string();
            let mut base = Self::open(&base_spec).with_context(|| {
                format!(
                    "model `{name}` is a LoRA adapter of `{base_spec}`, which could not be opened"
                )
            })?;
            if base.adapter.is_some() {
                bail!("model `{name}`: its base `{base_spec}` is itself an adapter");
            }
            base.name = name.to_string();
            base.adapter = Some(adapter);
            return Ok(base);
        }
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("model `{name}`: cannot read {}", path.display()))?;
        let config: Value = serde_json::from_str(&text)
            .with_context(|| format!("model `{name}`: {} is not valid JSON", path.display()))?;
        let family = config::family(&config)
            .with_context(|| format!("model `{name}`: {}", path.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            family,
            name: name.to_string(),
            adapter: None,
            random_weights: None,
        })
    }

    /// The folder the user named: the adapter's when there is one.
    pub fn home(&self) -> &Path {
        self.adapter.as_ref().map_or(&self.dir, |a| &a.dir)
    }

    fn config_context(&self) -> String {
        format!(
            "model `{}`: {}",
            self.name,
            self.dir.join("config.json").display()
        )
    }

    pub fn llama_config(&self) -> Result<LlamaConfig> {
        if self.family != Family::Llama {
            bail!(
                "model `{}` is an encoder (BERT family), but a decoder is needed here",
                self.name
            );
        }
        LlamaConfig::from_hf(&self.config).with_context(|| self.config_context())
    }

    pub fn bert_config(&self) -> Result<BertConfig> {
        if self.family != Family::Bert {
            bail!(
                "model `{}` is a decoder (Llama family), but an encoder is needed here",
                self.name
            );
        }
        BertConfig::from_hf(&self.config).with_context(|| self.config_context())
    }

    pub fn weights(&self) -> Result<Weights> {
        let Some(seed) = self.random_weights else {
            return Weights::from_dir(&self.dir).with_context(|| format!("model `{}`", self.name));
        };
        // The names and shapes of every tensor the family's full model has, from a
        // lazily initialised module (nothing is allocated).
        type Lazy = burn::backend::Flex;
        let device = Default::default();
        let shapes = match self.family {
            Family::Llama => {
                load::torch_shapes(&self.llama_config()?.init_causal_lm::<Lazy>(&device))
            }
            Family::Bert => load::torch_shapes(&self.bert_config()?.init::<Lazy>(true, &device)),
        };
        let std = self
            .config
            .get("initializer_range")
            .and_then(Value::as_f64)
            .unwrap_or(0.02) as f32;
        Ok(Weights::random(
            shapes,
            load::RandomInit { seed, std },
            format!("random weights for `{}` (seed {seed})", self.name),
        ))
    }

    /// The tokenizer, checked against the embedding size.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        let tok = Tokenizer::from_dir(&self.dir, &self.config)
            .with_context(|| format!("model `{}`", self.name))?;
        let vocab = config::opt_usize(&self.config, "vocab_size")
            .ok()
            .flatten()
            .unwrap_or(usize::MAX);
        if let Some(max) = tok.max_token_id()
            && max as usize >= vocab
        {
            bail!(
                "model `{}`: the tokenizer produces ids up to {max}, but the embedding has only {vocab} rows (config.json vocab_size); tokenizer.json does not belong to this model",
                self.name
            );
        }
        Ok(tok)
    }

    /// Names from `architectures` in config.json.
    pub fn architectures(&self) -> Vec<String> {
        self.config
            .get("architectures")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `load::load_module` with the model's name on its errors.
pub(crate) fn load_module_with<B: Backend, M: burn::module::Module<B>>(
    module: M,
    weights: &Weights,
    options: &LoadOptions,
    model: &ModelDir,
) -> Result<(M, Vec<String>)> {
    load::load_module(module, weights, options).with_context(|| format!("model `{}`", model.name))
}

/// Load a decoder as a causal LM.
pub fn load_causal_lm<B: FusedOps>(
    model: &ModelDir,
    device: &B::Device,
) -> Result<LlamaForCausalLM<B>> {
    load_causal_lm_in(model, device, burn::tensor::DType::F32)
}

/// Load a decoder as a causal LM with its weights in `dtype` (each tensor converted as it
/// is read; the model's activations then run in that dtype, its logits in f32). An
/// adapter's factors stay f32.
pub fn load_causal_lm_in<B: FusedOps>(
    model: &ModelDir,
    device: &B::Device,
    dtype: burn::tensor::DType,
) -> Result<LlamaForCausalLM<B>> {
    let cfg = model.llama_config()?;
    let weights = model.weights()?;
    let mut cfg = cfg;
    // A checkpoint without lm_head is tied whatever config.json says.
    if !weights.contains("lm_head.weight") {
        cfg.tie_word_embeddings = true;
    }
    let module = cfg.init_causal_lm::<B>(device);
    let options = LoadOptions {
        dtype: Some(dtype),
        ..LoadOptions::default()
    };
    let (mut module, _unused) = load_module_with(module, &weights, &options, model)?;
    if let Some(adapter) = &model.adapter {
        // The base frozen, the adapter's factors trainable (a resumed LoRA run).
        module = module.no_grad();
        adapter
            .apply(module.linears_mut(), &adapter.weights()?)
            .with_context(|| format!("model `{}`", model.name))?;
    }
    Ok(module)
}

/// Load an encoder; `with_pooler` loads `pooler.dense` too (it must then exist).
/// Checkpoints saved from a `BertFor*` wrapper (keys prefixed `bert.`) load as well.
pub fn load_bert<B: FusedOps>(
    model: &ModelDir,
    with_pooler: bool,
    device: &B::Device,
) -> Result<BertModel<B>> {
    let cfg = model.bert_config()?;
    let weights = model.weights()?;
    let options = LoadOptions {
        add_prefixes: vec!["bert.".into()],
        ..LoadOptions::default()
    };
    let (module, _unused) = load_module_with(
        cfg.init::<B>(with_pooler, device),
        &weights,
        &options,
        model,
    )?;
    Ok(module)
}

/// Save a causal LM as a Hugging Face folder (weights, config.json, tokenizer files,
/// generation_config.json), loadable by transformers' `AutoModelForCausalLM` and by
/// [`load_causal_lm`]. `base` is the folder it was loaded from (its config and tokenizer
/// are carried over).
/// With `lora`, the adapters alone as a PEFT adapter folder (task CAUSAL_LM) instead.
pub fn save_causal_lm<B: Backend>(
    lm: &LlamaForCausalLM<B>,
    dir: &Path,
    base: &ModelDir,
    dtype: load::SaveDtype,
    lora: Option<&peft::LoraConfig>,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Some(lora) = lora {
        let mut lm = lm.clone();
        let linears: Vec<(String, linear::Linear<B>)> = lm
            .linears_mut()
            .into_iter()
            .map(|(p, l)| (p, l.clone()))
            .collect();
        let refs: Vec<(String, &linear::Linear<B>)> =
            linears.iter().map(|(p, l)| (p.clone(), l)).collect();
        let base_model = reward::base_model_name(base);
        let meta = peft::AdapterMeta {
            config: lora,
            base_model: &base_model,
            task: peft::TaskType::CausalLm,
            modules_to_save: &[],
        };
        peft::save_adapter(dir, &refs, Vec::new(), &meta, dtype)
            .with_context(|| format!("writing the adapter to {}", dir.display()))?;
        return reward::copy_tokenizer_files(&base.dir, dir);
    }
    let tensors = load::module_tensors(lm);
    load::save_safetensors(dir, &tensors, dtype, load::DEFAULT_MAX_SHARD_BYTES)
        .with_context(|| format!("writing weights to {}", dir.display()))?;
    let mut config = base.config.clone();
    if let Some(obj) = config.as_object_mut() {
        let arch = match obj.get("model_type").and_then(Value::as_str) {
            Some("qwen2") => "Qwen2ForCausalLM",
            Some("mistral") => "MistralForCausalLM",
            _ => "LlamaForCausalLM",
        };
        obj.insert("architectures".into(), serde_json::json!([arch]));
        obj.insert(
            "tie_word_embeddings".into(),
            serde_json::json!(lm.lm_head.is_none()),
        );
        obj.insert("torch_dtype".into(), serde_json::json!(dtype.torch_name()));
        obj.remove("dtype");
        // A reward model's head settings do not belong to a causal LM.
        for key in ["num_labels", "id2label", "label2id", "problem_type"] {
            obj.remove(key);
        }
    }
    load::write_json(&dir.join("config.json"), &config)
        .with_context(|| format!("writing {}", dir.join("config.json").display()))?;
    reward::copy_tokenizer_files(&base.dir, dir)
}
