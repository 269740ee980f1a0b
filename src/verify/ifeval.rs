//! IFEval mode: `rmtk verify --ifeval INPUT_DATA.jsonl --responses RESPONSES.jsonl`,
//! the official evaluation (`evaluation_main.py`) with the rules engine.
//!
//! Responses are matched to prompts by exact prompt text, as the official evaluator
//! does (when a prompt has several responses, the last one counts, as there). Every
//! prompt with a response gets one output row: `key`, `prompt`, `response`,
//! `instruction_id_list`, `follow_instruction_list_strict`,
//! `follow_instruction_list_loose`, `follow_all_strict`, `follow_all_loose`, and
//! `reasons` (the strict failures). The report is printed: prompt-level and
//! instruction-level accuracy, strict and loose, by category and by instruction id.
//! Responses whose prompt is not among the input's are reported as unmatched (and
//! listed in `OUTPUT.unmatched.jsonl`); prompts without a response are counted and
//! left out of the accuracies.
//!
//! With a judge configured, the judge also answers every instruction (phrased as
//! text) and its agreement with the rules' strict verdicts is printed: the labelled
//! set for judging a judge.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use serde_json::{Map, Value, json};

use super::input::{kwargs_list, string_list};
use super::output::Partial;
use super::rules::{self, IfevalReport, Instruction, RowVerdict};
use super::{ConstraintSet, Mode, VerifyConfig, VerifyItem, bad_rows_message, with_verifier};
use crate::data::{self, DataError, Row, Table, json_type};

/// One prompt of a benchmark (IFEval's, IFBench's): its instructions built as `I`.
#[derive(Debug, Clone)]
pub struct BenchmarkPrompt<I> {
    pub key: Value,
    pub prompt: String,
    pub ids: Vec<String>,
    pub instructions: Vec<I>,
}

/// One prompt of IFEval.
pub type IfevalPrompt = BenchmarkPrompt<Instruction>;

/// Reads IFEval's `input_data.jsonl` rows: `key`, `prompt`, `instruction_id_list`,
/// `kwargs`. Arguments are taken exactly as given (as the official evaluator builds
/// them).
pub fn read_prompts(
    table: &Table,
    prompt_column: &str,
) -> Result<Vec<Result<IfevalPrompt, DataError>>, DataError> {
    read_benchmark_prompts(table, prompt_column, Instruction::new)
}

/// Reads a benchmark's rows (`key`, a prompt, `instruction_id_list`, `kwargs`), each
/// instruction built by `build`; a bad row is an error naming its row and column.
pub(super) fn read_benchmark_prompts<I>(
    table: &Table,
    prompt_column: &str,
    build: impl Fn(&str, &Map<String, Value>) -> Result<I, rules::RuleError>,
) -> Result<Vec<Result<BenchmarkPrompt<I>, DataError>>, DataError> {
    for column in [prompt_column, "instruction_id_list", "kwargs"] {
        table.require_column(column)?;
    }
    Ok((0..table.rows.len())
        .map(|i| read_prompt(table, i, prompt_column, &build))
        .collect())
}

fn read_prompt<I>(
    table: &Table,
    i: usize,
    prompt_column: &str,
    build: &impl Fn(&str, &Map<String, Value>) -> Result<I, rules::RuleError>,
) -> Result<BenchmarkPrompt<I>, DataError> {
    if let Some((_, message)) = table.bad.iter().find(|(row, _)| *row == i) {
        return Err(DataError::Row {
            path: table.path.clone(),
            row: i,
            message: message.clone(),
        });
    }
    let row = &table.rows[i];
    let cell = |c: &str| row.get(c).unwrap_or(&Value::Null);
    let err = |c: &str, m: String| table.cell_error(i, c, m);
    let prompt = match cell(prompt_column) {
        Value::String(s) => s.clone(),
        other => {
            return Err(err(
                prompt_column,
                format!("should be text, found a {}", json_type(other)),
            ));
        }
    };
    let ids = string_list(cell("instruction_id_list"), "instruction ids")
        .map_err(|m| err("instruction_id_list", m))?;
    let kwargs = kwargs_list(cell("kwargs"), ids.len()).map_err(|m| err("kwargs", m))?;
    let instructions = ids
        .iter()
        .zip(&kwargs)
        .enumerate()
        .map(|(k, (id, kwargs))| {
            build(id, kwargs).map_err(|e| {
                let column = match e {
                    rules::RuleError::UnknownInstruction { .. } => "instruction_id_list",
                    rules::RuleError::BadKwargs { .. } => "kwargs",
                };
                err(column, format!("instruction {k} of the list: {e}"))
            })
        })
        .collect::<Result<_, _>>()?;
    let key = match cell("key") {
        Value::Null => json!(i),
        key => key.clone(),
    };
    Ok(BenchmarkPrompt {
        key,
        prompt,
        ids,
        instructions,
    })
}

