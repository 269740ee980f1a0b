//! `rmtk grpo`: GRPO policy training with RLMR's dynamic mixed reward
//! (docs/rlmr.md).
//!
//! - [`mixing`]: a group's writing rewards and verdicts -> mixed rewards, the filter,
//!   advantages (pure functions over numbers, property-tested);
//! - [`loss`]: the clipped surrogate with the k3 KL, token-mean or seq-mean;
//! - [`trl_metrics`]: TRL GRPOTrainer's metrics (`reward`, `completions/*`,
//!   `clip_ratio/*`, ...) as TRL computes them, written beside rmtk's own;
//! - [`rollout`]: `n` sampled completions per prompt, batched, each from its own
//!   random stream (so a resumed run samples what an uninterrupted one would);
//! - [`prompts`]: the prompt set and its constraints;
//! - [`trainer`]: the loop (rounds of generation and filtering, scoring, updates,
//!   metrics, samples, evaluation, checkpoints);
//! - [`config`]: the options, from flags or a TOML file.
//!
//! The output folder:
//! - the final policy in Hugging Face layout (`model.safetensors`, `config.json`,
//!   tokenizer files): `transformers` and `rmtk generate` load it;
//! - `metrics.jsonl` (one line per step, evaluation lines with `"split": "eval"`),
//!   `samples.jsonl` (some completions per step with their rewards and verdicts),
//!   `eval_samples.jsonl`, `train.log`, `grpo_args.json` (the run's arguments),
//!   `train_summary.json`;
//! - `checkpoint-N/` every `--save-every` steps and at the end (the policy in f32,
//!   `optimizer.safetensors`, `trainer_state.json` with the prompt order and RNG), and
//!   `latest` naming the newest. `--resume OUTPUT` continues from it.

pub mod config;
pub mod loss;
pub mod mixing;
pub mod prompts;
pub mod remote;
pub mod rollout;
pub mod trainer;
pub mod trl_metrics;

use anyhow::{Context, Result, bail};

pub use config::GrpoConfig;

use crate::data::encode_prompt;
use crate::device::run_on;
use crate::models::ModelDir;
use crate::train::Checkpoints;
use crate::train::metrics::RunLog;
use prompts::{PromptColumns, read_prompts};
use trainer::{ARGS_FILE, GrpoJob};

