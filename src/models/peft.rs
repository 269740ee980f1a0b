//! LoRA adapters as PEFT writes and reads them: which linear layers an adapter targets
//! (PEFT's matching rules), and the adapter folder (`adapter_config.json` +
//! `adapter_model.safetensors`), so `PeftModel.from_pretrained` loads what rmtk saves and
//! rmtk loads what PEFT saves.
//!
//! Keys in `adapter_model.safetensors` are the model's parameter paths under
//! `base_model.model.`, the adapter's name removed (PEFT's `get_peft_model_state_dict`):
//! `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` (`[r, in]`),
//! `...lora_B.weight` (`[out, r]`); the reward head is a `modules_to_save` module, saved
//! whole under its own path (`base_model.model.score.weight`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::linear::{Linear, LoraShape};
use super::load::{self, NamedTensor, SaveDtype, Weights};

pub const ADAPTER_CONFIG: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";
/// PEFT's prefix of every saved key (`PeftModel.base_model.model`).
pub const KEY_PREFIX: &str = "base_model.model.";

/// Which linear layers get an adapter (`--lora-target-modules`, PEFT's `target_modules`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Every linear layer but the output head (PEFT's `all-linear`).
    AllLinear,
    /// Module names or dotted suffixes of module paths.
    Names(Vec<String>),
}

impl Targets {
    /// `all-linear`, or a comma-separated list of names (`q_proj,v_proj`).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("all-linear") {
            return Ok(Targets::AllLinear);
        }
        let names: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if names.is_empty() {
            bail!(
                "--lora-target-modules is empty: give module names (q_proj,v_proj) or all-linear"
            );
        }
        Ok(Targets::Names(names))
    }

    /// PEFT's default targets for a `model_type`
    /// (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`).
    pub fn peft_default(model_type: &str) -> Option<Self> {
        let names: &[&str] = match model_type {
            "llama" | "qwen2" | "mistral" => &["q_proj", "v_proj"],
            "bert" => &["query", "value"],
            _ => return None,
        };
        Some(Targets::Names(
            names.iter().map(|s| s.to_string()).collect(),
        ))
    }

    /// PEFT's rule for a list: a module matches a target equal to its whole path or to a
    /// dotted suffix of it (`q_proj` matches `model.layers.0.self_attn.q_proj`).
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Targets::AllLinear => true,
            Targets::Names(names) => names
                .iter()
                .any(|t| path == t || path.ends_with(&format!(".{t}"))),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Targets::AllLinear => json!("all-linear"),
            // PEFT keeps target_modules as a set and writes it as a list.
            Targets::Names(names) => json!(names.iter().collect::<BTreeSet<_>>()),
        }
    }

    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) if s == "all-linear" => Some(Targets::AllLinear),
            Value::String(s) => Some(Targets::Names(vec![s.clone()])),
            Value::Array(items) => Some(Targets::Names(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            )),
            _ => None,
        }
    }
}

/// An adapter's settings: PEFT's `LoraConfig` fields that change the computation.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    pub shape: LoraShape,
    pub targets: Targets,
}

/// The LoRA flags of the training commands (`train-rm`, `grpo`).
#[derive(Debug, Clone, Default, PartialEq, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct LoraArgs {
    /// LoRA rank: train low-rank adapters on the backbone's linear layers (the base
    /// frozen: no gradients, no optimizer state) instead of every weight; 0: full
    /// fine-tuning. The model is saved as a PEFT adapter folder.
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub lora_r: usize,
    /// LoRA alpha (scaling alpha / r; PEFT's default 8).
    #[arg(long, default_value_t = 8.0)]
    #[serde(default = "default_lora_alpha")]
    pub lora_alpha: f64,
    /// Dropout on the adapters' input (training only, from the run's seeded stream).
    #[arg(long, default_value_t = 0.0)]
    #[serde(default)]
    pub lora_dropout: f64,
    /// Linear layers to adapt: module names or dotted path suffixes, comma-separated
    /// (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj for decoders;
    /// query,key,value,dense for BERT), or all-linear; default PEFT's for the model type.
    #[arg(long)]
    #[serde(default)]
    pub lora_target_modules: Option<String>,
    /// rsLoRA: scaling alpha / sqrt(r).
    #[arg(long)]
    #[serde(default)]
    pub use_rslora: bool,
    /// With LoRA, also write the adapters merged into the base, a plain Hugging Face
    /// folder, to OUTPUT/merged.
    #[arg(long)]
    #[serde(default)]
    pub merge_lora: bool,
}

