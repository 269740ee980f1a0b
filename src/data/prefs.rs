//! Preference pairs: the layouts TRL users bring, read into [`PrefPair`]s, and the
//! token sequences a reward model sees ([`SeqEncoder`]).
//!
//! Layouts, detected per file from the columns and the cell types (override with
//! `--layout` and the `--*-column` flags):
//! 1. text: `prompt`, `chosen`, `rejected` strings (the prompt may be absent: it is then
//!    part of `chosen` and `rejected`, TRL's "implicit prompt");
//! 2. conversational: `chosen` and `rejected` lists of `{role, content}` messages (the
//!    prompt is their longest shared prefix), or `prompt` as messages plus
//!    `chosen`/`rejected` as the assistant turn (a string or a list of messages);
//! 3. pre-tokenized: `chosen_ids`, `rejected_ids` lists of token ids (TRL's processed
//!    datasets), used as they are;
//!
//! each with an optional float `margin` column.
//!
//! How a pair becomes tokens ([`SeqEncoder`]), the same for training, scoring and
//! evaluation:
//! - decoders: a conversation is rendered with the model's chat template (no generation
//!   prompt) and tokenized without extra special tokens, as TRL's
//!   `apply_chat_template(tokenize=True)`; plain text is `prompt + response`, with the
//!   tokenizer's EOS appended unless it is already there, tokenized with the
//!   tokenizer's own special tokens (TRL's rule);
//! - encoders: the pair `(prompt, response)` as two segments, `[CLS] prompt [SEP]
//!   response [SEP]` with token types 0 and 1, as `tokenizer(prompt, response)`;
//!   messages are rendered as plain text (one message: its content; several: one
//!   `role: content` line each), since encoders have no chat template.
//!
//! Sequences longer than `--max-length` are dropped (`filter`, TRL's rule: a pair goes
//! if either side is too long) or cut. `truncate` keeps what the reward judges, the
//! responses: the prompt gives up tokens, once for both sides of a pair (so it fits the
//! longer response): whole oldest turns first (the conversation still opens with a user
//! turn), then the final user turn from its left, the system message kept; only a
//! response longer than the limit by itself loses the prompt (an empty user turn stays,
//! for templates that want one) and its own end. `truncate-start`
//! keeps the first tokens (decoders; encoders shorten the longer segment first and keep
//! `[CLS]`/`[SEP]`), as pre-tokenized rows always do: they have no prompt/response
//! boundary.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DataError, Table, edit_distance, json_type, parse_messages, read_table, truncate};
use crate::models::{Family, Message, Tokenizer};

/// A prompt or a response as the file gives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Content {
    Text(String),
    Chat(Vec<Message>),
    /// Token ids from a pre-tokenized file (`chosen_ids`).
    Tokens(Vec<u32>),
}

impl Content {
    /// As messages, a text becoming one message of `role`.
    fn messages(&self, role: &str) -> Vec<Message> {
        match self {
            Content::Text(t) => vec![Message::new(role, t)],
            Content::Chat(m) => m.clone(),
            Content::Tokens(_) => Vec::new(),
        }
    }

    /// As plain text: the text, or the messages rendered by [`render_plain`].
    fn plain(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Chat(m) => render_plain(m),
            Content::Tokens(_) => String::new(),
        }
    }

    /// The same kind of content with nothing in it.
    fn emptied(&self) -> Content {
        match self {
            Content::Text(_) => Content::Text(String::new()),
            Content::Chat(_) => Content::Chat(Vec::new()),
            Content::Tokens(_) => Content::Tokens(Vec::new()),
        }
    }

    fn is_chat(&self) -> bool {
        matches!(self, Content::Chat(_))
    }
}

impl Content {
    /// Its length in tokens of `tok` (a conversation: its messages' contents), what the
    /// length-bias report measures a response by.
    pub fn token_count(&self, tok: &Tokenizer) -> Result<usize, String> {
        let count = |t: &str| {
            tok.encode(t, false)
                .map(|ids| ids.len())
                .map_err(|e| e.to_string())
        };
        match self {
            Content::Text(t) => count(t),
            Content::Chat(m) => m.iter().map(|m| count(&m.content)).sum(),
            Content::Tokens(ids) => Ok(ids.len()),
        }
    }
}

/// Messages as plain text for models without a chat template: one message is its
/// content; several are `role: content` lines.
pub fn render_plain(messages: &[Message]) -> String {
    match messages {
        [one] => one.content.clone(),
        _ => messages
            .iter()
            .map(|m| format!("{}: {}", m.role, m.content))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Where a row came from, for messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub path: Arc<PathBuf>,
    pub row: usize,
}

impl Source {
    pub fn error(&self, message: impl Into<String>) -> DataError {
        DataError::Row {
            path: self.path.as_ref().clone(),
            row: self.row,
            message: message.into(),
        }
    }
}

/// One preference pair.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefPair {
    /// `None`: no prompt, or one already inside `chosen` and `rejected`.
    pub prompt: Option<Content>,
    pub chosen: Content,
    pub rejected: Content,
    pub margin: Option<f64>,
    /// The value of the `--by` column, if one was asked for.
    pub group: Option<String>,
    pub source: Source,
}

/// How cells are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// From each cell's type: text is text, a list is messages.
    #[default]
    Auto,
    /// Every cell must be text.
    Text,
    /// Conversations: a text prompt becomes a user message, a text response an
    /// assistant message.
    Chat,
}

/// Column names; `None` takes the usual name if the file has it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrefColumns {
    pub prompt: Option<String>,
    pub chosen: Option<String>,
    pub rejected: Option<String>,
    pub margin: Option<String>,
    /// A column to group pairs by (`eval-rm --by`): each pair keeps its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// What reading preference files produced.
#[derive(Debug, Default)]
pub struct PairsRead {
    pub pairs: Vec<PrefPair>,
    /// Rows skipped with `--skip-bad-rows`, and why.
    pub skipped: Vec<DataError>,
    /// One line per file: rows, layout, columns used.
    pub notes: Vec<String>,
}

