#!/usr/bin/env python3
"""Reference values for rmtk's LoRA reward-model training step, computed by PEFT.

For the tiny Llama and BERT fixtures as `*ForSequenceClassification` with one label,
wrapped by `peft.get_peft_model` (task SEQ_CLS, so the head is a `modules_to_save`
module trained whole) with `init_lora_weights=False` (A and B both start non-zero, so a
wrong layout or scaling shows from the first forward pass) and dropout 0:

  tiny-llama: r 4, alpha 8, target_modules "all-linear" (every projection of every layer)
  tiny-bert:  r 4, alpha 6, rsLoRA, target_modules query,key,value,dense (PEFT's `dense`
              also takes the pooler's)

1. the head is set as in gen-rm-goldens.py (drawn from N(0, 1/(hidden+1)); BERT's
   classifier bias is 0 and frozen, as rmtk's head has none);
2. the adapter as initialised is saved with `save_pretrained` to
   tests/golden/lora-<name>-init/ (adapter_config.json, adapter_model.safetensors): rmtk
   loads that folder on the fixture, which is also the test that rmtk reads what PEFT
   writes;
3. the batch, loss, clipping and two AdamW steps are gen-rm-goldens.py's (3 pairs with
   margins, centring 0.01, lr 1e-3, weight decay 0.1 by transformers' rule, clipping at
   half the first gradient norm).

Writes tests/golden/lora-<name>.json (config, batch, hyper-parameters, rewards, loss and
grad norm per step) and tests/golden/lora-<name>.safetensors: every trained parameter's
gradient at step 1 (`step1/<key>.grad`, before clipping) and its value after each step
(`step1/<key>`, `step2/<key>`), keys as rmtk names them (PEFT's saved keys without
`base_model.model.`), PyTorch layout, f32.

Run with the reference venv (scripts/setup-ref-venv.sh):

    .venv-ref/bin/python scripts/gen-lora-goldens.py

`cargo test --test it rm_lora_reference` compares rmtk with them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()

import numpy as np  # noqa: E402
import peft  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, TaskType, get_peft_model  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import BertForSequenceClassification, LlamaForSequenceClassification  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
GOLDEN = REPO / "tests" / "golden"
SEED = 20251203
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


def rmtk_name(peft_name: str) -> str:
    """`base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight` ->
    `model.layers.0.self_attn.q_proj.lora_A.weight`; the head's wrapper infix goes too."""
    name = peft_name.removeprefix("base_model.model.")
    name = name.replace(".modules_to_save.default.", ".").replace(".default.", ".")
    return name


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


def run(name: str, model, lora: LoraConfig, batch: dict, head: str) -> None:
    model = get_peft_model(model, lora)
    if head == "classifier":
        # rmtk's head has no bias: PEFT's copy of it keeps a frozen zero.
        model.base_model.model.classifier.modules_to_save["default"].bias.requires_grad_(False)
    model.eval()  # dropout off; no other layer behaves differently
    init_dir = GOLDEN / f"lora-{name}-init"
    shutil.rmtree(init_dir, ignore_errors=True)
    model.save_pretrained(init_dir)
    # The folder names the fixture by this machine's path; the test gives rmtk the base.
    cfg_path = init_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = f"tests/fixtures/{name}"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    (init_dir / "README.md").unlink(missing_ok=True)

    params = [(rmtk_name(n), p) for n, p in model.named_parameters() if p.requires_grad]
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
        if step == 1:
            for n, p in params:
                tensors[f"step1/{n}.grad"] = p.grad.detach().clone().contiguous()
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
    golden = {
        "model": name,
        "generated_by": "scripts/gen-lora-goldens.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "lora": {
            "r": lora.r,
            "alpha": lora.lora_alpha,
            "rslora": lora.use_rslora,
            "target_modules": lora.target_modules if isinstance(lora.target_modules, str) else sorted(lora.target_modules),
        },
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
        **out,
    }
    GOLDEN.mkdir(parents=True, exist_ok=True)
    (GOLDEN / f"lora-{name}.json").write_text(json.dumps(golden, indent=1) + "\n")
    save_file(tensors, GOLDEN / f"lora-{name}.safetensors")
    print(
        f"{name}: {len(params)} trained tensors, loss {out['step1']['loss']:.6f}, "
        f"grad norm {out['step1']['grad_norm']:.6f} (clipped at {max_norm:.6f})"
    )


def tiny_llama() -> None:
    model = LlamaForSequenceClassification.from_pretrained(
        FIXTURES / "tiny-llama", num_labels=1, dtype=torch.float32, attn_implementation="eager"
    )
    model.config.pad_token_id = 0
    head = head_values(model.config.hidden_size, SEED)
    with torch.no_grad():
        model.score.weight.copy_(torch.tensor([head]))
    gen = np.random.default_rng(SEED + 1)
    vocab = model.config.vocab_size
    seq = lambda n: [int(v) for v in gen.integers(3, vocab, size=n)]  # noqa: E731  (no 0 = pad)
    batch = {"chosen": [seq(9), seq(4), seq(7)], "rejected": [seq(6), seq(8), seq(3)]}
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules="all-linear",
        init_lora_weights=False,
    )
    run("tiny-llama", model, lora, batch, "score")


def tiny_bert() -> None:
    model = BertForSequenceClassification.from_pretrained(
        FIXTURES / "tiny-bert", num_labels=1, dtype=torch.float32, attn_implementation="eager"
    )
    head = head_values(model.config.hidden_size, SEED + 2)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor([head]))
        model.classifier.bias.zero_()
    gen = np.random.default_rng(SEED + 3)
    vocab = model.config.vocab_size

    def pair(n_prompt: int, n_response: int):
        ids = [2] + [int(v) for v in gen.integers(4, vocab, size=n_prompt)] + [3]
        types = [0] * len(ids)
        resp = [int(v) for v in gen.integers(4, vocab, size=n_response)] + [3]
        return ids + resp, types + [1] * len(resp)

    rows = [pair(3, 4), pair(2, 2), pair(4, 5), pair(3, 2), pair(2, 6), pair(4, 1)]
    batch = {
        "chosen": [r[0] for r in rows[:3]],
        "chosen_types": [r[1] for r in rows[:3]],
        "rejected": [r[0] for r in rows[3:]],
        "rejected_types": [r[1] for r in rows[3:]],
    }
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=4,
        lora_alpha=6,
        lora_dropout=0.0,
        use_rslora=True,
        target_modules=["query", "key", "value", "dense"],
        init_lora_weights=False,
    )
    run("tiny-bert", model, lora, batch, "classifier")


def main() -> None:
    torch.manual_seed(SEED)
    tiny_llama()
    tiny_bert()


if __name__ == "__main__":
    main()
