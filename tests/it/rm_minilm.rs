//! The real MiniLM backbone (`models/all-minilm-l6-v2`, from `scripts/fetch-models.sh`)
//! on real preference data (the first pairs of `data/prefs-en-demo.parquet`): the loss
//! on the pairs trained on falls, and two runs with the same seed give the same metrics.
//! Capped (16 pairs, 128 tokens, 8 updates) to stay within seconds in a debug build.

use crate::rm_support;

use rm_support::*;

#[test]
fn minilm_learns_the_demo_pairs_and_is_deterministic() {
    let model = root().join("models/all-minilm-l6-v2");
    assert!(
        model.join("model.safetensors").is_file(),
        "{} is missing: run scripts/fetch-models.sh first",
        model.display()
    );
    let dir = tmp("minilm");
    let demo = rmtk::data::read_table(&root().join("data/prefs-en-demo.parquet")).unwrap();
    let data = dir.join("demo16.parquet");
    rmtk::data::write_rows(&data, &demo.rows[..16]).unwrap();
    let run = |name: &str| {
        let out = dir.join(name);
        ok(rmtk().args([
            "train-rm",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--eval-data",
            data.to_str().unwrap(),
            "--eval-on-start",
            "--output",
            out.to_str().unwrap(),
            "--max-length",
            "128",
            "--overlong",
            "truncate",
            "--batch-size",
            "4",
            "--epochs",
            "2",
            "--lr",
            "1e-4",
            "--seed",
            "3",
            "--save-every",
            "0",
        ]));
        metrics(&out)
    };
    let a = run("a");
    let evals: Vec<f64> = a
        .iter()
        .filter_map(|r| r.get("eval_loss").and_then(|v| v.as_f64()))
        .collect();
    assert_eq!(evals.len(), 2);
    assert!(evals[1] < evals[0], "the loss did not fall: {evals:?}");
    let b = run("b");
    assert_eq!(a, b, "two runs with the same seed differ");
}
