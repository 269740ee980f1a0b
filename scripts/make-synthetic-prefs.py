#!/usr/bin/env python3
"""A synthetic preference file of any size, for `rmtk data inspect`'s benchmark.

    .venv-data/bin/python scripts/make-synthetic-prefs.py --pairs 1000000 --out /tmp/prefs-1m.parquet

TRL's conversational layout with an explicit prompt: `id`, `prompt` (a user message; 1 in 20
rows also a system message and an earlier exchange), `chosen` and `rejected` (one assistant
message each). Texts are random English words (seeded): prompts 8-24 words, responses
10-40. Known defects, so the report has something to find: 1 % of rows repeat an earlier
pair, 0.1 % have identical responses, 0.1 % a null `chosen`. Written in row groups of
--row-group rows as it goes (memory: one group), uncompressed by default so the file is
about as large on disk as in memory (--compression zstd for a small one).
Needs pyarrow (scripts/requirements/data.txt; scripts/bench-data.sh makes that venv).
"""

import argparse
import os
import random

WORDS = (
    "the of and to in is it that was he for on are as with his they at be this from have or by "
    "one had not but what all were when we there can an your which their said if do will each "
    "about how up out them then she many some so these would other into has more her two like "
    "him see time could no make than first been its who now people my made over did down only "
    "way find use may water long little very after words called just where most know get "
    "through back much before go good new write our used me man too any day same right look "
    "think also around another came come work three word must because does part even place "
    "well such here take why things help put years different away again off went old number "
    "great tell men say small every found still between name should home big give air line "
    "set own under read last never us left end along while might next sound below saw "
    "something thought both few those always looked show large often together asked house "
    "world going want school important until form food keep children feet land side without "
    "boy once animals life enough took sometimes four head above kind began almost live page "
    "got earth need far hand high year mother light parts country father let night following "
    "picture being study second eyes soon times story boys since white days ever paper hard "
    "near sentence better best across during today others sure means knew why whole"
).split()


def text(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--row-group", type=int, default=65536)
    ap.add_argument("--compression", default="none")
    args = ap.parse_args()
    import pyarrow as pa  # after --help, which needs none of it
    import pyarrow.parquet as pq

    rng = random.Random(args.seed)
    msg = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    schema = pa.schema([("id", pa.int64()), ("prompt", msg), ("chosen", msg), ("rejected", msg)])
    tmp = args.out + ".tmp"
    writer = pq.ParquetWriter(tmp, schema, compression=args.compression)
    recent = []
    written = 0
    while written < args.pairs:
        rows = []
        for i in range(written, min(written + args.row_group, args.pairs)):
            roll = rng.random()
            if roll < 0.01 and recent:
                row = dict(rng.choice(recent), id=i)
            else:
                prompt = [{"role": "user", "content": text(rng, 8, 24)}]
                if rng.random() < 0.05:
                    prompt = [
                        {"role": "system", "content": text(rng, 4, 12)},
                        {"role": "user", "content": text(rng, 6, 16)},
                        {"role": "assistant", "content": text(rng, 10, 30)},
                    ] + prompt
                chosen = [{"role": "assistant", "content": text(rng, 10, 40)}]
                rejected = [{"role": "assistant", "content": text(rng, 10, 40)}]
                if 0.01 <= roll < 0.011:
                    rejected = chosen
                row = {"id": i, "prompt": prompt, "chosen": chosen, "rejected": rejected}
                if 0.011 <= roll < 0.012:
                    row["chosen"] = None
                if len(recent) < 1000:
                    recent.append(row)
                else:
                    recent[rng.randrange(1000)] = row
            rows.append(row)
        writer.write_table(pa.Table.from_pylist(rows, schema=schema))
        written += len(rows)
    writer.close()
    os.replace(tmp, args.out)
    print(f"{args.out}: {written} pairs, {os.path.getsize(args.out) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
