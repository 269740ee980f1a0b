//! `detectable_content:*`: `[placeholder]`s and a postscript.

use super::pyre::{Flags, PyRegex};
use super::words::{lower, strip};
use super::{Kwargs, RuleError, Verdict, because};

#[derive(Debug, Clone)]
pub(super) enum Rule {
    /// At least `num_placeholders` matches of `\[.*?\]`.
    NumberPlaceholders { num_placeholders: i64 },
    /// A line of the lowercased response matches `\s*<marker>.*$` (MULTILINE).
    Postscript { marker: String, pattern: PyRegex },
}

impl Rule {
    pub(super) fn new(name: &str, args: &Kwargs) -> Result<Rule, RuleError> {
        Ok(match name {
            "number_placeholders" => Rule::NumberPlaceholders {
                num_placeholders: args.int("num_placeholders", 0)?,
            },
            _ => {
                let marker = strip(args.string("postscript_marker")?).to_owned();
                // Deliberate (upstream): the two usual markers get tolerant patterns;
                // any other marker is lowercased and used as a regex, so its `.` match
                // any character.
                let source = match marker.as_str() {
                    "P.P.S" => r"\s*p\.\s?p\.\s?s.*$".to_owned(),
                    "P.S." => r"\s*p\.\s?s\..*$".to_owned(),
                    other => format!(r"\s*{}.*$", lower(other)),
                };
                let pattern = PyRegex::new(
                    &source,
                    Flags {
                        ignorecase: false,
                        multiline: true,
                    },
                )
                .map_err(|e| args.error(format!("postscript_marker: {e}")))?;
                Rule::Postscript { marker, pattern }
            }
        })
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Rule::NumberPlaceholders { num_placeholders } => format!(
                "The response must contain at least {num_placeholders} placeholders represented by square brackets, \
                 such as [address]."
            ),
            Rule::Postscript { marker, .. } => {
                format!(
                    "At the end of your response, please explicitly add a postscript starting with {marker}"
                )
            }
        }
    }

    pub(super) fn check(&self, response: &str, explain: bool) -> Verdict {
        match self {
            Rule::NumberPlaceholders { num_placeholders } => {
                let found = count_placeholders(response);
                if i64::try_from(found).is_ok_and(|n| n >= *num_placeholders) {
                    Ok(())
                } else {
                    because(explain, || {
                        format!("{found} [placeholders], needs at least {num_placeholders}")
                    })
                }
            }
            Rule::Postscript { marker, pattern } => {
                if pattern.is_match(&lower(response)) {
                    Ok(())
                } else {
                    because(explain, || {
                        format!("no postscript starting with {marker:?}")
                    })
                }
            }
        }
    }
}

/// `len(re.findall(r"\[.*?\]", text))`: a `[` and the nearest `]` on the same line.
/// Deliberate (upstream): any bracketed text counts, `[]` and citations included.
fn count_placeholders(text: &str) -> usize {
    let mut count = 0;
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        match after.find([']', '\n']) {
            Some(close) if after.as_bytes()[close] == b']' => {
                count += 1;
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::super::Instruction;
    use super::count_placeholders;
    use serde_json::json;

    fn inst(id: &str, kwargs: serde_json::Value) -> Instruction {
        Instruction::new(id, &kwargs.as_object().cloned().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn placeholders_are_bracket_pairs_on_one_line() {
        assert_eq!(count_placeholders("[a] [b c] [] [[d]] [e\n] [f"), 4);
        let rule = inst(
            "detectable_content:number_placeholders",
            json!({"num_placeholders": 2}),
        );
        assert!(rule.check("Dear [name], at [address].").pass);
        assert!(!rule.check("Dear [name].").pass);
    }

    #[test]
    fn postscript_markers() {
        let ps = inst(
            "detectable_content:postscript",
            json!({"postscript_marker": "P.S."}),
        );
        assert!(ps.check("Body.\n\nP.S. See you").pass);
        assert!(ps.check("Body. p. s. lower and spaced").pass);
        assert!(!ps.check("Body. PS no dots").pass);
        let pps = inst(
            "detectable_content:postscript",
            json!({"postscript_marker": "P.P.S"}),
        );
        assert!(pps.check("x\nP. P. S more").pass);
        assert!(!pps.check("x\nP.S. only").pass);
        // another marker is a lowercased regex: `.` is any character
        let note = inst(
            "detectable_content:postscript",
            json!({"postscript_marker": " Note. "}),
        );
        assert!(note.check("NOTEX: upper").pass);
    }
}
