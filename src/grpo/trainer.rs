//! The GRPO loop: rollout -> writing reward and verdict -> mixing, filtering and
//! resampling -> advantages -> clipped-surrogate updates, with metrics, samples,
//! evaluation on held-out prompts and atomic checkpoints.
//!
//! A step:
//! 1. Rounds of generation: each round takes as many new prompts as groups are still
//!    missing, samples `n` completions of each (every completion from its own random
//!    stream: seed, step, round, slot), scores them with the reward model, verifies
//!    them, mixes the two rewards per group and filters the groups (all violate,
//!    all above/below thresholds, no variance). Until the batch is full or
//!    `--max-generation-rounds` is reached.
//! 2. Log-probabilities of the old policy (only when more than one update uses the
//!    rollout) and of the reference (only when `--beta > 0`), without gradients.
//! 3. `--ppo-epochs` passes, each `--mini-batches` AdamW updates, each accumulating
//!    the gradients of micro-batches of `--micro-batch-size` sequences.

use crate::kernels::FusedOps;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::prelude::*;
use serde_json::{Map, Value, json};

use super::config::{GrpoConfig, Overlong, mixing_name};
use super::loss::{LossConfig, LossInputs, Normaliser, policy_loss};
use super::mixing::{self, DropReason, FilterConfig, MixConfig, Mixing};
use super::prompts::PromptRow;
use super::remote::RolloutServer;
use super::rollout::{RolloutSeed, generate_groups};
use super::trl_metrics::{self, LossMetrics, ZeroStdScope};
use crate::data::prefs::{Content, SeqSpec};
use crate::device::Job;
use crate::models::generate::SamplingParams;
use crate::models::linear::{dropout_seed, with_dropout};
use crate::models::llama::ContinuationBatch;
use crate::models::load::SaveDtype;
use crate::models::reward::RewardModel;
use crate::models::{LlamaForCausalLM, ModelDir, Tokenizer, load_causal_lm_in, save_causal_lm};
use crate::rm::LoadedRm;
use crate::train::metrics::{RunLog, bar_message, num};
use crate::train::{
    Accumulator, AdamW, AdamWConfig, Checkpoints, LrSchedule, MetricsLog, TrainRng, TrainerState,
    Updater,
};
use crate::train::{LossScale, checkpointing, loss_scale};
use crate::verify::reward_url::{RemoteReward, RewardItem};
use crate::verify::{Verdict, Verifier, VerifyItem, build_verifier};

pub const ARGS_FILE: &str = "grpo_args.json";
pub const SAMPLES_FILE: &str = "samples.jsonl";
pub const EVAL_SAMPLES_FILE: &str = "eval_samples.jsonl";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const SUMMARY_FILE: &str = "train_summary.json";
/// Evaluation draws from streams of its own, the same at every evaluation.
const EVAL_SEED_SALT: u64 = 0x5eed_e7a1;

/// Everything the loop needs, read and checked before any model loads.
pub struct GrpoJob {
    pub cfg: GrpoConfig,
    pub policy_dir: ModelDir,
    pub reference_dir: Option<ModelDir>,
    pub tokenizer: Tokenizer,
    pub train: Vec<PromptRow>,
    pub train_ids: Vec<Vec<u32>>,
    pub eval: Vec<PromptRow>,
    pub eval_ids: Vec<Vec<u32>>,
    pub rm: Option<(LoadedRm, SeqSpec)>,
    /// `--reward-url`: the writing reward from an HTTP endpoint (instead of `rm`).
    pub reward_url: Option<RemoteReward>,
    pub resume: Option<PathBuf>,
    pub log: RunLog,
}

impl Job for GrpoJob {
    type Output = ();

    fn run<B: FusedOps>(self, device: B::Device) -> Result<()> {
        train_loop::<B>(self, device)
    }
}

/// One completion with everything known about it.
struct Scored {
    prompt: usize,
    ids: Vec<u32>,
    text: String,
    truncated: bool,
    writing: f64,
    verdict: Verdict,
    reward: f64,
    /// The reward as TRL's GRPOTrainer logs it (`reward`): the mixed reward, or under
    /// GDPO the weighted sum `writing + w * pass` rather than its group-normalised form.
    trl_reward: f64,
    advantage: f64,
    kept: bool,
    round: usize,
    /// The sampled tokens' log-probabilities as the rollout server computed them
    /// (`--rollout-url`), for the importance-sampling correction.
    rollout_logp: Option<Vec<f32>>,
    /// How many policy versions the rollout's policy trailed the one it trains.
    staleness: u64,
}

/// Checks passed and made by constraint type over every completion scored for a step,
/// as `{"type": [passed, total]}` sorted by type: an IFEval or IFBench constraint counts
/// under its instruction id (`length_constraints:number_words`, `count:numbers`), a free-text one under `free_text`,
/// and a prompt without listed constraints (checked as a whole by the judge) under
/// `prompt`. `rmtk plot` draws it as pass rate by constraint type, early vs late steps.
fn constraint_type_counts(scored: &[Scored], rows: &[PromptRow]) -> Value {
    let mut counts: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    for s in scored {
        // One check per listed constraint, in order; one for the whole prompt otherwise.
        let constraints = rows[s.prompt].constraints.as_slice();
        for (k, check) in s.verdict.checks.iter().enumerate() {
            let kind = match constraints.get(k) {
                Some(constraint) => constraint.id().unwrap_or("free_text"),
                None => "prompt",
            };
            let entry = counts.entry(kind).or_default();
            entry.0 += u64::from(check.pass);
            entry.1 += 1;
        }
    }
    Value::Object(
        counts
            .into_iter()
            .map(|(kind, (passed, total))| (kind.to_string(), json!([passed, total])))
            .collect(),
    )
}

/// The rubric's metrics over `verdicts` (nothing when no verdict has a rubric):
/// `rubric_score_mean`/`_std` over the completions with a score (TRL's per-reward names
/// `rewards/rubric/mean`/`std` too), and `rubric_hard_pass_rate` over the hard items.
fn rubric_metrics<'a>(rec: &mut Map<String, Value>, verdicts: impl Iterator<Item = &'a Verdict>) {
    let (mut scores, mut hard, mut hard_passed, mut any) = (Vec::new(), 0usize, 0usize, false);
    for v in verdicts {
        any |= !v.rubric.is_empty();
        scores.extend(v.rubric_score);
        for item in v.rubric.iter().filter(|i| i.hard) {
            hard += 1;
            hard_passed += usize::from(item.verdict.pass);
        }
    }
    if !any {
        return;
    }
    if !scores.is_empty() {
        let (m, s) = (mixing::mean(&scores), mixing::std_dev(&scores));
        rec.insert("rubric_score_mean".into(), num(m));
        rec.insert("rubric_score_std".into(), num(s));
        rec.insert("rewards/rubric/mean".into(), num(m));
        rec.insert("rewards/rubric/std".into(), num(s));
    }
    if hard > 0 {
        rec.insert(
            "rubric_hard_pass_rate".into(),
            num(hard_passed as f64 / hard as f64),
        );
    }
}

/// A verdict's per-item rubric scores (null without a rubric).
fn rubric_scores(v: &Verdict) -> Value {
    if v.rubric.is_empty() {
        Value::Null
    } else {
        Value::Array(v.rubric.iter().map(|i| num(i.score)).collect())
    }
}

/// A group's outcome.
struct GroupOutcome {
    delta: f64,
    violators: usize,
    drop: Option<DropReason>,
}

/// Writing rewards of completions: the reward model reading prompt and response with
/// its own tokenizer, or the `--reward-url` endpoint given the prompt as the policy saw
/// it.
enum WritingScorer<'a, B: Backend> {
    Model {
        rm: &'a LoadedRm,
        spec: &'a SeqSpec,
        model: &'a RewardModel<B>,
        vocab: usize,
        batch_size: usize,
    },
    Url {
        reward: &'a RemoteReward,
        tokenizer: &'a Tokenizer,
    },
}

/// A completion to score: its prompt's row and token ids, and its text.
type ScoreItem<'a> = (&'a PromptRow, &'a [u32], &'a str);

