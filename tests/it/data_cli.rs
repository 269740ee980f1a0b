//! `rmtk data`: convert (each layout on a small fixture, and the shipped LLaMA-Factory
//! demo against the project's demo parquet files), split (never a prompt on both sides),
//! dedup, inspect, and bad input (file, row and column named; nothing written).

use std::collections::HashSet;
use std::path::Path;

use crate::rm_support::*;
use serde_json::{Value, json};

fn rows(path: &Path) -> Vec<Value> {
    rmtk::data::read_table(path)
        .unwrap()
        .rows
        .into_iter()
        .map(Value::Object)
        .collect()
}

/// A pair's prompt and responses as one comparable value.
fn pair(v: &Value) -> Value {
    json!([v["prompt"], v["chosen"], v["rejected"]])
}

fn write_json_lines(path: &Path, rows: &[Value]) {
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}

fn convert(input: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "data",
        "convert",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(rmtk().args(&args))
}

#[test]
fn the_llamafactory_demo_converts_to_the_demo_pairs() {
    let dir = tmp("data-demo");
    let out = dir.join("demo.parquet");
    let log = convert(&root().join("data/dpo_en_demo.json"), &out, &[]);
    assert!(
        log.contains("ShareGPT (LLaMA-Factory)): 300 pairs"),
        "{log}"
    );
    let mut got: Vec<String> = rows(&out).iter().map(|r| pair(r).to_string()).collect();
    let mut want: Vec<String> = [
        "data/prefs-en-demo.parquet",
        "data/prefs-en-demo-test.parquet",
    ]
    .iter()
    .flat_map(|f| rows(&root().join(f)))
    .map(|r| pair(&r).to_string())
    .collect();
    got.sort();
    want.sort();
    assert_eq!(got.len(), 300);
    assert!(
        got == want,
        "the converted pairs differ from the demo parquet files"
    );
}

#[test]
fn each_layout_converts() {
    let dir = tmp("data-layouts");
    let user = |t: &str| json!({"role": "user", "content": t});
    let asst = |t: &str| json!({"role": "assistant", "content": t});
    let sys = |t: &str| json!({"role": "system", "content": t});
    // (layout, input rows, the rmtk rows expected)
    let cases: Vec<(&str, Vec<Value>, Vec<Value>)> = vec![
        (
            "sharegpt",
            vec![json!({
                "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}, {"from": "human", "value": "a poem"}],
                "chosen": {"from": "gpt", "value": "roses"},
                "rejected": {"from": "gpt", "value": "no"},
                "system": "be kind",
                "id": 7,
            })],
            vec![json!({
                "prompt": [sys("be kind"), user("hi"), asst("hello"), user("a poem")],
                "chosen": [asst("roses")],
                "rejected": [asst("no")],
                "id": 7,
            })],
        ),
        (
            "alpaca",
            vec![json!({
                "instruction": "translate", "input": "bonjour", "chosen": "hello", "rejected": "bye",
                "history": [["q1", "a1"]], "system": "",
            })],
            vec![json!({
                "prompt": [user("q1"), asst("a1"), user("translate\nbonjour")],
                "chosen": [asst("hello")],
                "rejected": [asst("bye")],
            })],
        ),
        (
            "trl-text",
            vec![
                json!({"prompt": "The sky is", "chosen": " blue.", "rejected": " green.", "margin": 0.5}),
            ],
            vec![
                json!({"prompt": "The sky is", "chosen": " blue.", "rejected": " green.", "margin": 0.5}),
            ],
        ),
        (
            "trl-implicit",
            vec![json!({
                "chosen": [user("sky?"), asst("blue")],
                "rejected": [user("sky?"), asst("green")],
            })],
            vec![json!({
                "prompt": [user("sky?")],
                "chosen": [asst("blue")],
                "rejected": [asst("green")],
            })],
        ),
        (
            "ultrafeedback",
            vec![json!({
                "prompt": "sky?", "prompt_id": "abc",
                "chosen": [user("sky?"), asst("blue")],
                "rejected": [user("sky?"), asst("green")],
                "messages": [user("sky?"), asst("blue")],
                "score_chosen": 9.0, "score_rejected": 2.0,
            })],
            vec![json!({
                "prompt": [user("sky?")],
                "chosen": [asst("blue")],
                "rejected": [asst("green")],
                "prompt_id": "abc", "score_chosen": 9.0, "score_rejected": 2.0,
            })],
        ),
        (
            "openai",
            vec![json!({
                "input": {"messages": [sys("terse"), user("sky?")], "tools": [], "parallel_tool_calls": true},
                "preferred_output": [asst("blue")],
                "non_preferred_output": [asst("green")],
            })],
            vec![json!({
                "prompt": [sys("terse"), user("sky?")],
                "chosen": [asst("blue")],
                "rejected": [asst("green")],
            })],
        ),
    ];
    for (name, input, want) in cases {
        let src = dir.join(format!("{name}.jsonl"));
        write_json_lines(&src, &input);
        let out = dir.join(format!("{name}.out.jsonl"));
        convert(&src, &out, &[]);
        assert_eq!(rows(&out), want, "{name}");
        // The converted file is what train-rm reads: eval-rm style reading gives pairs.
        let read = rmtk::data::prefs::read_pairs(
            std::slice::from_ref(&out),
            &Default::default(),
            rmtk::data::prefs::Layout::Auto,
            false,
        )
        .unwrap();
        assert_eq!(read.pairs.len(), input.len(), "{name}");
    }
}

