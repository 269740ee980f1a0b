//! Rows in, constraint sets out.
//!
//! A row has a prompt, a response and its constraints in any of three forms:
//! 1. IFEval: `instruction_id_list` (ids) and `kwargs` (one object per id, as in
//!    IFEval's `input_data.jsonl`; `null` values count as absent, so the Hugging Face
//!    dataset's rows work too), checked by the rules;
//! 2. free text: `constraints`, a list of strings, checked by the judge;
//! 3. neither (both absent, null or empty): the judge reads the constraints from the
//!    prompt.
//!
//! A row may have both 1 and 2, and any row may carry a `rubric` (weighted items checked
//! by the rules, the judge or an endpoint: [`super::rubric`]). Lists stored as JSON text (as parquet writers often
//! store nested columns) are read as lists; a single string is one id or one
//! constraint. Every problem is an error naming the file, the row and the column.

use std::fmt;

use serde_json::{Map, Value};

use super::{ConstraintError, ConstraintSet, Mode};
use crate::data::{DataError, Table, json_type, truncate};

/// The column names asked for (`None`: the default name, if the file has it).
#[derive(Debug, Clone, Default)]
pub struct ColumnNames {
    pub prompt: String,
    pub response: Option<String>,
    pub ids: Option<String>,
    pub kwargs: Option<String>,
    pub constraints: Option<String>,
    pub rubric: Option<String>,
    /// Read no rubric, whatever the file holds.
    pub no_rubric: bool,
}

/// The columns a table's rows are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub prompt: String,
    pub response: String,
    pub ids: Option<String>,
    pub kwargs: Option<String>,
    pub constraints: Option<String>,
    pub rubric: Option<String>,
}

impl Columns {
    /// Finds the columns; a column asked for by name must exist. Errors here concern
    /// the whole file.
    pub fn resolve(table: &Table, names: &ColumnNames, mode: Mode) -> Result<Columns, DataError> {
        if table.rows.is_empty() {
            return Err(DataError::File {
                path: table.path.clone(),
                message: "has no rows".into(),
            });
        }
        table.require_column(&names.prompt)?;
        let response = match &names.response {
            Some(name) => {
                table.require_column(name)?;
                name.clone()
            }
            None => ["response", "completion"]
                .into_iter()
                .find(|c| table.has_column(c))
                .map(str::to_owned)
                .ok_or_else(|| DataError::MissingColumn {
                    path: table.path.clone(),
                    column: "response".into(),
                    found: table.columns.clone(),
                })?,
        };
        let optional =
            |asked: &Option<String>, default: &str| -> Result<Option<String>, DataError> {
                match asked {
                    Some(name) => table.require_column(name).map(|()| Some(name.clone())),
                    None => Ok(table.has_column(default).then(|| default.to_owned())),
                }
            };
        let columns = Columns {
            prompt: names.prompt.clone(),
            response,
            ids: optional(&names.ids, "instruction_id_list")?,
            kwargs: optional(&names.kwargs, "kwargs")?,
            constraints: optional(&names.constraints, "constraints")?,
            rubric: if names.no_rubric {
                None
            } else {
                optional(&names.rubric, "rubric")?
            },
        };
        if mode == Mode::Rules && columns.ids.is_none() && columns.rubric.is_none() {
            return Err(DataError::File {
                path: table.path.clone(),
                message: format!(
                    "has no `instruction_id_list` column, so there is nothing the rules can check (columns found: {}); free-text constraints and constraints read from the prompt need a judge (--judge-model, or --judge-model with --judge-url)",
                    table.columns.join(", ")
                ),
            });
        }
        Ok(columns)
    }
}

/// One row, ready to verify.
#[derive(Debug, Clone)]
pub struct RowInput {
    pub prompt: String,
    pub response: String,
    pub constraints: ConstraintSet,
    /// Which of the three forms the row's constraints take.
    pub form: Form,
}

impl RowInput {
    /// Whether the row carries a rubric.
    pub fn has_rubric(&self) -> bool {
        !self.constraints.rubric().is_empty()
    }
}

