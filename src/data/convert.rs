//! `rmtk data convert`: preference files in the layouts people bring, to rmtk's own
//! (the layout `train-rm` reads without flags):
//! - conversations: `prompt` (a list of `{role, content}`, system message included),
//!   `chosen` and `rejected` (each a list holding the assistant turn);
//! - plain text (TRL's text layout): `prompt`, `chosen`, `rejected` strings.
//!
//! Layouts read (detected from the columns, or named with `--from`):
//! - `sharegpt`: LLaMA-Factory's ranking data in ShareGPT form: `conversations` (a list
//!   of `{from, value}`: human, gpt, system, or `{role, content}`), `chosen` and
//!   `rejected` (`{from, value}` or a text), an optional `system` text;
//! - `alpaca`: LLaMA-Factory's ranking data in Alpaca form: `instruction`, optional
//!   `input` (appended on a new line), `system`, `history` (`[[user, assistant], ...]`),
//!   `chosen`, `rejected` texts;
//! - `trl`: TRL's text and conversational layouts, explicit or implicit prompt (what
//!   `train-rm` reads: the prompt of an implicit conversation is the shared prefix);
//! - `ultrafeedback`: UltraFeedback-binarized rows: `prompt` text, `chosen` and
//!   `rejected` whole conversations (user turn included); `score_chosen` and
//!   `score_rejected` are kept;
//! - `openai`: OpenAI's preference fine-tuning JSONL: `input.messages`,
//!   `preferred_output` and `non_preferred_output` (lists of assistant messages).
//!
//! Other columns holding a text, a number or a boolean (ids, subsets, scores) are kept.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::prefs::{self, Content, Layout, PrefColumns, PrefPair};
use super::{DataError, Row, Table, json_type, truncate};
use crate::models::Message;

/// The layouts `convert` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceLayout {
    /// From the columns.
    Auto,
    Sharegpt,
    Alpaca,
    Trl,
    Ultrafeedback,
    Openai,
}

impl SourceLayout {
    pub fn name(self) -> &'static str {
        match self {
            SourceLayout::Auto => "auto",
            SourceLayout::Sharegpt => "ShareGPT (LLaMA-Factory)",
            SourceLayout::Alpaca => "Alpaca (LLaMA-Factory)",
            SourceLayout::Trl => "TRL",
            SourceLayout::Ultrafeedback => "UltraFeedback-binarized",
            SourceLayout::Openai => "OpenAI preference JSONL",
        }
    }
}

/// The layout a table's columns say it is in.
pub fn detect(table: &Table) -> SourceLayout {
    let has = |c: &str| table.has_column(c);
    if has("preferred_output") && has("non_preferred_output") {
        SourceLayout::Openai
    } else if has("conversations") {
        SourceLayout::Sharegpt
    } else if has("instruction") {
        SourceLayout::Alpaca
    } else if has("score_chosen") && has("score_rejected") {
        SourceLayout::Ultrafeedback
    } else {
        SourceLayout::Trl
    }
}

/// What converting one file gave.
#[derive(Debug)]
pub struct Converted {
    pub layout: SourceLayout,
    pub rows: Vec<Row>,
    /// Rows skipped with `--skip-bad-rows`.
    pub skipped: Vec<DataError>,
}

