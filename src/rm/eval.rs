//! `rmtk eval-rm`: accuracy, margin, loss and reward statistics of a reward model on
//! preference files; a readable summary on stderr and one JSON object on stdout (and
//! in `--output` if given).

use crate::kernels::FusedOps;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::json;

use super::{LoadedRm, PairStats, pair_rewards};
use crate::data::prefs::{self, EncodedPair, Layout, Overlong, PrefColumns, SeqEncoder};
use crate::device::{DeviceSpec, Job, run_on};
use crate::train::metrics::num;

/// Evaluate a reward model on preference pairs.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalRmConfig {
    /// A reward model folder or hub id.
    #[arg(long)]
    pub model: String,
    /// For a LoRA adapter folder: the base model to put it on, instead of the one its
    /// adapter_config.json names (a folder or hub id).
    #[arg(long)]
    pub base_model: Option<String>,
    /// The dtype the model runs in (bf16/f16: its weights and activations; rewards in
    /// f32).
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: crate::models::load::ComputeDtype,
    /// Preference files (parquet or JSONL; wildcards allowed), in any layout train-rm reads.
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<String>,
    #[arg(long)]
    pub prompt_column: Option<String>,
    #[arg(long)]
    pub chosen_column: Option<String>,
    #[arg(long)]
    pub rejected_column: Option<String>,
    #[arg(long)]
    pub margin_column: Option<String>,
    /// Accuracy per value of this column too (a subset, a source, a task).
    #[arg(long, value_name = "COLUMN")]
    pub by: Option<String>,
    #[arg(long, value_enum, default_value = "auto")]
    pub layout: Layout,
    /// Pairs per batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Longest sequence (default: as the model was trained).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Overlong pairs: filter, truncate (keep the responses) or truncate-start (keep the
    /// first tokens); default: as the model was trained.
    #[arg(long, value_enum)]
    pub overlong: Option<Overlong>,
    /// Centring coefficient used in the reported loss.
    #[arg(long, default_value_t = 0.0)]
    pub center_rewards_coef: f64,
    /// Also write the JSON here.
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[arg(long)]
    pub skip_bad_rows: bool,
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

