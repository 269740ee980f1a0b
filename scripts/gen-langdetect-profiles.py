#!/usr/bin/env python3
"""Convert langdetect 1.0.9's language profiles and normalisation tables into the
compact binary file embedded by `src/verify/rules/langdetect/mod.rs`.

Provenance / licence: the data comes from the Python package langdetect 1.0.9
(https://github.com/Mimino666/langdetect, Apache License 2.0, (c) 2014-2015
Michal Danilak), itself a port of Shuyo Nakatani's language-detection
(https://github.com/shuyo/language-detection, Apache License 2.0,
(c) 2010-2014 Cybozu Labs, Inc.).  The profiles and tables are redistributed
unchanged in content, only re-encoded.

Run with the reference interpreter (Python 3.11 with langdetect 1.0.9):

    /work/venvs/ref/bin/python scripts/gen-langdetect-profiles.py

Everything is read through langdetect itself (DetectorFactory.load_profile,
NGram's class attributes, str.isupper of this CPython), so the file reproduces
exactly what `langdetect.detect` uses at run time:

* the language order is the order `DetectorFactory.load_profile` assigns
  (os.listdir order of the profiles directory in this environment);
* per n-gram, the raw integer frequencies of every language that lists it, and
  each language's `n_words`, from which the Rust side recomputes
  `prob = 1.0 * freq / n_words[len - 1]` bit for bit;
* the Unicode "Uppercase" set as CPython 3.11's `str.isupper` sees it
  (Unicode 14.0), because `NGram.add_char` decides capital words with it;
* `NGram.LATIN1_EXCLUDED`, the Vietnamese tables and the final `NGram.CJK_MAP`.

File format (all integers are unsigned LEB128 varints unless noted):

    b"LDPROF1\\n"
    b"LANG" n_langs, n_langs x (name_len, name utf-8, n_words[0], n_words[1], n_words[2])
    b"GRAM" n_grams, n_grams x (key_len, key utf-8 (1..3 chars), n_entries,
                                n_entries x (lang index as 1 byte, freq))
    b"UPPR" n_ranges, n_ranges x (gap from previous range end, length)
    b"LAT1" n, n x code point                     (NGram.LATIN1_EXCLUDED)
    b"VIET" n_bases, bases, n_marks, marks, n_marks x n_bases code points
    b"CJKM" n, n x (code point delta, representative code point)
    b"END\\n"
"""

import json
import os
import sys

import langdetect
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.utils.ngram import NGram

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "src", "verify", "rules", "langdetect", "profiles.bin",
)


def varint(n):
    assert n >= 0
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def varint(self):
        shift = 0
        n = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    def take(self, n):
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def tag(self, expected):
        got = self.take(len(expected))
        assert got == expected, (got, expected)


def upper_ranges():
    ranges = []
    start = None
    for cp in range(0x110000 + 1):
        up = cp < 0x110000 and chr(cp).isupper()
        if up and start is None:
            start = cp
        elif not up and start is not None:
            ranges.append((start, cp - 1))
            start = None
    return ranges