/// The form a row's constraints take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Ifeval,
    Text,
    Both,
    Prompt,
    /// A rubric and no listed constraint.
    Rubric,
}

/// How many rows take each form, and how many are bad.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FormCounts {
    pub ifeval: usize,
    pub text: usize,
    pub both: usize,
    pub prompt: usize,
    /// Rows with a rubric (whatever else they list).
    pub rubric: usize,
    pub bad: usize,
}

impl FormCounts {
    pub fn of(rows: &[Result<RowInput, DataError>]) -> FormCounts {
        let mut counts = FormCounts::default();
        for row in rows {
            match row.as_ref().map(|r| r.form) {
                Ok(Form::Ifeval) => counts.ifeval += 1,
                Ok(Form::Text) => counts.text += 1,
                Ok(Form::Both) => counts.both += 1,
                Ok(Form::Prompt) => counts.prompt += 1,
                Ok(Form::Rubric) => {}
                Err(_) => counts.bad += 1,
            }
            counts.rubric += usize::from(row.as_ref().is_ok_and(RowInput::has_rubric));
        }
        counts
    }
}

impl fmt::Display for FormCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            (self.ifeval, "with IFEval instructions"),
            (self.text, "with free-text constraints"),
            (self.both, "with both"),
            (self.prompt, "with constraints only in the prompt"),
            (self.rubric, "with a rubric"),
            (self.bad, "bad"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        f.write_str(&parts.join(", "))
    }
}

/// Reads every row; a row that cannot be verified is an error naming its file, row
/// and column.
pub fn parse_rows(
    table: &Table,
    columns: &Columns,
    mode: Mode,
) -> Vec<Result<RowInput, DataError>> {
    (0..table.rows.len())
        .map(|i| parse_row(table, i, columns, mode))
        .collect()
}

fn parse_row(
    table: &Table,
    i: usize,
    columns: &Columns,
    mode: Mode,
) -> Result<RowInput, DataError> {
    if let Some((_, message)) = table.bad.iter().find(|(row, _)| *row == i) {
        return Err(DataError::Row {
            path: table.path.clone(),
            row: i,
            message: message.clone(),
        });
    }
    let row = &table.rows[i];
    let cell = |column: &str| row.get(column).unwrap_or(&Value::Null);
    let err = |column: &str, message: String| table.cell_error(i, column, message);

    let prompt = prompt_text(cell(&columns.prompt)).map_err(|m| err(&columns.prompt, m))?;
    let response = match row.get(&columns.response) {
        Some(Value::String(s)) => s.clone(),
        None => {
            return Err(err(
                &columns.response,
                "is missing from this row: there is no response to verify".into(),
            ));
        }
        Some(Value::Null) => {
            return Err(err(
                &columns.response,
                "is null: there is no response to verify".into(),
            ));
        }
        Some(other) => {
            return Err(err(
                &columns.response,
                format!("should be text, found a {}", json_type(other)),
            ));
        }
    };

    let ids = match &columns.ids {
        Some(column) => string_list(cell(column), "instruction ids").map_err(|m| err(column, m))?,
        None => Vec::new(),
    };
    let kwargs = match (&columns.kwargs, ids.is_empty()) {
        (_, true) => Vec::new(),
        (Some(column), false) => {
            kwargs_list(cell(column), ids.len()).map_err(|m| err(column, m))?
        }
        (None, false) => vec![Map::new(); ids.len()],
    };
    let mut constraints = ConstraintSet::ifeval(Some(&prompt), &ids, &kwargs).map_err(|e| {
        let ids_column = columns.ids.as_deref().unwrap_or("instruction_id_list");
        match &e {
            ConstraintError::Rule {
                source: super::rules::RuleError::UnknownInstruction { .. },
                ..
            } => err(ids_column, e.to_string()),
            _ => match &columns.kwargs {
                Some(column) => err(column, e.to_string()),
                None => err(ids_column, format!("{e} (the file has no `kwargs` column)")),
            },
        }
    })?;
    let texts = match &columns.constraints {
        Some(column) => string_list(cell(column), "constraints").map_err(|m| err(column, m))?,
        None => Vec::new(),
    };
    for text in &texts {
        constraints.push_text(text).map_err(|e| {
            err(
                columns.constraints.as_deref().unwrap_or("constraints"),
                e.to_string(),
            )
        })?;
    }
    if let Some(column) = &columns.rubric {
        let rubric = super::rubric::Rubric::parse(cell(column), Some(&prompt))
            .map_err(|e| err(column, format!("{e} (if this column is not an rmtk rubric, name the rubric column with --rubric-column, or ignore it with --no-rubric)")))?;
        if mode == Mode::Rules
            && let Some(message) = rubric.judge_error()
        {
            return Err(err(column, message));
        }
        constraints.set_rubric(rubric);
    }
    let form = match (ids.is_empty(), texts.is_empty()) {
        (false, true) => Form::Ifeval,
        (true, false) => Form::Text,
        (false, false) => Form::Both,
        (true, true) if !constraints.rubric().is_empty() => Form::Rubric,
        (true, true) => Form::Prompt,
    };
    if mode == Mode::Rules {
        match form {
            Form::Text | Form::Both => {
                return Err(err(
                    columns.constraints.as_deref().unwrap_or("constraints"),
                    "free-text constraints need a judge (--judge-model, with --judge-url for a remote one), or --mode hybrid".into(),
                ));
            }
            Form::Prompt => {
                return Err(DataError::Row {
                    path: table.path.clone(),
                    row: i,
                    message: "lists no constraints; reading them from the prompt needs a judge (--judge-model, with --judge-url for a remote one)".into(),
                });
            }
            Form::Ifeval | Form::Rubric => {}
        }
    }
    Ok(RowInput {
        prompt,
        response,
        constraints,
        form,
    })
}