/// Run `rmtk grpo`. `argv` are the arguments after `grpo` (config file expanded), kept
/// in the output folder so `--resume` can continue with the same settings.
pub fn run(cfg: GrpoConfig, argv: Vec<String>) -> Result<()> {
    let mut log = RunLog::new("grpo");
    cfg.validate()?;
    let output = cfg.output().to_path_buf();
    let resume = match &cfg.resume {
        Some(dir) => {
            if dir != &output {
                bail!(
                    "--resume {} continues that folder; drop --output {}",
                    dir.display(),
                    output.display()
                );
            }
            let ck = Checkpoints::new(dir).latest()?.with_context(|| {
                format!(
                    "--resume {}: the run has no checkpoint yet (it stopped before the first --save-every); start it again",
                    dir.display()
                )
            })?;
            if dir.join("train_summary.json").exists() {
                let st = crate::train::TrainerState::load(&ck)?;
                if st.step >= cfg.max_steps {
                    bail!(
                        "--resume {}: that run is complete ({} steps); give a larger --max-steps to go on",
                        dir.display(),
                        st.step
                    );
                }
            }
            Some(ck)
        }
        None => {
            if output.join(ARGS_FILE).exists() {
                bail!(
                    "{} already holds a GRPO run; continue it with --resume {} or choose another --output",
                    output.display(),
                    output.display()
                );
            }
            None
        }
    };

    let policy_spec = cfg.policy.clone().expect("required");
    let mut policy_dir = ModelDir::open(&policy_spec).context("--policy")?;
    if cfg.random_weights {
        if policy_dir.adapter.is_some() {
            bail!(
                "--random-weights draws a model's weights; --policy {policy_spec} is a LoRA adapter"
            );
        }
        policy_dir.random_weights = Some(cfg.seed);
    }
    if policy_dir.family != crate::models::Family::Llama {
        bail!(
            "--policy {policy_spec}: a {:?} model cannot generate; the policy must be a decoder (Llama, Qwen2, Mistral, SmolLM2)",
            policy_dir.family
        );
    }
    let tokenizer = policy_dir.tokenizer()?;
    let chat = !cfg.no_chat;
    if chat && !tokenizer.has_chat_template() {
        bail!(
            "--policy {policy_spec} has no chat template; give --no-chat to feed prompts as raw text"
        );
    }
    let reference_dir = if cfg.beta > 0.0 {
        Some(match &cfg.reference {
            Some(r) => ModelDir::open(r).context("--reference")?,
            None => policy_dir.clone(),
        })
    } else {
        None
    };

    let columns = PromptColumns {
        prompt: cfg.prompt_column.clone(),
        ids: cfg.ids_column.clone(),
        kwargs: cfg.kwargs_column.clone(),
        constraints: cfg.constraints_column.clone(),
        rubric: (!cfg.no_rubric).then(|| cfg.rubric_column.clone()),
    };
    let judge = cfg.has_judge();
    let train = read_prompts(&cfg.prompts, &columns, judge)?;
    let eval = if cfg.eval_prompts.is_empty() {
        Vec::new()
    } else {
        read_prompts(&cfg.eval_prompts, &columns, judge)?
    };
    let endpoints =
        crate::verify::rubric::endpoints(train.iter().chain(&eval).map(|r| r.constraints.rubric()));
    if !endpoints.is_empty() {
        eprintln!(
            "grpo: {}",
            crate::verify::rubric::describe_endpoints(&endpoints, &cfg.verifier.reward)
        );
    }
    let encode = |rows: &[prompts::PromptRow]| -> Result<Vec<Vec<u32>>> {
        rows.iter()
            .map(|r| {
                encode_prompt(&tokenizer, &r.prompt, chat, cfg.system.as_deref())
                    .with_context(|| format!("prompt {}", r.source))
            })
            .collect()
    };
    let train_ids = encode(&train)?;
    let eval_ids = encode(&eval)?;

    // With --mixing constraint-only a reward model is optional: when given, it only
    // scores for the metrics (so the baseline's writing reward can be compared); with
    // --reward-url the endpoint gives the writing reward instead.
    let rm = match &cfg.reward_model {
        Some(spec) => {
            let rm = crate::rm::LoadedRm::open(spec).context("--reward-model")?;
            // Every completion gets a reward: cut as the model's rule says.
            let seq = rm.seq_spec(cfg.rm_max_length, None)?.for_scoring();
            Some((rm, seq))
        }
        None => None,
    };
    let reward_url = match cfg.reward_url_options() {
        Some(options) => {
            Some(crate::verify::reward_url::RemoteReward::new(options).context("--reward-url")?)
        }
        None => None,
    };

    std::fs::create_dir_all(&output).with_context(|| format!("creating {}", output.display()))?;
    log.to_file(&output.join("train.log"))?;
    if resume.is_none() {
        let text = serde_json::to_string_pretty(&argv)? + "\n";
        crate::util::write_atomic(&output.join(ARGS_FILE), text.as_bytes())
            .with_context(|| format!("writing {}", output.join(ARGS_FILE).display()))?;
    }
    let device = cfg.device;
    run_on(
        device,
        GrpoJob {
            cfg,
            policy_dir,
            reference_dir,
            tokenizer,
            train,
            train_ids,
            eval,
            eval_ids,
            rm,
            reward_url,
            resume,
            log,
        },
    )
}

/// Expands the `grpo` subcommand's `--resume DIR` (the run's saved arguments first, so
/// flags given now override them) and `--config FILE`. Returns the arguments and the
/// ones to save for the run (after `grpo`, without `--resume`).
pub fn expand_args(
    args: Vec<std::ffi::OsString>,
) -> Result<(Vec<std::ffi::OsString>, Vec<String>)> {
    let Some(sub) = config::grpo_position(&args) else {
        return Ok((args, Vec::new()));
    };
    let mut args = args;
    if let Some(at) = args.iter().skip(sub + 1).position(|a| a == "--resume") {
        let at = sub + 1 + at;
        let dir = args
            .get(at + 1)
            .map(std::path::PathBuf::from)
            .context("--resume needs the run's output folder")?;
        let path = dir.join(ARGS_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "--resume {}: no GRPO run there ({} cannot be read)",
                dir.display(),
                path.display()
            )
        })?;
        let saved: Vec<String> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a list of arguments", path.display()))?;
        let mut out: Vec<std::ffi::OsString> = args[..=sub].to_vec();
        out.extend(saved.into_iter().map(Into::into));
        out.extend(args[sub + 1..].iter().cloned());
        args = out;
    }
    let args = config::expand_config_file(args)?;
    let sub = config::grpo_position(&args).expect("still there");
    let mut keep = Vec::new();
    let mut i = sub + 1;
    while i < args.len() {
        let a = args[i].to_string_lossy().into_owned();
        if a == "--resume" || a == "--config" {
            i += 2;
            continue;
        }
        keep.push(a);
        i += 1;
    }
    Ok((args, keep))
}
