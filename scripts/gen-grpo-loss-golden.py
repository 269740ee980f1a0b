#!/usr/bin/env python3
"""Golden values for rmtk's GRPO policy loss (src/grpo/loss.rs), computed with PyTorch.

A fixed tiny batch (seeded) of per-token log-probabilities under the current, old and
reference policies, advantages and a response mask; for several settings: the loss
(clipped surrogate with asymmetric clip + beta * k3 KL, token-mean or seq-mean), its
gradient with respect to the current log-probabilities, and the clip fraction.

Run with the reference venv:  .venv-ref/bin/python scripts/gen-grpo-loss-golden.py
Writes tests/golden/grpo-loss.json.
"""
import json
import pathlib

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "golden" / "grpo-loss.json"


def loss_fn(logp, old, ref, adv, mask, clip_low, clip_high, beta, aggregation):
    ratio = torch.exp(logp - old)
    a = adv[:, None].expand_as(logp)
    pg = -torch.min(ratio * a, torch.clamp(ratio, 1 - clip_low, 1 + clip_high) * a)
    per_token = pg
    if beta > 0:
        d = ref - logp
        per_token = per_token + beta * (torch.exp(d) - d - 1)
    masked = per_token * mask
    if aggregation == "token-mean":
        loss = masked.sum() / mask.sum()
    else:
        loss = (masked.sum(1) / mask.sum(1).clamp(min=1)).mean()
    active = ((ratio > 1 + clip_high) & (a > 0)) | ((ratio < 1 - clip_low) & (a < 0))
    clip_frac = (active.float() * mask).sum() / mask.sum()
    return loss, clip_frac


def main():
    g = torch.Generator().manual_seed(1234)
    n, t = 6, 9
    old = -torch.rand(n, t, generator=g, dtype=torch.float64) * 4
    # Current policy drifted from the old one, enough that some ratios leave the clip range.
    logp = old + torch.randn(n, t, generator=g, dtype=torch.float64) * 0.35
    ref = old + torch.randn(n, t, generator=g, dtype=torch.float64) * 0.2
    adv = torch.randn(n, generator=g, dtype=torch.float64)
    lens = [9, 7, 4, 9, 1, 6]
    mask = torch.zeros(n, t, dtype=torch.float64)
    for i, L in enumerate(lens):
        mask[i, :L] = 1
    # Round inputs to f32 so both sides start from identical values.
    old, logp, ref, adv = (x.float().double() for x in (old, logp, ref, adv))
    cases = []
    for name, cl, ch, beta, agg in [
        ("token-mean clip-higher kl", 0.2, 0.28, 0.04, "token-mean"),
        ("seq-mean symmetric kl", 0.2, 0.2, 0.04, "seq-mean"),
        ("token-mean no kl", 0.1, 0.3, 0.0, "token-mean"),
        ("seq-mean strong kl", 0.3, 0.3, 1.0, "seq-mean"),
    ]:
        x = logp.clone().requires_grad_(True)
        loss, clip_frac = loss_fn(x, old, ref, adv, mask, cl, ch, beta, agg)
        loss.backward()
        cases.append({
            "name": name, "clip_low": cl, "clip_high": ch, "beta": beta, "aggregation": agg,
            "loss": loss.item(), "grad_logp": x.grad.tolist(), "clip_fraction": float(clip_frac),
        })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "generated_by": "scripts/gen-grpo-loss-golden.py",
        "torch": torch.__version__,
        "n": n, "t": t,
        "logp": logp.tolist(), "old_logp": old.tolist(), "ref_logp": ref.tolist(),
        "advantages": adv.tolist(), "mask": mask.tolist(), "cases": cases,
    }, indent=1) + "\n")
    print(f"wrote {OUT}")
    for c in cases:
        print(f"  {c['name']}: loss {c['loss']:.6f}, clip fraction {c['clip_fraction']:.3f}")


if __name__ == "__main__":
    main()
