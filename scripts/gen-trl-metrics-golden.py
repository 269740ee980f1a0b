#!/usr/bin/env python3
"""Golden values for the TRL-named metrics rmtk writes beside its own (src/grpo/trl_metrics.rs,
src/rm/trl_metrics.rs), from TRL's own code: the metric-logging fragments of
`GRPOTrainer._generate` (completion lengths, clipped ratio), `_generate_and_score_completions`
(reward, reward_std, frac_reward_zero_std, under sum_then_normalize and normalize_then_sum),
`_compute_loss` (the importance ratio and k3 KL, then kl, entropy and the clip ratios, once per
micro-batch) and `log` (the average over the logged micro-batches), and of
`RewardTrainer.compute_loss` and `log` (accuracy, margin, min/mean/max reward per batch,
averaged). Each fragment is cut out of TRL's source at run time and executed as it is
(float64 tensors; a stand-in `self` with a single-process accelerator), on random inputs
(float32-representable, as rmtk's tensors). Writes tests/golden/trl-metrics.json: per case
the inputs and the metrics TRL logs.

    scripts/bench-rm.sh makes .venv-trl/ (TRL 1.16 on .venv-ref/); then
    .venv-trl/bin/python scripts/gen-trl-metrics-golden.py
"""
import inspect
import json
import math
import random
import struct
import sys
import textwrap
import types
from collections import defaultdict
from pathlib import Path


def cut(fn, start, end):
    """The lines of `fn`'s source from the one holding `start` up to (not including) the
    one holding `end` after it, dedented: TRL's own statements, to execute as they are."""
    src = inspect.getsource(fn)
    i = src.index(start)
    i = src.rindex("\n", 0, i) + 1
    j = src.index(end, i)
    j = src.rindex("\n", 0, j) + 1
    return textwrap.dedent(src[i:j])


