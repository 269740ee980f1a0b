//! `rmtk grpo`'s options: the command line, or a TOML file with the same names
//! (`--config run.toml`; flags given on the command line override the file).
//!
//! Defaults follow the paper's setting (docs/rlmr.md: 8 samples per prompt,
//! temperature 1.0, learning rate 1e-6, gamma 1) and DAPO's (clip 0.2 / 0.28,
//! token-mean loss, no KL), scaled down where the paper's numbers only make sense on
//! a cluster (batch 8 prompts, 256 new tokens).

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::Serialize;

use super::loss::Aggregation;
use super::mixing::{AdvantageScale, Mixing};
use crate::device::DeviceSpec;
use crate::models::load::{ComputeDtype, SaveDtype};
use crate::models::peft::LoraArgs;
use crate::train::ScheduleKind;
use crate::verify::{Mode, VerifierArgs};

/// How completions cut at `--max-new-tokens` are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Overlong {
    /// Like any other completion.
    Keep,
    /// Kept in their group's statistics, but their tokens carry no loss (DAPO's
    /// overlong filtering).
    Mask,
    /// DAPO's soft overlong punishment added to the writing reward: 0 up to
    /// `max_new_tokens - overlong_cache`, falling linearly to `-overlong_penalty`.
    Soft,
}

/// GRPO policy training with RLMR's dynamic mixed reward.
#[derive(Debug, Clone, clap::Args)]
pub struct GrpoConfig {
    /// A TOML file with any of these options (names as the flags, `-` or `_`);
    /// flags on the command line override it.
    #[arg(long)]
    pub config: Option<PathBuf>,

    // ---- Inputs
    /// The policy to train: a decoder folder in Hugging Face layout or a hub id.
    #[arg(long, required_unless_present = "resume")]
    pub policy: Option<String>,
    /// Draw the policy's weights at random (seeded by --seed; norms 1, biases 0, the rest
    /// with the config's `initializer_range`) instead of reading them: --policy then needs
    /// only `config.json` and the tokenizer. For memory and speed benchmarks.
    #[arg(long)]
    pub random_weights: bool,
    /// The dtype the policy and its reference compute in (rollouts, log-probs, the
    /// update). With LoRA the frozen base is created and loaded directly in it, the
    /// factors f32; full fine-tuning keeps f32 master weights (the reference is held in
    /// the dtype). f16 scales the loss dynamically. Logits are f32.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: ComputeDtype,
    /// f16: the loss scale to start from (a power of two; PyTorch's default). It halves on
    /// every overflowed update and doubles after 2000 finite ones in a row.
    #[arg(long, default_value_t = crate::train::loss_scale::INIT_SCALE)]
    pub initial_loss_scale: f32,
    /// The frozen reference model for the KL term (default: the initial policy; not
    /// loaded when --beta is 0).
    #[arg(long)]
    pub reference: Option<String>,
    /// The writing reward model: an rmtk reward model, or any Hugging Face
    /// sequence-classification checkpoint of a supported backbone. Optional with
    /// --mixing constraint-only, where it only scores for the metrics. It tokenizes
    /// the prompt and response itself, with its own tokenizer.
    #[arg(long)]
    pub reward_model: Option<String>,
    /// The writing reward from an HTTP endpoint instead of a reward model: a POST of
    /// `{"query", "prompts", "labels", "responses"}` lists answered by `{"rewards": [...]}`
    /// (OpenRLHF's `--remote_rm_url` shape; see the README).
    #[arg(long, conflicts_with = "reward_model")]
    pub reward_url: Option<String>,
    /// Training prompts (parquet or JSONL): a prompt as text or messages, optional
    /// IFEval-style `instruction_id_list` + `kwargs`, optional free-text `constraints`.
    #[arg(long, num_args = 1.., required_unless_present = "resume")]
    pub prompts: Vec<PathBuf>,
    /// Held-out prompts, evaluated every --eval-every steps, at the start and at the end.
    #[arg(long, num_args = 1..)]
    pub eval_prompts: Vec<PathBuf>,
    #[arg(long, default_value = "prompt")]
    pub prompt_column: String,
    #[arg(long, default_value = "instruction_id_list")]
    pub ids_column: String,
    #[arg(long, default_value = "kwargs")]
    pub kwargs_column: String,
    #[arg(long, default_value = "constraints")]
    pub constraints_column: String,
    /// The rubric column (optional in the files): items {criterion, weight, hard,
    /// check}; hard items gate like constraints, soft items give a score in [0, 1].
    #[arg(long, default_value = "rubric")]
    pub rubric_column: String,
    /// Read no rubric from the prompt files (a `rubric` column of another kind).
    #[arg(long)]
    pub no_rubric: bool,
    /// Feed prompts to the policy as raw text instead of through its chat template.
    #[arg(long)]
    pub no_chat: bool,
    /// A system message placed before every prompt (chat template only).
    #[arg(long)]
    pub system: Option<String>,
    /// The verifier (as `rmtk verify`): rules, a judge on Burn, a remote judge, hybrid.
    #[command(flatten)]
    pub verifier: VerifierArgs,

