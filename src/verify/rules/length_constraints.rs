//! `length_constraints:*`: sentences, `***`-separated paragraphs, words, and the first
//! word of the n-th `\n\n`-separated paragraph.

use super::punkt::count_sentences;
use super::words::{count_words, is_space, split_whitespace, strip};
use super::{Kwargs, Relation, RuleError, Verdict, because};

#[derive(Debug, Clone)]
pub(super) enum Rule {
    NumberSentences {
        num_sentences: i64,
        relation: Relation,
    },
    NumberParagraphs {
        num_paragraphs: i64,
    },
    NumberWords {
        num_words: i64,
        relation: Relation,
    },
    NthParagraphFirstWord {
        num_paragraphs: i64,
        nth_paragraph: i64,
        first_word: String,
    },
}

impl Rule {
    pub(super) fn new(name: &str, args: &Kwargs) -> Result<Rule, RuleError> {
        Ok(match name {
            "number_sentences" => Rule::NumberSentences {
                num_sentences: args.int("num_sentences", 0)?,
                relation: args.relation("relation")?,
            },
            "number_paragraphs" => Rule::NumberParagraphs {
                num_paragraphs: args.int("num_paragraphs", 0)?,
            },
            "number_words" => Rule::NumberWords {
                num_words: args.int("num_words", 0)?,
                relation: args.relation("relation")?,
            },
            _ => {
                let num_paragraphs = args.int("num_paragraphs", 0)?;
                let nth_paragraph = args.int("nth_paragraph", 1)?;
                if nth_paragraph > num_paragraphs {
                    return Err(args.error(format!(
                        "\"nth_paragraph\" {nth_paragraph} is beyond \"num_paragraphs\" {num_paragraphs}; \
                         the reference would draw a random one"
                    )));
                }
                Rule::NthParagraphFirstWord {
                    num_paragraphs,
                    nth_paragraph,
                    first_word: args.string("first_word")?.to_lowercase(),
                }
            }
        })
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Rule::NumberSentences {
                num_sentences,
                relation,
            } => format!(
                "Your response should contain {} {num_sentences} sentences.",
                relation.as_str()
            ),
            Rule::NumberParagraphs { num_paragraphs } => format!(
                "There should be {num_paragraphs} paragraphs. Paragraphs are separated with the markdown divider: ***"
            ),
            Rule::NumberWords {
                num_words,
                relation,
            } => {
                format!("Answer with {} {num_words} words.", relation.as_str())
            }
            Rule::NthParagraphFirstWord {
                num_paragraphs,
                nth_paragraph,
                first_word,
            } => format!(
                "There should be {num_paragraphs} paragraphs. Paragraphs and only paragraphs are separated \
                 with each other by two new lines as if it was '\\n\\n' in python. Paragraph {nth_paragraph} \
                 must start with word {first_word}."
            ),
        }
    }

    pub(super) fn check(&self, response: &str, explain: bool) -> Verdict {
        match self {
            Rule::NumberSentences {
                num_sentences,
                relation,
            } => relation.verdict(
                explain,
                count_sentences(response),
                *num_sentences,
                "sentences",
            ),
            Rule::NumberParagraphs { num_paragraphs } => {
                check_divided_paragraphs(response, *num_paragraphs, explain)
            }
            Rule::NumberWords {
                num_words,
                relation,
            } => relation.verdict(explain, count_words(response), *num_words, "words"),
            Rule::NthParagraphFirstWord {
                num_paragraphs,
                nth_paragraph,
                first_word,
            } => check_nth_paragraph(
                response,
                *num_paragraphs,
                *nth_paragraph,
                first_word,
                explain,
            ),
        }
    }
}

/// The pieces of `re.split(r"\s?\*\*\*\s?", text)`. A match starts one whitespace
/// character before a `***` when that character is not already part of the previous
/// match, and takes one whitespace character after it.
fn split_on_dividers(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut piece_start = 0;
    while let Some(found) = text[piece_start..].find("***") {
        let stars = piece_start + found;
        let start = match text[piece_start..stars].chars().next_back() {
            Some(c) if is_space(c) => stars - c.len_utf8(),
            _ => stars,
        };
        let mut end = stars + 3;
        if let Some(c) = text[end..].chars().next().filter(|&c| is_space(c)) {
            end += c.len_utf8();
        }
        pieces.push(&text[piece_start..start]);
        piece_start = end;
    }
    pieces.push(&text[piece_start..]);
    pieces
}

fn check_divided_paragraphs(response: &str, wanted: i64, explain: bool) -> Verdict {
    let paragraphs = split_on_dividers(response);
    let last = paragraphs.len() - 1;
    let mut count = paragraphs.len();
    for (index, paragraph) in paragraphs.iter().enumerate() {
        if strip(paragraph).is_empty() {
            // Deliberate (upstream): empty text before the first or after the last
            // divider is not a paragraph; an empty one in between fails the check.
            if index == 0 || index == last {
                count -= 1;
            } else {
                return because(explain, || {
                    format!("paragraph {} between *** dividers is empty", index + 1)
                });
            }
        }
    }
    if i64::try_from(count).is_ok_and(|c| c == wanted) {
        Ok(())
    } else {
        because(explain, || {
            format!("{count} paragraphs separated by ***, needs exactly {wanted}")
        })
    }
}

