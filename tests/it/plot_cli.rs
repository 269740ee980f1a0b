//! `rmtk plot` end to end: a tiny train-rm run (its eval reward distributions, from the
//! `eval_rewards.jsonl` train-rm now writes), a tiny GRPO run (pass rate by constraint
//! type, from the `constraint_types` counts grpo now logs), an overlay of an rmtk run and a
//! TRL `trainer_state.json`, and bad input: a clear error naming the file, exit 1, no
//! panic, no image.

use crate::rm_support;

use std::path::{Path, PathBuf};

use rm_support::*;
use serde_json::{Value, json};

/// The width and height of a PNG file, after checking its signature and header.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() > 1000,
        "{} is too small for a figure",
        path.display()
    );
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is no PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// The panel titles of `rmtk plot`'s "wrote X (N panels: a, b, c; M points)" line.
fn panels(stderr: &str) -> Vec<String> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("wrote "))
        .unwrap_or_else(|| panic!("no `wrote` line: {stderr}"));
    let list = &line[line.find("panels: ").unwrap() + 8..line.rfind(';').unwrap()];
    list.split(", ").map(str::to_string).collect()
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/plot").join(name)
}

#[test]
fn a_train_rm_run_plots_its_curves_and_reward_distributions() {
    let model = tiny_model("bert", "plot-rm");
    let dir = tmp("plot-rm");
    let data = dir.join("prefs.jsonl");
    write_rows(&data, &text_pairs(24, 3));
    let out = dir.join("rm");
    ok(rmtk().args([
        "train-rm",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--eval-fraction",
        "0.25",
        "--eval-every",
        "2",
        "--max-steps",
        "4",
        "--batch-size",
        "4",
        "--lr",
        "1e-3",
        "--save-every",
        "0",
    ]));

    // One eval_rewards.jsonl line per evaluation, a reward per held-out pair.
    let evals: Vec<u64> = metrics(&out)
        .iter()
        .filter(|r| r.contains_key("eval_loss"))
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(evals, [2, 4]);
    let lines: Vec<Value> = std::fs::read_to_string(out.join("eval_rewards.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|l| l["step"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        evals
    );
    for line in &lines {
        for side in ["chosen", "rejected"] {
            let rewards = line[side].as_array().unwrap();
            assert_eq!(rewards.len(), 6, "24 pairs, a quarter held out");
            assert!(
                rewards
                    .iter()
                    .all(|r| r.as_f64().is_some_and(f64::is_finite))
            );
        }
    }
    // The accuracy logged is the share of pairs whose chosen reward is higher.
    let last = lines.last().unwrap();
    let right = last["chosen"]
        .as_array()
        .unwrap()
        .iter()
        .zip(last["rejected"].as_array().unwrap())
        .filter(|(c, r)| c.as_f64() > r.as_f64())
        .count();
    let eval = metrics(&out)
        .into_iter()
        .rfind(|r| r.contains_key("eval_accuracy"))
        .unwrap();
    assert_eq!(eval["eval_accuracy"].as_f64(), Some(right as f64 / 6.0));

    let log = ok(rmtk().args(["plot", out.to_str().unwrap()]));
    assert_eq!(png_size(&out.join("metrics.png")), (1600, 1000));
    assert_eq!(
        panels(&log),
        [
            "Loss",
            "Pairwise accuracy",
            "Mean margin (chosen - rejected)",
            "Reward (mean ± std)",
            "Learning rate",
            "Gradient norm",
            "Eval rewards at step 4"
        ]
    );
}

/// Prompts asking for one of two IFEval constraints each.
fn prompts(n: usize, seed: u64) -> Vec<Value> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            let (id, kwargs) = if i % 2 == 0 {
                (
                    "length_constraints:number_words",
                    json!({"relation": "less than", "num_words": 8}),
                )
            } else {
                ("punctuation:no_comma", json!({}))
            };
            json!({
                "prompt": sentence(&mut rng, 5),
                "instruction_id_list": [id],
                "kwargs": [kwargs],
            })
        })
        .collect()
}

