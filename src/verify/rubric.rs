//! Rubric and checklist rewards (RLCF's per-prompt checklists, Rubrics as Rewards): a
//! prompt may carry a `rubric`, a list of items
//!
//! ```json
//! [{"criterion": "Uses no commas", "hard": true, "check": {"rule": "punctuation:no_comma"}},
//!  {"criterion": "The ending surprises the reader", "weight": 2},
//!  {"criterion": "Reads at a 5th-grade level", "check": {"url": "http://localhost:5000/grade"}}]
//! ```
//!
//! - `criterion` (text, required): what the response should do; the judge's question
//!   and the endpoint's label.
//! - `check`: how the item is decided, giving it a score in [0, 1]:
//!   - absent, `"judge"`, or `{"judge": "a question"}`: the judge, asked the criterion
//!     (or the question); the score is its P(yes);
//!   - `{"rule": ID, "kwargs": {...}}`, or the bare id as text: an IFEval or IFBench
//!     instruction decided by the rules; 1 or 0;
//!   - `{"url": URL}`, or the URL as text: an endpoint of your own
//!     ([`super::reward_url`]: OpenRLHF's request with the criterion as the label),
//!     answering a score in [0, 1].
//! - `hard` (default false): a hard item gates. The response's constraint verdict
//!   (RLMR's) is "every listed constraint and every hard item passes"; a judge or URL
//!   item passes when its score is at least the judge threshold (`--judge-threshold`).
//! - `weight` (default 1; a number >= 0): the item's weight in the rubric score,
//!   `sum(w * score) / sum(w)` over the soft items, a number in [0, 1] that `rmtk grpo
//!   --rubric-weight` adds to the writing reward. A hard item's weight is not used: it
//!   gates instead. No soft item with a positive weight: no rubric score.
//!
//! A malformed item is an error naming the item (its index in the list) and the field.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::reward_url::RewardArgs;
use super::{Checker, Constraint, ConstraintError, ConstraintSet, ConstraintVerdict};
use crate::data::{json_type, truncate};

/// How one item is decided.
#[derive(Debug, Clone)]
pub enum ItemCheck {
    /// An IFEval or IFBench instruction ([`Constraint::Rule`] or [`Constraint::Ifbench`]).
    Rule(Constraint),
    /// The judge, asked this question.
    Judge(String),
    /// An endpoint of your own.
    Url(String),
}

/// One rubric item.
#[derive(Debug, Clone)]
pub struct RubricItem {
    pub criterion: String,
    pub weight: f64,
    pub hard: bool,
    pub check: ItemCheck,
}

impl RubricItem {
    /// Whether the judge decides this item (a judge item, or an instruction the rules
    /// cannot decide here).
    pub fn needs_judge(&self) -> bool {
        self.why_judge().is_some()
    }

    /// Why the judge must decide this item, if it must.
    pub fn why_judge(&self) -> Option<String> {
        match &self.check {
            ItemCheck::Judge(_) => Some("is checked by the judge".into()),
            ItemCheck::Rule(Constraint::Ifbench(inst)) => inst.undecidable().map(|why| {
                format!(
                    "is {}, which the rules cannot decide here ({why}), so it needs the judge",
                    inst.id()
                )
            }),
            ItemCheck::Rule(_) | ItemCheck::Url(_) => None,
        }
    }
}

/// A prompt's rubric (empty: none).
#[derive(Debug, Clone, Default)]
pub struct Rubric {
    items: Vec<RubricItem>,
}

/// Why a rubric could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RubricError {
    /// The cell as a whole.
    #[error("{0}")]
    Shape(String),
    /// One item, by its index in the list.
    #[error("item {index}: {message}")]
    Item { index: usize, message: String },
}

impl Rubric {
    pub fn new(items: Vec<RubricItem>) -> Rubric {
        Rubric { items }
    }

