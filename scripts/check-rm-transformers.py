#!/usr/bin/env python3
"""Check that transformers gives the rewards `rmtk score` gave, for a reward model rmtk saved.

    rmtk score --model RM --input ROWS --output SCORED.parquet
    .venv-ref/bin/python scripts/check-rm-transformers.py RM ROWS SCORED.parquet [--tol 1e-4]

RM is a folder written by `rmtk train-rm`. The script loads it with
`AutoModelForSequenceClassification` and `AutoTokenizer` (float32, eager attention), or,
for a LoRA adapter folder (`--lora-r`), the base named in its adapter_config.json with
PEFT's `PeftModel.from_pretrained` on top (peft, in the reference venv),
builds each row's sequence with transformers alone, following the rule recorded in
`rmtk_reward_model.json`:
  decoders  messages: tokenizer.apply_chat_template(prompt + response, tokenize=True)
            text:     tokenizer(prompt + response + eos)   (eos unless already there)
  encoders  tokenizer(prompt_text, response_text, truncation=True, max_length=N)
            (messages as plain text: one message is its content, several are
            `role: content` lines)
then scores the rows in padded batches (right padding with the config's pad_token_id, as
rmtk does) and compares with the `reward` column of SCORED. Exits 1 if a reward differs by
more than --tol (default 1e-4) or the folder is not a one-label sequence classifier.
Reading parquet needs pyarrow (in the reference venv, scripts/requirements/ref.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("rows", type=Path)
    ap.add_argument("scored", type=Path)
    ap.add_argument("--prompt-column", default="prompt")
    ap.add_argument("--response-column", default="response")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--tol", type=float, default=1e-4)
    return ap.parse_args(argv)


# The arguments first: --help (and a usage error) need no torch.
ARGS = parse_args() if __name__ == "__main__" else None

import torch  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()


def read_rows(path: Path) -> list[dict]:
    if path.suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plain(value) -> str:
    if isinstance(value, str):
        return value
    if len(value) == 1:
        return value[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in value)


def messages(value, role: str) -> list[dict]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return [{"role": m["role"], "content": m["content"]} for m in value]


def encode(tok, spec: dict, prompt, response) -> tuple[list[int], list[int] | None]:
    max_len = spec["max_length"]
    if spec["style"] == "encoder":
        p = plain(prompt) if prompt is not None else ""
        r = plain(response)
        if p:
            enc = tok(p, r, truncation=True, max_length=max_len)
        else:
            enc = tok(r, truncation=True, max_length=max_len)
        return enc["input_ids"], enc.get("token_type_ids")
    chat = not isinstance(response, str) or (prompt is not None and not isinstance(prompt, str))
    if chat and spec["chat_template"]:
        msgs = (messages(prompt, "user") if prompt is not None else []) + messages(response, "assistant")
        ids = tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]
    else:
        text = (plain(prompt) if prompt is not None else "") + plain(response)
        if tok.eos_token and not text.endswith(tok.eos_token):
            text += tok.eos_token
        ids = tok(text)["input_ids"]
    return ids[:max_len], None


def main() -> int:
    args = ARGS or parse_args()

    spec = json.loads((args.model / "rmtk_reward_model.json").read_text())["sequences"]
    adapter = args.model / "adapter_config.json"
    if adapter.is_file():
        # A LoRA adapter folder (`train-rm --lora-r`): PEFT loads it on its base.
        from peft import PeftModel

        base = json.loads(adapter.read_text())["base_model_name_or_path"]
        config = json.loads((Path(base) / "config.json").read_text())
        arch = "PeftModel on " + base
        tok = AutoTokenizer.from_pretrained(args.model)
        backbone = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=1, dtype=torch.float32, attn_implementation="eager"
        )
        backbone.config.pad_token_id = json.loads((args.model / "rmtk_reward_model.json").read_text())["pad_token_id"]
        model = PeftModel.from_pretrained(backbone, args.model).eval()
    else:
        config = json.loads((args.model / "config.json").read_text())
        arch = config["architectures"][0]
        if not arch.endswith("ForSequenceClassification") or config.get("num_labels", len(config.get("id2label", {}))) != 1:
            print(f"{args.model}: not a one-label sequence classifier ({arch})", file=sys.stderr)
            return 1
        tok = AutoTokenizer.from_pretrained(args.model)
        model = AutoModelForSequenceClassification.from_pretrained(
            args.model, dtype=torch.float32, attn_implementation="eager"
        ).eval()
    pad = model.config.pad_token_id
    rows = read_rows(args.rows)
    scored = read_rows(args.scored)
    assert len(rows) == len(scored), "the scored file has a different number of rows"
    encoded = [
        encode(tok, spec, r.get(args.prompt_column) if args.prompt_column in r else None, r[args.response_column])
        for r in rows
    ]
    rewards: list[float] = []
    with torch.no_grad():
        for start in range(0, len(encoded), args.batch_size):
            chunk = encoded[start : start + args.batch_size]
            n = max(len(ids) for ids, _ in chunk)
            ids = torch.full((len(chunk), n), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), n), dtype=torch.long)
            types = torch.zeros((len(chunk), n), dtype=torch.long)
            for i, (seq, tt) in enumerate(chunk):
                ids[i, : len(seq)] = torch.tensor(seq)
                mask[i, : len(seq)] = 1
                if tt is not None:
                    types[i, : len(tt)] = torch.tensor(tt)
            inputs = {"input_ids": ids, "attention_mask": mask}
            if spec["style"] == "encoder":
                inputs["token_type_ids"] = types
            rewards.extend(model(**inputs).logits.squeeze(-1).tolist())
    diffs = [abs(a - float(s["reward"])) for a, s in zip(rewards, scored)]
    worst = max(range(len(diffs)), key=diffs.__getitem__)
    print(
        f"{args.model} ({arch}): {len(rows)} rows, max |transformers - rmtk| = {diffs[worst]:.3g} "
        f"(row {worst}: {rewards[worst]:.6f} vs {float(scored[worst]['reward']):.6f}), "
        f"mean {sum(diffs) / len(diffs):.3g}, tolerance {args.tol:g}"
    )
    return 0 if diffs[worst] <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
