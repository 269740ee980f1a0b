//! The IFEval rules engine: the 25 verifiable instructions of IFEval (Zhou et al. 2023,
//! arXiv 2311.07911), checked with the exact semantics of Google's reference checker
//! (`instruction_following_eval`: `instructions.py`, `instructions_util.py`,
//! `evaluation_lib.py`), in its strict and loose forms, and the benchmark's aggregate.
//!
//! ```text
//! let inst = Instruction::new("length_constraints:number_words", &kwargs)?;
//! let check = inst.check(response);            // strict
//! let loose = check_loose(&inst, response);    // the loose variant of evaluation_lib
//! let row = evaluate(&instructions, response); // both, for a prompt's instructions
//! report.add(&instructions, &row);             // IfevalReport: the benchmark's numbers
//! ```
//!
//! The reference is Python 3.11 with NLTK 3.10.4 (whose own patterns run on the `regex`
//! module), the English `punkt_tab` model and langdetect 1.0.9 seeded with 0; the
//! parity tests (`parity_tests.rs`) compare every verdict with that environment's.
//! Where the reference is odd, it is followed on purpose (those places say so); the
//! IFEval numbers are defined by it. Each category of instructions has its own module;
//! the Python text semantics they share live in `words.rs` (character classes, word
//! counts, NLTK's `word_tokenize`), `punkt.rs` (sentences), `pyre.rs` (Python regexes)
//! and `pyjson.rs` (`json.loads`). The library does no I/O.
//!
//! Deliberate departures, where the reference has no single answer:
//! * An argument left out (or out of range) makes the reference draw a random one;
//!   [`Instruction::new`] refuses with [`RuleError::BadKwargs`] instead.
//! * `keywords:letter_frequency` with a `letter` that is not an ASCII letter: the
//!   2023-24 reference (and lm-eval's copy) draws a random letter; this counts the
//!   character as given, as Google's 2025 revision does, and says so in
//!   [`Instruction::notes`] and in failure reasons.
//!
//! Known limits (none occurs in IFEval's data): keyword, splitter and marker arguments
//! are Python regexes translated to the `regex` crate, which refuses look-around,
//! back-references and possessive quantifiers, and approximates `\b` next to combining
//! marks and a non-MULTILINE `$` before a final newline (plain words are exact); JSON
//! nested deeper than CPython's recursion limit is checked rather than crashing.

mod change_case;
mod combination;
mod detectable_content;
mod detectable_format;
pub mod ifbench;
mod keywords;
pub mod langdetect;
mod language;
mod length_constraints;
mod punctuation;
pub mod punkt;
#[rustfmt::skip]
mod pychars_table;
mod pyjson;
mod pyre;
mod report;
mod startend;
pub mod words;

#[cfg(test)]
mod parity_tests;

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

pub use report::{Accuracy, IfevalReport};

/// The 25 instruction ids of IFEval, category first.
pub const INSTRUCTION_IDS: [&str; 25] = [
    "keywords:existence",
    "keywords:frequency",
    "keywords:forbidden_words",
    "keywords:letter_frequency",
    "language:response_language",
    "length_constraints:number_sentences",
    "length_constraints:number_paragraphs",
    "length_constraints:number_words",
    "length_constraints:nth_paragraph_first_word",
    "detectable_content:number_placeholders",
    "detectable_content:postscript",
    "detectable_format:number_bullet_lists",
    "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections",
    "detectable_format:json_format",
    "detectable_format:title",
    "combination:two_responses",
    "combination:repeat_prompt",
    "startend:end_checker",
    "startend:quotation",
    "change_case:capital_word_frequency",
    "change_case:english_capital",
    "change_case:english_lowercase",
    "punctuation:no_comma",
];

/// Why an instruction could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    /// The id is not one of IFEval's 25.
    UnknownInstruction {
        id: String,
        /// The benchmark whose ids were expected: "IFEval" or "IFBench".
        benchmark: &'static str,
        accepted: Vec<&'static str>,
    },
    /// The arguments do not describe a checkable instruction.
    BadKwargs { id: &'static str, message: String },
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::UnknownInstruction {
                id,
                benchmark,
                accepted,
            } => write!(
                f,
                "unknown instruction id {id:?}; the {benchmark} ids are: {}",
                accepted.join(", ")
            ),
            RuleError::BadKwargs { id, message } => write!(f, "{id}: {message}"),
        }
    }
}