    // ---- Rollout
    /// Completions per prompt (the group size n).
    #[arg(long, default_value_t = 8)]
    pub num_generations: usize,
    /// Groups (prompts) per step, after filtering.
    #[arg(long, default_value_t = 8)]
    pub batch_prompts: usize,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// 0 disables top-k.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// Sequences decoded at once.
    #[arg(long, default_value_t = 32)]
    pub gen_batch_size: usize,

    // ---- Rewards
    #[arg(long, value_enum, default_value = "rlmr")]
    pub mixing: Mixing,
    /// RLMR's minimum gap between a violator and its group's mean reward.
    #[arg(long, default_value_t = 1.0)]
    pub gamma: f64,
    /// --mixing fixed: reward = writing + w * pass; --mixing gdpo: the verdict's weight
    /// (the writing reward's is 1).
    #[arg(long, default_value_t = 1.0)]
    pub constraint_weight: f64,
    /// The weight of a prompt's rubric score (its soft items, in [0, 1]), added to the
    /// writing reward before mixing (--mixing gdpo: the normalised score's weight); 0
    /// ignores it.
    #[arg(long, default_value_t = 1.0)]
    pub rubric_weight: f64,
    #[arg(long, value_enum, default_value = "keep")]
    pub overlong: Overlong,
    /// --overlong soft: the length of the linear ramp before --max-new-tokens.
    #[arg(long, default_value_t = 64)]
    pub overlong_cache: usize,
    /// --overlong soft: the penalty at --max-new-tokens.
    #[arg(long, default_value_t = 1.0)]
    pub overlong_penalty: f64,
    /// Sequences per reward-model forward pass.
    #[arg(long, default_value_t = 16)]
    pub rm_batch_size: usize,
    /// Longest reward-model input (default: the reward model's own setting).
    #[arg(long)]
    pub rm_max_length: Option<usize>,

    // ---- Filtering and resampling (DAPO's dynamic sampling)
    /// Drop groups whose every mixed reward is above this.
    #[arg(long, allow_hyphen_values = true)]
    pub filter_high: Option<f64>,
    /// Drop groups whose every mixed reward is below this.
    #[arg(long, allow_hyphen_values = true)]
    pub filter_low: Option<f64>,
    /// Drop groups whose mixed rewards have a standard deviation below this.
    #[arg(long, default_value_t = 1e-6)]
    pub filter_std_eps: f64,
    /// Generation rounds per step at most: each round samples new prompts for the
    /// groups the filter dropped. 1 disables resampling.
    #[arg(long, default_value_t = 3)]
    pub max_generation_rounds: usize,

