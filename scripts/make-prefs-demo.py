#!/usr/bin/env python3
"""Build rmtk's demo preference data from LLaMA-Factory's `dpo_en_demo.json`.

    python3 scripts/make-prefs-demo.py [SOURCE] [--out data/]

SOURCE defaults to ../shared/data/dpo_en_demo.json (300 ShareGPT-style pairs; see
data/README.md for its provenance and license). Writes, in TRL's conversational
layout with an explicit prompt:

    data/prefs-en-demo.parquet       240 pairs (train)
    data/prefs-en-demo-test.parquet   60 pairs (held out, 20 %)

Columns: `id` (index in the source file), `prompt` (list of {role, content}: the
conversation up to the last user turn, system message included), `chosen` and
`rejected` (each one assistant message). The split is a fixed permutation
(numpy-free: Python's random.Random(20250821)), rows kept in source order.
Needs pyarrow (`pip install pyarrow`; the TRL venv of scripts/bench-rm.sh has it).
"""

import argparse
import hashlib
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
SEED = 20250821
HELD_OUT = 0.2


def convert(item, index):
    prompt = [{"role": ROLES[m["from"]], "content": m["value"]} for m in item["conversations"]]
    if prompt[-1]["role"] != "user":
        raise ValueError(f"pair {index}: the conversation does not end with a user turn")
    turn = lambda m: [{"role": ROLES[m["from"]], "content": m["value"]}]  # noqa: E731
    return {"id": index, "prompt": prompt, "chosen": turn(item["chosen"]), "rejected": turn(item["rejected"])}


def write(rows, path):
    msg = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    schema = pa.schema([("id", pa.int64()), ("prompt", msg), ("chosen", msg), ("rejected", msg)])
    table = pa.Table.from_pylist(rows, schema=schema)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)


def main():
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # The shared data folder sits beside the checkout (../shared), or beside the folder
    # that holds worktrees (../../shared).
    candidates = [p / "shared" / "data" / "dpo_en_demo.json" for p in (here.parent, here.parent.parent)]
    default = next((str(c) for c in candidates if c.is_file()), str(candidates[0]))
    ap.add_argument("source", nargs="?", default=default)
    ap.add_argument("--out", default=str(here / "data"))
    args = ap.parse_args()
    raw = Path(args.source).read_bytes()
    items = json.loads(raw)
    rows = [convert(item, i) for i, item in enumerate(items)]
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    held = set(order[: round(len(rows) * HELD_OUT)])
    train = [r for r in rows if r["id"] not in held]
    test = [r for r in rows if r["id"] in held]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write(train, out / "prefs-en-demo.parquet")
    write(test, out / "prefs-en-demo-test.parquet")
    print(
        f"{args.source} (sha256 {hashlib.sha256(raw).hexdigest()[:16]}): "
        f"{len(train)} train pairs, {len(test)} held out -> {out}"
    )


if __name__ == "__main__":
    main()