impl<B: FusedOps> WritingScorer<'_, B> {
    fn score(
        &self,
        items: &[ScoreItem<'_>],
        stop: &Stop<'_>,
        device: &B::Device,
    ) -> Result<Vec<f64>> {
        match self {
            WritingScorer::Model {
                rm,
                spec,
                model,
                vocab,
                batch_size,
            } => score_with_model(rm, spec, model, *vocab, *batch_size, items, device),
            WritingScorer::Url { reward, tokenizer } => {
                // The prompt as the policy saw it (chat template included), decoded once
                // per group (neighbours with the same prompt).
                let mut prompts: Vec<String> = Vec::with_capacity(items.len());
                let mut names: Vec<String> = Vec::with_capacity(items.len());
                for group in items.chunk_by(|a, b| std::ptr::eq(a.0, b.0)) {
                    let text = tokenizer.decode(group[0].1, false).map_err(|e| {
                        anyhow::anyhow!("decoding prompt {}: {e}", group[0].0.source)
                    })?;
                    for j in 0..group.len() {
                        prompts.push(text.clone());
                        names.push(format!("completion {j} of prompt {}", group[0].0.source));
                    }
                }
                let reward_items: Vec<RewardItem<'_>> = items
                    .iter()
                    .zip(prompts.iter().zip(names))
                    .map(|((_, _, response), (prompt, name))| RewardItem {
                        prompt,
                        response,
                        label: "",
                        name,
                    })
                    .collect();
                reward.score(&reward_items).map_err(|e| {
                    let what = if e.is_endpoint_down() {
                        "the reward endpoint is down (it did not answer through its retries)"
                    } else {
                        "the reward endpoint failed"
                    };
                    stop.error(what, &e)
                })
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            WritingScorer::Model { rm, .. } => format!("reward model {}", rm.dir.name),
            WritingScorer::Url { reward, .. } => format!("reward endpoint {}", reward.url()),
        }
    }
}

fn score_with_model<B: FusedOps>(
    rm: &LoadedRm,
    spec: &SeqSpec,
    model: &RewardModel<B>,
    vocab: usize,
    batch_size: usize,
    items: &[ScoreItem<'_>],
    device: &B::Device,
) -> Result<Vec<f64>> {
    let encoder = crate::data::prefs::SeqEncoder::new(&rm.tokenizer, spec.clone(), vocab);
    let mut seqs = Vec::with_capacity(items.len());
    // A group's completions (neighbours with the same prompt) are encoded together:
    // if the prompt must be cut, it is cut once, so they are judged on the same prompt.
    for group in items.chunk_by(|a, b| std::ptr::eq(a.0, b.0)) {
        let row = group[0].0;
        let prompt = match &row.prompt {
            crate::data::Prompt::Text(t) => Content::Text(t.clone()),
            crate::data::Prompt::Chat(m) => Content::Chat(m.clone()),
        };
        let responses: Vec<Content> = group
            .iter()
            .map(|(_, _, r)| Content::Text((*r).to_string()))
            .collect();
        let refs: Vec<&Content> = responses.iter().collect();
        let group_seqs = encoder
            .encode_group(Some(&prompt), &refs)
            .map_err(|m| anyhow::anyhow!("reward model input for prompt {}: {m}", row.source))?;
        seqs.extend(group_seqs);
    }
    let refs: Vec<&crate::data::prefs::Seq> = seqs.iter().collect();
    let rewards = rm.rewards(model, &refs, batch_size, device, |_| {})?;
    Ok(rewards.into_iter().map(f64::from).collect())
}

/// Rollouts requested ahead (`--async-rollouts`): the prompts, the thread generating them
/// (its answer and the policy version it asked for), and the prompt order and generator
/// state from before the prompts were drawn.
struct Prefetch {
    indices: Vec<usize>,
    handle: std::thread::JoinHandle<(
        std::result::Result<super::remote::RemoteGroups, String>,
        u64,
    )>,
    before: (Vec<u32>, usize, u64, crate::train::rng::RngState),
}

/// Save the policy's adapter where the rollout server reads it and load it there as
/// version `version`.
fn push_policy<B: Backend>(
    server: &RolloutServer,
    policy: &LlamaForCausalLM<B>,
    version: u64,
    job: &GrpoJob,
    lora: Option<&crate::models::peft::LoraConfig>,
) -> std::result::Result<(), String> {
    let dir = server.adapter_path(version);
    save_causal_lm(policy, &dir, &job.policy_dir, SaveDtype::F32, lora)
        .map_err(|e| format!("{e:#}"))?;
    server.push(version).map(|_| ())
}

/// Where a run stands when an endpoint fails: the error that stops it says which
/// checkpoint is intact and how to resume.
struct Stop<'a> {
    step: u64,
    checkpoints: &'a Checkpoints,
    output: &'a Path,
}

impl Stop<'_> {
    fn error(&self, what: &str, e: &dyn std::fmt::Display) -> anyhow::Error {
        let kept = match self.checkpoints.latest() {
            Ok(Some(dir)) => format!("the last checkpoint, {}, is intact", dir.display()),
            _ => "no checkpoint had been written yet".to_string(),
        };
        anyhow::anyhow!(
            "{what} at step {}: {e}; stopping. {kept}: continue with `rmtk grpo --resume {}` once it is back",
            self.step + 1,
            self.output.display()
        )
    }
}

/// Per-token log-probabilities of continuations under `lm`, without gradients, one
/// vector per sequence (its continuation's length).
fn seq_logprobs<B: FusedOps>(
    lm: &LlamaForCausalLM<B>,
    seqs: &[(&[u32], &[u32])],
    micro: usize,
    chunk: usize,
    pad: u32,
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(seqs.len());
    for part in seqs.chunks(micro.max(1)) {
        let prompts: Vec<&[u32]> = part.iter().map(|s| s.0).collect();
        let conts: Vec<&[u32]> = part.iter().map(|s| s.1).collect();
        let batch = ContinuationBatch::<B>::new(&prompts, &conts, pad, device);
        let (logp, _) = lm.continuation_logprobs(&batch, chunk, false);
        let width = batch.width;
        let v = logp
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32 log-probabilities");
        for (r, c) in conts.iter().enumerate() {
            out.push(v[r * width..r * width + c.len()].to_vec());
        }
    }
    out
}

/// Rows of per-sequence values padded to `width` as a `[n, width]` tensor.
fn padded<B: FusedOps>(rows: &[&[f32]], width: usize, device: &B::Device) -> Tensor<B, 2> {
    let mut data = Vec::with_capacity(rows.len() * width);
    for r in rows {
        data.extend_from_slice(r);
        data.extend(std::iter::repeat_n(0.0f32, width - r.len()));
    }
    Tensor::from_data(TensorData::new(data, [rows.len(), width]), device)
}

fn stats(x: &[f64]) -> (f64, f64) {
    (mixing::mean(x), mixing::std_dev(x))
}

/// Keeps the lines of a JSONL file whose `step` is at most `step` (a resumed run's
/// file then reads as if it had never stopped).
fn truncate_jsonl(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|v| v.get("step").and_then(Value::as_u64))
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    crate::util::write_atomic(path, kept.as_bytes())
        .with_context(|| format!("rewriting {}", path.display()))
}

fn append_jsonl(path: &Path, lines: &[Value]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut text = String::new();
    for l in lines {
        text.push_str(&l.to_string());
        text.push('\n');
    }
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The prompt order: a permutation per epoch, drawn from the run's RNG; kept in the
/// trainer state with the position in it.
struct PromptOrder {
    order: Vec<u32>,
    cursor: usize,
    epoch: u64,
}

impl PromptOrder {
    fn take(&mut self, n: usize, total: usize, rng: &mut TrainRng) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if self.cursor >= self.order.len() {
                self.order = (0..total as u32).collect();
                rng.shuffle(&mut self.order);
                self.cursor = 0;
                self.epoch += 1;
            }
            out.push(self.order[self.cursor] as usize);
            self.cursor += 1;
        }
        out
    }
}