def main():
    assert langdetect.__file__.startswith(os.path.dirname(PROFILES_DIRECTORY))
    assert sys.version_info[:2] == (3, 11), "the reference checker runs Python 3.11"

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    langs = factory.get_lang_list()
    prob_map = factory.word_lang_prob_map

    profiles = []
    for lang in langs:
        with open(os.path.join(PROFILES_DIRECTORY, lang), encoding="utf-8") as f:
            data = json.load(f)
        assert data["name"] == lang
        assert len(data["n_words"]) == 3
        profiles.append(data)

    # Only n-grams of 1..3 characters can ever be looked up (Detector._extract_ngrams).
    bad = [w for w in prob_map if not 1 <= len(w) <= 3]
    assert not bad, bad

    out = bytearray(b"LDPROF1\n")
    out += b"LANG" + varint(len(langs))
    for prof in profiles:
        name = prof["name"].encode()
        out += varint(len(name)) + name
        for n in prof["n_words"]:
            out += varint(n)

    words = sorted(prob_map)  # any order works; sorted keeps the file reproducible
    out += b"GRAM" + varint(len(words))
    for w in words:
        key = w.encode()
        entries = [(i, prof["freq"][w]) for i, prof in enumerate(profiles) if w in prof["freq"]]
        assert entries
        out += varint(len(key)) + key + varint(len(entries))
        for i, freq in entries:
            assert 0 <= i < 256 and isinstance(freq, int) and freq >= 0
            out += bytes([i]) + varint(freq)

    ranges = upper_ranges()
    assert [r for r in ranges if r[1] < 0x80] == [(0x41, 0x5A)]
    out += b"UPPR" + varint(len(ranges))
    prev_end = -1
    for start, end in ranges:
        out += varint(start - prev_end - 1) + varint(end - start + 1)
        prev_end = end

    out += b"LAT1" + varint(len(NGram.LATIN1_EXCLUDED))
    for ch in NGram.LATIN1_EXCLUDED:
        out += varint(ord(ch))

    bases, marks = NGram.TO_NORMALIZE_VI_CHARS, NGram.DMARK_CLASS
    assert len(NGram.NORMALIZED_VI_CHARS) == len(marks)
    out += b"VIET" + varint(len(bases))
    out += b"".join(varint(ord(c)) for c in bases)
    out += varint(len(marks)) + b"".join(varint(ord(c)) for c in marks)
    for row in NGram.NORMALIZED_VI_CHARS:
        assert len(row) == len(bases)
        out += b"".join(varint(ord(c)) for c in row)

    cjk = sorted((ord(k), ord(v)) for k, v in NGram.CJK_MAP.items())
    out += b"CJKM" + varint(len(cjk))
    prev = 0
    for cp, rep in cjk:
        out += varint(cp - prev) + varint(rep)
        prev = cp
    out += b"END\n"

    verify(bytes(out), langs, prob_map, ranges, cjk)
    with open(OUT, "wb") as f:
        f.write(out)
    print(f"wrote {os.path.normpath(OUT)}: {len(out)} bytes, {len(langs)} languages, "
          f"{len(words)} n-grams, {len(ranges)} uppercase ranges, {len(cjk)} CJK entries")
    print("language order:", " ".join(langs))


def verify(data, langs, prob_map, ranges, cjk):
    """Decode the file again and check it rebuilds langdetect's tables exactly."""
    r = Reader(data)
    r.tag(b"LDPROF1\n")
    r.tag(b"LANG")
    names, n_words = [], []
    for _ in range(r.varint()):
        names.append(r.take(r.varint()).decode())
        n_words.append([r.varint() for _ in range(3)])
    assert names == langs
    r.tag(b"GRAM")
    rebuilt = {}
    for _ in range(r.varint()):
        w = r.take(r.varint()).decode()
        vec = [0.0] * len(names)
        for _ in range(r.varint()):
            i = r.take(1)[0]
            vec[i] = 1.0 * r.varint() / n_words[i][len(w) - 1]
        rebuilt[w] = vec
    assert rebuilt.keys() == prob_map.keys()
    for w, vec in prob_map.items():
        # Compare bit patterns (not ==) so even a signed zero would be caught.
        assert [v.hex() for v in rebuilt[w]] == [v.hex() for v in vec], w
    r.tag(b"UPPR")
    got, prev_end = [], -1
    for _ in range(r.varint()):
        start = prev_end + 1 + r.varint()
        end = start + r.varint() - 1
        got.append((start, end))
        prev_end = end
    assert got == ranges
    r.tag(b"LAT1")
    assert "".join(chr(r.varint()) for _ in range(r.varint())) == NGram.LATIN1_EXCLUDED
    r.tag(b"VIET")
    bases = "".join(chr(r.varint()) for _ in range(r.varint()))
    marks = "".join(chr(r.varint()) for _ in range(r.varint()))
    rows = ["".join(chr(r.varint()) for _ in bases) for _ in marks]
    assert (bases, marks, rows) == (
        NGram.TO_NORMALIZE_VI_CHARS, NGram.DMARK_CLASS, NGram.NORMALIZED_VI_CHARS)
    r.tag(b"CJKM")
    got, prev = [], 0
    for _ in range(r.varint()):
        prev += r.varint()
        got.append((prev, r.varint()))
    assert got == cjk
    r.tag(b"END\n")
    assert r.pos == len(data)


if __name__ == "__main__":
    main()