/// A prompt: text, or a conversation (a lone user turn is its text; longer ones are
/// written out turn by turn).
fn prompt_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Err("is null".into()),
        Value::Array(_) => {
            Ok(crate::data::Prompt::Chat(crate::data::parse_messages(value)?).to_text())
        }
        other => Err(format!(
            "should be text or a list of messages, found a {}",
            json_type(other)
        )),
    }
}

/// A value that may be stored as JSON text: parsed when it looks like a list or an
/// object.
fn decode_json_text(value: &Value) -> Result<Option<Value>, String> {
    match value {
        Value::String(s) if s.trim_start().starts_with(['[', '{']) => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| format!("looks like JSON but is not valid JSON ({e})")),
        _ => Ok(None),
    }
}

/// A list of strings (null: empty; one string: a list of one).
pub(crate) fn string_list(value: &Value, what: &str) -> Result<Vec<String>, String> {
    let decoded = decode_json_text(value)?;
    match decoded.as_ref().unwrap_or(value) {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(k, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "should be a list of {what} as text; entry {k} is a {}: {}",
                    json_type(other),
                    truncate(&other.to_string(), 60)
                )),
            })
            .collect(),
        other => Err(format!(
            "should be a list of {what} as text, found a {}",
            json_type(other)
        )),
    }
}

