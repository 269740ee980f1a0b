#!/usr/bin/env python3
"""Reference values for rmtk's reward-model training step, computed by PyTorch.

For the tiny Llama and BERT fixtures (tests/fixtures/tiny-llama, tiny-bert) as
`LlamaForSequenceClassification` / `BertForSequenceClassification` with one label:

1. the head is set to values drawn here from N(0, 1/(hidden+1)) (stored in the golden,
   so rmtk starts from the very same weights; BERT's classifier bias is 0 and frozen,
   as rmtk's head has none); dropout is off (TRL's `disable_dropout`);
2. one batch of 3 pairs (chosen rows then rejected rows, right-padded with id 0, the
   config's pad_token_id), margins, centring coefficient 0.01:
   loss = -logsigmoid(r+ - r- - margin).mean() + 0.01 * mean((r+ + r-)^2)   (TRL's loss);
3. backward, `clip_grad_norm_` at half the measured norm (so clipping acts), and two
   `torch.optim.AdamW` steps (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.1
   on the parameters transformers' Trainer decays: not biases, not norm weights), the
   second on the same batch with fresh gradients.

Writes tests/golden/rm-<name>.json (head, batch, hyper-parameters, rewards, loss, grad
norms) and tests/golden/rm-<name>.safetensors (every trained parameter after step 1 and
step 2 under `step1/<key>`, `step2/<key>`, AdamW's moments after step 1 under
`step1/<key>.exp_avg`, `.exp_avg_sq`, and the first moment after step 2 under
`step2/<key>.exp_avg`, from which the test recovers each step's clipped gradient), in
PyTorch layout and f32.

Where a gradient is float noise around an exact zero (BERT's attention key bias: adding
a constant to every key leaves the softmax unchanged), Adam's first update
`lr * g / (|g| + eps)` turns 1e-10 of gradient noise into 1e-5 of weight, so no two
implementations agree there; the test holds elements whose PyTorch gradient is below
1e-6 to the bound every Adam step obeys (|update| <= lr) and all others to 1e-5.

Run with the reference venv (scripts/setup-ref-venv.sh):

    .venv-ref/bin/python scripts/gen-rm-goldens.py

`cargo test --test rm_reference` compares rmtk with them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

if __name__ == "__main__":
    # No options; parsed before the imports below so that --help needs no torch.
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import BertForSequenceClassification, LlamaForSequenceClassification  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
GOLDEN = REPO / "tests" / "golden"
SEED = 20250821
LR, WD, BETAS, EPS, CENTER = 1e-3, 0.1, (0.9, 0.999), 1e-8, 0.01
MARGINS = [0.5, 0.0, -0.25]

torch.set_num_threads(min(2, os.cpu_count() or 1))
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

# transformers.Trainer.get_decay_parameter_names
NO_DECAY = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


def decays(name: str) -> bool:
    return not any(re.search(p, name.lower()) for p in NO_DECAY)


def r9(x: float) -> float:
    return float(f"{x:.9g}")


def head_values(hidden: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(np.float32(v)) for v in rng.normal(0.0, 1.0 / np.sqrt(hidden + 1), size=hidden)]


def pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(r) for r in rows)
    ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def run(name: str, model, batch: dict, head_key: str) -> None:
    model.eval()  # dropout off; no other layer behaves differently
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in params if decays(n)], "weight_decay": WD},
        {"params": [p for n, p in params if not decays(n)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS)
    rows = batch["chosen"] + batch["rejected"]
    ids, mask = pad(rows, 0)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if batch.get("chosen_types"):
        types, _ = pad(batch["chosen_types"] + batch["rejected_types"], 0)
        inputs["token_type_ids"] = types
    margin = torch.tensor(MARGINS)
    out: dict = {}
    tensors: dict[str, torch.Tensor] = {}
    max_norm = None
    for step in (1, 2):
        opt.zero_grad()
        rewards = model(**inputs).logits.squeeze(-1)
        rc, rr = torch.chunk(rewards, 2)
        loss = -torch.nn.functional.logsigmoid(rc - rr - margin).mean() + CENTER * torch.mean((rc + rr) ** 2)
        loss.backward()
        if max_norm is None:
            with torch.no_grad():
                norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for _, p in params]))
            max_norm = float(np.float32(norm.item() / 2))
        grad_norm = torch.nn.utils.clip_grad_norm_([p for _, p in params], max_norm)
        opt.step()
        out[f"step{step}"] = {
            "rewards_chosen": [r9(v) for v in rc.tolist()],
            "rewards_rejected": [r9(v) for v in rr.tolist()],
            "loss": r9(loss.item()),
            "grad_norm": r9(grad_norm.item()),
        }
        for n, p in params:
            tensors[f"step{step}/{n}"] = p.detach().clone().contiguous()
            st = opt.state[p]
            tensors[f"step{step}/{n}.exp_avg"] = st["exp_avg"].clone().contiguous()
            if step == 1:
                tensors[f"step1/{n}.exp_avg_sq"] = st["exp_avg_sq"].clone().contiguous()
    golden = {
        "model": name,
        "generated_by": "scripts/gen-rm-goldens.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "head_key": head_key,
        "head": batch["head"],
        "pad_id": 0,
        "batch": {k: batch[k] for k in ("chosen", "rejected", "chosen_types", "rejected_types") if batch.get(k)},
        "margins": MARGINS,
        "center_rewards_coef": CENTER,
        "lr": LR,
        "weight_decay": WD,
        "betas": list(BETAS),
        "eps": EPS,
        "max_grad_norm": max_norm,
        "trained": [n for n, _ in params],
        "no_decay": [n for n, _ in params if not decays(n)],
        **out,
    }
    GOLDEN.mkdir(parents=True, exist_ok=True)
    (GOLDEN / f"rm-{name}.json").write_text(json.dumps(golden, indent=1) + "\n")
    save_file(tensors, GOLDEN / f"rm-{name}.safetensors")
    print(f"{name}: loss {out['step1']['loss']:.6f}, grad norm {out['step1']['grad_norm']:.6f} (clipped at {max_norm:.6f})")


def tiny_llama() -> None:
    path = FIXTURES / "tiny-llama"
    model = LlamaForSequenceClassification.from_pretrained(
        path, num_labels=1, dtype=torch.float32, attn_implementation="eager"
    )
    model.config.pad_token_id = 0
    head = head_values(model.config.hidden_size, SEED)
    with torch.no_grad():
        model.score.weight.copy_(torch.tensor([head]))
    gen = np.random.default_rng(SEED + 1)
    vocab = model.config.vocab_size
    seq = lambda n: [int(v) for v in gen.integers(3, vocab, size=n)]  # noqa: E731  (no 0 = pad)
    batch = {"head": head, "chosen": [seq(9), seq(4), seq(7)], "rejected": [seq(6), seq(8), seq(3)]}
    run("tiny-llama", model, batch, "score.weight")


def tiny_bert() -> None:
    path = FIXTURES / "tiny-bert"
    model = BertForSequenceClassification.from_pretrained(
        path, num_labels=1, dtype=torch.float32, attn_implementation="eager"
    )
    head = head_values(model.config.hidden_size, SEED + 2)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor([head]))
        model.classifier.bias.zero_()
    model.classifier.bias.requires_grad_(False)
    gen = np.random.default_rng(SEED + 3)
    vocab = model.config.vocab_size

    def pair(n_prompt: int, n_response: int):
        ids = [2] + [int(v) for v in gen.integers(4, vocab, size=n_prompt)] + [3]
        types = [0] * len(ids)
        resp = [int(v) for v in gen.integers(4, vocab, size=n_response)] + [3]
        return ids + resp, types + [1] * len(resp)

    rows = [pair(3, 4), pair(2, 2), pair(4, 5), pair(3, 2), pair(2, 6), pair(4, 1)]
    batch = {
        "head": head,
        "chosen": [r[0] for r in rows[:3]],
        "chosen_types": [r[1] for r in rows[:3]],
        "rejected": [r[0] for r in rows[3:]],
        "rejected_types": [r[1] for r in rows[3:]],
    }
    run("tiny-bert", model, batch, "classifier.weight")


def main() -> None:
    torch.manual_seed(SEED)
    tiny_llama()
    tiny_bert()


if __name__ == "__main__":
    main()
