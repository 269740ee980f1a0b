//! The reference's shared text helpers (`ifbench/instructions_util.py`) and the bits
//! of Python's `string` module its checks use.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::super::words;

/// Python's `string.punctuation`.
pub(super) const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// `s.strip(chars)`: both ends, any character of `chars`.
pub(super) fn strip_chars<'a>(s: &'a str, chars: &str) -> &'a str {
    s.trim_matches(|c| chars.contains(c))
}

/// `word.strip(''.join(string.punctuation) + ' ')`, the reference's usual way of
/// cleaning a word.
pub(super) fn strip_punctuation_space(word: &str) -> &str {
    word.trim_matches(|c| c == ' ' || PUNCTUATION.contains(c))
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
/// (not Punkt), step by step as upstream, `re.sub` being leftmost non-overlapping
/// replacement as `Regex::replace_all` is. Sentences are `str.strip()`ped; an empty
/// last one is dropped (only the last).
pub(super) fn split_into_sentences(text: &str) -> Vec<String> {
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
    t = s
        .three_letters
        .replace_all(&t, "${1}<prd>${2}<prd>${3}<prd>")
        .into_owned();
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(strip_chars("xxhixx", "x"), "hi");
    }
}
