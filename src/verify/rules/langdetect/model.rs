//! The language profiles and normalisation tables, decoded once from `profiles.bin`
//! (written by `scripts/gen-langdetect-profiles.py`; format documented there).

/// First and last code point of the CJK Unified Ideographs block, the only block
/// `NGram.normalize` maps through `CJK_MAP`.
pub(super) const CJK_FIRST: u32 = 0x4E00;
pub(super) const CJK_LAST: u32 = 0x9FFF;

/// Everything langdetect loads at import / first use, in lookup-friendly form.
pub(super) struct Model {
    /// `DetectorFactory.langlist`, in load order (indices of every vector below).
    pub(super) langs: Vec<String>,
    /// Open-addressing hash set of the n-gram keys (see [`gram_key`]; 0 = empty
    /// slot), linear probing. The slot index of a key doubles as its row number, so
    /// a lookup touches one array only.
    slots: Vec<u64>,
    /// `word_lang_prob_map`, by slot. Vectors listing at least [`DENSE_MIN_LANGS`]
    /// languages are stored densely: `dense[n_langs * i..n_langs * (i + 1)]` with
    /// `i = dense_index[slot]`. The others (most n-grams belong to one or two
    /// languages) are stored sparsely, CSR style: the languages
    /// `entry_lang[row_start[slot]..row_start[slot + 1]]` and their probabilities.
    /// Every probability is `1.0 * freq / n_words[len(word) - 1]`, computed exactly as
    /// Python does; absent languages have probability 0.0.
    row_start: Vec<u32>,
    entry_lang: Vec<u8>,
    entry_prob: Vec<f64>,
    dense_index: Vec<u32>,
    dense: Vec<f64>,
    /// Inclusive code point ranges where CPython 3.11's `str.isupper` is true.
    upper: Vec<(u32, u32)>,
    /// `NGram.LATIN1_EXCLUDED`.
    pub(super) latin1_excluded: Vec<char>,
    /// `NGram.TO_NORMALIZE_VI_CHARS`, `NGram.DMARK_CLASS`, `NGram.NORMALIZED_VI_CHARS`.
    pub(super) vi_bases: Vec<char>,
    pub(super) vi_marks: Vec<char>,
    pub(super) vi_table: Vec<Vec<char>>,
    /// Smallest and largest of `vi_marks`, for a quick pre-check.
    pub(super) vi_mark_bounds: (char, char),
    /// `NGram.CJK_MAP` densely over the CJK block (identity where unmapped).
    cjk: Vec<char>,
}

/// Rows with at least this many languages get a dense probability vector (about
/// 3 800 of the 87 598 n-grams, 1.7 MB): the frequent n-grams the sampling draws most.
const DENSE_MIN_LANGS: usize = 8;

/// `dense_index` value of a sparsely stored row.
const NOT_DENSE: u32 = u32::MAX;

/// One row of `word_lang_prob_map`.
pub(super) enum RowProbs<'a> {
    /// The probability of every language, in language order.
    Dense(&'a [f64]),
    /// The languages with a stored probability and those probabilities.
    Sparse { langs: &'a [u8], probs: &'a [f64] },
}

/// Packs an n-gram of 1..=3 characters into a unique integer: each character takes
/// 21 bits, oldest first, as [`char_code`], which is never 0, so different lengths
/// never collide and 0 can mark an empty slot.
#[inline]
pub(super) fn gram_key(chars: &[char]) -> u64 {
    chars
        .iter()
        .fold(0u64, |key, &c| (key << 21) | char_code(c))
}

/// The 21-bit code of one character inside a [`gram_key`]: code point + 1.
#[inline]
pub(super) fn char_code(c: char) -> u64 {
    u64::from(c) + 1
}

/// MurmurHash3's 64-bit finaliser: mixes every key bit into the low bits used as
/// the slot index (a bare multiplication would leave them depending on the last
/// character only).
#[inline]
fn slot_hash(key: u64) -> usize {
    let mut k = key;
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    (k ^ (k >> 33)) as usize
}