    /// Reads a rubric cell: a list of item objects, or that list as JSON text; null is
    /// no rubric. `prompt` stands in for a missing `prompt_to_repeat` of IFEval's
    /// `combination:repeat_prompt`.
    pub fn parse(value: &Value, prompt: Option<&str>) -> Result<Rubric, RubricError> {
        let decoded = match value {
            Value::String(s) => Some(serde_json::from_str::<Value>(s).map_err(|e| {
                RubricError::Shape(format!(
                    "should be a list of rubric items (or that list as JSON text); the text is not JSON ({e}): {}",
                    truncate(s, 60)
                ))
            })?),
            _ => None,
        };
        let items = match decoded.as_ref().unwrap_or(value) {
            Value::Null => return Ok(Rubric::default()),
            Value::Array(items) => items,
            other => {
                return Err(RubricError::Shape(format!(
                    "should be a list of rubric items {{criterion, weight, hard, check}}, found a {}",
                    json_type(other)
                )));
            }
        };
        let items = items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                parse_item(item, prompt).map_err(|message| RubricError::Item { index, message })
            })
            .collect::<Result<_, _>>()?;
        Ok(Rubric { items })
    }

    pub fn items(&self) -> &[RubricItem] {
        &self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether some item needs the judge.
    pub fn needs_judge(&self) -> bool {
        self.items.iter().any(RubricItem::needs_judge)
    }

    /// Without a judge: the first item that needs one, as an error message.
    pub fn judge_error(&self) -> Option<String> {
        self.items.iter().enumerate().find_map(|(k, item)| {
            item.why_judge().map(|why| {
                format!(
                    "item {k} ({}) {why}; configure one (--judge-model, with --judge-url for a remote one)",
                    truncate(&item.criterion, 60)
                )
            })
        })
    }

    /// Whether some item is checked by an endpoint.
    pub fn has_urls(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i.check, ItemCheck::Url(_)))
    }
}

const ITEM_KEYS: [&str; 4] = ["criterion", "weight", "hard", "check"];

/// An object without its null fields: parquet stores a list of objects as structs
/// with every field any item has, null where an item lacks it.
fn present(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn parse_item(value: &Value, prompt: Option<&str>) -> Result<RubricItem, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "should be an object {{criterion, weight, hard, check}}, found a {}: {}",
            json_type(value),
            truncate(&value.to_string(), 60)
        ));
    };
    let map = &present(map);
    if let Some(key) = map.keys().find(|k| !ITEM_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field `{key}` (an item has {})",
            ITEM_KEYS.join(", ")
        ));
    }
    let criterion = match map.get("criterion") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::String(_)) => return Err("`criterion` is empty".into()),
        None | Some(Value::Null) => {
            return Err("`criterion` is missing: say what the response should do".into());
        }
        Some(other) => {
            return Err(format!(
                "`criterion` should be text, found a {}",
                json_type(other)
            ));
        }
    };
    let weight = match map.get("weight") {
        None | Some(Value::Null) => 1.0,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(w) if w.is_finite() && w >= 0.0 => w,
            _ => return Err(format!("`weight` is {n}: it must be a number >= 0")),
        },
        Some(other) => {
            return Err(format!(
                "`weight` should be a number >= 0, found a {}: {}",
                json_type(other),
                truncate(&other.to_string(), 40)
            ));
        }
    };
    let hard = match map.get("hard") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "`hard` should be true or false, found a {}",
                json_type(other)
            ));
        }
    };
    let check = parse_check(map.get("check").unwrap_or(&Value::Null), &criterion, prompt)
        .map_err(|m| format!("`check` {m}"))?;
    Ok(RubricItem {
        criterion,
        weight,
        hard,
        check,
    })
}

fn is_url(text: &str) -> bool {
    text.starts_with("http://") || text.starts_with("https://")
}