pub fn run(cfg: EvalRmConfig) -> Result<()> {
    if cfg.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let mut rm = LoadedRm::open_with_base(&cfg.model, cfg.base_model.as_deref())?;
    rm.dtype = cfg.dtype;
    let spec = rm.seq_spec(cfg.max_length, cfg.overlong)?;
    let files = prefs::expand_paths(&cfg.data)?;
    let columns = PrefColumns {
        prompt: cfg.prompt_column.clone(),
        chosen: cfg.chosen_column.clone(),
        rejected: cfg.rejected_column.clone(),
        margin: cfg.margin_column.clone(),
        group: cfg.by.clone(),
    };
    let read = prefs::read_pairs(&files, &columns, cfg.layout, cfg.skip_bad_rows)?;
    for note in &read.notes {
        eprintln!("eval-rm: {note}");
    }
    let encoder = SeqEncoder::new(&rm.tokenizer, spec.clone(), super::model_vocab(&rm.dir)?);
    let (pairs, report) = prefs::encode_pairs(&encoder, &read.pairs, cfg.skip_bad_rows)?;
    let skipped = read.skipped.len() + report.skipped.len();
    if skipped > 0 {
        eprintln!("eval-rm: skipped {skipped} bad rows (--skip-bad-rows)");
        for err in read.skipped.iter().chain(&report.skipped).take(5) {
            eprintln!("  skipped: {err}");
        }
    }
    eprintln!(
        "eval-rm: {}",
        report.summary(spec.max_length, spec.overlong)
    );
    if pairs.is_empty() {
        bail!("no pairs to evaluate");
    }
    let (chosen, rejected) = run_on(
        cfg.device,
        EvalJob {
            rm: &rm,
            pairs: &pairs,
            batch_size: cfg.batch_size,
        },
    )?;
    let margins: Option<Vec<f32>> = pairs[0]
        .margin
        .map(|_| pairs.iter().map(|p| p.margin.unwrap_or(0.0)).collect());
    let s = PairStats::new(
        &chosen,
        &rejected,
        margins.as_deref(),
        cfg.center_rewards_coef,
    );
    eprintln!(
        "eval-rm: {} pairs: accuracy {:.4}, loss {:.4}, margin {:.4}, reward mean {:.4} std {:.4} (chosen {:.4}, rejected {:.4})",
        s.pairs,
        s.accuracy,
        s.loss,
        s.margin,
        s.reward_mean,
        s.reward_std,
        s.chosen_mean,
        s.rejected_mean
    );
    // What the model rewards besides the labels: length, and each --by group.
    let mut chosen_len = Vec::with_capacity(pairs.len());
    let mut rejected_len = Vec::with_capacity(pairs.len());
    for p in &pairs {
        let pair = &read.pairs[p.pair];
        let count = |c: &prefs::Content| {
            c.token_count(&rm.tokenizer)
                .map_err(|m| pair.source.error(m))
        };
        chosen_len.push(count(&pair.chosen)?);
        rejected_len.push(count(&pair.rejected)?);
    }
    let bias = super::bias::length_bias(&chosen, &rejected, &chosen_len, &rejected_len);
    for line in bias_lines(&bias) {
        eprintln!("eval-rm: {line}");
    }
    let groups = cfg.by.as_ref().map(|column| {
        let mut groups: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
        for (i, p) in pairs.iter().enumerate() {
            let g = read.pairs[p.pair].group.as_deref().unwrap_or("(null)");
            let e = groups.entry(g).or_default();
            e.0 += 1;
            e.1 += usize::from(chosen[i] > rejected[i]);
        }
        for (g, (n, wins)) in &groups {
            eprintln!(
                "eval-rm: {column} = {g}: accuracy {:.4} ({n} pairs)",
                *wins as f64 / *n as f64
            );
        }
        let groups: serde_json::Map<String, serde_json::Value> = groups
            .into_iter()
            .map(|(g, (n, wins))| {
                (
                    g.to_string(),
                    json!({"pairs": n, "accuracy": num(wins as f64 / n as f64)}),
                )
            })
            .collect();
        json!({"column": column, "groups": groups})
    });
    let split = |s: &super::bias::Split| json!({"pairs": s.pairs, "accuracy": num(s.accuracy)});
    let out = json!({
        "model": cfg.model,
        "data": files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "pairs": s.pairs,
        "accuracy": num(s.accuracy),
        "loss": num(s.loss),
        "margin": num(s.margin),
        "reward_mean": num(s.reward_mean),
        "reward_std": num(s.reward_std),
        "chosen_reward_mean": num(s.chosen_mean),
        "rejected_reward_mean": num(s.rejected_mean),
        "skipped_rows": skipped,
        "max_length": spec.max_length,
        "overlong": spec.overlong,
        "filtered_pairs": report.filtered,
        "truncated_pairs": report.truncated,
        "identical_pairs_dropped": report.identical_dropped,
        "length_bias": {
            "spearman_reward_tokens": num(bias.spearman),
            "responses": bias.responses,
            "chosen_longer": split(&bias.chosen_longer),
            "chosen_shorter": split(&bias.chosen_shorter),
            "same_length": split(&bias.same_length),
            "buckets": bias.buckets.iter().map(|b| json!({
                "min_tokens": b.min_tokens,
                "max_tokens": b.max_tokens,
                "responses": b.responses,
                "mean_reward": num(b.mean_reward),
            })).collect::<Vec<_>>(),
        },
        "by": groups,
    });
    println!("{out}");
    if let Some(path) = &cfg.output {
        crate::models::load::write_json(path, &out)?;
    }
    Ok(())
}

/// The length-bias report as lines for a reader.
fn bias_lines(b: &super::bias::LengthBias) -> Vec<String> {
    let acc = |s: &super::bias::Split| {
        if s.pairs == 0 {
            "- (0 pairs)".to_string()
        } else {
            format!("{:.4} ({} pairs)", s.accuracy, s.pairs)
        }
    };
    vec![
        format!(
            "length: Spearman correlation of reward with response tokens {:.4} over {} responses{}",
            b.spearman,
            b.responses,
            if b.spearman.abs() >= 0.3 {
                " (the model rewards length: check before RL)"
            } else {
                ""
            }
        ),
        format!(
            "length: accuracy when the chosen response is longer {}, shorter {}, the same length {}",
            acc(&b.chosen_longer),
            acc(&b.chosen_shorter),
            acc(&b.same_length)
        ),
        format!(
            "length: mean reward by response tokens: {}",
            b.buckets
                .iter()
                .map(|k| format!(
                    "{}-{}: {:.4} ({})",
                    k.min_tokens, k.max_tokens, k.mean_reward, k.responses
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ]
}

struct EvalJob<'a> {
    rm: &'a LoadedRm,
    pairs: &'a [EncodedPair],
    batch_size: usize,
}

impl Job for EvalJob<'_> {
    type Output = (Vec<f32>, Vec<f32>);

    fn run<B: FusedOps>(self, device: B::Device) -> Result<Self::Output> {
        let model = self.rm.load::<B>(&device)?;
        let bar = crate::util::progress_bar(self.pairs.len() as u64, "eval-rm");
        let (mut c, mut r) = pair_rewards(
            &model,
            self.pairs,
            self.batch_size,
            self.rm.pad_id,
            &device,
            |k| bar.inc(k as u64),
        );
        bar.finish_and_clear();
        for v in c.iter_mut().chain(r.iter_mut()) {
            *v += self.rm.bias;
        }
        Ok((c, r))
    }
}
