//! `rmtk info`: what a model folder holds, without running it.

use anyhow::Result;
use serde_json::{Value, json};

use crate::device::Cpu;
use crate::models::load::check_module;
use crate::models::{Family, LoadOptions, ModelDir};

/// Describe a model: architecture, dimensions, parameter count, stored dtype,
/// tokenizer and chat template.
#[derive(Debug, Clone, clap::Args)]
pub struct InfoConfig {
    /// A model folder in Hugging Face layout, or a hub id.
    #[arg(long)]
    pub model: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Estimate the memory of one reward-model step (or, with --for grpo, a GRPO step of
    /// this policy) instead, from config.json alone (no weights needed): weights,
    /// gradients, optimizer state, activations.
    #[arg(long)]
    pub memory: bool,
    /// With --memory: the compute dtype.
    #[arg(long, value_enum, default_value = "f32", requires = "memory")]
    pub dtype: crate::models::load::ComputeDtype,
    /// With --memory: LoRA rank (0: full fine-tuning).
    #[arg(long, default_value_t = 0, requires = "memory")]
    pub lora_r: usize,
    /// With --memory: LoRA targets (default PEFT's for the model type).
    #[arg(long, requires = "memory")]
    pub lora_target_modules: Option<String>,
    /// With --memory: preference pairs per micro-batch (two sequences each).
    #[arg(long, default_value_t = 8, requires = "memory")]
    pub batch_size: usize,
    /// With --memory: tokens per sequence.
    #[arg(long, default_value_t = 1024, requires = "memory")]
    pub max_length: usize,
    /// With --memory: what runs: a train-rm step, scoring (no gradients), or a GRPO step
    /// (rollouts and the update; --batch-size and --max-length are then unused).
    #[arg(
        long = "for",
        value_enum,
        default_value = "train-rm",
        requires = "memory"
    )]
    pub job: MemoryJob,
    /// With --memory: block-level activation checkpointing.
    #[arg(long, requires = "memory")]
    pub gradient_checkpointing: bool,
    /// With --for grpo: the longest prompt, in tokens.
    #[arg(long, default_value_t = 256, requires = "memory")]
    pub prompt_length: usize,
    /// With --for grpo: as grpo's.
    #[arg(long, default_value_t = 256, requires = "memory")]
    pub max_new_tokens: usize,
    /// With --for grpo: as grpo's.
    #[arg(long, default_value_t = 32, requires = "memory")]
    pub gen_batch_size: usize,
    /// With --for grpo: as grpo's.
    #[arg(long, default_value_t = 4, requires = "memory")]
    pub micro_batch_size: usize,
    /// With --for grpo: sequences per update (--batch-prompts x --num-generations /
    /// --mini-batches); above --micro-batch-size, gradients are accumulated.
    #[arg(long, default_value_t = 16, requires = "memory")]
    pub update_sequences: usize,
    /// With --for grpo: as grpo's.
    #[arg(long, default_value_t = 64, requires = "memory")]
    pub logprob_chunk: usize,
    /// With --for grpo: the KL coefficient; above 0 without LoRA a frozen reference copy
    /// is held.
    #[arg(long, default_value_t = 0.0, requires = "memory")]
    pub beta: f64,
    /// With --for grpo: the reward model (its weights, f32, are counted; any folder
    /// with its config.json).
    #[arg(long, requires = "memory")]
    pub reward_model: Option<String>,
}

/// What `info --memory` sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MemoryJob {
    TrainRm,
    Score,
    Grpo,
}