/// Convert a file's rows to rmtk's layout; the first bad row is an error naming file, row
/// and column unless `skip_bad_rows`.
pub fn convert_file(
    path: &Path,
    from: SourceLayout,
    skip_bad_rows: bool,
) -> Result<Converted, DataError> {
    let table = super::read_table(path)?;
    let layout = match from {
        SourceLayout::Auto => detect(&table),
        l => l,
    };
    let consumed: &[&str] = match layout {
        SourceLayout::Sharegpt => &["conversations", "chosen", "rejected", "system"],
        SourceLayout::Alpaca => &[
            "instruction",
            "input",
            "system",
            "history",
            "chosen",
            "rejected",
        ],
        SourceLayout::Openai => &["input", "preferred_output", "non_preferred_output"],
        SourceLayout::Ultrafeedback => &["prompt", "chosen", "rejected", "messages"],
        SourceLayout::Trl | SourceLayout::Auto => &["prompt", "chosen", "rejected", "margin"],
    };
    let mut out = Converted {
        layout,
        rows: Vec::with_capacity(table.rows.len()),
        skipped: Vec::new(),
    };
    let pairs: Vec<Result<(usize, PrefPair), DataError>> = match layout {
        SourceLayout::Trl | SourceLayout::Auto => {
            // train-rm's own reader: explicit or implicit prompts, text or messages.
            let mut read = prefs::PairsRead::default();
            prefs::read_table_pairs(
                &table,
                &PrefColumns::default(),
                Layout::Auto,
                true,
                &mut read,
            )?;
            let mut all: Vec<Result<(usize, PrefPair), DataError>> = read
                .pairs
                .into_iter()
                .map(|p| Ok((p.source.row, p)))
                .chain(read.skipped.into_iter().map(Err))
                .collect();
            all.sort_by_key(|r| match r {
                Ok((row, _)) => *row,
                Err(e) => e.row().unwrap_or(0),
            });
            all
        }
        _ => {
            let required: &[&str] = match layout {
                SourceLayout::Sharegpt => &["conversations", "chosen", "rejected"],
                SourceLayout::Alpaca => &["instruction", "chosen", "rejected"],
                SourceLayout::Openai => &["input", "preferred_output", "non_preferred_output"],
                _ => &["prompt", "chosen", "rejected"],
            };
            for c in required {
                table.require_column(c)?;
            }
            (0..table.rows.len())
                .map(|row| {
                    if let Some((_, message)) = table.bad.iter().find(|(r, _)| *r == row) {
                        return Err(DataError::Row {
                            path: table.path.clone(),
                            row,
                            message: message.clone(),
                        });
                    }
                    let pair = match layout {
                        SourceLayout::Sharegpt => sharegpt_row(&table, row),
                        SourceLayout::Alpaca => alpaca_row(&table, row),
                        SourceLayout::Openai => openai_row(&table, row),
                        _ => ultrafeedback_row(&table, row),
                    }?;
                    Ok((row, pair))
                })
                .collect()
        }
    };
    for result in pairs {
        match result {
            Ok((row, pair)) => {
                let mut obj = pair_row(&pair);
                // Scalar columns the layout does not consume travel along.
                for (k, v) in &table.rows[row] {
                    if !consumed.contains(&k.as_str())
                        && !obj.contains_key(k)
                        && matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
                    {
                        obj.insert(k.clone(), v.clone());
                    }
                }
                out.rows.push(obj);
            }
            Err(err) if skip_bad_rows => out.skipped.push(err),
            Err(err) => return Err(err),
        }
    }
    Ok(out)
}

/// A pair as an rmtk row: messages as lists of `{role, content}`, texts as texts.
pub fn pair_row(pair: &PrefPair) -> Row {
    let cell = |c: &Content| match c {
        Content::Text(t) => Value::String(t.clone()),
        Content::Chat(m) => messages_json(m),
        Content::Tokens(ids) => json!(ids),
    };
    let mut row = Map::new();
    if let Content::Tokens(_) = pair.chosen {
        row.insert("chosen_ids".into(), cell(&pair.chosen));
        row.insert("rejected_ids".into(), cell(&pair.rejected));
    } else {
        if let Some(p) = &pair.prompt {
            row.insert("prompt".into(), cell(p));
        }
        row.insert("chosen".into(), cell(&pair.chosen));
        row.insert("rejected".into(), cell(&pair.rejected));
    }
    if let Some(m) = pair.margin {
        row.insert("margin".into(), json!(m));
    }
    row
}

fn messages_json(m: &[Message]) -> Value {
    Value::Array(
        m.iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect(),
    )
}

fn source(table: &Table, row: usize) -> prefs::Source {
    prefs::Source {
        path: std::sync::Arc::new(table.path.clone()),
        row,
    }
}