#[test]
fn a_grpo_run_plots_pass_rate_by_constraint_type() {
    let policy = tiny_model("llama", "plot-grpo");
    let dir = tmp("plot-grpo");
    let train = dir.join("prompts.jsonl");
    write_rows(&train, &prompts(8, 11));
    let out = dir.join("grpo");
    ok(rmtk().args([
        "grpo",
        "--policy",
        policy.to_str().unwrap(),
        "--prompts",
        train.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--mixing",
        "constraint-only",
        "--num-generations",
        "4",
        "--batch-prompts",
        "2",
        "--max-new-tokens",
        "12",
        "--lr",
        "1e-3",
        "--seed",
        "7",
        "--max-steps",
        "4",
    ]));

    // Every step counts each completion's check under its instruction id; with one
    // constraint per prompt the counts add up to the pass rate.
    let lines: Vec<_> = metrics(&out)
        .into_iter()
        .filter(|r| r.get("split").is_none())
        .collect();
    assert_eq!(lines.len(), 4);
    let mut seen = std::collections::BTreeSet::new();
    for line in &lines {
        let types = line["constraint_types"].as_object().unwrap();
        let (mut passed, mut total) = (0, 0);
        for (id, counts) in types {
            seen.insert(id.clone());
            let counts = counts.as_array().unwrap();
            let (p, t) = (counts[0].as_u64().unwrap(), counts[1].as_u64().unwrap());
            assert!(p <= t && t > 0, "{id}: {counts:?}");
            (passed, total) = (passed + p, total + t);
        }
        // Every completion of the step's rounds: groups of 4, at least the first round's 2.
        assert!(total >= 8 && total % 4 == 0, "{line:?}");
        let rate = line["pass_rate"].as_f64().unwrap();
        assert!(
            (rate - passed as f64 / total as f64).abs() < 1e-6,
            "{line:?}"
        );
    }
    assert!(
        seen.iter().all(
            |id| ["length_constraints:number_words", "punctuation:no_comma"].contains(&id.as_str())
        ),
        "{seen:?}"
    );

    let png = dir.join("grpo.png");
    let log = ok(rmtk().args([
        "plot",
        out.to_str().unwrap(),
        "--output",
        png.to_str().unwrap(),
        "--width",
        "1200",
        "--height",
        "800",
    ]));
    assert_eq!(png_size(&png), (1200, 800));
    let titles = panels(&log);
    assert_eq!(titles[0], "Constraint pass rate");
    assert_eq!(titles.last().unwrap(), "Pass rate by constraint type");
    // The file has TRL's names beside rmtk's (`completions/mean_length` and
    // `response_len_mean`, `reward` and `reward_mean`, ...): each metric is drawn once.
    assert!(lines[0].contains_key("completions/mean_length") && lines[0].contains_key("reward"));
    let unique: std::collections::BTreeSet<&String> = titles.iter().collect();
    assert_eq!(unique.len(), titles.len(), "{titles:?}");
    // TRL's names can be asked for by name, those rmtk writes under trl/ too.
    let log = ok(rmtk().args([
        "plot",
        out.to_str().unwrap(),
        "--output",
        png.to_str().unwrap(),
        "--metrics",
        "reward,frac_reward_zero_std,clip_ratio/low_mean+clip_ratio/high_mean,trl/entropy",
    ]));
    assert_eq!(
        panels(&log),
        [
            "Reward (mean ± std)",
            "Completions in groups without reward variance",
            "clip_ratio/low_mean + clip_ratio/high_mean",
            "Entropy (TRL: mean over micro-batches)"
        ]
    );
}

