//! `punctuation:no_comma`: no `,` at all (other commas, like `，`, are fine).

use super::{Kwargs, RuleError, Verdict, because};

#[derive(Debug, Clone)]
pub(super) enum Rule {
    NoComma,
}

impl Rule {
    pub(super) fn new(_name: &str, _args: &Kwargs) -> Result<Rule, RuleError> {
        Ok(Rule::NoComma)
    }

    pub(super) fn describe(&self) -> String {
        "In your entire response, refrain from the use of any commas.".to_owned()
    }

    pub(super) fn check(&self, response: &str, explain: bool) -> Verdict {
        let commas = response.matches(',').count();
        if commas == 0 {
            Ok(())
        } else {
            because(explain, || format!("{commas} commas"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Instruction;
    use serde_json::Map;

    #[test]
    fn commas() {
        let rule =
            Instruction::new("punctuation:no_comma", &Map::new()).unwrap_or_else(|e| panic!("{e}"));
        assert!(rule.check("No commas here， only a fullwidth one").pass);
        let fail = rule.check("One, two, three");
        assert_eq!(
            fail.reason.as_deref(),
            Some("punctuation:no_comma: 2 commas")
        );
    }
}
