//! Rows in and out: parquet (arrow-rs), JSONL and JSON arrays (LLaMA-Factory's files), as
//! JSON objects per row, with errors that name the file, the row and the column. Parquet
//! and JSONL can be read in chunks ([`for_each_chunk`]) so a file larger than memory can
//! be walked through (`rmtk data inspect`).
//!
//! Every reader produces the same thing, a [`Table`]: its columns and its rows. Rows
//! that cannot be read at all (a JSONL line that is not JSON, bytes that are not UTF-8)
//! are kept aside in `bad` so a command can stop on the first one or skip them all.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder, StructBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field as PqField;
use serde_json::{Map, Value};

pub mod commands;
pub mod convert;
pub mod inspect;
pub mod prefs;
pub mod split;

use crate::models::{Message, Tokenizer};

pub type Row = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: no column `{column}` (columns found: {}){}", .found.join(", "), suggestion(.column, .found))]
    MissingColumn {
        path: PathBuf,
        column: String,
        found: Vec<String>,
    },
    #[error("{path}: row {row}, column `{column}`: {message}")]
    Cell {
        path: PathBuf,
        row: usize,
        column: String,
        message: String,
    },
    #[error("{path}: row {row}: {message}")]
    Row {
        path: PathBuf,
        row: usize,
        message: String,
    },
}

impl DataError {
    /// The same error with its row moved by `offset` (a chunk's rows numbered in the file).
    pub fn shifted(mut self, offset: usize) -> Self {
        if let DataError::Cell { row, .. } | DataError::Row { row, .. } = &mut self {
            *row += offset;
        }
        self
    }

    /// The row an error is about, if any (for --skip-bad-rows accounting).
    pub fn row(&self) -> Option<usize> {
        match self {
            DataError::Cell { row, .. } | DataError::Row { row, .. } => Some(*row),
            _ => None,
        }
    }
}

fn suggestion(column: &str, found: &[String]) -> String {
    found
        .iter()
        .map(|f| (edit_distance(&column.to_lowercase(), &f.to_lowercase()), f))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| format!("; did you mean `{f}`?"))
        .unwrap_or_default()
}

/// Levenshtein distance (column-name suggestions).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Rows read from one file.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub path: PathBuf,
    /// Column names in file order.
    pub columns: Vec<String>,
    /// Column types as the file declares them (parquet) or as first seen (JSONL).
    pub types: Vec<String>,
    pub rows: Vec<Row>,
    /// Rows that could not be read at all: (row index, reason).
    pub bad: Vec<(usize, String)>,
}

impl Table {
    pub fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c == name)
    }

    pub fn require_column(&self, name: &str) -> Result<(), DataError> {
        if self.has_column(name) {
            Ok(())
        } else {
            Err(DataError::MissingColumn {
                path: self.path.clone(),
                column: name.into(),
                found: self.columns.clone(),
            })
        }
    }

    pub fn column_type(&self, name: &str) -> Option<&str> {
        self.columns
            .iter()
            .position(|c| c == name)
            .map(|i| self.types[i].as_str())
    }

    pub fn cell_error(&self, row: usize, column: &str, message: impl Into<String>) -> DataError {
        DataError::Cell {
            path: self.path.clone(),
            row,
            column: column.into(),
            message: message.into(),
        }
    }

    /// The first unreadable row as an error, if any.
    pub fn first_bad(&self) -> Option<DataError> {
        self.bad.first().map(|(row, message)| DataError::Row {
            path: self.path.clone(),
            row: *row,
            message: message.clone(),
        })
    }
}

/// What a file holds, by extension (and by content for parquet's magic bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Jsonl,
}

pub fn format_of(path: &Path) -> Format {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("parquet" | "pq") => Format::Parquet,
        _ => Format::Jsonl,
    }
}