/// 20 prompts, 3 pairs each, interleaved.
fn grouped_pairs() -> Vec<Value> {
    (0..60)
        .map(|i| {
            let p = i % 20;
            json!({
                "prompt": [{"role": "user", "content": format!("prompt {p}")}],
                "chosen": [{"role": "assistant", "content": format!("good {i}")}],
                "rejected": [{"role": "assistant", "content": format!("bad {i}")}],
                "n": i,
            })
        })
        .collect()
}

#[test]
fn split_never_puts_a_prompt_on_both_sides() {
    let dir = tmp("data-split");
    let input = dir.join("pairs.parquet");
    write_rows(&input, &grouped_pairs());
    for seed in ["1", "2", "3"] {
        let (train, test) = (dir.join("train.parquet"), dir.join("test.jsonl"));
        let log = ok(rmtk().args([
            "data",
            "split",
            input.to_str().unwrap(),
            "--test-fraction",
            "0.2",
            "--seed",
            seed,
            "--train",
            train.to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
        ]));
        let (a, b) = (rows(&train), rows(&test));
        let prompts = |v: &[Value]| -> HashSet<String> {
            v.iter().map(|r| r["prompt"].to_string()).collect()
        };
        assert!(
            prompts(&a).is_disjoint(&prompts(&b)),
            "seed {seed}: a prompt on both sides"
        );
        // Every row once, whole prompts: 12 of 60 pairs (4 prompts) held out.
        let mut all: Vec<u64> = a
            .iter()
            .chain(&b)
            .map(|r| r["n"].as_u64().unwrap())
            .collect();
        all.sort();
        assert_eq!(all, (0..60).collect::<Vec<_>>());
        assert_eq!(b.len(), 12, "seed {seed}: {log}");
        // Rows keep their order.
        let order: Vec<u64> = b.iter().map(|r| r["n"].as_u64().unwrap()).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }
    // The same seed, the same split.
    let run = |out: &str| {
        let (train, test) = (
            dir.join(format!("{out}-a.jsonl")),
            dir.join(format!("{out}-b.jsonl")),
        );
        ok(rmtk().args([
            "data",
            "split",
            input.to_str().unwrap(),
            "--train",
            train.to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
        ]));
        rows(&test)
    };
    assert_eq!(run("x"), run("y"));
}