    // ---- Advantages and loss
    /// std: (r - mean) / (std + eps) (GRPO); none: r - mean (Dr. GRPO).
    #[arg(long, value_enum, default_value = "std")]
    pub advantage_scale: AdvantageScale,
    #[arg(long, default_value_t = 1e-4)]
    pub advantage_eps: f64,
    #[arg(long, default_value_t = 0.2)]
    pub clip_low: f64,
    /// DAPO's clip-higher.
    #[arg(long, default_value_t = 0.28)]
    pub clip_high: f64,
    /// KL coefficient (k3 estimator) to the reference; 0 skips the reference model.
    #[arg(long, default_value_t = 0.0)]
    pub beta: f64,
    #[arg(long, value_enum, default_value = "token-mean")]
    pub loss_agg: Aggregation,
    /// Passes over each rollout batch (with the rollout's log-probabilities as the old
    /// policy's).
    #[arg(long, default_value_t = 1)]
    pub ppo_epochs: usize,
    /// Optimizer updates per pass: the rollout batch is split into this many parts.
    #[arg(long, default_value_t = 1)]
    pub mini_batches: usize,
    /// Sequences per forward/backward pass; an update accumulates the gradients of its
    /// micro-batches (the loss normalised over the whole update).
    #[arg(long, default_value_t = 4)]
    pub micro_batch_size: usize,
    /// Positions whose vocabulary logits exist at once when computing log-probabilities.
    #[arg(long, default_value_t = 64)]
    pub logprob_chunk: usize,
    /// Block-level activation checkpointing in the update (as in train-rm): the forward
    /// pass keeps only each block's input and the backward pass replays one block at a
    /// time; activation memory of one layer instead of all, for about one more forward
    /// pass. LoRA dropout then draws its masks per block.
    #[arg(long)]
    pub gradient_checkpointing: bool,

    // ---- Optimizer
    #[arg(long, default_value_t = 1e-6)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 0.9)]
    pub adam_beta1: f64,
    #[arg(long, default_value_t = 0.999)]
    pub adam_beta2: f64,
    #[arg(long, default_value_t = 1e-8)]
    pub adam_eps: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    #[arg(long, value_enum, default_value = "constant")]
    pub lr_scheduler: ScheduleKind,
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: u64,

    // ---- Run
    /// Steps (rollout + update) to make.
    #[arg(long, default_value_t = 100)]
    pub max_steps: u64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, required_unless_present = "resume")]
    pub output: Option<PathBuf>,
    /// Continue the run in this folder from its latest checkpoint, with its settings.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Save the policy (and optimizer, RNG, prompt order) every N steps (0: only at the end).
    #[arg(long, default_value_t = 25)]
    pub save_every: u64,
    #[arg(long)]
    pub save_total_limit: Option<usize>,
    /// Dtype of the final policy's weights (checkpoints are f32).
    #[arg(long, value_enum, default_value = "f32")]
    pub save_dtype: SaveDtype,
    /// LoRA on the policy (the KL reference is then the base with the adapters off:
    /// no second copy of the weights).
    #[command(flatten)]
    pub lora: LoraArgs,
    /// Rollouts from an OpenAI-compatible server.
    #[command(flatten)]
    pub rollout: super::remote::RolloutArgs,
    /// Evaluate on --eval-prompts every N steps (0: at the start and the end only).
    #[arg(long, default_value_t = 0)]
    pub eval_every: u64,
    /// Completions per held-out prompt.
    #[arg(long, default_value_t = 2)]
    pub eval_num_generations: usize,
    /// Sampling temperature of the evaluation (default: --temperature; 0 is greedy).
    #[arg(long)]
    pub eval_temperature: Option<f32>,
    /// Completions written to OUTPUT/samples.jsonl per step.
    #[arg(long, default_value_t = 4)]
    pub samples_per_step: usize,
    /// cpu, cuda or cuda:N (policy, reference and reward model).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