impl std::error::Error for RuleError {}

/// The verdict of one instruction on one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub pass: bool,
    /// On failure: what was found and what was needed, e.g.
    /// `"length_constraints:number_words: 212 words, needs at least 300"`.
    pub reason: Option<String>,
}

impl Check {
    fn passed() -> Check {
        Check {
            pass: true,
            reason: None,
        }
    }

    fn failed(reason: String) -> Check {
        Check {
            pass: false,
            reason: Some(reason),
        }
    }
}

/// A category's verdict: `Err` carries the reason of a failure (without the id), or
/// an empty string when no reason was asked for.
type Verdict = Result<(), String>;

/// A failure, with its reason built only when `explain` (loose variants need only the
/// verdict, and most of them fail).
fn because(explain: bool, reason: impl FnOnce() -> String) -> Verdict {
    Err(if explain { reason() } else { String::new() })
}

/// "less than" / "at least", the two comparisons of IFEval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    LessThan,
    AtLeast,
}

impl Relation {
    fn as_str(self) -> &'static str {
        match self {
            Relation::LessThan => "less than",
            Relation::AtLeast => "at least",
        }
    }

    fn holds(self, actual: i64, threshold: i64) -> bool {
        match self {
            Relation::LessThan => actual < threshold,
            Relation::AtLeast => actual >= threshold,
        }
    }

    /// `Ok` when `actual` satisfies the relation, else the reason.
    fn verdict(
        self,
        explain: bool,
        actual: usize,
        threshold: i64,
        what: impl fmt::Display,
    ) -> Verdict {
        let actual = i64::try_from(actual).unwrap_or(i64::MAX);
        if self.holds(actual, threshold) {
            Ok(())
        } else {
            because(explain, || {
                format!("{actual} {what}, needs {} {threshold}", self.as_str())
            })
        }
    }
}

/// A category's rule, with its arguments validated and anything costly prepared.
#[derive(Debug, Clone)]
enum Rule {
    Keywords(keywords::Rule),
    Language(language::Rule),
    Length(length_constraints::Rule),
    Content(detectable_content::Rule),
    Format(detectable_format::Rule),
    Combination(combination::Rule),
    StartEnd(startend::Rule),
    Case(change_case::Rule),
    Punctuation(punctuation::Rule),
}

/// One IFEval instruction: a validated id and its typed arguments.
#[derive(Debug, Clone)]
pub struct Instruction {
    id: &'static str,
    rule: Rule,
    notes: Vec<String>,
}

impl Instruction {
    /// Builds an instruction from its id (e.g. `"length_constraints:number_words"`) and
    /// its kwargs as in IFEval's `input_data.jsonl` (a JSON object; `null` values count
    /// as absent). Every argument the instruction takes is required: where the
    /// reference would draw a random one, this refuses instead.
    pub fn new(id: &str, kwargs: &Map<String, Value>) -> Result<Instruction, RuleError> {
        Instruction::build(id, kwargs, None)
    }

    /// As [`Instruction::new`], with the prompt the response answers: it stands in for
    /// `prompt_to_repeat` of `combination:repeat_prompt` when the kwargs lack it.
    pub fn with_prompt(
        id: &str,
        kwargs: &Map<String, Value>,
        prompt: &str,
    ) -> Result<Instruction, RuleError> {
        Instruction::build(id, kwargs, Some(prompt))
    }