fn default_lora_alpha() -> f64 {
    8.0
}

impl LoraArgs {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.lora_dropout) {
            bail!("--lora-dropout must be in [0, 1)");
        }
        if !(self.lora_alpha > 0.0 && self.lora_alpha.is_finite()) {
            bail!("--lora-alpha must be a positive number");
        }
        if self.lora_r == 0
            && (self.lora_target_modules.is_some()
                || self.use_rslora
                || self.merge_lora
                || self.lora_dropout > 0.0)
        {
            bail!(
                "--lora-target-modules, --lora-dropout, --use-rslora and --merge-lora need --lora-r"
            );
        }
        Ok(())
    }

    /// The adapter settings for `model`, when `--lora-r` asks for one.
    pub fn config(&self, model: &super::ModelDir) -> Result<Option<LoraConfig>> {
        if self.lora_r == 0 {
            return Ok(None);
        }
        let targets = match &self.lora_target_modules {
            Some(t) => Targets::parse(t)?,
            None => {
                let model_type = model
                    .config
                    .get("model_type")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                Targets::peft_default(model_type).with_context(|| {
                    format!(
                        "model type `{model_type}` has no default LoRA targets: give --lora-target-modules"
                    )
                })?
            }
        };
        Ok(Some(LoraConfig {
            shape: LoraShape {
                r: self.lora_r,
                alpha: self.lora_alpha,
                dropout: self.lora_dropout,
                rslora: self.use_rslora,
            },
            targets,
        }))
    }
}

/// Attach a fresh adapter to every linear layer `cfg.targets` matches (the caller has
/// left out the output head). Returns the paths adapted; an error names the layers
/// there are when nothing matches.
pub fn attach<B: Backend>(
    linears: Vec<(String, &mut Linear<B>)>,
    cfg: &LoraConfig,
    seed: u64,
) -> Result<Vec<String>> {
    if cfg.shape.r == 0 {
        bail!("--lora-r must be at least 1");
    }
    let names = module_names(&linears);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut adapted = Vec::new();
    for (path, lin) in linears {
        if cfg.targets.matches(&path) {
            lin.attach_lora(&cfg.shape, &mut rng);
            adapted.push(path);
        }
    }
    if adapted.is_empty() {
        bail!(
            "--lora-target-modules {}: no linear layer of this model matches; its linear layers are named {} (or give all-linear)",
            cfg.targets.to_json(),
            names.join(", ")
        );
    }
    Ok(adapted)
}

/// The distinct last segments of the layers' paths, in first-seen order.
fn module_names<B: Backend>(linears: &[(String, &mut Linear<B>)]) -> Vec<String> {
    let mut seen = Vec::new();
    for (path, _) in linears {
        let last = path.rsplit('.').next().unwrap_or(path).to_string();
        if !seen.contains(&last) {
            seen.push(last);
        }
    }
    seen
}

/// What PEFT's `task_type` says the model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskType {
    SeqCls,
    CausalLm,
}

impl TaskType {
    fn as_str(self) -> &'static str {
        match self {
            TaskType::SeqCls => "SEQ_CLS",
            TaskType::CausalLm => "CAUSAL_LM",
        }
    }
}

/// What an adapter folder records beside the tensors.
pub struct AdapterMeta<'a> {
    pub config: &'a LoraConfig,
    /// `base_model_name_or_path`.
    pub base_model: &'a str,
    pub task: TaskType,
    /// Modules saved whole (the reward head).
    pub modules_to_save: &'a [&'a str],
}

