//! `rmtk train-rm`: train a Bradley-Terry reward model on preference pairs.
//!
//! Defaults follow TRL's `RewardConfig` (on top of transformers' `TrainingArguments`):
//! learning rate 1e-4, batch 8 pairs, 3 epochs, linear decay without warmup, AdamW
//! (0.9, 0.999, 1e-8) without weight decay, gradient norm clipped at 1.0, max length
//! 1024 (capped at the model's positions), overlong pairs filtered, seed 42, dropout
//! off. Chosen and rejected go through the backbone in one batch (chosen rows first).
//!
//! The output folder:
//! - `model.safetensors`, `config.json` (`num_labels: 1`, `*ForSequenceClassification`),
//!   tokenizer files: a Hugging Face model `AutoModelForSequenceClassification` loads;
//! - `rmtk_reward_model.json`: how rows become tokens, for `score` and `eval-rm`;
//! - `metrics.jsonl` (every update and evaluation), `eval_rewards.jsonl` (each
//!   evaluation's per-pair rewards: `{"step", "chosen": [...], "rejected": [...]}`, for
//!   `rmtk plot`'s reward distributions), `train.log`, `train_config.json`,
//!   `eval_results.json`, `train_summary.json`;
//! - `checkpoint-N/` every `--save-every` updates (the model in f32, `optimizer.safetensors`,
//!   `trainer_state.json`), and `latest` naming the newest; `--resume OUTPUT` continues
//!   from it and ends with the same weights as a run never interrupted.

use crate::kernels::FusedOps;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    PairStats, RmInfo, bt_loss, check_max_length, head_key, model_max_positions, model_vocab,
    pair_batch, pair_rewards, trl_metrics,
};
use crate::data::prefs::{
    self, EncodedPair, Layout, Overlong, PrefColumns, PrefPair, SeqEncoder, SeqSpec,
};
use crate::device::{DeviceSpec, Job, run_on};
use crate::models::ModelDir;
use crate::models::linear::{dropout_seed, with_dropout};
use crate::models::load::{ComputeDtype, SaveDtype, param_infos};
use crate::models::peft::LoraArgs;
use crate::models::reward::{HeadInit, RewardModel};
use crate::train::metrics::{RunLog, bar_message, num};
use crate::train::{
    Accumulator, AdamW, AdamWConfig, Checkpoints, LrSchedule, MetricsLog, ScheduleKind, StepPlan,
    TrainRng, TrainerState, Updater,
};
use crate::train::{LossScale, checkpointing, loss_scale};

pub const CONFIG_FILE: &str = "train_config.json";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const SUMMARY_FILE: &str = "train_summary.json";
/// Each evaluation's per-pair rewards, one line per evaluation (cut back on resume like
/// metrics.jsonl).
pub const EVAL_REWARDS_FILE: &str = "eval_rewards.jsonl";

/// What "the best model" of a run is measured by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BestMetric {
    #[value(name = "eval_accuracy")]
    EvalAccuracy,
    #[value(name = "eval_loss")]
    EvalLoss,
}

impl BestMetric {
    /// Its key in an evaluation's record.
    pub fn key(self) -> &'static str {
        match self {
            BestMetric::EvalAccuracy => "eval_accuracy",
            BestMetric::EvalLoss => "eval_loss",
        }
    }

    /// Whether `new` beats `old` (strictly: the earlier of equal values stays).
    pub fn beats(self, new: f64, old: f64) -> bool {
        match self {
            BestMetric::EvalAccuracy => new > old,
            BestMetric::EvalLoss => new < old,
        }
    }
}

/// The best evaluation so far, kept in the trainer state (`extra.best`) so a resumed run
/// knows it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct BestEval {
    step: u64,
    metric: BestMetric,
    value: f64,
}

/// Train a Bradley-Terry reward model (a backbone plus a scalar head) on preference pairs.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize, PartialEq)]
pub struct TrainRmConfig {
    /// Backbone: a folder in Hugging Face layout or a hub id (Llama-family decoders,
    /// BERT encoders). A model that already has a reward head continues from it.
    #[arg(long, required_unless_present = "resume")]
    pub model: Option<String>,
    /// Draw the backbone's weights at random (seeded by --seed; norms 1, biases 0, the
    /// rest with the config's `initializer_range`) instead of reading them: --model then
    /// needs only `config.json` and the tokenizer. For memory and speed benchmarks of
    /// real configurations, and training from scratch.
    #[arg(long)]
    #[serde(default)]
    pub random_weights: bool,
    /// Training preference files (parquet or JSONL; `*` and `?` wildcards allowed).
    #[arg(long, num_args = 1.., required_unless_present = "resume")]
    pub data: Vec<String>,
    /// The output folder (the model, metrics, checkpoints).
    #[arg(long, required_unless_present = "resume")]
    pub output: Option<PathBuf>,
    /// Continue the run in this output folder from its latest checkpoint. Alone, it
    /// reuses the run's saved settings; with other flags, they must match them.
    #[arg(long)]
    #[serde(skip)]
    pub resume: Option<PathBuf>,

    /// Held-out preference files.
    #[arg(long, num_args = 1.., conflicts_with = "eval_fraction")]
    pub eval_data: Vec<String>,
    /// Hold out this fraction of the training pairs for evaluation.
    #[arg(long)]
    pub eval_fraction: Option<f64>,
    /// Seed of the --eval-fraction split (fixed, apart from --seed).
    #[arg(long, default_value_t = 42)]
    pub split_seed: u64,

