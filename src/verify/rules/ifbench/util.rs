//! The reference's shared text helpers (`ifbench/instructions_util.py`) and the bits
//! of Python's `string` module its checks use.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::super::words;

/// Python's `string.punctuation` (what [`is_punctuation`] accepts; tests compare them).
#[cfg(test)]
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// A character of `string.punctuation`: exactly Rust's ASCII punctuation (the 32
/// printable ASCII characters that are neither letters, digits nor space).
pub(super) fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// `text.translate(str.maketrans('', '', string.punctuation))`: `text` without its
/// ASCII punctuation.
pub(super) fn remove_punctuation(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    for piece in text.split(|c: char| c.is_ascii_punctuation()) {
        kept.push_str(piece);
    }
    kept
}

/// `text` for a reason: at most 40 characters, quoted.
pub(super) fn snippet(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(40).collect();
    if chars.next().is_some() {
        format!("{:?}", format!("{head}..."))
    } else {
        format!("{head:?}")
    }
}

/// Whether `c` lies in one of `ranges` (inclusive code point ranges).
pub(super) fn in_ranges(ranges: &[(u32, u32)], c: char) -> bool {
    let cp = u32::from(c);
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp))
}

/// Python 3.11's decimal digits (`str.isdecimal()`, `\d` of its `re` on str): each
/// range a run of whole 0-9 sequences, so a digit's value is its offset mod 10. (The
/// `regex` crate's `\d` follows a newer Unicode and accepts more.)
pub(super) use super::super::pychars_table::DECIMAL as PY_DECIMAL;

/// `word.strip(''.join(string.punctuation) + ' ')`, the reference's usual way of
/// cleaning a word.
pub(super) fn strip_punctuation_space(word: &str) -> &str {
    word.trim_matches(|c: char| c == ' ' || c.is_ascii_punctuation())
}

// `\s` of Python's `re` on str is `str.isspace()`: Unicode White_Space and the four
// information separators.
const PY_SPACE: &str = r"[\s\x1c-\x1f]";
const STARTERS: &str = r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He[\s\x1c-\x1f]|She[\s\x1c-\x1f]|It[\s\x1c-\x1f]|They[\s\x1c-\x1f]|Their[\s\x1c-\x1f]|Our[\s\x1c-\x1f]|We[\s\x1c-\x1f]|But[\s\x1c-\x1f]|However[\s\x1c-\x1f]|That[\s\x1c-\x1f]|This[\s\x1c-\x1f]|Wherever)";

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid sentence-splitter pattern")
}

struct Splitter {
    prefixes: Regex,
    websites: Regex,
    digits: Regex,
    multiple_dots: Regex,
    single_letter: Regex,
    acronym_starter: Regex,
    three_letters: Regex,
    two_letters: Regex,
    suffix_starter: Regex,
    suffix: Regex,
    space_letter: Regex,
}

static SPLITTER: LazyLock<Splitter> = LazyLock::new(|| Splitter {
    prefixes: re(r"(Mr|St|Mrs|Ms|Dr)[.]"),
    websites: re(r"[.](com|net|org|io|gov|edu|me)"),
    digits: re(r"([0-9])[.]([0-9])"),
    multiple_dots: re(r"\.{2,}"),
    single_letter: re(&format!(r"{PY_SPACE}([A-Za-z])[.] ")),
    acronym_starter: re(&format!(r"([A-Z][.][A-Z][.](?:[A-Z][.])?) {STARTERS}")),
    three_letters: re(r"([A-Za-z])[.]([A-Za-z])[.]([A-Za-z])[.]"),
    two_letters: re(r"([A-Za-z])[.]([A-Za-z])[.]"),
    suffix_starter: re(&format!(r" (Inc|Ltd|Jr|Sr|Co)[.] {STARTERS}")),
    suffix: re(r" (Inc|Ltd|Jr|Sr|Co)[.]"),
    space_letter: re(r" ([A-Za-z])[.]"),
});