/// A ShareGPT role as a chat role.
fn role(from: &str) -> Option<&'static str> {
    Some(match from {
        "human" | "user" => "user",
        "gpt" | "assistant" | "bing" | "chatgpt" | "bard" => "assistant",
        "system" => "system",
        "observation" | "tool" | "function" => "tool",
        "function_call" => "assistant",
        _ => return None,
    })
}

/// One ShareGPT message: `{from, value}` or `{role, content}`.
fn sharegpt_message(
    table: &Table,
    row: usize,
    column: &str,
    v: &Value,
) -> Result<Message, DataError> {
    let from = v
        .get("from")
        .or_else(|| v.get("role"))
        .and_then(Value::as_str);
    let value = v
        .get("value")
        .or_else(|| v.get("content"))
        .and_then(Value::as_str);
    match (from, value) {
        (Some(f), Some(text)) => match role(f) {
            Some(r) => Ok(Message::new(r, text)),
            None => Err(table.cell_error(
                row,
                column,
                format!("unknown speaker `{f}` (human, gpt, system, observation, function_call)"),
            )),
        },
        _ => Err(table.cell_error(
            row,
            column,
            format!(
                "should hold {{from, value}} messages, found {}",
                truncate(&v.to_string(), 80)
            ),
        )),
    }
}

/// An optional text cell (absent, null or empty: none).
fn optional_text(table: &Table, row: usize, column: &str) -> Result<Option<String>, DataError> {
    match table.rows[row].get(column) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(table.cell_error(
            row,
            column,
            format!("should be text, found a {}", json_type(other)),
        )),
    }
}

/// A response cell: a message object, a text, or a list of messages.
fn response(table: &Table, row: usize, column: &str) -> Result<Content, DataError> {
    let v = table.rows[row].get(column).unwrap_or(&Value::Null);
    let messages = match v {
        Value::String(s) if !s.trim().is_empty() => {
            return Ok(Content::Chat(vec![Message::new("assistant", s)]));
        }
        Value::Object(_) => vec![sharegpt_message(table, row, column, v)?],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|m| sharegpt_message(table, row, column, m))
            .collect::<Result<_, _>>()?,
        Value::Null => return Err(table.cell_error(row, column, "is null")),
        other => {
            return Err(table.cell_error(
                row,
                column,
                format!(
                    "should be a message, a text or a list of messages, found {}",
                    truncate(&other.to_string(), 60)
                ),
            ));
        }
    };
    if messages.iter().all(|m| m.content.trim().is_empty()) {
        return Err(table.cell_error(row, column, "has no text"));
    }
    Ok(Content::Chat(messages))
}

fn finish(
    table: &Table,
    row: usize,
    prompt: Vec<Message>,
    chosen: Content,
    rejected: Content,
    rejected_column: &str,
) -> Result<PrefPair, DataError> {
    if prompt.is_empty() {
        return Err(DataError::Row {
            path: table.path.clone(),
            row,
            message: "has no prompt".into(),
        });
    }
    if chosen == rejected {
        return Err(table.cell_error(row, rejected_column, "is identical to the chosen response"));
    }
    Ok(PrefPair {
        prompt: Some(Content::Chat(prompt)),
        chosen,
        rejected,
        margin: None,
        group: None,
        source: source(table, row),
    })
}

fn sharegpt_row(table: &Table, row: usize) -> Result<PrefPair, DataError> {
    let mut prompt = Vec::new();
    if let Some(system) = optional_text(table, row, "system")? {
        prompt.push(Message::new("system", &system));
    }
    match table.rows[row].get("conversations") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for m in items {
                prompt.push(sharegpt_message(table, row, "conversations", m)?);
            }
        }
        Some(Value::Array(_)) => {
            return Err(table.cell_error(row, "conversations", "is an empty list"));
        }
        None | Some(Value::Null) => return Err(table.cell_error(row, "conversations", "is null")),
        Some(other) => {
            return Err(table.cell_error(
                row,
                "conversations",
                format!("should be a list of messages, found a {}", json_type(other)),
            ));
        }
    }
    let chosen = response(table, row, "chosen")?;
    let rejected = response(table, row, "rejected")?;
    finish(table, row, prompt, chosen, rejected, "rejected")
}

