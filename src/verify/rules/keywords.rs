//! `keywords:*`: keyword presence and frequency, forbidden words, letter frequency.
//!
//! The reference hands keywords to Python's `re` as patterns (IGNORECASE), so they are
//! compiled as Python patterns (`pyre.rs`): a keyword like `colou?r` matches "color".
//! Deliberate (upstream): keywords match anywhere, so "the" also counts inside "theme";
//! only forbidden words are bounded by `\b`.

use super::pyre::{Flags, PyRegex, is_literal};
use super::words::{lower, strip};
use super::{Kwargs, PyRepr, Relation, RuleError, Verdict, because, py_repr_list};

const IGNORECASE: Flags = Flags {
    ignorecase: true,
    multiline: false,
};

#[derive(Debug, Clone)]
pub(super) enum Rule {
    /// Every keyword occurs (`re.search(keyword, response, re.IGNORECASE)`).
    Existence {
        keywords: Vec<String>,
        patterns: Vec<PyRegex>,
    },
    /// `len(re.findall(keyword, response, re.IGNORECASE))` compared with `frequency`.
    Frequency {
        keyword: String,
        pattern: PyRegex,
        frequency: i64,
        relation: Relation,
    },
    /// No `\bword\b` occurs (IGNORECASE).
    ForbiddenWords {
        words: Vec<String>,
        matchers: Vec<Forbidden>,
    },
    /// The count of `letter` in the lowercased response compared with `frequency`.
    LetterFrequency {
        letter: String,
        frequency: i64,
        relation: Relation,
    },
}

/// How a forbidden word is searched for.
#[derive(Debug, Clone)]
pub(super) enum Forbidden {
    /// A plain word: its matches, with Python's word boundaries checked exactly.
    Literal(PyRegex),
    /// A word with regex syntax: the whole pattern `\b` + word + `\b`, as upstream
    /// builds it (so `a|b` means `\ba` or `b\b`).
    Pattern(PyRegex),
}

impl Forbidden {
    fn found_in(&self, text: &str) -> bool {
        match self {
            Forbidden::Literal(word) => word.is_match_bounded(text),
            Forbidden::Pattern(pattern) => pattern.is_match(text),
        }
    }
}

fn pattern(args: &Kwargs, name: &str, source: &str) -> Result<PyRegex, RuleError> {
    PyRegex::new(source, IGNORECASE).map_err(|e| args.error(format!("{name}: {e}")))
}