fn check_nth_paragraph(
    response: &str,
    wanted: i64,
    nth: i64,
    first_word: &str,
    explain: bool,
) -> Verdict {
    let paragraphs: Vec<&str> = response.split("\n\n").collect();
    let count = paragraphs.iter().filter(|p| !strip(p).is_empty()).count();
    // Deliberate (upstream): `nth` is compared with the count of non-empty
    // paragraphs, but indexes the list that still holds the empty ones.
    let index = usize::try_from(nth - 1).unwrap_or(usize::MAX);
    let paragraph = match paragraphs.get(index) {
        Some(p) if index < count => strip(p),
        _ => {
            return because(explain, || {
                format!("{count} paragraphs, so no paragraph {nth}")
            });
        }
    };
    if paragraph.is_empty() {
        return because(explain, || format!("paragraph {nth} is empty"));
    }
    let word = split_whitespace(paragraph).next().unwrap_or("");
    let word = word.trim_start_matches('\'').trim_start_matches('"');
    let found: String = word
        .chars()
        .take_while(|c| !matches!(c, '.' | ',' | '?' | '!' | '\'' | '"'))
        .flat_map(char::to_lowercase)
        .collect();
    let count_ok = i64::try_from(count).is_ok_and(|c| c == wanted);
    match (count_ok, found == first_word) {
        (true, true) => Ok(()),
        (false, _) => because(explain, || {
            format!("{count} paragraphs separated by blank lines, needs exactly {wanted}")
        }),
        (true, false) => because(explain, || {
            format!("paragraph {nth} starts with {found:?}, needs {first_word:?}")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Instruction, RuleError, check_loose};
    use super::*;

    fn build(id: &str, kwargs: serde_json::Value) -> Result<Instruction, RuleError> {
        Instruction::new(id, &kwargs.as_object().cloned().unwrap_or_default())
    }

    fn inst(id: &str, kwargs: serde_json::Value) -> Instruction {
        build(id, kwargs).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn sentence_relations_at_the_boundary() {
        let text = "One. Two. Three.";
        let at_least = |n| {
            inst(
                "length_constraints:number_sentences",
                serde_json::json!({"num_sentences": n, "relation": "at least"}),
            )
        };
        let less = |n| {
            inst(
                "length_constraints:number_sentences",
                serde_json::json!({"num_sentences": n, "relation": "less than"}),
            )
        };
        assert!(at_least(3).check(text).pass);
        assert!(!at_least(4).check(text).pass);
        assert!(!less(3).check(text).pass);
        assert!(less(4).check(text).pass);
        assert_eq!(
            at_least(4).check(text).reason.as_deref(),
            Some("length_constraints:number_sentences: 3 sentences, needs at least 4")
        );
    }

    #[test]
    fn word_relations_at_the_boundary() {
        let words = |n, rel| {
            inst(
                "length_constraints:number_words",
                serde_json::json!({"num_words": n, "relation": rel}),
            )
        };
        assert!(words(4, "at least").check("It's a well-known").pass); // It, s, a, well, known
        assert!(words(5, "at least").check("It's a well-known").pass);
        assert!(!words(6, "at least").check("It's a well-known").pass);
        assert!(!words(5, "less than").check("It's a well-known").pass);
        assert!(words(6, "less than").check("It's a well-known").pass);
    }

    #[test]
    fn divider_paragraphs() {
        assert_eq!(split_on_dividers("a *** b\n***\nc"), ["a", "b", "c"]);
        assert_eq!(split_on_dividers("a ****b"), ["a", "*b"]);
        assert_eq!(split_on_dividers("  ***x"), [" ", "x"]);
        assert!(check_divided_paragraphs("***\nOne\n***\nTwo\n***", 2, true).is_ok());
        assert!(check_divided_paragraphs("One\n***\n \n***\nThree", 2, true).is_err());
        assert!(check_divided_paragraphs("One\n***\n \n***\nThree", 3, true).is_err());
        assert!(check_divided_paragraphs("Only one", 1, true).is_ok());
        let p = inst(
            "length_constraints:number_paragraphs",
            serde_json::json!({"num_paragraphs": 2}),
        );
        assert!(!p.check("A\n* * *\nB").pass);
        assert!(p.check("A\n***\nB").pass);
    }

    #[test]
    fn nth_paragraph_first_word() {
        let rule = |n, nth, w| {
            inst(
                "length_constraints:nth_paragraph_first_word",
                serde_json::json!({"num_paragraphs": n, "nth_paragraph": nth, "first_word": w}),
            )
        };
        let text = "Intro here.\n\n\"Weekend,\" she said.\n\nEnd.";
        assert!(rule(3, 2, "Weekend").check(text).pass);
        assert!(!rule(2, 2, "weekend").check(text).pass);
        assert!(!rule(3, 3, "weekend").check(text).pass);
        // an empty paragraph still takes its index in the list
        let gappy = "First.\n\n\n\nSecond.\n\nThird.";
        assert!(!rule(3, 2, "second").check(gappy).pass);
        assert!(
            check_loose(
                &rule(3, 1, "second"),
                "Title\nSecond part.\n\nMore.\n\nLast."
            )
            .pass
        );
        let refused = build(
            "length_constraints:nth_paragraph_first_word",
            serde_json::json!({"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "x"}),
        );
        assert!(refused.is_err());
    }
}
