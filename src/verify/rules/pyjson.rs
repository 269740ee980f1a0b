//! Whether Python's `json.loads(text)` accepts a text (CPython 3.11's C scanner).
//!
//! Python is more liberal than RFC 8259 in two ways the reference inherits: `NaN`,
//! `Infinity` and `-Infinity` are values, and `\ud800`-style lone surrogate escapes are
//! fine. It is stricter in one: an integer literal of more than 4300 digits raises
//! `ValueError` (`sys.int_info.default_max_str_digits`). Nesting depth is unlimited
//! here; CPython raises `RecursionError` (not a `ValueError`, so the reference checker
//! would crash) somewhere near 1000 levels.

const MAX_INT_DIGITS: usize = 4300;

/// `json.loads(text)` succeeds.
pub(super) fn is_valid(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut pos = skip_ws(bytes, 0);
    match parse_value(bytes, &mut pos) {
        Some(()) => skip_ws(bytes, pos) == bytes.len(),
        None => false,
    }
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && matches!(bytes[pos], b' ' | b'\t' | b'\n' | b'\r') {
        pos += 1;
    }
    pos
}

/// What an open container expects next.
#[derive(Clone, Copy)]
enum Open {
    /// After `[`: a value or `]`.
    ArrayStart,
    /// After a value in an array: `,` or `]`.
    ArrayNext,
    /// After `{`: a key or `}`.
    ObjectStart,
    /// After a member value: `,` or `}`.
    ObjectNext,
}

/// Parses one value starting at `*pos` (no leading whitespace), iteratively.
fn parse_value(bytes: &[u8], pos: &mut usize) -> Option<()> {
    let mut stack: Vec<Open> = Vec::new();
    loop {
        // Parse a value at *pos.
        match *bytes.get(*pos)? {
            b'[' => {
                *pos = skip_ws(bytes, *pos + 1);
                if bytes.get(*pos) == Some(&b']') {
                    *pos += 1;
                } else {
                    stack.push(Open::ArrayStart);
                    continue;
                }
            }
            b'{' => {
                *pos = skip_ws(bytes, *pos + 1);
                if bytes.get(*pos) == Some(&b'}') {
                    *pos += 1;
                } else {
                    parse_member_key(bytes, pos)?;
                    stack.push(Open::ObjectStart);
                    continue;
                }
            }
            b'"' => parse_string(bytes, pos)?,
            _ => parse_scalar(bytes, pos)?,
        }
        // A value is complete: let the enclosing containers consume separators.
        loop {
            let Some(top) = stack.pop() else {
                return Some(());
            };
            *pos = skip_ws(bytes, *pos);
            match (top, bytes.get(*pos)) {
                (Open::ArrayStart | Open::ArrayNext, Some(b',')) => {
                    *pos = skip_ws(bytes, *pos + 1);
                    stack.push(Open::ArrayNext);
                    break;
                }
                (Open::ArrayStart | Open::ArrayNext, Some(b']')) => *pos += 1,
                (Open::ObjectStart | Open::ObjectNext, Some(b',')) => {
                    *pos = skip_ws(bytes, *pos + 1);
                    parse_member_key(bytes, pos)?;
                    stack.push(Open::ObjectNext);
                    break;
                }
                (Open::ObjectStart | Open::ObjectNext, Some(b'}')) => *pos += 1,
                _ => return None,
            }
        }
    }
}

/// `"key"` `:` and the whitespace before the member value.
fn parse_member_key(bytes: &[u8], pos: &mut usize) -> Option<()> {
    if bytes.get(*pos) != Some(&b'"') {
        return None;
    }
    parse_string(bytes, pos)?;
    *pos = skip_ws(bytes, *pos);
    if bytes.get(*pos) != Some(&b':') {
        return None;
    }
    *pos = skip_ws(bytes, *pos + 1);
    Some(())
}

/// A string starting at the opening quote; control characters are not allowed.
fn parse_string(bytes: &[u8], pos: &mut usize) -> Option<()> {
    let mut i = *pos + 1;
    loop {
        match *bytes.get(i)? {
            b'"' => {
                *pos = i + 1;
                return Some(());
            }
            b'\\' => match *bytes.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = bytes.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
}

/// Literals and numbers.
fn parse_scalar(bytes: &[u8], pos: &mut usize) -> Option<()> {
    let rest = &bytes[*pos..];
    for word in [
        &b"null"[..],
        b"true",
        b"false",
        b"NaN",
        b"Infinity",
        b"-Infinity",
    ] {
        if rest.starts_with(word) {
            *pos += word.len();
            return Some(());
        }
    }
    // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?, ASCII digits only
    let digits_from = |i: usize| bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut i = *pos;
    if bytes.get(i) == Some(&b'-') {
        i += 1;
    }
    let int_start = i;
    match bytes.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += digits_from(i),
        _ => return None,
    }
    let int_digits = i - int_start;
    let mut is_float = false;
    if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        is_float = true;
        i += 1 + digits_from(i + 1);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'-' | b'+')) {
            j += 1;
        }
        let exp_digits = digits_from(j);
        if exp_digits > 0 {
            is_float = true;
            i = j + exp_digits;
        }
    }
    if !is_float && int_digits > MAX_INT_DIGITS {
        return None;
    }
    *pos = i;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn accepts_what_python_accepts() {
        for ok in [
            r#"{"a": [1, 2.5, -0, 1e5, 1E+5, true, false, null]}"#,
            r#"{"nan": NaN, "inf": Infinity, "ninf": -Infinity}"#,
            r#""\ud800 lone surrogate""#,
            "42",
            " \t[ ]\r\n",
            r#"{"a": {"b": {"c": []}}, "d": "\"quoted\" \u00e9"}"#,
        ] {
            assert!(is_valid(ok), "{ok}");
        }
    }

    #[test]
    fn rejects_what_python_rejects() {
        let huge = format!("[{}]", "9".repeat(4301));
        for bad in [
            "",
            r#"{"trailing": 1,}"#,
            "[1, 2,]",
            "01",
            "1.",
            "-",
            "{'single': 1}",
            "\"tab\tinside\"",
            r#""\x""#,
            r#""\u12G4""#,
            "[1] extra",
            "\u{feff}{}",
            "nul",
            huge.as_str(),
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
        assert!(is_valid(&format!("[{}]", "9".repeat(4300))));
        assert!(is_valid(&format!("[{}.5]", "9".repeat(5000))));
    }

    #[test]
    fn deep_nesting_is_iterative() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(is_valid(&deep));
    }
}
