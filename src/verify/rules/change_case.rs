//! `change_case:*`: words in capitals, and all-uppercase / all-lowercase English.

use super::langdetect;
use super::words::{count_capital_words, str_islower, str_isupper};
use super::{Kwargs, Relation, RuleError, Verdict, because};

#[derive(Debug, Clone)]
pub(super) enum Rule {
    /// The count of `word_tokenize` tokens for which `isupper()` holds.
    CapitalWordFrequency {
        frequency: i64,
        relation: Relation,
    },
    EnglishCapital,
    EnglishLowercase,
}

impl Rule {
    pub(super) fn new(name: &str, args: &Kwargs) -> Result<Rule, RuleError> {
        Ok(match name {
            "capital_word_frequency" => Rule::CapitalWordFrequency {
                // the reference keeps negative values (no `< 0` check for this one)
                frequency: args.int("capital_frequency", i64::MIN)?,
                relation: args.relation("capital_relation")?,
            },
            "english_capital" => Rule::EnglishCapital,
            _ => Rule::EnglishLowercase,
        })
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Rule::CapitalWordFrequency { frequency, relation } => format!(
                "In your response, words with all capital letters should appear {} {frequency} times.",
                relation.as_str()
            ),
            Rule::EnglishCapital => {
                "Your entire response should be in English, and in all capital letters.".to_owned()
            }
            Rule::EnglishLowercase => {
                "Your entire response should be in English, and in all lowercase letters. No capital letters are allowed."
                    .to_owned()
            }
        }
    }

    pub(super) fn check(&self, response: &str, explain: bool) -> Verdict {
        match self {
            Rule::CapitalWordFrequency {
                frequency,
                relation,
            } => relation.verdict(
                explain,
                count_capital_words(response),
                *frequency,
                "words in capitals",
            ),
            // Deliberate (upstream): `isupper()`/`islower()` need at least one cased
            // letter, so a response of digits and punctuation fails.
            Rule::EnglishCapital => {
                if !str_isupper(response) {
                    return because(explain, || "not all letters are capitals".to_owned());
                }
                english(response, explain)
            }
            Rule::EnglishLowercase => {
                if !str_islower(response) {
                    return because(explain, || "not all letters are lowercase".to_owned());
                }
                english(response, explain)
            }
        }
    }
}

fn english(response: &str, explain: bool) -> Verdict {
    match langdetect::detect(response) {
        Ok(code) if code == "en" => Ok(()),
        Ok(code) => because(explain, || {
            format!("detected language {code:?}, needs \"en\" (English)")
        }),
        // Deliberate (upstream): a text langdetect cannot classify counts as followed.
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Instruction;
    use serde_json::json;

    fn inst(id: &str, kwargs: serde_json::Value) -> Instruction {
        Instruction::new(id, &kwargs.as_object().cloned().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn capital_words_at_the_boundary() {
        let text = "THE NASA TEAM, it's OK. DON'T";
        // THE NASA TEAM OK DO N'T
        let at_least = |n| {
            inst(
                "change_case:capital_word_frequency",
                json!({"capital_frequency": n, "capital_relation": "at least"}),
            )
        };
        let less = |n| {
            inst(
                "change_case:capital_word_frequency",
                json!({"capital_frequency": n, "capital_relation": "less than"}),
            )
        };
        assert!(at_least(6).check(text).pass);
        assert!(!at_least(7).check(text).pass);
        assert!(!less(6).check(text).pass);
        assert!(less(7).check(text).pass);
    }

    #[test]
    fn case_checks_come_before_language() {
        let upper = inst("change_case:english_capital", json!({}));
        assert!(!upper.check("HELLO there").pass);
        assert!(!upper.check("123").pass);
        let lower = inst("change_case:english_lowercase", json!({}));
        assert!(!lower.check("hello There").pass);
        assert!(!lower.check("hello ǅ").pass);
    }
}