/// `instructions_util.split_into_sentences`: the reference's regex sentence splitter
/// (not Punkt), its substitutions in upstream order (`re.sub` is leftmost
/// non-overlapping replacement, as `Regex::replace_all`). Sentences are
/// `str.strip()`ped; an empty last one is dropped (only the last).
///
/// Upstream's last steps (`.` -> `.<stop>`, `?` -> `?<stop>`, `!` -> `!<stop>`,
/// `<prd>` -> `.`, split on `<stop>`) are one scan here; every substitution before them
/// needs a `.`, so a text without one skips them. (The tests keep upstream's step by
/// step version and compare the two.)
pub(super) fn split_into_sentences(text: &str) -> Vec<String> {
    let mut t = String::with_capacity(text.len() + 3);
    t.push(' ');
    for (i, piece) in text.split('\n').enumerate() {
        if i > 0 {
            t.push(' ');
        }
        t.push_str(piece);
    }
    t.push_str("  ");
    if t.contains('.') {
        mark_periods(&mut t);
    }
    if t.contains('\u{201d}') {
        t = t.replace(".\u{201d}", "\u{201d}.");
    }
    if t.contains('"') {
        t = t.replace(".\"", "\".");
    }
    if t.contains('!') {
        t = t.replace("!\"", "\"!");
    }
    if t.contains('?') {
        t = t.replace("?\"", "\"?");
    }
    let mut sentences = Vec::new();
    let mut current = String::new();
    let mut rest = t.as_str();
    while let Some(at) = rest.find(['<', '.', '?', '!']) {
        current.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("<prd>") {
            current.push('.');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("<stop>") {
            sentences.push(words::strip(&current).to_owned());
            current.clear();
            rest = after;
        } else {
            // '<' starting neither marker, or an end of sentence (all one byte).
            let (c, after) = rest.split_at(1);
            current.push_str(c);
            rest = after;
            if c != "<" {
                sentences.push(words::strip(&current).to_owned());
                current.clear();
            }
        }
    }
    current.push_str(rest);
    sentences.push(words::strip(&current).to_owned());
    if sentences.last().is_some_and(String::is_empty) {
        sentences.pop();
    }
    sentences
}

/// `t = re.sub(regex, replacement, t)`, copying only when something matched.
fn substitute(t: &mut String, regex: &Regex, replacement: impl regex::Replacer) {
    if let std::borrow::Cow::Owned(replaced) = regex.replace_all(t, replacement) {
        *t = replaced;
    }
}

/// Upstream's substitutions that mark periods as `<prd>` (not an end) or add a
/// `<stop>` (an end), in upstream order.
fn mark_periods(t: &mut String) {
    let s = &*SPLITTER;
    substitute(t, &s.prefixes, "${1}<prd>");
    substitute(t, &s.websites, "<prd>${1}");
    substitute(t, &s.digits, "${1}<prd>${2}");
    substitute(t, &s.multiple_dots, |c: &Captures<'_>| {
        let mut out = "<prd>".repeat(c[0].len());
        out.push_str("<stop>");
        out
    });
    if t.contains("Ph.D") {
        *t = t.replace("Ph.D.", "Ph<prd>D<prd>");
    }
    substitute(t, &s.single_letter, " ${1}<prd> ");
    substitute(t, &s.acronym_starter, "${1}<stop> ${2}");
    substitute(t, &s.three_letters, "${1}<prd>${2}<prd>${3}<prd>");
    substitute(t, &s.two_letters, "${1}<prd>${2}<prd>");
    substitute(t, &s.suffix_starter, " ${1}<stop> ${2}");
    substitute(t, &s.suffix, " ${1}<prd>");
    substitute(t, &s.space_letter, " ${1}<prd>");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's splitter step by step, as written: the oracle for the one-scan version.
    fn upstream_split(text: &str) -> Vec<String> {
        let s = &*SPLITTER;
        let mut t = format!(" {text}  ").replace('\n', " ");
        t = s.prefixes.replace_all(&t, "${1}<prd>").into_owned();
        t = s.websites.replace_all(&t, "<prd>${1}").into_owned();
        t = s.digits.replace_all(&t, "${1}<prd>${2}").into_owned();
        t = s
            .multiple_dots
            .replace_all(&t, |c: &Captures<'_>| {
                let mut out = "<prd>".repeat(c[0].len());
                out.push_str("<stop>");
                out
            })
            .into_owned();
        if t.contains("Ph.D") {
            t = t.replace("Ph.D.", "Ph<prd>D<prd>");
        }
        t = s.single_letter.replace_all(&t, " ${1}<prd> ").into_owned();
        t = s
            .acronym_starter
            .replace_all(&t, "${1}<stop> ${2}")
            .into_owned();
        let three = "${1}<prd>${2}<prd>${3}<prd>";
        t = s.three_letters.replace_all(&t, three).into_owned();
        t = s
            .two_letters
            .replace_all(&t, "${1}<prd>${2}<prd>")
            .into_owned();
        t = s
            .suffix_starter
            .replace_all(&t, " ${1}<stop> ${2}")
            .into_owned();
        t = s.suffix.replace_all(&t, " ${1}<prd>").into_owned();
        t = s.space_letter.replace_all(&t, " ${1}<prd>").into_owned();
        for (from, to) in [
            (".\u{201d}", "\u{201d}."),
            (".\"", "\"."),
            ("!\"", "\"!"),
            ("?\"", "\"?"),
        ] {
            t = t.replace(from, to);
        }
        t = t.replace('.', ".<stop>");
        t = t.replace('?', "?<stop>");
        t = t.replace('!', "!<stop>");
        t = t.replace("<prd>", ".");
        let mut sentences: Vec<String> = t
            .split("<stop>")
            .map(|piece| words::strip(piece).to_owned())
            .collect();
        if sentences.last().is_some_and(String::is_empty) {
            sentences.pop();
        }
        sentences
    }

    #[test]
    fn one_scan_equals_upstreams_steps() {
        let samples = include_str!("../../../../data/ifbench/sample_output.jsonl");
        let bison = include_str!("../../../../data/ifeval/input_response_data_text_bison.jsonl");
        let mut texts: Vec<String> = samples
            .lines()
            .chain(bison.lines())
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|row| row["response"].as_str().map(str::to_owned))
            .collect();
        // Pieces that exercise every substitution, combined pseudo-randomly.
        let pieces = [
            "Mr. ",
            "Dr. Who",
            "e.g. ",
            "U.S.A. ",
            "A.B. He ",
            "Inc. They ",
            "Co.",
            "x.com",
            "3.14",
            "...",
            "..",
            "Ph.D. ",
            "<prd>",
            "<stop>",
            ".\u{201d}",
            ".\"",
            "!\"",
            "?\"",
            "?",
            "!",
            ".",
            " ",
            "\n",
            "\t",
            "\u{1c}",
            "a",
            "Z",
            "end",
            "\u{a0}",
            "é.",
            "word",
        ];
        texts.extend(super::super::test_support::piece_texts(
            &pieces,
            3000,
            12,
            0x9e37_79b9_7f4a_7c15,
        ));
        for text in &texts {
            assert_eq!(split_into_sentences(text), upstream_split(text), "{text:?}");
        }
    }

    #[test]
    fn sentences_split_as_the_reference() {
        // Each expected list printed by instructions_util.split_into_sentences.
        assert_eq!(
            split_into_sentences("Hello world. How are you? Fine!"),
            ["Hello world.", "How are you?", "Fine!"]
        );
        assert_eq!(
            split_into_sentences("Dr. Smith went to Washington D.C. He left."),
            ["Dr. Smith went to Washington D.C.", "He left."]
        );
        assert_eq!(
            split_into_sentences("Wait... what? Pi is 3.14 here."),
            ["Wait...", "what?", "Pi is 3.14 here."]
        );
        assert_eq!(
            split_into_sentences("He said \"stop.\" Then left"),
            ["He said \"stop\".", "Then left"]
        );
        assert_eq!(split_into_sentences(""), Vec::<String>::new());
        assert_eq!(split_into_sentences("a.."), ["a.."]);
        assert_eq!(split_into_sentences("no end"), ["no end"]);
    }

    #[test]
    fn punctuation_is_pythons() {
        assert_eq!(PUNCTUATION.len(), 32);
        assert_eq!(strip_punctuation_space(" ,word!) "), "word");
        assert!(PUNCTUATION.chars().all(is_punctuation));
        assert_eq!(
            (0..128u8)
                .filter(|b| is_punctuation(char::from(*b)))
                .count(),
            32
        );
        assert_eq!(remove_punctuation("I'm (é) ok—fine!"), "Im é ok—fine");
    }
}
