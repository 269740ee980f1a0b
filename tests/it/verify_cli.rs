//! `rmtk verify` end to end: IFEval mode against the official checker's verdicts, the
//! general mode's output, and bad input (per-row errors, or counted skips with
//! --skip-bad-rows; never a half-written output).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rmtk::data::{Row, read_table, write_rows};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn ifeval(name: &str) -> PathBuf {
    root().join("data/ifeval").join(name)
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rmtk-verify-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rmtk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rmtk"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rows(values: Vec<Value>) -> Vec<Row> {
    values
        .into_iter()
        .map(|v| v.as_object().cloned().unwrap())
        .collect()
}

#[test]
fn ifeval_mode_matches_the_official_checker() {
    let dir = temp_dir("ifeval");
    let out = dir.join("eval.jsonl");
    let summary = dir.join("summary.json");
    let run = rmtk(&[
        "verify",
        "--ifeval",
        ifeval("input_data.jsonl").to_str().unwrap(),
        "--responses",
        ifeval("input_response_data_text_bison.jsonl")
            .to_str()
            .unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ]);
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{}", text(&run.stderr));

    // Every verdict equals the official one, row by row.
    let ours: Vec<Value> = json_lines(&out);
    let expected: Vec<Value> = json_lines(&ifeval("expected_text_bison.jsonl"));
    assert_eq!(ours.len(), 156);
    let by_key = |rows: &[Value]| -> std::collections::BTreeMap<i64, Value> {
        rows.iter()
            .map(|r| (r["key"].as_i64().unwrap(), r.clone()))
            .collect()
    };
    let (ours, expected) = (by_key(&ours), by_key(&expected));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (key, want) in &expected {
        let got = &ours[key];
        for field in [
            "prompt",
            "instruction_id_list",
            "follow_instruction_list_strict",
            "follow_instruction_list_loose",
            "follow_all_strict",
            "follow_all_loose",
        ] {
            assert_eq!(got[field], want[field], "key {key}, {field}");
        }
    }

    // The four numbers, as the README of the data states them.
    for line in [
        "prompt-level strict: 63.46% (99/156)",
        "instruction-level strict: 69.42% (143/206)",
        "prompt-level loose: 66.03% (103/156)",
        "instruction-level loose: 72.82% (150/206)",
    ] {
        assert!(stdout.contains(line), "{line} missing from:\n{stdout}");
    }
    assert!(stdout.contains("punctuation:no_comma"), "{stdout}");
    // The 385 responses written for older prompt wordings are reported, not dropped.
    assert!(stdout.contains("385 unmatched"), "{stdout}");
    assert_eq!(json_lines(&dir.join("eval.unmatched.jsonl")).len(), 385);
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(summary["unmatched"], 385);
    assert_eq!(summary["matched"], 156);
    assert_eq!(summary["prompts_without_response"], 541 - 156);
    assert!((summary["prompt_level_strict"].as_f64().unwrap() - 99.0 / 156.0).abs() < 1e-12);
}

fn ifbench(name: &str) -> PathBuf {
    root().join("data/ifbench").join(name)
}