    /// Column of prompts (default `prompt` if present; none: the prompt is inside the responses).
    #[arg(long)]
    pub prompt_column: Option<String>,
    /// Column of preferred responses (default `chosen`).
    #[arg(long)]
    pub chosen_column: Option<String>,
    /// Column of rejected responses (default `rejected`).
    #[arg(long)]
    pub rejected_column: Option<String>,
    /// Column of per-pair margins (default `margin` if present).
    #[arg(long)]
    pub margin_column: Option<String>,
    /// How to read cells: auto (by type), text, chat.
    #[arg(long, value_enum, default_value = "auto")]
    pub layout: Layout,

    /// Longest sequence in tokens (default: 1024, or the model's positions if fewer).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Pairs with a longer side: filter (drop them, TRL's rule), truncate (cut the
    /// prompt, oldest turns first, and keep the responses; the rule is saved with the
    /// model for `score`, `eval-rm` and `grpo`) or truncate-start (keep the first tokens).
    #[arg(long, value_enum, default_value = "filter")]
    pub overlong: Overlong,

    /// Pairs per micro-batch (each pair is two sequences).
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Pairs per evaluation batch.
    #[arg(long, default_value_t = 8)]
    pub eval_batch_size: usize,
    /// Micro-batches per update; the loss is the mean over all their pairs.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    #[arg(long, default_value_t = 3)]
    pub epochs: u64,
    /// Updates to make, overriding --epochs (0: use --epochs).
    #[arg(long, default_value_t = 0)]
    pub max_steps: u64,

    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Decoupled weight decay (not applied to biases and norm weights).
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
    #[arg(long, value_enum, default_value = "linear")]
    pub lr_scheduler: ScheduleKind,
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: u64,
    /// Warmup as a fraction of all updates (used when --warmup-steps is 0).
    #[arg(long, default_value_t = 0.0)]
    pub warmup_ratio: f64,
    /// Coefficient of mean((r+ + r-)^2), which keeps rewards centred (0.01 is usual).
    #[arg(long, default_value_t = 0.0)]
    pub center_rewards_coef: f64,

    #[command(flatten)]
    #[serde(flatten)]
    pub lora: LoraArgs,
    /// The dtype the backbone computes in. With LoRA, bf16/f16 keep the frozen base in
    /// that dtype (created and loaded directly in it), the adapters and the head f32;
    /// full fine-tuning keeps f32 master weights and reads each in the dtype where it is
    /// used. f16 scales the loss dynamically (overflowed updates are skipped).
    #[arg(long, value_enum, default_value = "f32")]
    #[serde(default)]
    pub dtype: ComputeDtype,
    /// f16: the loss scale to start from (a power of two; PyTorch's default). It halves on
    /// every overflowed update and doubles after 2000 finite ones in a row.
    #[arg(long, default_value_t = crate::train::loss_scale::INIT_SCALE)]
    #[serde(default = "initial_loss_scale")]
    pub initial_loss_scale: f32,
    /// Keep only each block's input between the forward and backward passes and replay
    /// one block at a time in the backward pass: activation memory of one layer instead
    /// of all, for about one more forward pass of compute.
    #[arg(long)]
    #[serde(default)]
    pub gradient_checkpointing: bool,
    /// Seed of the head's initialisation and of the data order.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Micro-batches in random order instead of grouped by length.
    #[arg(long)]
    pub no_group_by_length: bool,

    /// Evaluate every N updates (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub eval_every: u64,
    /// Evaluate before the first update too.
    #[arg(long)]
    pub eval_on_start: bool,
    /// Write a checkpoint every N updates (0: none).
    #[arg(long, default_value_t = 500)]
    pub save_every: u64,
    /// Keep only the newest N checkpoints.
    #[arg(long)]
    pub save_total_limit: Option<usize>,
    /// Keep the weights of the best evaluation after an update in OUTPUT/best-model/,
    /// by eval_accuracy (higher is better) or eval_loss (lower is better); the first of
    /// equal values stays.
    #[arg(long, value_enum)]
    #[serde(default)]
    pub metric_for_best_model: Option<BestMetric>,
    /// Save the best evaluation's model (--metric-for-best-model, default eval_loss) as
    /// the run's model instead of the last update's.
    #[arg(long)]
    #[serde(default)]
    pub load_best_model_at_end: bool,
    /// Dtype of the final model's weights (checkpoints are always f32).
    #[arg(long, value_enum, default_value = "f32")]
    pub save_dtype: SaveDtype,

    /// Skip rows that cannot be read (counted in the log) instead of stopping.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    #[serde(skip, default)]
    pub device: DeviceSpec,
}

impl TrainRmConfig {
    fn output(&self) -> &Path {
        self.output.as_deref().expect("resolved before use")
    }

    fn columns(&self) -> PrefColumns {
        PrefColumns {
            prompt: self.prompt_column.clone(),
            chosen: self.chosen_column.clone(),
            rejected: self.rejected_column.clone(),
            margin: self.margin_column.clone(),
            group: None,
        }
    }

    fn validate(&self) -> Result<()> {
        LossScale::check_initial(self.initial_loss_scale)?;
        if self.batch_size == 0 || self.eval_batch_size == 0 || self.grad_accum == 0 {
            bail!("--batch-size, --eval-batch-size and --grad-accum must be at least 1");
        }
        if self.epochs == 0 && self.max_steps == 0 {
            bail!("--epochs 0 trains nothing: give --epochs or --max-steps");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("--lr must be a positive number");
        }
        if !(0.0..1.0).contains(&self.adam_beta1) || !(0.0..1.0).contains(&self.adam_beta2) {
            bail!("--adam-beta1 and --adam-beta2 must be in [0, 1)");
        }
        if self.adam_eps <= 0.0 || self.weight_decay < 0.0 || self.max_grad_norm < 0.0 {
            bail!("--adam-eps must be positive, --weight-decay and --max-grad-norm not negative");
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            bail!("--warmup-ratio must be in [0, 1)");
        }
        if let Some(f) = self.eval_fraction
            && !(f > 0.0 && f < 1.0)
        {
            bail!("--eval-fraction must be between 0 and 1");
        }
        let held_out = !self.eval_data.is_empty() || self.eval_fraction.is_some();
        if (self.metric_for_best_model.is_some() || self.load_best_model_at_end) && !held_out {
            bail!(
                "--metric-for-best-model and --load-best-model-at-end need evaluations: give --eval-data or --eval-fraction (and --eval-every N to evaluate during the run)"
            );
        }
        self.lora.validate()?;
        Ok(())
    }

