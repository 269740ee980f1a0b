//! Python `re` patterns, run with the `regex` crate.
//!
//! Several IFEval arguments are used by the reference as regular expressions (keywords,
//! forbidden words, section splitters, postscript markers), with Python's syntax and
//! Python's Unicode classes. [`PyRegex::new`] translates a Python pattern into an
//! equivalent `regex` pattern: `\w` becomes `[\p{L}\p{N}_]` (Python's `isalnum()` or
//! `_`), `\s` gains `\x1c`..`\x1f`, `\Z` is `\z`, `{,n}` is `{0,n}`, a `{` that is not a
//! quantifier is a literal, classes take `[`, `&&`, `--`, `~~` literally, and under
//! IGNORECASE `i` also matches `İ` and `ı` as in Python. Constructs `regex` cannot run
//! (look-around, back-references, conditionals, atomic groups, possessive quantifiers)
//! and escapes Python rejects are errors.
//!
//! Two approximations remain, both at the edges of Unicode use: `\b`/`\B` use `regex`'s
//! word characters (which also count combining marks and connector punctuation, and
//! not `²`-like digits), and `$` without MULTILINE matches only at the very end (Python
//! also matches before a final newline). [`PyRegex::is_match_bounded`] gives the exact
//! Python `\b...\b` search for the literal words the forbidden-words rule uses.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use regex::{Regex, RegexBuilder};

use super::words::is_word;

const PY_WORD: &str = r"\p{L}\p{N}_";
const PY_SPACE: &str = r"\s\x1C-\x1F";

/// Python `re` flags the reference uses.
#[derive(Clone, Copy, Default)]
pub(super) struct Flags {
    pub ignorecase: bool,
    pub multiline: bool,
}

/// A compiled Python pattern.
#[derive(Clone, Debug)]
pub(super) struct PyRegex {
    /// Shared with the cache and every instruction built from the same pattern.
    regex: Arc<Regex>,
    /// Number of capturing groups (they add items to `re.split` results).
    groups: usize,
}

/// Compiled patterns by (pattern, ignorecase, multiline), as Python's `re` keeps its
/// own: building an instruction (once per row in IFEval's evaluation) would otherwise
/// compile its keyword patterns again each time, and compiling a Unicode,
/// case-insensitive pattern costs far more than searching a response with it.
static CACHE: LazyLock<Mutex<HashMap<CacheKey, PyRegex>>> = LazyLock::new(Default::default);

/// (pattern, ignorecase, multiline).
type CacheKey = (String, bool, bool);

/// The cache is emptied when it reaches this many patterns (Python's `re`: 512).
const CACHE_MAX: usize = 1024;

impl PyRegex {
    pub fn new(pattern: &str, flags: Flags) -> Result<PyRegex, String> {
        let key = (pattern.to_owned(), flags.ignorecase, flags.multiline);
        if let Some(hit) = CACHE.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(hit);
        }
        let (translated, groups) = translate(pattern, flags.ignorecase)?;
        let regex = RegexBuilder::new(&translated)
            .case_insensitive(flags.ignorecase)
            .multi_line(flags.multiline)
            .build()
            .map_err(|e| format!("pattern {pattern:?} is not supported: {e}"))?;
        let compiled = PyRegex {
            regex: Arc::new(regex),
            groups,
        };
        if let Ok(mut cache) = CACHE.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, compiled.clone());
        }
        Ok(compiled)
    }

    /// `re.search(pattern, text)` found something.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// `len(re.findall(pattern, text))`.
    ///
    /// Matches are found left to right without overlap; after an empty match the
    /// search moves on one character (Python would first try a non-empty match at the
    /// same place, which only patterns with an empty first alternative can have).
    pub fn count(&self, text: &str) -> usize {
        let mut count = 0;
        let mut pos = 0;
        while pos <= text.len() {
            let Some(m) = self.regex.find_at(text, pos) else {
                break;
            };
            count += 1;
            pos = if m.is_empty() {
                m.end() + next_char_len(text, m.end())
            } else {
                m.end()
            };
        }
        count
    }

    /// `len(re.split(pattern, text))`.
    pub fn split_len(&self, text: &str) -> usize {
        1 + self.count(text) * (1 + self.groups)
    }

    /// `re.search(r"\b" + pattern + r"\b", text)` with Python's word boundaries, for a
    /// pattern whose matches at a given start all have the same length (a literal).
    pub fn is_match_bounded(&self, text: &str) -> bool {
        let mut pos = 0;
        while pos <= text.len() {
            let Some(m) = self.regex.find_at(text, pos) else {
                return false;
            };
            if python_boundary(text, m.start()) && python_boundary(text, m.end()) {
                return true;
            }
            pos = m.start() + next_char_len(text, m.start());
        }
        false
    }
}

