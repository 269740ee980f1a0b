#!/usr/bin/env python3
"""PyTorch's side of benches/train_step.rs: one reward-model training step (forward,
Bradley-Terry loss, backward) of a transformers sequence-classification model on the same
token ids, and the step's matrix multiplies alone on the same shapes and layouts.

    python scripts/bench_step.py MODEL BATCH SEQ REPS [--gemm] [--profile]

BATCH counts sequences (pairs x 2). Prints one JSON line per measurement, as the Rust
bench does. --profile adds torch.profiler's per-op table of one step (self CPU time) on
stderr. Threads: torch's default for this machine (its core count), as TRL runs.
"""

import json
import sys
import time


def tokens(n, vocab, salt):
    """benches/train_step.rs's xorshift ids in [100, vocab)."""
    mask = (1 << 64) - 1
    x = 0x9E3779B97F4A7C15 ^ salt
    out = []
    for _ in range(n):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        out.append(100 + x % (vocab - 100))
    return out


def gemm_shapes(cfg, tokens):
    h, layers, inter = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size
    heads = cfg.num_attention_heads
    kv = getattr(cfg, "num_key_value_heads", heads) * (getattr(cfg, "head_dim", None) or h // heads)
    if kv == h:
        linears = [("attn", h, h, 4), ("up", h, inter, 1), ("down", inter, h, 1)]
    else:
        linears = [("q_o", h, h, 2), ("k_v", h, kv, 2), ("gate_up", h, inter, 2), ("down", inter, h, 1)]
    out = []
    for name, d_in, d_out, n in linears:
        count = n * layers
        out.append((f"{name} forward X W", tokens, d_in, d_out, count))
        out.append((f"{name} backward dY W^T", tokens, d_out, d_in, count))
        out.append((f"{name} backward X^T dY", d_in, tokens, d_out, count))
    return out


def gemm(model_dir, batch, seq, reps):
    import torch
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model_dir)
    total_flop = total_s = 0.0
    for name, m, k, n, count in gemm_shapes(cfg, batch * seq):
        # nn.Linear stores [out, in]: forward X W^T, backward dY W and X^T dY (dW^T), the
        # same products as rmtk's with the weight's layout flipped.
        lhs = torch.rand(k, m).t() if "X^T" in name else torch.rand(m, k)
        rhs = torch.rand(n, k).t() if "forward" in name else torch.rand(k, n)
        best = float("inf")
        for rep in range(reps + 1):
            t = time.perf_counter()
            torch.matmul(lhs, rhs)
            if rep > 0:
                best = min(best, time.perf_counter() - t)
        flop = 2.0 * m * k * n
        total_flop += flop * count
        total_s += best * count
        print(json.dumps({"engine": "pytorch", "what": "gemm", "op": name, "m": m, "k": k, "n": n,
                          "per_step": count, "seconds": round(best, 6), "gflops": round(flop / best / 1e9, 1)}))
    print(json.dumps({"engine": "pytorch", "what": "gemm_total", "tokens": batch * seq,
                      "seconds": round(total_s, 4), "gflops": round(total_flop / total_s / 1e9, 1)}))


def step(model_dir, batch, seq, reps, profile):
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    cfg = AutoConfig.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    model.train()
    for module in model.modules():  # dropout off, as rmtk trains (and bench_trl.py)
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    ids = torch.tensor(tokens(batch * seq, cfg.vocab_size, 1)).reshape(batch, seq)
    mask = torch.ones_like(ids)
    half = batch // 2

    def one():
        t = time.perf_counter()
        rewards = model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
        loss = -torch.nn.functional.logsigmoid(rewards[:half] - rewards[half:]).mean()
        f = time.perf_counter() - t
        t = time.perf_counter()
        loss.backward()
        b = time.perf_counter() - t
        model.zero_grad(set_to_none=True)
        return f, b

    fwd = bwd = float("inf")
    for rep in range(reps + 1):
        f, b = one()
        if rep > 0:
            fwd, bwd = min(fwd, f), min(bwd, b)
    print(json.dumps({"engine": "pytorch", "what": "step", "batch": batch, "seq": seq, "forward_s": round(fwd, 4),
                      "backward_s": round(bwd, 4), "step_s": round(fwd + bwd, 4),
                      "tokens_per_s": round(batch * seq / (fwd + bwd), 1), "threads": torch.get_num_threads()}))
    if profile:
        from torch.profiler import ProfilerActivity, profile as prof
        with prof(activities=[ProfilerActivity.CPU]) as p:
            one()
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), file=sys.stderr)


def main():
    if len(sys.argv) < 5 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    model_dir, batch, seq, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if "--gemm" in sys.argv:
        gemm(model_dir, batch, seq, reps)
    else:
        step(model_dir, batch, seq, reps, "--profile" in sys.argv)


if __name__ == "__main__":
    main()
