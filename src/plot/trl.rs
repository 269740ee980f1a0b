//! Reading a TRL (transformers `Trainer`) run: its `trainer_state.json`, whose
//! `log_history` lists every logged dict: training logs (`loss`, `grad_norm`,
//! `learning_rate`, `epoch`, `step` and the trainer's own metrics: RewardTrainer's
//! `accuracy`, `margin`, `mean_reward`; GRPOTrainer's `reward`, `reward_std`, `kl`,
//! `completions/mean_length`, `clip_ratio/region_mean`, `rewards/<name>/mean`, ...),
//! evaluations (the same names with an `eval_` prefix, and `eval_runtime`, ...) and a
//! closing summary (`train_runtime`, `train_loss`, `total_flos`, ...).
//!
//! The history becomes [`Metrics`] as if rmtk had logged it: evaluation entries become
//! evaluation lines with the prefix taken off (`eval_accuracy` is `accuracy`'s eval
//! marker), and the summary is dropped (its `train_loss` is the average over the run, not
//! a point of the curve). [`super::panels::FIELDS`] maps TRL's names onto rmtk's.

use serde_json::{Map, Value};

use super::metrics::Metrics;

/// The file a TRL output folder (or each of its `checkpoint-N/`) holds.
pub const TRAINER_STATE_FILE: &str = "trainer_state.json";

/// The metrics in the bytes of a `trainer_state.json`, or why there are none.
pub fn parse_trainer_state(bytes: &[u8]) -> Result<Metrics, String> {
    let state: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("not valid JSON ({e}); is the file cut off?"))?;
    let history = state
        .get("log_history")
        .and_then(Value::as_array)
        .ok_or("no `log_history` list: not a transformers/TRL trainer_state.json")?;
    let mut lines = String::new();
    for entry in history {
        let line = match entry {
            Value::Object(object) if object.contains_key("train_runtime") => continue,
            Value::Object(object) => Value::Object(as_metrics_line(object)),
            // Not a dict: passed on for the parser to count as an unusable line.
            other => other.clone(),
        };
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    Ok(Metrics::parse(lines.as_bytes()))
}

/// A `log_history` dict as a metrics line: an evaluation's `eval_` fields without the
/// prefix, under `"split": "eval"`.
fn as_metrics_line(entry: &Map<String, Value>) -> Map<String, Value> {
    let eval = entry.keys().any(|k| k.starts_with("eval_"));
    if !eval {
        return entry.clone();
    }
    let mut line = Map::new();
    line.insert("split".into(), Value::from("eval"));
    for (key, value) in entry {
        if let Some(name) = key.strip_prefix("eval_") {
            line.insert(name.to_string(), value.clone());
        } else if key == "step" || key == "epoch" {
            line.insert(key.clone(), value.clone());
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = include_str!("../../tests/fixtures/plot/trl-rm/trainer_state.json");

    #[test]
    fn a_reward_trainer_state_reads_as_train_and_eval_series() {
        let m = parse_trainer_state(STATE.as_bytes()).unwrap();
        assert_eq!(m.skipped_lines, 0);
        let loss = m.train.get("loss").unwrap();
        assert_eq!(
            loss.len(),
            12,
            "one point per logging step (5, 10, ..., 60)"
        );
        assert_eq!((loss[0].0, loss[11].0), (5.0, 60.0));
        // The closing summary's average train_loss is no point of any curve.
        assert_eq!(m.train.get("train_loss"), None);
        assert_eq!(m.train.get("train_runtime"), None);
        // Evaluations at 20, 40, 60, without their prefix.
        let eval_acc = m.eval.get("accuracy").unwrap();
        assert_eq!(
            eval_acc.iter().map(|p| p.0).collect::<Vec<_>>(),
            [20.0, 40.0, 60.0]
        );
        assert!(m.eval.get("mean_reward").is_some());
        assert!(m.train.get("eval_accuracy").is_none());
    }

    #[test]
    fn broken_or_foreign_files_say_why() {
        let cut = &STATE.as_bytes()[..STATE.len() / 2];
        let err = parse_trainer_state(cut).unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = parse_trainer_state(br#"{"eval_loss": 0.5}"#).unwrap_err();
        assert!(err.contains("log_history"), "{err}");
        // An odd entry is counted, the rest still read.
        let m = parse_trainer_state(br#"{"log_history": [3, {"step": 1, "loss": 0.5}]}"#).unwrap();
        assert_eq!(
            (m.skipped_lines, m.train.get("loss").unwrap().len()),
            (1, 1)
        );
    }
}
