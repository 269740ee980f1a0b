#!/usr/bin/env python3
"""The pandas peer of `rmtk data inspect` for scripts/bench-data.sh: the same report on a
conversational preference parquet (explicit `prompt`, `chosen` and `rejected` message lists),
the way a pandas user would write it: the file read whole with pandas, cells compared as
JSON, duplicates with `DataFrame.duplicated`, lengths from HF `tokenizers` (the same
tokenizer.json, `encode_batch` on all cores, in chunks of 65536 texts), the chat template
rendered by jinja2 as transformers does (trim_blocks, lstrip_blocks), percentiles
nearest-rank. The overlong figures: pairs over --max-length; truncate-start identical (the
first N ids equal); truncate's response cuts and identical pairs from each response rendered
alone (rmtk cuts the prompt turn by turn; here only what needs no re-rendering is counted,
which gives the same numbers when, as in the synthetic file, a pair over the limit either
fits without its prompt or has a response that does not fit alone).

    .venv-data/bin/python scripts/inspect_pandas.py FILE --model models/smollm2-135m-instruct --max-length 64
"""

import argparse
import json
import sys
import time
from pathlib import Path

CHUNK = 65536


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--model", required=True)
    ap.add_argument("--max-length", type=int, default=1024)
    args = ap.parse_args()
    started = time.perf_counter()
    import jinja2  # after --help, which needs none of these
    import numpy as np
    import pandas as pd
    from tokenizers import Tokenizer

    model = Path(args.model)
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    cfg = json.loads((model / "tokenizer_config.json").read_text())
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(cfg["chat_template"])

    def as_list(cell):
        return [] if cell is None else [dict(m) for m in cell]

    df = pd.read_parquet(args.file)
    report = {"rows": len(df), "columns": []}
    for c in df.columns:
        col = df[c]
        nulls = int(col.isna().sum())
        if col.dtype == object:
            empty = int(col.map(lambda v: v is not None and len(v) == 0 or (isinstance(v, str) and not v.strip())).sum())
        else:
            empty = 0
        report["columns"].append({"name": c, "nulls": nulls, "empty": empty})
    js = {c: df[c].map(lambda v: None if v is None else json.dumps(as_list(v))) for c in ("prompt", "chosen", "rejected")}
    identical = (js["chosen"].notna()) & (js["chosen"] == js["rejected"])
    report["identical_chosen_rejected"] = int(identical.sum())
    valid = js["prompt"].notna() & js["chosen"].notna() & js["rejected"].notna() & ~identical
    report["bad_rows"] = int((~valid).sum())
    keys = pd.DataFrame({c: js[c][valid] for c in js})
    report["pairs"] = len(keys)
    report["duplicate_pairs"] = int(keys.duplicated().sum())
    report["distinct_prompts"] = int(keys["prompt"].nunique())

    v = df[valid]
    prompts = [as_list(p) for p in v["prompt"]]
    chosen = [as_list(c) for c in v["chosen"]]
    rejected = [as_list(r) for r in v["rejected"]]

    def count(convs):
        texts, owner = [], []
        for i, conv in enumerate(convs):
            for m in conv:
                texts.append(m["content"])
                owner.append(i)
        out = np.zeros(len(convs), dtype=np.int64)
        lens = []
        for s in range(0, len(texts), CHUNK):
            lens.extend(len(e.ids) for e in tok.encode_batch(texts[s : s + CHUNK], add_special_tokens=False))
        np.add.at(out, np.asarray(owner, dtype=np.int64), np.asarray(lens, dtype=np.int64))
        return out

    def render(convs):
        return [template.render(messages=c, add_generation_prompt=False, bos_token="", eos_token="") for c in convs]

    n = args.max_length

    def ids(convs):
        """Rendered and encoded in chunks: the lengths, and the first n ids of the
        sequences longer than n (all a pandas user would keep of 1M encodings)."""
        lens, heads = [], {}
        for s in range(0, len(convs), CHUNK):
            for i, e in enumerate(tok.encode_batch(render(convs[s : s + CHUNK]), add_special_tokens=False)):
                lens.append(len(e.ids))
                if len(e.ids) > n:
                    heads[s + i] = e.ids[:n]
        return np.asarray(lens), heads

    p_len, c_len, r_len = count(prompts), count(chosen), count(rejected)
    c_seq, c_heads = ids([p + c for p, c in zip(prompts, chosen)])
    r_seq, r_heads = ids([p + r for p, r in zip(prompts, rejected)])
    seq = np.maximum(c_seq, r_seq)
    over = np.flatnonzero(seq > n)
    start_identical = sum(c_heads.get(i) is not None and c_heads.get(i) == r_heads.get(i) for i in over)
    alone_c = [e.ids for e in tok.encode_batch(render([chosen[i] for i in over]), add_special_tokens=False)]
    alone_r = [e.ids for e in tok.encode_batch(render([rejected[i] for i in over]), add_special_tokens=False)]
    cut = sum(len(a) > n or len(b) > n for a, b in zip(alone_c, alone_r))
    trunc_identical = sum(len(a) > n and len(b) > n and a[:n] == b[:n] for a, b in zip(alone_c, alone_r))

    def pct(x):
        x = np.asarray(x)
        q = lambda p: int(np.percentile(x, p, method="inverted_cdf"))  # noqa: E731
        return {"p50": q(50), "p90": q(90), "p95": q(95), "p99": q(99), "max": int(x.max()), "mean": float(x.mean())}

    report["lengths"] = {
        "prompt": pct(p_len),
        "chosen": pct(c_len),
        "rejected": pct(r_len),
        "sequence": pct(seq),
        "overlong": {
            "max_length": n,
            "over": int(len(over)),
            "truncate_responses_cut": int(cut),
            "truncate_identical": int(trunc_identical),
            "truncate_start_identical": int(start_identical),
        },
    }
    report["seconds"] = time.perf_counter() - started
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
