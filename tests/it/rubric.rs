//! Rubric rewards against a small reward server on loopback (the remote judge's test
//! server): per-item verdicts and scores from the rules and an endpoint, the weights,
//! the request an endpoint receives (OpenRLHF's, the criterion as the label), an
//! endpoint that times out then answers, one that answers out of range, and
//! `rmtk verify --input` with a rubric column: the output columns, bad rubric cells
//! named by row, column and item, and an endpoint that stays down (a clear stop, the
//! verified rows kept, `--resume` finishing the rest).

use std::path::Path;
use std::time::Duration;

use rmtk::verify::reward_url::RewardArgs;
use rmtk::verify::rubric::{ItemCheck, Rubric};
use rmtk::verify::{Checker, ConstraintSet, Verifier, VerifyError, VerifyItem};
use serde_json::{Value, json};

use crate::rm_support::{fails, ok, rmtk, tmp, write_rows};
use crate::verify_remote::{Reply, Seen, Server};

/// The score the test server gives: the number after `grade=` in the criterion (its
/// label), else 0.5.
fn grade(label: &str) -> f64 {
    label
        .split("grade=")
        .nth(1)
        .and_then(|g| g.trim().parse().ok())
        .unwrap_or(0.5)
}

fn answer(seen: &Seen) -> Reply {
    let scores: Vec<f64> = seen.body["labels"]
        .as_array()
        .map(|l| l.iter().map(|v| grade(v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    Reply::Status(200, json!({"rewards": scores}).to_string())
}

fn fast_args() -> RewardArgs {
    RewardArgs {
        reward_timeout: 2.0,
        reward_retries: 2,
        reward_backoff: 0.01,
        ..RewardArgs::default()
    }
}

fn constraints(rubric: Value, prompt: &str) -> ConstraintSet {
    let mut set = ConstraintSet::default();
    set.set_rubric(Rubric::parse(&rubric, Some(prompt)).unwrap());
    set
}

#[test]
fn per_item_verdicts_scores_and_weights_from_rules_and_an_endpoint() {
    let server = Server::start(8, |_, seen| answer(seen));
    let url = format!("http://{}/grade", server.addr);
    let prompt = "Write a short line about rain.";
    let set = constraints(
        json!([
            {"criterion": "No commas", "hard": true, "check": "punctuation:no_comma"},
            {"criterion": "At least 4 words", "weight": 2,
             "check": {"rule": "length_constraints:number_words", "kwargs": {"relation": "at least", "num_words": 4}}},
            {"criterion": "Graded grade=0.25", "weight": 1, "check": {"url": url}},
            {"criterion": "Hard grade=0.9", "hard": true, "check": url},
        ]),
        prompt,
    );
    let responses = ["Rain falls on the roof tonight", "Rain, rain"];
    let items: Vec<VerifyItem<'_>> = responses
        .iter()
        .map(|r| VerifyItem {
            prompt,
            response: r,
            constraints: &set,
        })
        .collect();
    let verifier = Verifier::rules(false).with_reward_args(fast_args());
    let verdicts = verifier.verify(&items).unwrap();

    let good = &verdicts[0];
    assert!(good.pass, "{good:?}");
    assert!(
        good.checks.is_empty(),
        "no listed constraint, no prompt check"
    );
    let scores: Vec<f64> = good.rubric.iter().map(|i| i.score).collect();
    assert_eq!(scores, [1.0, 1.0, 0.25, 0.9]);
    let by: Vec<Checker> = good.rubric.iter().map(|i| i.checker()).collect();
    assert_eq!(
        by,
        [Checker::Rules, Checker::Rules, Checker::Url, Checker::Url]
    );
    // Soft items only: (2 * 1 + 1 * 0.25) / 3.
    assert!((good.rubric_score.unwrap() - 2.25 / 3.0).abs() < 1e-12);
    assert_eq!(good.rubric[2].verdict.constraint, "Graded grade=0.25");
    assert!(!good.rubric[2].verdict.pass, "0.25 < the 0.5 threshold");

    let bad = &verdicts[1];
    assert!(!bad.pass, "the hard no-comma item fails");
    assert_eq!(bad.rubric[0].score, 0.0);
    assert_eq!(bad.rubric[1].score, 0.0, "2 words");
    assert!((bad.rubric_score.unwrap() - 0.25 / 3.0).abs() < 1e-12);
    let reasons: Vec<&str> = bad.reasons().collect();
    assert_eq!(
        reasons.len(),
        1,
        "only hard items give reasons: {reasons:?}"
    );
    assert!(reasons[0].contains("punctuation:no_comma"), "{reasons:?}");

    // One batched request to the endpoint for both responses' two URL items, in
    // OpenRLHF's shape, the criterion as the label.
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let body = &seen[0].body;
    assert_eq!(
        body["labels"],
        json!([
            "Graded grade=0.25",
            "Hard grade=0.9",
            "Graded grade=0.25",
            "Hard grade=0.9"
        ])
    );
    assert_eq!(body["prompts"][0], json!(prompt));
    assert_eq!(body["responses"][3], json!("Rain, rain"));
    assert_eq!(body["query"][0], json!(format!("{prompt}{}", responses[0])));
}

#[test]
fn an_endpoint_that_times_out_then_answers_is_retried() {
    let server = Server::start(4, |n, seen| {
        if n == 0 {
            Reply::Late(Duration::from_secs(4), Box::new(answer(seen)))
        } else {
            answer(seen)
        }
    });
    let url = format!("http://{}/grade", server.addr);
    let set = constraints(
        json!([{"criterion": "Graded grade=0.75", "check": {"url": url}}]),
        "p",
    );
    let item = VerifyItem {
        prompt: "p",
        response: "r",
        constraints: &set,
    };
    let verifier = Verifier::rules(false).with_reward_args(RewardArgs {
        reward_timeout: 0.5,
        ..fast_args()
    });
    let verdicts = verifier.verify(&[item]).unwrap();
    assert_eq!(verdicts[0].rubric_score, Some(0.75));
    assert_eq!(
        server.requests().len(),
        2,
        "one timed out, the retry answered"
    );
    let stats = verifier.endpoint_stats();
    assert!(stats[0].contains("(1 retries)"), "{stats:?}");
}

#[test]
fn scores_outside_the_unit_interval_and_dead_endpoints_are_errors() {
    let server = Server::start(4, |_, _| {
        Reply::Status(200, json!({"rewards": [1.5]}).to_string())
    });
    let url = format!("http://{}/grade", server.addr);
    let set = constraints(json!([{"criterion": "c", "check": {"url": url}}]), "p");
    let item = VerifyItem {
        prompt: "p",
        response: "r",
        constraints: &set,
    };
    let verifier = Verifier::rules(false).with_reward_args(fast_args());
    let err = verifier.verify(&[item]).unwrap_err();
    assert!(matches!(err, VerifyError::ScoreRange { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("item 0, rubric item 0 is 1.5, outside [0, 1]"),
        "{err}"
    );
    assert!(!err.is_endpoint_down());

    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let set = constraints(
        json!([{"criterion": "c", "check": format!("http://{dead}/grade")}]),
        "p",
    );
    let item = VerifyItem {
        prompt: "p",
        response: "r",
        constraints: &set,
    };
    let err = verifier.verify(&[item]).unwrap_err();
    assert!(err.is_endpoint_down(), "{err}");
    assert!(err.to_string().contains("3 attempts"), "{err}");
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `n` rows, each with a hard rule item and a soft URL item graded by its index.
fn rubric_rows(n: usize, url: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let response = if i % 3 == 0 {
                "Rain, again"
            } else {
                "Rain again"
            };
            json!({
                "prompt": format!("Prompt {i}"),
                "response": response,
                "rubric": [
                    {"criterion": "No commas", "hard": true, "check": "punctuation:no_comma"},
                    {"criterion": format!("Row {i} grade={}", (i % 5) as f64 / 4.0), "weight": 3,
                     "check": {"url": url}},
                ],
            })
        })
        .collect()
}

#[test]
fn verify_writes_rubric_columns_stops_when_the_endpoint_is_down_and_resumes() {
    let dir = tmp("rubric-verify");
    // 70 rows: the first durable chunk is 64 rows, 4 requests of 16.
    let first = Server::start(4, |_, seen| answer(seen));
    let addr = first.addr;
    let url = format!("http://{addr}/grade");
    let input = dir.join("rows.jsonl");
    write_rows(&input, &rubric_rows(70, &url));
    let output = dir.join("out.jsonl");
    let args = |resume: bool| {
        let mut a: Vec<String> = [
            "verify",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--reward-timeout",
            "2",
            "--reward-retries",
            "1",
            "--reward-backoff",
            "0.01",
            "--no-reward-cache",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if resume {
            a.push("--resume".into());
        }
        a
    };
    // The server answers the first chunk's 4 requests, then stops listening.
    let err = fails(rmtk().args(args(false)));
    assert!(err.contains("is down"), "{err}");
    assert!(err.contains("the 64 rows verified so far"), "{err}");
    assert!(err.contains("--resume"), "{err}");
    assert!(!output.exists(), "no output until the run is complete");
    drop(first);

    // The endpoint is back (same address): the run resumes with the 6 rows left.
    let second = Server::start_at(addr, 8, Duration::from_secs(30), |_, seen| answer(seen));
    let log = ok(rmtk().args(args(true)));
    assert!(log.contains("resuming: 64 rows already verified"), "{log}");
    let seen = second.requests();
    let sent: usize = seen
        .iter()
        .map(|s| s.body["responses"].as_array().unwrap().len())
        .sum();
    assert_eq!(sent, 6, "only the rows left are sent");
    // 24 of the 70 responses (every third) have a comma.
    assert!(
        log.contains("rubric: 70 rows with a rubric; hard items 65.71% passed (46 of 70)"),
        "{log}"
    );
    assert!(
        log.contains(&format!("rubric endpoints (from the data): {url}; the API key ($REWARD_API_KEY) goes to none of them")),
        "{log}"
    );

    let rows = json_lines(&output);
    assert_eq!(rows.len(), 70);
    for (i, row) in rows.iter().enumerate() {
        let comma = i % 3 == 0;
        let g = (i % 5) as f64 / 4.0;
        assert_eq!(row["pass"], json!(!comma), "row {i}");
        assert_eq!(row["rubric_verdicts"], json!([!comma, g >= 0.5]), "row {i}");
        assert_eq!(
            row["rubric_scores"],
            json!([if comma { 0.0 } else { 1.0 }, g]),
            "row {i}"
        );
        assert_eq!(row["rubric_checked_by"], json!(["rules", "url"]));
        // The hard item does not count in the score: the soft item alone.
        assert_eq!(row["rubric_score"], json!(g), "row {i}");
        assert_eq!(row["constraint_verdicts"], json!([]));
    }
}

#[test]
fn bad_rubric_cells_name_the_row_column_and_item() {
    let dir = tmp("rubric-bad");
    let cases = [
        (
            json!([{"criterion": "a"}, {"criterion": "b", "weight": -2, "check": "punctuation:no_comma"}]),
            "row 1, column `rubric`: item 1: `weight` is -2: it must be a number >= 0",
        ),
        (
            json!([{"criterion": "b", "weight": "high", "check": "punctuation:no_comma"}]),
            "row 1, column `rubric`: item 0: `weight` should be a number >= 0, found a string",
        ),
        (
            json!([{"criterion": "b", "check": "punctuation:no_coma"}]),
            "row 1, column `rubric`: item 0: `check` unknown instruction id \"punctuation:no_coma\"",
        ),
        (
            json!([{"check": "punctuation:no_comma"}]),
            "row 1, column `rubric`: item 0: `criterion` is missing",
        ),
        (
            json!([{"criterion": "Is vivid"}]),
            "row 1, column `rubric`: item 0 (Is vivid) is checked by the judge",
        ),
    ];
    for (k, (rubric, wanted)) in cases.into_iter().enumerate() {
        let input = dir.join(format!("bad{k}.jsonl"));
        let good = json!([{"criterion": "No commas", "check": "punctuation:no_comma"}]);
        write_rows(
            &input,
            &[
                json!({"prompt": "p", "response": "r", "rubric": good}),
                json!({"prompt": "p", "response": "r", "rubric": rubric}),
            ],
        );
        let err = fails(rmtk().args([
            "verify",
            "--input",
            input.to_str().unwrap(),
            "--output",
            dir.join("out.jsonl").to_str().unwrap(),
        ]));
        assert!(err.contains(input.to_str().unwrap()), "{err}");
        assert!(err.contains(wanted), "case {k}: {err}");
    }
    // Rules-only rows with a rubric need no `instruction_id_list` column.
    let input = dir.join("good.jsonl");
    write_rows(
        &input,
        &[json!({"prompt": "p", "response": "No commas here",
                 "rubric": [{"criterion": "No commas", "check": "punctuation:no_comma", "hard": true}]})],
    );
    let out = dir.join("good-out.jsonl");
    ok(rmtk().args([
        "verify",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]));
    let rows = json_lines(&out);
    assert_eq!(rows[0]["pass"], json!(true));
    assert_eq!(
        rows[0]["rubric_score"],
        Value::Null,
        "no soft item, no score"
    );
}

#[test]
fn a_parquet_rubric_with_mixed_check_forms_reads_back() {
    // As pandas/pyarrow store a list of dicts: structs with every field of every item,
    // null where an item lacks it (scripts/gen-rubric-parquet-fixture.py).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rubric/mixed-checks.parquet"
    );
    let table = rmtk::data::read_table(Path::new(path)).unwrap();
    let cell = &table.rows[0]["rubric"];
    assert!(
        cell[0]["check"].get("url").is_some_and(Value::is_null),
        "the fixture has parquet's null fields: {cell}"
    );
    let rubric = Rubric::parse(cell, Some("Write about rain. No commas.")).unwrap();
    let forms: Vec<String> = rubric
        .items()
        .iter()
        .map(|i| match &i.check {
            ItemCheck::Rule(c) => format!("rule {}", c.id().unwrap()),
            ItemCheck::Judge(q) => format!("judge {q}"),
            ItemCheck::Url(u) => format!("url {u}"),
        })
        .collect();
    assert_eq!(
        forms,
        [
            "rule punctuation:no_comma",
            "rule length_constraints:number_words",
            "judge The ending surprises the reader",
            "judge Does it use concrete sensory detail?",
            "url http://127.0.0.1:5000/grade",
        ]
    );
    let weights: Vec<f64> = rubric.items().iter().map(|i| i.weight).collect();
    assert_eq!(weights, [1.0, 1.0, 2.0, 1.0, 0.5]);
    assert!(rubric.items()[0].hard && !rubric.items()[1].hard);
    // The rule items decide as written: 2 words, no comma.
    let mut set = ConstraintSet::default();
    set.set_rubric(Rubric::new(rubric.items()[..2].to_vec()));
    let v = &Verifier::rules(false)
        .verify(&[VerifyItem {
            prompt: "p",
            response: "Rain again",
            constraints: &set,
        }])
        .unwrap()[0];
    assert!(v.pass);
    assert_eq!(v.rubric_score, Some(1.0));
}
