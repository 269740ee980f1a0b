//! `startend:*`: the exact closing phrase, and a response wrapped in double quotes.

use super::words::{lower, strip};
use super::{Kwargs, RuleError, Verdict, because};

#[derive(Debug, Clone)]
pub(super) enum Rule {
    EndChecker { end_phrase: String },
    Quotation,
}

impl Rule {
    pub(super) fn new(name: &str, args: &Kwargs) -> Result<Rule, RuleError> {
        Ok(match name {
            "end_checker" => Rule::EndChecker {
                end_phrase: strip(args.string("end_phrase")?).to_owned(),
            },
            _ => Rule::Quotation,
        })
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Rule::EndChecker { end_phrase } => format!(
                "Finish your response with this exact phrase {end_phrase}. No other words should follow this phrase."
            ),
            Rule::Quotation => "Wrap your entire response with double quotation marks.".to_owned(),
        }
    }

    pub(super) fn check(&self, response: &str, explain: bool) -> Verdict {
        match self {
            Rule::EndChecker { end_phrase } => {
                // Deliberate (upstream): surrounding double quotes are ignored, and the
                // comparison is case-insensitive.
                let text = lower(strip(response).trim_matches('"'));
                if text.ends_with(&lower(end_phrase)) {
                    Ok(())
                } else {
                    because(explain, || format!("does not end with {end_phrase:?}"))
                }
            }
            Rule::Quotation => {
                let text = strip(response);
                if text.chars().count() > 1 && text.starts_with('"') && text.ends_with('"') {
                    Ok(())
                } else {
                    because(explain, || {
                        "not wrapped in double quotation marks".to_owned()
                    })
                }
            }
        }
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
    fn end_phrase() {
        let rule = inst(
            "startend:end_checker",
            json!({"end_phrase": " Any other questions? "}),
        );
        assert!(rule.check("Done. any other QUESTIONS?\n").pass);
        assert!(rule.check("\"Done. Any other questions?\"").pass);
        assert!(!rule.check("Any other questions? Thanks").pass);
        assert!(!rule.check("Any other questions?.").pass);
    }

    #[test]
    fn quotation() {
        let rule = inst("startend:quotation", json!({}));
        assert!(rule.check("  \"quoted\"\n").pass);
        assert!(rule.check("\"\"").pass);
        assert!(!rule.check("\"").pass);
        assert!(!rule.check("“curly”").pass);
        assert!(!rule.check("'single'").pass);
    }
}
