//! `rmtk score`: rewards for rows of `prompt` + `response` (text or messages), written
//! back as the input rows with a `reward` column (parquet or JSONL, by extension).
//!
//! Sequences are built exactly as the model was trained (`rmtk_reward_model.json`);
//! longer ones are cut to the maximum length (every row gets a reward; the count is
//! reported). Rows are scored in batches of similar length.

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::Value;

use super::LoadedRm;
use crate::data::prefs::{Content, Layout, Seq, SeqEncoder, content_cell};
use crate::data::{self, DataError, Table, edit_distance};
use crate::device::{DeviceSpec, run_on};

/// Score responses with a reward model.
#[derive(Debug, Clone, clap::Args)]
pub struct ScoreConfig {
    /// A reward model folder (from `rmtk train-rm`, or any `*ForSequenceClassification`
    /// with one label) or a hub id.
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
    /// Rows to score: parquet or JSONL.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write them with rewards: .parquet or .jsonl.
    #[arg(long)]
    pub output: PathBuf,
    /// Column of prompts (default `prompt` if present; none: the response holds it all).
    #[arg(long)]
    pub prompt_column: Option<String>,
    #[arg(long, default_value = "response")]
    pub response_column: String,
    /// Name of the column written.
    #[arg(long, default_value = "reward")]
    pub reward_column: String,
    /// How to read cells: auto (by type), text, chat.
    #[arg(long, value_enum, default_value = "auto")]
    pub layout: Layout,
    /// Sequences per batch.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Cut sequences to this many tokens (default: as the model was trained).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Give bad rows a null reward (counted in the log) instead of stopping.
    #[arg(long)]
    pub skip_bad_rows: bool,
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

pub fn run(cfg: ScoreConfig) -> Result<()> {
    if cfg.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if same_file(&cfg.input, &cfg.output) {
        bail!(
            "--output {} is the input file; write the scores to another file",
            cfg.output.display()
        );
    }
    let mut rm = LoadedRm::open_with_base(&cfg.model, cfg.base_model.as_deref())?;
    rm.dtype = cfg.dtype;
    // Every row gets a score: a model trained with `filter` scores long rows cut.
    let spec = rm.seq_spec(cfg.max_length, None)?.for_scoring();
    let table = data::read_table(&cfg.input)?;
    table.require_column(&cfg.response_column)?;
    let prompt_column = resolve_prompt(&table, cfg.prompt_column.as_deref())?;
    let bad: std::collections::HashMap<usize, &String> =
        table.bad.iter().map(|(r, m)| (*r, m)).collect();
    let encoder = SeqEncoder::new(&rm.tokenizer, spec.clone(), super::model_vocab(&rm.dir)?);
    let mut seqs: Vec<Option<Seq>> = Vec::with_capacity(table.rows.len());
    let mut skipped = Vec::new();
    for row in 0..table.rows.len() {
        let result = encode_row(&table, row, &bad, prompt_column.as_deref(), &cfg, &encoder);
        match result {
            Ok(seq) => seqs.push(Some(seq)),
            Err(err) if cfg.skip_bad_rows => {
                skipped.push(err);
                seqs.push(None);
            }
            Err(err) => return Err(err.into()),
        }
    }
    let truncated = seqs.iter().flatten().filter(|s| s.truncated).count();
    eprintln!(
        "score: {} rows from {}; {truncated} cut to --max-length {}",
        table.rows.len(),
        cfg.input.display(),
        spec.max_length
    );
    if !skipped.is_empty() {
        eprintln!(
            "score: skipped {} bad rows (--skip-bad-rows; their {} is null)",
            skipped.len(),
            cfg.reward_column
        );
        for err in skipped.iter().take(5) {
            eprintln!("  skipped: {err}");
        }
    }
    if table.has_column(&cfg.reward_column) {
        eprintln!(
            "score: the input already has a `{}` column; it is replaced",
            cfg.reward_column
        );
    }
    let present: Vec<(usize, &Seq)> = seqs
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
        .collect();
    let refs: Vec<&Seq> = present.iter().map(|(_, s)| *s).collect();
    let scored = run_on(
        cfg.device,
        super::RewardsJob {
            rm: &rm,
            seqs: &refs,
            batch_size: cfg.batch_size,
            what: "score",
        },
    )?;
    let mut rewards = vec![None; seqs.len()];
    for ((i, _), r) in present.iter().zip(scored) {
        rewards[*i] = Some(r);
    }
    let rows: Vec<data::Row> = table
        .rows
        .iter()
        .zip(&rewards)
        .map(|(row, r)| {
            let mut row = row.clone();
            row.insert(
                cfg.reward_column.clone(),
                r.map_or(Value::Null, reward_json),
            );
            row
        })
        .collect();
    data::write_rows(&cfg.output, &rows)?;
    eprintln!(
        "score: wrote {} rows to {}",
        rows.len(),
        cfg.output.display()
    );
    Ok(())
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// An f32 reward as the JSON number with the same shortest decimal form.
pub fn reward_json(v: f32) -> Value {
    let as_f64: f64 = format!("{v}").parse().unwrap_or(f64::from(v));
    serde_json::Number::from_f64(as_f64).map_or(Value::Null, Value::Number)
}

/// The prompt column: the one named, else `prompt` if present, else none (a near
/// miss of `prompt` is a typo, not "no prompt").
pub fn resolve_prompt(table: &Table, named: Option<&str>) -> Result<Option<String>, DataError> {
    match named {
        Some(p) => table.require_column(p).map(|_| Some(p.to_string())),
        None if table.has_column("prompt") => Ok(Some("prompt".into())),
        None => {
            if table.columns.iter().any(|c| {
                let d = edit_distance("prompt", &c.to_lowercase());
                d > 0 && d <= 2
            }) {
                return Err(DataError::MissingColumn {
                    path: table.path.clone(),
                    column: "prompt".into(),
                    found: table.columns.clone(),
                });
            }
            Ok(None)
        }
    }
}

fn encode_row(
    table: &Table,
    row: usize,
    bad: &std::collections::HashMap<usize, &String>,
    prompt_column: Option<&str>,
    cfg: &ScoreConfig,
    encoder: &SeqEncoder<'_>,
) -> Result<Seq, DataError> {
    if let Some(message) = bad.get(&row) {
        return Err(DataError::Row {
            path: table.path.clone(),
            row,
            message: (*message).clone(),
        });
    }
    let prompt: Option<Content> = match prompt_column {
        Some(p) => Some(content_cell(table, row, p, cfg.layout, "user")?),
        None => None,
    };
    let response = content_cell(table, row, &cfg.response_column, cfg.layout, "assistant")?;
    encoder
        .encode(prompt.as_ref(), &response)
        .map_err(|m| DataError::Row {
            path: table.path.clone(),
            row,
            message: m,
        })
}
