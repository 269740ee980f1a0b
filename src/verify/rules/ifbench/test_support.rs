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
