//! Reading `metrics.jsonl`: one JSON object per line, tolerant of what a crashed or
//! still-running trainer leaves behind.
//!
//! - Blank lines are ignored; lines that are not a JSON object (a half-written last line, a
//!   stray print) are skipped and counted.
//! - A line is an evaluation line when its `split`, `kind`, `event`, `mode` or `phase` says
//!   so (`eval`, `validation`, `val`, `test`, ...), not a metrics line when it names a
//!   bookkeeping event (`config`, `checkpoint`, ...), and a training line otherwise.
//! - The x value is `step` (or `global_step`, `iteration`, `iter`). A training line without
//!   one is skipped, unless no line has one at all: then training lines are numbered 1, 2, ...
//!   An evaluation line without one is put at the latest training step before it.
//! - Values are numbers or numeric strings; `"NaN"`, `"Infinity"`, `"-inf"` (and Python's
//!   bare `NaN`/`Infinity`) become non-finite values, which break a curve. `null`, booleans,
//!   other strings and nested objects are not values.
//! - Each series is sorted by step; when a step repeats (a run resumed from a checkpoint),
//!   the line written last wins.
//! - A training line's `constraint_types` object (`{"id": [passed, total], ...}`, what
//!   `rmtk grpo` logs per IFEval instruction id) is kept apart, per step, for the
//!   pass-rate-by-constraint-type panel.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Fields that give the x value, in order of preference.
const STEP_KEYS: &[&str] = &["step", "global_step", "iteration", "iter"];
/// Fields that tell evaluation lines from training lines.
const ROLE_KEYS: &[&str] = &["split", "kind", "event", "mode", "phase"];
const EVAL_ROLES: &[&str] = &[
    "eval",
    "evaluation",
    "val",
    "valid",
    "validation",
    "test",
    "heldout",
    "held_out",
    "dev",
];
/// Role values of lines that carry no metrics of their own.
const OTHER_ROLES: &[&str] = &[
    "config",
    "start",
    "started",
    "end",
    "done",
    "finish",
    "finished",
    "checkpoint",
    "save",
    "header",
    "meta",
    "summary",
];

/// `(step, value)` pairs sorted by step; a value may be non-finite.
pub type Points = Vec<(f64, f64)>;

/// Field of a training line holding per-constraint-type pass counts.
pub const CONSTRAINT_TYPES_KEY: &str = "constraint_types";

/// One step's pass counts by constraint type: `(type, passed, total)`, in the line's order.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeCounts {
    pub step: f64,
    pub counts: Vec<(String, u64, u64)>,
}

/// One evaluation's per-pair rewards (a line of train-rm's `eval_rewards.jsonl`:
/// `{"step": 200, "chosen": [...], "rejected": [...]}`).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRewards {
    pub step: f64,
    pub chosen: Vec<f64>,
    pub rejected: Vec<f64>,
}

impl EvalRewards {
    /// The last complete evaluation in the bytes of an `eval_rewards.jsonl` (a cut-off last
    /// line, or any line that is not such an object, is passed over).
    pub fn parse_last(bytes: &[u8]) -> Option<EvalRewards> {
        let text = String::from_utf8_lossy(bytes);
        text.lines().rev().find_map(|line| {
            let object = parse_object(line.trim())?;
            let step = object.get("step").and_then(number)?;
            let values = |key: &str| -> Option<Vec<f64>> {
                object
                    .get(key)?
                    .as_array()?
                    .iter()
                    .map(number)
                    .collect::<Option<Vec<f64>>>()
            };
            let (chosen, rejected) = (values("chosen")?, values("rejected")?);
            (!chosen.is_empty() || !rejected.is_empty()).then_some(EvalRewards {
                step,
                chosen,
                rejected,
            })
        })
    }
}

/// Named series in order of first appearance (within one line, in `serde_json`'s map order:
/// the file's with its `preserve_order` feature, as rmtk builds it, else alphabetical).
#[derive(Debug, Clone, Default)]
pub struct SeriesSet {
    names: Vec<String>,
    points: Vec<Points>,
    index: HashMap<String, usize>,
}

impl SeriesSet {
    /// The points of `name`, if any line had it.
    pub fn get(&self, name: &str) -> Option<&[(f64, f64)]> {
        self.index.get(name).map(|i| self.points[*i].as_slice())
    }