/// The judge's agreement with the rules' strict verdicts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agreement {
    /// `[both pass, judge only, rules only, both fail]` overall and per id.
    pub counts: [usize; 4],
    pub by_id: BTreeMap<&'static str, [usize; 4]>,
    /// `(P(yes), rules verdict)` where the judge gave a probability.
    pub scored: Vec<(f32, bool)>,
}

impl Agreement {
    pub fn add(&mut self, id: &'static str, rules: bool, judge: bool, probability: Option<f32>) {
        let cell = match (rules, judge) {
            (true, true) => 0,
            (false, true) => 1,
            (true, false) => 2,
            (false, false) => 3,
        };
        self.counts[cell] += 1;
        self.by_id.entry(id).or_default()[cell] += 1;
        if let Some(p) = probability {
            self.scored.push((p, rules));
        }
    }

    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// The fraction of verdicts where judge and rules agree.
    pub fn agreement(&self) -> f64 {
        ratio(self.counts[0] + self.counts[3], self.total())
    }

    /// The mean of the judge's accuracy on rule-passes and on rule-failures.
    pub fn balanced_accuracy(&self) -> f64 {
        let [tp, fp, fn_, tn] = self.counts;
        (ratio(tp, tp + fn_) + ratio(tn, tn + fp)) / 2.0
    }

    /// Cohen's kappa: agreement beyond what the two pass rates give by chance.
    pub fn kappa(&self) -> f64 {
        let n = self.total() as f64;
        if n == 0.0 {
            return 0.0;
        }
        let [tp, fp, fn_, tn] = self.counts.map(|c| c as f64);
        let observed = (tp + tn) / n;
        let expected = ((tp + fp) * (tp + fn_) + (fn_ + tn) * (fp + tn)) / (n * n);
        if expected >= 1.0 {
            0.0
        } else {
            (observed - expected) / (1.0 - expected)
        }
    }

    /// ROC AUC of `P(yes)` against the rules' verdicts (ties count half): how well
    /// the judge ranks, whatever the threshold. `None` without both classes.
    pub fn auc(&self) -> Option<f64> {
        let positives = self.scored.iter().filter(|(_, y)| *y).count();
        let negatives = self.scored.len() - positives;
        if positives == 0 || negatives == 0 {
            return None;
        }
        let mut sorted = self.scored.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Mann-Whitney U with average ranks for ties.
        let mut rank_sum = 0.0;
        let mut i = 0;
        while i < sorted.len() {
            let mut j = i;
            while j + 1 < sorted.len() && sorted[j + 1].0 == sorted[i].0 {
                j += 1;
            }
            let rank = (i + j) as f64 / 2.0 + 1.0;
            rank_sum += rank * sorted[i..=j].iter().filter(|(_, y)| *y).count() as f64;
            i = j + 1;
        }
        let p = positives as f64;
        Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
    }