fn alpaca_row(table: &Table, row: usize) -> Result<PrefPair, DataError> {
    let mut prompt = Vec::new();
    if let Some(system) = optional_text(table, row, "system")? {
        prompt.push(Message::new("system", &system));
    }
    match table.rows[row].get("history") {
        None | Some(Value::Null) => {}
        Some(Value::Array(turns)) => {
            for turn in turns {
                match turn.as_array().map(Vec::as_slice) {
                    Some([Value::String(q), Value::String(a)]) => {
                        prompt.push(Message::new("user", q));
                        prompt.push(Message::new("assistant", a));
                    }
                    _ => {
                        return Err(table.cell_error(
                            row,
                            "history",
                            format!(
                                "should be a list of [user, assistant] text pairs, found {}",
                                truncate(&turn.to_string(), 60)
                            ),
                        ));
                    }
                }
            }
        }
        Some(other) => {
            return Err(table.cell_error(
                row,
                "history",
                format!(
                    "should be a list of [user, assistant] pairs, found a {}",
                    json_type(other)
                ),
            ));
        }
    }
    let mut user = super::text_cell(table, row, "instruction")?;
    if let Some(input) = optional_text(table, row, "input")? {
        user.push('\n');
        user.push_str(&input);
    }
    prompt.push(Message::new("user", &user));
    let chosen = Content::Chat(vec![Message::new(
        "assistant",
        &super::text_cell(table, row, "chosen")?,
    )]);
    let rejected = Content::Chat(vec![Message::new(
        "assistant",
        &super::text_cell(table, row, "rejected")?,
    )]);
    finish(table, row, prompt, chosen, rejected, "rejected")
}

fn openai_row(table: &Table, row: usize) -> Result<PrefPair, DataError> {
    let input = table.rows[row].get("input").unwrap_or(&Value::Null);
    let messages = input.get("messages").ok_or_else(|| {
        table.cell_error(
            row,
            "input",
            format!(
                "should be an object with `messages`, found {}",
                truncate(&input.to_string(), 60)
            ),
        )
    })?;
    let prompt = super::parse_messages(messages)
        .map_err(|m| table.cell_error(row, "input", format!("messages: {m}")))?;
    let side = |column: &str| -> Result<Content, DataError> {
        let v = table.rows[row].get(column).unwrap_or(&Value::Null);
        let m = super::parse_messages(v).map_err(|m| table.cell_error(row, column, m))?;
        Ok(Content::Chat(m))
    };
    finish(
        table,
        row,
        prompt,
        side("preferred_output")?,
        side("non_preferred_output")?,
        "non_preferred_output",
    )
}

fn ultrafeedback_row(table: &Table, row: usize) -> Result<PrefPair, DataError> {
    let chosen = super::messages_cell(table, row, "chosen")?;
    let rejected = super::messages_cell(table, row, "rejected")?;
    let shared = chosen
        .iter()
        .zip(&rejected)
        .take_while(|(a, b)| a == b)
        .count();
    let prompt = if shared > 0 {
        chosen[..shared].to_vec()
    } else {
        // Responses without the user turn: the prompt column is it.
        vec![Message::new(
            "user",
            &super::text_cell(table, row, "prompt")?,
        )]
    };
    let (c, r) = (chosen[shared..].to_vec(), rejected[shared..].to_vec());
    if c.is_empty() || r.is_empty() {
        return Err(table.cell_error(
            row,
            "rejected",
            "one of `chosen` and `rejected` is a prefix of the other: no response to compare",
        ));
    }
    finish(
        table,
        row,
        prompt,
        Content::Chat(c),
        Content::Chat(r),
        "rejected",
    )
}