fn next_char_len(text: &str, at: usize) -> usize {
    text[at..].chars().next().map_or(1, char::len_utf8)
}

/// Python's `\b` at byte offset `at` of `text`.
pub(super) fn python_boundary(text: &str, at: usize) -> bool {
    let before = text[..at].chars().next_back().is_some_and(is_word);
    let after = text[at..].chars().next().is_some_and(is_word);
    before != after
}

/// Whether `s` has no character that Python's `re` treats specially.
pub(super) fn is_literal(s: &str) -> bool {
    !s.contains([
        '.', '^', '$', '*', '+', '?', '{', '}', '[', ']', '\\', '|', '(', ')',
    ])
}

fn push_literal(out: &mut String, c: char, ignorecase: bool) {
    if ignorecase && matches!(c, 'i' | 'I' | '\u{130}' | '\u{131}') {
        out.push_str(r"[iI\x{130}\x{131}]");
    } else {
        out.push_str(&format!(r"\x{{{:X}}}", c as u32));
    }
}

fn push_class_literal(out: &mut String, c: char, ignorecase: bool) {
    if ignorecase && matches!(c, 'i' | 'I' | '\u{130}' | '\u{131}') {
        out.push_str(r"iI\x{130}\x{131}");
    } else {
        out.push_str(&format!(r"\x{{{:X}}}", c as u32));
    }
}

/// One parsed escape sequence.
enum Escape {
    Char(char),
    /// A translated class or assertion, already in `regex` syntax.
    Raw(String),
}

fn unsupported(pattern: &str, what: &str) -> String {
    format!("pattern {pattern:?}: {what} is not supported")
}

