//! `rmtk data`: inspect, convert, split and deduplicate preference files. Each subcommand
//! is a config plus a run; nothing is written unless the whole input was read (a bad row
//! stops it with the file, row and column named, unless `--skip-bad-rows`), and outputs
//! are written atomically.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Subcommand;

use super::convert::{self, SourceLayout};
use super::inspect;
use super::prefs::{self, Layout, Overlong, PrefColumns, PrefPair, SeqEncoder, SeqSpec};
use super::split::{self, DedupKey};
use super::{Row, Table};
use crate::models::ModelDir;

/// Inspect, convert, split and deduplicate preference files.
#[derive(Debug, Clone, clap::Args)]
pub struct DataConfig {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DataCommand {
    /// What a preference file holds: rows, layouts, nulls, duplicates, refused rows; with
    /// --model, token lengths and what each --overlong rule would do. Streams the file.
    Inspect(InspectConfig),
    /// Convert ShareGPT / Alpaca (LLaMA-Factory), TRL, UltraFeedback-binarized or OpenAI
    /// preference rows to rmtk's layout.
    Convert(ConvertConfig),
    /// Split a file in two, grouped by prompt: no prompt on both sides.
    Split(SplitConfig),
    /// Drop repeated pairs (or prompts), keeping the first.
    Dedup(DedupConfig),
}

/// The columns and layout, as `train-rm` takes them.
#[derive(Debug, Clone, clap::Args)]
pub struct ColumnArgs {
    /// The prompt's column (default `prompt` if present: else the prompt is inside both
    /// responses).
    #[arg(long)]
    pub prompt_column: Option<String>,
    /// The preferred response's column (default `chosen`, or `chosen_ids`).
    #[arg(long)]
    pub chosen_column: Option<String>,
    /// The other response's column (default `rejected`, or `rejected_ids`).
    #[arg(long)]
    pub rejected_column: Option<String>,
    /// How to read cells: auto (by type), text, chat.
    #[arg(long, value_enum, default_value = "auto")]
    pub layout: Layout,
}

impl ColumnArgs {
    fn columns(&self) -> PrefColumns {
        PrefColumns {
            prompt: self.prompt_column.clone(),
            chosen: self.chosen_column.clone(),
            rejected: self.rejected_column.clone(),
            margin: None,
            group: None,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct InspectConfig {
    /// Preference files (parquet, JSONL or a JSON array; wildcards allowed).
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<String>,
    /// A model folder or hub id whose tokenizer (and chat template) measures the lengths.
    #[arg(long)]
    pub model: Option<String>,
    /// The length the overlong figures are for.
    #[arg(long, default_value_t = 1024)]
    pub max_length: usize,
    #[command(flatten)]
    pub columns: ColumnArgs,
    /// Also write the JSON report here.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConvertConfig {
    /// The file to convert (parquet, JSONL or a JSON array).
    pub input: PathBuf,
    /// Where to write (parquet or .jsonl by extension); default INPUT's name with
    /// `.rmtk.parquet`.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// The input's layout (default: from its columns).
    #[arg(long, value_enum, default_value = "auto")]
    pub from: SourceLayout,
    /// Skip rows that cannot be converted (counted) instead of stopping.
    #[arg(long)]
    pub skip_bad_rows: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SplitConfig {
    /// The file to split (any layout train-rm reads).
    pub input: PathBuf,
    /// The share of pairs on the test side (whole prompts: a little more, at most).
    #[arg(long, default_value_t = 0.1)]
    pub test_fraction: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Default: INPUT's name with `-train` (same extension).
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Default: INPUT's name with `-test`.
    #[arg(long)]
    pub test: Option<PathBuf>,
    #[command(flatten)]
    pub columns: ColumnArgs,
    /// Leave out rows train-rm would refuse (counted) instead of stopping.
    #[arg(long)]
    pub skip_bad_rows: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DedupConfig {
    pub input: PathBuf,
    /// Default: INPUT's name with `-dedup`.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// pair: the same prompt and responses; prompt: the same prompt.
    #[arg(long, value_enum, default_value = "pair")]
    pub key: DedupKey,
    #[command(flatten)]
    pub columns: ColumnArgs,
    #[arg(long)]
    pub skip_bad_rows: bool,
}

pub fn run(cfg: DataConfig) -> Result<()> {
    match cfg.command {
        DataCommand::Inspect(c) => run_inspect(c),
        DataCommand::Convert(c) => run_convert(c),
        DataCommand::Split(c) => run_split(c),
        DataCommand::Dedup(c) => run_dedup(c),
    }
}

fn run_inspect(cfg: InspectConfig) -> Result<()> {
    let paths = prefs::expand_paths(&cfg.files)?;
    let model = cfg.model.as_deref().map(ModelDir::open).transpose()?;
    let tokenizer = model.as_ref().map(ModelDir::tokenizer).transpose()?;
    let lengths = match (&model, &tokenizer) {
        (Some(m), Some(tok)) => {
            let spec = SeqSpec::for_model(m.family, tok, cfg.max_length, Overlong::Filter);
            Some(SeqEncoder::new(tok, spec, usize::MAX))
        }
        _ => None,
    };
    let bar = crate::util::progress_bar(inspect::known_rows(&paths).unwrap_or(0), "inspect");
    let started = std::time::Instant::now();
    let report = inspect::inspect(
        &paths,
        &cfg.columns.columns(),
        cfg.columns.layout,
        lengths.as_ref(),
        |n| bar.inc(n as u64),
    )?;
    bar.finish_and_clear();
    for line in inspect::summary(&report) {
        eprintln!("data inspect: {line}");
    }
    eprintln!("data inspect: {:.1} s", started.elapsed().as_secs_f64());
    let json = serde_json::to_value(&report)?;
    println!("{json}");
    if let Some(path) = &cfg.output {
        crate::models::load::write_json(path, &json)?;
    }
    Ok(())
}

/// The same file: by what the paths resolve to when both exist, else as written.
fn same_path(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}

/// Refuse to write over an input (or over the other output).
fn not_an_input(output: &Path, inputs: &[&Path]) -> Result<()> {
    for input in inputs {
        if same_path(output, input) {
            bail!(
                "{} is also {}; write to another file",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// `INPUT` with `suffix` before its extension, or before `ext` in its place.
fn beside(input: &Path, suffix: &str, ext: Option<&str>) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = ext.map(str::to_string).unwrap_or_else(|| {
        input
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| "parquet".into())
    });
    input.with_file_name(format!("{stem}{suffix}.{ext}"))
}

fn run_convert(cfg: ConvertConfig) -> Result<()> {
    let output = cfg
        .output
        .clone()
        .unwrap_or_else(|| beside(&cfg.input, ".rmtk", Some("parquet")));
    not_an_input(&output, &[&cfg.input])?;
    let converted = convert::convert_file(&cfg.input, cfg.from, cfg.skip_bad_rows)?;
    if converted.rows.is_empty() {
        bail!("{}: no pairs to write", cfg.input.display());
    }
    super::write_rows(&output, &converted.rows)?;
    eprintln!(
        "data convert: {} ({}): {} pairs -> {}{}",
        cfg.input.display(),
        converted.layout.name(),
        converted.rows.len(),
        output.display(),
        skipped_note(&converted.skipped)
    );
    Ok(())
}

fn skipped_note(skipped: &[super::DataError]) -> String {
    match skipped.first() {
        None => String::new(),
        Some(first) => format!("; {} bad rows skipped (first: {first})", skipped.len()),
    }
}

/// A file's rows and the pairs train-rm reads from them.
fn read_pairs(
    input: &Path,
    columns: &ColumnArgs,
    skip_bad_rows: bool,
) -> Result<(Table, Vec<PrefPair>, Vec<super::DataError>)> {
    let table = super::read_table(input)?;
    let mut read = prefs::PairsRead::default();
    prefs::read_table_pairs(
        &table,
        &columns.columns(),
        columns.layout,
        skip_bad_rows,
        &mut read,
    )?;
    if read.pairs.is_empty() {
        bail!("{}: no pairs", input.display());
    }
    Ok((table, read.pairs, read.skipped))
}

fn run_split(cfg: SplitConfig) -> Result<()> {
    if !(cfg.test_fraction > 0.0 && cfg.test_fraction < 1.0) {
        bail!("--test-fraction must be between 0 and 1");
    }
    let train_path = cfg
        .train
        .clone()
        .unwrap_or_else(|| beside(&cfg.input, "-train", None));
    let test_path = cfg
        .test
        .clone()
        .unwrap_or_else(|| beside(&cfg.input, "-test", None));
    not_an_input(&train_path, &[&cfg.input])?;
    not_an_input(&test_path, &[&cfg.input, &train_path])?;
    let (table, pairs, skipped) = read_pairs(&cfg.input, &cfg.columns, cfg.skip_bad_rows)?;
    let (train, test) = split::split_rows(&table, &pairs, cfg.test_fraction, cfg.seed)?;
    write_two(&train_path, &train, &test_path, &test)?;
    eprintln!(
        "data split: {}: {} pairs -> {} ({} pairs), {} ({} pairs), seed {}, by prompt{}",
        cfg.input.display(),
        pairs.len(),
        train_path.display(),
        train.len(),
        test_path.display(),
        test.len(),
        cfg.seed,
        skipped_note(&skipped)
    );
    Ok(())
}

/// Write two files, both or neither: each to a temporary name first, then both renamed.
fn write_two(a: &Path, a_rows: &[Row], b: &Path, b_rows: &[Row]) -> Result<()> {
    let tmp = |p: &Path| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = p
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        p.with_file_name(format!(".{name}.tmp-{}.{ext}", std::process::id()))
    };
    let (ta, tb) = (tmp(a), tmp(b));
    super::write_rows(&ta, a_rows)?;
    if let Err(e) = super::write_rows(&tb, b_rows) {
        let _ = std::fs::remove_file(&ta);
        return Err(e.into());
    }
    for (from, to) in [(&ta, a), (&tb, b)] {
        if let Err(e) = std::fs::rename(from, to) {
            let _ = std::fs::remove_file(&ta);
            let _ = std::fs::remove_file(&tb);
            bail!("renaming {} to {}: {e}", from.display(), to.display());
        }
    }
    Ok(())
}

fn run_dedup(cfg: DedupConfig) -> Result<()> {
    let output = cfg
        .output
        .clone()
        .unwrap_or_else(|| beside(&cfg.input, "-dedup", None));
    not_an_input(&output, &[&cfg.input])?;
    let (table, pairs, skipped) = read_pairs(&cfg.input, &cfg.columns, cfg.skip_bad_rows)?;
    let (rows, dropped) = split::dedup_rows(&table, &pairs, cfg.key);
    super::write_rows(&output, &rows)?;
    eprintln!(
        "data dedup: {}: {} pairs, {dropped} repeats dropped (by {}), {} written to {}{}",
        cfg.input.display(),
        pairs.len(),
        match cfg.key {
            DedupKey::Pair => "pair",
            DedupKey::Prompt => "prompt",
        },
        rows.len(),
        output.display(),
        skipped_note(&skipped)
    );
    Ok(())
}
