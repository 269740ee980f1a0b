//! IFBench mode: `rmtk verify --ifbench IFBENCH_TEST.jsonl --responses RESPONSES.jsonl`,
//! the official IFBench evaluation (`evaluation_lib` strict and loose) with the rules
//! engine's IFBench checks ([`super::rules::ifbench`]).
//!
//! As in IFEval mode, responses are matched to prompts by exact prompt text (the last
//! one counts), every prompt with a response gets one output row (`key`, `prompt`,
//! `response`, `instruction_id_list`, `follow_instruction_list_strict`,
//! `follow_instruction_list_loose`, `follow_all_strict`, `follow_all_loose`,
//! `reasons`), unmatched responses are listed in `OUTPUT.unmatched.jsonl`, and the
//! report gives prompt- and instruction-level accuracy, strict and loose, by category
//! and by id. An instruction the reference cannot decide here (see
//! [`super::rules::ifbench::UNDECIDABLE`]) is `null` in the verdict lists (and makes
//! `follow_all_*` null); it is left out of the instruction level and its prompt out of
//! the prompt level, and the report says how many.

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};
use rayon::prelude::*;
use serde_json::{Map, Value, json};

use super::ifeval::{Matching, read_responses, write_unmatched};
use super::rules::IfevalReport;
use super::rules::ifbench::{self, IfbenchInstruction, IfbenchRow};
use super::{VerifyConfig, bad_rows_message};
use crate::data::{self, DataError, Row, Table};

/// One prompt of IFBench.
pub type IfbenchPrompt = super::ifeval::BenchmarkPrompt<IfbenchInstruction>;

/// Reads `IFBench_test.jsonl` rows: `key`, `prompt`, `instruction_id_list`, `kwargs`.
pub fn read_prompts(
    table: &Table,
    prompt_column: &str,
) -> Result<Vec<Result<IfbenchPrompt, DataError>>, DataError> {
    super::ifeval::read_benchmark_prompts(table, prompt_column, IfbenchInstruction::new)
}

/// The output row of one prompt.
fn output_row(prompt: &IfbenchPrompt, response: &str, verdict: &IfbenchRow) -> Row {
    let passes = |checks: &[Option<super::rules::Check>]| -> Value {
        checks.iter().map(|c| c.as_ref().map(|c| c.pass)).collect()
    };
    let reasons: Vec<String> = verdict
        .strict
        .iter()
        .flatten()
        .filter_map(|c| c.reason.clone())
        .collect();
    let mut row = Map::new();
    row.insert("key".into(), prompt.key.clone());
    row.insert("prompt".into(), json!(prompt.prompt));
    row.insert("response".into(), json!(response));
    row.insert("instruction_id_list".into(), json!(prompt.ids));
    row.insert(
        "follow_instruction_list_strict".into(),
        passes(&verdict.strict),
    );
    row.insert(
        "follow_instruction_list_loose".into(),
        passes(&verdict.loose),
    );
    row.insert(
        "follow_all_strict".into(),
        json!(verdict.follow_all_strict()),
    );
    row.insert("follow_all_loose".into(), json!(verdict.follow_all_loose()));
    row.insert("reasons".into(), json!(reasons));
    row
}