/// Expand paths that contain `*` or `?` in their file name (sorted); others are kept
/// as given. A pattern that matches nothing is an error.
pub fn expand_paths(specs: &[String]) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    for spec in specs {
        if !spec.contains(['*', '?']) {
            out.push(PathBuf::from(spec));
            continue;
        }
        let path = Path::new(spec);
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let pattern = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if dir.to_string_lossy().contains(['*', '?']) {
            return Err(DataError::File {
                path: path.to_path_buf(),
                message: "wildcards are supported in the file name only".into(),
            });
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| DataError::File {
                path: dir.to_path_buf(),
                message: e.to_string(),
            })?
            .flatten()
            .filter(|e| glob_match(&pattern, &e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        if found.is_empty() {
            return Err(DataError::File {
                path: path.to_path_buf(),
                message: "no file matches this pattern".into(),
            });
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Read preference pairs from parquet or JSONL files. The first bad row is an error
/// naming file, row and column unless `skip_bad_rows`, which counts and skips it.
pub fn read_pairs(
    paths: &[PathBuf],
    columns: &PrefColumns,
    layout: Layout,
    skip_bad_rows: bool,
) -> Result<PairsRead, DataError> {
    let mut out = PairsRead::default();
    for path in paths {
        let table = read_table(path)?;
        read_table_pairs(&table, columns, layout, skip_bad_rows, &mut out)?;
    }
    Ok(out)
}

/// The columns one file uses.
#[derive(Debug)]
struct Resolved {
    prompt: Option<String>,
    chosen: String,
    rejected: String,
    margin: Option<String>,
    group: Option<String>,
    tokens: bool,
}

fn resolve_columns(table: &Table, c: &PrefColumns) -> Result<Resolved, DataError> {
    let pretokenized = c.chosen.is_none()
        && !table.has_column("chosen")
        && table.has_column("chosen_ids")
        && table.has_column("rejected_ids");
    let (chosen, rejected) = if pretokenized {
        ("chosen_ids".to_string(), "rejected_ids".to_string())
    } else {
        (
            c.chosen.clone().unwrap_or_else(|| "chosen".into()),
            c.rejected.clone().unwrap_or_else(|| "rejected".into()),
        )
    };
    table.require_column(&chosen)?;
    table.require_column(&rejected)?;
    let prompt = match &c.prompt {
        Some(p) => {
            table.require_column(p)?;
            Some(p.clone())
        }
        None if table.has_column("prompt") => Some("prompt".into()),
        None => {
            // No prompt column is fine (implicit prompt), but a near miss is a typo.
            let near_miss = table.columns.iter().any(|col| {
                let d = edit_distance("prompt", &col.to_lowercase());
                d > 0 && d <= 2
            });
            if near_miss {
                return Err(DataError::MissingColumn {
                    path: table.path.clone(),
                    column: "prompt".into(),
                    found: table.columns.clone(),
                });
            }
            None
        }
    };
    if pretokenized && prompt.is_some() {
        return Err(DataError::File {
            path: table.path.clone(),
            message: "a pre-tokenized file (`chosen_ids`, `rejected_ids`) cannot have a `prompt` column: the ids must hold the whole sequence".into(),
        });
    }
    let margin = match &c.margin {
        Some(m) => {
            table.require_column(m)?;
            Some(m.clone())
        }
        None => table.has_column("margin").then(|| "margin".to_string()),
    };
    if let Some(g) = &c.group {
        table.require_column(g)?;
    }
    Ok(Resolved {
        prompt,
        chosen,
        rejected,
        margin,
        group: c.group.clone(),
        tokens: pretokenized,
    })
}

pub(crate) fn read_table_pairs(
    table: &Table,
    columns: &PrefColumns,
    layout: Layout,
    skip: bool,
    out: &mut PairsRead,
) -> Result<(), DataError> {
    let cols = resolve_columns(table, columns)?;
    let path = Arc::new(table.path.clone());
    let bad_rows: std::collections::HashMap<usize, &String> =
        table.bad.iter().map(|(r, m)| (*r, m)).collect();
    let before = out.pairs.len();
    let skipped_before = out.skipped.len();
    let mut kinds = (0usize, 0usize, 0usize); // text, chat, tokens
    for row in 0..table.rows.len() {
        let result = match bad_rows.get(&row) {
            Some(message) => Err(DataError::Row {
                path: table.path.clone(),
                row,
                message: (*message).clone(),
            }),
            None => pair_from_row(table, row, &cols, layout, &path),
        };
        match result {
            Ok(pair) => {
                match (&pair.chosen, &pair.prompt) {
                    (Content::Tokens(_), _) => kinds.2 += 1,
                    (Content::Chat(_), _) | (_, Some(Content::Chat(_))) => kinds.1 += 1,
                    _ => kinds.0 += 1,
                }
                out.pairs.push(pair);
            }
            Err(err) if skip => out.skipped.push(err),
            Err(err) => return Err(err),
        }
    }
    let layout_desc = match kinds {
        (_, 0, 0) => "text",
        (0, _, 0) => "conversational",
        (0, 0, _) => "pre-tokenized",
        _ => "mixed text and conversational",
    };
    let mut note = format!(
        "{}: {} pairs ({layout_desc}; columns {}{}, {}{})",
        table.path.display(),
        out.pairs.len() - before,
        cols.prompt
            .as_ref()
            .map(|p| format!("{p}, "))
            .unwrap_or_else(|| "no prompt, ".into()),
        cols.chosen,
        cols.rejected,
        cols.margin
            .as_ref()
            .map(|m| format!("; margins from `{m}`"))
            .unwrap_or_default(),
    );
    let skipped = out.skipped.len() - skipped_before;
    if skipped > 0 {
        note.push_str(&format!("; {skipped} bad rows skipped"));
    }
    out.notes.push(note);
    Ok(())
}

fn pair_from_row(
    table: &Table,
    row: usize,
    cols: &Resolved,
    layout: Layout,
    path: &Arc<PathBuf>,
) -> Result<PrefPair, DataError> {
    let source = Source {
        path: path.clone(),
        row,
    };
    if cols.tokens {
        let chosen = tokens_cell(table, row, &cols.chosen)?;
        let rejected = tokens_cell(table, row, &cols.rejected)?;
        if chosen == rejected {
            return Err(table.cell_error(
                row,
                &cols.rejected,
                format!("is identical to `{}`", cols.chosen),
            ));
        }
        return Ok(PrefPair {
            prompt: None,
            chosen: Content::Tokens(chosen),
            rejected: Content::Tokens(rejected),
            margin: margin_cell(table, row, cols.margin.as_deref())?,
            group: group_cell(table, row, cols.group.as_deref())?,
            source,
        });
    }
    let prompt = match &cols.prompt {
        Some(p) => Some(content_cell(table, row, p, layout, "user")?),
        None => None,
    };
    let mut chosen = content_cell(table, row, &cols.chosen, layout, "assistant")?;
    let mut rejected = content_cell(table, row, &cols.rejected, layout, "assistant")?;
    let mut prompt = prompt;
    if prompt.is_none()
        && let (Content::Chat(c), Content::Chat(r)) = (&chosen, &rejected)
    {
        // Implicit prompt: the longest shared prefix of the two conversations.
        let shared = c.iter().zip(r.iter()).take_while(|(a, b)| a == b).count();
        if shared == c.len() || shared == r.len() {
            let message = if c == r {
                format!("is identical to `{}`", cols.chosen)
            } else {
                format!(
                    "one of `{}` and `{}` is a prefix of the other: no response to compare",
                    cols.chosen, cols.rejected
                )
            };
            return Err(table.cell_error(row, &cols.rejected, message));
        }
        if shared > 0 {
            let (p, c, r) = (
                c[..shared].to_vec(),
                c[shared..].to_vec(),
                r[shared..].to_vec(),
            );
            prompt = Some(Content::Chat(p));
            chosen = Content::Chat(c);
            rejected = Content::Chat(r);
        }
    }
    for (content, column) in [(&chosen, &cols.chosen), (&rejected, &cols.rejected)] {
        if let Content::Chat(m) = content
            && m.iter().all(|m| m.content.trim().is_empty())
        {
            return Err(table.cell_error(row, column, "has no text (every message is empty)"));
        }
    }
    if chosen == rejected {
        return Err(table.cell_error(
            row,
            &cols.rejected,
            format!("is identical to `{}`", cols.chosen),
        ));
    }
    Ok(PrefPair {
        prompt,
        chosen,
        rejected,
        margin: margin_cell(table, row, cols.margin.as_deref())?,
        group: group_cell(table, row, cols.group.as_deref())?,
        source,
    })
}

/// A group label: a text or a number as written; a list or an object is an error, a
/// null its own group.
fn group_cell(
    table: &Table,
    row: usize,
    column: Option<&str>,
) -> Result<Option<String>, DataError> {
    let Some(column) = column else {
        return Ok(None);
    };
    match table.rows[row].get(column) {
        None | Some(Value::Null) => Ok(Some("(null)".into())),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(other) => Err(table.cell_error(
            row,
            column,
            format!(
                "should be a text or a number to group by, found a {}: {}",
                json_type(other),
                truncate(&other.to_string(), 40)
            ),
        )),
    }
}

/// A text or conversation cell.
pub fn content_cell(
    table: &Table,
    row: usize,
    column: &str,
    layout: Layout,
    text_role: &str,
) -> Result<Content, DataError> {
    let value = table.rows[row].get(column).unwrap_or(&Value::Null);
    match value {
        Value::Null => Err(table.cell_error(row, column, "is null")),
        Value::String(s) if s.trim().is_empty() => Err(table.cell_error(row, column, "is empty")),
        Value::String(s) => Ok(match layout {
            Layout::Chat => Content::Chat(vec![Message::new(text_role, s)]),
            _ => Content::Text(s.clone()),
        }),
        Value::Array(_) if layout == Layout::Text => {
            Err(table.cell_error(row, column, "should be text (--layout text), found a list"))
        }
        Value::Array(items) if items.is_empty() => {
            Err(table.cell_error(row, column, "is an empty list of messages"))
        }
        Value::Array(_) => parse_messages(value)
            .map(Content::Chat)
            .map_err(|m| table.cell_error(row, column, m)),
        other => Err(table.cell_error(
            row,
            column,
            format!(
                "should be text or a list of {{role, content}} messages, found a {}: {}",
                json_type(other),
                truncate(&other.to_string(), 40)
            ),
        )),
    }
}

fn tokens_cell(table: &Table, row: usize, column: &str) -> Result<Vec<u32>, DataError> {
    let value = table.rows[row].get(column).unwrap_or(&Value::Null);
    let Value::Array(items) = value else {
        return Err(table.cell_error(
            row,
            column,
            format!(
                "should be a list of token ids, found a {}",
                json_type(value)
            ),
        ));
    };
    if items.is_empty() {
        return Err(table.cell_error(row, column, "is an empty list of token ids"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .ok_or_else(|| {
                    table.cell_error(
                        row,
                        column,
                        format!(
                            "item {i} is not a token id: {}",
                            truncate(&v.to_string(), 20)
                        ),
                    )
                })
        })
        .collect()
}

fn margin_cell(table: &Table, row: usize, column: Option<&str>) -> Result<Option<f64>, DataError> {
    let Some(column) = column else {
        return Ok(None);
    };
    match table.rows[row].get(column) {
        None | Some(Value::Null) => Err(table.cell_error(
            row,
            column,
            "is null (every pair needs a margin when the column exists)",
        )),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(table.cell_error(row, column, "is not a finite number")),
        },
        Some(other) => Err(table.cell_error(
            row,
            column,
            format!(
                "should be a number, found a {}: {}",
                json_type(other),
                truncate(&other.to_string(), 40)
            ),
        )),
    }
}

/// Decoder or encoder sequence format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeqStyle {
    /// One sequence, scored at its last token (Llama family).
    Decoder,
    /// A (prompt, response) segment pair, scored from `[CLS]` (BERT family).
    Encoder,
}

/// What to do with sequences longer than the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Overlong {
    /// Drop the pair (TRL's rule).
    Filter,
    /// Keep the responses and give up prompt tokens, the same for both sides of a pair:
    /// whole oldest turns first, then the final turn from its left (the system message
    /// stays); only a response longer than the limit by itself is cut, at its end.
    Truncate,
    /// Keep the first tokens: a decoder's sequence is cut at its end, an encoder's
    /// longer segment first (the tokenizer's truncation; rmtk's `truncate` until 0.1).
    TruncateStart,
}

/// The version of the rules [`SeqSpec`] names. 1: `truncate` kept the first tokens (what
/// `truncate-start` does now); 2: `truncate` keeps the responses.
pub const SEQ_RULES: u32 = 2;

/// How rows become token sequences; saved with a reward model so scoring and
/// evaluation build sequences exactly as training did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "SeqSpecFile", into = "SeqSpecFile")]
pub struct SeqSpec {
    pub style: SeqStyle,
    pub max_length: usize,
    pub overlong: Overlong,
    /// Conversations go through the chat template (decoders that have one).
    pub chat_template: bool,
}

impl SeqSpec {
    /// How a model of `family` with tokenizer `tok` reads sequences: decoders one sequence,
    /// through the chat template when the tokenizer has one; encoders a segment pair.
    pub fn for_model(
        family: Family,
        tok: &Tokenizer,
        max_length: usize,
        overlong: Overlong,
    ) -> Self {
        let (style, chat_template) = match family {
            Family::Llama => (SeqStyle::Decoder, tok.has_chat_template()),
            Family::Bert => (SeqStyle::Encoder, false),
        };
        Self {
            style,
            max_length,
            overlong,
            chat_template,
        }
    }

    /// The spec for scoring responses one by one, where none may be dropped: `filter`
    /// becomes `truncate`.
    pub fn for_scoring(mut self) -> Self {
        if self.overlong == Overlong::Filter {
            self.overlong = Overlong::Truncate;
        }
        self
    }
}

/// [`SeqSpec`] as `rmtk_reward_model.json` keeps it, with the version of its rules: a
/// file without one was written before `truncate` kept the responses, and is read with
/// the rule it was trained with.
#[derive(Serialize, Deserialize)]
struct SeqSpecFile {
    style: SeqStyle,
    max_length: usize,
    overlong: Overlong,
    chat_template: bool,
    #[serde(default = "first_rules")]
    rules: u32,
}

fn first_rules() -> u32 {
    1
}

impl From<SeqSpecFile> for SeqSpec {
    fn from(f: SeqSpecFile) -> Self {
        let overlong = match f.overlong {
            Overlong::Truncate if f.rules < 2 => Overlong::TruncateStart,
            o => o,
        };
        Self {
            style: f.style,
            max_length: f.max_length,
            overlong,
            chat_template: f.chat_template,
        }
    }
}

impl From<SeqSpec> for SeqSpecFile {
    fn from(s: SeqSpec) -> Self {
        Self {
            style: s.style,
            max_length: s.max_length,
            overlong: s.overlong,
            chat_template: s.chat_template,
            rules: SEQ_RULES,
        }
    }
}

/// Token ids of one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Seq {
    pub ids: Vec<u32>,
    /// Segment ids (encoders).
    pub types: Option<Vec<u32>>,
    /// Something was cut to fit the maximum length (prompt or response tokens).
    pub truncated: bool,
    /// The response itself lost tokens.
    pub response_cut: bool,
}

impl Seq {
    fn new(ids: Vec<u32>, types: Option<Vec<u32>>) -> Self {
        Self {
            ids,
            types,
            truncated: false,
            response_cut: false,
        }
    }
}

/// A candidate's sequences, if every one fits.
type Fit = Option<Vec<Seq>>;

pub struct SeqEncoder<'a> {
    tok: &'a Tokenizer,
    spec: SeqSpec,
    /// The embedding's rows: token ids must be below.
    vocab: usize,
}