#[test]
fn dedup_drops_repeats_and_inspect_counts_them() {
    let dir = tmp("data-dedup");
    let mut input_rows = grouped_pairs();
    // Two exact repeats of pairs 3 and 4 (their `n` differs: columns beyond the pair do not
    // count), and a pair whose two responses are the same.
    for i in [3usize, 4] {
        let mut r = input_rows[i].clone();
        r["n"] = json!(100 + i);
        input_rows.push(r);
    }
    let mut same = input_rows[5].clone();
    same["rejected"] = same["chosen"].clone();
    same["n"] = json!(200);
    input_rows.push(same);
    let input = dir.join("pairs.jsonl");
    write_json_lines(&input, &input_rows);

    let report = ok_json(rmtk().args(["data", "inspect", input.to_str().unwrap()]));
    assert_eq!(report["rows"], json!(63));
    assert_eq!(report["pairs"], json!(62), "{report}");
    assert_eq!(report["bad_rows"], json!(1));
    assert!(
        report["bad_examples"][0]
            .as_str()
            .unwrap()
            .contains("row 62, column `rejected`: is identical to `chosen`"),
        "{report}"
    );
    assert_eq!(report["identical_chosen_rejected"], json!(1));
    assert_eq!(report["duplicate_pairs"], json!(2));
    assert_eq!(report["distinct_prompts"], json!(20));
    assert_eq!(report["conversational_pairs"], json!(62));

    let out = dir.join("dedup.jsonl");
    // The identical pair stops dedup (train-rm would refuse it)...
    let err = fails(rmtk().args([
        "data",
        "dedup",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]));
    assert!(err.contains("row 62, column `rejected`"), "{err}");
    assert!(!out.exists());
    // ...unless skipped.
    let log = ok(rmtk().args([
        "data",
        "dedup",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--skip-bad-rows",
    ]));
    assert!(
        log.contains("62 pairs, 2 repeats dropped (by pair), 60 written"),
        "{log}"
    );
    let kept: Vec<u64> = rows(&out)
        .iter()
        .map(|r| r["n"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, (0..60).collect::<Vec<_>>());
    // By prompt: the first pair of each of the 20 prompts.
    let by_prompt = dir.join("by-prompt.parquet");
    ok(rmtk().args([
        "data",
        "dedup",
        input.to_str().unwrap(),
        "--output",
        by_prompt.to_str().unwrap(),
        "--key",
        "prompt",
        "--skip-bad-rows",
    ]));
    let kept: Vec<u64> = rows(&by_prompt)
        .iter()
        .map(|r| r["n"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, (0..20).collect::<Vec<_>>());
}

#[test]
fn inspect_measures_lengths_with_a_tokenizer() {
    let model = tiny_model("llama", "data-inspect");
    let dir = tmp("data-inspect");
    let input = dir.join("pairs.parquet");
    let mut pairs = text_pairs(30, 3);
    // One pair over 24 tokens whose responses differ only past the first 24 tokens.
    let same = vec!["the"; 40].join(" ");
    pairs[0]["chosen"] = json!(format!("{same} good"));
    pairs[0]["rejected"] = json!(format!("{same} bad"));
    write_rows(&input, &pairs);
    let report = ok_json(rmtk().args([
        "data",
        "inspect",
        input.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--max-length",
        "24",
    ]));
    let l = &report["lengths"];
    // The word-level tokenizer: one token per word, BOS and EOS around a plain sequence.
    assert_eq!(l["chosen"]["max"], json!(41), "{l}");
    let o = &l["overlong"];
    assert_eq!(o["max_length"], json!(24));
    assert!(o["over"].as_u64().unwrap() >= 1, "{o}");
    // truncate-start leaves pair 0 identical; truncate cuts its (whole) prompt and its
    // responses' ends: identical too, since they differ only in the last word.
    assert_eq!(o["truncate_start_identical"].as_u64().unwrap(), 1, "{o}");
    assert_eq!(o["truncate_identical"].as_u64().unwrap(), 1, "{o}");
}

#[test]
fn bad_input_names_file_row_and_column_and_writes_nothing() {
    let dir = tmp("data-bad");
    let out = dir.join("out.parquet");
    // Not a parquet file.
    let fake = dir.join("fake.parquet");
    std::fs::write(&fake, "prompt,chosen\n").unwrap();
    for sub in [
        vec!["inspect", fake.to_str().unwrap()],
        vec![
            "convert",
            fake.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        vec![
            "split",
            fake.to_str().unwrap(),
            "--train",
            out.to_str().unwrap(),
        ],
        vec![
            "dedup",
            fake.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
    ] {
        let mut args = vec!["data"];
        args.extend(sub.iter().copied());
        let err = fails(rmtk().args(&args));
        assert!(
            err.contains("fake.parquet") && err.contains("not a parquet file"),
            "{args:?}: {err}"
        );
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    // A missing column: the columns found are listed.
    let missing = dir.join("missing.jsonl");
    write_json_lines(
        &missing,
        &[json!({"prompt": "a", "chosen": "b", "rejectd": "c"})],
    );
    for sub in ["inspect", "convert", "split", "dedup"] {
        let err = fails(rmtk().args(["data", sub, missing.to_str().unwrap()]));
        assert!(
            err.contains("missing.jsonl")
                && err.contains("no column `rejected`")
                && err.contains("rejectd"),
            "{sub}: {err}"
        );
    }
    // Nulls and mixed types: the row and column named, nothing written.
    let mut bad = grouped_pairs();
    bad[7]["chosen"] = Value::Null;
    let nulls = dir.join("nulls.jsonl");
    write_json_lines(&nulls, &bad);
    let mut bad = grouped_pairs();
    bad[9]["rejected"] = json!(42);
    let mixed = dir.join("mixed.jsonl");
    write_json_lines(&mixed, &bad);
    for (file, row, column) in [(&nulls, 7, "chosen"), (&mixed, 9, "rejected")] {
        for sub in [
            vec!["convert", "--output", out.to_str().unwrap()],
            vec!["split", "--train", out.to_str().unwrap()],
            vec!["dedup", "--output", out.to_str().unwrap()],
        ] {
            let mut args = vec!["data", sub[0], file.to_str().unwrap()];
            args.extend(sub[1..].iter().copied());
            let err = fails(rmtk().args(&args));
            assert!(
                err.contains(file.file_name().unwrap().to_str().unwrap())
                    && err.contains(&format!("row {row}, column `{column}`")),
                "{args:?}: {err}"
            );
            assert!(!out.exists());
        }
        // inspect reports the row instead of stopping.
        let report = ok_json(rmtk().args(["data", "inspect", file.to_str().unwrap()]));
        assert_eq!(report["bad_rows"], json!(1));
        assert!(
            report["bad_examples"][0]
                .as_str()
                .unwrap()
                .contains(&format!("row {row}, column `{column}`")),
            "{report}"
        );
    }
    // convert: a ShareGPT row without its rejected turn.
    let share = dir.join("share.jsonl");
    write_json_lines(
        &share,
        &[
            json!({"conversations": [{"from": "human", "value": "hi"}], "chosen": {"from": "gpt", "value": "a"}, "rejected": {"from": "gpt", "value": "b"}}),
            json!({"conversations": [{"from": "human", "value": "hi"}], "chosen": {"from": "gpt", "value": "a"}, "rejected": null}),
        ],
    );
    let err = fails(rmtk().args([
        "data",
        "convert",
        share.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]));
    assert!(
        err.contains("share.jsonl: row 1, column `rejected`: is null"),
        "{err}"
    );
    assert!(!out.exists());
    // Writing over the input is refused.
    let err = fails(rmtk().args([
        "data",
        "dedup",
        nulls.to_str().unwrap(),
        "--output",
        nulls.to_str().unwrap(),
    ]));
    assert!(err.contains("is also"), "{err}");
    // The two sides of a split in one file: refused before anything is written.
    let same = dir.join("same.parquet");
    let err = fails(rmtk().args([
        "data",
        "split",
        nulls.to_str().unwrap(),
        "--train",
        same.to_str().unwrap(),
        "--test",
        same.to_str().unwrap(),
    ]));
    assert!(err.contains("is also"), "{err}");
    assert!(!same.exists());
}