    fn build(
        id: &str,
        kwargs: &Map<String, Value>,
        prompt: Option<&str>,
    ) -> Result<Instruction, RuleError> {
        let Some(&id) = INSTRUCTION_IDS.iter().find(|&&known| known == id) else {
            return Err(RuleError::UnknownInstruction {
                id: id.to_owned(),
                benchmark: "IFEval",
                accepted: INSTRUCTION_IDS.to_vec(),
            });
        };
        let (category, name) = id.split_once(':').unwrap_or((id, ""));
        let args = Kwargs::new(id, kwargs);
        let mut notes = Vec::new();
        let rule = match category {
            "keywords" => Rule::Keywords(keywords::Rule::new(name, &args, &mut notes)?),
            "language" => Rule::Language(language::Rule::new(name, &args)?),
            "length_constraints" => Rule::Length(length_constraints::Rule::new(name, &args)?),
            "detectable_content" => Rule::Content(detectable_content::Rule::new(name, &args)?),
            "detectable_format" => Rule::Format(detectable_format::Rule::new(name, &args)?),
            "combination" => Rule::Combination(combination::Rule::new(name, &args, prompt)?),
            "startend" => Rule::StartEnd(startend::Rule::new(name, &args)?),
            "change_case" => Rule::Case(change_case::Rule::new(name, &args)?),
            _ => Rule::Punctuation(punctuation::Rule::new(name, &args)?),
        };
        args.reject_unknown()?;
        Ok(Instruction { id, rule, notes })
    }

    /// The instruction id, e.g. `"detectable_format:title"`.
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// The category, the part of the id before `:`.
    pub fn category(&self) -> &'static str {
        self.id
            .split_once(':')
            .map_or(self.id, |(category, _)| category)
    }

    /// The instruction as English text, worded as the reference's `build_description`
    /// words it with these arguments.
    pub fn describe(&self) -> String {
        match &self.rule {
            Rule::Keywords(r) => r.describe(),
            Rule::Language(r) => r.describe(),
            Rule::Length(r) => r.describe(),
            Rule::Content(r) => r.describe(),
            Rule::Format(r) => r.describe(),
            Rule::Combination(r) => r.describe(),
            Rule::StartEnd(r) => r.describe(),
            Rule::Case(r) => r.describe(),
            Rule::Punctuation(r) => r.describe(),
        }
    }

    /// Where this instruction, with these arguments, is checked differently from the
    /// reference on purpose (empty for nearly every instruction).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Whether the verdict can depend on language detection (langdetect).
    pub fn uses_langdetect(&self) -> bool {
        matches!(
            self.id,
            "language:response_language"
                | "change_case:english_capital"
                | "change_case:english_lowercase"
        )
    }

    /// The strict verdict, as `evaluation_lib.test_instruction_following_strict`:
    /// an empty (all whitespace) response follows nothing.
    pub fn check(&self, response: &str) -> Check {
        if words::strip(response).is_empty() {
            return Check::failed(format!("{}: empty response", self.id));
        }
        match self.check_text(response, true) {
            Ok(()) => Check::passed(),
            Err(reason) => {
                let mut reason = format!("{}: {reason}", self.id);
                for note in &self.notes {
                    reason.push_str(&format!(" ({note})"));
                }
                Check::failed(reason)
            }
        }
    }

    /// The strict verdict without its reason (for the loose variants).
    fn follows(&self, response: &str) -> bool {
        !words::strip(response).is_empty() && self.check_text(response, false).is_ok()
    }

    /// The category's verdict; the failure reason is built only when `explain`.
    fn check_text(&self, response: &str, explain: bool) -> Verdict {
        match &self.rule {
            Rule::Keywords(r) => r.check(response, explain),
            Rule::Language(r) => r.check(response, explain),
            Rule::Length(r) => r.check(response, explain),
            Rule::Content(r) => r.check(response, explain),
            Rule::Format(r) => r.check(response, explain),
            Rule::Combination(r) => r.check(response, explain),
            Rule::StartEnd(r) => r.check(response, explain),
            Rule::Case(r) => r.check(response, explain),
            Rule::Punctuation(r) => r.check(response, explain),
        }
    }
}

/// The eight texts `evaluation_lib.test_instruction_following_loose` tries: the
/// response, with `*` removed, without its first line, without its last line, without
/// both (each of these three stripped), and the `*`-removed version of each of the
/// three. The line-dropped texts borrow from the response; only `*`-removed texts of
/// texts that have a `*` are new strings.
pub struct LooseVariants<'a> {
    texts: [Cow<'a, str>; 8],
}