/// Runs IFBench mode.
pub fn run(cfg: &VerifyConfig) -> Result<()> {
    let started = Instant::now();
    let input_path = cfg.ifbench.as_deref().expect("IFBench mode has --ifbench");
    let responses_path = cfg.responses.as_deref().expect("clap requires --responses");
    if cfg.verifier.judge_kind() != super::JudgeKind::None {
        bail!(
            "--ifbench checks with the rules only; a judge is not compared with IFBench's verdicts (drop the judge options)"
        );
    }
    let prompt_table = data::read_table(input_path)?;
    let prompts = read_prompts(&prompt_table, &cfg.prompt_column)?;
    let (response_table, responses) = read_responses(cfg, responses_path)?;

    // Each with its row in its own file (the message names the file).
    let errors = |list: Vec<Option<&DataError>>| -> Vec<(usize, String)> {
        let numbered = list.into_iter().enumerate();
        numbered
            .filter_map(|(i, e)| e.map(|e| (i, e.to_string())))
            .collect()
    };
    let mut bad = errors(prompts.iter().map(|p| p.as_ref().err()).collect());
    bad.extend(errors(responses.iter().map(|r| r.as_ref().err()).collect()));
    let bad_prompts = prompts.iter().filter(|p| p.is_err()).count();
    if !bad.is_empty() && !cfg.skip_bad_rows {
        bail!(bad_rows_message(&bad));
    }
    let texts = prompts
        .iter()
        .map(|p| p.as_ref().ok().map(|p| p.prompt.as_str()));
    let matching = Matching::new(texts, &responses);
    let without_response = prompts.len() - bad_prompts - matching.chosen.len();
    let matched: Vec<(&IfbenchPrompt, &str)> = matching
        .chosen
        .iter()
        .filter_map(|(&p, &r)| {
            let prompt = prompts[p].as_ref().ok()?;
            let response = responses[r].as_ref().ok()?;
            Some((prompt, response.1.as_str()))
        })
        .collect();
    let verdicts: Vec<IfbenchRow> = matched
        .par_iter()
        .map(|(prompt, response)| ifbench::evaluate(&prompt.instructions, response))
        .collect();
    let mut report = IfevalReport::ifbench();
    for ((prompt, _), verdict) in matched.iter().zip(&verdicts) {
        report.add_ifbench(&prompt.instructions, verdict);
    }
    let rows: Vec<Row> = matched
        .iter()
        .zip(&verdicts)
        .map(|((prompt, response), verdict)| output_row(prompt, response, verdict))
        .collect();
    let elapsed = started.elapsed().as_secs_f64();

    println!(
        "IFBench: {} prompts with a response, of {} in {}",
        matched.len(),
        prompts.len() - bad_prompts,
        input_path.display()
    );
    println!(
        "{} responses in {}: {} matched, {} unmatched (no prompt with that exact text){}",
        responses.len(),
        responses_path.display(),
        matching.chosen.len() + matching.repeated,
        matching.unmatched.len(),
        if matching.repeated > 0 {
            format!(
                ", {} repeats of a prompt (the last response counts, as in the official evaluator)",
                matching.repeated
            )
        } else {
            String::new()
        }
    );
    if without_response > 0 {
        println!("{without_response} prompts have no response and are left out of the accuracies");
    }
    if let Some((_, first)) = bad.first() {
        println!("skipped {} bad rows; the first: {first}", bad.len());
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

    if let Some(output) = &cfg.output {
        data::write_rows(output, &rows)?;
        eprintln!("wrote {} rows to {}", rows.len(), output.display());
        write_unmatched(output, &matching.unmatched, &response_table)?;
    }
    if let Some(path) = &cfg.summary {
        write_summary(path, &report, &levels, elapsed, |summary| {
            summary["prompts"] = json!(prompts.len() - bad_prompts);
            summary["responses"] = json!(responses.len());
            summary["matched"] = json!(matched.len());
            summary["unmatched"] = json!(matching.unmatched.len());
            summary["prompts_without_response"] = json!(without_response);
            summary["repeated_prompts"] = json!(matching.repeated);
            summary["skipped_bad_rows"] = json!(bad.len());
        })?;
    }
    Ok(())
}

/// Writes the `--summary` JSON: the run's counts (from `fill`), the four levels, by id,
/// and the undecided instructions.
fn write_summary(
    path: &Path,
    report: &IfevalReport,
    levels: &[(&str, super::rules::Accuracy)],
    seconds: f64,
    fill: impl FnOnce(&mut Value),
) -> Result<()> {
    let mut summary = json!({ "benchmark": report.benchmark, "seconds": seconds });
    fill(&mut summary);
    for (name, acc) in levels {
        summary[name.replace(['-', ' '], "_")] = json!(acc.ratio());
    }
    let by_id: Map<String, Value> = report
        .by_id
        .iter()
        .map(|(id, g)| {
            let row = json!({"strict": g.strict.ratio(), "loose": g.loose.ratio(), "total": g.strict.total});
            (id.to_string(), row)
        })
        .collect();
    summary["by_instruction"] = by_id.into();
    summary["undecided"] = json!(report.undecided);
    summary["undecided_prompts"] = json!(report.undecided_prompts);
    let bytes = serde_json::to_vec_pretty(&summary).expect("JSON values serialize");
    crate::util::write_atomic(path, &bytes)
        .map_err(|e| anyhow::anyhow!("--summary {}: {e}", path.display()))
}