    pub fn to_json(&self) -> Value {
        let [tp, fp, fn_, tn] = self.counts;
        json!({
            "checks": self.total(),
            "agreement": self.agreement(),
            "balanced_accuracy": self.balanced_accuracy(),
            "kappa": self.kappa(),
            "auc": self.auc(),
            "both_pass": tp, "judge_pass_rules_fail": fp, "judge_fail_rules_pass": fn_, "both_fail": tn,
            "by_instruction": self.by_id.iter().map(|(id, c)| (id.to_string(), json!({
                "checks": c.iter().sum::<usize>(), "agree": c[0] + c[3]
            }))).collect::<Map<String, Value>>(),
        })
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl fmt::Display for Agreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [tp, fp, fn_, tn] = self.counts;
        writeln!(
            f,
            "judge vs rules (strict), {} instructions: agreement {:.2}%, balanced accuracy {:.2}%, kappa {:.3}, AUC {}",
            self.total(),
            100.0 * self.agreement(),
            100.0 * self.balanced_accuracy(),
            self.kappa(),
            self.auc().map_or("n/a".into(), |a| format!("{a:.3}"))
        )?;
        writeln!(
            f,
            "  rules pass: judge pass {tp}, judge fail {fn_};  rules fail: judge pass {fp}, judge fail {tn}"
        )?;
        writeln!(
            f,
            "{:<46} {:>8} {:>10}",
            "instruction", "checks", "agreement"
        )?;
        for (id, c) in &self.by_id {
            let n: usize = c.iter().sum();
            writeln!(f, "{id:<46} {n:>8} {:>9.1}%", 100.0 * ratio(c[0] + c[3], n))?;
        }
        Ok(())
    }
}

/// A response row's (prompt, response), or why it cannot be read.
pub(super) type ResponseRow = Result<(String, String), DataError>;

/// The responses file: its table and each row's (prompt, response), or why not.
pub(super) fn read_responses(cfg: &VerifyConfig, path: &Path) -> Result<(Table, Vec<ResponseRow>)> {
    let table = data::read_table(path)?;
    let response_column = cfg.response_column.as_deref().unwrap_or("response");
    for column in [cfg.prompt_column.as_str(), response_column] {
        table.require_column(column)?;
    }
    let responses = (0..table.rows.len())
        .map(|i| read_response(&table, i, &cfg.prompt_column, response_column))
        .collect();
    Ok((table, responses))
}

/// Responses matched to prompts by exact prompt text, as the official evaluators do.
pub(super) struct Matching {
    /// Prompt index -> response index; the last response for a prompt wins.
    pub chosen: BTreeMap<usize, usize>,
    /// Responses whose prompt is not among the (good) prompts.
    pub unmatched: Vec<usize>,
    /// Responses replaced by a later one for the same prompt.
    pub repeated: usize,
}

impl Matching {
    /// `prompts`: each prompt's text, `None` for a bad row.
    pub fn new<'a>(
        prompts: impl Iterator<Item = Option<&'a str>>,
        responses: &[ResponseRow],
    ) -> Matching {
        let index: HashMap<&str, usize> = prompts
            .enumerate()
            .filter_map(|(i, p)| p.map(|p| (p, i)))
            .collect();
        let mut matching = Matching {
            chosen: BTreeMap::new(),
            unmatched: Vec::new(),
            repeated: 0,
        };
        for (r, response) in responses.iter().enumerate() {
            let Ok((prompt, _)) = response else { continue };
            match index.get(prompt.as_str()) {
                Some(&p) => {
                    if matching.chosen.insert(p, r).is_some() {
                        matching.repeated += 1;
                    }
                }
                None => matching.unmatched.push(r),
            }
        }
        matching
    }
}

/// Writes `OUTPUT.unmatched.jsonl` (the unmatched responses, with their row), or
/// removes a stale one when every response matched.
pub(super) fn write_unmatched(output: &Path, unmatched: &[usize], table: &Table) -> Result<()> {
    let path = unmatched_path(output);
    if unmatched.is_empty() {
        if path.is_file() {
            std::fs::remove_file(&path).with_context(|| path.display().to_string())?;
        }
        return Ok(());
    }
    let listed: Vec<Row> = unmatched
        .iter()
        .map(|&r| {
            let mut row = table.rows[r].clone();
            row.insert("row".into(), json!(r));
            row
        })
        .collect();
    data::write_rows(&path, &listed)?;
    eprintln!(
        "wrote the {} unmatched responses to {}",
        unmatched.len(),
        path.display()
    );
    Ok(())
}