def f32(x):
    """x rounded to the nearest float32 (rmtk's tensors are f32)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def single_process():
    return types.SimpleNamespace(
        gather=lambda t: t,
        gather_for_metrics=lambda t: t,
        reduce=lambda t, reduction="sum": t,
        process_index=0,
        num_processes=1,
    )


def fragments():
    from trl.trainer.grpo_trainer import GRPOTrainer
    from trl.trainer.reward_trainer import RewardTrainer

    code = {
        # Completion lengths and the clipped ratio, over every completion of the batch.
        "grpo_completions": cut(
            GRPOTrainer._generate,
            "# Get completion length per sequence, used for logging",
            "if self.tools:\n            agg_tool_call_count",
        ),
        # Advantages (both aggregations) and the reward statistics.
        "grpo_rewards": cut(
            GRPOTrainer._generate_and_score_completions,
            "unscorable_mask = torch.isnan(rewards_per_func).all(dim=1)",
            "# Log prompts and completions",
        ),
        # The token-level importance ratio and the k3 KL to the reference.
        "grpo_ratio_kl": cut(
            GRPOTrainer._compute_loss,
            "log_ratio = per_token_logps - old_per_token_logps",
            "# From here, log_importance_weights",
        ),
        # kl, entropy and the clip ratios of one compute_loss call (a micro-batch).
        "grpo_loss_metrics": cut(
            GRPOTrainer._compute_loss,
            "# Log the metrics",
            'elif self.loss_type == "cispo":',
        ),
        # What one logged line holds: the mean of the values appended since the last one.
        "grpo_log": cut(GRPOTrainer.log, "metrics = {}", "# This method can be called both"),
        "rm_split": cut(
            RewardTrainer.compute_loss,
            "rewards_chosen, rewards_rejected = torch.chunk",
            "# Calculate loss, optionally modulate with margin",
        ),
        "rm_metrics": cut(
            RewardTrainer.compute_loss,
            "# Compute min, mean, max, accuracy and margin",
            "return (loss, outputs)",
        ),
        "rm_log": cut(
            RewardTrainer.log,
            "metrics = {key: sum(val) / len(val)",
            "# This method can be called both",
        ),
    }
    # What the fragments must hold, so that a TRL that moved them fails here, loudly.
    expect = {
        "grpo_completions": ['"completions/mean_terminated_length"', "ids[-1] not in eos_and_pad"],
        "grpo_rewards": ['"reward_std"', '"frac_reward_zero_std"', "normalize_then_sum"],
        "grpo_ratio_kl": ["coef_1 = torch.exp(log_importance_weights)", "per_token_kl ="],
        "grpo_loss_metrics": ['"clip_ratio/low_mean"', '"clip_ratio/high_max"', '["entropy"]'],
        "grpo_log": ["sum(valid) / len(valid)"],
        "rm_split": ["torch.chunk"],
        "rm_metrics": ['"min_reward"', '"accuracy"', '"margin"'],
        "rm_log": ["sum(val) / len(val)"],
    }
    for name, needles in expect.items():
        for needle in needles:
            assert needle in code[name], f"TRL's {name} fragment lacks {needle!r}:\n{code[name]}"
    return code


def run_log(code, metrics):
    scope = {"math": math, "self": types.SimpleNamespace(_metrics={"train": metrics}), "mode": "train"}
    exec(code, scope)
    return scope["metrics"]


def completions_case(code, rng, torch, n, max_new, p_trunc):
    eos, pad = 2, 0
    ids = []
    for _ in range(n):
        if rng.random() < p_trunc:
            ids.append([rng.randint(5, 99) for _ in range(max_new)])  # stopped at the limit
        else:
            length = rng.randint(1, max_new)
            ids.append([rng.randint(5, 99) for _ in range(length - 1)] + [eos])
    metrics = defaultdict(list)
    scope = {
        "torch": torch,
        "device": "cpu",
        "mode": "train",
        "prompt_ids": [[7, 8, 9]] * n,
        "completion_ids": ids,
        "tool_mask": None,
        "self": types.SimpleNamespace(
            accelerator=single_process(),
            state=types.SimpleNamespace(num_input_tokens_seen=0),
            _metrics={"train": metrics},
            eos_token_ids=[eos],
            _tokenizer=types.SimpleNamespace(pad_token_id=pad),
        ),
    }
    exec(code["grpo_completions"], scope)
    logged = run_log(code["grpo_log"], metrics)
    return {
        "lengths": [len(c) for c in ids],
        "truncated": [c[-1] not in (eos, pad) for c in ids],
        "metrics": {k: v for k, v in logged.items() if k.startswith("completions/")},
    }


def rewards_case(code, rng, torch, nanstd, aggregation, scale):
    n = rng.choice([2, 3, 4, 8])
    groups = rng.randint(1, 6)
    w = round(rng.uniform(0.1, 2.0), 3)
    cols = []
    for g in range(groups):
        kind = rng.random()
        if aggregation == "sum_then_normalize":
            # One reward function: rmtk's mixed reward.
            r = [f32(rng.gauss(0.0, 2.0)) for _ in range(n)]
            if kind < 0.25:
                r = [r[0]] * n  # no variance: a zero std
            elif kind < 0.35:
                r = [r[0] + 1e-12 * k for k in range(n)]  # a std TRL's isclose calls zero
            cols.append([[x] for x in r])
        else:
            # Two: the writing reward and the 0/1 verdict.
            ws = [f32(rng.gauss(0.0, 2.0)) for _ in range(n)]
            vs = [float(rng.random() < 0.6) for _ in range(n)]
            if kind < 0.3:
                ws, vs = [ws[0]] * n, [vs[0]] * n
            cols.append([[a, b] for a, b in zip(ws, vs)])
    flat = [row for g in cols for row in g]
    if aggregation == "normalize_then_sum" and rng.random() < 0.2:
        flat = [[flat[0][0], flat[0][1]] for _ in flat]  # every group constant
    rewards_per_func = torch.tensor(flat, dtype=torch.float64)
    funcs = len(flat[0])
    metrics = defaultdict(list)
    scope = {
        "torch": torch,
        "nanstd": nanstd,
        "device": "cpu",
        "mode": "train",
        "num_generations": n,
        "rewards_per_func": rewards_per_func,
        "prompts": [None] * len(flat),
        "self": types.SimpleNamespace(
            multi_objective_aggregation=aggregation,
            scale_rewards=scale,
            reward_funcs=[None] * funcs,
            reward_func_names=["writing", "verdict"][:funcs] if funcs == 2 else ["mixed"],
            reward_weights=torch.tensor([1.0, w][:funcs], dtype=torch.float64),
            accelerator=single_process(),
            _metrics={"train": metrics},
        ),
    }
    exec(code["grpo_rewards"], scope)
    logged = run_log(code["grpo_log"], metrics)
    case = {
        "aggregation": aggregation,
        "scale_rewards": scale,
        "num_generations": n,
        "metrics": {k: logged[k] for k in ("reward", "reward_std", "frac_reward_zero_std")},
    }
    if funcs == 1:
        case["rewards"] = [row[0] for row in flat]
    else:
        case["constraint_weight"] = w
        case["writing"] = [row[0] for row in flat]
        case["verdict"] = [row[1] for row in flat]
    return case


def loss_case(code, rng, torch, nanmin, nanmax, beta, eps_low, eps_high, empty_row):
    micro_batches = []
    metrics = defaultdict(list)
    for m in range(rng.randint(1, 4)):
        rows, width = rng.randint(1, 5), rng.randint(2, 9)
        lens = [rng.randint(1, width) for _ in range(rows)]
        if empty_row and m == 0:
            lens[0] = 0
        mask = [[1.0 if t < lens[r] else 0.0 for t in range(width)] for r in range(rows)]
        logp, old, ref = [], [], []
        for r in range(rows):
            lr, lo, lf = [], [], []
            for t in range(width):
                x = f32(-rng.uniform(0.05, 3.0))
                while True:
                    o = f32(x + rng.gauss(0.0, 0.35))
                    ratio = math.exp(x - o)
                    # Keep clear of the clip bounds: f32 and f64 agree on every flag.
                    if min(abs(ratio - (1 - eps_low)), abs(ratio - (1 + eps_high))) > 1e-4:
                        break
                lr.append(x)
                lo.append(o)
                lf.append(f32(x + rng.gauss(0.0, 0.3)))
            logp.append(lr)
            old.append(lo)
            ref.append(lf)
        adv = [f32(rng.gauss(0.0, 1.0)) if rng.random() > 0.15 else 0.0 for _ in range(rows)]
        entropy = [[f32(rng.uniform(0.0, 4.0)) for _ in range(width)] for _ in range(rows)]
        t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
        args = types.SimpleNamespace(use_bias_correction_kl=False)
        stand_in = types.SimpleNamespace(
            importance_sampling_level="token",
            beta=beta,
            args=args,
            loss_type="dapo",
            epsilon_low=eps_low,
            epsilon_high=eps_high,
            accelerator=single_process(),
            _metrics={"train": metrics},
        )
        scope = {
            "torch": torch,
            "nanmin": nanmin,
            "nanmax": nanmax,
            "mode": "train",
            "self": stand_in,
            "per_token_logps": t(logp),
            "old_per_token_logps": t(old),
            "inputs": {"ref_per_token_logps": t(ref)},
            "mask": t(mask),
            "entropies": t(entropy),
            # _compute_loss makes the advantages (B, 1) before its loss.
            "advantages": t(adv).unsqueeze(1),
        }
        exec(code["grpo_ratio_kl"], scope)
        exec(code["grpo_loss_metrics"], scope)
        micro_batches.append({
            "logp": logp, "old_logp": old, "ref_logp": ref,
            "advantages": adv, "mask": mask, "entropy": entropy,
        })
    logged = run_log(code["grpo_log"], metrics)
    return {
        "beta": beta,
        "clip_low": eps_low,
        "clip_high": eps_high,
        "micro_batches": micro_batches,
        "metrics": logged,
    }


def rm_case(code, rng, torch, sizes):
    metrics = defaultdict(list)
    batches = []
    for k in sizes:
        chosen = [f32(rng.gauss(0.5, 1.5)) for _ in range(k)]
        rejected = [f32(rng.gauss(0.0, 1.5)) for _ in range(k)]
        if k > 1 and rng.random() < 0.5:
            rejected[0] = chosen[0]  # a tie: not a win
        logits = torch.tensor([[x] for x in chosen + rejected], dtype=torch.float64)
        scope = {
            "torch": torch,
            "mode": "train",
            "outputs": types.SimpleNamespace(logits=logits),
            "self": types.SimpleNamespace(accelerator=single_process(), _metrics={"train": metrics}),
        }
        exec(code["rm_split"], scope)
        exec(code["rm_metrics"], scope)
        batches.append({"chosen": chosen, "rejected": rejected})
    scope = {"self": types.SimpleNamespace(_metrics={"train": metrics}), "mode": "train"}
    exec(code["rm_log"], scope)
    return {"batches": batches, "metrics": scope["metrics"]}


def main():
    import argparse

    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    import torch  # after --help, which needs neither
    import trl
    from trl.trainer.utils import nanmax, nanmin, nanstd

    code = fragments()
    rng = random.Random(1416)
    completions = [
        completions_case(code, rng, torch, n, max_new, p)
        for n, max_new, p in [
            (8, 16, 0.3), (16, 12, 0.5), (3, 5, 0.0), (5, 7, 1.0), (32, 20, 0.2),
            (12, 6, 0.6), (4, 30, 0.1), (24, 9, 0.4),
        ]
    ]
    rewards = [
        rewards_case(code, rng, torch, nanstd, agg, scale)
        for agg, scale in [("sum_then_normalize", "group"), ("sum_then_normalize", "none")] * 5
        + [("normalize_then_sum", "group")] * 6
    ]
    loss = [
        loss_case(code, rng, torch, nanmin, nanmax, beta, lo, hi, empty)
        for beta, lo, hi, empty in [
            (0.0, 0.2, 0.28, False), (0.04, 0.2, 0.28, False), (0.04, 0.2, 0.2, False),
            (0.0, 0.1, 0.3, True), (0.1, 0.2, 0.28, False), (0.02, 0.3, 0.3, True),
            (0.0, 0.2, 0.28, False), (0.04, 0.15, 0.25, False),
        ]
    ]
    rm = [
        rm_case(code, rng, torch, sizes)
        for sizes in [[8], [4, 4], [8, 8, 3], [1], [5, 2], [3, 3, 3, 1], [2], [6, 6]]
    ]
    out = Path(__file__).resolve().parent.parent / "tests/golden/trl-metrics.json"
    out.write_text(json.dumps({
        "source": f"trl {trl.__version__}: GRPOTrainer._generate, _generate_and_score_completions, "
                  "_compute_loss and log; RewardTrainer.compute_loss and log "
                  "(scripts/gen-trl-metrics-golden.py)",
        "trl_code": code,
        "completions": completions,
        "rewards": rewards,
        "loss": loss,
        "reward_model": rm,
    }, indent=1) + "\n")
    print(
        f"wrote {out}: {len(completions)} + {len(rewards)} + {len(loss)} + {len(rm)} cases (trl {trl.__version__})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