impl<'a> LooseVariants<'a> {
    pub fn new(response: &'a str) -> LooseVariants<'a> {
        // `"\n".join(lines[1:])`, `lines[:-1]` and `lines[1:-1]` are slices of the response.
        let (remove_first, remove_last, remove_both) =
            match (response.find('\n'), response.rfind('\n')) {
                (Some(first), Some(last)) => (
                    &response[first + 1..],
                    &response[..last],
                    if first < last {
                        &response[first + 1..last]
                    } else {
                        ""
                    },
                ),
                _ => ("", "", ""),
            };
        let unstarred = |text: &'a str| -> Cow<'a, str> {
            if text.contains('*') {
                Cow::Owned(text.replace('*', ""))
            } else {
                Cow::Borrowed(text)
            }
        };
        let (first, last, both) = (
            words::strip(remove_first),
            words::strip(remove_last),
            words::strip(remove_both),
        );
        LooseVariants {
            texts: [
                Cow::Borrowed(response),
                unstarred(response),
                Cow::Borrowed(first),
                Cow::Borrowed(last),
                Cow::Borrowed(both),
                unstarred(first),
                unstarred(last),
                unstarred(both),
            ],
        }
    }

    /// The eight texts, in upstream order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.texts.iter().map(|text| text.as_ref())
    }
}

/// The loose verdict of one instruction: followed if any loose variant follows it.
pub fn check_loose(inst: &Instruction, response: &str) -> Check {
    let strict = inst.check(response);
    loose_after_strict(inst, &LooseVariants::new(response), strict)
}

/// The loose verdict, given the strict one (the first variant is the response itself).
/// A variant equal to an earlier one has the same verdict and is not checked again.
fn loose_after_strict(inst: &Instruction, variants: &LooseVariants<'_>, strict: Check) -> Check {
    if strict.pass {
        return strict;
    }
    let passes = variants
        .texts
        .iter()
        .enumerate()
        .skip(1)
        .any(|(i, text)| !variants.texts[..i].contains(text) && inst.follows(text));
    if passes {
        return Check::passed();
    }
    let mut failure = strict;
    if let Some(reason) = &mut failure.reason {
        reason.push_str(" (no loose variant passes either)");
    }
    failure
}

/// The verdicts of a prompt's instructions on one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowVerdict {
    pub strict: Vec<Check>,
    pub loose: Vec<Check>,
    pub follow_all_strict: bool,
    pub follow_all_loose: bool,
}

/// Strict and loose verdicts of every instruction of a prompt on its response.
pub fn evaluate(instructions: &[Instruction], response: &str) -> RowVerdict {
    let strict: Vec<Check> = instructions
        .iter()
        .map(|inst| inst.check(response))
        .collect();
    let mut variants = None;
    let loose: Vec<Check> = instructions
        .iter()
        .zip(&strict)
        .map(|(inst, strict)| {
            if strict.pass {
                strict.clone()
            } else {
                let variants = variants.get_or_insert_with(|| LooseVariants::new(response));
                loose_after_strict(inst, variants, strict.clone())
            }
        })
        .collect();
    RowVerdict {
        follow_all_strict: strict.iter().all(|c| c.pass),
        follow_all_loose: loose.iter().all(|c| c.pass),
        strict,
        loose,
    }
}

// ---------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------

const NON_NEGATIVE: &str = "an integer >= 0";
const RELATION: &str = "\"less than\" or \"at least\"";