/// Read a parquet, JSONL or JSON (an array of objects) file.
pub fn read_table(path: &Path) -> Result<Table, DataError> {
    let mut whole = None;
    for_each_chunk(path, usize::MAX, |_, table| {
        whole = Some(table);
        Ok(())
    })?;
    Ok(whole.unwrap_or_else(|| Table {
        path: path.to_path_buf(),
        ..Table::default()
    }))
}

/// Read a file in chunks of at most `chunk_rows` rows, each handed to `visit` with the
/// file's index of its first row (the chunk's rows and `bad` are numbered from 0). Parquet
/// and JSONL are streamed: memory holds one chunk (and one parquet row group), whatever
/// the file's size; a JSON array is read whole. A file with no rows gives one empty chunk.
pub fn for_each_chunk(
    path: &Path,
    chunk_rows: usize,
    mut visit: impl FnMut(usize, Table) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let file_err = |message: String| DataError::File {
        path: path.to_path_buf(),
        message,
    };
    let mut file = File::open(path).map_err(|e| file_err(e.to_string()))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(|e| file_err(e.to_string()))?;
    let is_parquet = n == 4 && &magic == b"PAR1";
    let chunk_rows = chunk_rows.max(1);
    match (format_of(path), is_parquet) {
        (_, true) => parquet_chunks(path, chunk_rows, &mut visit),
        (Format::Parquet, false) => Err(file_err(
            "not a parquet file (it does not start with the PAR1 magic bytes)".into(),
        )),
        (Format::Jsonl, false) => jsonl_chunks(path, chunk_rows, &mut visit),
    }
}

/// Collects rows into chunks and hands each full one on.
struct Chunker<'a> {
    table: Table,
    first_row: usize,
    chunk_rows: usize,
    visit: &'a mut dyn FnMut(usize, Table) -> Result<(), DataError>,
    visited: bool,
}

impl<'a> Chunker<'a> {
    fn new(
        path: &Path,
        chunk_rows: usize,
        visit: &'a mut dyn FnMut(usize, Table) -> Result<(), DataError>,
    ) -> Self {
        Self {
            table: Table {
                path: path.to_path_buf(),
                ..Table::default()
            },
            first_row: 0,
            chunk_rows,
            visit,
            visited: false,
        }
    }

