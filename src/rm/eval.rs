//! `rmtk eval-rm`: accuracy, margin, loss and reward statistics of a reward model on
//! preference files; a readable summary on stderr and one JSON object on stdout (and
//! in `--output` if given).

use crate::kernels::FusedOps;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::{LoadedRm, PairStats, bench, pair_rewards};
use crate::data::prefs::{self, EncodedPair, Layout, Overlong, PrefColumns, SeqEncoder};
use crate::data::{DataError, Table};
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
    /// pairs (any train-rm layout), or a benchmark's own files and scoring: rewardbench
    /// (allenai/reward-bench), rewardbench2 (allenai/reward-bench-2), rm-bench (RM-Bench's
    /// total_dataset.json).
    #[arg(long, value_enum, default_value = "pairs")]
    pub format: EvalFormat,
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

/// What `--data` holds and how it is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    Pairs,
    Rewardbench,
    Rewardbench2,
    RmBench,
}

pub fn run(cfg: EvalRmConfig) -> Result<()> {
    if cfg.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let mut rm = LoadedRm::open_with_base(&cfg.model, cfg.base_model.as_deref())?;
    rm.dtype = cfg.dtype;
    let spec = rm.seq_spec(cfg.max_length, cfg.overlong)?;
    if cfg.format != EvalFormat::Pairs {
        return run_benchmark(&cfg, &rm, spec);
    }
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
        // TRL RewardTrainer's evaluation metrics under its names: per batch of
        // --batch-size pairs in file order, then the mean over batches.
        "trl": super::trl_metrics::trl_pair_metrics(
            chosen.chunks(cfg.batch_size).zip(rejected.chunks(cfg.batch_size)),
        )
        .map(|t| {
            t.named()
                .into_iter()
                .map(|(name, v)| (format!("eval_{name}"), num(v)))
                .collect::<serde_json::Map<String, Value>>()
        }),
    });
    println!("{out}");
    if let Some(path) = &cfg.output {
        crate::models::load::write_json(path, &out)?;
    }
    Ok(())
}

/// One benchmark row: its prompt, its responses (chosen first) and where it belongs.
struct BenchRow {
    source: prefs::Source,
    id: String,
    subset: String,
    prompt: prefs::Content,
    chosen: Vec<prefs::Content>,
    rejected: Vec<prefs::Content>,
}

/// A benchmark's response cell: a text, a list of texts, or a list of messages (one
/// response).
fn responses_cell(
    table: &Table,
    row: usize,
    column: &str,
    layout: Layout,
) -> Result<Vec<prefs::Content>, DataError> {
    match table.rows[row].get(column) {
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            Ok(items
                .iter()
                .map(|v| {
                    let text = v.as_str().unwrap_or_default();
                    match layout {
                        Layout::Chat => prefs::Content::Chat(vec![crate::models::Message::new(
                            "assistant",
                            text,
                        )]),
                        _ => prefs::Content::Text(text.to_string()),
                    }
                })
                .collect())
        }
        _ => prefs::content_cell(table, row, column, layout, "assistant").map(|c| vec![c]),
    }
}

