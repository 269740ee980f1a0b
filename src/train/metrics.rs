//! `OUTPUT/metrics.jsonl`: one JSON object per line (every update, every evaluation),
//! flushed as it is written; and the progress line the bar shows.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

pub const METRICS_FILE: &str = "metrics.jsonl";

pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// A new log (an existing file is replaced).
    pub fn create(output: &Path) -> Result<Self> {
        Self::create_named(output, METRICS_FILE)
    }

    /// Continue the log of a run resumed at `step`: records after that step (written
    /// after the checkpoint by the run that stopped) and any torn last line are dropped,
    /// so the file reads as if the run had never stopped.
    pub fn resume(output: &Path, step: u64) -> Result<Self> {
        Self::resume_named(output, METRICS_FILE, step)
    }

    /// [`MetricsLog::create`] for another JSONL log of the run (`file` in `output`).
    pub fn create_named(output: &Path, file: &str) -> Result<Self> {
        let path = output.join(file);
        crate::util::write_atomic(&path, b"")
            .with_context(|| format!("creating {}", path.display()))?;
        Self::open_append(path)
    }

    /// [`MetricsLog::resume`] for another JSONL log of the run; a log the stopped run
    /// did not write yet starts empty.
    pub fn resume_named(output: &Path, file: &str, step: u64) -> Result<Self> {
        let path = output.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut kept = String::new();
        for line in text.lines() {
            let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if obj
                .get("step")
                .and_then(Value::as_u64)
                .is_some_and(|s| s <= step)
            {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        crate::util::write_atomic(&path, kept.as_bytes())
            .with_context(|| format!("rewriting {}", path.display()))?;
        Self::open_append(path)
    }

    /// The complete records of a log.
    pub fn read_records(output: &Path) -> Vec<Map<String, Value>> {
        std::fs::read_to_string(output.join(METRICS_FILE))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| match serde_json::from_str::<Value>(l) {
                Ok(Value::Object(o)) => Some(o),
                _ => None,
            })
            .collect()
    }

    fn open_append(path: PathBuf) -> Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self { path, file })
    }

    pub fn log(&mut self, record: &Map<String, Value>) -> Result<()> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .with_context(|| format!("writing {}", self.path.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Round a metric for the log: 7 significant digits keep f32 values exact enough to
/// compare runs while the file stays readable.
pub fn num(v: f64) -> Value {
    if !v.is_finite() {
        return Value::String(format!("{v}"));
    }
    let text = format!("{v:.6e}");
    let rounded: f64 = text.parse().unwrap_or(v);
    serde_json::Number::from_f64(rounded)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// A compact progress-bar message from selected fields of a record:
/// `loss 0.6931 acc 0.500 lr 1.00e-4 gn 1.23 tok/s 1234`.
pub fn bar_message(record: &Map<String, Value>, fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .filter_map(|(key, label)| {
            let v = record.get(*key)?.as_f64()?;
            let shown = if key.contains("lr") {
                format!("{v:.2e}")
            } else if key.contains("tokens_per_s") {
                format!("{v:.0}")
            } else if v.abs() >= 100.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.4}")
            };
            Some(format!("{label} {shown}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resume_drops_records_past_the_checkpoint_and_torn_lines() {
        let dir = std::env::temp_dir().join(format!("rmtk-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = MetricsLog::create(&dir).unwrap();
        for s in 1..=4u64 {
            log.log(json!({"step": s, "loss": 0.5}).as_object().unwrap())
                .unwrap();
        }
        drop(log);
        let path = dir.join(METRICS_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"step\": 5, \"lo");
        std::fs::write(&path, text).unwrap();
        let mut log = MetricsLog::resume(&dir, 2).unwrap();
        log.log(json!({"step": 3, "loss": 0.25}).as_object().unwrap())
            .unwrap();
        let lines: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].contains("0.25"));
    }

    #[test]
    fn other_logs_of_a_run_are_cut_back_on_resume_too() {
        let dir = std::env::temp_dir().join(format!("rmtk-metrics-named-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = MetricsLog::create_named(&dir, "eval_rewards.jsonl").unwrap();
        for s in [2u64, 4, 6] {
            log.log(
                json!({"step": s, "chosen": [0.5], "rejected": [0.1]})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        }
        drop(log);
        let mut log = MetricsLog::resume_named(&dir, "eval_rewards.jsonl", 4).unwrap();
        log.log(
            json!({"step": 6, "chosen": [0.7], "rejected": [0.2]})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.join("eval_rewards.jsonl")).unwrap();
        let steps: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["step"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(steps, [2, 4, 6]);
        assert!(text.lines().last().unwrap().contains("0.7"));
        // A run that stopped before the log existed resumes with an empty one.
        MetricsLog::resume_named(&dir, "other.jsonl", 4).unwrap();
        assert_eq!(std::fs::read(dir.join("other.jsonl")).unwrap(), b"");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn numbers_are_rounded_to_seven_digits() {
        assert_eq!(num(0.123456789), json!(0.1234568));
        assert_eq!(num(1.0), json!(1.0));
        let msg = bar_message(
            json!({"loss": 0.51234, "lr": 1e-4, "tokens_per_s": 1234.5})
                .as_object()
                .unwrap(),
            &[
                ("loss", "loss"),
                ("lr", "lr"),
                ("tokens_per_s", "tok/s"),
                ("missing", "x"),
            ],
        );
        assert_eq!(msg, "loss 0.5123 lr 1.00e-4 tok/s 1234");
    }
}

/// Messages of a run: to stderr (above the progress bar, if any) and appended to
/// `OUTPUT/train.log`. Messages from before the output folder exists (what was read,
/// skipped rows, filtered or cut pairs) are kept and written there first, once it does.
#[derive(Default)]
pub struct RunLog {
    prefix: String,
    file: Option<File>,
    bar: Option<indicatif::ProgressBar>,
    /// Lines logged before [`RunLog::to_file`].
    pending: Vec<String>,
}

impl RunLog {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            ..Self::default()
        }
    }

    /// Also append to `path` from now on, starting with the lines logged so far.
    pub fn to_file(&mut self, path: &Path) -> Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        for line in self.pending.drain(..) {
            writeln!(file, "{line}").with_context(|| format!("writing {}", path.display()))?;
        }
        self.file = Some(file);
        Ok(())
    }

    /// Print above this bar while it is shown.
    pub fn set_bar(&mut self, bar: Option<indicatif::ProgressBar>) {
        self.bar = bar;
    }

    pub fn info(&mut self, message: &str) {
        let line = format!("{}: {message}", self.prefix);
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(&line),
            _ => eprintln!("{line}"),
        }
        match &mut self.file {
            Some(f) => {
                let _ = writeln!(f, "{line}");
            }
            None => self.pending.push(line),
        }
    }
}