impl GrpoConfig {
    pub fn validate(&self) -> Result<()> {
        crate::train::LossScale::check_initial(self.initial_loss_scale)?;
        if self.num_generations < 2 {
            bail!("--num-generations must be at least 2: GRPO compares completions of a prompt");
        }
        for (v, name) in [
            (self.batch_prompts, "--batch-prompts"),
            (self.gen_batch_size, "--gen-batch-size"),
            (self.rm_batch_size, "--rm-batch-size"),
            (self.max_generation_rounds, "--max-generation-rounds"),
            (self.ppo_epochs, "--ppo-epochs"),
            (self.mini_batches, "--mini-batches"),
            (self.micro_batch_size, "--micro-batch-size"),
            (self.max_new_tokens, "--max-new-tokens"),
            (self.eval_num_generations, "--eval-num-generations"),
        ] {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if self.max_steps == 0 {
            bail!("--max-steps must be at least 1");
        }
        if self.mini_batches > self.batch_prompts * self.num_generations {
            bail!("--mini-batches is more than the sequences of a step");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("--lr must be a positive number");
        }
        if !(0.0..1.0).contains(&self.adam_beta1) || !(0.0..1.0).contains(&self.adam_beta2) {
            bail!("--adam-beta1 and --adam-beta2 must be in [0, 1)");
        }
        if self.clip_low < 0.0 || self.clip_low >= 1.0 || self.clip_high < 0.0 {
            bail!("--clip-low must be in [0, 1) and --clip-high not negative");
        }
        if self.beta < 0.0 || self.gamma < 0.0 {
            bail!("--beta and --gamma must not be negative");
        }
        if self.temperature < 0.0 || !(self.top_p > 0.0 && self.top_p <= 1.0) {
            bail!("--temperature must be >= 0 and --top-p in (0, 1]");
        }
        if self.temperature == 0.0 {
            bail!(
                "--temperature 0 (greedy) makes every completion of a group the same: GRPO needs sampling"
            );
        }
        if let (Some(lo), Some(hi)) = (self.filter_low, self.filter_high)
            && lo >= hi
        {
            bail!("--filter-low {lo} must be below --filter-high {hi}");
        }
        if self.mixing != Mixing::ConstraintOnly
            && self.reward_model.is_none()
            && self.reward_url.is_none()
        {
            bail!(
                "--reward-model (or --reward-url) is required with --mixing {} (train one with `rmtk train-rm`)",
                mixing_name(self.mixing)
            );
        }
        if self.reward_model.is_some() && self.reward_url.is_some() {
            bail!("--reward-model and --reward-url are two writing rewards: give one");
        }
        if !(self.rubric_weight.is_finite() && self.rubric_weight >= 0.0) {
            bail!("--rubric-weight must be a number >= 0");
        }
        if self.overlong == Overlong::Soft && self.overlong_cache > self.max_new_tokens {
            bail!("--overlong-cache must not exceed --max-new-tokens");
        }
        self.verifier.validate()?;
        self.lora.validate()?;
        // A LoRA run: new adapters, or an adapter folder as the policy.
        let adapter_policy = self.policy.as_deref().is_some_and(|p| {
            std::path::Path::new(p)
                .join("adapter_config.json")
                .is_file()
        });
        self.rollout
            .validate(self.lora.lora_r > 0 || adapter_policy || self.resume.is_some())?;
        Ok(())
    }

    /// The reward endpoint's options (the API key read from its variable), with
    /// --reward-url.
    pub fn reward_url_options(&self) -> Option<crate::verify::reward_url::RewardUrlOptions> {
        let url = self.reward_url.as_deref()?;
        Some(self.verifier.reward.options(url))
    }

    pub fn output(&self) -> &std::path::Path {
        self.output.as_deref().expect("resolved before use")
    }

    /// Whether prompts without listed constraints can be verified (a judge reads them
    /// from the prompt).
    pub fn has_judge(&self) -> bool {
        self.verifier.mode() != Mode::Rules
    }
}

pub fn mixing_name(m: Mixing) -> &'static str {
    match m {
        Mixing::Rlmr => "rlmr",
        Mixing::Fixed => "fixed",
        Mixing::WritingOnly => "writing-only",
        Mixing::ConstraintOnly => "constraint-only",
        Mixing::Gdpo => "gdpo",
    }
}