#[test]
fn an_rmtk_run_and_a_trl_run_share_one_figure() {
    let dir = tmp("plot-overlay");
    let rm = dir.join("rmtk-rm");
    std::fs::create_dir_all(&rm).unwrap();
    std::fs::copy(fixture("train_rm.jsonl"), rm.join("metrics.jsonl")).unwrap();
    std::fs::copy(
        fixture("train_rm_eval_rewards.jsonl"),
        rm.join("eval_rewards.jsonl"),
    )
    .unwrap();
    let trl = fixture("trl-rm");
    let png = dir.join("both.png");
    let log = ok(rmtk().args([
        "plot",
        rm.to_str().unwrap(),
        trl.to_str().unwrap(),
        "--output",
        png.to_str().unwrap(),
    ]));
    assert_eq!(png_size(&png), (1600, 1000));
    let titles = panels(&log);
    assert_eq!(titles.len(), 7, "{titles:?}");
    assert_eq!(titles[..2], ["Loss", "Pairwise accuracy"]);
    assert_eq!(titles.last().unwrap(), "Eval rewards at step 200 · rmtk-rm");

    // The same figure as SVG: both runs are named in it.
    let svg = dir.join("both.svg");
    ok(rmtk().args([
        "plot",
        rm.to_str().unwrap(),
        trl.to_str().unwrap(),
        "--output",
        svg.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.trim_start().starts_with("<svg"), "{}", &text[..80]);
    let has_text = |t: &str| text.lines().any(|line| line.trim() == t);
    assert!(has_text("rmtk-rm"), "the legend names the rmtk run");
    assert!(has_text("trl-rm"), "the legend names the TRL run");

    // The TRL file itself works too, and several runs default to overlay.png here.
    let log = ok(rmtk().current_dir(&dir).args([
        "plot",
        trl.join("trainer_state.json").to_str().unwrap(),
        rm.join("metrics.jsonl").to_str().unwrap(),
        "--metrics",
        "loss,accuracy",
    ]));
    assert_eq!(panels(&log), ["Loss", "Pairwise accuracy"]);
    assert_eq!(png_size(&dir.join("overlay.png")), (1600, 1000));
}

#[test]
fn bad_input_is_a_clear_error_naming_the_file() {
    let dir = tmp("plot-bad");
    let png = dir.join("out.png");
    let plot = |run: &Path, extra: &[&str]| {
        let mut args = vec![
            "plot".to_string(),
            run.to_str().unwrap().to_string(),
            "--output".to_string(),
            png.to_str().unwrap().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let err = fails(rmtk().args(args));
        assert!(!png.exists(), "no image after: {err}");
        err
    };

    // A folder without metrics.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = plot(&empty, &[]);
    assert!(
        err.contains(empty.to_str().unwrap()) && err.contains("no metrics there"),
        "{err}"
    );

    // An empty metrics file, and one cut off in its only line.
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let file = run.join("metrics.jsonl");
    std::fs::write(&file, "").unwrap();
    let err = plot(&run, &[]);
    assert!(
        err.contains(&format!("nothing to plot in {}", file.display())),
        "{err}"
    );
    std::fs::write(&file, "{\"step\": 1, \"loss\": 0.6").unwrap();
    let err = plot(&run, &[]);
    assert!(err.contains("(1 unusable lines)"), "{err}");

    // A truncated trainer_state.json.
    let trl = dir.join("trl");
    std::fs::create_dir_all(&trl).unwrap();
    let state = std::fs::read_to_string(fixture("trl-rm/trainer_state.json")).unwrap();
    std::fs::write(trl.join("trainer_state.json"), &state[..state.len() / 3]).unwrap();
    let err = plot(&trl, &[]);
    assert!(
        err.contains("trl/trainer_state.json: not valid JSON"),
        "{err}"
    );

    // A metric the run does not have: the error lists the ones it has.
    std::fs::write(&file, "{\"step\": 1, \"loss\": 0.6, \"accuracy\": 0.5}\n").unwrap();
    let err = plot(&run, &["--metrics", "loss,nope"]);
    assert!(
        err.contains(&format!(
            "{} has no values for `nope`; it has: loss, accuracy",
            file.display()
        )),
        "{err}"
    );

    // A path that is not there; one bad run spoils an overlay too.
    let err = plot(&dir.join("missing"), &[]);
    assert!(
        err.contains("cannot read") && err.contains("missing"),
        "{err}"
    );
    let err = fails(rmtk().args([
        "plot",
        run.to_str().unwrap(),
        empty.to_str().unwrap(),
        "--output",
        png.to_str().unwrap(),
    ]));
    assert!(err.contains("no metrics there"), "{err}");
    assert!(!png.exists());
}