/// A response row: (prompt, response).
fn read_response(
    table: &Table,
    i: usize,
    prompt_column: &str,
    response_column: &str,
) -> Result<(String, String), DataError> {
    if let Some((_, message)) = table.bad.iter().find(|(row, _)| *row == i) {
        return Err(DataError::Row {
            path: table.path.clone(),
            row: i,
            message: message.clone(),
        });
    }
    let row = &table.rows[i];
    let text = |column: &str| match row.get(column).unwrap_or(&Value::Null) {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Err(table.cell_error(i, column, "is null")),
        other => Err(table.cell_error(
            i,
            column,
            format!("should be text, found a {}", json_type(other)),
        )),
    };
    Ok((text(prompt_column)?, text(response_column)?))
}

/// `OUTPUT.unmatched.jsonl`, next to the output.
fn unmatched_path(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    output.with_file_name(format!("{stem}.unmatched.jsonl"))
}

/// Runs IFEval mode.
pub fn run(cfg: &VerifyConfig) -> Result<()> {
    let started = Instant::now();
    let input_path = cfg.ifeval.as_deref().expect("IFEval mode has --ifeval");
    let responses_path = cfg.responses.as_deref().expect("clap requires --responses");
    let prompt_table = data::read_table(input_path)?;
    let prompts = read_prompts(&prompt_table, &cfg.prompt_column)?;
    let (response_table, responses) = read_responses(cfg, responses_path)?;

    let mut bad: Vec<(usize, String)> = Vec::new();
    let mut bad_lines = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        if let Err(e) = p {
            bad.push((i, e.to_string()));
            bad_lines.push(e.to_string());
        }
    }
    let bad_prompts = bad.len();
    for (i, r) in responses.iter().enumerate() {
        if let Err(e) = r {
            bad.push((i, e.to_string()));
            bad_lines.push(e.to_string());
        }
    }
    if !bad.is_empty() && !cfg.skip_bad_rows {
        bail!(bad_rows_message(&bad));
    }

    let Matching {
        chosen,
        unmatched,
        repeated,
    } = Matching::new(
        prompts
            .iter()
            .map(|p| p.as_ref().ok().map(|p| p.prompt.as_str())),
        &responses,
    );
    let without_response = prompts.iter().filter(|p| p.is_ok()).count() - chosen.len();

    let matched: Vec<(usize, &IfevalPrompt, &str)> = chosen
        .iter()
        .map(|(&p, &r)| {
            let prompt = prompts[p].as_ref().expect("only good prompts are matched");
            let response = &responses[r]
                .as_ref()
                .expect("only good responses are matched")
                .1;
            (p, prompt, response.as_str())
        })
        .collect();
    let verdicts: Vec<RowVerdict> = matched
        .par_iter()
        .map(|(_, prompt, response)| rules::evaluate(&prompt.instructions, response))
        .collect();
    let mut report = IfevalReport::new();
    for ((_, prompt, _), verdict) in matched.iter().zip(&verdicts) {
        report.add(&prompt.instructions, verdict);
    }
    let mut rows: Vec<Row> = matched
        .iter()
        .zip(&verdicts)
        .map(|((_, prompt, response), verdict)| {
            let mut row = Map::new();
            row.insert("key".into(), prompt.key.clone());
            row.insert("prompt".into(), json!(prompt.prompt));
            row.insert("response".into(), json!(response));
            row.insert("instruction_id_list".into(), json!(prompt.ids));
            row.insert(
                "follow_instruction_list_strict".into(),
                json!(verdict.strict.iter().map(|c| c.pass).collect::<Vec<_>>()),
            );
            row.insert(
                "follow_instruction_list_loose".into(),
                json!(verdict.loose.iter().map(|c| c.pass).collect::<Vec<_>>()),
            );
            row.insert("follow_all_strict".into(), json!(verdict.follow_all_strict));
            row.insert("follow_all_loose".into(), json!(verdict.follow_all_loose));
            row.insert(
                "reasons".into(),
                json!(
                    verdict
                        .strict
                        .iter()
                        .filter_map(|c| c.reason.clone())
                        .collect::<Vec<_>>()
                ),
            );
            row
        })
        .collect();

    let mut agreement = None;
    if cfg.verifier.judge_kind() != super::JudgeKind::None {
        agreement = Some(judge_all(cfg, &matched, &verdicts, &mut rows)?);
    }

    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "IFEval: {} prompts with a response, of {} in {}",
        matched.len(),
        prompts.len() - bad_prompts,
        input_path.display()
    );
    println!(
        "{} responses in {}: {} matched, {} unmatched (no prompt with that exact text){}",
        responses.len(),
        responses_path.display(),
        responses.len() - unmatched.len() - (bad.len() - bad_prompts),
        unmatched.len(),
        if repeated > 0 {
            format!(
                ", {repeated} repeats of a prompt (the last response counts, as in the official evaluator)"
            )
        } else {
            String::new()
        }
    );
    if without_response > 0 {
        println!("{without_response} prompts have no response and are left out of the accuracies");
    }
    if !bad.is_empty() {
        println!(
            "skipped {} bad rows; the first: {}",
            bad.len(),
            bad_lines[0]
        );
    }
    println!();
    print!("{report}");
    println!();
    let levels = [
        ("prompt-level strict", report.prompt_level.strict),
        ("instruction-level strict", report.instruction_level.strict),
        ("prompt-level loose", report.prompt_level.loose),
        ("instruction-level loose", report.instruction_level.loose),
    ];
    for (name, acc) in &levels {
        println!(
            "{name}: {:.2}% ({}/{})",
            acc.percent(),
            acc.followed,
            acc.total
        );
    }
    if let Some(a) = &agreement {
        println!();
        print!("{a}");
    }

    if let Some(output) = &cfg.output {
        data::write_rows(output, &rows)?;
        eprintln!("wrote {} rows to {}", rows.len(), output.display());
        write_unmatched(output, &unmatched, &response_table)?;
    }
    if let Some(path) = &cfg.summary {
        let mut summary = json!({
            "prompts": prompts.len() - bad_prompts,
            "responses": responses.len(),
            "matched": matched.len(),
            "unmatched": unmatched.len(),
            "prompts_without_response": without_response,
            "repeated_prompts": repeated,
            "skipped_bad_rows": bad.len(),
            "seconds": elapsed,
        });
        for (name, acc) in &levels {
            summary[name.replace(['-', ' '], "_")] = json!(acc.ratio());
        }
        summary["by_instruction"] = report
            .by_id
            .iter()
            .map(|(id, g)| {
                (id.to_string(), json!({"strict": g.strict.ratio(), "loose": g.loose.ratio(), "total": g.strict.total}))
            })
            .collect::<Map<String, Value>>()
            .into();
        if let Some(a) = &agreement {
            summary["judge"] = a.to_json();
        }
        let bytes = serde_json::to_vec_pretty(&summary).expect("JSON values serialize");
        crate::util::write_atomic(path, &bytes)
            .with_context(|| format!("--summary {}", path.display()))?;
    }
    Ok(())
}

