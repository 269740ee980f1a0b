#!/usr/bin/env python3
"""PyTorch `transformers` counterpart of `cargo bench --bench backbone`: forward tokens/s
of a causal LM at batch x length (logits of every position) and KV-cached greedy decode
tokens/s at batch 1 and 8, on CPU, with the same shapes and the same pseudo-random ids.

Run with the reference venv (scripts/setup-ref-venv.sh):
  .venv-ref/bin/python scripts/bench-torch.py [--model DIR] [--batch 8] [--seq 512]
Prints one JSON line per measurement.
"""
import argparse
import json
import time


def tokens(n, vocab, salt):
    x = 0x9E3779B97F4A7C15 ^ salt
    mask = (1 << 64) - 1
    out = []
    for _ in range(n):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        out.append(100 + x % (vocab - 100))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/smollm2-135m-instruct")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = ap.parse_args()
    import torch
    from transformers import AutoModelForCausalLM

    if a.threads:
        torch.set_num_threads(a.threads)
    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32).eval()
    vocab = model.config.vocab_size
    engine = f"torch-{torch.__version__.split('+')[0]}"
    with torch.inference_mode():
        ids = torch.tensor(tokens(a.batch * a.seq, vocab, 1)).view(a.batch, a.seq)
        model(ids)
        best = float("inf")
        for _ in range(a.reps):
            t = time.perf_counter()
            model(ids).logits
            best = min(best, time.perf_counter() - t)
        print(json.dumps({"engine": engine, "what": "forward", "batch": a.batch, "seq": a.seq,
                          "tokens_per_s": round(a.batch * a.seq / best, 1),
                          "threads": torch.get_num_threads()}))
        for batch in (1, 8):
            best = float("inf")
            for rep in range(a.reps + 1):
                ids = torch.tensor(tokens(batch * a.prompt, vocab, 7)).view(batch, a.prompt)
                out = model(ids, use_cache=True)
                past = out.past_key_values
                nxt = out.logits[:, -1:].argmax(-1)
                t = time.perf_counter()
                for _ in range(a.new):
                    out = model(nxt, past_key_values=past, use_cache=True)
                    past = out.past_key_values
                    nxt = out.logits[:, -1:].argmax(-1)
                    nxt.tolist()
                if rep > 0:
                    best = min(best, time.perf_counter() - t)
            print(json.dumps({"engine": engine, "what": "decode", "batch": batch, "prompt": a.prompt,
                              "new": a.new, "tokens_per_s": round(batch * a.new / best, 1),
                              "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