    /// The settings that define a run (what must match on resume).
    fn identity(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("the config serialises");
        if let Some(o) = v.as_object_mut() {
            o.remove("output");
        }
        v
    }
}

pub fn run(cfg: TrainRmConfig) -> Result<()> {
    let mut log = RunLog::new("train-rm");
    let (mut cfg, resume) = resolve_resume(cfg)?;
    // A run started when `truncate` kept the first tokens goes on with that rule.
    if let Some(ck) = &resume
        && cfg.overlong == Overlong::Truncate
        && let Some(info) = RmInfo::load(ck)?
        && info.sequences.overlong == Overlong::TruncateStart
    {
        cfg.overlong = Overlong::TruncateStart;
        log.info(
            "the run began when --overlong truncate kept the first tokens: it goes on with that rule (now called truncate-start)",
        );
    }
    cfg.validate()?;
    let output = cfg.output().to_path_buf();
    if resume.is_none() && output.join(CONFIG_FILE).exists() {
        bail!(
            "{} already holds a training run; continue it with --resume {} or choose another --output",
            output.display(),
            output.display()
        );
    }
    let model_spec = cfg.model.clone().expect("resolved");
    let mut base = ModelDir::open(&model_spec)?;
    if cfg.random_weights {
        if base.adapter.is_some() {
            bail!(
                "--random-weights draws a model's weights; --model {model_spec} is a LoRA adapter"
            );
        }
        base.random_weights = Some(cfg.seed);
    }
    let tokenizer = base.tokenizer()?;
    let limit = model_max_positions(&base)?;
    let max_length = cfg.max_length.unwrap_or(limit.min(1024));
    check_max_length(max_length, limit, &base.name)?;
    let spec = SeqSpec::for_model(base.family, &tokenizer, max_length, cfg.overlong);

    // Data: read, split, encode.
    let files = prefs::expand_paths(&cfg.data)?;
    let read = prefs::read_pairs(&files, &cfg.columns(), cfg.layout, cfg.skip_bad_rows)?;
    report_read(&mut log, "train", &read);
    let mut train_pairs = read.pairs;
    let mut eval_pairs: Vec<PrefPair> = Vec::new();
    let mut eval_skipped = 0;
    if !cfg.eval_data.is_empty() {
        let files = prefs::expand_paths(&cfg.eval_data)?;
        let read = prefs::read_pairs(&files, &cfg.columns(), cfg.layout, cfg.skip_bad_rows)?;
        report_read(&mut log, "eval", &read);
        eval_skipped = read.skipped.len();
        eval_pairs = read.pairs;
    } else if let Some(fraction) = cfg.eval_fraction {
        (train_pairs, eval_pairs) = split(train_pairs, fraction, cfg.split_seed)?;
        log.info(&format!(
            "--eval-fraction {fraction} (split seed {}): {} pairs held out, {} for training",
            cfg.split_seed,
            eval_pairs.len(),
            train_pairs.len()
        ));
    }
    let vocab = model_vocab(&base)?;
    let encoder = SeqEncoder::new(&tokenizer, spec.clone(), vocab);
    let (train, report) = prefs::encode_pairs(&encoder, &train_pairs, cfg.skip_bad_rows)?;
    log.info(&format!(
        "train: {}",
        report.summary(max_length, cfg.overlong)
    ));
    report_skipped(&mut log, "train (encoding)", &report.skipped);
    let (eval, eval_report) = prefs::encode_pairs(&encoder, &eval_pairs, cfg.skip_bad_rows)?;
    if !eval_pairs.is_empty() {
        log.info(&format!(
            "eval: {}",
            eval_report.summary(max_length, cfg.overlong)
        ));
        report_skipped(&mut log, "eval (encoding)", &eval_report.skipped);
    }
    if train.is_empty() {
        bail!(
            "no training pairs left (after skipping, --max-length {max_length} filtering and dropping pairs identical once cut)"
        );
    }
    if !eval_pairs.is_empty() && eval.is_empty() {
        bail!(
            "no evaluation pairs left (after skipping, --max-length {max_length} filtering and dropping pairs identical once cut)"
        );
    }
    let _ = eval_skipped;

    std::fs::create_dir_all(&output).with_context(|| format!("creating {}", output.display()))?;
    log.to_file(&output.join("train.log"))?;
    if resume.is_none() {
        let mut text = serde_json::to_string_pretty(&cfg)?;
        text.push('\n');
        crate::util::write_atomic(&output.join(CONFIG_FILE), text.as_bytes())
            .with_context(|| format!("writing {}", output.join(CONFIG_FILE).display()))?;
    }
    let pad_id = tokenizer.pad_id();
    let device = cfg.device;
    run_on(
        device,
        TrainJob {
            cfg,
            base,
            spec,
            pad_id,
            train,
            eval,
            resume,
            log,
        },
    )
}