#[test]
fn ifbench_mode_matches_the_official_checker() {
    let dir = temp_dir("ifbench");
    let out = dir.join("eval.jsonl");
    let summary = dir.join("summary.json");
    let run = rmtk(&[
        "verify",
        "--ifbench",
        ifbench("IFBench_test.jsonl").to_str().unwrap(),
        "--responses",
        ifbench("sample_output.jsonl").to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ]);
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{}", text(&run.stderr));

    // Each prompt's verdicts on its own response are the reference's (golden_verdicts.jsonl,
    // from scripts/gen-ifbench-golden.py: the i-th text of prompt i's "sample" verdicts).
    let ours = json_lines(&out);
    let golden = json_lines(&ifbench("golden_verdicts.jsonl"));
    assert_eq!(ours.len(), 294);
    for (i, (row, line)) in ours.iter().zip(&golden[1..]).enumerate() {
        assert_eq!(row["key"], line["key"]);
        let n = row["instruction_id_list"].as_array().unwrap().len();
        let sample = line["sample"].as_str().unwrap();
        let cell: Vec<char> = if n > 1 {
            sample.split('|').nth(i).unwrap().chars().collect()
        } else {
            vec![sample.chars().nth(i).unwrap()]
        };
        for (k, want) in cell.iter().enumerate() {
            let (strict, loose) = (
                &row["follow_instruction_list_strict"][k],
                &row["follow_instruction_list_loose"][k],
            );
            match want {
                'u' | 'r' => assert!(strict.is_null() && loose.is_null(), "key {}", row["key"]),
                'e' => {}
                c => {
                    let bits = c.to_digit(10).unwrap();
                    assert_eq!(strict.as_bool(), Some(bits & 1 == 1), "key {}", row["key"]);
                    assert_eq!(loose.as_bool(), Some(bits & 2 == 2), "key {}", row["key"]);
                }
            }
        }
    }

    // The reference's accuracies over what it decides (the golden file's header).
    let want = &golden[0]["sample_output_accuracy"];
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    for (ours, mode, level) in [
        ("prompt_level_strict", "strict", "prompt_level"),
        ("instruction_level_strict", "strict", "instruction_level"),
        ("prompt_level_loose", "loose", "prompt_level"),
        ("instruction_level_loose", "loose", "instruction_level"),
    ] {
        assert_eq!(summary[ours], want[mode][level], "{ours}");
    }
    assert_eq!(summary["benchmark"], "IFBench");
    assert_eq!(summary["matched"], 294);
    assert_eq!(summary["unmatched"], 0);
    assert!(summary["undecided"]["ratio:stop_words"].as_u64().unwrap() > 0);
    assert!(stdout.contains("not decided here:"), "{stdout}");
    assert!(stdout.contains("format:emoji"), "{stdout}");
}

#[test]
fn ifbench_bad_rows_name_the_file_row_and_column() {
    let dir = temp_dir("ifbench-bad");
    let prompts = dir.join("prompts.jsonl");
    let responses = dir.join("responses.jsonl");
    let rows = rows(vec![
        json!({"key": 1, "prompt": "p1", "instruction_id_list": ["count:numbers"], "kwargs": [{"N": 2}]}),
        json!({"key": 2, "prompt": "p2", "instruction_id_list": ["count:nothing"], "kwargs": [{}]}),
        json!({"key": 3, "prompt": "p3", "instruction_id_list": ["count:numbers"], "kwargs": [{"N": -1}]}),
    ]);
    write_rows(&prompts, &rows).unwrap();
    let answers = rows_of_responses(&[("p1", "1 and 2"), ("p2", "x"), ("p3", "y")]);
    write_rows(&responses, &answers).unwrap();
    let out = dir.join("out.jsonl");
    let args = [
        "verify",
        "--ifbench",
        prompts.to_str().unwrap(),
        "--responses",
        responses.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    let run = rmtk(&args);
    let stderr = text(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("prompts.jsonl: row 1, column `instruction_id_list`: instruction 0 of the list: unknown instruction id \"count:nothing\"; the IFBench ids are: count:word_count_range"),
        "{stderr}"
    );
    assert!(stderr.contains("and 1 more bad rows: 2"), "{stderr}");
    assert!(!out.exists(), "nothing is written when rows are bad");

    // --skip-bad-rows: the good row is evaluated, the others are counted.
    let mut skip = args.to_vec();
    skip.push("--skip-bad-rows");
    let run = rmtk(&skip);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(stdout.contains("skipped 2 bad rows"), "{stdout}");
    let written = json_lines(&out);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["follow_instruction_list_strict"], json!([true]));

    // A negative count (the reference would draw a random one) is refused, saying why.
    write_rows(&prompts, &rows[2..]).unwrap();
    let run = rmtk(&args);
    let stderr = text(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("row 0, column `kwargs`: instruction 0 of the list: count:numbers: \"N\" must be an integer >= 0, got -1"),
        "{stderr}"
    );
}

