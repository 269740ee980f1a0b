//! Durable progress for long (judge) runs.
//!
//! While a run goes, each finished chunk of rows is appended to
//! `OUTPUT.partial.jsonl` and flushed to disk; the final output is written atomically
//! at the end and the partial file removed. If the run stops (an endpoint down after
//! its retries, a crash, Ctrl-C), the verified rows stay in the partial file and
//! `--resume` continues from them. The file's first line records which input and
//! options it belongs to, and a run with other ones refuses it.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::data::Row;

const HEADER_KEY: &str = "rmtk_verify_partial";

/// The partial output of a run.
pub struct Partial {
    path: PathBuf,
    file: File,
    resumed: Vec<(usize, Row)>,
}

/// `OUTPUT.partial.jsonl`, next to the output.
pub fn partial_path(output: &Path) -> PathBuf {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "output".into());
    name.push(".partial.jsonl");
    output.with_file_name(name)
}

impl Partial {
    /// Opens the partial output of `output`: continues it with `resume` (it must
    /// belong to a run with the same `fingerprint`), else starts it, refusing to
    /// overwrite the progress of an interrupted run.
    pub fn open(output: &Path, fingerprint: &str, resume: bool) -> Result<Partial> {
        let path = partial_path(output);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        }
        let exists = path.is_file();
        let mut resumed = Vec::new();
        if exists && !resume {
            bail!(
                "{} holds the progress of an interrupted run: add --resume to continue it, or delete it to start over",
                path.display()
            );
        }
        if exists {
            resumed = read_partial(&path, fingerprint)?;
            // Rewrite it without a line torn by the interruption, so appends start
            // on a fresh line.
            let mut bytes = header(fingerprint);
            bytes.extend(lines(&resumed));
            crate::util::write_atomic(&path, &bytes).with_context(|| path.display().to_string())?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| path.display().to_string())?;
        if !exists {
            file.write_all(&header(fingerprint))
                .and_then(|()| file.sync_data())
                .with_context(|| path.display().to_string())?;
        }
        Ok(Partial {
            path,
            file,
            resumed,
        })
    }

    /// The rows a resumed run already has (once).
    pub fn take_resumed(&mut self) -> Vec<(usize, Row)> {
        std::mem::take(&mut self.resumed)
    }

    /// Appends finished rows and flushes them to disk.
    pub fn append(&mut self, rows: &[(usize, Row)]) -> Result<()> {
        self.file
            .write_all(&lines(rows))
            .and_then(|()| self.file.sync_data())
            .with_context(|| self.path.display().to_string())
    }

    /// What to tell the user when the run stops: where its progress is.
    pub fn resume_hint(&self, rows: usize) -> String {
        format!(
            "; the {rows} rows verified so far are in {}: run the same command with --resume to continue",
            self.path.display()
        )
    }

    /// The run is complete (its output written): the partial file goes.
    pub fn finish(self) -> Result<()> {
        drop(self.file);
        std::fs::remove_file(&self.path).with_context(|| self.path.display().to_string())
    }
}

fn header(fingerprint: &str) -> Vec<u8> {
    let mut bytes = json!({ HEADER_KEY: 1, "fingerprint": fingerprint })
        .to_string()
        .into_bytes();
    bytes.push(b'\n');
    bytes
}

fn lines(rows: &[(usize, Row)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (index, row) in rows {
        serde_json::to_writer(&mut bytes, &json!({"row": index, "data": row}))
            .expect("JSON values serialize");
        bytes.push(b'\n');
    }
    bytes
}

fn read_partial(path: &Path, fingerprint: &str) -> Result<Vec<(usize, Row)>> {
    let file = File::open(path).with_context(|| path.display().to_string())?;
    let mut rows = BTreeMap::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| path.display().to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            // A line cut short by the interruption: the rows before it are good.
            Err(_) => break,
        };
        if n == 0 {
            if value.get(HEADER_KEY).is_none() {
                bail!("{} is not an rmtk verify progress file", path.display());
            }
            if value.get("fingerprint").and_then(Value::as_str) != Some(fingerprint) {
                bail!(
                    "{} was written by a run with another input or other options; delete it to start over",
                    path.display()
                );
            }
            continue;
        }
        let (Some(index), Some(Value::Object(row))) =
            (value.get("row").and_then(Value::as_u64), value.get("data"))
        else {
            break;
        };
        rows.insert(index as usize, row.clone());
    }
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_survives_and_resumes() {
        let dir = std::env::temp_dir().join(format!("rmtk-partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let output = dir.join("out.parquet");
        let row = |v: i64| json!({"x": v}).as_object().cloned().unwrap();
        let mut p = Partial::open(&output, "fp", false).unwrap();
        assert!(p.take_resumed().is_empty());
        p.append(&[(0, row(10)), (2, row(12))]).unwrap();
        drop(p);
        let path = partial_path(&output);
        assert_eq!(path, dir.join("out.parquet.partial.jsonl"));
        // A torn last line is ignored.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"row\": 3, \"da").unwrap();
        drop(f);
        let err = Partial::open(&output, "fp", false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--resume"), "{err}");
        let err = Partial::open(&output, "other", true)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("another input or other options"), "{err}");
        let mut p = Partial::open(&output, "fp", true).unwrap();
        let resumed = p.take_resumed();
        assert_eq!(resumed, vec![(0, row(10)), (2, row(12))]);
        // Appends after a resume are read back too.
        p.append(&[(5, row(15))]).unwrap();
        drop(p);
        let mut p = Partial::open(&output, "fp", true).unwrap();
        assert_eq!(p.take_resumed().len(), 3);
        p.finish().unwrap();
        assert!(!path.exists());
    }
}
