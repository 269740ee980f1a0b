//! `detectable_format:*`: bullet lists, constrained answers, `*highlights*`, sections,
//! JSON, and `<<titles>>`.

use super::pyjson;
use super::pyre::{Flags, PyRegex};
use super::words::{is_space, strip};
use super::{Kwargs, RuleError, Verdict, because};

const CONSTRAINED_OPTIONS: [&str; 3] = [
    "My answer is yes.",
    "My answer is no.",
    "My answer is maybe.",
];

#[derive(Debug, Clone)]
pub(super) enum Rule {
    NumberBulletLists {
        num_bullets: i64,
    },
    ConstrainedResponse,
    NumberHighlightedSections {
        num_highlights: i64,
    },
    MultipleSections {
        spliter: String,
        num_sections: i64,
        pattern: PyRegex,
    },
    JsonFormat,
    Title,
}

impl Rule {
    pub(super) fn new(name: &str, args: &Kwargs) -> Result<Rule, RuleError> {
        Ok(match name {
            "number_bullet_lists" => Rule::NumberBulletLists {
                num_bullets: args.int("num_bullets", 0)?,
            },
            "constrained_response" => Rule::ConstrainedResponse,
            "number_highlighted_sections" => Rule::NumberHighlightedSections {
                num_highlights: args.int("num_highlights", 0)?,
            },
            "multiple_sections" => {
                let spliter = strip(args.string("section_spliter")?).to_owned();
                // Deliberate (upstream): the splitter is used as a regex.
                let pattern = PyRegex::new(&format!(r"\s?{spliter}\s?\d+\s?"), Flags::default())
                    .map_err(|e| args.error(format!("section_spliter: {e}")))?;
                Rule::MultipleSections {
                    spliter,
                    num_sections: args.int("num_sections", 0)?,
                    pattern,
                }
            }
            "json_format" => Rule::JsonFormat,
            _ => Rule::Title,
        })
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Rule::NumberBulletLists { num_bullets } => format!(
                "Your answer must contain exactly {num_bullets} bullet points. Use the markdown bullet points such as:\n\
                 * This is point 1. \n* This is point 2"
            ),
            Rule::ConstrainedResponse => format!(
                "Answer with one of the following options: ('{}', '{}', '{}')",
                CONSTRAINED_OPTIONS[0], CONSTRAINED_OPTIONS[1], CONSTRAINED_OPTIONS[2]
            ),
            Rule::NumberHighlightedSections { num_highlights } => format!(
                "Highlight at least {num_highlights} sections in your answer with markdown, i.e. *highlighted section*."
            ),
            Rule::MultipleSections { spliter, num_sections, .. } => format!(
                "Your response must have {num_sections} sections. Mark the beginning of each section with \
                 {spliter} X, such as:\n{spliter} 1\n[content of section 1]\n{spliter} 2\n[content of section 2]"
            ),
            Rule::JsonFormat => {
                "Entire output should be wrapped in JSON format. You can use markdown ticks such as ```.".to_owned()
            }
            Rule::Title => {
                "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>."
                    .to_owned()
            }
        }
    }

    pub(super) fn check(&self, response: &str, explain: bool) -> Verdict {
        match self {
            Rule::NumberBulletLists { num_bullets } => {
                let found = count_star_bullets(response) + count_dash_bullets(response);
                if i64::try_from(found).is_ok_and(|n| n == *num_bullets) {
                    Ok(())
                } else {
                    because(explain, || {
                        format!("{found} bullet points, needs exactly {num_bullets}")
                    })
                }
            }
            Rule::ConstrainedResponse => {
                // Deliberate (upstream): the option may appear anywhere in the response.
                let text = strip(response);
                if CONSTRAINED_OPTIONS
                    .iter()
                    .any(|option| text.contains(option))
                {
                    Ok(())
                } else {
                    because(explain, || {
                        "none of \"My answer is yes.\", \"My answer is no.\", \"My answer is maybe.\"".to_owned()
                    })
                }
            }
            Rule::NumberHighlightedSections { num_highlights } => {
                let found = count_highlights(response);
                if i64::try_from(found).is_ok_and(|n| n >= *num_highlights) {
                    Ok(())
                } else {
                    because(explain, || {
                        format!("{found} *highlighted* sections, needs at least {num_highlights}")
                    })
                }
            }
            Rule::MultipleSections {
                spliter,
                num_sections,
                pattern,
            } => {
                let found = pattern.split_len(response) - 1;
                if i64::try_from(found).is_ok_and(|n| n >= *num_sections) {
                    Ok(())
                } else {
                    because(explain, || {
                        format!(
                            "{found} sections marked \"{spliter} N\", needs at least {num_sections}"
                        )
                    })
                }
            }
            Rule::JsonFormat => {
                if pyjson::is_valid(unfence_json(response)) {
                    Ok(())
                } else {
                    because(explain, || {
                        "not valid JSON (after removing ``` fences)".to_owned()
                    })
                }
            }
            Rule::Title => {
                if has_title(response) {
                    Ok(())
                } else {
                    because(explain, || "no <<title>>".to_owned())
                }
            }
        }
    }
}

