#!/usr/bin/env python3
"""Golden values for `rmtk grpo --mixing gdpo` from TRL's own code: the
`multi_objective_aggregation == "normalize_then_sum"` branch of
`GRPOTrainer._generate_and_score_completions`, cut out of TRL's source at run time and
executed as it is (float64 tensors), on random batches of groups with two rewards per
response (a writing reward and a 0/1 verdict, weights 1 and w), some groups with a reward
that does not vary. Writes tests/golden/gdpo.json: per case the groups' rewards, the
weights, the summed group-normalised rewards and the advantages (normalised over the
batch).

    scripts/bench-rm.sh makes .venv-trl/ (TRL 1.16 on .venv-ref/); then
    .venv-trl/bin/python scripts/gen-gdpo-golden.py
"""
import inspect
import json
import random
import sys
import textwrap
import types
from pathlib import Path


def trl_branch():
    """The source of TRL's normalize_then_sum branch, dedented, and TRL's version."""
    import trl
    from trl.trainer.grpo_trainer import GRPOTrainer

    src = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    start = src.index('elif self.multi_objective_aggregation == "normalize_then_sum":')
    body = src[src.index("\n", start) + 1 :]
    lines = body.splitlines()
    indent = len(lines[0]) - len(lines[0].lstrip())
    block = []
    for line in lines:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)), trl.__version__


def main():
    import argparse

    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    import torch  # after --help, which needs neither
    from trl.trainer.utils import nanstd

    code, version = trl_branch()
    rng = random.Random(2508)
    cases = []
    for case in range(12):
        n = rng.choice([2, 3, 4, 8])
        groups = rng.randint(1, 6)
        w = round(rng.uniform(0.1, 2.0), 3)
        writing, verdict = [], []
        for g in range(groups):
            constant = rng.random() < 0.25
            ws = [round(rng.gauss(0.0, 2.0), 4) for _ in range(n)]
            vs = [float(rng.random() < 0.6) for _ in range(n)]
            if constant and g % 2 == 0:
                ws = [ws[0]] * n
            elif constant:
                vs = [vs[0]] * n
            writing.append(ws)
            verdict.append(vs)
        flat = [[a, b] for ws, vs in zip(writing, verdict) for a, b in zip(ws, vs)]
        rewards_per_func = torch.tensor(flat, dtype=torch.float64)
        scope = {
            "torch": torch,
            "nanstd": nanstd,
            "device": "cpu",
            "num_generations": n,
            "rewards_per_func": rewards_per_func,
            "unscorable_mask": torch.isnan(rewards_per_func).all(dim=1),
            "self": types.SimpleNamespace(
                reward_funcs=[None, None],
                reward_weights=torch.tensor([1.0, w], dtype=torch.float64),
            ),
        }
        exec(code, scope)  # TRL's lines, as TRL runs them
        advantages = torch.nan_to_num(scope["advantages"], nan=0.0)
        cases.append({
            "num_generations": n,
            "constraint_weight": w,
            "writing": writing,
            "verdict": verdict,
            "rewards": scope["rewards"].tolist(),
            "advantages": advantages.tolist(),
        })
    out = Path(__file__).resolve().parent.parent / "tests/golden/gdpo.json"
    out.write_text(json.dumps({
        "source": f"trl {version}, GRPOTrainer._generate_and_score_completions, "
                  "multi_objective_aggregation='normalize_then_sum' (scripts/gen-gdpo-golden.py)",
        "trl_code": code,
        "cases": cases,
    }, indent=1) + "\n")
    print(f"wrote {out}: {len(cases)} cases (trl {version})", file=sys.stderr)


if __name__ == "__main__":
    main()
