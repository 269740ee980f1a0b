//! `combination:*`: two answers separated by `******`, and repeating the request first.

use super::words::{lower, strip};
use super::{Kwargs, RuleError, Verdict, because};

#[derive(Debug, Clone)]
pub(super) enum Rule {
    TwoResponses,
    /// The response must start with `prompt_to_repeat.strip().lower()`, as lowercased.
    RepeatPrompt {
        expected_start: String,
    },
}

impl Rule {
    pub(super) fn new(name: &str, args: &Kwargs, prompt: Option<&str>) -> Result<Rule, RuleError> {
        if name == "two_responses" {
            return Ok(Rule::TwoResponses);
        }
        let given = match args.get("prompt_to_repeat") {
            Some(value) => Some(
                value
                    .as_str()
                    .ok_or_else(|| args.bad("prompt_to_repeat", value))?,
            ),
            None => prompt,
        };
        match given {
            Some(text) if !text.is_empty() => Ok(Rule::RepeatPrompt {
                expected_start: lower(strip(text)),
            }),
            // upstream raises "prompt_to_repeat must be set."
            _ => Err(args.error("\"prompt_to_repeat\" is missing or empty".to_owned())),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Rule::TwoResponses => "Give two different responses. Responses and only responses should be separated \
                                   by 6 asterisk symbols: ******."
                .to_owned(),
            Rule::RepeatPrompt { .. } => "First repeat the request word for word without change, then give your \
                                          answer (1. do not say any words or characters before repeating the \
                                          request; 2. the request you need to repeat does not include this sentence)"
                .to_owned(),
        }
    }

    pub(super) fn check(&self, response: &str, explain: bool) -> Verdict {
        match self {
            Rule::TwoResponses => check_two_responses(response, explain),
            Rule::RepeatPrompt { expected_start } => {
                if lower(strip(response)).starts_with(expected_start.as_str()) {
                    Ok(())
                } else {
                    because(explain, || {
                        "does not start by repeating the request word for word".to_owned()
                    })
                }
            }
        }
    }
}

fn check_two_responses(response: &str, explain: bool) -> Verdict {
    let parts: Vec<&str> = response.split("******").collect();
    let last = parts.len() - 1;
    let mut answers = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        if !strip(part).is_empty() {
            answers.push(strip(part));
        } else if index != 0 && index != last {
            // Deliberate (upstream): an empty answer between separators fails.
            return because(explain, || {
                "an empty response between ****** separators".to_owned()
            });
        }
    }
    match answers.as_slice() {
        [first, second] if first != second => Ok(()),
        [_, _] => because(explain, || "the two responses are the same".to_owned()),
        _ => because(explain, || {
            format!("{} responses separated by ******, needs 2", answers.len())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Instruction;
    use serde_json::{Map, json};

    fn inst(id: &str, kwargs: serde_json::Value) -> Instruction {
        Instruction::new(id, &kwargs.as_object().cloned().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn two_responses() {
        let rule = inst("combination:two_responses", json!({}));
        assert!(rule.check("One.\n******\nTwo.").pass);
        assert!(rule.check("******\nOne.\n******\nTwo.\n******").pass);
        assert!(!rule.check("Same.\n******\n Same. ").pass);
        assert!(!rule.check("One.\n******\n\n******\nTwo.").pass);
        assert!(!rule.check("A******B******C").pass);
        // seven asterisks leave a `*` in the second answer
        assert!(rule.check("One*******One").pass);
    }

    #[test]
    fn repeat_prompt() {
        let rule = inst(
            "combination:repeat_prompt",
            json!({"prompt_to_repeat": "Write a poem. "}),
        );
        assert!(rule.check("  WRITE A POEM. Roses are red.").pass);
        assert!(!rule.check("Sure! Write a poem.").pass);
        let from_prompt =
            Instruction::with_prompt("combination:repeat_prompt", &Map::new(), "Say hi.")
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(from_prompt.check("say hi. Hi!").pass);
        assert!(Instruction::new("combination:repeat_prompt", &Map::new()).is_err());
    }
}