/// Whether byte offset `at` starts a line (`^` under MULTILINE).
fn at_line_start(text: &str, at: usize) -> bool {
    at == 0 || text.as_bytes()[at - 1] == b'\n'
}

/// Counts matches of `^\s*<marker>...$` (MULTILINE), where `\s*` may run over blank
/// lines; `matches_after_space` decides, at the first non-space character, whether a
/// match starts there and returns where the match's content begins.
fn count_line_items(text: &str, matches_after_space: impl Fn(&str) -> Option<usize>) -> usize {
    let mut count = 0;
    let mut at = 0;
    while at <= text.len() {
        if !at_line_start(text, at) {
            at += text[at..].find('\n').map_or(text.len() - at + 1, |i| i + 1);
            continue;
        }
        let rest = &text[at..];
        let spaces = rest.len() - rest.trim_start_matches(is_space).len();
        let item = &rest[spaces..];
        match matches_after_space(item) {
            Some(content_start) => {
                count += 1;
                // `.*$`: the rest of the line the match ends on
                let tail = &item[content_start..];
                at += spaces + content_start + tail.find('\n').unwrap_or(tail.len());
            }
            // Every line start up to the first non-space character fails the same way,
            // so go on from that character (or from the next line).
            None if spaces > 0 => at += spaces,
            None => at += rest.find('\n').map_or(rest.len() + 1, |i| i + 1),
        }
    }
    count
}

/// `len(re.findall(r"^\s*\*[^\*].*$", text, flags=re.MULTILINE))`
fn count_star_bullets(text: &str) -> usize {
    count_line_items(text, |item| {
        let mut chars = item.chars();
        match (chars.next(), chars.next()) {
            // `[^\*]` may be a newline: the match then takes the next line too.
            (Some('*'), Some(c)) if c != '*' => Some(1 + c.len_utf8()),
            _ => None,
        }
    })
}

/// `len(re.findall(r"^\s*-.*$", text, flags=re.MULTILINE))`. Deliberate (upstream): any
/// line starting with `-` counts, a `---` rule included.
fn count_dash_bullets(text: &str) -> usize {
    count_line_items(text, |item| item.starts_with('-').then_some(1))
}

/// Highlights: `\*[^\n\*]*\*` matches with non-blank content, plus `\*\*[^\n\*]*\*\*`
/// matches with non-blank content. Deliberate (upstream): `**bold**` counts once
/// (through the second pattern), `*a**b*` twice.
fn count_highlights(text: &str) -> usize {
    let single = find_starred(text, "*")
        .filter(|inner| !strip(inner.trim_matches('*')).is_empty())
        .count();
    let double = find_starred(text, "**")
        .filter(|inner| !strip(inner).is_empty())
        .count();
    single + double
}

/// The inner texts of `<d>[^\n\*]*<d>` matches (`d` is `*` or `**`), left to right.
fn find_starred<'a>(text: &'a str, delimiter: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            let open = rest.find(delimiter)?;
            let after = &rest[open + delimiter.len()..];
            let inner_len = after.find(['\n', '*']).unwrap_or(after.len());
            if after[inner_len..].starts_with(delimiter) {
                rest = &after[inner_len + delimiter.len()..];
                return Some(&after[..inner_len]);
            }
            // no match at this `*`; try from the next character
            rest = &rest[open + 1..];
        }
    })
}