/// With --resume: the run's saved settings, checked against any given on the command
/// line, and its latest checkpoint.
fn resolve_resume(mut cfg: TrainRmConfig) -> Result<(TrainRmConfig, Option<PathBuf>)> {
    let Some(dir) = cfg.resume.clone() else {
        return Ok((cfg, None));
    };
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "--resume {}: no training run there ({} cannot be read)",
            dir.display(),
            path.display()
        )
    })?;
    let saved: TrainRmConfig = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a train-rm config", path.display()))?;
    if let Some(out) = &cfg.output
        && out != &dir
    {
        bail!(
            "--resume {} continues that folder; drop --output {}",
            dir.display(),
            out.display()
        );
    }
    if cfg.model.is_some() || !cfg.data.is_empty() {
        let (given, was) = (cfg.identity(), saved.identity());
        let differ: Vec<String> = given
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| was.get(k.as_str()) != Some(v))
            .map(|(k, v)| {
                format!(
                    "--{} (run: {}, given: {})",
                    k.replace('_', "-"),
                    was.get(k.as_str()).unwrap_or(&Value::Null),
                    v
                )
            })
            .collect();
        if !differ.is_empty() {
            bail!(
                "--resume {}: these settings differ from the run's: {}; resume with `--resume {}` alone to keep the run's settings",
                dir.display(),
                differ.join(", "),
                dir.display()
            );
        }
    }
    if dir.join(SUMMARY_FILE).exists() {
        bail!(
            "--resume {}: that run is complete (see {})",
            dir.display(),
            dir.join(SUMMARY_FILE).display()
        );
    }
    let device = cfg.device;
    cfg = saved;
    cfg.device = device;
    cfg.output = Some(dir.clone());
    let latest = Checkpoints::new(&dir).latest()?.with_context(|| {
        format!(
            "--resume {}: the run has no checkpoint yet (it stopped before the first --save-every); start it again",
            dir.display()
        )
    })?;
    Ok((cfg, Some(latest)))
}

fn report_read(log: &mut RunLog, what: &str, read: &prefs::PairsRead) {
    for note in &read.notes {
        log.info(&format!("{what}: {note}"));
    }
    report_skipped(log, what, &read.skipped);
}

fn report_skipped(log: &mut RunLog, what: &str, skipped: &[crate::data::DataError]) {
    if skipped.is_empty() {
        return;
    }
    log.info(&format!(
        "{what}: skipped {} bad rows (--skip-bad-rows)",
        skipped.len()
    ));
    for err in skipped.iter().take(5) {
        log.info(&format!("  skipped: {err}"));
    }
    if skipped.len() > 5 {
        log.info(&format!("  ... and {} more", skipped.len() - 5));
    }
}

