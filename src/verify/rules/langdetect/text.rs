//! Text preparation and n-gram extraction: `Detector.append`, `Detector.cleaning_text`,
//! `NGram.normalize`, `NGram.normalize_vi`, `NGram.add_char` and
//! `Detector._extract_ngrams` of langdetect 1.0.9.
//!
//! Python strings are sequences of code points, so everything works on `char`s;
//! positions and lengths (e.g. `max_text_length`) count code points.

use super::model::{CJK_FIRST, CJK_LAST, Model, char_code};

/// `pattern.sub(' ', text)` for a pattern that never matches the empty string:
/// scanning left to right, each leftmost match (`match_len` of the text from that
/// position) becomes one space and scanning resumes after it.
fn substitute_space(input: &[char], out: &mut Vec<char>, match_len: fn(&[char]) -> Option<usize>) {
    out.clear();
    let mut p = 0;
    while p < input.len() {
        match match_len(&input[p..]) {
            Some(len) => {
                out.push(' ');
                p += len;
            }
            None => {
                out.push(input[p]);
                p += 1;
            }
        }
    }
}

/// `Detector.URL_RE.sub(' ', text)` with
/// `URL_RE = r'https?://[-_.?&~;+=/#0-9A-Za-z]{1,2076}'`.
pub(super) fn remove_urls(input: &[char], out: &mut Vec<char>) {
    substitute_space(input, out, url_match_len);
}

fn is_url_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '_' | '.' | '?' | '&' | '~' | ';' | '+' | '=' | '/' | '#'
        )
}

/// Length of the `URL_RE` match anchored at the start of `s`. When an `s` follows
/// `http`, giving it back (`s?` matching nothing) cannot help, since `:` would have
/// to be where the `s` is, so taking it greedily is exact.
fn url_match_len(s: &[char]) -> Option<usize> {
    if !s.starts_with(&['h', 't', 't', 'p']) {
        return None;
    }
    let mut q = 4;
    if s.get(q) == Some(&'s') {
        q += 1;
    }
    if !s[q..].starts_with(&[':', '/', '/']) {
        return None;
    }
    q += 3;
    let run = s[q..]
        .iter()
        .take(2076)
        .take_while(|&&c| is_url_char(c))
        .count();
    (run >= 1).then_some(q + run)
}

/// `Detector.MAIL_RE.sub(' ', text)` with
/// `MAIL_RE = r'[-_.0-9A-Za-z]{1,64}@[-_0-9A-Za-z]{1,255}[-_.0-9A-Za-z]{1,255}'`.
pub(super) fn remove_mails(input: &[char], out: &mut Vec<char>) {
    substitute_space(input, out, mail_match_len);
}

fn is_mail_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn is_domain_head_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
}

/// Length of the `MAIL_RE` match anchored at the start of `s`, following the
/// backtracking order of Python's `re` (greedy quantifiers give back one
/// character at a time):
/// * the local part `{1,64}` cannot contain `@`, so only its longest run can be
///   followed by `@` (shorter tries are followed by a class character); a run
///   longer than 64 characters fails at this start position;
/// * the first domain part is tried longest first, and the match succeeds as soon
///   as the last part (a superset class) matches at least one character, taking
///   as many as it can (up to 255).
fn mail_match_len(s: &[char]) -> Option<usize> {
    let local = s.iter().take(65).take_while(|&&c| is_mail_char(c)).count();
    if local == 0 || local > 64 || s.get(local) != Some(&'@') {
        return None;
    }
    let head_start = local + 1;
    let head_run = s[head_start..]
        .iter()
        .take(255)
        .take_while(|&&c| is_domain_head_char(c))
        .count();
    for head in (1..=head_run).rev() {
        let tail_start = head_start + head;
        let tail = s[tail_start..]
            .iter()
            .take(255)
            .take_while(|&&c| is_mail_char(c))
            .count();
        if tail >= 1 {
            return Some(tail_start + tail);
        }
    }
    None
}

/// `NGram.normalize_vi`: `re.sub('([TO_NORMALIZE_VI_CHARS])([DMARK_CLASS])', ...)`
/// replacing a base vowel followed by a combining mark with the precomposed letter.
pub(super) fn normalize_vi(model: &Model, input: &[char], out: &mut Vec<char>) {
    out.clear();
    let mut p = 0;
    while p < input.len() {
        let base = model.vi_bases.iter().position(|&b| b == input[p]);
        let mark = input
            .get(p + 1)
            .and_then(|m| model.vi_marks.iter().position(|x| x == m));
        if let (Some(base), Some(mark)) = (base, mark) {
            out.push(model.vi_table[mark][base]);
            p += 2;
        } else {
            out.push(input[p]);
            p += 1;
        }
    }
}

/// Whether `normalize_vi` can change `text` (it contains one of the combining marks).
pub(super) fn has_vi_mark(model: &Model, text: &[char]) -> bool {
    let (lo, hi) = model.vi_mark_bounds;
    text.iter()
        .any(|&c| (lo..=hi).contains(&c) && model.vi_marks.contains(&c))
}