fn memory(cfg: &InfoConfig) -> Result<()> {
    use crate::train::memory::{Arch, Plan, estimate, gib};
    let model = ModelDir::open(&cfg.model)?;
    let arch = Arch::of(&model)?;
    let lora = match cfg.lora_r {
        0 => None,
        r => {
            let args = crate::models::peft::LoraArgs {
                lora_r: r,
                lora_target_modules: cfg.lora_target_modules.clone(),
                ..Default::default()
            };
            let c = args.config(&model)?.expect("r > 0");
            Some((r, c.targets, false))
        }
    };
    let grpo = cfg.job == MemoryJob::Grpo;
    // GRPO holds a separate reference with a KL term, unless LoRA's base is the reference.
    let reference = cfg.beta > 0.0 && cfg.lora_r == 0;
    if grpo && arch.family != Family::Llama {
        anyhow::bail!("{}: --for grpo needs a decoder (the policy)", cfg.model);
    }
    let tokens = if grpo {
        cfg.micro_batch_size * (cfg.prompt_length + cfg.max_new_tokens)
    } else {
        2 * cfg.batch_size * cfg.max_length
    };
    let plan = Plan {
        tokens,
        dtype_bytes: cfg.dtype.burn().size(),
        lora,
        checkpointing: cfg.gradient_checkpointing,
        grad_accum: if grpo {
            cfg.update_sequences.div_ceil(cfg.micro_batch_size.max(1))
        } else {
            1
        },
        training: cfg.job != MemoryJob::Score,
    };
    let e = if grpo {
        let reward_model = match &cfg.reward_model {
            Some(dir) => Arch::of(&ModelDir::open(dir)?)?.params as u64 * 4,
            None => 0,
        };
        crate::train::memory::estimate_grpo(
            &arch,
            &crate::train::memory::GrpoPlan {
                update: plan.clone(),
                micro_sequences: cfg.micro_batch_size,
                gen_sequences: cfg.gen_batch_size,
                prompt_tokens: cfg.prompt_length,
                new_tokens: cfg.max_new_tokens,
                logprob_chunk: cfg.logprob_chunk,
                reference,
                reward_model,
            },
        )
    } else {
        estimate(&arch, &plan)
    };
    let base = crate::train::memory::resident().unwrap_or(0);
    if cfg.json {
        let v = json!({
            "model": cfg.model,
            "job": match cfg.job {
                MemoryJob::TrainRm => "train-rm",
                MemoryJob::Score => "score",
                MemoryJob::Grpo => "grpo",
            },
            "parameters": arch.params,
            "tokens_per_micro_batch": plan.tokens,
            "dtype": cfg.dtype.name(),
            "lora_r": cfg.lora_r,
            "gradient_checkpointing": cfg.gradient_checkpointing,
            "bytes": {
                "weights": e.weights,
                "gradients": e.gradients,
                "optimizer": e.optimizer,
                "activations": e.activations,
                "working_set": e.working,
                "peak": e.total(),
                "process": base,
            },
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let (sequences, length) = if grpo {
        (cfg.micro_batch_size, cfg.prompt_length + cfg.max_new_tokens)
    } else {
        (2 * cfg.batch_size, cfg.max_length)
    };
    println!(
        "{}: {} parameters, {} layers; {} x {} tokens per micro-batch, {}{}{}{}",
        cfg.model,
        arch.params,
        arch.layers,
        sequences,
        length,
        cfg.dtype.name(),
        if cfg.lora_r > 0 {
            format!(", LoRA r {}", cfg.lora_r)
        } else {
            String::new()
        },
        if cfg.gradient_checkpointing {
            ", activation checkpointing"
        } else {
            ""
        },
        if grpo {
            format!(
                "; GRPO: {} sequences generated at once, {} per update{}",
                cfg.gen_batch_size,
                cfg.update_sequences,
                if reference { ", a reference copy" } else { "" }
            )
        } else {
            String::new()
        },
    );
    for (what, bytes) in [
        ("weights", e.weights),
        ("gradients", e.gradients),
        ("optimizer state", e.optimizer),
        ("activations", e.activations),
        ("working set", e.working),
        ("peak", e.total()),
    ] {
        println!("  {what:<16} {:>12}", gib(bytes));
    }
    println!("  (plus rmtk itself: about {} resident now)", gib(base));
    Ok(())
}

pub fn run(cfg: InfoConfig) -> Result<()> {
    if cfg.memory {
        return memory(&cfg);
    }
    let report = describe(&cfg.model)?;
    if cfg.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// Everything `info` reports, as JSON.
pub fn describe(spec: &str) -> Result<Value> {
    let model = ModelDir::open(spec)?;
    let weights = model.weights()?;
    // Every tensor the architecture needs, present with the shape config.json implies
    // (from the file header: nothing is read).
    let device = Default::default();
    let checked = match model.family {
        Family::Llama => {
            let mut cfg = model.llama_config()?;
            cfg.tie_word_embeddings = !weights.contains("lm_head.weight");
            check_module(
                &cfg.init_causal_lm::<Cpu>(&device),
                &weights,
                &LoadOptions::default(),
            )
        }
        Family::Bert => {
            let pooler = weights.names().any(|n| n.ends_with("pooler.dense.weight"));
            let options = LoadOptions {
                add_prefixes: vec!["bert.".into()],
                ..LoadOptions::default()
            };
            check_module(
                &model.bert_config()?.init::<Cpu>(pooler, &device),
                &weights,
                &options,
            )
        }
    }
    .map_err(|e| anyhow::anyhow!("model `{}`: {e}", model.name))?;
    let tok = if model.dir.join("tokenizer.json").is_file() {
        Some(model.tokenizer()?)
    } else {
        None
    };
    let stored_params = weights.num_elements();
    let dims = match model.family {
        Family::Llama => {
            let c = model.llama_config()?;
            json!({
                "hidden_size": c.hidden_size,
                "intermediate_size": c.intermediate_size,
                "layers": c.num_hidden_layers,
                "attention_heads": c.num_attention_heads,
                "kv_heads": c.num_key_value_heads,
                "head_dim": c.head_dim,
                "vocab_size": c.vocab_size,
                "max_position_embeddings": c.max_position_embeddings,
                "rope_theta": c.rope_theta,
                "rope_scaling": c.rope_scaling.as_ref().map(|s| format!("{s:?}")),
                "tied_embeddings": !weights.contains("lm_head.weight"),
                "qkv_bias": c.qkv_bias,
                "sliding_window": c.sliding_window,
            })
        }
        Family::Bert => {
            let c = model.bert_config()?;
            json!({
                "hidden_size": c.hidden_size,
                "intermediate_size": c.intermediate_size,
                "layers": c.num_hidden_layers,
                "attention_heads": c.num_attention_heads,
                "vocab_size": c.vocab_size,
                "max_position_embeddings": c.max_position_embeddings,
                "type_vocab_size": c.type_vocab_size,
                "activation": format!("{:?}", c.hidden_act),
                "pooler": weights.names().any(|n| n.ends_with("pooler.dense.weight")),
            })
        }
    };
    let template = tok.as_ref().and_then(|t| t.chat_template());
    Ok(json!({
        "model": model.name,
        "path": model.dir.display().to_string(),
        "family": match model.family { Family::Llama => "llama (decoder)", Family::Bert => "bert (encoder)" },
        "model_type": model.config.get("model_type"),
        "architectures": model.architectures(),
        "parameters": stored_params,
        "stored_dtype": weights.dominant_dtype().map(|d| format!("{d:?}")),
        "weights": weights.describe(),
        "tensors_checked": checked,
        "dimensions": dims,
        "tokenizer": tok.as_ref().map(|tok| json!({
            "vocab_size": tok.vocab_size(),
            "bos_token": tok.bos_token(),
            "eos_token": tok.eos_token(),
            "eos_ids": tok.eos_ids(),
            "pad_id": tok.pad_id(),
        })),
        "chat_template": template.map(|t| json!({
            "found": true,
            "chars": t.len(),
        })).unwrap_or(json!({"found": false})),
    }))
}

fn render(report: &Value) -> String {
    let mut out = String::new();
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    out += &format!("model          {}\n", s(&report["model"]));
    out += &format!("path           {}\n", s(&report["path"]));
    out += &format!("family         {}\n", s(&report["family"]));
    out += &format!("model_type     {}\n", s(&report["model_type"]));
    out += &format!("architectures  {}\n", s(&report["architectures"]));
    let params = report["parameters"].as_u64().unwrap_or(0);
    out += &format!("parameters     {params} ({:.1}M)\n", params as f64 / 1e6);
    out += &format!("stored dtype   {}\n", s(&report["stored_dtype"]));
    out += &format!(
        "weights        {} ({} tensors match config.json)\n",
        s(&report["weights"]),
        s(&report["tensors_checked"])
    );
    if let Some(dims) = report["dimensions"].as_object() {
        out += "dimensions\n";
        for (k, v) in dims {
            out += &format!("  {k:<24} {}\n", s(v));
        }
    }
    match report["tokenizer"].as_object() {
        Some(tok) => {
            out += "tokenizer\n";
            for (k, v) in tok {
                out += &format!("  {k:<24} {}\n", s(v));
            }
        }
        None => out += "tokenizer      none (no tokenizer.json)\n",
    }
    let found = report["chat_template"]["found"].as_bool().unwrap_or(false);
    out += &format!(
        "chat template  {}\n",
        if found {
            format!("yes ({} chars)", s(&report["chat_template"]["chars"]))
        } else {
            "none".into()
        }
    );
    out
}
