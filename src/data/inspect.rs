//! `rmtk data inspect`: what a preference file holds before any training touches it:
//! rows, layouts, cells that are null or empty, rows `train-rm` would refuse, duplicate
//! pairs and prompts, pairs whose two responses are the same; with a model's tokenizer,
//! token-length percentiles and the pairs each `--overlong` rule would touch at
//! `--max-length`. Files are read in chunks (parquet and JSONL streamed), so memory holds
//! one chunk plus a few numbers per pair, not the file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::prefs::{self, Content, Layout, Overlong, PrefColumns, PrefPair, SeqEncoder};
use super::{DataError, Table};

/// Rows per chunk: enough to keep every core tokenizing, little memory.
pub const CHUNK_ROWS: usize = 8192;

/// Nulls and empty cells of one column.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ColumnStats {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub nulls: usize,
    /// Empty texts and empty lists.
    pub empty: usize,
}

/// Percentiles of a length (tokens).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub p50: u32,
    pub p90: u32,
    pub p95: u32,
    pub p99: u32,
    pub max: u32,
    pub mean: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `v` (sorted here).
    pub fn of(v: &mut [u32]) -> Self {
        if v.is_empty() {
            return Self::default();
        }
        v.sort_unstable();
        let at = |q: f64| v[(((q * v.len() as f64).ceil() as usize).max(1) - 1).min(v.len() - 1)];
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p95: at(0.95),
            p99: at(0.99),
            max: v[v.len() - 1],
            mean: v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64,
        }
    }
}

/// What each `--overlong` rule would do at `max_length`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OverlongReport {
    pub max_length: usize,
    /// Pairs with a side longer than the limit (`filter` drops them).
    pub over: usize,
    /// `truncate`: pairs a response of which is cut too (longer than the limit alone).
    pub truncate_responses_cut: usize,
    /// `truncate`: pairs identical once cut (dropped).
    pub truncate_identical: usize,
    /// `truncate-start`: pairs identical once cut (dropped).
    pub truncate_start_identical: usize,
}

/// Token lengths of the pairs `train-rm` would read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LengthReport {
    pub prompt: Percentiles,
    pub chosen: Percentiles,
    pub rejected: Percentiles,
    /// The longer of a pair's two whole sequences (template and special tokens included).
    pub sequence: Percentiles,
    pub overlong: OverlongReport,
}

/// The inspection of one or more files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub files: Vec<PathBuf>,
    pub rows: usize,
    /// Pairs `train-rm` would read.
    pub pairs: usize,
    /// Pairs by layout: text, conversational, pre-tokenized.
    pub text_pairs: usize,
    pub conversational_pairs: usize,
    pub pretokenized_pairs: usize,
    /// Rows `train-rm` would refuse (unreadable, a bad cell, chosen == rejected...).
    pub bad_rows: usize,
    /// The first few, as `train-rm` would word them.
    pub bad_examples: Vec<String>,
    pub columns: Vec<ColumnStats>,
    /// Rows whose chosen and rejected cells are the same.
    pub identical_chosen_rejected: usize,
    /// Pairs that repeat an earlier pair (prompt, chosen and rejected).
    pub duplicate_pairs: usize,
    pub distinct_prompts: usize,
    pub lengths: Option<LengthReport>,
}

/// A pair's lengths, and what the rules do with it.
#[derive(Default)]
struct Measured {
    prompt: u32,
    chosen: u32,
    rejected: u32,
    sequence: u32,
    over: bool,
    truncate_responses_cut: bool,
    truncate_identical: bool,
    truncate_start_identical: bool,
}