    /// Row `table.rows.len()` was pushed: pass the chunk on if it is full.
    fn pushed(&mut self) -> Result<(), DataError> {
        if self.table.rows.len() >= self.chunk_rows {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DataError> {
        let next = Table {
            path: self.table.path.clone(),
            columns: self.table.columns.clone(),
            types: self.table.types.clone(),
            rows: Vec::new(),
            bad: Vec::new(),
        };
        let table = std::mem::replace(&mut self.table, next);
        let n = table.rows.len();
        (self.visit)(self.first_row, table)?;
        self.first_row += n;
        self.visited = true;
        Ok(())
    }

    fn finish(mut self) -> Result<(), DataError> {
        if !self.table.rows.is_empty() || !self.visited {
            self.flush()?;
        }
        Ok(())
    }
}

fn parquet_chunks(
    path: &Path,
    chunk_rows: usize,
    visit: &mut dyn FnMut(usize, Table) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let file_err = |message: String| DataError::File {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|e| file_err(e.to_string()))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| file_err(format!("not a readable parquet file: {e}")))?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let fields = schema.root_schema().get_fields();
    let mut chunks = Chunker::new(path, chunk_rows, visit);
    chunks.table.columns = fields.iter().map(|f| f.name().to_string()).collect();
    chunks.table.types = fields.iter().map(|f| parquet_type_name(f)).collect();
    let iter = reader
        .get_row_iter(None)
        .map_err(|e| file_err(format!("not a readable parquet file: {e}")))?;
    for (i, row) in iter.enumerate() {
        let row = row.map_err(|e| file_err(format!("row {i} cannot be read: {e}")))?;
        let mut obj = Map::new();
        let index = chunks.table.rows.len();
        for (name, field) in row.get_column_iter() {
            match field_to_json(field) {
                Ok(v) => {
                    obj.insert(name.clone(), v);
                }
                Err(msg) => {
                    obj.insert(name.clone(), Value::Null);
                    chunks
                        .table
                        .bad
                        .push((index, format!("column `{name}`: {msg}")));
                }
            }
        }
        chunks.table.rows.push(obj);
        chunks.pushed()?;
    }
    chunks.finish()
}

/// A short, readable name for a parquet column's type ("string", "list", "double").
fn parquet_type_name(t: &parquet::schema::types::Type) -> String {
    use parquet::basic::{ConvertedType, LogicalType};
    let info = t.get_basic_info();
    if !t.is_primitive() {
        return match info.converted_type() {
            ConvertedType::LIST => "list".into(),
            ConvertedType::MAP | ConvertedType::MAP_KEY_VALUE => "map".into(),
            _ => "struct".into(),
        };
    }
    match (info.logical_type_ref(), t.get_physical_type()) {
        (Some(LogicalType::String), _) => "string".into(),
        (_, p) if info.converted_type() == ConvertedType::UTF8 => format!("string ({p})"),
        (_, p) => p.to_string().to_lowercase(),
    }
}

fn field_to_json(field: &PqField) -> Result<Value, String> {
    Ok(match field {
        PqField::Null => Value::Null,
        PqField::Bool(b) => Value::Bool(*b),
        PqField::Byte(v) => Value::from(*v),
        PqField::Short(v) => Value::from(*v),
        PqField::Int(v) => Value::from(*v),
        PqField::Long(v) => Value::from(*v),
        PqField::UByte(v) => Value::from(*v),
        PqField::UShort(v) => Value::from(*v),
        PqField::UInt(v) => Value::from(*v),
        PqField::ULong(v) => Value::from(*v),
        PqField::Float(v) => float_json(f64::from(*v)),
        PqField::Double(v) => float_json(*v),
        PqField::Str(s) => Value::String(s.clone()),
        PqField::Bytes(b) => std::str::from_utf8(b.data())
            .map(|s| Value::String(s.to_string()))
            .map_err(|e| format!("bytes that are not valid UTF-8 ({e})"))?,
        PqField::Group(row) => {
            let mut obj = Map::new();
            for (k, v) in row.get_column_iter() {
                obj.insert(k.clone(), field_to_json(v)?);
            }
            Value::Object(obj)
        }
        PqField::ListInternal(list) => Value::Array(
            list.elements()
                .iter()
                .map(field_to_json)
                .collect::<Result<_, _>>()?,
        ),
        // Dates, times and decimals: their display form.
        other => Value::String(other.to_string()),
    })
}

/// JSON numbers cannot be NaN or infinite: those become the strings Python writes.
fn float_json(v: f64) -> Value {
    serde_json::Number::from_f64(v)
        .map(Value::Number)
        .unwrap_or_else(|| {
            Value::String(if v.is_nan() {
                "NaN".into()
            } else if v > 0.0 {
                "Infinity".into()
            } else {
                "-Infinity".into()
            })
        })
}

fn jsonl_chunks(
    path: &Path,
    chunk_rows: usize,
    visit: &mut dyn FnMut(usize, Table) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let file_err = |message: String| DataError::File {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|e| file_err(e.to_string()))?;
    let mut reader = BufReader::new(file);
    let mut chunks = Chunker::new(path, chunk_rows, visit);
    // A JSON document that is an array of objects (LLaMA-Factory's datasets) is read
    // whole; anything else line by line.
    let starts_array = reader
        .fill_buf()
        .map_err(|e| file_err(e.to_string()))?
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b'[');
    if starts_array {
        let mut text = String::new();
        reader
            .read_to_string(&mut text)
            .map_err(|e| file_err(format!("not valid UTF-8 text ({e})")))?;
        let items: Vec<Value> = serde_json::from_str(&text)
            .map_err(|e| file_err(format!("not a valid JSON array ({e})")))?;
        for (i, item) in items.into_iter().enumerate() {
            push_object(&mut chunks.table, item, || format!("item {i}"));
            chunks.pushed()?;
        }
        return chunks.finish();
    }
    let mut line = Vec::new();
    let mut line_no = 0usize;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| file_err(e.to_string()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let row = chunks.table.rows.len();
        match std::str::from_utf8(&line) {
            Err(e) => {
                chunks
                    .table
                    .bad
                    .push((row, format!("line {line_no} is not valid UTF-8 ({e})")));
                chunks.table.rows.push(Map::new());
            }
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => match serde_json::from_str::<Value>(text) {
                Ok(v) => push_object(&mut chunks.table, v, || format!("line {line_no}")),
                Err(e) => {
                    chunks
                        .table
                        .bad
                        .push((row, format!("line {line_no} is not valid JSON ({e})")));
                    chunks.table.rows.push(Map::new());
                }
            },
        }
        chunks.pushed()?;
    }
    chunks.finish()
}