/// Verdicts for the completions (`names` says how errors name each one); a failure stops
/// the run (its checkpoint intact).
fn verify_or_stop(
    verifier: &Verifier,
    items: &[VerifyItem<'_>],
    names: &dyn Fn(usize) -> String,
    stop: &Stop<'_>,
) -> Result<Vec<Verdict>> {
    verifier.verify_named(items, names).map_err(|e| {
        let what = if e.is_endpoint_down() {
            "the verifier's endpoint is down (it did not answer through its retries)"
        } else {
            "the verifier failed"
        };
        stop.error(what, &e)
    })
}

/// An evaluation on the held-out prompts: pass rate, writing reward, lengths.
#[allow(clippy::too_many_arguments)]
fn evaluate<B: FusedOps>(
    lm: &LlamaForCausalLM<B>,
    job: &GrpoJob,
    scorer: Option<&WritingScorer<'_, B>>,
    verifier: &Verifier,
    step: u64,
    checkpoints: &Checkpoints,
    device: &B::Device,
) -> Result<(Map<String, Value>, Vec<Value>)> {
    let cfg = &job.cfg;
    let params = SamplingParams {
        temperature: cfg.eval_temperature.unwrap_or(cfg.temperature),
        top_p: cfg.top_p,
        top_k: cfg.top_k,
        max_new_tokens: cfg.max_new_tokens,
        stop: Vec::new(),
    };
    let n = if params.is_greedy() {
        1
    } else {
        cfg.eval_num_generations
    };
    let indices: Vec<usize> = (0..job.eval.len()).collect();
    let bar = crate::util::progress_bar((job.eval.len() * n) as u64, "eval");
    let groups = generate_groups(
        lm,
        &job.tokenizer,
        &job.eval_ids,
        &indices,
        n,
        &params,
        cfg.gen_batch_size,
        RolloutSeed {
            seed: cfg.seed ^ EVAL_SEED_SALT,
            step: 0,
            round: 0,
        },
        |k| bar.inc(k as u64),
    )?;
    bar.finish_and_clear();
    let flat: Vec<(usize, &crate::models::generate::Completion)> = groups
        .iter()
        .flat_map(|g| g.completions.iter().map(move |c| (g.prompt, c)))
        .collect();
    let items: Vec<VerifyItem<'_>> = flat
        .iter()
        .map(|(p, c)| VerifyItem {
            prompt: &job.eval[*p].text,
            response: &c.text,
            constraints: &job.eval[*p].constraints,
        })
        .collect();
    let stop = Stop {
        step,
        checkpoints,
        output: cfg.output(),
    };
    let name = |i: usize| {
        let (p, _) = flat[i];
        format!("eval completion {} of prompt {}", i % n, job.eval[p].source)
    };
    let verdicts = verify_or_stop(verifier, &items, &name, &stop)?;
    let writing = match scorer {
        Some(s) => {
            let pairs: Vec<ScoreItem<'_>> = flat
                .iter()
                .map(|(p, c)| (&job.eval[*p], job.eval_ids[*p].as_slice(), c.text.as_str()))
                .collect();
            Some(s.score(&pairs, &stop, device)?)
        }
        None => None,
    };
    let passes = verdicts.iter().filter(|v| v.pass).count();
    let lens: Vec<f64> = flat.iter().map(|(_, c)| c.ids.len() as f64).collect();
    let mut rubric_rec = Map::new();
    rubric_metrics(&mut rubric_rec, verdicts.iter());
    let truncated = flat.iter().filter(|(_, c)| c.truncated()).count();
    let mut rec = Map::new();
    rec.insert("step".into(), json!(step));
    rec.insert("split".into(), json!("eval"));
    rec.insert(
        "pass_rate".into(),
        num(passes as f64 / flat.len().max(1) as f64),
    );
    if let Some(w) = &writing {
        let finite: Vec<f64> = w.iter().copied().filter(|v| v.is_finite()).collect();
        let (m, s) = stats(&finite);
        rec.insert("writing_reward_mean".into(), num(m));
        rec.insert("writing_reward_std".into(), num(s));
    }
    rec.extend(rubric_rec);
    rec.insert("response_len_mean".into(), num(mixing::mean(&lens)));
    rec.insert(
        "response_len_max".into(),
        num(lens.iter().copied().fold(0.0, f64::max)),
    );
    rec.insert(
        "truncation_rate".into(),
        num(truncated as f64 / flat.len().max(1) as f64),
    );
    rec.insert("prompts".into(), json!(job.eval.len()));
    rec.insert("completions".into(), json!(flat.len()));
    // TRL's names for the lengths (its evaluation logs them too).
    let token_counts: Vec<usize> = flat.iter().map(|(_, c)| c.ids.len()).collect();
    let trunc: Vec<bool> = flat.iter().map(|(_, c)| c.truncated()).collect();
    if let Some(c) = trl_metrics::completion_stats(&token_counts, &trunc) {
        for (name, v) in c.named() {
            rec.insert(name.into(), num(v));
        }
    }
    let samples: Vec<Value> = flat
        .iter()
        .zip(&verdicts)
        .enumerate()
        .map(|(i, ((p, c), v))| {
            json!({
                "step": step,
                "prompt": job.eval[*p].text,
                "completion": c.text,
                "pass": v.pass,
                "reasons": v.reasons().collect::<Vec<_>>(),
                "rubric_score": v.rubric_score.map(num),
                "rubric_scores": rubric_scores(v),
                "writing_reward": writing.as_ref().map(|w| num(w[i])),
                "tokens": c.ids.len(),
                "truncated": c.truncated(),
            })
        })
        .collect();
    Ok((rec, samples))
}

fn eval_line(rec: &Map<String, Value>) -> String {
    format!(
        "eval at step {}: {}",
        rec["step"],
        bar_message(
            rec,
            &[
                ("pass_rate", "pass rate"),
                ("writing_reward_mean", "writing reward"),
                ("writing_reward_std", "std"),
                ("response_len_mean", "length"),
                ("truncation_rate", "truncated"),
            ]
        )
    )
}

fn train_loop<B: FusedOps>(mut job: GrpoJob, device: B::Device) -> Result<()> {
    type Ad<B> = Autodiff<B>;
    let cfg = job.cfg.clone();
    let mut log = std::mem::replace(&mut job.log, RunLog::new("grpo"));
    let job = job;
    let output = cfg.output().to_path_buf();
    let checkpoints = Checkpoints::new(&output);
    let n = cfg.num_generations;
    let pad = job.tokenizer.pad_id();

    // Models.
    let process_before = crate::train::memory::resident().unwrap_or(0);
    let t_load = Instant::now();
    // The weights' dtype and, in mixed precision, the activations'; a separate reference
    // (frozen) is held in the compute dtype.
    let lora_run = cfg.lora.lora_r > 0 || job.policy_dir.adapter.is_some();
    let compute = cfg.dtype.burn();
    let (dtype, activations) = cfg.dtype.training_dtypes(lora_run);
    let mut policy: LlamaForCausalLM<Ad<B>> = match &job.resume {
        Some(ck) => {
            checkpoints.clean_partial();
            let mut dir = ModelDir::open_dir(ck, &ck.display().to_string())?;
            if dir.adapter.is_some() {
                // An adapter checkpoint's base is the run's policy, random weights too.
                dir.random_weights = job.policy_dir.random_weights;
            }
            load_causal_lm_in(&dir, &device, dtype)?
        }
        None => load_causal_lm_in(&job.policy_dir, &device, dtype)?,
    };
    if let Some(a) = activations {
        policy.model.set_activations(a);
    }
    let new_lora = cfg.lora.config(&job.policy_dir)?;
    if new_lora.is_some() && job.policy_dir.adapter.is_some() {
        bail!(
            "--policy {} is already a LoRA adapter: training it goes on without --lora-r",
            job.policy_dir.name
        );
    }
    if let (Some(lora), None) = (&new_lora, &job.resume) {
        let (adapted, paths) = policy.apply_lora(lora, cfg.seed)?;
        policy = adapted;
        log.info(&format!(
            "LoRA r={} alpha={}{} on {} linear layers ({} ...); the base is frozen",
            lora.shape.r,
            lora.shape.alpha,
            if lora.shape.rslora { " (rsLoRA)" } else { "" },
            paths.len(),
            paths.first().map_or("", String::as_str)
        ));
    }
    // The adapter settings the run saves with: the new adapter's, or those of the
    // adapter it continues.
    let lora = new_lora.or_else(|| job.policy_dir.adapter.as_ref().map(|a| a.config.clone()));
    if lora.is_none()
        && let Some(url) = &cfg.rollout.rollout_url
    {
        bail!(
            "--rollout-url {url} needs a LoRA policy: this run trains every weight, and only LoRA adapters are synced to a rollout server"
        );
    }
    // Under LoRA the initial policy is the base: the same weights, adapters off.
    let reference_is_base = cfg.beta > 0.0 && lora.is_some() && cfg.reference.is_none();
    let reference: Option<LlamaForCausalLM<B>> = match &job.reference_dir {
        Some(_) if reference_is_base => Some(policy.valid().without_adapters()),
        Some(dir) if cfg.beta > 0.0 => Some(load_causal_lm_in(dir, &device, compute)?),
        _ => None,
    };
    let rm_model: Option<RewardModel<B>> = match &job.rm {
        Some((rm, _)) => Some(rm.load::<B>(&device)?),
        None => None,
    };
    let rm_vocab = match &job.rm {
        Some((rm, _)) => crate::rm::model_vocab(&rm.dir)?,
        None => 0,
    };
    let scorer = match (&job.rm, &rm_model, &job.reward_url) {
        (Some((rm, spec)), Some(model), _) => Some(WritingScorer::Model {
            rm,
            spec,
            model,
            vocab: rm_vocab,
            batch_size: cfg.rm_batch_size,
        }),
        (_, _, Some(reward)) => Some(WritingScorer::Url {
            reward,
            tokenizer: &job.tokenizer,
        }),
        _ => None,
    };
    let verifier = build_verifier::<B>(&cfg.verifier, &device)?;
    log.info(&format!(
        "models loaded in {:.1} s: policy {}{}{}; verifier: {}",
        t_load.elapsed().as_secs_f64(),
        job.policy_dir.name,
        reference
            .as_ref()
            .map(|_| format!(
                ", reference {}",
                job.reference_dir.as_ref().map_or("", |d| d.name.as_str())
            ))
            .unwrap_or_default(),
        scorer
            .as_ref()
            .map(|s| format!(", {}", s.describe()))
            .unwrap_or_default(),
        cfg.verifier.mode().as_str()
    ));
    // What a step should take (`train::memory::estimate_grpo`), beside what the process
    // held before loading; the measured peak is logged at the end.
    let mut device_peak = crate::train::memory::DevicePeak::default();
    let estimate = {
        use crate::train::memory::{Arch, GrpoPlan, Plan, estimate_grpo};
        let prompt_tokens = job.train_ids.iter().map(Vec::len).max().unwrap_or(0);
        let step_sequences = cfg.batch_prompts * n;
        let update_sequences = step_sequences.div_ceil(cfg.mini_batches.max(1));
        let micro = cfg.micro_batch_size.min(update_sequences).max(1);
        let plan = GrpoPlan {
            update: Plan {
                tokens: micro * (prompt_tokens + cfg.max_new_tokens),
                dtype_bytes: cfg.dtype.burn().size(),
                lora: lora
                    .as_ref()
                    .map(|l| (l.shape.r, l.targets.clone(), l.shape.dropout > 0.0)),
                checkpointing: cfg.gradient_checkpointing,
                grad_accum: update_sequences.div_ceil(micro),
                training: true,
            },
            micro_sequences: micro,
            gen_sequences: cfg.gen_batch_size.min(step_sequences),
            prompt_tokens,
            new_tokens: cfg.max_new_tokens,
            logprob_chunk: cfg.logprob_chunk,
            reference: reference.is_some() && !reference_is_base,
            reward_model: match &job.rm {
                Some((rm, _)) => Arch::of(&rm.dir)?.params as u64 * 4,
                None => 0,
            },
        };
        estimate_grpo(&Arch::of(&job.policy_dir)?, &plan)
    };
    log.info(&format!(
        "memory estimate for a step (the longest prompt, every completion at its limit): {} + the process's {} before loading",
        crate::train::memory::describe(&estimate),
        crate::train::memory::gib(process_before)
    ));

    // Optimizer and state.
    let adam = AdamWConfig {
        beta1: cfg.adam_beta1,
        beta2: cfg.adam_beta2,
        eps: cfg.adam_eps,
        weight_decay: cfg.weight_decay,
    };
    let updates_per_step = (cfg.ppo_epochs * cfg.mini_batches) as u64;
    let schedule = LrSchedule {
        kind: cfg.lr_scheduler,
        base_lr: cfg.lr,
        warmup_steps: cfg.warmup_steps * updates_per_step,
        total_steps: cfg.max_steps * updates_per_step,
    };
    // Under LoRA only the adapters take gradients and optimizer state.
    let trainable: Vec<_> = crate::models::load::param_infos(&policy)
        .into_iter()
        .filter(|p| p.trainable)
        .collect();
    let mut optim = AdamW::<B>::new(adam, trainable);
    let (mut state, mut rng, mut order) = match &job.resume {
        Some(ck) => {
            optim.load(&ck.join(OPTIMIZER_FILE), &device)?;
            let state = TrainerState::load(ck)?;
            let rng = TrainRng::from_state(&state.rng).map_err(anyhow::Error::msg)?;
            let order = PromptOrder {
                order: state.order.first().cloned().unwrap_or_default(),
                cursor: state.extra["cursor"].as_u64().unwrap_or(0) as usize,
                epoch: state.epoch,
            };
            log.info(&format!(
                "resuming {} at step {} of {}",
                ck.display(),
                state.step,
                cfg.max_steps
            ));
            (state, rng, order)
        }
        None => {
            let rng = TrainRng::new(cfg.seed);
            let state = TrainerState {
                step: 0,
                epoch: 0,
                order: Vec::new(),
                rng: rng.state(),
                tokens_seen: 0,
                train_seconds: 0.0,
                extra: json!({"cursor": 0, "skipped_steps": 0}),
                loss_scale: LossScale::for_training(cfg.dtype, cfg.initial_loss_scale),
                rmtk_version: env!("CARGO_PKG_VERSION").into(),
            };
            (
                state,
                rng,
                PromptOrder {
                    order: Vec::new(),
                    cursor: 0,
                    epoch: 0,
                },
            )
        }
    };
    let mut updater = Updater::new(optim, schedule, Some(cfg.max_grad_norm));
    updater.loss_scale = state.loss_scale;
    let mut metrics = match &job.resume {
        Some(_) => {
            truncate_jsonl(&output.join(SAMPLES_FILE), state.step)?;
            truncate_jsonl(&output.join(EVAL_SAMPLES_FILE), state.step)?;
            MetricsLog::resume(&output, state.step)?
        }
        None => {
            for f in [SAMPLES_FILE, EVAL_SAMPLES_FILE] {
                crate::util::write_atomic(&output.join(f), b"")
                    .with_context(|| format!("creating {}", output.join(f).display()))?;
            }
            MetricsLog::create(&output)?
        }
    };

    let mix_cfg = MixConfig {
        mixing: cfg.mixing,
        gamma: cfg.gamma,
        constraint_weight: cfg.constraint_weight,
        rubric_weight: cfg.rubric_weight,
    };
    let filter_cfg = FilterConfig {
        high: cfg.filter_high,
        low: cfg.filter_low,
        std_eps: cfg.filter_std_eps,
    };
    let loss_cfg = LossConfig {
        clip_low: cfg.clip_low,
        clip_high: cfg.clip_high,
        beta: if reference.is_some() { cfg.beta } else { 0.0 },
        aggregation: cfg.loss_agg,
    };
    let params = SamplingParams {
        temperature: cfg.temperature,
        top_p: cfg.top_p,
        top_k: cfg.top_k,
        max_new_tokens: cfg.max_new_tokens,
        stop: Vec::new(),
    };
    log.info(&format!(
        "{} training prompts, {} held out; {} steps of {} groups x {} completions; mixing {} (gamma {}), loss {:?}, clip [{}, {}], beta {}, lr {}",
        job.train.len(),
        job.eval.len(),
        cfg.max_steps,
        cfg.batch_prompts,
        n,
        mixing_name(cfg.mixing),
        cfg.gamma,
        cfg.loss_agg,
        cfg.clip_low,
        cfg.clip_high,
        loss_cfg.beta,
        cfg.lr
    ));

    let run_eval = |policy: &LlamaForCausalLM<Ad<B>>,
                    step: u64,
                    metrics: &mut MetricsLog,
                    log: &mut RunLog|
     -> Result<Option<Map<String, Value>>> {
        if job.eval.is_empty() {
            return Ok(None);
        }
        let inner = policy.valid();
        let (rec, samples) = evaluate(
            &inner,
            &job,
            scorer.as_ref(),
            &verifier,
            step,
            &checkpoints,
            &device,
        )?;
        log.info(&eval_line(&rec));
        metrics.log(&rec)?;
        append_jsonl(&output.join(EVAL_SAMPLES_FILE), &samples)?;
        Ok(Some(rec))
    };

    // Rollouts from a server: the policy goes there as a LoRA adapter, version
    // `state.step`, now and after every update.
    let server: Option<std::sync::Arc<RolloutServer>> = match &cfg.rollout.rollout_url {
        Some(_) => {
            let server = RolloutServer::new(&cfg.rollout, &output)?;
            if let Some(model) = &cfg.rollout.rollout_model {
                server
                    .check_model(model)
                    .map_err(|e| anyhow::anyhow!("--rollout-model {model}: {e}"))?;
            }
            push_policy(&server, &policy.valid(), state.step, &job, lora.as_ref()).map_err(
                |e| {
                    Stop {
                        step: state.step,
                        checkpoints: &checkpoints,
                        output: &output,
                    }
                    .error("syncing the policy to the rollout server", &e)
                },
            )?;
            log.info(&format!(
                "rollouts from {} ({}); policy synced as adapter {}",
                server.url(),
                if cfg.rollout.async_rollouts {
                    format!(
                        "asynchronous, up to {} steps ahead",
                        cfg.rollout.max_staleness
                    )
                } else {
                    "synchronous".to_string()
                },
                RolloutServer::adapter_name(state.step)
            ));
            Some(std::sync::Arc::new(server))
        }
        None => None,
    };
    // --async-rollouts: the first rounds of the next --max-staleness steps, requested
    // ahead, oldest first.
    let mut prefetch: std::collections::VecDeque<Prefetch> = Default::default();

    let mut last_eval = None;
    if state.step == 0 {
        last_eval = run_eval(&policy, 0, &mut metrics, &mut log)?;
    }
    let bar = crate::util::progress_bar(cfg.max_steps, "grpo");
    bar.set_position(state.step);
    log.set_bar(Some(bar.clone()));
    let started = Instant::now();
    let seconds_before = state.train_seconds;
    let mut last_train: Option<Map<String, Value>> = None;

    while state.step < cfg.max_steps {
        let step = state.step;
        let t_step = Instant::now();
        let (mut t_gen, mut t_score) = (0.0f64, 0.0f64);
        let mut scored: Vec<Scored> = Vec::new();
        let mut outcomes: Vec<GroupOutcome> = Vec::new();
        let mut kept_groups = 0usize;
        let mut rounds = 0usize;
        let mut nonfinite = 0usize;
        let inner = policy.valid();
        while kept_groups < cfg.batch_prompts && rounds < cfg.max_generation_rounds {
            let need = cfg.batch_prompts - kept_groups;
            // The first round's rollouts may have been generated during the last update
            // (--async-rollouts), for prompts drawn then.
            let ahead = if rounds == 0 {
                prefetch.pop_front()
            } else {
                None
            };
            let (idx, prefetched) = match ahead {
                Some(p) => (p.indices, Some(p.handle)),
                None => (order.take(need, job.train.len(), &mut rng), None),
            };
            let prompts: Vec<Vec<u32>> = idx.iter().map(|&i| job.train_ids[i].clone()).collect();
            let t0 = Instant::now();
            bar.set_message(format!(
                "step {}: generating {} x {n} (round {})",
                step + 1,
                idx.len(),
                rounds + 1
            ));
            let rollout_seed = RolloutSeed {
                seed: cfg.seed,
                step,
                round: rounds as u64,
            };
            let (new_groups, remote_logps, rollout_version) = match &server {
                None => (
                    generate_groups(
                        &inner,
                        &job.tokenizer,
                        &prompts,
                        &idx,
                        n,
                        &params,
                        cfg.gen_batch_size,
                        rollout_seed,
                        |_| {},
                    )?,
                    None,
                    state.step,
                ),
                Some(server) => {
                    let stop = Stop {
                        step,
                        checkpoints: &checkpoints,
                        output: &output,
                    };
                    let prefetched = prefetched
                        .map(|h| {
                            h.join()
                                .map_err(|_| anyhow::anyhow!("the rollout thread panicked"))
                        })
                        .transpose()?;
                    let (got, version) = match prefetched {
                        Some((got, version)) => (got, version),
                        None => (
                            server.generate_groups(
                                &RolloutServer::adapter_name(state.step),
                                &prompts,
                                &idx,
                                n,
                                &params,
                                rollout_seed,
                            ),
                            state.step,
                        ),
                    };
                    let got = got.map_err(|e| stop.error("rollouts", &e))?;
                    let (groups, logps): (Vec<_>, Vec<_>) = got.into_iter().unzip();
                    let logps: Vec<Option<Vec<f32>>> =
                        logps.into_iter().flatten().map(Some).collect();
                    (groups, Some(logps), version)
                }
            };
            let mut rollout_logps = remote_logps.into_iter().flatten();
            t_gen += t0.elapsed().as_secs_f64();
            device_peak.sample::<B>(&device);
            let t1 = Instant::now();
            // (prompt, completion), group after group, `n` each.
            let flat: Vec<(usize, &crate::models::generate::Completion)> = new_groups
                .iter()
                .flat_map(|grp| grp.completions.iter().map(move |c| (grp.prompt, c)))
                .collect();
            let items: Vec<VerifyItem<'_>> = flat
                .iter()
                .map(|(p, c)| {
                    let row = &job.train[*p];
                    VerifyItem {
                        prompt: &row.text,
                        response: &c.text,
                        constraints: &row.constraints,
                    }
                })
                .collect();
            let stop = Stop {
                step,
                checkpoints: &checkpoints,
                output: &output,
            };
            let name = |i: usize| {
                let (p, _) = flat[i];
                format!("completion {} of prompt {}", i % n, job.train[p].source)
            };
            let verdicts = verify_or_stop(&verifier, &items, &name, &stop)?;
            let writing: Vec<f64> = match &scorer {
                Some(s) => {
                    let pairs: Vec<ScoreItem<'_>> = flat
                        .iter()
                        .map(|(p, c)| {
                            (
                                &job.train[*p],
                                job.train_ids[*p].as_slice(),
                                c.text.as_str(),
                            )
                        })
                        .collect();
                    s.score(&pairs, &stop, &device)?
                }
                None => vec![0.0; flat.len()],
            };
            t_score += t1.elapsed().as_secs_f64();
            nonfinite += writing.iter().filter(|w| !w.is_finite()).count();
            let start = scored.len();
            for ((p, c), (verdict, w)) in flat.iter().zip(verdicts.into_iter().zip(writing)) {
                scored.push(Scored {
                    prompt: *p,
                    ids: c.ids.clone(),
                    text: c.text.clone(),
                    truncated: c.truncated(),
                    writing: w,
                    verdict,
                    reward: 0.0,
                    trl_reward: 0.0,
                    advantage: 0.0,
                    kept: false,
                    round: rounds,
                    rollout_logp: rollout_logps.next().flatten(),
                    staleness: state.step - rollout_version,
                });
            }
            rounds += 1;
            if nonfinite > 0 {
                break;
            }
            // Mix, filter and take advantages, group by group.
            for first in (start..scored.len()).step_by(n) {
                let members: Vec<usize> = (first..first + n).collect();
                let mut writing: Vec<f64> = members.iter().map(|&i| scored[i].writing).collect();
                if cfg.overlong == Overlong::Soft && cfg.mixing != Mixing::ConstraintOnly {
                    for (w, &i) in writing.iter_mut().zip(&members) {
                        *w += cfg.overlong_penalty
                            * mixing::soft_length_penalty(
                                scored[i].ids.len(),
                                cfg.max_new_tokens,
                                cfg.overlong_cache,
                            );
                    }
                }
                let pass: Vec<bool> = members.iter().map(|&i| scored[i].verdict.pass).collect();
                // The group's rubric scores, when its prompt has a rubric (0 for a
                // response without a score: its rubric has no weighted soft item).
                let rubric: Vec<f64> = if job.train[scored[first].prompt]
                    .constraints
                    .rubric()
                    .is_empty()
                {
                    Vec::new()
                } else {
                    members
                        .iter()
                        .map(|&i| scored[i].verdict.rubric_score.unwrap_or(0.0))
                        .collect()
                };
                let mut mixed = mixing::mix_with_rubric(&writing, &pass, &rubric, &mix_cfg);
                if cfg.overlong == Overlong::Soft && cfg.mixing == Mixing::ConstraintOnly {
                    for (r, &i) in mixed.rewards.iter_mut().zip(&members) {
                        *r += cfg.overlong_penalty
                            * mixing::soft_length_penalty(
                                scored[i].ids.len(),
                                cfg.max_new_tokens,
                                cfg.overlong_cache,
                            );
                    }
                }
                let drop = mixing::filter(&mixed, n, cfg.mixing, &filter_cfg);
                // GDPO's advantages are the batch's (set below, once the batch is whole).
                let adv = if cfg.mixing == Mixing::Gdpo {
                    vec![0.0; n]
                } else {
                    mixing::advantages(&mixed.rewards, cfg.advantage_scale, cfg.advantage_eps)
                };
                for (k, &i) in members.iter().enumerate() {
                    scored[i].reward = mixed.rewards[k];
                    scored[i].trl_reward = if cfg.mixing == Mixing::Gdpo {
                        writing[k]
                            + cfg.constraint_weight * f64::from(u8::from(pass[k]))
                            + cfg.rubric_weight * rubric.get(k).copied().unwrap_or(0.0)
                    } else {
                        mixed.rewards[k]
                    };
                    scored[i].advantage = adv[k];
                    scored[i].kept = drop.is_none();
                }
                if drop.is_none() {
                    kept_groups += 1;
                }
                outcomes.push(GroupOutcome {
                    delta: mixed.delta,
                    violators: mixed.violators,
                    drop,
                });
            }
        }
        // --async-rollouts: the first rounds of the next K steps are requested now, from
        // the current policy version, and generated while this and the next updates run:
        // a step's rollouts are at most K versions old.
        while let Some(server) = &server
            && cfg.rollout.async_rollouts
            && (prefetch.len() as u64) < cfg.rollout.max_staleness
            && state.step + 1 + (prefetch.len() as u64) < cfg.max_steps
        {
            let ahead = step + 1 + prefetch.len() as u64;
            let before = (order.order.clone(), order.cursor, order.epoch, rng.state());
            let indices = order.take(cfg.batch_prompts, job.train.len(), &mut rng);
            let prompts: Vec<Vec<u32>> =
                indices.iter().map(|&i| job.train_ids[i].clone()).collect();
            let (server, params, idx) = (server.clone(), params.clone(), indices.clone());
            let version = state.step;
            let seed = RolloutSeed {
                seed: cfg.seed,
                step: ahead,
                round: 0,
            };
            let handle = std::thread::spawn(move || {
                let name = RolloutServer::adapter_name(version);
                let got = server.generate_groups(&name, &prompts, &idx, n, &params, seed);
                (got, version)
            });
            prefetch.push_back(Prefetch {
                indices,
                handle,
                before,
            });
        }
        if cfg.mixing == Mixing::Gdpo {
            // GDPO normalises the summed rewards over the batch (every kept response),
            // not within each group.
            let kept: Vec<usize> = (0..scored.len()).filter(|&i| scored[i].kept).collect();
            let rewards: Vec<f64> = kept.iter().map(|&i| scored[i].reward).collect();
            let adv = mixing::advantages(&rewards, cfg.advantage_scale, cfg.advantage_eps);
            for (&i, a) in kept.iter().zip(adv) {
                scored[i].advantage = a;
            }
        }

        // Metrics of everything generated this step.
        let all_writing: Vec<f64> = scored
            .iter()
            .map(|s| s.writing)
            .filter(|w| w.is_finite())
            .collect();
        let (w_mean, w_std) = stats(&all_writing);
        let passes = scored.iter().filter(|s| s.verdict.pass).count();
        let lens: Vec<f64> = scored.iter().map(|s| s.ids.len() as f64).collect();
        let gen_tokens: usize = scored.iter().map(|s| s.ids.len()).sum();
        let truncated = scored.iter().filter(|s| s.truncated).count();
        let total = scored.len().max(1) as f64;
        let mut rec = Map::new();
        rec.insert("step".into(), json!(step + 1));
        rec.insert("pass_rate".into(), num(passes as f64 / total));
        if scorer.is_some() {
            rec.insert("writing_reward_mean".into(), num(w_mean));
            rec.insert("writing_reward_std".into(), num(w_std));
        }
        rubric_metrics(&mut rec, scored.iter().map(|s| &s.verdict));
        rec.insert("generation_rounds".into(), json!(rounds));
        rec.insert("response_len_mean".into(), num(mixing::mean(&lens)));
        rec.insert(
            "response_len_max".into(),
            num(lens.iter().copied().fold(0.0, f64::max)),
        );
        rec.insert("truncation_rate".into(), num(truncated as f64 / total));
        rec.insert(
            "constraint_types".into(),
            constraint_type_counts(&scored, &job.train),
        );
        rec.insert("time_generation_s".into(), num(t_gen));
        rec.insert("time_scoring_s".into(), num(t_score));
        rec.insert(
            "generation_tokens_per_s".into(),
            num(gen_tokens as f64 / t_gen.max(1e-9)),
        );
        rec.insert("generated_tokens".into(), json!(gen_tokens));
        if server.is_some() {
            let stale: Vec<f64> = scored.iter().map(|s| s.staleness as f64).collect();
            rec.insert("rollout_staleness_mean".into(), num(mixing::mean(&stale)));
            rec.insert(
                "rollout_staleness_max".into(),
                json!(scored.iter().map(|s| s.staleness).max().unwrap_or(0)),
            );
        }
        // TRL's names, over every completion generated in the step (dropped groups
        // included, as TRL has no filter): lengths, and the rewards unless some writing
        // reward was not finite (the step is then skipped, its last round never mixed).
        let trunc: Vec<bool> = scored.iter().map(|s| s.truncated).collect();
        let token_counts: Vec<usize> = scored.iter().map(|s| s.ids.len()).collect();
        if let Some(c) = trl_metrics::completion_stats(&token_counts, &trunc) {
            for (name, v) in c.named() {
                rec.insert(name.into(), num(v));
            }
        }
        if nonfinite == 0 {
            let logged: Vec<f64> = scored.iter().map(|s| s.trl_reward).collect();
            let normalised: Vec<f64> = scored.iter().map(|s| s.reward).collect();
            let scope = if cfg.mixing == Mixing::Gdpo {
                ZeroStdScope::Batch
            } else {
                ZeroStdScope::Group(n)
            };
            for (name, v) in trl_metrics::reward_stats(&logged, &normalised, scope).named() {
                rec.insert(name.into(), num(v));
            }
        }

        let samples: Vec<Value> = scored
            .iter()
            .take(cfg.samples_per_step)
            .map(|s| {
                json!({
                    "step": step + 1,
                    "prompt": job.train[s.prompt].text,
                    "completion": s.text,
                    "writing_reward": scorer.is_some().then(|| num(s.writing)),
                    "pass": s.verdict.pass,
                    "reasons": s.verdict.reasons().collect::<Vec<_>>(),
                    "rubric_score": s.verdict.rubric_score.map(num),
                    "rubric_scores": rubric_scores(&s.verdict),
                    "reward": num(s.reward),
                    "advantage": num(s.advantage),
                    "kept": s.kept,
                    "truncated": s.truncated,
                    "tokens": s.ids.len(),
                    "round": s.round,
                })
            })
            .collect();

        let skip = if nonfinite > 0 {
            Some(format!(
                "{nonfinite} non-finite writing rewards (NaN or infinite)"
            ))
        } else if kept_groups == 0 {
            Some(format!(
                "every group was filtered in {rounds} generation rounds"
            ))
        } else {
            None
        };
        if let Some(why) = &skip {
            state.extra["skipped_steps"] =
                json!(state.extra["skipped_steps"].as_u64().unwrap_or(0) + 1);
            log.info(&format!("step {}: skipped, no update ({why})", step + 1));
            rec.insert("skipped".into(), json!(why));
        }

        if nonfinite == 0 {
            let violators: usize = outcomes.iter().map(|o| o.violators).sum();
            rec.insert(
                "delta_mean".into(),
                num(mixing::mean(
                    &outcomes.iter().map(|o| o.delta).collect::<Vec<_>>(),
                )),
            );
            rec.insert(
                "violators".into(),
                num(violators as f64 / outcomes.len().max(1) as f64),
            );
            let kept_violators: Vec<&Scored> = scored
                .iter()
                .filter(|s| s.kept && !s.verdict.pass)
                .collect();
            rec.insert(
                "violator_negative_adv_frac".into(),
                if kept_violators.is_empty() {
                    Value::Null
                } else {
                    num(
                        kept_violators.iter().filter(|s| s.advantage < 0.0).count() as f64
                            / kept_violators.len() as f64,
                    )
                },
            );
            let dropped = outcomes.iter().filter(|o| o.drop.is_some()).count();
            rec.insert(
                "filtered_group_rate".into(),
                num(dropped as f64 / outcomes.len().max(1) as f64),
            );
            let mut reasons = Map::new();
            for o in &outcomes {
                if let Some(r) = o.drop {
                    let key = serde_json::to_value(r)?
                        .as_str()
                        .unwrap_or("other")
                        .to_string();
                    let c = reasons.get(&key).and_then(Value::as_u64).unwrap_or(0);
                    reasons.insert(key, json!(c + 1));
                }
            }
            rec.insert("filtered_groups".into(), Value::Object(reasons));
            rec.insert("groups".into(), json!(kept_groups));
            let kept_rewards: Vec<f64> =
                scored.iter().filter(|s| s.kept).map(|s| s.reward).collect();
            rec.insert("reward_mean".into(), num(mixing::mean(&kept_rewards)));
        }

        if skip.is_none() {
            // The update.
            let t2 = Instant::now();
            bar.set_message(format!("step {}: update", step + 1));
            let seqs: Vec<&Scored> = scored
                .iter()
                .filter(|s| s.kept && !s.ids.is_empty())
                .filter(|s| !(cfg.overlong == Overlong::Mask && s.truncated))
                .collect();
            let pairs: Vec<(&[u32], &[u32])> = seqs
                .iter()
                .map(|s| (job.train_ids[s.prompt].as_slice(), s.ids.as_slice()))
                .collect();
            let on_policy_only = cfg.ppo_epochs == 1 && cfg.mini_batches == 1;
            let old: Option<Vec<Vec<f32>>> = (!on_policy_only).then(|| {
                seq_logprobs(
                    &inner,
                    &pairs,
                    cfg.micro_batch_size,
                    cfg.logprob_chunk,
                    pad,
                    &device,
                )
            });
            let refs: Option<Vec<Vec<f32>>> = reference.as_ref().map(|r| {
                seq_logprobs(
                    r,
                    &pairs,
                    cfg.micro_batch_size,
                    cfg.logprob_chunk,
                    pad,
                    &device,
                )
            });
            let parts = cfg.mini_batches.min(seqs.len()).max(1);
            let per_part = seqs.len().div_ceil(parts);
            let (mut loss_sum, mut clipped, mut kl_sum, mut tokens, mut ent_sum) =
                (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
            // TRL's per-micro-batch metrics (one `compute_loss` call each), every pass.
            let mut trl_loss = LossMetrics::default();
            let mut updates = 0usize;
            let mut grad_norms = Vec::new();
            let mut skipped_updates = 0usize;
            let mut lr = 0.0;
            let mut trained_tokens = 0usize;
            let (mut is_sum, mut is_over, mut is_tokens) = (0.0f64, 0.0f64, 0.0f64);
            if seqs.is_empty() {
                rec.insert(
                    "note".into(),
                    json!("every kept completion was truncated and masked (--overlong mask)"),
                );
            }
            for epoch in 0..cfg.ppo_epochs {
                for part in (0..seqs.len()).collect::<Vec<_>>().chunks(per_part.max(1)) {
                    let norm = Normaliser {
                        tokens: part.iter().map(|&i| seqs[i].ids.len() as f64).sum(),
                        sequences: part.len() as f64,
                    };
                    let mut accum = Accumulator::default();
                    for micro in part.chunks(cfg.micro_batch_size) {
                        let prompts: Vec<&[u32]> = micro.iter().map(|&i| pairs[i].0).collect();
                        let conts: Vec<&[u32]> = micro.iter().map(|&i| pairs[i].1).collect();
                        let batch = ContinuationBatch::<Ad<B>>::new(&prompts, &conts, pad, &device);
                        // LoRA dropout's masks: fixed by the seed, the step, the
                        // update within it and the micro-batch.
                        let pass = dropout_seed(cfg.seed, state.step, updates as u64);
                        let seed = dropout_seed(pass, epoch as u64, micro[0] as u64);
                        let width = batch.width;
                        let old_logp = old.as_ref().map(|o| {
                            let rows: Vec<&[f32]> =
                                micro.iter().map(|&i| o[i].as_slice()).collect();
                            padded::<Ad<B>>(&rows, width, &device)
                        });
                        let ref_logp = refs.as_ref().map(|r| {
                            let rows: Vec<&[f32]> =
                                micro.iter().map(|&i| r[i].as_slice()).collect();
                            padded::<Ad<B>>(&rows, width, &device)
                        });
                        let rollout_logp = server.as_ref().map(|_| {
                            let rows: Vec<&[f32]> = micro
                                .iter()
                                .map(|&i| seqs[i].rollout_logp.as_deref().expect("server rollouts"))
                                .collect();
                            padded::<Ad<B>>(&rows, width, &device)
                        });
                        let is_cap = cfg.rollout.rollout_is_cap;
                        let adv: Vec<f32> =
                            micro.iter().map(|&i| seqs[i].advantage as f32).collect();
                        let k = micro.len();
                        let mask = batch.target_mask.clone();
                        let loss_scale = updater.loss_scale();
                        // From the log-probabilities (with a graph) to the loss to
                        // differentiate (scaled under f16), the loss's parts and the
                        // entropy's sum.
                        let loss_of =
                            |logp: Tensor<Ad<B>, 2>, entropy: Option<Tensor<Ad<B>, 2>>| {
                                let ent = entropy.map(|e| {
                                    (e.detach() * mask.clone()).sum().into_scalar().to_f32()
                                });
                                let old_logp = old_logp.unwrap_or_else(|| logp.clone().detach());
                                // Truncated importance sampling: the trainer's policy
                                // over the one the server sampled with, per token.
                                let ratio = rollout_logp.map(|r| (old_logp.clone() - r).exp());
                                let is_stats = ratio.as_ref().map(|w| {
                                    // Padding's ratios are masked out (bounded first, so
                                    // an overflow there does not become NaN).
                                    let sum = (w.clone().clamp_max(1e6) * mask.clone())
                                        .sum()
                                        .into_scalar()
                                        .to_f64();
                                    let over = (w.clone().greater_elem(is_cap).float()
                                        * mask.clone())
                                    .sum()
                                    .into_scalar()
                                    .to_f64();
                                    (sum, over)
                                });
                                let out = policy_loss(
                                    LossInputs {
                                        old_logp,
                                        logp,
                                        ref_logp,
                                        advantages: Tensor::from_data(
                                            TensorData::new(adv, [k]),
                                            &device,
                                        ),
                                        mask: mask.clone(),
                                        is_weight: ratio.map(|w| w.clamp_max(is_cap)),
                                    },
                                    &loss_cfg,
                                    norm,
                                );
                                (
                                    out.loss.clone().mul_scalar(loss_scale),
                                    (out, ent, is_stats),
                                )
                            };
                        let (out, ent, is_stats) = if cfg.gradient_checkpointing {
                            let (grads, report) = checkpointing::causal_backward(
                                &policy,
                                &batch,
                                cfg.logprob_chunk,
                                true,
                                Some(seed),
                                loss_of,
                            );
                            accum.add_params::<Ad<B>>(&policy, grads);
                            report
                        } else {
                            let (logp, entropy) = with_dropout(seed, || {
                                policy.continuation_logprobs(&batch, cfg.logprob_chunk, true)
                            });
                            let (scaled, report) = loss_of(logp, entropy);
                            accum.add::<Ad<B>>(&policy, scaled.backward());
                            report
                        };
                        let ent = ent.map_or(0.0, f64::from);
                        if let Some((sum, over)) = is_stats {
                            is_sum += sum;
                            is_over += over;
                            is_tokens += out.tokens;
                        }
                        trl_loss.push(&out.trl_micro_batch(ent, loss_cfg.beta > 0.0));
                        // rmtk's own entropy: the first pass's tokens.
                        if epoch == 0 {
                            ent_sum += ent;
                        }
                        loss_sum += f64::from(out.loss.into_scalar().to_f32());
                        clipped += out.clipped_tokens;
                        kl_sum += out.kl_sum;
                        tokens += out.tokens;
                        if epoch == 0 {
                            trained_tokens += out.tokens as usize;
                        }
                    }
                    let (updated, upd) = updater.apply(policy, accum.take());
                    policy = updated;
                    device_peak.sample::<B>(&device);
                    state.loss_scale = updater.loss_scale;
                    skipped_updates += usize::from(upd.skipped);
                    loss_scale::stop_if_exhausted(
                        updater.loss_scale,
                        format!("step {}", state.step + 1),
                    )?;
                    grad_norms.push(f64::from(upd.grad_norm));
                    lr = upd.lr;
                    updates += 1;
                }
            }
            let t_update = t2.elapsed().as_secs_f64();
            let first_pass_tokens = trained_tokens.max(1) as f64;
            rec.insert("loss".into(), num(loss_sum / updates.max(1) as f64));
            rec.insert("clip_fraction".into(), num(clipped / tokens.max(1.0)));
            if loss_cfg.beta > 0.0 {
                rec.insert("kl".into(), num(kl_sum / tokens.max(1.0)));
            }
            rec.insert("entropy".into(), num(ent_sum / first_pass_tokens));
            // TRL's: `kl` and `entropy` differ from rmtk's in how micro-batches weigh
            // (and entropy in taking every pass), so they go under `trl/`.
            for (name, v) in trl_loss.named() {
                let name = match name {
                    "kl" => "trl/kl",
                    "entropy" => "trl/entropy",
                    other => other,
                };
                rec.insert(name.into(), num(v));
            }
            rec.insert("grad_norm".into(), num(mixing::mean(&grad_norms)));
            if let Some(ls) = updater.loss_scale {
                rec.insert("loss_scale".into(), num(f64::from(ls.scale)));
                rec.insert("skipped_updates".into(), json!(skipped_updates));
            }
            rec.insert("lr".into(), num(lr));
            rec.insert("updates".into(), json!(updates));
            rec.insert("trained_sequences".into(), json!(seqs.len()));
            rec.insert("trained_tokens".into(), json!(trained_tokens));
            rec.insert("time_update_s".into(), num(t_update));
            if server.is_some() {
                // Over every pass's tokens (TRL logs its ratio per micro-batch).
                rec.insert(
                    "rollout_is_ratio_mean".into(),
                    num(is_sum / is_tokens.max(1.0)),
                );
                rec.insert(
                    "rollout_is_clipped_frac".into(),
                    num(is_over / is_tokens.max(1.0)),
                );
            }
            state.tokens_seen += trained_tokens as u64;
            if !(loss_sum.is_finite()) {
                bail!(
                    "the loss became {loss_sum} at step {}; lower --lr (the last checkpoint is intact)",
                    step + 1
                );
            }
        }
        let secs = t_step.elapsed().as_secs_f64();
        rec.insert("step_time_s".into(), num(secs));
        rec.insert(
            "tokens_per_s".into(),
            num((gen_tokens as f64
                + rec
                    .get("trained_tokens")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0))
                / secs.max(1e-9)),
        );
        state.step += 1;
        state.train_seconds = seconds_before + started.elapsed().as_secs_f64();
        // Prompts drawn for prefetched rollouts belong to later steps: the checkpoint
        // keeps the order and generator from before the first such draw, so a resumed run
        // draws them again.
        let (order_now, cursor, epoch, rng_state) = match prefetch.front() {
            Some(p) => p.before.clone(),
            None => (order.order.clone(), order.cursor, order.epoch, rng.state()),
        };
        state.order = vec![order_now];
        state.epoch = epoch;
        state.extra["cursor"] = json!(cursor);
        state.rng = rng_state;
        metrics.log(&rec)?;
        append_jsonl(&output.join(SAMPLES_FILE), &samples)?;
        bar.set_message(bar_message(
            &rec,
            &[
                ("pass_rate", "pass"),
                ("writing_reward_mean", "wr"),
                ("filtered_group_rate", "filt"),
                ("loss", "loss"),
                ("kl", "kl"),
                ("response_len_mean", "len"),
            ],
        ));
        bar.set_position(state.step);
        last_train = Some(rec);

        let last = state.step == cfg.max_steps;
        if !last && cfg.eval_every > 0 && state.step % cfg.eval_every == 0 {
            last_eval = run_eval(&policy, state.step, &mut metrics, &mut log)?;
        }
        if last || (cfg.save_every > 0 && state.step % cfg.save_every == 0) {
            let inner = policy.valid();
            let dir = checkpoints.save(state.step, |dir| {
                save_causal_lm(&inner, dir, &job.policy_dir, SaveDtype::F32, lora.as_ref())?;
                updater.optim.save(&dir.join(OPTIMIZER_FILE))?;
                state.save(dir)
            })?;
            if let Some(keep) = cfg.save_total_limit {
                checkpoints.prune(keep.max(1))?;
            }
            log.info(&format!("checkpoint {}", dir.display()));
        }
        if let Some(server) = &server
            && !last
        {
            push_policy(server, &policy.valid(), state.step, &job, lora.as_ref()).map_err(|e| {
                Stop {
                    step: state.step - 1,
                    checkpoints: &checkpoints,
                    output: &output,
                }
                .error("syncing the policy to the rollout server", &e)
            })?;
        }
    }
    bar.finish_and_clear();
    log.set_bar(None);
    let final_eval_due = last_eval
        .as_ref()
        .and_then(|r| r.get("step").and_then(Value::as_u64))
        != Some(state.step);
    if final_eval_due && let Some(rec) = run_eval(&policy, state.step, &mut metrics, &mut log)? {
        last_eval = Some(rec);
    }

    // The final policy, in Hugging Face layout, beside the run's files.
    let inner = policy.valid();
    save_causal_lm(
        &inner,
        &output,
        &job.policy_dir,
        cfg.save_dtype,
        lora.as_ref(),
    )
    .with_context(|| format!("saving the policy to {}", output.display()))?;
    if cfg.lora.merge_lora && lora.is_some() {
        let merged = output.join("merged");
        save_causal_lm(
            &inner.clone().merge_lora(),
            &merged,
            &job.policy_dir,
            cfg.save_dtype,
            None,
        )
        .with_context(|| format!("saving the merged policy to {}", merged.display()))?;
        log.info(&format!("LoRA merged into the base: {}", merged.display()));
    }
    let first_eval = MetricsLog::read_records(&output)
        .into_iter()
        .find(|r| r.get("split").and_then(Value::as_str) == Some("eval"));
    let summary = json!({
        "steps": state.step,
        "skipped_steps": state.extra["skipped_steps"],
        "train_seconds": num(state.train_seconds),
        "tokens_trained": state.tokens_seen,
        "first_eval": first_eval.map(Value::Object),
        "final_eval": last_eval.clone().map(Value::Object),
        "final_train": last_train.map(Value::Object),
    });
    crate::models::load::write_json(&output.join(SUMMARY_FILE), &summary)?;
    let eval_part = match (&summary["first_eval"], &summary["final_eval"]) {
        (Value::Object(a), Value::Object(b)) => format!(
            "; held-out pass rate {} -> {}, writing reward {} -> {}",
            a.get("pass_rate").unwrap_or(&Value::Null),
            b.get("pass_rate").unwrap_or(&Value::Null),
            a.get("writing_reward_mean").unwrap_or(&Value::Null),
            b.get("writing_reward_mean").unwrap_or(&Value::Null),
        ),
        _ => String::new(),
    };
    for line in crate::train::memory::peak_report(&estimate, process_before, &device_peak) {
        log.info(&line);
    }
    if let Some(server) = &server {
        log.info(&format!(
            "rollout server {}: {}",
            server.url(),
            server.describe_stats()
        ));
    }
    if let Some(reward) = &job.reward_url {
        log.info(&format!(
            "reward endpoint {}: {}",
            reward.url(),
            reward.describe_stats()
        ));
    }
    log.info(&format!(
        "done: {} steps in {:.1} s{eval_part}; policy saved to {}",
        state.step,
        state.train_seconds,
        output.display()
    ));
    Ok(())
}