impl<'a> SeqEncoder<'a> {
    pub fn new(tok: &'a Tokenizer, spec: SeqSpec, vocab: usize) -> Self {
        Self { tok, spec, vocab }
    }

    pub fn spec(&self) -> &SeqSpec {
        &self.spec
    }

    pub fn tokenizer(&self) -> &'a Tokenizer {
        self.tok
    }

    /// The same encoder with another overlong rule.
    pub fn with_overlong(&self, overlong: Overlong) -> SeqEncoder<'a> {
        SeqEncoder {
            tok: self.tok,
            spec: SeqSpec {
                overlong,
                ..self.spec.clone()
            },
            vocab: self.vocab,
        }
    }

    /// The sequence for `prompt` + `response`. In `filter` mode it may be longer than
    /// the maximum (the caller drops it); otherwise it is cut to fit.
    pub fn encode(&self, prompt: Option<&Content>, response: &Content) -> Result<Seq, String> {
        let mut seqs = self.encode_group(prompt, &[response])?;
        Ok(seqs.pop().expect("one response, one sequence"))
    }

    /// The sequences for several responses to one prompt (a pair's two sides), in
    /// their order. With `truncate` the prompt is cut once, to fit the longest of them,
    /// so the sequences differ only where the responses do.
    pub fn encode_group(
        &self,
        prompt: Option<&Content>,
        responses: &[&Content],
    ) -> Result<Vec<Seq>, String> {
        let pretokenized = responses.iter().any(|r| matches!(r, Content::Tokens(_)));
        if pretokenized && prompt.is_some() {
            return Err("token ids cannot follow a prompt".into());
        }
        let seqs = match self.spec.overlong {
            Overlong::Filter => self.render_all(prompt, responses)?,
            Overlong::Truncate if !pretokenized => self.keep_responses(prompt, responses)?,
            // Token ids have no prompt/response boundary: they keep their first tokens.
            Overlong::Truncate | Overlong::TruncateStart => responses
                .iter()
                .map(|r| self.keep_start(prompt, r))
                .collect::<Result<_, _>>()?,
        };
        seqs.into_iter().map(|s| self.checked(s)).collect()
    }

    fn checked(&self, seq: Seq) -> Result<Seq, String> {
        if let Some(bad) = seq.ids.iter().find(|&&id| id as usize >= self.vocab) {
            return Err(format!(
                "token id {bad} is outside the model's vocabulary of {}",
                self.vocab
            ));
        }
        if seq.ids.is_empty() {
            return Err("the sequence has no tokens".into());
        }
        Ok(seq)
    }

    /// One sequence, uncut.
    fn render(&self, prompt: Option<&Content>, response: &Content) -> Result<Seq, String> {
        match (response, self.spec.style) {
            (Content::Tokens(ids), _) => Ok(Seq::new(ids.clone(), None)),
            (_, SeqStyle::Decoder) => self.decoder_ids(prompt, response),
            (_, SeqStyle::Encoder) => self.encoder_ids(prompt, response, None),
        }
    }

    fn render_all(
        &self,
        prompt: Option<&Content>,
        responses: &[&Content],
    ) -> Result<Vec<Seq>, String> {
        responses.iter().map(|r| self.render(prompt, r)).collect()
    }

    /// `truncate-start`: the first tokens that fit (an encoder's pair loses tokens from
    /// its longer segment first, keeping `[CLS]`/`[SEP]`).
    fn keep_start(&self, prompt: Option<&Content>, response: &Content) -> Result<Seq, String> {
        let mut seq = self.render(prompt, response)?;
        self.cut_end(&mut seq, prompt, response)?;
        Ok(seq)
    }

    /// Cut a sequence over the limit to its first tokens.
    fn cut_end(
        &self,
        seq: &mut Seq,
        prompt: Option<&Content>,
        response: &Content,
    ) -> Result<(), String> {
        let max = self.spec.max_length;
        if seq.ids.len() <= max {
            return Ok(());
        }
        if self.spec.style == SeqStyle::Encoder && !matches!(response, Content::Tokens(_)) {
            *seq = self.encoder_ids(prompt, response, Some(max))?;
        } else {
            seq.ids.truncate(max);
            if let Some(t) = &mut seq.types {
                t.truncate(max);
            }
        }
        seq.truncated = true;
        seq.response_cut = true;
        Ok(())
    }

    /// `truncate`: the prompt gives up tokens until the longest response fits (whole
    /// oldest turns, then the final user turn from its left); a response that does not
    /// fit by itself keeps only an empty user turn before it and loses its own end.
    fn keep_responses(
        &self,
        prompt: Option<&Content>,
        responses: &[&Content],
    ) -> Result<Vec<Seq>, String> {
        let max = self.spec.max_length;
        let fit = |p: &Content| -> Result<Fit, String> {
            let seqs = self.render_all(Some(p), responses)?;
            Ok(seqs.iter().all(|s| s.ids.len() <= max).then_some(seqs))
        };
        let seqs = self.render_all(prompt, responses)?;
        if seqs.iter().all(|s| s.ids.len() <= max) {
            return Ok(seqs);
        }
        if let Some(p) = prompt
            && let Some(mut seqs) = self.cut_prompt(p, &fit)?
        {
            for s in &mut seqs {
                s.truncated = true;
            }
            return Ok(seqs);
        }
        let empty = prompt.map(Self::least_prompt);
        responses
            .iter()
            .map(|r| {
                let mut seq = self.render(empty.as_ref(), r)?;
                self.cut_end(&mut seq, empty.as_ref(), r)?;
                seq.truncated |= prompt.is_some();
                Ok(seq)
            })
            .collect()
    }

    /// The least cut of the prompt with which every response fits, if there is one.
    fn cut_prompt(
        &self,
        prompt: &Content,
        fit: &dyn Fn(&Content) -> Result<Fit, String>,
    ) -> Result<Fit, String> {
        match prompt {
            Content::Text(t) => self.cut_left(t, &|t: &str| fit(&Content::Text(t.to_string()))),
            Content::Chat(messages) => {
                let (system, rest) = match messages.split_first() {
                    Some((s, rest)) if s.role == "system" && !rest.is_empty() => (Some(s), rest),
                    _ => (None, &messages[..]),
                };
                // The final user turn (whatever follows it, an assistant prefill say, stays
                // with it); the turns before it are what can go whole.
                let Some(last) = rest
                    .iter()
                    .rposition(|m| m.role == "user")
                    .or_else(|| rest.len().checked_sub(1))
                else {
                    return Ok(None);
                };
                let (middle, final_turn, after) = (&rest[..last], &rest[last], &rest[last + 1..]);
                let build = |turns: &[Message], last: Message| {
                    Content::Chat(
                        system
                            .into_iter()
                            .chain(turns)
                            .cloned()
                            .chain(std::iter::once(last))
                            .chain(after.iter().cloned())
                            .collect(),
                    )
                };
                // Whole oldest turns: start at each later user message, then at none, so
                // the conversation still opens with a user turn.
                let starts = (1..middle.len())
                    .filter(|&k| middle[k].role == "user")
                    .chain((!middle.is_empty()).then_some(middle.len()));
                for k in starts {
                    if let Some(seqs) = fit(&build(&middle[k..], final_turn.clone()))? {
                        return Ok(Some(seqs));
                    }
                }
                self.cut_left(&final_turn.content, &|c: &str| {
                    fit(&build(&[], Message::new(&final_turn.role, c)))
                })
            }
            Content::Tokens(_) => Ok(None),
        }
    }

    /// The prompt left when a response does not fit by itself: an empty final user turn
    /// (a conversation still opens with a user turn, as strict templates require), or an
    /// empty text.
    fn least_prompt(prompt: &Content) -> Content {
        match prompt {
            Content::Chat(m) if !m.is_empty() => Content::Chat(vec![Message::new("user", "")]),
            other => other.emptied(),
        }
    }

    /// The longest end of `text` (cut at a token boundary) with which `fit` holds; none
    /// if even the empty text does not fit. Fitting is monotone in how much is cut: a
    /// guess from the room the empty text leaves, its neighbours, then bisection.
    fn cut_left(
        &self,
        text: &str,
        fit: &dyn Fn(&str) -> Result<Fit, String>,
    ) -> Result<Fit, String> {
        let Some(empty) = fit("")? else {
            return Ok(None);
        };
        let starts = self.tok.token_starts(text).map_err(|e| e.to_string())?;
        let n = starts.len();
        let from = |j: usize| if j >= n { "" } else { &text[starts[j]..] };
        // Invariant: cutting `lo` tokens does not fit (0: the whole text, known), cutting
        // `hi` does (n: none of it), `best` being the sequences of `hi`.
        let (mut lo, mut hi, mut best) = (0usize, n, empty);
        let longest = best.iter().map(|s| s.ids.len()).max().unwrap_or(0);
        let room = self.spec.max_length.saturating_sub(longest);
        let guess = n.saturating_sub(room);
        let probe = |j: usize, lo: &mut usize, hi: &mut usize, best: &mut Vec<Seq>| {
            if j <= *lo || j >= *hi {
                return Ok::<(), String>(());
            }
            match fit(from(j))? {
                Some(seqs) => {
                    *hi = j;
                    *best = seqs;
                }
                None => *lo = j,
            }
            Ok(())
        };
        probe(guess.max(1), &mut lo, &mut hi, &mut best)?;
        probe(hi.saturating_sub(1), &mut lo, &mut hi, &mut best)?;
        probe(lo + 1, &mut lo, &mut hi, &mut best)?;
        while hi - lo > 1 {
            probe(lo + (hi - lo) / 2, &mut lo, &mut hi, &mut best)?;
        }
        Ok(Some(best))
    }

    fn encoder_ids(
        &self,
        prompt: Option<&Content>,
        response: &Content,
        max: Option<usize>,
    ) -> Result<Seq, String> {
        let p = prompt.map(Content::plain).filter(|p| !p.is_empty());
        let r = response.plain();
        let (ids, types) = self
            .tok
            .encode_segments(
                p.as_deref().unwrap_or(&r),
                p.as_ref().map(|_| r.as_str()),
                max,
            )
            .map_err(|e| e.to_string())?;
        Ok(Seq::new(ids, Some(types)))
    }

    fn decoder_ids(&self, prompt: Option<&Content>, response: &Content) -> Result<Seq, String> {
        let chat = response.is_chat() || prompt.is_some_and(Content::is_chat);
        let ids = if chat && self.spec.chat_template {
            let mut messages = prompt.map(|p| p.messages("user")).unwrap_or_default();
            messages.extend(response.messages("assistant"));
            let text = self
                .tok
                .apply_chat_template(&messages, false)
                .map_err(|e| e.to_string())?;
            self.tok.encode(&text, false).map_err(|e| e.to_string())?
        } else {
            let mut text = prompt.map(Content::plain).unwrap_or_default();
            text.push_str(&response.plain());
            if let Some(eos) = self.tok.eos_token()
                && !text.ends_with(eos)
            {
                text.push_str(eos);
            }
            self.tok.encode(&text, true).map_err(|e| e.to_string())?
        };
        Ok(Seq::new(ids, None))
    }
}