/// Add one JSON value as a row: an object's keys become columns; anything else is a bad
/// row (`what` says where it was: "line 3").
fn push_object(table: &mut Table, value: Value, what: impl Fn() -> String) {
    match value {
        Value::Object(obj) => {
            for (k, v) in &obj {
                if !table.columns.iter().any(|c| c == k) {
                    table.columns.push(k.clone());
                    table.types.push(json_type(v).into());
                }
            }
            table.rows.push(obj);
        }
        other => {
            let row = table.rows.len();
            table.bad.push((
                row,
                format!("{} is a JSON {}, not an object", what(), json_type(&other)),
            ));
            table.rows.push(Map::new());
        }
    }
}

pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// A required, non-empty text cell.
pub fn text_cell(table: &Table, row: usize, column: &str) -> Result<String, DataError> {
    match table.rows[row].get(column) {
        None | Some(Value::Null) => Err(table.cell_error(row, column, "is null")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(table.cell_error(row, column, "is empty"))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(table.cell_error(
            row,
            column,
            format!("should be text, found a {}", json_type(other)),
        )),
    }
}

/// A conversation cell: a list of `{role, content}` objects.
pub fn messages_cell(table: &Table, row: usize, column: &str) -> Result<Vec<Message>, DataError> {
    let value = table.rows[row].get(column).unwrap_or(&Value::Null);
    parse_messages(value).map_err(|m| table.cell_error(row, column, m))
}

/// A list of `{role, content}` objects (content may be null only for an empty turn).
pub fn parse_messages(value: &Value) -> Result<Vec<Message>, String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "should be a list of {{role, content}} messages, found a {}",
            json_type(value)
        ));
    };
    if items.is_empty() {
        return Err("is an empty list of messages".into());
    }
    items
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m.get("role").and_then(Value::as_str);
            let content = m.get("content").and_then(Value::as_str);
            match (role, content) {
                (Some(r), Some(c)) => Ok(Message::new(r, c)),
                _ => Err(format!(
                    "message {i} should be an object with text `role` and `content`, found {}",
                    truncate(&m.to_string(), 80)
                )),
            }
        })
        .collect()
}

/// A prompt cell: text, or a list of messages.
pub fn prompt_cell(
    table: &Table,
    row: usize,
    _row_data: &Row,
    column: &str,
) -> Result<Prompt, DataError> {
    table.require_column(column)?;
    match table.rows[row].get(column) {
        Some(Value::Array(_)) => messages_cell(table, row, column).map(Prompt::Chat),
        _ => text_cell(table, row, column).map(Prompt::Text),
    }
}

