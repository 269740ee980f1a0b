//! What the category modules' unit tests share: building instructions from JSON kwargs
//! and checking the `(strict, loose)` verdicts the reference gave.

use super::IfbenchInstruction;
use serde_json::Value;

/// The instruction `id` with `kwargs` (an object), or why it is refused.
pub(super) fn try_build(id: &str, kwargs: Value) -> Result<IfbenchInstruction, String> {
    let map = kwargs.as_object().cloned().unwrap_or_default();
    IfbenchInstruction::new(id, &map).map_err(|e| e.to_string())
}

/// The instruction `id` with `kwargs`; panics when refused.
pub(super) fn build(id: &str, kwargs: Value) -> IfbenchInstruction {
    try_build(id, kwargs).unwrap_or_else(|e| panic!("{e}"))
}

/// Why `id` with `kwargs` is refused; panics when accepted.
pub(super) fn refused(id: &str, kwargs: Value) -> String {
    match try_build(id, kwargs.clone()) {
        Ok(_) => panic!("{id} {kwargs} was accepted"),
        Err(e) => e,
    }
}

/// Why `inst` fails `response` (strict).
pub(super) fn reason(inst: &IfbenchInstruction, response: &str) -> String {
    let check = inst.check(response).expect("decided");
    check.reason.expect("a failure")
}

/// `(kwargs, response, strict, loose)` rows, each checked against the reference.
pub(super) fn assert_verdicts(id: &str, rows: &[(Value, &str, bool, bool)]) {
    for (kwargs, response, strict, loose) in rows {
        let inst = try_build(id, kwargs.clone()).expect("builds");
        let got_strict = inst.check(response).expect("decided");
        let got_loose = inst.check_loose(response).expect("decided");
        assert_eq!(
            (got_strict.pass, got_loose.pass),
            (*strict, *loose),
            "{id} {kwargs} on {response:?}: {:?}",
            got_strict.reason
        );
        assert_eq!(got_strict.reason.is_none(), got_strict.pass);
    }
}

/// Checks `(response, strict, loose)` verdicts of `id` with `kwargs`.
pub(super) fn verdicts(id: &str, kwargs: Value, cases: &[(&str, bool, bool)]) {
    let inst = build(id, kwargs);
    for &(response, strict, loose) in cases {
        let got = inst.check(response).expect("decidable");
        assert_eq!(
            got.pass, strict,
            "{id} strict {response:?}: {:?}",
            got.reason
        );
        assert_eq!(got.reason.is_some(), !strict, "{id} {response:?}");
        let got = inst.check_loose(response).expect("decidable");
        assert_eq!(got.pass, loose, "{id} loose {response:?}: {:?}", got.reason);
    }
}

/// Every response of IFBench's sample output and of IFEval's text-bison responses, each
/// with its loose variants (the texts the fast paths are checked on against the old code).
pub(super) fn responses_with_loose_variants() -> Vec<String> {
    let samples = include_str!("../../../../data/ifbench/sample_output.jsonl");
    let bison = include_str!("../../../../data/ifeval/input_response_data_text_bison.jsonl");
    let mut texts: Vec<String> = Vec::new();
    let rows = samples.lines().chain(bison.lines());
    for row in rows.filter_map(|line| serde_json::from_str::<Value>(line).ok()) {
        if let Some(response) = row["response"].as_str() {
            let variants = super::super::LooseVariants::new(response);
            texts.extend(variants.iter().map(str::to_owned));
        }
    }
    texts
}

/// `count` texts of up to `max_pieces - 1` of `pieces` each, drawn by a xorshift
/// generator from `state` (the same texts every run).
pub(super) fn piece_texts(
    pieces: &[&str],
    count: usize,
    max_pieces: u64,
    mut state: u64,
) -> Vec<String> {
    (0..count)
        .map(|_| {
            let mut text = String::new();
            for _ in 0..(state % max_pieces) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            text
        })
        .collect()
}