impl Rule {
    pub(super) fn new(
        name: &str,
        args: &Kwargs,
        notes: &mut Vec<String>,
    ) -> Result<Rule, RuleError> {
        Ok(match name {
            "existence" => {
                let mut keywords = args.strings("keywords")?;
                if keywords.is_empty() {
                    return Err(args.error(
                        "\"keywords\" is empty; the reference would draw random keywords".into(),
                    ));
                }
                // sorted, as upstream does (it only changes the description)
                keywords.sort();
                let patterns = keywords
                    .iter()
                    .map(|k| pattern(args, "keywords", k))
                    .collect::<Result<_, _>>()?;
                Rule::Existence { keywords, patterns }
            }
            "frequency" => {
                let keyword = args.string("keyword")?;
                if keyword.is_empty() {
                    return Err(args.error(
                        "\"keyword\" is empty; the reference would draw a random one".into(),
                    ));
                }
                let keyword = strip(keyword).to_owned();
                Rule::Frequency {
                    pattern: pattern(args, "keyword", &keyword)?,
                    keyword,
                    frequency: args.int("frequency", 0)?,
                    relation: args.relation("relation")?,
                }
            }
            "forbidden_words" => {
                let mut words = args.strings("forbidden_words")?;
                if words.is_empty() {
                    return Err(args.error(
                        "\"forbidden_words\" is empty; the reference would draw random words"
                            .into(),
                    ));
                }
                words.sort();
                words.dedup();
                let matchers = words
                    .iter()
                    .map(|word| {
                        Ok(if is_literal(word) {
                            Forbidden::Literal(pattern(args, "forbidden_words", word)?)
                        } else {
                            Forbidden::Pattern(pattern(
                                args,
                                "forbidden_words",
                                &format!(r"\b{word}\b"),
                            )?)
                        })
                    })
                    .collect::<Result<_, RuleError>>()?;
                Rule::ForbiddenWords { words, matchers }
            }
            _ => {
                let given = args.string("letter")?;
                if given.chars().count() != 1 || strip(given).is_empty() {
                    return Err(args.error(format!(
                        "\"letter\" must be a single non-whitespace character, got {given:?}"
                    )));
                }
                if !given.chars().all(|c| c.is_ascii_alphabetic()) {
                    // Deliberate: the 2023-24 reference (and lm-eval's copy) replaces a
                    // non-letter with an unseeded random letter; no verdict would be
                    // reproducible. Google's 2025 revision counts the character as given,
                    // which is what the prompts ask for ("use at least 4 '#'").
                    notes.push(format!(
                        "counted {given:?} as given; the 2023-24 reference checker draws a random letter instead"
                    ));
                }
                Rule::LetterFrequency {
                    letter: lower(given),
                    frequency: args.int("let_frequency", 0)?,
                    relation: args.relation("let_relation")?,
                }
            }
        })
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Rule::Existence { keywords, .. } => {
                format!(
                    "Include keywords {} in the response.",
                    py_repr_list(keywords)
                )
            }
            Rule::Frequency {
                keyword,
                frequency,
                relation,
                ..
            } => format!(
                "In your response, the word {keyword} should appear {} {frequency} times.",
                relation.as_str()
            ),
            Rule::ForbiddenWords { words, .. } => {
                format!(
                    "Do not include keywords {} in the response.",
                    py_repr_list(words)
                )
            }
            Rule::LetterFrequency {
                letter,
                frequency,
                relation,
            } => format!(
                "In your response, the letter {letter} should appear {} {frequency} times.",
                relation.as_str()
            ),
        }
    }

    pub(super) fn check(&self, response: &str, explain: bool) -> Verdict {
        match self {
            Rule::Existence { keywords, patterns } => {
                if patterns.iter().all(|p| p.is_match(response)) {
                    return Ok(());
                }
                because(explain, || {
                    let missing: Vec<String> = keywords
                        .iter()
                        .zip(patterns)
                        .filter(|(_, p)| !p.is_match(response))
                        .map(|(k, _)| k.clone())
                        .collect();
                    format!("missing {}", py_repr_list(&missing))
                })
            }
            Rule::Frequency {
                keyword,
                pattern,
                frequency,
                relation,
            } => relation.verdict(
                explain,
                pattern.count(response),
                *frequency,
                format_args!("matches of {}", PyRepr(keyword)),
            ),
            Rule::ForbiddenWords { words, matchers } => {
                if !matchers.iter().any(|m| m.found_in(response)) {
                    return Ok(());
                }
                because(explain, || {
                    let used: Vec<String> = words
                        .iter()
                        .zip(matchers)
                        .filter(|(_, m)| m.found_in(response))
                        .map(|(w, _)| w.clone())
                        .collect();
                    format!("uses forbidden {}", py_repr_list(&used))
                })
            }
            Rule::LetterFrequency {
                letter,
                frequency,
                relation,
            } => {
                // `collections.Counter(response.lower())[letter]`: a letter whose
                // lowercase is two characters (like 'İ') is never counted.
                let mut chars = letter.chars();
                let count = match (chars.next(), chars.next()) {
                    (Some(c), None) => lower(response).chars().filter(|&x| x == c).count(),
                    _ => 0,
                };
                relation.verdict(
                    explain,
                    count,
                    *frequency,
                    format_args!("occurrences of {}", PyRepr(letter)),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Instruction, check_loose};
    use serde_json::{Value, json};

    fn inst(id: &str, kwargs: Value) -> Instruction {
        let map = kwargs.as_object().cloned().unwrap_or_default();
        Instruction::new(id, &map).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn existence_is_a_case_insensitive_regex_search() {
        let i = inst(
            "keywords:existence",
            json!({"keywords": ["Cat", "colou?r"]}),
        );
        assert!(i.check("a CATALOG in color").pass);
        let fail = i.check("a dog in colour");
        assert_eq!(
            fail.reason.as_deref(),
            Some("keywords:existence: missing ['Cat']")
        );
    }

    #[test]
    fn frequency_counts_regex_matches_at_the_boundary() {
        let at_least = inst(
            "keywords:frequency",
            json!({"keyword": " the ", "frequency": 3, "relation": "at least"}),
        );
        assert!(at_least.check("The theme of the day").pass); // "the" inside "theme" counts
        assert!(!at_least.check("The day of the week").pass);
        let less = inst(
            "keywords:frequency",
            json!({"keyword": "the", "frequency": 2, "relation": "less than"}),
        );
        assert!(less.check("the one").pass);
        let fail = less.check("the two the");
        assert_eq!(
            fail.reason.as_deref(),
            Some("keywords:frequency: 2 matches of 'the', needs less than 2")
        );
    }

    #[test]
    fn forbidden_words_respect_python_word_boundaries() {
        let i = inst(
            "keywords:forbidden_words",
            json!({"forbidden_words": ["cat", "Dog", "cat"]}),
        );
        assert!(i.check("concatenate the catalog; dogma").pass);
        assert!(!i.check("My DOG.").pass);
        assert!(!i.check("cat\u{301}").pass); // a combining mark is not \w in Python
        assert!(i.check("cat_food").pass);
        assert_eq!(
            i.describe(),
            "Do not include keywords ['Dog', 'cat'] in the response."
        );
        // upstream concatenates without a group: \bdog|cat\b
        let alt = inst(
            "keywords:forbidden_words",
            json!({"forbidden_words": ["dog|cat"]}),
        );
        assert!(!alt.check("dogma").pass);
        assert!(alt.check("catalog").pass);
    }

    #[test]
    fn letter_frequency_counts_lowercased_text() {
        let i = inst(
            "keywords:letter_frequency",
            json!({"letter": "K", "let_frequency": 3, "let_relation": "at least"}),
        );
        assert!(i.check("Kayak k").pass);
        assert!(i.check("K\u{212A}k").pass); // the Kelvin sign lowercases to 'k'
        assert!(!i.check("kk").pass);
        let less = inst(
            "keywords:letter_frequency",
            json!({"letter": "a", "let_frequency": 2, "let_relation": "less than"}),
        );
        assert!(less.check("A b").pass);
        assert!(!less.check("A a").pass);
    }

    #[test]
    fn a_non_letter_is_counted_as_given_and_explained() {
        let i = inst(
            "keywords:letter_frequency",
            json!({"letter": "#", "let_frequency": 2, "let_relation": "at least"}),
        );
        assert_eq!(i.notes().len(), 1);
        assert!(i.check("#one #two").pass);
        let fail = i.check("#one");
        assert!(fail.reason.is_some_and(|r| r.contains("random letter")));
        assert!(!check_loose(&i, "no tags").pass);
    }

    #[test]
    fn bad_arguments_are_refused() {
        let map = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(Instruction::new("keywords:existence", &map(json!({"keywords": []}))).is_err());
        assert!(
            Instruction::new("keywords:existence", &map(json!({"keywords": ["c++"]}))).is_err()
        );
        assert!(
            Instruction::new(
                "keywords:letter_frequency",
                &map(json!({"letter": "ab", "let_frequency": 1, "let_relation": "at least"}))
            )
            .is_err()
        );
    }
}