/// The kwargs objects of `n` instructions (null: all empty; null entries: empty).
pub(crate) fn kwargs_list(value: &Value, n: usize) -> Result<Vec<Map<String, Value>>, String> {
    let decoded = decode_json_text(value)?;
    let list = match decoded.as_ref().unwrap_or(value) {
        Value::Null => return Ok(vec![Map::new(); n]),
        Value::Array(items) => items,
        other => {
            return Err(format!(
                "should be a list of objects, one per instruction id, found a {}: {}",
                json_type(other),
                truncate(&other.to_string(), 60)
            ));
        }
    };
    if list.len() != n {
        return Err(format!(
            "has {} objects but there are {n} instruction ids; they go in pairs",
            list.len()
        ));
    }
    list.iter()
        .enumerate()
        .map(|(k, item)| match item {
            Value::Object(map) => Ok(map.clone()),
            Value::Null => Ok(Map::new()),
            other => Err(format!(
                "entry {k} should be an object of arguments, found a {}: {}",
                json_type(other),
                truncate(&other.to_string(), 60)
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(rows: Vec<Value>) -> Table {
        let mut t = Table {
            path: "rows.jsonl".into(),
            ..Table::default()
        };
        for row in rows {
            let obj = row.as_object().cloned().unwrap();
            for k in obj.keys() {
                if !t.columns.contains(k) {
                    t.columns.push(k.clone());
                    t.types.push("x".into());
                }
            }
            t.rows.push(obj);
        }
        t
    }

    fn parse(t: &Table, mode: Mode) -> Vec<Result<RowInput, String>> {
        let cols = Columns::resolve(
            t,
            &ColumnNames {
                prompt: "prompt".into(),
                ..Default::default()
            },
            mode,
        )
        .unwrap();
        parse_rows(t, &cols, mode)
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn the_three_forms_are_detected() {
        let t = table(vec![
            json!({"prompt": "p", "response": "r", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}], "constraints": null}),
            json!({"prompt": "p", "response": "r", "instruction_id_list": null, "kwargs": null, "constraints": ["Rhymes."]}),
            json!({"prompt": "p", "response": "r", "instruction_id_list": [], "kwargs": [], "constraints": []}),
            json!({"prompt": "p", "response": "r", "instruction_id_list": "[\"detectable_format:title\"]", "kwargs": "[{}]", "constraints": "Is short."}),
        ]);
        let rows = parse(&t, Mode::Hybrid);
        let forms: Vec<Form> = rows.iter().map(|r| r.as_ref().unwrap().form).collect();
        assert_eq!(forms, [Form::Ifeval, Form::Text, Form::Prompt, Form::Both]);
        let both = rows[3].as_ref().unwrap();
        let labels: Vec<String> = both
            .constraints
            .iter()
            .map(|c| c.label().into_owned())
            .collect();
        assert_eq!(labels, ["detectable_format:title", "Is short."]);
        let counts = FormCounts::of(&parse_rows(
            &t,
            &Columns::resolve(
                &t,
                &ColumnNames {
                    prompt: "prompt".into(),
                    ..Default::default()
                },
                Mode::Hybrid,
            )
            .unwrap(),
            Mode::Hybrid,
        ));
        assert_eq!(
            counts.to_string(),
            "1 with IFEval instructions, 1 with free-text constraints, 1 with both, 1 with constraints only in the prompt"
        );
        // The rules alone cannot check the last three.
        let rules = parse(&t, Mode::Rules);
        assert!(rules[0].is_ok());
        assert!(
            rules[1].as_ref().unwrap_err().contains("need a judge"),
            "{:?}",
            rules[1]
        );
        assert!(
            rules[2]
                .as_ref()
                .unwrap_err()
                .contains("lists no constraints"),
            "{:?}",
            rules[2]
        );
    }

    #[test]
    fn bad_cells_name_the_row_and_column() {
        let t = table(vec![
            json!({"prompt": "p", "response": null, "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}),
            json!({"prompt": "p", "response": 3, "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}),
            json!({"prompt": null, "response": "r", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}),
            json!({"prompt": "p", "response": "r", "instruction_id_list": ["length_constraints:number_words"], "kwargs": [{"num_words": "many", "relation": "at least"}]}),
            json!({"prompt": "p", "response": "r", "instruction_id_list": ["punctuation:no_comma", "detectable_format:title"], "kwargs": [{}]}),
            json!({"prompt": "p", "response": "r", "instruction_id_list": ["keywords:nope"], "kwargs": [{}]}),
            json!({"prompt": "p", "response": "r", "instruction_id_list": ["punctuation:no_comma"], "kwargs": "[{]"}),
            json!({"prompt": "p", "response": "r", "instruction_id_list": [3], "kwargs": [{}]}),
            json!({"prompt": "p", "response": "", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [5]}),
        ]);
        let rows = parse(&t, Mode::Rules);
        let e = |i: usize| rows[i].as_ref().unwrap_err().clone();
        assert_eq!(
            e(0),
            "rows.jsonl: row 0, column `response`: is null: there is no response to verify"
        );
        assert!(
            e(1).contains("row 1, column `response`: should be text, found a number"),
            "{}",
            e(1)
        );
        assert!(e(2).contains("row 2, column `prompt`: is null"), "{}", e(2));
        assert!(e(3).contains("row 3, column `kwargs`: instruction 0 of the list: length_constraints:number_words: \"num_words\" must be an integer >= 0, got \"many\""), "{}", e(3));
        assert!(
            e(4).contains("row 4, column `kwargs`: has 1 objects but there are 2 instruction ids"),
            "{}",
            e(4)
        );
        // Rows may mix IFEval and IFBench ids: the error lists both.
        assert!(e(5).contains("row 5, column `instruction_id_list`: instruction 0 of the list: unknown instruction id \"keywords:nope\"; the IFEval and IFBench ids are: keywords:existence"), "{}", e(5));
        assert!(e(5).contains("count:word_count_range"), "{}", e(5));
        assert!(
            e(6).contains("row 6, column `kwargs`: looks like JSON but is not valid JSON"),
            "{}",
            e(6)
        );
        assert!(e(7).contains("row 7, column `instruction_id_list`: should be a list of instruction ids as text; entry 0 is a number"), "{}", e(7));
        assert!(
            e(8).contains("row 8, column `kwargs`: entry 0 should be an object"),
            "{}",
            e(8)
        );
    }

    #[test]
    fn unreadable_rows_and_missing_columns() {
        let mut t = table(vec![
            json!({"prompt": "p", "completion": "r", "instruction_id_list": ["punctuation:no_comma"]}),
            json!({}),
        ]);
        t.bad.push((
            1,
            "line 2 is not valid UTF-8 (invalid utf-8 sequence)".into(),
        ));
        // `completion` stands in for `response`; without `kwargs`, instructions take none.
        let rows = parse(&t, Mode::Rules);
        assert_eq!(rows[0].as_ref().unwrap().response, "r");
        assert_eq!(
            rows[1].as_ref().unwrap_err(),
            "rows.jsonl: row 1: line 2 is not valid UTF-8 (invalid utf-8 sequence)"
        );
        let t = table(vec![json!({"prompt": "p", "answer": "r"})]);
        let err = Columns::resolve(
            &t,
            &ColumnNames {
                prompt: "prompt".into(),
                ..Default::default()
            },
            Mode::Hybrid,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no column `response`"), "{err}");
        let t = table(vec![json!({"prompt": "p", "response": "r"})]);
        let err = Columns::resolve(
            &t,
            &ColumnNames {
                prompt: "prompt".into(),
                ..Default::default()
            },
            Mode::Rules,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("nothing the rules can check"), "{err}");
        let err = Columns::resolve(
            &t,
            &ColumnNames {
                prompt: "prompt".into(),
                constraints: Some("rules".into()),
                ..Default::default()
            },
            Mode::Hybrid,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no column `rules`"), "{err}");
    }

    #[test]
    fn conversations_and_null_kwargs() {
        let t = table(vec![
            json!({"prompt": [{"role": "user", "content": "Say hi"}], "response": "hi",
                   "instruction_id_list": ["combination:repeat_prompt"], "kwargs": [{"prompt_to_repeat": null}]}),
            json!({"prompt": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}], "response": "hi",
                   "instruction_id_list": null, "kwargs": null}),
        ]);
        let rows = parse(&t, Mode::Hybrid);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.prompt, "Say hi");
        // The prompt stands in for a missing prompt_to_repeat.
        let Some(super::super::Constraint::Rule(repeat)) = first.constraints.iter().next() else {
            panic!("an IFEval instruction")
        };
        assert!(repeat.check("Say hi\nHi!").pass);
        assert!(!repeat.check("Hi!").pass);
        assert_eq!(
            rows[1].as_ref().unwrap().prompt,
            "system: Be brief\n\nuser: Hi"
        );
    }
}