/// Whether some `<<[^\n]+>>` match has non-blank content once `<` and `>` are trimmed.
fn has_title(text: &str) -> bool {
    let mut rest = text;
    while let Some(open) = rest.find("<<") {
        let line = &rest[open..];
        let line = &line[..line.find('\n').unwrap_or(line.len())];
        // greedy `[^\n]+`: the last `>>` of the line, with at least one character between
        match line.rfind(">>").filter(|&close| close >= 3) {
            Some(close) => {
                let title = &line[..close + 2];
                if !strip(title.trim_start_matches('<').trim_end_matches('>')).is_empty() {
                    return true;
                }
                rest = &rest[open + close + 2..];
            }
            None => rest = &rest[open + 1..],
        }
    }
    false
}

/// The response with a ```json (or ```Json, ```JSON, ```) fence removed, as upstream.
fn unfence_json(response: &str) -> &str {
    let mut value = strip(response);
    for prefix in ["```json", "```Json", "```JSON", "```"] {
        value = value.strip_prefix(prefix).unwrap_or(value);
    }
    strip(value.strip_suffix("```").unwrap_or(value))
}

#[cfg(test)]
mod tests {
    use super::super::{Instruction, check_loose};
    use super::*;
    use serde_json::json;

    fn inst(id: &str, kwargs: serde_json::Value) -> Instruction {
        Instruction::new(id, &kwargs.as_object().cloned().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn bullets_follow_the_multiline_patterns() {
        assert_eq!(count_star_bullets("* a\n* b\n  * c\n**bold**\n*"), 3);
        // `[^\*]` takes the newline: "*" alone swallows the next line
        assert_eq!(count_star_bullets("*\n* b"), 1);
        assert_eq!(count_star_bullets("\n\n\n* a"), 1);
        assert_eq!(count_dash_bullets("- a\n -b\n---\nx - y\n\t- z"), 4);
        let rule = inst(
            "detectable_format:number_bullet_lists",
            json!({"num_bullets": 2}),
        );
        assert!(rule.check("Intro\n* one\n- two").pass);
        assert!(!rule.check("* one\n* two\n* three").pass);
    }

    #[test]
    fn highlights_count_single_and_double_stars() {
        assert_eq!(count_highlights("*a* and *b*"), 2);
        assert_eq!(count_highlights("**bold**"), 1);
        assert_eq!(count_highlights("** ** and ***"), 0);
        assert_eq!(count_highlights("*multi\nline*"), 0);
        assert_eq!(count_highlights("*a**b*"), 2);
        let rule = inst(
            "detectable_format:number_highlighted_sections",
            json!({"num_highlights": 2}),
        );
        assert!(rule.check("*one* and **two**").pass);
        assert!(!rule.check("*one* only").pass);
    }

    #[test]
    fn sections_split_on_the_marker_and_a_number() {
        let rule = |n| {
            inst(
                "detectable_format:multiple_sections",
                json!({"section_spliter": " Section ", "num_sections": n}),
            )
        };
        let text = "Section 1\nIntro\nSection 2\nBody\nSECTION 3";
        assert!(rule(2).check(text).pass);
        assert!(!rule(3).check(text).pass);
        assert!(rule(1).check("Section4 glued").pass);
    }

    #[test]
    fn json_with_fences() {
        let rule = inst("detectable_format:json_format", json!({}));
        assert!(rule.check("```json\n{\"a\": 1}\n```").pass);
        assert!(rule.check("```JSON\n[1]\n```").pass);
        assert!(rule.check("  {\"a\": NaN}  ").pass);
        assert!(!rule.check("```json\n{\"a\": 1,}\n```").pass);
        assert!(!rule.check("Here: {\"a\": 1}").pass);
        assert!(check_loose(&rule, "Here:\n{\"a\": 1}").pass);
    }

    #[test]
    fn titles() {
        assert!(has_title("<<Poem of Joy>>\ntext"));
        assert!(!has_title("<< >>"));
        assert!(has_title("<< >> and <<>>")); // greedy: " >> and <<" is the title
        assert!(!has_title("<<\n>>"));
        assert!(has_title("<<>> x >>"));
        assert!(has_title("a <<<b>>> c"));
    }

    #[test]
    fn constrained_response() {
        let rule = inst("detectable_format:constrained_response", json!({}));
        assert!(rule.check("Thinking... My answer is maybe. Later.").pass);
        assert!(!rule.check("my answer is yes.").pass);
    }
}