/// Parses the escape after a backslash at `chars[*i]` (which is the backslash).
fn parse_escape(
    pattern: &str,
    chars: &[char],
    i: &mut usize,
    in_class: bool,
) -> Result<Escape, String> {
    *i += 1;
    let Some(&c) = chars.get(*i) else {
        return Err(format!("pattern {pattern:?} ends with a backslash"));
    };
    *i += 1;
    let hex = |i: &mut usize, n: usize| -> Result<char, String> {
        let digits: String = chars.get(*i..*i + n).unwrap_or(&[]).iter().collect();
        if digits.len() != n || !digits.chars().all(|d| d.is_ascii_hexdigit()) {
            return Err(format!("pattern {pattern:?}: incomplete escape \\{c}"));
        }
        *i += n;
        u32::from_str_radix(&digits, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| format!("pattern {pattern:?}: bad escape \\{c}{digits}"))
    };
    Ok(match c {
        'd' => Escape::Raw(r"\d".into()),
        'D' => Escape::Raw(r"\D".into()),
        'w' => Escape::Raw(if in_class {
            PY_WORD.into()
        } else {
            format!("[{PY_WORD}]")
        }),
        'W' => Escape::Raw(format!("[^{PY_WORD}]")),
        's' => Escape::Raw(if in_class {
            PY_SPACE.into()
        } else {
            format!("[{PY_SPACE}]")
        }),
        'S' => Escape::Raw(format!("[^{PY_SPACE}]")),
        'b' if in_class => Escape::Char('\x08'),
        'b' => Escape::Raw(r"\b".into()),
        'B' if !in_class => Escape::Raw(r"\B".into()),
        'A' if !in_class => Escape::Raw(r"\A".into()),
        'Z' if !in_class => Escape::Raw(r"\z".into()),
        'n' => Escape::Char('\n'),
        't' => Escape::Char('\t'),
        'r' => Escape::Char('\r'),
        'f' => Escape::Char('\x0c'),
        'v' => Escape::Char('\x0b'),
        'a' => Escape::Char('\x07'),
        'x' => Escape::Char(hex(i, 2)?),
        'u' => Escape::Char(hex(i, 4)?),
        'U' => Escape::Char(hex(i, 8)?),
        '0'..='7' => {
            // Octal: `\0`, `\0oo`, or three octal digits; otherwise a back-reference.
            let mut digits = String::from(c);
            while digits.len() < 3 && chars.get(*i).is_some_and(|d| ('0'..='7').contains(d)) {
                digits.push(chars[*i]);
                *i += 1;
            }
            if c != '0' && digits.len() < 3 {
                if in_class {
                    return Err(format!("pattern {pattern:?}: bad escape \\{digits}"));
                }
                return Err(unsupported(pattern, "a back-reference"));
            }
            let code = u32::from_str_radix(&digits, 8).unwrap_or(0);
            Escape::Char(
                char::from_u32(code)
                    .ok_or_else(|| format!("pattern {pattern:?}: bad octal escape \\{digits}"))?,
            )
        }
        '8' | '9' if !in_class => return Err(unsupported(pattern, "a back-reference")),
        c if c.is_ascii_alphanumeric() => {
            return Err(format!("pattern {pattern:?}: bad escape \\{c}"));
        }
        c => Escape::Char(c),
    })
}