/// The kwargs each instruction takes, and what each must be (all are required).
const SIGNATURES: [(&str, &[(&str, &str)]); 25] = [
    (
        "keywords:existence",
        &[("keywords", "a non-empty list of strings, Python regexes")],
    ),
    (
        "keywords:frequency",
        &[
            ("keyword", "a non-empty string, a Python regex"),
            ("frequency", NON_NEGATIVE),
            ("relation", RELATION),
        ],
    ),
    (
        "keywords:forbidden_words",
        &[("forbidden_words", "a non-empty list of strings")],
    ),
    (
        "keywords:letter_frequency",
        &[
            ("letter", "one character"),
            ("let_frequency", NON_NEGATIVE),
            ("let_relation", RELATION),
        ],
    ),
    (
        "language:response_language",
        &[(
            "language",
            "an ISO 639-1 code the reference knows, e.g. \"de\"",
        )],
    ),
    (
        "length_constraints:number_sentences",
        &[("num_sentences", NON_NEGATIVE), ("relation", RELATION)],
    ),
    (
        "length_constraints:number_paragraphs",
        &[("num_paragraphs", NON_NEGATIVE)],
    ),
    (
        "length_constraints:number_words",
        &[("num_words", NON_NEGATIVE), ("relation", RELATION)],
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        &[
            ("num_paragraphs", NON_NEGATIVE),
            ("nth_paragraph", "an integer from 1 to num_paragraphs"),
            ("first_word", "a string"),
        ],
    ),
    (
        "detectable_content:number_placeholders",
        &[("num_placeholders", NON_NEGATIVE)],
    ),
    (
        "detectable_content:postscript",
        &[(
            "postscript_marker",
            "a string such as \"P.S.\" or \"P.P.S\"",
        )],
    ),
    (
        "detectable_format:number_bullet_lists",
        &[("num_bullets", NON_NEGATIVE)],
    ),
    ("detectable_format:constrained_response", &[]),
    (
        "detectable_format:number_highlighted_sections",
        &[("num_highlights", NON_NEGATIVE)],
    ),
    (
        "detectable_format:multiple_sections",
        &[
            (
                "section_spliter",
                "a string such as \"Section\", a Python regex",
            ),
            ("num_sections", NON_NEGATIVE),
        ],
    ),
    ("detectable_format:json_format", &[]),
    ("detectable_format:title", &[]),
    ("combination:two_responses", &[]),
    (
        "combination:repeat_prompt",
        &[(
            "prompt_to_repeat",
            "a non-empty string (Instruction::with_prompt supplies the prompt)",
        )],
    ),
    ("startend:end_checker", &[("end_phrase", "a string")]),
    ("startend:quotation", &[]),
    (
        "change_case:capital_word_frequency",
        &[
            ("capital_frequency", "an integer"),
            ("capital_relation", RELATION),
        ],
    ),
    ("change_case:english_capital", &[]),
    ("change_case:english_lowercase", &[]),
    ("punctuation:no_comma", &[]),
];

/// The kwargs of one instruction, read by the rule that takes them.
struct Kwargs<'a> {
    id: &'static str,
    map: &'a Map<String, Value>,
    signature: &'static [(&'static str, &'static str)],
}

impl<'a> Kwargs<'a> {
    fn new(id: &'static str, map: &'a Map<String, Value>) -> Kwargs<'a> {
        let signature = SIGNATURES
            .iter()
            .find(|(known, _)| *known == id)
            .map_or(&[][..], |(_, sig)| *sig);
        Kwargs { id, map, signature }
    }

    /// What the instruction takes, for error messages.
    fn takes(&self) -> String {
        if self.signature.is_empty() {
            return "it takes no arguments".to_owned();
        }
        let list: Vec<String> = self
            .signature
            .iter()
            .map(|(name, expects)| format!("{name} ({expects})"))
            .collect();
        format!("it takes {}", list.join(", "))
    }

    /// A `BadKwargs` error: the message, then what the instruction takes.
    fn error(&self, message: String) -> RuleError {
        RuleError::BadKwargs {
            id: self.id,
            message: format!("{message}; {}", self.takes()),
        }
    }

    fn expects(&self, name: &str) -> &'static str {
        self.signature
            .iter()
            .find(|(known, _)| *known == name)
            .map_or("", |(_, expects)| expects)
    }

    /// The value of `name`, `None` when absent or null.
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn required(&self, name: &str) -> Result<&'a Value, RuleError> {
        self.get(name).ok_or_else(|| {
            self.error(format!(
                "{name:?} is missing (the reference would draw a random one, which cannot be verified)"
            ))
        })
    }

    fn bad(&self, name: &str, value: &Value) -> RuleError {
        self.error(format!(
            "{name:?} must be {}, got {value}",
            self.expects(name)
        ))
    }

    /// A required integer of at least `min`.
    fn int(&self, name: &str, min: i64) -> Result<i64, RuleError> {
        let value = self.required(name)?;
        value
            .as_i64()
            .filter(|&n| n >= min)
            .ok_or_else(|| self.bad(name, value))
    }

    /// A required string.
    fn string(&self, name: &str) -> Result<&'a str, RuleError> {
        let value = self.required(name)?;
        value.as_str().ok_or_else(|| self.bad(name, value))
    }

    /// A required list of strings.
    fn strings(&self, name: &str) -> Result<Vec<String>, RuleError> {
        let value = self.required(name)?;
        let items = value.as_array().ok_or_else(|| self.bad(name, value))?;
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.bad(name, value))
            })
            .collect()
    }

    fn relation(&self, name: &str) -> Result<Relation, RuleError> {
        let value = self.required(name)?;
        match value.as_str() {
            Some("less than") => Ok(Relation::LessThan),
            Some("at least") => Ok(Relation::AtLeast),
            _ => Err(self.bad(name, value)),
        }
    }

    /// Non-null kwargs the instruction does not take are errors (the reference raises).
    fn reject_unknown(&self) -> Result<(), RuleError> {
        let unknown: Vec<&String> = self
            .map
            .iter()
            .filter(|(key, value)| {
                !value.is_null() && !self.signature.iter().any(|(name, _)| name == key)
            })
            .map(|(key, _)| key)
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(self.error(format!("unexpected {unknown:?}")))
        }
    }
}