/// The judge's verdict on every instruction of every matched prompt (in chunks, with
/// durable progress when there is an output); adds `judge_*` columns to `rows`.
fn judge_all(
    cfg: &VerifyConfig,
    matched: &[(usize, &IfevalPrompt, &str)],
    verdicts: &[RowVerdict],
    rows: &mut [Row],
) -> Result<Agreement> {
    let mut args = cfg.verifier.clone();
    args.mode = Some(Mode::Judge);
    let sets: Vec<ConstraintSet> = matched
        .iter()
        .map(|(_, prompt, _)| {
            let mut set = ConstraintSet::from_prompt();
            for inst in &prompt.instructions {
                set.push_rule(inst.clone());
            }
            set
        })
        .collect();
    let fingerprint = crate::util::fnv128_hex(
        format!(
            "{:?}|{:?}|{:?}|{}",
            cfg.ifeval,
            cfg.responses,
            args,
            matched.len()
        )
        .as_bytes(),
    );
    with_verifier(&args, |verifier| {
        let mut progress = cfg
            .output
            .as_deref()
            .map(|o| Partial::open(o, &fingerprint, cfg.resume))
            .transpose()?;
        let mut done: BTreeMap<usize, Row> = BTreeMap::new();
        if let Some(p) = &mut progress {
            done.extend(p.take_resumed());
        }
        let todo: Vec<usize> = (0..matched.len())
            .filter(|i| !done.contains_key(i))
            .collect();
        let bar = crate::util::progress_bar(todo.len() as u64, "judge");
        for chunk in todo.chunks(super::JUDGE_CHUNK) {
            let items: Vec<VerifyItem<'_>> = chunk
                .iter()
                .map(|&i| VerifyItem {
                    prompt: &matched[i].1.prompt,
                    response: matched[i].2,
                    constraints: &sets[i],
                })
                .collect();
            let judged = verifier.verify(&items).map_err(|e| {
                let saved = progress
                    .as_ref()
                    .map(|p| p.resume_hint(done.len()))
                    .unwrap_or_default();
                anyhow::anyhow!("{e}{saved}")
            })?;
            let mut finished = Vec::with_capacity(chunk.len());
            for (&i, verdict) in chunk.iter().zip(judged) {
                let mut columns = Map::new();
                columns.insert(
                    "judge_follow_instruction_list".into(),
                    json!(verdict.checks.iter().map(|c| c.pass).collect::<Vec<_>>()),
                );
                columns.insert(
                    "judge_probabilities".into(),
                    json!(
                        verdict
                            .checks
                            .iter()
                            .map(|c| c.probability.map(|p| (f64::from(p) * 1e6).round() / 1e6))
                            .collect::<Vec<_>>()
                    ),
                );
                if verifier.judge().is_some_and(|j| j.writes_rationales()) {
                    columns.insert(
                        "judge_rationales".into(),
                        json!(
                            verdict
                                .checks
                                .iter()
                                .map(|c| c.rationale.clone())
                                .collect::<Vec<_>>()
                        ),
                    );
                }
                finished.push((i, columns.clone()));
                done.insert(i, columns);
            }
            if let Some(p) = &mut progress {
                p.append(&finished)?;
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        let mut agreement = Agreement::default();
        for (i, columns) in done {
            let judge_pass = columns["judge_follow_instruction_list"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let probabilities = columns["judge_probabilities"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for (k, inst) in matched[i].1.instructions.iter().enumerate() {
                agreement.add(
                    inst.id(),
                    verdicts[i].strict[k].pass,
                    judge_pass.get(k).and_then(Value::as_bool).unwrap_or(false),
                    probabilities
                        .get(k)
                        .and_then(Value::as_f64)
                        .map(|p| p as f32),
                );
            }
            rows[i].extend(columns);
        }
        if let Some(p) = progress {
            p.finish()?;
        }
        if let Some(stats) = verifier.judge().and_then(|j| j.stats()) {
            eprintln!("judge endpoint: {stats}");
        }
        Ok(agreement)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_numbers() {
        let mut a = Agreement::default();
        // rules pass: judge 0.9 pass, 0.6 pass, 0.3 fail; rules fail: 0.7 pass, 0.2 fail.
        a.add("punctuation:no_comma", true, true, Some(0.9));
        a.add("punctuation:no_comma", true, true, Some(0.6));
        a.add("detectable_format:title", true, false, Some(0.3));
        a.add("detectable_format:title", false, true, Some(0.7));
        a.add("detectable_format:title", false, false, Some(0.2));
        assert_eq!(a.counts, [2, 1, 1, 1]);
        assert!((a.agreement() - 0.6).abs() < 1e-12);
        assert!((a.balanced_accuracy() - (2.0 / 3.0 + 0.5) / 2.0).abs() < 1e-12);
        // Pairs (pos, neg): 0.9>0.7, 0.9>0.2, 0.6<0.7, 0.6>0.2, 0.3<0.7, 0.3>0.2: 4/6.
        assert!((a.auc().unwrap() - 4.0 / 6.0).abs() < 1e-12);
        // Ties count half.
        let mut t = Agreement::default();
        t.add("x", true, true, Some(0.5));
        t.add("x", false, true, Some(0.5));
        assert!((t.auc().unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(a.by_id["punctuation:no_comma"], [2, 0, 0, 0]);
        let text = a.to_string();
        assert!(text.contains("agreement 60.00%"), "{text}");
    }

    #[test]
    fn unmatched_file_sits_next_to_the_output() {
        assert_eq!(
            unmatched_path(Path::new("out/eval.jsonl")),
            Path::new("out/eval.unmatched.jsonl")
        );
    }
}