/// Translates a Python pattern; returns the `regex` pattern and the group count.
fn translate(pattern: &str, ignorecase: bool) -> Result<(String, usize), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut groups = 0;
    // IGNORECASE state per open group (scoped flags can change it).
    let mut case_stack = vec![ignorecase];
    let mut i = 0;
    while i < chars.len() {
        let ic = *case_stack.last().unwrap_or(&ignorecase);
        let c = chars[i];
        match c {
            '\\' => match parse_escape(pattern, &chars, &mut i, false)? {
                Escape::Char(c) => push_literal(&mut out, c, ic),
                Escape::Raw(raw) => out.push_str(&raw),
            },
            '[' => {
                i = translate_class(pattern, &chars, i, ic, &mut out)?;
            }
            '(' => {
                i += 1;
                if chars.get(i) != Some(&'?') {
                    groups += 1;
                    out.push('(');
                    case_stack.push(ic);
                    continue;
                }
                i += 1;
                match chars.get(i) {
                    Some(':') => {
                        out.push_str("(?:");
                        case_stack.push(ic);
                        i += 1;
                    }
                    Some('P') if chars.get(i + 1) == Some(&'<') => {
                        let close = chars[i..].iter().position(|&c| c == '>').ok_or_else(|| {
                            format!("pattern {pattern:?}: unterminated group name")
                        })?;
                        let name: String = chars[i + 2..i + close].iter().collect();
                        groups += 1;
                        out.push_str(&format!("(?P<{name}>"));
                        case_stack.push(ic);
                        i += close + 1;
                    }
                    Some('#') => {
                        let close = chars[i..]
                            .iter()
                            .position(|&c| c == ')')
                            .ok_or_else(|| format!("pattern {pattern:?}: unterminated comment"))?;
                        i += close + 1;
                    }
                    Some('P') => return Err(unsupported(pattern, "a named back-reference")),
                    Some('=' | '!') => return Err(unsupported(pattern, "look-ahead")),
                    Some('<') => return Err(unsupported(pattern, "look-behind")),
                    Some('>') => return Err(unsupported(pattern, "an atomic group")),
                    Some('(') => return Err(unsupported(pattern, "a conditional group")),
                    _ => {
                        // Inline flags: (?flags) at the start, or (?on-off:...) scoped.
                        let end = chars[i..]
                            .iter()
                            .position(|&c| c == ')' || c == ':')
                            .ok_or_else(|| format!("pattern {pattern:?}: unterminated flags"))?;
                        let spec: String = chars[i..i + end].iter().collect();
                        let (on, off) = spec.split_once('-').unwrap_or((&spec, ""));
                        if let Some(bad) = spec.chars().find(|f| !"imsu-".contains(*f)) {
                            return Err(unsupported(pattern, &format!("the inline flag {bad:?}")));
                        }
                        let strip_u = |s: &str| s.replace('u', "");
                        let (on, off) = (strip_u(on), strip_u(off));
                        let scoped = chars[i + end] == ':';
                        let mut flag_ic = ic;
                        if on.contains('i') {
                            flag_ic = true;
                        }
                        if off.contains('i') {
                            flag_ic = false;
                        }
                        let spec = if off.is_empty() {
                            on
                        } else {
                            format!("{on}-{off}")
                        };
                        if scoped {
                            out.push_str(&format!("(?{spec}:"));
                            case_stack.push(flag_ic);
                        } else {
                            if !spec.is_empty() {
                                out.push_str(&format!("(?{spec})"));
                            }
                            if let Some(top) = case_stack.last_mut() {
                                *top = flag_ic;
                            }
                        }
                        i += end + 1;
                    }
                }
                continue;
            }
            ')' => {
                if case_stack.len() > 1 {
                    case_stack.pop();
                }
                out.push(')');
                i += 1;
            }
            '{' => {
                let (next, quantifier) = translate_brace(&chars, i, &mut out, ic);
                if quantifier && chars.get(next) == Some(&'+') {
                    return Err(unsupported(pattern, "a possessive quantifier"));
                }
                i = next;
            }
            '*' | '+' | '?' => {
                out.push(c);
                i += 1;
                match chars.get(i) {
                    Some('?') => {
                        out.push('?');
                        i += 1;
                    }
                    Some('+') => return Err(unsupported(pattern, "a possessive quantifier")),
                    _ => {}
                }
            }
            '$' => {
                out.push('$');
                i += 1;
            }
            '.' | '^' | '|' => {
                out.push(c);
                i += 1;
            }
            c => {
                push_literal(&mut out, c, ic);
                i += 1;
            }
        }
    }
    Ok((out, groups))
}