    /// Field names in order of first appearance.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn push(&mut self, name: &str, step: f64, value: f64) {
        let i = *self.index.entry(name.to_string()).or_insert_with(|| {
            self.names.push(name.to_string());
            self.points.push(Vec::new());
            self.names.len() - 1
        });
        self.points[i].push((step, value));
    }

    /// Sort every series by step, keeping the last of repeated steps.
    fn settle(&mut self) {
        for points in &mut self.points {
            if points.windows(2).all(|w| w[0].0 < w[1].0) {
                continue;
            }
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut settled: Points = Vec::with_capacity(points.len());
            for p in points.drain(..) {
                match settled.last_mut() {
                    Some(last) if last.0 == p.0 => *last = p,
                    _ => settled.push(p),
                }
            }
            *points = settled;
        }
    }
}

/// Everything plottable in a metrics file.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Series from training lines.
    pub train: SeriesSet,
    /// Series from evaluation lines.
    pub eval: SeriesSet,
    /// Lines that were not a JSON object, or training lines without a step.
    pub skipped_lines: usize,
    /// Pass counts by constraint type, one entry per training step that logged them, sorted
    /// by step (the last line of a repeated step wins).
    pub constraint_types: Vec<TypeCounts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Train,
    Eval,
    Other,
}

struct Record {
    role: Role,
    step: Option<f64>,
    fields: Vec<(String, f64)>,
    types: Vec<(String, u64, u64)>,
}

impl Metrics {
    /// Parse the bytes of a metrics file (invalid UTF-8 is replaced, not fatal).
    pub fn parse(bytes: &[u8]) -> Metrics {
        let mut metrics = Metrics::default();
        let mut records = Vec::new();
        for line in bytes.split(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match parse_object(line) {
                Some(object) => records.push(record(&object)),
                None => metrics.skipped_lines += 1,
            }
        }

        let numbered = !records
            .iter()
            .any(|r| r.role == Role::Train && r.step.is_some());
        let mut ordinal = 0.0;
        let mut last_train_step = None;
        for r in records {
            let step = match (r.role, r.step) {
                (Role::Other, _) => continue,
                (Role::Train, Some(step)) if !numbered => Some(step),
                (Role::Train, None) if numbered => {
                    ordinal += 1.0;
                    Some(ordinal)
                }
                (Role::Train, _) => None,
                (Role::Eval, step) => step.or(last_train_step),
            };
            let Some(step) = step else {
                metrics.skipped_lines += 1;
                continue;
            };
            let set = if r.role == Role::Eval {
                &mut metrics.eval
            } else {
                last_train_step = Some(step);
                if !r.types.is_empty() {
                    metrics.constraint_types.push(TypeCounts {
                        step,
                        counts: r.types,
                    });
                }
                &mut metrics.train
            };
            for (name, value) in r.fields {
                set.push(&name, step, value);
            }
        }
        metrics.train.settle();
        metrics.eval.settle();
        // Stable sort, then keep the last entry of each step.
        metrics
            .constraint_types
            .sort_by(|a, b| a.step.total_cmp(&b.step));
        let mut settled: Vec<TypeCounts> = Vec::with_capacity(metrics.constraint_types.len());
        for entry in metrics.constraint_types.drain(..) {
            match settled.last_mut() {
                Some(last) if last.step == entry.step => *last = entry,
                _ => settled.push(entry),
            }
        }
        metrics.constraint_types = settled;
        metrics
    }

    /// Whether no line gave any value.
    pub fn is_empty(&self) -> bool {
        self.train.is_empty() && self.eval.is_empty() && self.constraint_types.is_empty()
    }
}

