//! The Burn-hosted judge on the real SmolLM2-135M-Instruct (a handful of rows): the
//! yes/no reading, batching with left padding, the rationale mode, hybrid verification
//! and the command with `--judge-model`.

use std::path::{Path, PathBuf};

use rmtk::device::Cpu;
use rmtk::models::{LlamaForCausalLM, ModelDir, load_causal_lm};
use rmtk::verify::judge::{BurnJudge, BurnJudgeOptions, Judge, JudgeQuery};
use rmtk::verify::{Checker, ConstraintSet, Mode, Verifier, VerifierOptions, VerifyItem};
use serde_json::{Map, Value};

type B = Cpu;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn smollm2() -> ModelDir {
    let dir = root().join("models/smollm2-135m-instruct");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run scripts/fetch-models.sh first",
        dir.display()
    );
    ModelDir::open_dir(&dir, "smollm2-135m-instruct").unwrap()
}

/// A judge on an already loaded model (cloning the module shares its weights).
fn judge(model: &ModelDir, lm: &LlamaForCausalLM<B>, options: BurnJudgeOptions) -> BurnJudge<B> {
    BurnJudge::new(
        lm.clone(),
        model.tokenizer().unwrap(),
        "smollm2",
        options,
        &Default::default(),
    )
    .unwrap()
}

fn queries() -> Vec<JudgeQuery<'static>> {
    vec![
        JudgeQuery {
            instruction: "Describe the sea in one sentence, in lowercase letters only.",
            constraint: "The entire response is in lowercase letters.".into(),
            response: "the sea is wide and grey and never still.",
        },
        JudgeQuery {
            instruction: "Name a fruit. Do not use any commas.",
            constraint: "The response contains no commas.".into(),
            response: "Apples, pears, and plums, of course, are all fruits, and so are grapes.",
        },
        JudgeQuery {
            instruction: "Write a title for a story about a fox, wrapped in double angular brackets.",
            constraint: "The response contains a title wrapped in double angular brackets, such as <<title>>.".into(),
            response: "<<The Quiet Fox>>\nA fox lived at the edge of the wood, where the grass grew long and the nights were cold.",
        },
    ]
}

/// One model load for every check of the library: batching, shortening, rationale,
/// hybrid verification.
#[test]
fn smollm2_judges_batched_shortened_reasoned_and_hybrid() {
    let model = smollm2();
    let lm = load_causal_lm::<B>(&model, &Default::default()).unwrap();
    let queries = queries();
    let batched = judge(
        &model,
        &lm,
        BurnJudgeOptions {
            batch_size: 3,
            ..BurnJudgeOptions::default()
        },
    );
    let answers = batched.judge(&queries).unwrap();
    assert_eq!(answers.len(), 3);
    for a in &answers {
        let p = a.probability.unwrap();
        assert!((0.0..=1.0).contains(&p), "{p}");
        // The chat model answers Yes or No at all: most of its probability is there.
        assert!(a.answer_mass.unwrap() > 0.3, "{a:?}");
        assert!(a.note.is_none() && a.rationale.is_none());
    }
    // Alone (no padding), the longest and the shortest query get the same
    // probabilities as in the batch: left padding is masked.
    let single = judge(
        &model,
        &lm,
        BurnJudgeOptions {
            batch_size: 1,
            max_tokens: 300,
            ..BurnJudgeOptions::default()
        },
    );
    for k in [1, 2] {
        let alone = single.judge(&queries[k..=k]).unwrap();
        let (x, y) = (
            answers[k].probability.unwrap(),
            alone[0].probability.unwrap(),
        );
        assert!((x - y).abs() < 2e-3, "query {k}: batched {x}, alone {y}");
    }
    // A response longer than --judge-max-tokens is shortened in the middle, and says so.
    let long = "the sea is wide. ".repeat(100);
    let long_query = JudgeQuery {
        response: &long,
        ..queries[0].clone()
    };
    assert!(single.input_tokens(&long_query).unwrap() <= 300);
    let answer = single.judge(&[long_query]).unwrap();
    assert!(answer[0].probability.is_some());
    assert!(
        answer[0].note.as_deref().unwrap().contains("shortened"),
        "{:?}",
        answer[0].note
    );

    // A rationale first, then the verdict.
    let reasoning = judge(
        &model,
        &lm,
        BurnJudgeOptions {
            reason: true,
            reason_tokens: 16,
            ..BurnJudgeOptions::default()
        },
    );
    let answer = reasoning.judge(&queries[..1]).unwrap();
    assert!(
        !answer[0].rationale.as_deref().unwrap().is_empty(),
        "{answer:?}"
    );
    assert!(answer[0].probability.is_some());

    // Hybrid: the rules check the IFEval instruction, the judge the free text and the
    // constraints stated only in a prompt.
    let verifier = Verifier::new(
        VerifierOptions {
            mode: Mode::Hybrid,
            ..VerifierOptions::default()
        },
        Some(Box::new(batched)),
    )
    .unwrap();
    let prompt = "Write a title for a story about a fox, wrapped in double angular brackets.";
    let mut constraints =
        ConstraintSet::ifeval(Some(prompt), &["detectable_format:title"], &[Map::new()]).unwrap();
    constraints.push_text("The story is about a fox.").unwrap();
    let from_prompt = ConstraintSet::from_prompt();
    let verdicts = verifier
        .verify(&[
            VerifyItem {
                prompt,
                response: "The Quiet Fox",
                constraints: &constraints,
            },
            VerifyItem {
                prompt,
                response: "<<The Quiet Fox>>",
                constraints: &from_prompt,
            },
        ])
        .unwrap();
    let first = &verdicts[0];
    assert_eq!(first.checks.len(), 2);
    assert_eq!(first.checks[0].checker, Checker::Rules);
    assert!(!first.checks[0].pass, "no <<title>>");
    assert!(!first.pass);
    assert_eq!(first.checks[1].checker, Checker::Judge);
    assert!(first.checks[1].probability.is_some());
    assert_eq!(verdicts[1].checks.len(), 1);
    assert_eq!(verdicts[1].checks[0].checker, Checker::Judge);
}

#[test]
fn the_command_runs_the_local_judge() {
    let dir = std::env::temp_dir().join(format!("rmtk-verify-judge-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let input = dir.join("rows.jsonl");
    std::fs::write(
        &input,
        concat!(
            "{\"prompt\": \"Name a fruit without commas.\", \"response\": \"Apples\", \"instruction_id_list\": [\"punctuation:no_comma\"], \"kwargs\": [{}], \"constraints\": [\"The response names a fruit.\"]}\n",
            "{\"prompt\": \"Answer in lowercase: what is the sky?\", \"response\": \"the sky is blue.\", \"instruction_id_list\": null, \"kwargs\": null, \"constraints\": null}\n",
        ),
    )
    .unwrap();
    let output = dir.join("out.parquet");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rmtk"))
        .args(["verify", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .arg("--judge-model")
        .arg(root().join("models/smollm2-135m-instruct"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("mode hybrid"), "{stderr}");
    let table = rmtk::data::read_table(&output).unwrap();
    assert_eq!(table.rows.len(), 2);
    let by = |r: usize| table.rows[r]["checked_by"].clone();
    assert_eq!(by(0), serde_json::json!(["rules", "judge"]));
    assert_eq!(by(1), serde_json::json!(["judge"]));
    let probabilities = table.rows[0]["judge_probabilities"].as_array().unwrap();
    assert_eq!(probabilities[0], Value::Null);
    assert!(probabilities[1].as_f64().is_some());
    assert!(!dir.join("out.parquet.partial.jsonl").exists());
}
