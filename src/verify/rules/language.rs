//! `language:response_language`: the response's language, as langdetect detects it.

use super::langdetect;
use super::{Kwargs, RuleError, Verdict, because};

/// ISO 639-1 codes the reference accepts, with the names its description uses.
pub(super) const LANGUAGE_CODES: [(&str, &str); 30] = [
    ("en", "English"),
    ("es", "Spanish"),
    ("pt", "Portuguese"),
    ("ar", "Arabic"),
    ("hi", "Hindi"),
    ("fr", "French"),
    ("ru", "Russian"),
    ("de", "German"),
    ("ja", "Japanese"),
    ("it", "Italian"),
    ("bn", "Bengali"),
    ("uk", "Ukrainian"),
    ("th", "Thai"),
    ("ur", "Urdu"),
    ("ta", "Tamil"),
    ("te", "Telugu"),
    ("bg", "Bulgarian"),
    ("ko", "Korean"),
    ("pl", "Polish"),
    ("he", "Hebrew"),
    ("fa", "Persian"),
    ("vi", "Vietnamese"),
    ("ne", "Nepali"),
    ("sw", "Swahili"),
    ("kn", "Kannada"),
    ("mr", "Marathi"),
    ("gu", "Gujarati"),
    ("pa", "Punjabi"),
    ("ml", "Malayalam"),
    ("fi", "Finnish"),
];

#[derive(Debug, Clone)]
pub(super) struct Rule {
    code: &'static str,
    name: &'static str,
}

impl Rule {
    pub(super) fn new(_name: &str, args: &Kwargs) -> Result<Rule, RuleError> {
        let given = args.string("language")?;
        let Some(&(code, name)) = LANGUAGE_CODES.iter().find(|(code, _)| *code == given) else {
            let known: Vec<&str> = LANGUAGE_CODES.iter().map(|(code, _)| *code).collect();
            return Err(args.error(format!(
                "unknown \"language\" {given:?}; the reference knows {}",
                known.join(", ")
            )));
        };
        Ok(Rule { code, name })
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "Your ENTIRE response should be in {} language, no other language is allowed.",
            self.name
        )
    }

    pub(super) fn check(&self, response: &str, explain: bool) -> Verdict {
        match langdetect::detect(response) {
            Ok(code) if code == self.code => Ok(()),
            Ok(code) => because(explain, || {
                format!(
                    "detected language {code:?}, needs {:?} ({})",
                    self.code, self.name
                )
            }),
            // Deliberate (upstream): a text langdetect cannot classify counts as followed.
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Instruction;
    use serde_json::json;

    #[test]
    fn unknown_codes_are_refused_with_the_list() {
        let map = json!({"language": "xx"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let err = Instruction::new("language:response_language", &map)
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("en, es, pt"), "{err}");
    }

    #[test]
    fn undetectable_text_counts_as_followed() {
        let map = json!({"language": "de"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let inst =
            Instruction::new("language:response_language", &map).unwrap_or_else(|e| panic!("{e}"));
        assert!(inst.check("12345 !!!").pass);
    }
}