fn parse_check(value: &Value, criterion: &str, prompt: Option<&str>) -> Result<ItemCheck, String> {
    match value {
        Value::Null => Ok(ItemCheck::Judge(criterion.to_owned())),
        Value::String(s) if s.trim() == "judge" => Ok(ItemCheck::Judge(criterion.to_owned())),
        Value::String(s) if is_url(s.trim()) => Ok(ItemCheck::Url(s.trim().to_owned())),
        Value::String(s) => rule(s.trim(), &Map::new(), prompt),
        Value::Object(map) => {
            let map = &present(map);
            let forms = ["rule", "judge", "url"];
            let given: Vec<&str> = forms.into_iter().filter(|k| map.contains_key(*k)).collect();
            if given.len() != 1 {
                return Err(format!(
                    "should have one of `rule` (with `kwargs`), `judge` or `url`; found {}",
                    if given.is_empty() {
                        "none".to_owned()
                    } else {
                        given.join(" and ")
                    }
                ));
            }
            let allowed: &[&str] = match given[0] {
                "rule" => &["rule", "kwargs"],
                "judge" => &["judge"],
                _ => &["url"],
            };
            if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
                return Err(format!(
                    "has an unknown field `{key}` for a {} check",
                    given[0]
                ));
            }
            match given[0] {
                "rule" => {
                    let Some(Value::String(id)) = map.get("rule") else {
                        return Err("`rule` should be an instruction id as text".into());
                    };
                    let kwargs = match map.get("kwargs") {
                        None | Some(Value::Null) => Map::new(),
                        Some(Value::Object(kw)) => kw.clone(),
                        Some(other) => {
                            return Err(format!(
                                "`kwargs` should be an object of arguments, found a {}",
                                json_type(other)
                            ));
                        }
                    };
                    rule(id.trim(), &kwargs, prompt)
                }
                "judge" => match map.get("judge") {
                    Some(Value::Bool(true)) => Ok(ItemCheck::Judge(criterion.to_owned())),
                    Some(Value::String(q)) if !q.trim().is_empty() => {
                        Ok(ItemCheck::Judge(q.trim().to_owned()))
                    }
                    _ => Err(
                        "`judge` should be the question as text (or true: the criterion)".into(),
                    ),
                },
                _ => match map.get("url") {
                    Some(Value::String(u)) if is_url(u.trim()) => {
                        Ok(ItemCheck::Url(u.trim().to_owned()))
                    }
                    Some(other) => Err(format!(
                        "`url` should start with http:// or https://: {}",
                        truncate(&other.to_string(), 60)
                    )),
                    None => unreachable!("the form was found"),
                },
            }
        }
        other => Err(format!(
            "should be \"judge\", an instruction id, a URL, or an object ({{\"rule\": ID, \"kwargs\": {{...}}}}, {{\"judge\": QUESTION}}, {{\"url\": URL}}); found a {}",
            json_type(other)
        )),
    }
}

fn rule(id: &str, kwargs: &Map<String, Value>, prompt: Option<&str>) -> Result<ItemCheck, String> {
    let set =
        ConstraintSet::ifeval(prompt, &[id], std::slice::from_ref(kwargs)).map_err(
            |e| match e {
                ConstraintError::Rule { source, .. } => source.to_string(),
                other => other.to_string(),
            },
        )?;
    let constraint = set.as_slice()[0].clone();
    Ok(ItemCheck::Rule(constraint))
}

/// The distinct URLs rubrics call.
pub fn endpoints<'a>(rubrics: impl Iterator<Item = &'a Rubric>) -> BTreeSet<&'a str> {
    rubrics
        .flat_map(|r| r.items.iter())
        .filter_map(|i| match &i.check {
            ItemCheck::Url(url) => Some(url.as_str()),
            _ => None,
        })
        .collect()
}

/// A line saying which endpoints the data makes rmtk call, and which get the API key.
pub fn describe_endpoints(urls: &BTreeSet<&str>, reward: &RewardArgs) -> String {
    let keyed: Vec<&str> = urls
        .iter()
        .copied()
        .filter(|u| reward.key_goes_to(u))
        .collect();
    let shown: Vec<&str> = urls.iter().copied().take(5).collect();
    let more = urls.len().saturating_sub(shown.len());
    format!(
        "rubric endpoints (from the data): {}{}; the API key (${}) goes to {}",
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        },
        reward.reward_api_key_env,
        if keyed.is_empty() {
            "none of them (--reward-key-origin names the origins that get it)".to_owned()
        } else {
            keyed.join(", ")
        }
    )
}

/// The verdict on one rubric item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemVerdict {
    /// The check's verdict, labelled with the criterion; its `pass` is the item's.
    pub verdict: ConstraintVerdict,
    /// In [0, 1]: 1 or 0 for a rule, P(yes) for the judge (0 without an answer), the
    /// endpoint's score for a URL.
    pub score: f64,
    pub hard: bool,
    pub weight: f64,
}

impl ItemVerdict {
    pub fn checker(&self) -> Checker {
        self.verdict.checker
    }
}