/// An optional number cell.
pub fn number_cell(table: &Table, row: usize, column: &str) -> Result<Option<f64>, DataError> {
    match table.rows[row].get(column) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
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

pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Write rows as JSONL or parquet (by extension), atomically.
pub fn write_rows(path: &Path, rows: &[Row]) -> Result<(), DataError> {
    let err = |message: String| DataError::File {
        path: path.to_path_buf(),
        message,
    };
    let bytes = match format_of(path) {
        Format::Jsonl => {
            let mut out = Vec::new();
            for row in rows {
                serde_json::to_writer(&mut out, row).map_err(|e| err(e.to_string()))?;
                out.push(b'\n');
            }
            out
        }
        Format::Parquet => {
            let batch = rows_to_batch(rows).map_err(|e| err(e.to_string()))?;
            let mut out = Vec::new();
            let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), None)
                .map_err(|e| err(e.to_string()))?;
            writer.write(&batch).map_err(|e| err(e.to_string()))?;
            writer.close().map_err(|e| err(e.to_string()))?;
            out
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    crate::util::write_atomic(path, &bytes).map_err(|e| err(e.to_string()))
}

/// Column names in first-seen order across rows.
fn column_order(rows: &[Row]) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for row in rows {
        for k in row.keys() {
            if !cols.iter().any(|c| c == k) {
                cols.push(k.clone());
            }
        }
    }
    cols
}

/// The parquet type a JSON column is written as.
#[derive(Debug, Clone, PartialEq)]
enum ColumnKind {
    Bool,
    Int,
    Float,
    Text,
    TextList,
    BoolList,
    FloatList,
    /// A list of objects whose values are all text (chat messages), with these keys.
    RecordList(Vec<String>),
    /// Anything else, stored as JSON text.
    Json,
}