/// A `{` at `chars[start]`: a quantifier `{m}`, `{m,}`, `{,n}`, `{m,n}` (Python also
/// accepts `{,}`), or else a literal brace. Returns the index after it and whether it
/// was a quantifier.
fn translate_brace(
    chars: &[char],
    start: usize,
    out: &mut String,
    ignorecase: bool,
) -> (usize, bool) {
    let digits = |from: usize| {
        chars[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut i = start + 1;
    if chars.get(i) != Some(&'}') {
        let lo: String = chars[i..i + digits(i)].iter().collect();
        i += lo.len();
        let hi = if chars.get(i) == Some(&',') {
            i += 1;
            let hi: String = chars[i..i + digits(i)].iter().collect();
            i += hi.len();
            Some(hi)
        } else {
            None
        };
        if chars.get(i) == Some(&'}') {
            let lo = if lo.is_empty() { "0".to_owned() } else { lo };
            match hi {
                None => out.push_str(&format!("{{{lo}}}")),
                Some(hi) => out.push_str(&format!("{{{lo},{hi}}}")),
            }
            i += 1;
            if chars.get(i) == Some(&'?') {
                out.push('?');
                i += 1;
            }
            return (i, true);
        }
    }
    push_literal(out, '{', ignorecase);
    (start + 1, false)
}

/// A character class starting at `chars[start] == '['`; returns the index after it.
fn translate_class(
    pattern: &str,
    chars: &[char],
    start: usize,
    ignorecase: bool,
    out: &mut String,
) -> Result<usize, String> {
    let mut i = start + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let first = i;
    // Items are literal characters (possibly range ends) or translated classes.
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(format!("pattern {pattern:?}: unterminated character set"));
        };
        if c == ']' && i > first {
            out.push(']');
            return Ok(i + 1);
        }
        let item = if c == '\\' {
            parse_escape(pattern, chars, &mut i, true)?
        } else {
            i += 1;
            Escape::Char(c)
        };
        match item {
            Escape::Raw(raw) => out.push_str(&raw),
            Escape::Char(lo) => {
                // A range `lo-hi`, unless the `-` is the last thing before `]`.
                if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
                    i += 1;
                    let hi = if chars[i] == '\\' {
                        match parse_escape(pattern, chars, &mut i, true)? {
                            Escape::Char(hi) => hi,
                            Escape::Raw(_) => {
                                return Err(format!("pattern {pattern:?}: bad character range"));
                            }
                        }
                    } else {
                        i += 1;
                        chars[i - 1]
                    };
                    if hi < lo {
                        return Err(format!("pattern {pattern:?}: bad character range"));
                    }
                    out.push_str(&format!(r"\x{{{:X}}}-\x{{{:X}}}", lo as u32, hi as u32));
                    if ignorecase
                        && (lo..=hi).any(|c| matches!(c, 'i' | 'I' | '\u{130}' | '\u{131}'))
                    {
                        out.push_str(r"iI\x{130}\x{131}");
                    }
                } else {
                    push_class_literal(out, lo, ignorecase);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(pattern: &str) -> PyRegex {
        PyRegex::new(
            pattern,
            Flags {
                ignorecase: true,
                multiline: false,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn python_syntax_is_translated() {
        assert!(re("colou?r").is_match("COLOR"));
        assert!(re(r"\w+").is_match("é"));
        assert!(!re(r"^\w$").is_match("\u{301}"));
        assert!(re(r"a\sb").is_match("a\x1cb"));
        assert!(re("x{,2}y").is_match("xxy"));
        assert!(re("a{b").is_match("A{B"));
        assert!(re("[[a]").is_match("["));
        assert!(re("[]a]").is_match("]"));
        assert!(re("(?#comment)cat").is_match("cat"));
        assert!(re("like").is_match("lİke") && re("like").is_match("lıke"));
        assert!(re(r"\x41\u00e9\101").is_match("aéa"));
    }

    #[test]
    fn unsupported_constructs_are_errors() {
        for p in [
            r"(?=a)", r"(?<=a)b", r"(a)\1", r"\p{L}", "c++", "a{2}+", "(?x)a", "[a",
        ] {
            assert!(PyRegex::new(p, Flags::default()).is_err(), "{p}");
        }
    }

    #[test]
    fn findall_and_split_counts() {
        assert_eq!(re("th(e|is)").count("The thesis: this, the end"), 4);
        assert_eq!(re("x*").count("abxd"), 5); // '', '', 'x', '', ''  as Python 3.7+
        let sections =
            PyRegex::new(r"\s?(Day)\s?\d+\s?", Flags::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sections.split_len("Day 1 a Day 2 b"), 5);
    }

    #[test]
    fn bounded_search_uses_python_word_characters() {
        let word = re("cafe");
        assert!(word.is_match_bounded("un cafe\u{301}")); // U+0301 is not \w in Python
        assert!(!word.is_match_bounded("cafes"));
        assert!(re("aa").is_match_bounded("aaa aa"));
    }
}