/// A pair as token sequences.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedPair {
    pub chosen: Seq,
    pub rejected: Seq,
    pub margin: Option<f32>,
    pub source: Source,
    /// Its index in the pairs given to [`encode_pairs`].
    pub pair: usize,
}

impl EncodedPair {
    /// The longer side's length (what batching by length sorts on).
    pub fn len(&self) -> usize {
        self.chosen.ids.len().max(self.rejected.ids.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What encoding did besides encoding.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EncodeReport {
    /// Pairs dropped because a side was longer than the maximum (`filter`).
    pub filtered: usize,
    /// Pairs with a side cut to the maximum (`truncate`, `truncate-start`).
    pub truncated: usize,
    /// Of those, pairs in which a response itself lost tokens (with `truncate`: a
    /// response longer than the limit by itself).
    pub responses_cut: usize,
    /// Of those, pre-tokenized pairs: no prompt/response boundary, so `truncate` kept
    /// their first tokens.
    pub pretokenized_cut: usize,
    /// Pairs whose two sides became the same tokens once cut, dropped (counted among
    /// `truncated` too): they carry no signal, so training on them spends compute on a
    /// zero gradient and evaluating them counts a tie.
    pub identical_dropped: usize,
    /// Rows that could not be encoded, skipped with `--skip-bad-rows`.
    pub skipped: Vec<DataError>,
}

impl EncodeReport {
    pub fn summary(&self, max_length: usize, overlong: Overlong) -> String {
        let rule = match overlong {
            Overlong::Filter => {
                return format!(
                    "--max-length {max_length} (filter): {} pairs dropped as too long",
                    self.filtered
                );
            }
            Overlong::Truncate => "truncate: prompts cut, responses kept",
            Overlong::TruncateStart => "truncate-start: first tokens kept",
        };
        let mut line = format!(
            "--max-length {max_length} ({rule}): {} pairs cut, a response in {} of them",
            self.truncated, self.responses_cut
        );
        if self.pretokenized_cut > 0 && overlong == Overlong::Truncate {
            line.push_str(&format!(
                "; {} pre-tokenized pairs kept their first tokens (token ids have no prompt/response boundary)",
                self.pretokenized_cut
            ));
        }
        if self.identical_dropped > 0 {
            line.push_str(&format!(
                "; dropped as identical once cut: {}",
                self.identical_dropped
            ));
        }
        line
    }
}

/// Encode pairs, dropping or cutting overlong ones; a pair that cannot be encoded is an
/// error naming its file and row unless `skip_bad_rows`.
pub fn encode_pairs(
    encoder: &SeqEncoder<'_>,
    pairs: &[PrefPair],
    skip_bad_rows: bool,
) -> Result<(Vec<EncodedPair>, EncodeReport), DataError> {
    let mut out = Vec::with_capacity(pairs.len());
    let mut report = EncodeReport::default();
    let max = encoder.spec().max_length;
    for (index, pair) in pairs.iter().enumerate() {
        let encoded = encoder.encode_group(pair.prompt.as_ref(), &[&pair.chosen, &pair.rejected]);
        let [chosen, rejected]: [Seq; 2] = match encoded {
            Ok(seqs) => seqs.try_into().expect("two responses, two sequences"),
            Err(message) => {
                let err = pair.source.error(message);
                if skip_bad_rows {
                    report.skipped.push(err);
                    continue;
                }
                return Err(err);
            }
        };
        if chosen.ids.len() > max || rejected.ids.len() > max {
            report.filtered += 1;
            continue;
        }
        if chosen.truncated || rejected.truncated {
            report.truncated += 1;
            report.responses_cut += usize::from(chosen.response_cut || rejected.response_cut);
            report.pretokenized_cut += usize::from(matches!(pair.chosen, Content::Tokens(_)));
            if chosen.ids == rejected.ids {
                report.identical_dropped += 1;
                continue;
            }
        }
        out.push(EncodedPair {
            chosen,
            rejected,
            margin: pair.margin.map(|m| m as f32),
            source: pair.source.clone(),
            pair: index,
        });
    }
    Ok((out, report))
}

/// Micro-batches of example indices for one epoch: a random order, then (with
/// `group_by_length`) mega-batches of 50 micro-batches sorted by length so each
/// micro-batch holds similar lengths and little padding, the micro-batches themselves
/// in random order, the longest one first so a too-large batch fails at once
/// (transformers' `LengthGroupedSampler` does the same).
pub fn epoch_batches<R: Rng>(
    lengths: &[usize],
    batch_size: usize,
    group_by_length: bool,
    rng: &mut R,
) -> Vec<Vec<u32>> {
    let batch_size = batch_size.max(1);
    let mut order: Vec<u32> = (0..lengths.len() as u32).collect();
    order.shuffle(rng);
    if !group_by_length {
        return order.chunks(batch_size).map(<[u32]>::to_vec).collect();
    }
    let mut batches: Vec<Vec<u32>> = Vec::new();
    for mega in order.chunks(batch_size * 50) {
        let mut mega = mega.to_vec();
        // Stable sort: ties keep the random order.
        mega.sort_by_key(|&i| std::cmp::Reverse(lengths[i as usize]));
        batches.extend(mega.chunks(batch_size).map(<[u32]>::to_vec));
    }
    batches.shuffle(rng);
    if let Some(longest) = (0..batches.len()).max_by_key(|&b| {
        (
            batches[b]
                .iter()
                .map(|&i| lengths[i as usize])
                .max()
                .unwrap_or(0),
            std::cmp::Reverse(b),
        )
    }) {
        batches.swap(0, longest);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    fn table(rows: Vec<Value>) -> Table {
        let mut t = Table {
            path: "t.jsonl".into(),
            ..Table::default()
        };
        for r in rows {
            let obj = r.as_object().unwrap().clone();
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

    fn read(t: &Table, layout: Layout, skip: bool) -> Result<PairsRead, DataError> {
        let mut out = PairsRead::default();
        read_table_pairs(t, &PrefColumns::default(), layout, skip, &mut out)?;
        Ok(out)
    }

    fn msgs(v: &[(&str, &str)]) -> Vec<Message> {
        v.iter().map(|(r, c)| Message::new(r, c)).collect()
    }

    #[test]
    fn text_layout_with_margin() {
        let t = table(vec![
            json!({"prompt": "p", "chosen": "a", "rejected": "b", "margin": 0.5}),
        ]);
        let got = read(&t, Layout::Auto, false).unwrap();
        let p = &got.pairs[0];
        assert_eq!(p.prompt, Some(Content::Text("p".into())));
        assert_eq!(p.chosen, Content::Text("a".into()));
        assert_eq!(p.margin, Some(0.5));
        assert!(got.notes[0].contains("text"), "{:?}", got.notes);
    }

    #[test]
    fn implicit_prompt_is_the_shared_prefix() {
        let t = table(vec![json!({
            "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}],
            "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}],
        })]);
        let p = &read(&t, Layout::Auto, false).unwrap().pairs[0];
        assert_eq!(p.prompt, Some(Content::Chat(msgs(&[("user", "q")]))));
        assert_eq!(p.chosen, Content::Chat(msgs(&[("assistant", "good")])));
    }

    #[test]
    fn prompt_messages_with_text_turns() {
        let t = table(vec![json!({
            "prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
            "chosen": "good", "rejected": [{"role": "assistant", "content": "bad"}],
        })]);
        let p = &read(&t, Layout::Auto, false).unwrap().pairs[0];
        assert_eq!(p.chosen, Content::Text("good".into()));
        assert_eq!(p.rejected, Content::Chat(msgs(&[("assistant", "bad")])));
        // --layout chat turns text into messages.
        let p = &read(&t, Layout::Chat, false).unwrap().pairs[0];
        assert_eq!(p.chosen, Content::Chat(msgs(&[("assistant", "good")])));
        // --layout text refuses lists.
        let err = read(&t, Layout::Text, false).unwrap_err().to_string();
        assert!(
            err.contains("row 0, column `prompt`: should be text"),
            "{err}"
        );
    }

    #[test]
    fn bad_cells_name_file_row_and_column() {
        let cases = [
            (
                json!({"prompt": "p", "chosen": null, "rejected": "b"}),
                "column `chosen`: is null",
            ),
            (
                json!({"prompt": "p", "chosen": "  ", "rejected": "b"}),
                "column `chosen`: is empty",
            ),
            (
                json!({"prompt": "p", "chosen": 3, "rejected": "b"}),
                "column `chosen`: should be text or a list",
            ),
            (
                json!({"prompt": "p", "chosen": "a", "rejected": "a"}),
                "column `rejected`: is identical to `chosen`",
            ),
            (
                json!({"prompt": "p", "chosen": "a", "rejected": "b", "margin": "x"}),
                "column `margin`: should be a number",
            ),
            (
                json!({"prompt": "p", "chosen": [{"role": "assistant"}], "rejected": "b"}),
                "column `chosen`: message 0 should be",
            ),
        ];
        for (row, want) in cases {
            let t = table(vec![
                json!({"prompt": "p", "chosen": "a", "rejected": "b", "margin": 1.0}),
                row,
            ]);
            let err = read(&t, Layout::Auto, false).unwrap_err().to_string();
            assert!(err.starts_with("t.jsonl: row 1, "), "{err}");
            assert!(err.contains(want), "{err} / {want}");
            let got = read(&t, Layout::Auto, true).unwrap();
            assert_eq!((got.pairs.len(), got.skipped.len()), (1, 1));
            assert!(got.notes[0].contains("1 bad rows skipped"));
        }
    }

    #[test]
    fn missing_and_misspelled_columns_list_what_was_found() {
        let t = table(vec![
            json!({"prompt": "p", "choosen": "a", "rejected": "b"}),
        ]);
        let err = read(&t, Layout::Auto, false).unwrap_err().to_string();
        assert!(err.contains("no column `chosen` (columns found: prompt, choosen, rejected); did you mean `choosen`?"), "{err}");
        let t = table(vec![json!({"promt": "p", "chosen": "a", "rejected": "b"})]);
        let err = read(&t, Layout::Auto, false).unwrap_err().to_string();
        assert!(
            err.contains("no column `prompt`") && err.contains("did you mean `promt`"),
            "{err}"
        );
        // No prompt at all is TRL's implicit prompt.
        let t = table(vec![json!({"chosen": "a", "rejected": "b"})]);
        assert_eq!(read(&t, Layout::Auto, false).unwrap().pairs[0].prompt, None);
    }

    #[test]
    fn pretokenized_files_pass_ids_through() {
        let t = table(vec![
            json!({"chosen_ids": [1, 2, 3], "rejected_ids": [1, 4]}),
        ]);
        let p = &read(&t, Layout::Auto, false).unwrap().pairs[0];
        assert_eq!(p.chosen, Content::Tokens(vec![1, 2, 3]));
        let t = table(vec![json!({"chosen_ids": [1, -2], "rejected_ids": [1, 4]})]);
        let err = read(&t, Layout::Auto, false).unwrap_err().to_string();
        assert!(
            err.contains("column `chosen_ids`: item 1 is not a token id"),
            "{err}"
        );
    }

    #[test]
    fn globs_expand_sorted() {
        let dir = std::env::temp_dir().join(format!("rmtk-glob-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["b.parquet", "a.parquet", "c.jsonl"] {
            std::fs::write(dir.join(n), "").unwrap();
        }
        let got = expand_paths(&[format!("{}/*.parquet", dir.display())]).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a.parquet", "b.parquet"]);
        assert!(expand_paths(&[format!("{}/*.csv", dir.display())]).is_err());
        assert!(glob_match("a?c*", "abcdef") && !glob_match("a?c", "abcd"));
    }

    #[test]
    fn batches_group_lengths_and_cover_every_example_once() {
        let lengths: Vec<usize> = (0..103).map(|i| (i * 37) % 101).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let batches = epoch_batches(&lengths, 4, true, &mut rng);
        let mut all: Vec<u32> = batches.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        assert_eq!(batches.len(), 26);
        // Padding: grouped batches waste far less than random ones.
        let waste = |bs: &[Vec<u32>]| -> usize {
            bs.iter()
                .map(|b| {
                    let m = b.iter().map(|&i| lengths[i as usize]).max().unwrap();
                    b.iter().map(|&i| m - lengths[i as usize]).sum::<usize>()
                })
                .sum()
        };
        let mut rng2 = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let random = epoch_batches(&lengths, 4, false, &mut rng2);
        assert!(
            waste(&batches) * 4 < waste(&random),
            "{} vs {}",
            waste(&batches),
            waste(&random)
        );
        // The longest batch comes first.
        let first_max = batches[0]
            .iter()
            .map(|&i| lengths[i as usize])
            .max()
            .unwrap();
        assert_eq!(first_max, *lengths.iter().max().unwrap());
    }

    /// A tiny tokenizer (one token per word, a ChatML-like template) and an encoder.
    fn tiny_tok(kind: &str) -> Tokenizer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-tokenizers");
        Tokenizer::from_dir(&dir.join(kind), &Value::Null).unwrap()
    }

    fn spec(style: SeqStyle, max_length: usize, overlong: Overlong) -> SeqSpec {
        SeqSpec {
            style,
            max_length,
            overlong,
            chat_template: style == SeqStyle::Decoder,
        }
    }

    fn words(n: usize, word: &str) -> String {
        vec![word; n].join(" ")
    }

    fn chat(v: &[(&str, &str)]) -> Content {
        Content::Chat(msgs(v))
    }

    /// Both sides of a pair under `truncate`, with their uncut renderings for checks.
    fn pair_seqs(enc: &SeqEncoder, prompt: &Content, c: &Content, r: &Content) -> [Seq; 2] {
        enc.encode_group(Some(prompt), &[c, r])
            .unwrap()
            .try_into()
            .unwrap()
    }

    #[test]
    fn truncate_drops_whole_oldest_turns_first_for_both_sides() {
        let tok = tiny_tok("llama");
        let prompt = chat(&[
            ("system", "be good"),
            ("user", &words(10, "the")),
            ("assistant", &words(10, "a")),
            ("user", &words(4, "of")),
            ("assistant", &words(4, "and")),
            ("user", "what is it"),
        ]);
        let chosen = Content::Text(words(6, "good"));
        let rejected = Content::Text(words(3, "way"));
        let full = SeqEncoder::new(&tok, spec(SeqStyle::Decoder, 1000, Overlong::Filter), 1000);
        let without_first = chat(&[
            ("system", "be good"),
            ("user", &words(4, "of")),
            ("assistant", &words(4, "and")),
            ("user", "what is it"),
        ]);
        let want_c = full.encode(Some(&without_first), &chosen).unwrap();
        let want_r = full.encode(Some(&without_first), &rejected).unwrap();
        let whole = full.encode(Some(&prompt), &chosen).unwrap();
        // Room for the conversation without its first turn, not for the whole one.
        let max = want_c.ids.len();
        assert!(whole.ids.len() > max);
        let enc = SeqEncoder::new(&tok, spec(SeqStyle::Decoder, max, Overlong::Truncate), 1000);
        let [c, r] = pair_seqs(&enc, &prompt, &chosen, &rejected);
        assert_eq!(c.ids, want_c.ids);
        // The shorter side gets the same prompt, not more of it.
        assert_eq!(r.ids, want_r.ids);
        assert!(c.truncated && r.truncated && !c.response_cut && !r.response_cut);
        // One token less of room: the second turn goes too, the system message stays.
        let enc = SeqEncoder::new(
            &tok,
            spec(SeqStyle::Decoder, max - 1, Overlong::Truncate),
            1000,
        );
        let [c, _] = pair_seqs(&enc, &prompt, &chosen, &rejected);
        let last_only = chat(&[("system", "be good"), ("user", "what is it")]);
        assert_eq!(c.ids, full.encode(Some(&last_only), &chosen).unwrap().ids);
    }

    #[test]
    fn truncate_cuts_the_final_turn_from_its_left_keeping_the_system_message() {
        let tok = tiny_tok("llama");
        let long: Vec<&str> = WORDS_CYCLE.iter().copied().cycle().take(40).collect();
        let prompt = chat(&[("system", "be good"), ("user", &long.join(" "))]);
        let chosen = Content::Text(words(5, "good"));
        let rejected = Content::Text(words(2, "way"));
        let full = SeqEncoder::new(&tok, spec(SeqStyle::Decoder, 1000, Overlong::Filter), 1000);
        let empty = full
            .encode(Some(&chat(&[("system", "be good"), ("user", "")])), &chosen)
            .unwrap();
        let max = empty.ids.len() + 12;
        let enc = SeqEncoder::new(&tok, spec(SeqStyle::Decoder, max, Overlong::Truncate), 1000);
        let [c, r] = pair_seqs(&enc, &prompt, &chosen, &rejected);
        // The last 12 words of the user turn, the system message and both responses whole.
        let kept = chat(&[("system", "be good"), ("user", &long[28..].join(" "))]);
        assert_eq!(c.ids, full.encode(Some(&kept), &chosen).unwrap().ids);
        assert_eq!(r.ids, full.encode(Some(&kept), &rejected).unwrap().ids);
        assert_eq!(c.ids.len(), max);
        assert!(!c.response_cut);
        // A text prompt is cut the same way, from its left.
        let text = Content::Text(long.join(" "));
        let [c, _] = pair_seqs(&enc, &text, &chosen, &rejected);
        // The longest end of the text that fits (its last word and the response's
        // first merge into one token in plain text: TRL's prompt + response).
        let fitting = (0..=40)
            .rev()
            .map(|k| {
                full.encode(Some(&Content::Text(long[40 - k..].join(" "))), &chosen)
                    .unwrap()
            })
            .find(|s| s.ids.len() <= max)
            .unwrap();
        assert_eq!(c.ids, fitting.ids);
    }

    #[test]
    fn a_response_longer_than_the_limit_loses_the_prompt_and_its_end() {
        let tok = tiny_tok("llama");
        let prompt = chat(&[("system", "be good"), ("user", "what is it")]);
        let chosen = Content::Text(words(30, "good"));
        let rejected = Content::Text(words(3, "way"));
        let enc = SeqEncoder::new(&tok, spec(SeqStyle::Decoder, 16, Overlong::Truncate), 1000);
        let [c, r] = pair_seqs(&enc, &prompt, &chosen, &rejected);
        let full = SeqEncoder::new(&tok, spec(SeqStyle::Decoder, 1000, Overlong::Filter), 1000);
        // What is left of the prompt: an empty user turn (templates want one first).
        let least = chat(&[("user", "")]);
        let alone = full.encode(Some(&least), &chosen).unwrap();
        assert_eq!(c.ids, alone.ids[..16]);
        assert!(c.response_cut && c.truncated);
        // The other side is judged on the same (empty) prompt, whole.
        assert_eq!(r.ids, full.encode(Some(&least), &rejected).unwrap().ids);
        assert!(r.truncated && !r.response_cut);
        // truncate-start keeps the first 16 tokens: the prompt, and little else.
        let start = SeqEncoder::new(
            &tok,
            spec(SeqStyle::Decoder, 16, Overlong::TruncateStart),
            1000,
        );
        let c = start.encode(Some(&prompt), &chosen).unwrap();
        assert_eq!(
            c.ids,
            full.encode(Some(&prompt), &chosen).unwrap().ids[..16]
        );
    }

    #[test]
    fn a_prompt_ending_after_its_user_turn_keeps_that_end() {
        let tok = tiny_tok("llama");
        // An assistant prefill after the final user turn stays with it; the user turn is
        // what gets cut.
        let prompt = chat(&[
            ("user", &words(10, "the")),
            ("assistant", &words(10, "a")),
            ("user", &words(20, "of")),
            ("assistant", "it is"),
        ]);
        let chosen = Content::Text(words(3, "good"));
        let rejected = Content::Text(words(2, "way"));
        let full = SeqEncoder::new(&tok, spec(SeqStyle::Decoder, 1000, Overlong::Filter), 1000);
        let kept = chat(&[("user", &words(5, "of")), ("assistant", "it is")]);
        let max = full.encode(Some(&kept), &chosen).unwrap().ids.len();
        let enc = SeqEncoder::new(&tok, spec(SeqStyle::Decoder, max, Overlong::Truncate), 1000);
        let [c, _] = pair_seqs(&enc, &prompt, &chosen, &rejected);
        assert_eq!(c.ids, full.encode(Some(&kept), &chosen).unwrap().ids);
    }

    #[test]
    fn encoders_cut_the_prompt_segment_from_its_left() {
        let tok = tiny_tok("bert");
        let prompt = Content::Text(words(30, "the"));
        let chosen = Content::Text(words(4, "good"));
        let rejected = Content::Text(words(2, "way"));
        let enc = SeqEncoder::new(&tok, spec(SeqStyle::Encoder, 12, Overlong::Truncate), 1000);
        let [c, r] = pair_seqs(&enc, &prompt, &chosen, &rejected);
        // [CLS] 5 prompt words [SEP] 4 response words [SEP]
        let full = SeqEncoder::new(&tok, spec(SeqStyle::Encoder, 1000, Overlong::Filter), 1000);
        let want = full
            .encode(Some(&Content::Text(words(5, "the"))), &chosen)
            .unwrap();
        assert_eq!(c.ids, want.ids);
        assert_eq!(c.types, want.types);
        let want = full
            .encode(Some(&Content::Text(words(5, "the"))), &rejected)
            .unwrap();
        assert_eq!(r.ids, want.ids);
    }

    #[test]
    fn pretokenized_rows_keep_their_first_tokens() {
        let tok = tiny_tok("llama");
        let enc = SeqEncoder::new(&tok, spec(SeqStyle::Decoder, 3, Overlong::Truncate), 1000);
        let s = enc
            .encode(None, &Content::Tokens(vec![5, 6, 7, 8]))
            .unwrap();
        assert_eq!(s.ids, [5, 6, 7]);
        assert!(s.truncated);
    }

    #[test]
    fn saved_specs_keep_their_rule() {
        let old =
            r#"{"style":"decoder","max_length":64,"overlong":"truncate","chat_template":true}"#;
        let spec: SeqSpec = serde_json::from_str(old).unwrap();
        assert_eq!(spec.overlong, Overlong::TruncateStart);
        let new = serde_json::to_value(SeqSpec {
            overlong: Overlong::Truncate,
            ..spec
        })
        .unwrap();
        assert_eq!(new["rules"], serde_json::json!(SEQ_RULES));
        assert_eq!(new["overlong"], "truncate");
        let back: SeqSpec = serde_json::from_value(new).unwrap();
        assert_eq!(back.overlong, Overlong::Truncate);
        let start: SeqSpec =
            serde_json::from_str(&old.replace("\"truncate\"", "\"truncate-start\"")).unwrap();
        assert_eq!(start.overlong, Overlong::TruncateStart);
    }

    const WORDS_CYCLE: [&str; 8] = ["the", "of", "and", "to", "in", "is", "it", "that"];

    #[test]
    fn plain_rendering() {
        assert_eq!(render_plain(&msgs(&[("user", "hi")])), "hi");
        assert_eq!(
            render_plain(&msgs(&[("system", "s"), ("user", "q")])),
            "system: s\nuser: q"
        );
    }
}