fn column_kind(values: &[&Value]) -> ColumnKind {
    let present: Vec<&Value> = values.iter().copied().filter(|v| !v.is_null()).collect();
    let all = |f: &dyn Fn(&Value) -> bool| !present.is_empty() && present.iter().all(|v| f(v));
    let all_lists =
        |f: &dyn Fn(&Value) -> bool| all(&|v| v.as_array().is_some_and(|a| a.iter().all(f)));
    if present.is_empty() {
        return ColumnKind::Text;
    }
    if all(&Value::is_boolean) {
        ColumnKind::Bool
    } else if all(&Value::is_i64) {
        ColumnKind::Int
    } else if all(&Value::is_number) {
        ColumnKind::Float
    } else if all(&Value::is_string) {
        ColumnKind::Text
    // Lists may hold nulls (a judge's probability for the checks it did not make).
    } else if all_lists(&|x| x.is_string() || x.is_null()) {
        ColumnKind::TextList
    } else if all_lists(&|x| x.is_boolean() || x.is_null()) {
        ColumnKind::BoolList
    } else if all_lists(&|x| x.is_number() || x.is_null()) {
        ColumnKind::FloatList
    } else if all_lists(&|x| {
        x.as_object()
            .is_some_and(|o| o.values().all(Value::is_string))
    }) {
        let mut keys: Vec<String> = Vec::new();
        for v in &present {
            for item in v.as_array().into_iter().flatten() {
                for k in item.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
        }
        if keys.is_empty() {
            // Only empty objects (IFEval kwargs such as `[{}]`): parquet has no empty
            // structs, so they are kept as JSON text.
            ColumnKind::Json
        } else {
            ColumnKind::RecordList(keys)
        }
    } else {
        ColumnKind::Json
    }
}

fn build_column(kind: &ColumnKind, values: &[&Value]) -> ArrayRef {
    match kind {
        ColumnKind::Bool => {
            let mut b = BooleanBuilder::new();
            values.iter().for_each(|v| b.append_option(v.as_bool()));
            Arc::new(b.finish())
        }
        ColumnKind::Int => {
            let mut b = Int64Builder::new();
            values.iter().for_each(|v| b.append_option(v.as_i64()));
            Arc::new(b.finish())
        }
        ColumnKind::Float => {
            let mut b = Float64Builder::new();
            values.iter().for_each(|v| b.append_option(v.as_f64()));
            Arc::new(b.finish())
        }
        ColumnKind::Text => {
            let mut b = StringBuilder::new();
            values.iter().for_each(|v| b.append_option(v.as_str()));
            Arc::new(b.finish())
        }
        ColumnKind::Json => {
            let mut b = StringBuilder::new();
            values
                .iter()
                .for_each(|v| b.append_option((!v.is_null()).then(|| v.to_string())));
            Arc::new(b.finish())
        }
        ColumnKind::TextList => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for v in values {
                match v.as_array() {
                    Some(a) => {
                        a.iter().for_each(|x| b.values().append_option(x.as_str()));
                        b.append(true);
                    }
                    None => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
        ColumnKind::BoolList => {
            let mut b = ListBuilder::new(BooleanBuilder::new());
            for v in values {
                match v.as_array() {
                    Some(a) => {
                        a.iter().for_each(|x| b.values().append_option(x.as_bool()));
                        b.append(true);
                    }
                    None => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
        ColumnKind::FloatList => {
            let mut b = ListBuilder::new(Float64Builder::new());
            for v in values {
                match v.as_array() {
                    Some(a) => {
                        a.iter().for_each(|x| b.values().append_option(x.as_f64()));
                        b.append(true);
                    }
                    None => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
        ColumnKind::RecordList(keys) => {
            let fields: Fields = keys
                .iter()
                .map(|k| Field::new(k, DataType::Utf8, true))
                .collect();
            let builders = keys
                .iter()
                .map(|_| {
                    Box::new(StringBuilder::new()) as Box<dyn arrow_array::builder::ArrayBuilder>
                })
                .collect();
            let mut b = ListBuilder::new(StructBuilder::new(fields, builders));
            for v in values {
                match v.as_array() {
                    Some(items) => {
                        for item in items {
                            let s = b.values();
                            for (i, k) in keys.iter().enumerate() {
                                s.field_builder::<StringBuilder>(i)
                                    .expect("every field is text")
                                    .append_option(item.get(k).and_then(Value::as_str));
                            }
                            s.append(true);
                        }
                        b.append(true);
                    }
                    None => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
    }
}

/// Build one record batch from JSON rows: each column gets the narrowest type that
/// holds all its values (bool, integer, float, text, lists of those, lists of text
/// records such as chat messages), and anything else is stored as JSON text.
pub fn rows_to_batch(rows: &[Row]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for name in column_order(rows) {
        let values: Vec<&Value> = rows
            .iter()
            .map(|r| r.get(&name).unwrap_or(&Value::Null))
            .collect();
        let kind = column_kind(&values);
        let array = build_column(&kind, &values);
        fields.push(Field::new(&name, array.data_type().clone(), true));
        arrays.push(array);
    }
    if arrays.is_empty() {
        return Ok(RecordBatch::new_empty(Arc::new(Schema::empty())));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rmtk-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn parquet_round_trip_keeps_types_and_messages() {
        let rows: Vec<Row> = vec![
            json!({"prompt": "a", "score": 1.5, "n": 3, "ok": true, "tags": ["x", "y"],
                   "messages": [{"role": "user", "content": "hi"}], "probs": [null, 0.25]}),
            json!({"prompt": "b", "score": null, "n": 4, "ok": false, "tags": [], "probs": [],
                   "messages": [{"role": "user", "content": "yo"}, {"role": "assistant", "content": "hey"}]}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
        let path = tmp("rt.parquet");
        write_rows(&path, &rows).unwrap();
        let t = read_table(&path).unwrap();
        assert_eq!(
            t.columns,
            ["prompt", "score", "n", "ok", "tags", "messages", "probs"]
        );
        assert_eq!(t.rows[0]["score"], json!(1.5));
        assert_eq!(t.rows[1]["score"], Value::Null);
        assert_eq!(t.rows[1]["n"], json!(4));
        assert_eq!(t.rows[0]["tags"], json!(["x", "y"]));
        assert_eq!(t.column_type("probs"), Some("list"));
        assert_eq!(t.rows[0]["probs"], json!([null, 0.25]));
        assert_eq!(t.rows[1]["probs"], json!([]));
        // Lists of empty objects have no parquet type: they are written as JSON text.
        let path = tmp("empty-structs.parquet");
        let rows: Vec<Row> = vec![json!({"kwargs": [{}]}).as_object().unwrap().clone()];
        write_rows(&path, &rows).unwrap();
        assert_eq!(read_table(&path).unwrap().rows[0]["kwargs"], json!("[{}]"));
        // Messages are written as list<struct<role, content>> and read back as such.
        assert_eq!(
            parse_messages(&t.rows[1]["messages"]).unwrap()[1],
            Message::new("assistant", "hey")
        );
        assert_eq!(t.column_type("messages"), Some("list"));
    }

    #[test]
    fn jsonl_bad_lines_are_kept_aside_with_their_row() {
        let path = tmp("bad.jsonl");
        std::fs::write(&path, b"{\"a\": 1}\nnot json\n\xff\xfe\n[1]\n{\"a\": 2}\n").unwrap();
        let t = read_table(&path).unwrap();
        assert_eq!(t.rows.len(), 5);
        let bad: Vec<usize> = t.bad.iter().map(|b| b.0).collect();
        assert_eq!(bad, [1, 2, 3]);
        assert!(t.bad[1].1.contains("UTF-8"), "{:?}", t.bad);
        assert_eq!(t.rows[4]["a"], json!(2));
    }

    #[test]
    fn a_file_that_is_not_parquet_says_so() {
        let path = tmp("fake.parquet");
        std::fs::write(&path, "hello").unwrap();
        let err = read_table(&path).unwrap_err().to_string();
        assert!(err.contains("not a parquet file"), "{err}");
        assert!(err.contains("fake.parquet"), "{err}");
    }

    #[test]
    fn a_misspelled_column_lists_the_columns_and_suggests() {
        let t = Table {
            path: "x.parquet".into(),
            columns: vec!["prompt".into(), "chosen".into(), "rejected".into()],
            types: vec!["str".into(); 3],
            ..Table::default()
        };
        let err = t.require_column("choosen").unwrap_err().to_string();
        assert_eq!(
            err,
            "x.parquet: no column `choosen` (columns found: prompt, chosen, rejected); did you mean `chosen`?"
        );
    }
}

/// A prompt as given: text, or a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Text(String),
    Chat(Vec<Message>),
}

impl Prompt {
    /// The prompt as plain text, for checkers and logs: a text as it is, a lone user
    /// turn as its content, a longer conversation written out turn by turn.
    pub fn to_text(&self) -> String {
        match self {
            Prompt::Text(t) => t.clone(),
            Prompt::Chat(messages) => match &messages[..] {
                [m] if m.role == "user" => m.content.clone(),
                _ => messages
                    .iter()
                    .map(|m| format!("{}: {}", m.role, m.content))
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            },
        }
    }
}

/// Token ids of a prompt as the model sees it.
pub fn encode_prompt(
    tok: &Tokenizer,
    prompt: &Prompt,
    chat: bool,
    system: Option<&str>,
) -> anyhow::Result<Vec<u32>> {
    let is_empty = match prompt {
        Prompt::Text(t) => t.trim().is_empty(),
        Prompt::Chat(m) => m.is_empty() || m.iter().all(|m| m.content.trim().is_empty()),
    };
    if is_empty {
        anyhow::bail!("the prompt is empty");
    }
    if !chat {
        return match prompt {
            Prompt::Text(t) => Ok(tok.encode(t, true)?),
            Prompt::Chat(_) => anyhow::bail!(
                "the prompt is a list of messages: add --chat to render it with the chat template"
            ),
        };
    }
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(Message::new("system", s));
    }
    match prompt {
        Prompt::Text(t) => messages.push(Message::new("user", t)),
        Prompt::Chat(m) => messages.extend(m.iter().cloned()),
    }
    let text = tok.apply_chat_template(&messages, true)?;
    Ok(tok.encode(&text, false)?)
}