/// A line as a JSON object; Python's bare `NaN`/`Infinity` are accepted too.
fn parse_object(line: &str) -> Option<Map<String, Value>> {
    let value = serde_json::from_str::<Value>(line)
        .ok()
        .or_else(|| serde_json::from_str::<Value>(&quote_bare_non_finite(line)).ok())?;
    match value {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

/// Turn the bare tokens `NaN`, `Infinity` and `-Infinity` outside strings into strings.
fn quote_bare_non_finite(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t))
        {
            out.push('"');
            out.push_str(token);
            out.push('"');
            rest = &rest[token.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn record(object: &Map<String, Value>) -> Record {
    let role = ROLE_KEYS
        .iter()
        .find_map(|key| object.get(*key).and_then(Value::as_str))
        .map_or(Role::Train, |role| {
            let role = role.trim().to_ascii_lowercase();
            if EVAL_ROLES.contains(&role.as_str()) {
                Role::Eval
            } else if OTHER_ROLES.contains(&role.as_str()) {
                Role::Other
            } else {
                Role::Train
            }
        });
    let step = STEP_KEYS
        .iter()
        .find_map(|key| object.get(*key).and_then(number))
        .filter(|s| s.is_finite());
    let fields = object
        .iter()
        .filter(|(key, _)| !STEP_KEYS.contains(&key.as_str()) && !ROLE_KEYS.contains(&key.as_str()))
        .filter_map(|(key, value)| Some((key.clone(), number(value)?)))
        .collect();
    let types = match object.get(CONSTRAINT_TYPES_KEY) {
        Some(Value::Object(types)) => types
            .iter()
            .filter_map(|(name, counts)| match counts.as_array()?.as_slice() {
                [passed, total] => {
                    let (passed, total) = (passed.as_u64()?, total.as_u64()?);
                    (total > 0 && passed <= total).then(|| (name.clone(), passed, total))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Record {
        role,
        step,
        fields,
        types,
    }
}

/// A JSON number, or a string that reads as one (`"0.5"`, `"NaN"`, `"-Infinity"`, `"inf"`).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Metrics {
        Metrics::parse(text.as_bytes())
    }

    #[test]
    fn training_and_eval_lines() {
        let m = parse(concat!(
            r#"{"step": 1, "loss": 0.9, "accuracy": 0.5}"#,
            "\n",
            r#"{"step": 2, "loss": 0.8}"#,
            "\n",
            r#"{"step": 2, "split": "eval", "accuracy": 0.61}"#,
            "\n",
            r#"{"step": 3, "kind": "EVAL", "accuracy": 0.64}"#,
            "\n",
            r#"{"event": "eval", "accuracy": 0.7}"#,
            "\n",
            r#"{"step": 4, "kind": "grpo", "loss": 0.7}"#,
            "\n",
        ));
        // An unrecognised role (`"kind": "grpo"`) leaves a line a training line.
        assert_eq!(
            m.train.get("loss"),
            Some(&[(1.0, 0.9), (2.0, 0.8), (4.0, 0.7)][..])
        );
        assert_eq!(m.train.get("accuracy"), Some(&[(1.0, 0.5)][..]));
        // The step-less eval line sits at the latest training step (2) and, written later,
        // replaces the eval value logged there.
        assert_eq!(m.eval.get("accuracy"), Some(&[(2.0, 0.7), (3.0, 0.64)][..]));
        assert_eq!(m.skipped_lines, 0);
    }

    #[test]
    fn names_keep_the_order_of_first_appearance() {
        let m = parse("{\"step\": 1, \"zeta\": 1}\n{\"step\": 2, \"alpha\": 1, \"zeta\": 2}\n");
        assert_eq!(m.train.names().collect::<Vec<_>>(), ["zeta", "alpha"]);
    }

    #[test]
    fn non_finite_values_in_every_spelling() {
        let m = parse(concat!(
            r#"{"step": 1, "a": "NaN", "b": "Infinity", "c": "-inf", "d": "0.25"}"#,
            "\n",
            r#"{"step": 2, "a": NaN, "b": -Infinity, "s": "has NaN inside"}"#,
            "\n",
        ));
        assert!(m.train.get("a").unwrap().iter().all(|(_, v)| v.is_nan()));
        assert_eq!(
            m.train.get("b"),
            Some(&[(1.0, f64::INFINITY), (2.0, f64::NEG_INFINITY)][..])
        );
        assert_eq!(m.train.get("c"), Some(&[(1.0, f64::NEG_INFINITY)][..]));
        assert_eq!(m.train.get("d"), Some(&[(1.0, 0.25)][..]));
        assert_eq!(m.train.get("s"), None);
        assert_eq!(m.skipped_lines, 0);
    }

    #[test]
    fn bad_lines_are_skipped_and_counted() {
        let m = parse(concat!(
            "\n   \n",
            r#"{"step": 1, "loss": 1.0, "note": "warmup", "ok": true, "nested": {"x": 1}, "kl": null}"#,
            "\n",
            "not json\n",
            "[1, 2, 3]\n",
            r#"{"loss": 0.5}"#,
            "\n",
            r#"{"event": "checkpoint", "step": 2, "loss": 7}"#,
            "\n",
            r#"{"step": 3, "loss": 0.4"#,
        ));
        assert_eq!(m.train.get("loss"), Some(&[(1.0, 1.0)][..]));
        assert_eq!(m.train.names().collect::<Vec<_>>(), ["loss"]);
        // "not json", the array, the step-less training line and the cut-off last line.
        assert_eq!(m.skipped_lines, 4);
    }

    #[test]
    fn files_without_steps_are_numbered() {
        let m = parse(
            "{\"loss\": 3}\n{\"loss\": 2}\n{\"split\": \"eval\", \"loss\": 2.5}\n{\"loss\": 1}\n",
        );
        assert_eq!(
            m.train.get("loss"),
            Some(&[(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)][..])
        );
        assert_eq!(m.eval.get("loss"), Some(&[(2.0, 2.5)][..]));
    }

    #[test]
    fn resumed_runs_keep_the_latest_values() {
        let m = parse(
            "{\"step\": 1, \"loss\": 3}\n{\"step\": 2, \"loss\": 2}\n{\"step\": 2, \"loss\": 2.2}\n{\"step\": \"3\", \"loss\": 1}\n",
        );
        assert_eq!(
            m.train.get("loss"),
            Some(&[(1.0, 3.0), (2.0, 2.2), (3.0, 1.0)][..])
        );
    }

    #[test]
    fn constraint_type_counts_are_kept_per_step() {
        let m = parse(concat!(
            r#"{"step": 1, "pass_rate": 0.5, "constraint_types": {"a:x": [1, 2], "b:y": [0, 2]}}"#,
            "\n",
            r#"{"step": 2, "constraint_types": {"a:x": [3, 4], "bad": [5, 4], "odd": "1/2"}}"#,
            "\n",
            r#"{"step": 1, "constraint_types": {"a:x": [2, 2]}}"#,
            "\n",
            r#"{"step": 3, "split": "eval", "constraint_types": {"a:x": [1, 1]}}"#,
            "\n",
        ));
        // The resumed step 1 replaces the first; malformed counts and eval lines are left out.
        assert_eq!(
            m.constraint_types,
            [
                TypeCounts {
                    step: 1.0,
                    counts: vec![("a:x".into(), 2, 2)]
                },
                TypeCounts {
                    step: 2.0,
                    counts: vec![("a:x".into(), 3, 4)]
                },
            ]
        );
        // The nested object is not a plottable value.
        assert_eq!(m.train.names().collect::<Vec<_>>(), ["pass_rate"]);
    }

    #[test]
    fn the_last_complete_eval_rewards_line_counts() {
        let text = concat!(
            r#"{"step": 10, "chosen": [1, 2], "rejected": [0.5, "NaN"]}"#,
            "\n",
            r#"{"step": 20, "chosen": [3], "rejected": [1]}"#,
            "\n",
            r#"{"step": 30, "chosen": [4, 5], "rej"#,
        );
        let last = EvalRewards::parse_last(text.as_bytes()).unwrap();
        assert_eq!(
            last,
            EvalRewards {
                step: 20.0,
                chosen: vec![3.0],
                rejected: vec![1.0]
            }
        );
        let first = EvalRewards::parse_last(&text.as_bytes()[..60]).unwrap();
        assert_eq!(first.step, 10.0);
        assert!(first.rejected[1].is_nan());
        assert_eq!(EvalRewards::parse_last(b"{\"step\": 1}\nnot json\n"), None);
    }

    #[test]
    fn bare_tokens_are_only_quoted_outside_strings() {
        assert_eq!(
            quote_bare_non_finite(r#"{"a": NaN, "b": "x\"NaN", "c": -Infinity, "é": Infinity}"#),
            r#"{"a": "NaN", "b": "x\"NaN", "c": "-Infinity", "é": "Infinity"}"#
        );
    }
}