/// `Detector.append` after the substitutions: keep the first `max_len` characters,
/// dropping a space that follows a space (only U+0020 counts). `pre` starts as the
/// int 0 in Python, so the first character is always kept.
pub(super) fn append(input: &[char], max_len: usize, out: &mut Vec<char>) {
    out.clear();
    let mut pre = None;
    for &ch in input.iter().take(max_len) {
        if ch != ' ' || pre != Some(' ') {
            out.push(ch);
        }
        pre = Some(ch);
    }
}

/// `Detector.cleaning_text`: if fewer than half as many characters fall in
/// `'A'..='z'` as fall at or above U+0300, drop every `'A'..='z'` character.
///
/// Python's second test, `unicode_block(ch) != 'Latin Extended Additional'`,
/// compares the block *number* returned by `unicode_block` with a string, so it is
/// always true: every character >= U+0300 (Vietnamese letters of U+1Exx included)
/// counts as non-Latin. Reproduced as such.
pub(super) fn clean_latin(text: &mut Vec<char>) {
    let mut latin = 0usize;
    let mut non_latin = 0usize;
    for &ch in text.iter() {
        if ('A'..='z').contains(&ch) {
            latin += 1;
        } else if ch >= '\u{0300}' {
            non_latin += 1;
        }
    }
    if latin * 2 < non_latin {
        text.retain(|&ch| !('A'..='z').contains(&ch));
    }
}

/// `NGram.normalize(ch)`: per Unicode block (as delimited by langdetect's own
/// `unicode_block` table).
#[inline]
pub(super) fn normalize_char(model: &Model, ch: char) -> char {
    match u32::from(ch) {
        // Basic Latin: anything but ASCII letters becomes a space.
        0x00..=0x7F => {
            if ch.is_ascii_alphabetic() {
                ch
            } else {
                ' '
            }
        }
        // Latin-1 Supplement: NBSP, «, ° and » become spaces.
        0x80..=0xFF => {
            if model.latin1_excluded.contains(&ch) {
                ' '
            } else {
                ch
            }
        }
        // Latin Extended-B: Romanian comma-below letters -> cedilla forms.
        0x0180..=0x024F => match ch {
            '\u{0219}' => '\u{015F}',
            '\u{021B}' => '\u{0163}',
            _ => ch,
        },
        // Arabic: Farsi yeh -> Arabic yeh.
        0x0600..=0x06FF => {
            if ch == '\u{06CC}' {
                '\u{064A}'
            } else {
                ch
            }
        }
        // Latin Extended Additional: U+1EA0 and above (Vietnamese) collapse to U+1EC3.
        0x1E00..=0x1EFF => {
            if ch >= '\u{1EA0}' {
                '\u{1EC3}'
            } else {
                ch
            }
        }
        // General Punctuation.
        0x2000..=0x206F => ' ',
        // Hiragana, Katakana, Bopomofo (+ Extended), Hangul Syllables: one class each.
        0x3040..=0x309F => '\u{3042}',
        0x30A0..=0x30FF => '\u{30A2}',
        0x3100..=0x312F | 0x31A0..=0x31BF => '\u{3105}',
        0xAC00..=0xD7AF => '\u{AC00}',
        // CJK Unified Ideographs: the class representative of NGram.CJK_MAP.
        CJK_FIRST..=CJK_LAST => model.cjk_representative(ch),
        _ => ch,
    }
}

/// `Detector._extract_ngrams`: feeds each character to an `NGram` window and
/// collects, in order and with repetitions, the rows of every 1-, 2- and 3-gram
/// present in the profiles (skipping the lone space and capitalised words).
pub(super) fn extract_ngrams(model: &Model, text: &[char], out: &mut Vec<u32>) {
    out.clear();
    // NGram state: `grams` (1..=3 characters, starts as " ") and `capitalword`.
    // `grams` is kept packed as its `gram_key` (21 bits per character, oldest
    // first), so the key of its last `n` characters is its low `21 * n` bits;
    // `last` is `grams[-1]`.
    let space_key = char_code(' ');
    let mut grams = space_key;
    let mut len = 1usize;
    let mut last = ' ';
    let mut last_upper = false;
    let mut capital = false;
    for &raw in text {
        // NGram.add_char
        let ch = normalize_char(model, raw);
        if last == ' ' {
            grams = space_key;
            len = 1;
            capital = false;
            if ch == ' ' {
                // add_char returns early; the only candidate left is " ", skipped.
                continue;
            }
        } else if len >= 3 {
            len = 2; // grams = grams[1:], done by the 63-bit mask below
        }
        grams = ((grams << 21) | char_code(ch)) & KEY_MASK[3];
        len += 1;
        let upper = model.is_upper(ch);
        if upper {
            if last_upper {
                capital = true;
            }
        } else {
            capital = false;
        }
        last = ch;
        last_upper = upper;

        // Detector._extract_ngrams body.
        if capital {
            continue;
        }
        // n = 1: the lone character, unless it is the space.
        if ch != ' '
            && let Some(row) = model.lookup_key(grams & KEY_MASK[1])
        {
            out.push(row);
        }
        // n = 2..=len(grams).
        for &mask in &KEY_MASK[2..=len] {
            if let Some(row) = model.lookup_key(grams & mask) {
                out.push(row);
            }
        }
    }
}

/// `KEY_MASK[n]` keeps the packed key of the last `n` characters.
const KEY_MASK: [u64; 4] = [0, (1 << 21) - 1, (1 << 42) - 1, (1 << 63) - 1];