/// Where the `grpo` subcommand stands: right after the program name (rmtk has no
/// global options), never a value such as `--prompt grpo` of another command.
pub fn grpo_position(args: &[std::ffi::OsString]) -> Option<usize> {
    (args.get(1).is_some_and(|a| a == "grpo")).then_some(1)
}

/// Expands `--config FILE` of the `grpo` subcommand into flags placed before the ones
/// given on the command line (which then override them: the subcommand accepts a flag
/// given twice, the last one winning). Keys are flag names (`max_new_tokens` or
/// `max-new-tokens`); `true` booleans become bare flags, `false` ones are left out,
/// arrays give several values.
pub fn expand_config_file(args: Vec<std::ffi::OsString>) -> Result<Vec<std::ffi::OsString>> {
    let Some(sub) = grpo_position(&args) else {
        return Ok(args);
    };
    let Some(at) = args.iter().skip(sub + 1).position(|a| a == "--config") else {
        return Ok(args);
    };
    let at = sub + 1 + at;
    let Some(path) = args.get(at + 1) else {
        bail!("--config needs a file");
    };
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| anyhow::anyhow!("--config {}: not valid TOML: {e}", path.display()))?;
    let mut flags: Vec<std::ffi::OsString> = Vec::new();
    for (key, value) in &table {
        let flag = format!("--{}", key.replace('_', "-"));
        if flag == "--config" {
            bail!(
                "--config {}: a config file cannot name another",
                path.display()
            );
        }
        let scalar = |v: &toml::Value| -> Result<String> {
            Ok(match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => bail!(
                    "--config {}: `{key}` should be a string or a number, found {}",
                    path.display(),
                    other.type_str()
                ),
            })
        };
        match value {
            toml::Value::Boolean(true) => flags.push(flag.into()),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                flags.push(flag.into());
                for item in items {
                    flags.push(scalar(item)?.into());
                }
            }
            v => {
                flags.push(flag.into());
                flags.push(scalar(v)?.into());
            }
        }
    }
    let mut out: Vec<std::ffi::OsString> = args[..=sub].to_vec();
    out.extend(flags);
    out.extend(args[sub + 1..].iter().cloned());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_values_come_first_so_flags_override_them() {
        let dir = std::env::temp_dir().join(format!("rmtk-grpo-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("run.toml");
        std::fs::write(
            &file,
            "policy = \"p\"\nmax_new_tokens = 64\nno-chat = true\nloose = false\nprompts = [\"a.jsonl\", \"b.jsonl\"]\n",
        )
        .unwrap();
        let args: Vec<std::ffi::OsString> = [
            "rmtk",
            "grpo",
            "--config",
            file.to_str().unwrap(),
            "--max-new-tokens",
            "32",
        ]
        .iter()
        .map(Into::into)
        .collect();
        let out = expand_config_file(args).unwrap();
        let out: Vec<String> = out.into_iter().map(|s| s.into_string().unwrap()).collect();
        let tail: Vec<&str> = out.iter().map(String::as_str).collect();
        assert_eq!(tail[..2], ["rmtk", "grpo"]);
        assert!(tail.contains(&"--no-chat") && !tail.contains(&"--loose"));
        // Another command's argument that happens to read `grpo` is left alone.
        let other: Vec<std::ffi::OsString> =
            ["rmtk", "generate", "--prompt", "grpo", "--config", "x"]
                .iter()
                .map(Into::into)
                .collect();
        assert_eq!(expand_config_file(other.clone()).unwrap(), other);
        let i = tail.iter().position(|a| *a == "--prompts").unwrap();
        assert_eq!(tail[i + 1..i + 3], ["a.jsonl", "b.jsonl"]);
        // The file's value, then the command line's: the last one wins.
        let pos: Vec<usize> = (0..tail.len())
            .filter(|&i| tail[i] == "--max-new-tokens")
            .collect();
        assert_eq!(pos.len(), 2);
        assert_eq!(tail[pos[1] + 1], "32");
    }
}