/// Inspect files; `lengths` adds the token figures.
pub fn inspect(
    paths: &[PathBuf],
    columns: &PrefColumns,
    layout: Layout,
    lengths: Option<&SeqEncoder<'_>>,
    progress: impl Fn(usize),
) -> Result<Report, DataError> {
    let mut report = Report {
        files: paths.to_vec(),
        ..Report::default()
    };
    let mut pair_seen: HashSet<u128> = HashSet::new();
    let mut prompts: HashSet<u128> = HashSet::new();
    let mut measured: Vec<[u32; 4]> = Vec::new();
    let mut overlong = OverlongReport {
        max_length: lengths.map_or(0, |l| l.spec().max_length),
        ..OverlongReport::default()
    };
    for path in paths {
        super::for_each_chunk(path, CHUNK_ROWS, |offset, table| {
            report.rows += table.rows.len();
            column_stats(&table, &mut report.columns);
            let (chosen_col, rejected_col) = side_columns(&table, columns);
            report.identical_chosen_rejected += table
                .rows
                .iter()
                .filter(|r| {
                    let c = r.get(&chosen_col);
                    c.is_some_and(|c| !c.is_null()) && c == r.get(&rejected_col)
                })
                .count();
            let mut read = prefs::PairsRead::default();
            match prefs::read_table_pairs(&table, columns, layout, true, &mut read) {
                Ok(()) => {}
                // A missing column is the file's problem, not a row's: stop.
                Err(e) => return Err(e),
            }
            report.bad_rows += read.skipped.len();
            for e in read.skipped.into_iter() {
                if report.bad_examples.len() < 5 {
                    report.bad_examples.push(e.shifted(offset).to_string());
                }
            }
            for p in &read.pairs {
                match (&p.chosen, &p.prompt) {
                    (Content::Tokens(_), _) => report.pretokenized_pairs += 1,
                    (Content::Chat(_), _) | (_, Some(Content::Chat(_))) => {
                        report.conversational_pairs += 1
                    }
                    _ => report.text_pairs += 1,
                }
                prompts.insert(super::split::prompt_key(p));
                if !pair_seen.insert(super::split::pair_key(p)) {
                    report.duplicate_pairs += 1;
                }
            }
            report.pairs += read.pairs.len();
            if let Some(l) = lengths {
                let results: Vec<Result<Measured, DataError>> = read
                    .pairs
                    .par_iter()
                    .map(|p| measure(l, p).map_err(|m| p.source.error(m).shifted(offset)))
                    .collect();
                for r in results {
                    match r {
                        Ok(m) => {
                            measured.push([m.prompt, m.chosen, m.rejected, m.sequence]);
                            overlong.over += usize::from(m.over);
                            overlong.truncate_responses_cut +=
                                usize::from(m.truncate_responses_cut);
                            overlong.truncate_identical += usize::from(m.truncate_identical);
                            overlong.truncate_start_identical +=
                                usize::from(m.truncate_start_identical);
                        }
                        Err(e) => {
                            report.bad_rows += 1;
                            if report.bad_examples.len() < 5 {
                                report.bad_examples.push(e.to_string());
                            }
                        }
                    }
                }
            }
            progress(table.rows.len());
            Ok(())
        })?;
    }
    report.distinct_prompts = prompts.len();
    if lengths.is_some() {
        let col = |i: usize| {
            let mut v: Vec<u32> = measured.iter().map(|m| m[i]).collect();
            Percentiles::of(&mut v)
        };
        report.lengths = Some(LengthReport {
            prompt: col(0),
            chosen: col(1),
            rejected: col(2),
            sequence: col(3),
            overlong,
        });
    }
    Ok(report)
}

/// The columns holding the two responses, as `train-rm` picks them.
fn side_columns(table: &Table, c: &PrefColumns) -> (String, String) {
    if c.chosen.is_none() && !table.has_column("chosen") && table.has_column("chosen_ids") {
        return ("chosen_ids".into(), "rejected_ids".into());
    }
    (
        c.chosen.clone().unwrap_or_else(|| "chosen".into()),
        c.rejected.clone().unwrap_or_else(|| "rejected".into()),
    )
}

fn column_stats(table: &Table, stats: &mut Vec<ColumnStats>) {
    for (i, name) in table.columns.iter().enumerate() {
        let slot = match stats.iter().position(|s| &s.name == name) {
            Some(p) => p,
            None => {
                stats.push(ColumnStats {
                    name: name.clone(),
                    kind: table.types.get(i).cloned().unwrap_or_default(),
                    ..ColumnStats::default()
                });
                stats.len() - 1
            }
        };
        let s = &mut stats[slot];
        for row in &table.rows {
            match row.get(name) {
                None | Some(Value::Null) => s.nulls += 1,
                Some(Value::String(t)) if t.trim().is_empty() => s.empty += 1,
                Some(Value::Array(a)) if a.is_empty() => s.empty += 1,
                _ => {}
            }
        }
    }
}