/// Write an adapter folder: `adapter_config.json` and `adapter_model.safetensors` with
/// every adapted layer's factors and the `extra` tensors (the head, under its own key),
/// in PyTorch layout. `dtype` is the stored dtype of every tensor.
pub fn save_adapter<B: Backend>(
    dir: &Path,
    linears: &[(String, &Linear<B>)],
    extra: Vec<NamedTensor>,
    meta: &AdapterMeta,
    dtype: SaveDtype,
) -> Result<()> {
    let mut tensors = Vec::new();
    // PEFT expands `all-linear` into the names it matched and saves those.
    let mut matched = BTreeSet::new();
    for (path, lin) in linears {
        let (Some(a), Some(b)) = (&lin.lora_A, &lin.lora_B) else {
            continue;
        };
        matched.insert(path.rsplit('.').next().unwrap_or(path).to_string());
        for (name, factor) in [("lora_A", a), ("lora_B", b)] {
            let t = factor.weight.val().transpose();
            let dims = t.dims();
            tensors.push(NamedTensor {
                name: format!("{KEY_PREFIX}{path}.{name}.weight"),
                shape: dims.to_vec(),
                values: host(t),
            });
        }
    }
    if matched.is_empty() {
        bail!("the model has no LoRA adapter to save");
    }
    let shape = meta.config.shape;
    let targets = match &meta.config.targets {
        Targets::AllLinear => json!(matched),
        names => names.to_json(),
    };
    for t in extra {
        tensors.push(NamedTensor {
            name: format!("{KEY_PREFIX}{}", t.name),
            ..t
        });
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let bytes = load::encode_safetensors(&tensors, dtype)?;
    crate::util::write_atomic(&dir.join(ADAPTER_WEIGHTS), &bytes)
        .with_context(|| format!("writing {}", dir.join(ADAPTER_WEIGHTS).display()))?;
    let config = json!({
        "peft_type": "LORA",
        "task_type": meta.task.as_str(),
        "base_model_name_or_path": meta.base_model,
        "r": shape.r,
        "lora_alpha": shape.alpha,
        "lora_dropout": shape.dropout,
        "target_modules": targets,
        "use_rslora": shape.rslora,
        "modules_to_save": meta.modules_to_save,
        "bias": "none",
        "fan_in_fan_out": false,
        "init_lora_weights": true,
        "inference_mode": true,
        "use_dora": false,
        "revision": null,
        "library_name": "rmtk",
    });
    load::write_json(&dir.join(ADAPTER_CONFIG), &config)
        .with_context(|| format!("writing {}", dir.join(ADAPTER_CONFIG).display()))
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("float tensors convert to f32")
}

/// An adapter folder: its settings and the base model it was trained on.
#[derive(Debug, Clone)]
pub struct AdapterDir {
    pub dir: PathBuf,
    /// `base_model_name_or_path`.
    pub base_model: String,
    pub config: LoraConfig,
    pub modules_to_save: Vec<String>,
}

impl AdapterDir {
    /// Read `adapter_config.json` if the folder has one.
    pub fn open(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(ADAPTER_CONFIG);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", path.display()))?;
        let field = |name: &str| json.get(name).filter(|v| !v.is_null());
        let peft_type = field("peft_type").and_then(Value::as_str).unwrap_or("");
        if peft_type != "LORA" {
            bail!(
                "{}: peft_type is {:?}; rmtk reads LoRA adapters only",
                path.display(),
                field("peft_type")
            );
        }
        for unsupported in ["use_dora", "fan_in_fan_out"] {
            if field(unsupported).and_then(Value::as_bool) == Some(true) {
                bail!(
                    "{}: `{unsupported}: true` is not supported by rmtk",
                    path.display()
                );
            }
        }
        for patterned in ["rank_pattern", "alpha_pattern"] {
            if field(patterned)
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
            {
                bail!(
                    "{}: per-module `{patterned}` is not supported by rmtk",
                    path.display()
                );
            }
        }
        let r = field("r")
            .and_then(Value::as_u64)
            .with_context(|| format!("{}: no `r`", path.display()))? as usize;
        let alpha = field("lora_alpha")
            .and_then(Value::as_f64)
            .with_context(|| format!("{}: no `lora_alpha`", path.display()))?;
        let targets = field("target_modules")
            .and_then(Targets::from_json)
            .with_context(|| format!("{}: no `target_modules`", path.display()))?;
        let base_model = field("base_model_name_or_path")
            .and_then(Value::as_str)
            .with_context(|| format!("{}: no `base_model_name_or_path`", path.display()))?
            .to_string();
        let modules_to_save = field("modules_to_save")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            base_model,
            config: LoraConfig {
                shape: LoraShape {
                    r,
                    alpha,
                    dropout: field("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0),
                    rslora: field("use_rslora")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                },
                targets,
            },
            modules_to_save,
        }))
    }

    pub fn weights(&self) -> Result<Weights> {
        let path = self.dir.join(ADAPTER_WEIGHTS);
        if !path.is_file() {
            bail!(
                "{}: the adapter folder has no {ADAPTER_WEIGHTS}",
                self.dir.display()
            );
        }
        Ok(Weights::from_files(&[path])?)
    }

    /// Fill the model's linear layers with this adapter: every layer that has factors in
    /// the file gets them (and a frozen base). A factor whose shape does not fit its
    /// layer is an error naming the module and both shapes; factors for layers the model
    /// does not have are an error too.
    pub fn apply<B: Backend>(
        &self,
        linears: Vec<(String, &mut Linear<B>)>,
        weights: &Weights,
    ) -> Result<usize> {
        let shape = &self.config.shape;
        let mut used = BTreeSet::new();
        let mut count = 0;
        for (path, lin) in linears {
            let key_a = format!("{KEY_PREFIX}{path}.lora_A.weight");
            let key_b = format!("{KEY_PREFIX}{path}.lora_B.weight");
            let (Some(a), Some(b)) = (weights.read_f32(&key_a), weights.read_f32(&key_b)) else {
                continue;
            };
            let ((a, a_shape), (b, b_shape)) = (a?, b?);
            let want_a = vec![shape.r, lin.d_in()];
            let want_b = vec![lin.d_out(), shape.r];
            for (key, found, want) in [(&key_a, &a_shape, &want_a), (&key_b, &b_shape, &want_b)] {
                if found != want {
                    bail!(
                        "{}: `{key}` has shape {found:?}, but module `{path}` of the base model takes {want:?} (r = {}): the adapter was trained on another base",
                        self.dir.display(),
                        shape.r
                    );
                }
            }
            // PyTorch's [r, in] / [out, r] to burn's [in, r] / [r, out], on the host.
            let device = lin.weight.lazy_device();
            let a = load::transpose_2d(&a, a_shape[0], a_shape[1]);
            let b = load::transpose_2d(&b, b_shape[0], b_shape[1]);
            let a = Tensor::<B, 2>::from_data(TensorData::new(a, [want_a[1], shape.r]), &device);
            let b = Tensor::<B, 2>::from_data(TensorData::new(b, [shape.r, want_b[0]]), &device);
            lin.set_lora(a, b, shape);
            used.insert(key_a);
            used.insert(key_b);
            count += 1;
        }
        let stray: Vec<&str> = weights
            .names()
            .filter(|n| n.contains(".lora_") && !used.contains(*n))
            .collect();
        if let Some(first) = stray.first() {
            bail!(
                "{}: `{first}` (and {} more) names a module the base model does not have: the adapter was trained on another base",
                self.dir.display(),
                stray.len() - 1
            );
        }
        if count == 0 {
            bail!("{}: the adapter has no LoRA factors", self.dir.display());
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_peft_matching() {
        let t = Targets::parse("q_proj, v_proj").unwrap();
        assert!(t.matches("model.layers.0.self_attn.q_proj"));
        assert!(t.matches("q_proj"));
        assert!(!t.matches("model.layers.0.self_attn.qq_proj"));
        assert!(!t.matches("model.layers.0.mlp.up_proj"));
        let dotted = Targets::parse("attention.self.query").unwrap();
        assert!(dotted.matches("bert.encoder.layer.1.attention.self.query"));
        assert!(!dotted.matches("bert.encoder.layer.1.attention.self.key"));
        // BERT's `dense` matches the pooler too, as in PEFT.
        let dense = Targets::parse("dense").unwrap();
        assert!(dense.matches("bert.pooler.dense"));
        assert_eq!(Targets::parse("all-linear").unwrap(), Targets::AllLinear);
        assert!(Targets::parse(" , ").is_err());
        assert_eq!(
            Targets::peft_default("qwen2"),
            Some(Targets::Names(vec!["q_proj".into(), "v_proj".into()]))
        );
        assert_eq!(
            Targets::from_json(&t.to_json()),
            Some(Targets::Names(vec!["q_proj".into(), "v_proj".into()]))
        );
    }
}