/// A fixed random split: `fraction` of the pairs (at least one) held out.
fn split(pairs: Vec<PrefPair>, fraction: f64, seed: u64) -> Result<(Vec<PrefPair>, Vec<PrefPair>)> {
    let n = pairs.len();
    let held = ((n as f64 * fraction).round() as usize).max(1);
    if held >= n {
        bail!("--eval-fraction {fraction} of {n} pairs leaves none for training");
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let mut is_eval = vec![false; n];
    for &i in &idx[..held] {
        is_eval[i] = true;
    }
    let (mut train, mut eval) = (Vec::new(), Vec::new());
    for (i, p) in pairs.into_iter().enumerate() {
        if is_eval[i] {
            eval.push(p);
        } else {
            train.push(p);
        }
    }
    Ok((train, eval))
}

struct TrainJob {
    cfg: TrainRmConfig,
    base: ModelDir,
    spec: SeqSpec,
    pad_id: u32,
    train: Vec<EncodedPair>,
    eval: Vec<EncodedPair>,
    /// The checkpoint to continue from.
    resume: Option<PathBuf>,
    log: RunLog,
}

impl Job for TrainJob {
    type Output = ();

    fn run<B: FusedOps>(self, device: B::Device) -> Result<()> {
        train_loop::<B>(self, device)
    }
}

fn train_loop<B: FusedOps>(job: TrainJob, device: B::Device) -> Result<()> {
    type Ad<B> = Autodiff<B>;
    let TrainJob {
        cfg,
        base,
        spec,
        pad_id,
        train,
        eval,
        resume,
        mut log,
    } = job;
    let output = cfg.output().to_path_buf();
    let checkpoints = Checkpoints::new(&output);
    let plan = StepPlan::new(
        train.len(),
        cfg.batch_size,
        cfg.grad_accum,
        cfg.epochs,
        cfg.max_steps,
    );
    let schedule = LrSchedule {
        kind: cfg.lr_scheduler,
        base_lr: cfg.lr,
        warmup_steps: LrSchedule::warmup_from(cfg.warmup_steps, cfg.warmup_ratio, plan.total_steps),
        total_steps: plan.total_steps,
    };
    let adam = AdamWConfig {
        beta1: cfg.adam_beta1,
        beta2: cfg.adam_beta2,
        eps: cfg.adam_eps,
        weight_decay: cfg.weight_decay,
    };
    let info = RmInfo {
        format: "rmtk-reward-model/1".into(),
        sequences: spec.clone(),
        pad_token_id: pad_id,
        base_model: base.name.clone(),
        head: head_key(base.family).into(),
    };

    let process_before = crate::train::memory::resident().unwrap_or(0);
    let lora = cfg.lora.config(&base)?;
    if lora.is_some() && base.adapter.is_some() {
        bail!(
            "--model {} is already a LoRA adapter: training it goes on without --lora-r",
            base.name
        );
    }
    // The adapter settings a run saves with: the new adapter's, or those of the adapter
    // it continues.
    let lora = lora.or_else(|| base.adapter.as_ref().map(|a| a.config.clone()));
    // The weights' dtype and, in mixed precision, the activations' (f16 adds dynamic
    // loss scaling).
    let (dtype, activations) = cfg.dtype.training_dtypes(lora.is_some());
    // Model, optimizer and state: fresh, or from the checkpoint.
    let (mut model, mut updater, mut state, mut rng, mut metrics, mut rewards_log) = match &resume {
        Some(ck) => {
            checkpoints.clean_partial();
            let mut ck_dir = ModelDir::open_dir(ck, &ck.display().to_string())?;
            if ck_dir.adapter.is_some() {
                // An adapter checkpoint's base is the run's base, random weights too.
                ck_dir.random_weights = base.random_weights;
            }
            let model = RewardModel::<Ad<B>>::from_pretrained_in(
                &ck_dir,
                HeadInit { seed: cfg.seed },
                &device,
                dtype,
            )?
            .with_activations(activations);
            let mut optim = AdamW::<B>::new(adam, trainable(&model));
            optim.load(&ck.join(OPTIMIZER_FILE), &device)?;
            let state = TrainerState::load(ck)?;
            let skipped = state.loss_scale.map_or(0, |s| s.skipped);
            if optim.steps_done() + skipped != state.step {
                bail!(
                    "{}: the optimizer has made {} updates ({skipped} skipped) but the trainer state says {}",
                    ck.display(),
                    optim.steps_done(),
                    state.step
                );
            }
            let rng = TrainRng::from_state(&state.rng).map_err(anyhow::Error::msg)?;
            let metrics = MetricsLog::resume(&output, state.step)?;
            let rewards_log = MetricsLog::resume_named(&output, EVAL_REWARDS_FILE, state.step)?;
            log.info(&format!(
                "resuming {} at update {} of {} (epoch {})",
                ck.display(),
                state.step,
                plan.total_steps,
                state.epoch
            ));
            let mut updater = Updater::new(optim, schedule, Some(cfg.max_grad_norm));
            updater.loss_scale = state.loss_scale;
            (model, updater, state, rng, metrics, rewards_log)
        }
        None => {
            let mut model = RewardModel::<Ad<B>>::from_pretrained_in(
                &base,
                HeadInit { seed: cfg.seed },
                &device,
                dtype,
            )?
            .with_activations(activations);
            if let Some(lora) = &lora {
                let (adapted, paths) = model.apply_lora(lora, cfg.seed)?;
                model = adapted;
                log.info(&format!(
                    "LoRA r={} alpha={}{} on {} linear layers ({} ...); the base is frozen",
                    lora.shape.r,
                    lora.shape.alpha,
                    if lora.shape.rslora { " (rsLoRA)" } else { "" },
                    paths.len(),
                    paths.first().map_or("", String::as_str)
                ));
            }
            let optim = AdamW::<B>::new(adam, trainable(&model));
            let rng = TrainRng::new(cfg.seed);
            let state = TrainerState {
                step: 0,
                epoch: 0,
                order: Vec::new(),
                rng: rng.state(),
                tokens_seen: 0,
                train_seconds: 0.0,
                extra: Value::Null,
                loss_scale: None,
                rmtk_version: env!("CARGO_PKG_VERSION").into(),
            };
            let metrics = MetricsLog::create(&output)?;
            let rewards_log = MetricsLog::create_named(&output, EVAL_REWARDS_FILE)?;
            let mut updater = Updater::new(optim, schedule, Some(cfg.max_grad_norm));
            updater.loss_scale = LossScale::for_training(cfg.dtype, cfg.initial_loss_scale);
            (model, updater, state, rng, metrics, rewards_log)
        }
    };
    let lengths: Vec<usize> = train.iter().map(EncodedPair::len).collect();
    // What the largest micro-batch should take (`train::memory`), beside what the
    // process already held; the measured peak is logged at the end.
    let mut device_peak = crate::train::memory::DevicePeak::default();
    let estimate = {
        use crate::train::memory::{Arch, Plan, estimate};
        let longest = lengths.iter().copied().max().unwrap_or(0);
        let plan = Plan {
            tokens: 2 * cfg.batch_size.min(train.len().max(1)) * longest,
            dtype_bytes: cfg.dtype.burn().size(),
            lora: lora
                .as_ref()
                .map(|l| (l.shape.r, l.targets.clone(), l.shape.dropout > 0.0)),
            checkpointing: cfg.gradient_checkpointing,
            grad_accum: cfg.grad_accum,
            training: true,
        };
        estimate(&Arch::of(&base)?, &plan)
    };
    log.info(&format!(
        "memory estimate for a micro-batch of the longest pairs: {} + the process's {} before loading",
        crate::train::memory::describe(&estimate),
        crate::train::memory::gib(process_before)
    ));
    let group = !cfg.no_group_by_length;
    log.info(&format!(
        "{} ({:?}), {} training pairs, {} eval pairs; {} updates ({} per epoch, {} pairs each, grad-accum {}), lr {} {:?} warmup {}",
        base.name,
        base.family,
        train.len(),
        eval.len(),
        plan.total_steps,
        plan.steps_per_epoch,
        cfg.batch_size * cfg.grad_accum,
        cfg.grad_accum,
        cfg.lr,
        cfg.lr_scheduler,
        schedule.warmup_steps
    ));

    let bar = crate::util::progress_bar(plan.total_steps, "train-rm");
    bar.set_position(state.step);
    log.set_bar(Some(bar.clone()));
    // The evaluation's record for metrics.jsonl, and its per-pair rewards for
    // eval_rewards.jsonl.
    let evaluate =
        |model: &RewardModel<Ad<B>>, step: u64| -> (Map<String, Value>, Map<String, Value>) {
            let inner = model.valid();
            let (c, r) = pair_rewards(&inner, &eval, cfg.eval_batch_size, pad_id, &device, |_| {});
            let margins: Option<Vec<f32>> = eval[0]
                .margin
                .map(|_| eval.iter().map(|p| p.margin.unwrap_or(0.0)).collect());
            let s = PairStats::new(&c, &r, margins.as_deref(), cfg.center_rewards_coef);
            let mut rec = Map::new();
            rec.insert("step".into(), json!(step));
            rec.insert("epoch".into(), num(plan.epoch_at(step)));
            rec.insert("eval_loss".into(), num(s.loss));
            rec.insert("eval_accuracy".into(), num(s.accuracy));
            rec.insert("eval_margin".into(), num(s.margin));
            rec.insert("eval_reward_mean".into(), num(s.reward_mean));
            rec.insert("eval_reward_std".into(), num(s.reward_std));
            rec.insert("eval_pairs".into(), json!(s.pairs));
            // TRL's, over its evaluation batches: --eval-batch-size pairs in the file's
            // order, as its sequential sampler deals them.
            let bs = cfg.eval_batch_size.max(1);
            if let Some(t) = trl_metrics::trl_pair_metrics(c.chunks(bs).zip(r.chunks(bs))) {
                for (name, v) in t.named() {
                    rec.insert(format!("eval_{}", trl_name(name)), num(v));
                }
            }
            let rewards = |r: &[f32]| Value::Array(r.iter().map(|&v| num(f64::from(v))).collect());
            let mut pairs = Map::new();
            pairs.insert("step".into(), json!(step));
            pairs.insert("chosen".into(), rewards(&c));
            pairs.insert("rejected".into(), rewards(&r));
            (rec, pairs)
        };
    let eval_line = |rec: &Map<String, Value>| {
        format!(
            "eval at update {}: {}",
            rec["step"],
            bar_message(
                rec,
                &[
                    ("eval_loss", "loss"),
                    ("eval_accuracy", "accuracy"),
                    ("eval_margin", "margin"),
                    ("eval_reward_mean", "reward mean"),
                    ("eval_reward_std", "std")
                ]
            )
        )
    };
    if cfg.eval_on_start && state.step == 0 && !eval.is_empty() {
        let (rec, pairs) = evaluate(&model, 0);
        log.info(&eval_line(&rec));
        metrics.log(&rec)?;
        rewards_log.log(&pairs)?;
    }

    // Records of the update resumed at (a resumed run's summary needs them).
    let earlier = if resume.is_some() {
        MetricsLog::read_records(&output)
    } else {
        Vec::new()
    };
    let at_step = |key: &str| {
        earlier
            .iter()
            .rev()
            .find(|r| {
                r.contains_key(key) && r.get("step").and_then(Value::as_u64) == Some(state.step)
            })
            .cloned()
    };
    let mut last_eval: Option<Map<String, Value>> = at_step("eval_loss");
    let mut last_train: Option<Map<String, Value>> = at_step("loss");
    // The best evaluation so far and its record (--metric-for-best-model).
    let best_metric = cfg
        .metric_for_best_model
        .or(cfg.load_best_model_at_end.then_some(BestMetric::EvalLoss));
    let mut best: Option<BestEval> = state
        .extra
        .get("best")
        .and_then(|b| serde_json::from_value(b.clone()).ok())
        .filter(|b: &BestEval| Some(b.metric) == best_metric);
    // best-model/ may hold a later update than the checkpoint resumed from knows (it is
    // written at each new best, the state only with checkpoints): then it is not the
    // state's best, and the best is looked for again from here.
    if resume.is_some() && best_metric.is_some() {
        let folder_step = std::fs::read(checkpoints.best().join("eval_results.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["step"].as_u64());
        if folder_step.is_some() && folder_step != best.map(|b| b.step) {
            log.info(&format!(
                "{} holds update {} but the checkpoint's best is {}: it is set aside and the best is looked for again from update {}",
                checkpoints.best().display(),
                folder_step.unwrap_or(0),
                best.map_or("none".to_string(), |b| b.step.to_string()),
                state.step
            ));
            let _ = std::fs::remove_dir_all(checkpoints.best());
            best = None;
        }
    }
    let mut best_record: Option<Map<String, Value>> = best.and_then(|b| {
        earlier
            .iter()
            .find(|r| {
                r.contains_key("eval_loss") && r.get("step").and_then(Value::as_u64) == Some(b.step)
            })
            .cloned()
    });
    let started = Instant::now();
    let seconds_before = state.train_seconds;
    let mut accum = Accumulator::default();
    while state.step < plan.total_steps {
        let (epoch, start, end) = plan.micro_range(state.step);
        if state.order.is_empty() || epoch != state.epoch {
            state.order = prefs::epoch_batches(&lengths, cfg.batch_size, group, rng.rng_mut());
            state.epoch = epoch;
            state.rng = rng.state();
        }
        let micro: Vec<Vec<u32>> = state.order[start as usize..end as usize].to_vec();
        let step_pairs: usize = micro.iter().map(Vec::len).sum();
        let t0 = Instant::now();
        let (mut chosen_all, mut rejected_all, mut margins_all) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut loss_sum = 0.0f64;
        let mut tokens = 0usize;
        for (mb_index, mb) in micro.iter().enumerate() {
            let pairs: Vec<&EncodedPair> = mb.iter().map(|&i| &train[i as usize]).collect();
            let k = pairs.len();
            let batch = pair_batch::<Ad<B>>(&pairs, pad_id, &device);
            tokens += batch.num_tokens();
            let seed = dropout_seed(cfg.seed, state.step, mb_index as u64);
            let margins: Option<Vec<f32>> = pairs[0]
                .margin
                .map(|_| pairs.iter().map(|p| p.margin.unwrap_or(0.0)).collect());
            if let Some(m) = &margins {
                margins_all.extend_from_slice(m);
            }
            let share = k as f64 / step_pairs as f64;
            let loss_scale = f64::from(updater.loss_scale());
            // The loss of one micro-batch, and its share of the update's (what is
            // differentiated).
            let loss_of = |rewards: Tensor<Ad<B>, 1>| {
                let chosen = rewards.clone().narrow(0, 0, k);
                let rejected = rewards.narrow(0, k, k);
                let margin = margins
                    .clone()
                    .map(|m| Tensor::<Ad<B>, 1>::from_data(TensorData::new(m, [k]), &device));
                let loss = bt_loss(chosen, rejected, margin, cfg.center_rewards_coef);
                (loss.clone().mul_scalar(share * loss_scale), loss)
            };
            let (rewards, loss) = if cfg.gradient_checkpointing {
                let out = checkpointing::reward_backward(&model, &batch, loss_of, Some(seed));
                accum.add_params::<Ad<B>>(&model, out.grads);
                (out.rewards, out.loss)
            } else {
                let rewards = with_dropout(seed, || model.forward(&batch));
                let (scaled, loss) = loss_of(rewards.clone());
                accum.add::<Ad<B>>(&model, scaled.backward());
                (rewards.inner(), loss.inner())
            };
            loss_sum += f64::from(loss.into_scalar().to_f32()) * share;
            let r = rewards
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .expect("f32 rewards");
            chosen_all.extend_from_slice(&r[..k]);
            rejected_all.extend_from_slice(&r[k..]);
        }
        let grads = accum.take();
        let (updated, update) = updater.apply(model, grads);
        model = updated;
        device_peak.sample::<B>(&device);
        state.step += 1;
        state.loss_scale = updater.loss_scale;
        loss_scale::stop_if_exhausted(updater.loss_scale, format!("update {}", state.step))?;
        let secs = t0.elapsed().as_secs_f64();
        state.tokens_seen += tokens as u64;
        state.train_seconds = seconds_before + started.elapsed().as_secs_f64();

        let margins = (!margins_all.is_empty()).then_some(margins_all.as_slice());
        let stats = PairStats::new(&chosen_all, &rejected_all, margins, cfg.center_rewards_coef);
        let mut rec = Map::new();
        rec.insert("step".into(), json!(state.step));
        rec.insert("epoch".into(), num(plan.epoch_at(state.step)));
        rec.insert("loss".into(), num(loss_sum));
        rec.insert("accuracy".into(), num(stats.accuracy));
        rec.insert("margin".into(), num(stats.margin));
        rec.insert("reward_mean".into(), num(stats.reward_mean));
        rec.insert("reward_std".into(), num(stats.reward_std));
        // TRL's, per micro-batch (its compute_loss calls) and averaged over the update.
        let mut at = 0;
        let batches = micro.iter().map(|mb| {
            let range = at..at + mb.len();
            at = range.end;
            (&chosen_all[range.clone()], &rejected_all[range])
        });
        if let Some(t) = trl_metrics::trl_pair_metrics(batches) {
            for (name, v) in t.named() {
                rec.insert(trl_name(name).into(), num(v));
            }
        }
        rec.insert("lr".into(), num(update.lr));
        rec.insert("grad_norm".into(), num(f64::from(update.grad_norm)));
        if let Some(scale) = update.loss_scale {
            rec.insert("loss_scale".into(), num(f64::from(scale)));
            rec.insert("skipped".into(), json!(update.skipped));
        }
        rec.insert("pairs".into(), json!(step_pairs));
        rec.insert("tokens".into(), json!(tokens));
        rec.insert("tokens_per_s".into(), num(tokens as f64 / secs.max(1e-9)));
        rec.insert("step_seconds".into(), num(secs));
        metrics.log(&rec)?;
        bar.set_message(bar_message(
            &rec,
            &[
                ("loss", "loss"),
                ("accuracy", "acc"),
                ("margin", "margin"),
                ("lr", "lr"),
                ("grad_norm", "gn"),
                ("tokens_per_s", "tok/s"),
            ],
        ));
        bar.set_position(state.step);
        if !loss_sum.is_finite() {
            bail!(
                "the loss became {loss_sum} at update {}; lower --lr (the last checkpoint is intact)",
                state.step
            );
        }
        last_train = Some(rec);

        let last = state.step == plan.total_steps;
        if !eval.is_empty() && (last || (cfg.eval_every > 0 && state.step % cfg.eval_every == 0)) {
            let (rec, pairs) = evaluate(&model, state.step);
            log.info(&eval_line(&rec));
            metrics.log(&rec)?;
            rewards_log.log(&pairs)?;
            if let Some(metric) = best_metric
                && let Some(value) = rec.get(metric.key()).and_then(Value::as_f64)
                && value.is_finite()
                && best.is_none_or(|b| metric.beats(value, b.value))
            {
                let inner = model.valid();
                let dir = checkpoints.save_best(|dir| {
                    inner.save_pretrained(dir, &base, pad_id, SaveDtype::F32, lora.as_ref())?;
                    info.save(dir)?;
                    crate::models::load::write_json(
                        &dir.join("eval_results.json"),
                        &Value::Object(rec.clone()),
                    )?;
                    Ok(())
                })?;
                let b = BestEval {
                    step: state.step,
                    metric,
                    value,
                };
                state.extra = json!({ "best": b });
                log.info(&format!(
                    "best {} so far: {value} at update {}: {}",
                    metric.key(),
                    state.step,
                    dir.display()
                ));
                best = Some(b);
                best_record = Some(rec.clone());
            }
            last_eval = Some(rec);
        }
        if cfg.save_every > 0 && state.step % cfg.save_every == 0 {
            let inner = model.valid();
            let dir = checkpoints.save(state.step, |dir| {
                inner.save_pretrained(dir, &base, pad_id, SaveDtype::F32, lora.as_ref())?;
                info.save(dir)?;
                updater.optim.save(&dir.join(OPTIMIZER_FILE))?;
                state.save(dir)
            })?;
            if let Some(keep) = cfg.save_total_limit {
                checkpoints.prune(keep.max(1))?;
            }
            log.info(&format!("checkpoint {}", dir.display()));
        }
    }
    bar.finish_and_clear();
    log.set_bar(None);
    // A run resumed from its very last checkpoint has not evaluated yet.
    if !eval.is_empty() && last_eval.is_none() {
        let (rec, pairs) = evaluate(&model, state.step);
        log.info(&eval_line(&rec));
        metrics.log(&rec)?;
        rewards_log.log(&pairs)?;
        last_eval = Some(rec);
    }

    // The final model, in Hugging Face layout, beside the run's files: the last update's,
    // or with --load-best-model-at-end the best evaluation's.
    let inner = match best {
        Some(b) if cfg.load_best_model_at_end && b.step != state.step => {
            let path = checkpoints.best();
            let mut dir = ModelDir::open_dir(&path, &path.display().to_string())?;
            if dir.adapter.is_some() {
                dir.random_weights = base.random_weights;
            }
            log.info(&format!(
                "--load-best-model-at-end: the model of update {} ({} {})",
                b.step,
                b.metric.key(),
                b.value
            ));
            RewardModel::<B>::from_pretrained_in(&dir, HeadInit { seed: cfg.seed }, &device, dtype)?
        }
        _ => model.valid(),
    };
    inner
        .save_pretrained(&output, &base, pad_id, cfg.save_dtype, lora.as_ref())
        .with_context(|| format!("saving the model to {}", output.display()))?;
    info.save(&output)?;
    if cfg.lora.merge_lora && lora.is_some() {
        let merged_dir = output.join("merged");
        inner
            .clone()
            .merge_lora()
            .save_pretrained(&merged_dir, &base, pad_id, cfg.save_dtype, None)
            .with_context(|| format!("saving the merged model to {}", merged_dir.display()))?;
        info.save(&merged_dir)?;
        log.info(&format!(
            "LoRA merged into the base: {}",
            merged_dir.display()
        ));
    }
    let final_eval = match (&best_record, cfg.load_best_model_at_end) {
        (Some(rec), true) => Some(rec),
        _ => last_eval.as_ref(),
    };
    if let Some(rec) = final_eval {
        crate::models::load::write_json(
            &output.join("eval_results.json"),
            &Value::Object(rec.clone()),
        )?;
    }
    let summary = json!({
        "steps": state.step,
        "epochs": plan.epoch_at(state.step),
        "train_pairs": train.len(),
        "eval_pairs": eval.len(),
        "tokens_seen": state.tokens_seen,
        "train_seconds": num(state.train_seconds),
        "tokens_per_s": num(state.tokens_seen as f64 / state.train_seconds.max(1e-9)),
        "final_train": last_train.clone().map(Value::Object),
        "final_eval": last_eval.clone().map(Value::Object),
        "best": best.map(|b| json!({
            "step": b.step,
            "metric": b.metric.key(),
            "value": num(b.value),
            "folder": checkpoints.best().display().to_string(),
            "loaded_at_end": cfg.load_best_model_at_end,
        })),
    });
    crate::models::load::write_json(&output.join(SUMMARY_FILE), &summary)?;
    let eval_part = last_eval
        .as_ref()
        .map(|r| {
            format!(
                "; eval loss {} accuracy {} ({} pairs)",
                r["eval_loss"], r["eval_accuracy"], r["eval_pairs"]
            )
        })
        .unwrap_or_default();
    let train_part = last_train
        .as_ref()
        .map(|r| format!("last train loss {}", r["loss"]))
        .unwrap_or_else(|| "no updates".into());
    log.info(&format!(
        "done: {} updates in {:.1} s ({:.0} tokens/s); {train_part}{eval_part}; model saved to {}",
        state.step,
        state.train_seconds,
        state.tokens_seen as f64 / state.train_seconds.max(1e-9),
        output.display()
    ));
    for line in crate::train::memory::peak_report(&estimate, process_before, &device_peak) {
        log.info(&line);
    }
    Ok(())
}

/// The parameters the optimizer updates: all of them, or under LoRA the adapters and
/// the head (frozen ones get no gradient and no optimizer state).
fn trainable<B: burn::tensor::backend::AutodiffBackend, M: burn::module::Module<B>>(
    model: &M,
) -> Vec<crate::models::load::ParamInfo> {
    param_infos(model)
        .into_iter()
        .filter(|p| p.trainable)
        .collect()
}

fn initial_loss_scale() -> f32 {
    crate::train::loss_scale::INIT_SCALE
}

/// Where a TRL RewardTrainer metric goes in `metrics.jsonl`: under its own name, but
/// `accuracy` and `margin`, which rmtk already logs pooled over the pairs (TRL's average
/// its batches' values), go under `trl/`.
fn trl_name(name: &str) -> &str {
    match name {
        "accuracy" => "trl/accuracy",
        "margin" => "trl/margin",
        other => other,
    }
}