fn measure(enc: &SeqEncoder<'_>, p: &PrefPair) -> Result<Measured, String> {
    let tok_count = |c: &Content| c.token_count(enc.tokenizer()).map(|n| n as u32);
    let mut m = Measured {
        prompt: p.prompt.as_ref().map(tok_count).transpose()?.unwrap_or(0),
        chosen: tok_count(&p.chosen)?,
        rejected: tok_count(&p.rejected)?,
        ..Measured::default()
    };
    let sides = [&p.chosen, &p.rejected];
    let whole = enc
        .with_overlong(Overlong::Filter)
        .encode_group(p.prompt.as_ref(), &sides)?;
    m.sequence = whole.iter().map(|s| s.ids.len()).max().unwrap_or(0) as u32;
    let max = enc.spec().max_length;
    if m.sequence as usize > max {
        m.over = true;
        let cut = enc
            .with_overlong(Overlong::Truncate)
            .encode_group(p.prompt.as_ref(), &sides)?;
        m.truncate_responses_cut = cut.iter().any(|s| s.response_cut);
        m.truncate_identical = cut[0].ids == cut[1].ids;
        let start = enc
            .with_overlong(Overlong::TruncateStart)
            .encode_group(p.prompt.as_ref(), &sides)?;
        m.truncate_start_identical = start[0].ids == start[1].ids;
    }
    Ok(m)
}

/// The report for a reader.
pub fn summary(r: &Report) -> Vec<String> {
    let mut lines = vec![format!(
        "{} rows in {} file(s): {} pairs train-rm reads ({} text, {} conversational, {} pre-tokenized), {} rows it refuses",
        r.rows,
        r.files.len(),
        r.pairs,
        r.text_pairs,
        r.conversational_pairs,
        r.pretokenized_pairs,
        r.bad_rows
    )];
    for e in &r.bad_examples {
        lines.push(format!("  refused: {e}"));
    }
    for c in &r.columns {
        lines.push(format!(
            "column `{}` ({}): {} null, {} empty",
            c.name, c.kind, c.nulls, c.empty
        ));
    }
    lines.push(format!(
        "duplicates: {} pairs repeat an earlier one; {} distinct prompts; {} rows with chosen identical to rejected",
        r.duplicate_pairs, r.distinct_prompts, r.identical_chosen_rejected
    ));
    if let Some(l) = &r.lengths {
        let pct = |name: &str, p: &Percentiles| {
            format!(
                "tokens of {name:<9} p50 {:>6} p90 {:>6} p95 {:>6} p99 {:>6} max {:>7} mean {:>8.1}",
                p.p50, p.p90, p.p95, p.p99, p.max, p.mean
            )
        };
        lines.push(pct("prompt", &l.prompt));
        lines.push(pct("chosen", &l.chosen));
        lines.push(pct("rejected", &l.rejected));
        lines.push(pct("sequence", &l.sequence));
        let o = &l.overlong;
        lines.push(format!(
            "--max-length {}: {} pairs longer; filter drops them; truncate cuts their prompts ({} also cut a response, {} identical once cut); truncate-start leaves {} identical once cut",
            o.max_length, o.over, o.truncate_responses_cut, o.truncate_identical, o.truncate_start_identical
        ));
    }
    lines
}

/// Rows the files hold (parquet: from the footer; JSONL: unknown).
pub fn known_rows(paths: &[PathBuf]) -> Option<u64> {
    let mut total = 0;
    for p in paths {
        total += parquet_rows(p)?;
    }
    Some(total)
}

fn parquet_rows(path: &Path) -> Option<u64> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).ok()?;
    let reader = SerializedFileReader::new(file).ok()?;
    Some(reader.metadata().file_metadata().num_rows() as u64)
}
