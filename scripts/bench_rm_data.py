#!/usr/bin/env python3
"""Benchmark data for scripts/bench-rm.sh: pre-tokenized pairs of exactly LENGTH tokens.

    python scripts/bench_rm_data.py MODEL LENGTH PAIRS OUT.parquet

Takes the pairs of data/prefs-en-demo.parquet whose both sides are at least LENGTH
tokens, builds them as rmtk builds them for MODEL (decoders: the chat template;
encoders: the (prompt, response) pair), cuts them to LENGTH, and writes PAIRS of them
(cycling if needed) as TRL's processed layout `chosen_ids`, `rejected_ids`, which both
rmtk and TRL's RewardTrainer take as they are. Every batch then has the same shape and
no padding, so tokens/s measure the model and the trainer, nothing else.
"""

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from transformers import AutoTokenizer

REPO = Path(__file__).resolve().parent.parent


def plain(msgs):
    return msgs[0]["content"] if len(msgs) == 1 else "\n".join(f"{m['role']}: {m['content']}" for m in msgs)


def main():
    model, length, pairs, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    config = json.loads((Path(model) / "config.json").read_text())
    encoder = config.get("model_type") == "bert"
    tok = AutoTokenizer.from_pretrained(model)
    rows = pq.read_table(REPO / "data" / "prefs-en-demo.parquet").to_pylist()
    kept = []
    for r in rows:
        sides = []
        for key in ("chosen", "rejected"):
            if encoder:
                ids = tok(plain(r["prompt"]), plain(r[key]), truncation="longest_first", max_length=length)["input_ids"]
            else:
                ids = tok.apply_chat_template(r["prompt"] + r[key], tokenize=True, return_dict=True)["input_ids"][:length]
            sides.append(ids)
        if all(len(s) == length for s in sides) and sides[0] != sides[1]:
            kept.append({"chosen_ids": sides[0], "rejected_ids": sides[1]})
    if not kept:
        sys.exit(f"no demo pair has {length} tokens on both sides")
    data = [kept[i % len(kept)] for i in range(pairs)]
    pq.write_table(pa.Table.from_pylist(data), out)
    print(f"{out}: {pairs} pairs of {length} tokens ({len(kept)} distinct) for {model}")


if __name__ == "__main__":
    main()