fn read_bench_rows(
    files: &[PathBuf],
    format: EvalFormat,
    layout: Layout,
    skip_bad_rows: bool,
) -> Result<(Vec<BenchRow>, Vec<DataError>)> {
    let subset_column = match format {
        EvalFormat::RmBench => "domain",
        _ => "subset",
    };
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for path in files {
        let table = crate::data::read_table(path)?;
        for column in ["prompt", "chosen", "rejected", subset_column] {
            table.require_column(column)?;
        }
        if format == EvalFormat::Rewardbench2 {
            table.require_column("id")?;
        }
        for row in 0..table.rows.len() {
            let read = || -> Result<BenchRow, DataError> {
                if let Some((_, message)) = table.bad.iter().find(|(r, _)| *r == row) {
                    return Err(DataError::Row {
                        path: table.path.clone(),
                        row,
                        message: message.clone(),
                    });
                }
                let chosen = responses_cell(&table, row, "chosen", layout)?;
                let rejected = responses_cell(&table, row, "rejected", layout)?;
                let want = match format {
                    EvalFormat::RmBench => Some(3),
                    EvalFormat::Rewardbench => Some(1),
                    _ => None,
                };
                if let Some(n) = want {
                    for (side, list) in [("chosen", &chosen), ("rejected", &rejected)] {
                        if list.len() != n {
                            return Err(table.cell_error(
                                row,
                                side,
                                format!("has {} responses; this format has {n}", list.len()),
                            ));
                        }
                    }
                }
                let subset = match table.rows[row].get(subset_column) {
                    Some(Value::String(s)) => s.clone(),
                    _ => return Err(table.cell_error(row, subset_column, "should be text")),
                };
                Ok(BenchRow {
                    source: prefs::Source {
                        path: std::sync::Arc::new(table.path.clone()),
                        row,
                    },
                    id: match table.rows[row].get("id") {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) if !v.is_null() => v.to_string(),
                        _ => row.to_string(),
                    },
                    subset,
                    prompt: prefs::content_cell(&table, row, "prompt", layout, "user")?,
                    chosen,
                    rejected,
                })
            };
            match read() {
                Ok(r) => rows.push(r),
                Err(e) if skip_bad_rows => skipped.push(e),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok((rows, skipped))
}

/// `eval-rm --format rewardbench|rewardbench2|rm-bench`: every response scored (cut
/// rather than dropped when too long: a benchmark counts every row), then the
/// benchmark's own scoring.
fn run_benchmark(cfg: &EvalRmConfig, rm: &LoadedRm, spec: prefs::SeqSpec) -> Result<()> {
    if cfg.by.is_some()
        || cfg.prompt_column.is_some()
        || cfg.chosen_column.is_some()
        || cfg.rejected_column.is_some()
        || cfg.margin_column.is_some()
    {
        bail!(
            "--by and the --*-column options are for --format pairs: a benchmark's columns and subsets are its own"
        );
    }
    let spec = spec.for_scoring();
    // As the benchmarks' own code does: through the chat template when the model has one.
    let layout = match cfg.layout {
        Layout::Auto if spec.chat_template => Layout::Chat,
        Layout::Auto => Layout::Text,
        l => l,
    };
    let files = prefs::expand_paths(&cfg.data)?;
    let (read, mut skipped) = read_bench_rows(&files, cfg.format, layout, cfg.skip_bad_rows)?;
    let encoder = SeqEncoder::new(&rm.tokenizer, spec.clone(), super::model_vocab(&rm.dir)?);
    let mut rows = Vec::with_capacity(read.len());
    let mut seqs = Vec::new();
    let mut cut = 0;
    for r in read {
        let responses: Vec<&prefs::Content> = r.chosen.iter().chain(&r.rejected).collect();
        match encoder.encode_group(Some(&r.prompt), &responses) {
            Ok(group) => {
                cut += group.iter().filter(|s| s.truncated).count();
                seqs.extend(group);
                rows.push(r);
            }
            Err(m) if cfg.skip_bad_rows => skipped.push(r.source.error(m)),
            Err(m) => return Err(r.source.error(m).into()),
        }
    }
    if rows.is_empty() {
        bail!("no rows to evaluate");
    }
    let refs: Vec<&prefs::Seq> = seqs.iter().collect();
    let rewards = run_on(
        cfg.device,
        super::RewardsJob {
            rm,
            seqs: &refs,
            batch_size: cfg.batch_size,
            what: "eval-rm",
        },
    )?;
    let mut next = rewards.into_iter().map(f64::from);
    let scored: Vec<bench::Scored> = rows
        .iter()
        .map(|r| bench::Scored {
            id: r.id.clone(),
            subset: r.subset.clone(),
            chosen: next.by_ref().take(r.chosen.len()).collect(),
            rejected: next.by_ref().take(r.rejected.len()).collect(),
        })
        .collect();
    let (name, report) = match cfg.format {
        EvalFormat::Rewardbench => ("rewardbench", bench::rewardbench(&scored)),
        EvalFormat::Rewardbench2 => ("rewardbench2", bench::rewardbench2(&scored)),
        EvalFormat::RmBench => ("rm-bench", bench::rm_bench(&scored)),
        EvalFormat::Pairs => unreachable!("pairs are evaluated by run"),
    };
    if !skipped.is_empty() {
        eprintln!(
            "eval-rm: skipped {} bad rows (--skip-bad-rows)",
            skipped.len()
        );
    }
    eprintln!(
        "eval-rm: {name}: {} rows, {} responses ({cut} cut to --max-length {})",
        rows.len(),
        seqs.len(),
        spec.max_length
    );
    for line in bench_lines(cfg.format, &report) {
        eprintln!("eval-rm: {line}");
    }
    let mut out = json!({
        "model": cfg.model,
        "data": files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "format": name,
        "rows": rows.len(),
        "responses": seqs.len(),
        "responses_cut": cut,
        "skipped_rows": skipped.len(),
        "max_length": spec.max_length,
        "overlong": spec.overlong,
    });
    if let (Value::Object(o), Value::Object(r)) = (&mut out, report) {
        o.extend(r);
    }
    println!("{out}");
    if let Some(path) = &cfg.output {
        crate::models::load::write_json(path, &out)?;
    }
    Ok(())
}

/// A benchmark report's headline numbers for a reader.
fn bench_lines(format: EvalFormat, r: &Value) -> Vec<String> {
    let f = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.4}"));
    // "name score, name score, ..." of a JSON object of scores.
    let named = |v: &Value| {
        v.as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{k} {}", f(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    match format {
        EvalFormat::Rewardbench => vec![
            format!("sections: {}", named(&r["sections"])),
            format!("score (mean of the sections): {}", f(&r["score"])),
        ],
        EvalFormat::Rewardbench2 => vec![
            format!("subsets: {}", named(&r["subsets"])),
            format!("score (mean of the six subsets): {}", f(&r["score"])),
        ],
        _ => vec![format!(
            "hard {}, normal {}, easy {}, average {}",
            f(&r["hard_acc"]),
            f(&r["normal_acc"]),
            f(&r["easy_acc"]),
            f(&r["total_avg_acc"])
        )],
    }
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