impl Model {
    /// Row of the probability table for an n-gram given by its [`gram_key`], if any
    /// profile lists it (`w in self.word_lang_prob_map`).
    #[inline]
    pub(super) fn lookup_key(&self, key: u64) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut slot = slot_hash(key) & mask;
        loop {
            match self.slots[slot] {
                k if k == key => return Some(slot as u32),
                0 => return None,
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// `word_lang_prob_map[w]` for a row [`Model::lookup_key`] returned.
    #[inline]
    pub(super) fn row(&self, row: u32) -> RowProbs<'_> {
        let row = row as usize;
        match self.dense_index[row] {
            NOT_DENSE => {
                let start = self.row_start[row] as usize;
                let end = self.row_start[row + 1] as usize;
                RowProbs::Sparse {
                    langs: &self.entry_lang[start..end],
                    probs: &self.entry_prob[start..end],
                }
            }
            i => {
                let n = self.langs.len();
                let start = i as usize * n;
                RowProbs::Dense(&self.dense[start..start + n])
            }
        }
    }

    /// `ch.isupper()` for a single character, as CPython 3.11 (Unicode 14.0) says.
    #[inline]
    pub(super) fn is_upper(&self, ch: char) -> bool {
        let cp = u32::from(ch);
        if cp < 0x80 {
            return ch.is_ascii_uppercase();
        }
        let i = self.upper.partition_point(|&(_, end)| end < cp);
        self.upper.get(i).is_some_and(|&(start, _)| start <= cp)
    }

    /// `NGram.CJK_MAP.get(ch, ch)` for a character of the CJK Unified Ideographs block.
    #[inline]
    pub(super) fn cjk_representative(&self, ch: char) -> char {
        let cp = u32::from(ch);
        debug_assert!((CJK_FIRST..=CJK_LAST).contains(&cp));
        self.cjk
            .get((cp.wrapping_sub(CJK_FIRST)) as usize)
            .copied()
            .unwrap_or(ch)
    }

    /// Decodes the embedded data file. Errors mean the file does not match this
    /// code (a build problem, not a user-input problem).
    pub(super) fn parse(data: &[u8]) -> Result<Model, String> {
        let mut r = Reader { data, pos: 0 };
        r.tag(b"LDPROF1\n")?;

        r.tag(b"LANG")?;
        let n_langs = r.count()?;
        if n_langs == 0 || n_langs > 256 {
            return Err(format!("unsupported language count {n_langs}"));
        }
        let mut langs = Vec::with_capacity(n_langs);
        let mut n_words = Vec::with_capacity(n_langs);
        for _ in 0..n_langs {
            let len = r.count()?;
            langs.push(r.utf8(len)?.to_owned());
            n_words.push([r.varint()?, r.varint()?, r.varint()?]);
        }

        r.tag(b"GRAM")?;
        let n_grams = r.count()?;
        // Power-of-two slot count with a load factor of at most 3/4 (0.67 for the
        // 87 598 n-grams of langdetect 1.0.9: 131 072 slots, 1 MiB of keys).
        let n_slots = (n_grams * 4 / 3 + 1).next_power_of_two();
        let mut slots = vec![0u64; n_slots];
        // Which n-gram (in file order) sits in each slot, and every n-gram's
        // (language, probability) entries, flattened in file order.
        let mut gram_of_slot = vec![u32::MAX; n_slots];
        let mut gram_entries = Vec::with_capacity(n_grams + 1);
        let mut entries: Vec<(u8, f64)> = Vec::new();
        let mut chars = Vec::with_capacity(3);
        for gram in 0..n_grams {
            let len = r.count()?;
            chars.clear();
            chars.extend(r.utf8(len)?.chars());
            if !(1..=3).contains(&chars.len()) {
                return Err(format!("n-gram {chars:?} is not 1..=3 characters"));
            }
            let key = gram_key(&chars);
            let mut slot = slot_hash(key) & (n_slots - 1);
            while slots[slot] != 0 {
                if slots[slot] == key {
                    return Err(format!("duplicate n-gram {chars:?}"));
                }
                slot = (slot + 1) & (n_slots - 1);
            }
            slots[slot] = key;
            gram_of_slot[slot] = gram as u32;
            gram_entries.push(entries.len());
            for _ in 0..r.count()? {
                let lang = r.byte()?;
                let freq = r.varint()?;
                let total = n_words
                    .get(usize::from(lang))
                    .ok_or_else(|| format!("language index {lang} out of range"))?[chars.len() - 1];
                // DetectorFactory.add_profile: `1.0 * freq / n_words[length - 1]`;
                // both integers are < 2**53, so the conversions are exact.
                entries.push((lang, freq as f64 / total as f64));
            }
        }
        gram_entries.push(entries.len());

        let mut row_start = Vec::with_capacity(n_slots + 1);
        let mut entry_lang = Vec::new();
        let mut entry_prob = Vec::new();
        let mut dense_index = Vec::with_capacity(n_slots);
        let mut dense = Vec::new();
        for &gram in &gram_of_slot {
            row_start.push(entry_lang.len() as u32);
            let row = match gram {
                u32::MAX => &entries[..0],
                g => &entries[gram_entries[g as usize]..gram_entries[g as usize + 1]],
            };
            if row.len() >= DENSE_MIN_LANGS {
                dense_index.push((dense.len() / n_langs) as u32);
                let base = dense.len();
                dense.resize(base + n_langs, 0.0);
                for &(lang, p) in row {
                    dense[base + usize::from(lang)] = p;
                }
            } else {
                dense_index.push(NOT_DENSE);
                entry_lang.extend(row.iter().map(|&(lang, _)| lang));
                entry_prob.extend(row.iter().map(|&(_, p)| p));
            }
        }
        row_start.push(entry_lang.len() as u32);

        r.tag(b"UPPR")?;
        let n_ranges = r.count()?;
        let mut upper = Vec::with_capacity(n_ranges);
        let mut next_start = 0u64;
        for _ in 0..n_ranges {
            let start = next_start + r.varint()?;
            let end = start + r.varint()?.checked_sub(1).ok_or("empty uppercase range")?;
            let to_u32 = |v: u64| u32::try_from(v).map_err(|e| e.to_string());
            upper.push((to_u32(start)?, to_u32(end)?));
            next_start = end + 1;
        }

        r.tag(b"LAT1")?;
        let latin1_excluded = r.chars()?;

        r.tag(b"VIET")?;
        let vi_bases = r.chars()?;
        let vi_marks = r.chars()?;
        let mut vi_table = Vec::with_capacity(vi_marks.len());
        for _ in 0..vi_marks.len() {
            let row = (0..vi_bases.len())
                .map(|_| r.char())
                .collect::<Result<Vec<_>, _>>()?;
            vi_table.push(row);
        }

        let vi_mark_bounds = match (vi_marks.iter().min(), vi_marks.iter().max()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => return Err("no Vietnamese combining marks".into()),
        };

        r.tag(b"CJKM")?;
        let mut cjk: Vec<char> = (CJK_FIRST..=CJK_LAST)
            .map(|cp| char::from_u32(cp).unwrap_or(' '))
            .collect();
        let mut cp = 0u64;
        for _ in 0..r.count()? {
            cp += r.varint()?;
            let rep = r.char()?;
            let slot = u32::try_from(cp)
                .ok()
                .and_then(|cp| cp.checked_sub(CJK_FIRST))
                .and_then(|i| cjk.get_mut(i as usize))
                .ok_or_else(|| format!("CJK map entry U+{cp:X} outside the CJK block"))?;
            *slot = rep;
        }

        r.tag(b"END\n")?;
        if r.pos != data.len() {
            return Err("trailing bytes after END".into());
        }
        Ok(Model {
            langs,
            slots,
            row_start,
            entry_lang,
            entry_prob,
            dense_index,
            dense,
            upper,
            latin1_excluded,
            vi_bases,
            vi_marks,
            vi_table,
            vi_mark_bounds,
            cjk,
        })
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| format!("truncated data at byte {}", self.pos))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn tag(&mut self, want: &[u8]) -> Result<(), String> {
        let got = self.take(want.len())?;
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "expected section {:?} at byte {}",
                String::from_utf8_lossy(want),
                self.pos - want.len()
            ))
        }
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(format!("varint too long at byte {}", self.pos))
    }

    fn count(&mut self) -> Result<usize, String> {
        usize::try_from(self.varint()?).map_err(|e| e.to_string())
    }

    fn utf8(&mut self, len: usize) -> Result<&'a str, String> {
        std::str::from_utf8(self.take(len)?).map_err(|e| e.to_string())
    }

    fn char(&mut self) -> Result<char, String> {
        let v = self.varint()?;
        u32::try_from(v)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| format!("invalid code point {v:#x}"))
    }

    fn chars(&mut self) -> Result<Vec<char>, String> {
        let n = self.count()?;
        (0..n).map(|_| self.char()).collect()
    }
}