fn rows_of_responses(pairs: &[(&str, &str)]) -> Vec<Row> {
    rows(
        pairs
            .iter()
            .map(|(p, r)| json!({"prompt": p, "response": r}))
            .collect(),
    )
}

/// IFEval rows with responses, in the general mode's input form.
fn ifeval_rows(n: usize) -> Vec<Row> {
    let prompts = json_lines(&ifeval("input_data.jsonl"));
    let responses: std::collections::HashMap<String, String> =
        json_lines(&ifeval("input_response_data_text_bison.jsonl"))
            .into_iter()
            .map(|r| {
                (
                    r["prompt"].as_str().unwrap().to_owned(),
                    r["response"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
    rows(
        prompts
            .into_iter()
            .filter_map(|p| {
                let response = responses.get(p["prompt"].as_str().unwrap())?;
                let mut row = p.clone();
                row["response"] = json!(response);
                Some(row)
            })
            .take(n)
            .collect(),
    )
}

#[test]
fn rows_get_verdicts_and_reasons_in_parquet() {
    let dir = temp_dir("rows");
    let input = dir.join("rows.parquet");
    let mut input_rows = ifeval_rows(40);
    input_rows[0].insert("id".into(), json!("first"));
    // Nested kwargs are stored as JSON text by the parquet writer; they read back.
    write_rows(&input, &input_rows).unwrap();
    let output = dir.join("out.parquet");
    let run = rmtk(&[
        "verify",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("40 rows (40 with IFEval instructions); mode rules"),
        "{stderr}"
    );
    let table = read_table(&output).unwrap();
    assert_eq!(table.rows.len(), 40);
    // Every input column is kept.
    for column in [
        "key",
        "prompt",
        "instruction_id_list",
        "kwargs",
        "response",
        "id",
    ] {
        assert!(table.has_column(column), "{column}: {:?}", table.columns);
    }
    assert_eq!(table.rows[0]["id"], "first");
    let expected = json_lines(&ifeval("expected_text_bison.jsonl"));
    let strict: std::collections::HashMap<i64, Value> = expected
        .iter()
        .map(|r| {
            (
                r["key"].as_i64().unwrap(),
                r["follow_instruction_list_strict"].clone(),
            )
        })
        .collect();
    let mut reasons = 0;
    for row in &table.rows {
        let key = row["key"].as_i64().unwrap();
        assert_eq!(row["constraint_verdicts"], strict[&key], "key {key}");
        let all = strict[&key].as_array().unwrap().iter().all(|v| v == true);
        assert_eq!(row["pass"], json!(all), "key {key}");
        assert_eq!(row["constraint_names"], row["instruction_id_list"]);
        let failed = strict[&key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| *v == false)
            .count();
        assert_eq!(
            row["reasons"].as_array().unwrap().len(),
            failed,
            "key {key}"
        );
        reasons += failed;
        assert!(
            row["checked_by"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c == "rules")
        );
    }
    assert!(reasons > 0);
    let words = table
        .rows
        .iter()
        .flat_map(|r| r["reasons"].as_array().unwrap().clone())
        .find(|r| {
            r.as_str()
                .unwrap()
                .starts_with("length_constraints:number_words")
        });
    if let Some(reason) = words {
        assert!(
            reason.as_str().unwrap().contains("words, needs"),
            "{reason}"
        );
    }
}

/// Rows with every kind of bad input, and the good rows around them.
fn bad_input(dir: &Path) -> PathBuf {
    let good = |response: &str| {
        json!({"prompt": "Write a short note.", "response": response,
               "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]})
        .to_string()
    };
    let huge = "word ".repeat(200_000) + "end, with a comma";
    let mut bytes = Vec::new();
    for line in [
        good("All fine here"),
        // missing response field
        json!({"prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}).to_string(),
        // null response
        json!({"prompt": "p", "response": null, "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}).to_string(),
        // malformed kwargs
        json!({"prompt": "p", "response": "r", "instruction_id_list": ["length_constraints:number_words"],
               "kwargs": [{"num_words": 300, "relation": "at most"}]}).to_string(),
        // a 1 MB response (fine, and failing: it has a comma)
        good(&huge),
    ] {
        bytes.extend(line.as_bytes());
        bytes.push(b'\n');
    }
    // non-UTF-8 bytes
    bytes.extend(b"{\"prompt\": \"p\", \"response\": \"caf\xe9\"}\n");
    bytes.extend(good("Also fine").as_bytes());
    bytes.push(b'\n');
    let path = dir.join("bad.jsonl");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn bad_rows_stop_the_run_before_any_work() {
    let dir = temp_dir("bad-stop");
    let input = bad_input(&dir);
    let output = dir.join("out.jsonl");
    let run = rmtk(&[
        "verify",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("bad.jsonl: row 1, column `response`: is missing from this row: there is no response to verify"),
        "{stderr}"
    );
    assert!(stderr.contains("and 3 more bad rows: 2, 3, 5"), "{stderr}");
    assert!(stderr.contains("--skip-bad-rows"), "{stderr}");
    assert!(!output.exists());
}

#[test]
fn skipped_bad_rows_are_counted_and_kept() {
    let dir = temp_dir("bad-skip");
    let input = bad_input(&dir);
    let output = dir.join("out.jsonl");
    let summary = dir.join("summary.json");
    let run = rmtk(&[
        "verify",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
        "--skip-bad-rows",
    ]);
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("skipped 4 bad rows"), "{stderr}");
    let out = json_lines(&output);
    assert_eq!(out.len(), 7);
    let errors: Vec<String> = out
        .iter()
        .map(|r| r["error"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(out[0]["pass"], true);
    assert!(errors[0].is_empty());
    assert!(
        errors[1].contains("row 1, column `response`: is missing"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("row 2, column `response`: is null"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].contains("row 3, column `kwargs`: instruction 0 of the list: length_constraints:number_words: \"relation\" must be \"less than\" or \"at least\", got \"at most\""),
        "{}",
        errors[3]
    );
    assert!(
        errors[5].contains("row 5: line 6 is not valid UTF-8"),
        "{}",
        errors[5]
    );
    for i in [1, 2, 3, 5] {
        assert_eq!(out[i]["pass"], Value::Null);
    }
    // The 1 MB response is verified: it fails, with a reason.
    assert_eq!(out[4]["pass"], false);
    assert_eq!(
        out[4]["reasons"][0].as_str().unwrap().split(':').next(),
        Some("punctuation")
    );
    assert_eq!(out[6]["pass"], true);
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(summary["skipped"], 4);
    assert_eq!(summary["skipped_rows"], json!([1, 2, 3, 5]));
    assert_eq!(summary["verified"], 3);
}

#[test]
fn constraints_the_rules_cannot_check_need_a_judge() {
    let dir = temp_dir("needs-judge");
    let input = dir.join("rows.jsonl");
    write_rows(
        &input,
        &rows(vec![
            json!({"prompt": "Write a poem.", "response": "Roses", "constraints": ["It rhymes."]}),
        ]),
    )
    .unwrap();
    let run = rmtk(&[
        "verify",
        "--input",
        input.to_str().unwrap(),
        "--output",
        dir.join("out.jsonl").to_str().unwrap(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nothing the rules can check"), "{stderr}");
    assert!(stderr.contains("--judge-model"), "{stderr}");
    let run = rmtk(&[
        "verify",
        "--input",
        input.to_str().unwrap(),
        "--output",
        dir.join("out.jsonl").to_str().unwrap(),
        "--mode",
        "judge",
    ]);
    assert!(
        text(&run.stderr).contains("--mode judge needs a judge"),
        "{}",
        text(&run.stderr)
    );
}