/// Python's `repr()` of a str, as `str.format` prints lists of strings.
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || (c != ' ' && words::is_space(c)) || is_format_char(c) => {
                let cp = c as u32;
                if cp < 0x100 {
                    out.push_str(&format!("\\x{cp:02x}"));
                } else if cp < 0x10000 {
                    out.push_str(&format!("\\u{cp:04x}"));
                } else {
                    out.push_str(&format!("\\U{cp:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Common invisible format characters, which Python's repr escapes.
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// Displays as Python's `repr()` of a str (formatted only when displayed).
struct PyRepr<'a>(&'a str);

impl fmt::Display for PyRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&py_repr(self.0))
    }
}

/// Python's `repr()` of a list of strings.
fn py_repr_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| py_repr(s)).collect();
    format!("[{}]", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kwargs(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn inst(id: &str, value: Value) -> Instruction {
        Instruction::new(id, &kwargs(value)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(id: &str, value: Value) -> String {
        match Instruction::new(id, &kwargs(value)) {
            Ok(_) => panic!("{id} accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_id_builds_and_describes() {
        let args = [
            json!({"keywords": ["a", "b"]}),
            json!({"keyword": "a", "frequency": 2, "relation": "at least"}),
            json!({"forbidden_words": ["a"]}),
            json!({"letter": "a", "let_frequency": 2, "let_relation": "less than"}),
            json!({"language": "de"}),
            json!({"num_sentences": 3, "relation": "less than"}),
            json!({"num_paragraphs": 3}),
            json!({"num_words": 30, "relation": "at least"}),
            json!({"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "Hello"}),
            json!({"num_placeholders": 2}),
            json!({"postscript_marker": "P.S."}),
            json!({"num_bullets": 3}),
            json!({}),
            json!({"num_highlights": 2}),
            json!({"section_spliter": "Section", "num_sections": 3}),
            json!({}),
            json!({}),
            json!({}),
            json!({"prompt_to_repeat": "Say hi."}),
            json!({"end_phrase": "Bye."}),
            json!({}),
            json!({"capital_frequency": 3, "capital_relation": "at least"}),
            json!({}),
            json!({}),
            json!({}),
        ];
        for (id, args) in INSTRUCTION_IDS.iter().zip(args) {
            let inst = inst(id, args);
            assert_eq!(inst.id(), *id);
            assert!(!inst.describe().is_empty());
            assert!(inst.notes().is_empty());
        }
    }

    #[test]
    fn descriptions_follow_the_reference_wording() {
        assert_eq!(
            inst("keywords:existence", json!({"keywords": ["dog", "cat"]})).describe(),
            "Include keywords ['cat', 'dog'] in the response."
        );
        assert_eq!(
            inst("detectable_format:constrained_response", json!({})).describe(),
            "Answer with one of the following options: ('My answer is yes.', 'My answer is no.', 'My answer is maybe.')"
        );
        assert_eq!(
            inst("language:response_language", json!({"language": "hi"})).describe(),
            "Your ENTIRE response should be in Hindi language, no other language is allowed."
        );
        assert_eq!(
            inst(
                "length_constraints:nth_paragraph_first_word",
                json!({"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "Weekend"})
            )
            .describe(),
            "There should be 2 paragraphs. Paragraphs and only paragraphs are separated with each other by two new lines as if it was '\\n\\n' in python. Paragraph 1 must start with word weekend."
        );
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a\"b'c\n"), "'a\"b\\'c\\n'");
    }

    #[test]
    fn errors_say_what_is_accepted() {
        assert!(err("keywords:nope", json!({})).contains("keywords:existence"));
        assert!(
            err(
                "length_constraints:number_words",
                json!({"relation": "at least"})
            )
            .contains("num_words")
        );
        assert!(
            err(
                "length_constraints:number_words",
                json!({"num_words": 3, "relation": "at most"})
            )
            .contains("\"less than\" or \"at least\"")
        );
        assert!(
            err("punctuation:no_comma", json!({"num_words": 3})).contains("takes no arguments")
        );
        assert!(
            err(
                "detectable_format:number_bullet_lists",
                json!({"num_bullets": -1})
            )
            .contains(">= 0")
        );
        assert!(err("keywords:frequency", json!({"keyword": "x"})).contains(
            "it takes keyword (a non-empty string, a Python regex), frequency (an integer >= 0)"
        ));
        assert!(
            err(
                "detectable_format:number_bullet_lists",
                json!({"num_bullets": 2.5})
            )
            .contains("integer")
        );
        // null values are absent (the HF dataset lists every key of every instruction)
        assert!(
            Instruction::new("punctuation:no_comma", &kwargs(json!({"num_words": null}))).is_ok()
        );
    }

    #[test]
    fn instructions_can_be_shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Instruction>();
        send_sync::<IfevalReport>();
    }

    #[test]
    fn strict_rejects_empty_responses() {
        let no_comma = inst("punctuation:no_comma", json!({}));
        assert!(no_comma.check("fine").pass);
        let empty = no_comma.check(" \n\t");
        assert!(!empty.pass);
        assert_eq!(
            empty.reason.as_deref(),
            Some("punctuation:no_comma: empty response")
        );
    }

    #[test]
    fn loose_variants_match_evaluation_lib() {
        let v = LooseVariants::new("Sure!\n**Answer**, here\nBye");
        let texts: Vec<&str> = v.iter().collect();
        assert_eq!(
            texts,
            [
                "Sure!\n**Answer**, here\nBye",
                "Sure!\nAnswer, here\nBye",
                "**Answer**, here\nBye",
                "Sure!\n**Answer**, here",
                "**Answer**, here",
                "Answer, here\nBye",
                "Sure!\nAnswer, here",
                "Answer, here",
            ]
        );
        let one_line = LooseVariants::new("only");
        assert_eq!(
            one_line.iter().collect::<Vec<_>>(),
            ["only", "only", "", "", "", "", "", ""]
        );
    }

    #[test]
    fn loose_passes_when_a_variant_does() {
        let quoted = inst("startend:quotation", json!({}));
        let response = "Here you go:\n\"All of it.\"";
        assert!(!quoted.check(response).pass);
        assert!(check_loose(&quoted, response).pass);
        let no_comma = inst("punctuation:no_comma", json!({}));
        let failed = check_loose(&no_comma, "a, b\nc, d");
        assert!(!failed.pass);
        assert!(
            failed
                .reason
                .is_some_and(|r| r.contains("no loose variant"))
        );
    }

    #[test]
    fn evaluate_combines_rows() {
        let instructions = [
            inst("punctuation:no_comma", json!({})),
            inst("detectable_format:title", json!({})),
        ];
        let row = evaluate(&instructions, "<<Title>>\nNo commas here");
        assert!(row.follow_all_strict && row.follow_all_loose);
        let row = evaluate(&instructions, "Title, with comma\nand none after");
        assert_eq!(
            row.strict.iter().map(|c| c.pass).collect::<Vec<_>>(),
            [false, false]
        );
        assert_eq!(
            row.loose.iter().map(|c| c.pass).collect::<Vec<_>>(),
            [true, false]
        );
        assert!(!row.follow_all_loose);
    }
}