/// The rubric score: `sum(w * score) / sum(w)` over the soft items; `None` when no soft
/// item has a positive weight. Hard items gate instead and do not count.
pub fn rubric_score(items: &[ItemVerdict]) -> Option<f64> {
    let (mut num, mut den) = (0.0, 0.0);
    for item in items.iter().filter(|i| !i.hard) {
        num += item.weight * item.score;
        den += item.weight;
    }
    // A ratio of weighted means: clamp the last ulp of rounding back into [0, 1].
    (den > 0.0).then(|| (num / den).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    fn parse(v: Value) -> Result<Rubric, RubricError> {
        Rubric::parse(&v, Some("Write a poem."))
    }

    fn err(v: Value) -> String {
        parse(v).unwrap_err().to_string()
    }

    #[test]
    fn every_check_form_is_read() {
        let r = parse(json!([
            {"criterion": "No commas", "hard": true, "check": {"rule": "punctuation:no_comma"}},
            {"criterion": "At least 40 words", "weight": 2,
             "check": {"rule": "length_constraints:number_words", "kwargs": {"relation": "at least", "num_words": 40}}},
            {"criterion": "Has 2 numbers", "check": {"rule": "count:numbers", "kwargs": {"N": 2.0}}},
            {"criterion": "No commas again", "check": "punctuation:no_comma"},
            {"criterion": "The ending surprises"},
            {"criterion": "Vivid", "check": "judge"},
            {"criterion": "Vivid", "check": {"judge": "Is the imagery vivid?"}},
            {"criterion": "Graded", "check": "http://localhost:5000/grade"},
            {"criterion": "Graded", "check": {"url": "https://example.org/x"}, "weight": 0.5, "hard": null}
        ]))
        .unwrap();
        assert_eq!(r.len(), 9);
        let items = r.items();
        assert!(items[0].hard && !items[1].hard);
        assert_eq!(items[1].weight, 2.0);
        assert_eq!(items[0].weight, 1.0);
        assert!(
            matches!(&items[0].check, ItemCheck::Rule(c) if c.id() == Some("punctuation:no_comma"))
        );
        assert!(matches!(
            &items[2].check,
            ItemCheck::Rule(Constraint::Ifbench(_))
        ));
        assert!(matches!(&items[3].check, ItemCheck::Rule(_)));
        assert!(matches!(&items[4].check, ItemCheck::Judge(q) if q == "The ending surprises"));
        assert!(matches!(&items[5].check, ItemCheck::Judge(q) if q == "Vivid"));
        assert!(matches!(&items[6].check, ItemCheck::Judge(q) if q == "Is the imagery vivid?"));
        assert!(matches!(&items[7].check, ItemCheck::Url(u) if u == "http://localhost:5000/grade"));
        assert!(matches!(&items[8].check, ItemCheck::Url(_)));
        assert!(r.needs_judge() && r.has_urls());
        // As JSON text (parquet writers store nested columns so), and null.
        let text = json!(r#"[{"criterion": "No commas", "check": "punctuation:no_comma"}]"#);
        let r = parse(text).unwrap();
        assert!(!r.needs_judge() && !r.has_urls());
        assert!(parse(Value::Null).unwrap().is_empty());
        assert!(parse(json!([])).unwrap().is_empty());
        // As parquet gives a list of structs back: every field of every item, null where
        // an item lacks it.
        let r = parse(json!([
            {"criterion": "No commas", "weight": null, "hard": true,
             "check": {"rule": "punctuation:no_comma", "kwargs": null, "judge": null, "url": null}},
            {"criterion": "Vivid", "weight": 2.0, "hard": null,
             "check": {"rule": null, "kwargs": null, "judge": "Is it vivid?", "url": null}},
            {"criterion": "Graded", "weight": null, "hard": null,
             "check": {"rule": null, "kwargs": null, "judge": null, "url": "http://localhost:5000/g"}},
        ]))
        .unwrap();
        assert!(matches!(&r.items()[0].check, ItemCheck::Rule(_)));
        assert!(matches!(&r.items()[1].check, ItemCheck::Judge(q) if q == "Is it vivid?"));
        assert!(matches!(&r.items()[2].check, ItemCheck::Url(_)));
        assert_eq!(r.items()[0].weight, 1.0);
    }

    #[test]
    fn malformed_items_name_the_item_and_field() {
        let cases = [
            (
                json!({"criterion": "x"}),
                "should be a list of rubric items",
            ),
            (json!("[{"), "the text is not JSON"),
            (
                json!([{"criterion": "a"}, "b"]),
                "item 1: should be an object",
            ),
            (json!([{"weight": 1}]), "item 0: `criterion` is missing"),
            (json!([{"criterion": "  "}]), "item 0: `criterion` is empty"),
            (
                json!([{"criterion": 3}]),
                "item 0: `criterion` should be text, found a number",
            ),
            (
                json!([{"criterion": "a", "weight": -1}]),
                "item 0: `weight` is -1: it must be a number >= 0",
            ),
            (
                json!([{"criterion": "a"}, {"criterion": "b", "weight": "2"}]),
                "item 1: `weight` should be a number >= 0, found a string",
            ),
            (
                json!([{"criterion": "a", "weight": [1]}]),
                "item 0: `weight` should be a number >= 0, found a list",
            ),
            (
                json!([{"criterion": "a", "hard": "yes"}]),
                "item 0: `hard` should be true or false",
            ),
            (
                json!([{"criterion": "a", "wieght": 2}]),
                "item 0: unknown field `wieght`",
            ),
            (
                json!([{"criterion": "a", "check": {"rule": "x:y"}}]),
                "item 0: `check` unknown",
            ),
            (
                json!([{"criterion": "a", "check": "punctuation:no_coma"}]),
                "punctuation:no_comma",
            ),
            (
                json!([{"criterion": "a", "check": {"rule": "length_constraints:number_words", "kwargs": {"relation": "at least"}}}]),
                "item 0: `check`",
            ),
            (
                json!([{"criterion": "a", "check": {"rule": "punctuation:no_comma", "url": "http://x"}}]),
                "found rule and url",
            ),
            (json!([{"criterion": "a", "check": {}}]), "found none"),
            (
                json!([{"criterion": "a", "check": {"url": "localhost:5000"}}]),
                "`url` should start with http://",
            ),
            (
                json!([{"criterion": "a", "check": {"judge": ""}}]),
                "`judge` should be the question",
            ),
            (
                json!([{"criterion": "a", "check": {"judge": "q", "kwargs": {}}}]),
                "unknown field `kwargs` for a judge check",
            ),
            (
                json!([{"criterion": "a", "check": 3}]),
                "`check` should be \"judge\"",
            ),
        ];
        for (value, wanted) in cases {
            let e = err(value.clone());
            assert!(e.contains(wanted), "{value}: {e}");
        }
        // Unknown ids list the accepted ones of both benchmarks.
        let e = err(json!([{"criterion": "a", "check": "nope:nope"}]));
        assert!(
            e.contains("punctuation:no_comma") && e.contains("count:numbers"),
            "{e}"
        );
    }

    fn verdict(score: f64, hard: bool, weight: f64) -> ItemVerdict {
        ItemVerdict {
            verdict: ConstraintVerdict {
                constraint: "c".into(),
                checker: Checker::Rules,
                pass: score >= 0.5,
                reason: None,
                probability: None,
                rationale: None,
                note: None,
            },
            score,
            hard,
            weight,
        }
    }

    #[test]
    fn the_score_is_the_weighted_mean_of_the_soft_items() {
        let items = [
            verdict(1.0, false, 2.0),
            verdict(0.25, false, 1.0),
            verdict(0.0, true, 5.0),
            verdict(0.0, false, 0.0),
        ];
        assert!((rubric_score(&items).unwrap() - 2.25 / 3.0).abs() < 1e-12);
        assert_eq!(rubric_score(&[verdict(1.0, true, 1.0)]), None);
        assert_eq!(rubric_score(&[verdict(1.0, false, 0.0)]), None);
        assert_eq!(rubric_score(&[]), None);
    }

    #[test]
    fn the_score_stays_in_the_unit_interval_ignores_hard_items_and_weight_scale() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        for _ in 0..2000 {
            let n = rng.random_range(1..8);
            let items: Vec<ItemVerdict> = (0..n)
                .map(|_| {
                    verdict(
                        rng.random_range(0.0..=1.0),
                        rng.random_bool(0.3),
                        rng.random_range(0.0..10.0),
                    )
                })
                .collect();
            let Some(s) = rubric_score(&items) else {
                assert!(items.iter().all(|i| i.hard || i.weight == 0.0));
                continue;
            };
            assert!((0.0..=1.0).contains(&s));
            // Scaling every weight changes nothing.
            let k = rng.random_range(0.1..100.0);
            let scaled: Vec<ItemVerdict> = items
                .iter()
                .map(|i| verdict(i.score, i.hard, i.weight * k))
                .collect();
            assert!((rubric_score(&scaled).unwrap() - s).abs() < 1e-9);
            // Nor does any hard item's score.
            let flipped: Vec<ItemVerdict> = items
                .iter()
                .map(|i| {
                    let score = if i.hard { 1.0 - i.score } else { i.score };
                    verdict(score, i.hard, i.weight)
                })
                .collect();
            assert_eq!(rubric_score(&flipped), Some(s));
            // Raising one soft item's score never lowers it.
            if let Some(k) = items.iter().position(|i| !i.hard && i.score < 1.0) {
                let mut up = items.clone();
                up[k].score = 1.0;
                assert!(rubric_score(&up).unwrap() >= s - 1e-12);
            }
        }
    }
}
