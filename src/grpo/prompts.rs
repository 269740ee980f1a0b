//! The prompt set: each row's prompt (text or messages) and its constraints (IFEval /
//! IFBench instructions, free text, a rubric), read once and checked before any model
//! loads.

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::{Map, Value};

use crate::data::Prompt;
use crate::data::{DataError, Table, prompt_cell, read_table};
use crate::verify::input::{kwargs_list, string_list};
use crate::verify::rubric::Rubric;
use crate::verify::{Constraint, ConstraintSet};

/// One training or evaluation prompt.
#[derive(Debug, Clone)]
pub struct PromptRow {
    /// Where it comes from, for messages: `file:row`.
    pub source: String,
    pub prompt: Prompt,
    /// The prompt as the verifier and logs see it.
    pub text: String,
    pub constraints: ConstraintSet,
}

/// Column names of a prompt file.
#[derive(Debug, Clone)]
pub struct PromptColumns {
    pub prompt: String,
    pub ids: String,
    pub kwargs: String,
    pub constraints: String,
    /// Optional in the files; `None`: not read.
    pub rubric: Option<String>,
}

/// Reads every row of `files`. A row without listed constraints is only allowed when
/// a judge can read them from the prompt (`judge`).
pub fn read_prompts(
    files: &[PathBuf],
    columns: &PromptColumns,
    judge: bool,
) -> Result<Vec<PromptRow>> {
    let mut out = Vec::new();
    for path in files {
        let table = read_table(path)?;
        if let Some(err) = table.first_bad() {
            return Err(err.into());
        }
        if table.rows.is_empty() {
            bail!("{}: has no prompts", path.display());
        }
        table.require_column(&columns.prompt)?;
        for row in 0..table.rows.len() {
            out.push(read_row(&table, row, columns, judge)?);
        }
    }
    if out.is_empty() {
        bail!("no prompts given");
    }
    Ok(out)
}

fn read_row(
    table: &Table,
    row: usize,
    columns: &PromptColumns,
    judge: bool,
) -> Result<PromptRow, DataError> {
    let data = &table.rows[row];
    let prompt = prompt_cell(table, row, data, &columns.prompt)?;
    let text = prompt.to_text();
    if text.trim().is_empty() {
        return Err(table.cell_error(row, &columns.prompt, "is empty"));
    }
    let cell = |c: &str| data.get(c).cloned().unwrap_or(Value::Null);
    let ids = string_list(&cell(&columns.ids), "instruction ids")
        .map_err(|m| table.cell_error(row, &columns.ids, m))?;
    let kwargs: Vec<Map<String, Value>> = if ids.is_empty() {
        Vec::new()
    } else {
        kwargs_list(&cell(&columns.kwargs), ids.len())
            .map_err(|m| table.cell_error(row, &columns.kwargs, m))?
    };
    let mut constraints = ConstraintSet::ifeval(Some(&text), &ids, &kwargs)
        .map_err(|e| table.cell_error(row, &columns.ids, e.to_string()))?;
    let texts = string_list(&cell(&columns.constraints), "constraints")
        .map_err(|m| table.cell_error(row, &columns.constraints, m))?;
    for t in &texts {
        constraints
            .push_text(t)
            .map_err(|e| table.cell_error(row, &columns.constraints, e.to_string()))?;
    }
    if let Some(column) = &columns.rubric {
        let rubric = Rubric::parse(&cell(column), Some(&text))
            .map_err(|e| table.cell_error(row, column, format!("{e} (if this column is not an rmtk rubric, name the rubric column with --rubric-column, or ignore it with --no-rubric)")))?;
        if !judge && let Some(message) = rubric.judge_error() {
            return Err(table.cell_error(row, column, message));
        }
        constraints.set_rubric(rubric);
    }
    if !judge && constraints.needs_judge() {
        let undecided = constraints.iter().find_map(|c| match c {
            Constraint::Ifbench(inst) => inst.undecidable().map(|why| (inst.id(), why)),
            _ => None,
        });
        let (column, why) = if constraints.is_empty() {
            (
                &columns.ids,
                "lists no constraints: only a judge can read them from the prompt".to_owned(),
            )
        } else if let Some((id, why)) = undecided {
            let why =
                format!("{id} cannot be decided by the rules here ({why}), so it needs a judge");
            (&columns.ids, why)
        } else {
            (
                &columns.constraints,
                "has free-text constraints, which need a judge".to_owned(),
            )
        };
        return Err(table.cell_error(
            row,
            column,
            format!(
                "{why}; configure one (--judge-model, with --judge-url for a remote one) or give IFEval / IFBench instructions"
            ),
        ));
    }
    Ok(PromptRow {
        source: format!("{}:{}", table.path.display(), row),
        prompt,
        text,
        constraints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns() -> PromptColumns {
        PromptColumns {
            prompt: "prompt".into(),
            ids: "instruction_id_list".into(),
            kwargs: "kwargs".into(),
            constraints: "constraints".into(),
            rubric: Some("rubric".into()),
        }
    }

    fn file(name: &str, rows: &[Value]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rmtk-grpo-prompts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let path = dir.join(name);
        let rows: Vec<crate::data::Row> = rows
            .iter()
            .map(|r| r.as_object().cloned().unwrap_or_default())
            .collect();
        crate::data::write_rows(&path, &rows).expect("written");
        path
    }

    #[test]
    fn ifbench_instructions_are_rewards_too() {
        let path = file(
            "ifbench.jsonl",
            &[
                json!({"prompt": "Write 2 numbers.", "instruction_id_list": ["count:numbers", "punctuation:no_comma"],
                     "kwargs": [{"N": 2.0}, {}]}),
            ],
        );
        let rows = read_prompts(&[path], &columns(), false).expect("the rules decide both");
        assert!(!rows[0].constraints.needs_judge());
        assert_eq!(rows[0].constraints.len(), 2);
    }

    #[test]
    fn undecidable_ifbench_instructions_need_a_judge() {
        let path = file(
            "undecidable.jsonl",
            &[
                json!({"prompt": "Few stop words.", "instruction_id_list": ["ratio:stop_words"],
                     "kwargs": [{"percentage": 30}]}),
            ],
        );
        let err = read_prompts(std::slice::from_ref(&path), &columns(), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("row 0, column `instruction_id_list`: ratio:stop_words cannot be decided by the rules here"),
            "{err}"
        );
        assert!(err.contains("so it needs a judge"), "{err}");
        read_prompts(&[path], &columns(), true).expect("a judge decides it");
    }
}
