#!/usr/bin/env python3
"""Golden values on the two real models, computed by transformers (float32, CPU).

Needs the models built by scripts/fetch-models.sh; writes tests/golden/real-models.json:
  smollm2  models/smollm2-135m-instruct: ids of a fixed English paragraph (no BOS: the
           tokenizer adds none), its teacher-forced mean NLL, the last position's logits
           (first 16 and argmax); the ChatML rendering of one user turn with
           add_generation_prompt (string and ids) and its greedy continuation (20 new tokens,
           once stopping at <|im_end|>, once ignoring EOS).
  minilm   models/all-minilm-l6-v2: ids of 3 sentences, their mask-weighted mean-pooled
           embeddings (not normalised) and the L2-normalised ones.

Usage (python3 = the reference venv: torch, transformers, tokenizers, jinja2; see
scripts/setup-ref-venv.sh):

    scripts/fetch-models.sh
    .venv-ref/bin/python scripts/gen-real-goldens.py
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import torch
import transformers
from tokenizers import Tokenizer
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

REPO = Path(__file__).resolve().parent.parent
SMOL = REPO / "models" / "smollm2-135m-instruct"
MINILM = REPO / "models" / "all-minilm-l6-v2"
OUT = REPO / "tests" / "golden" / "real-models.json"

torch.set_num_threads(min(2, os.cpu_count() or 1))
hf_logging.disable_progress_bar()

PARAGRAPH = (
    "The history of the bicycle is a story of small improvements. In 1817, Karl Drais rode a "
    "wooden 'running machine' with no pedals; it weighed about 22 kg and could cover 13 km in "
    "an hour. Pedals fixed to the front wheel arrived in the 1860s, and the high-wheeler soon "
    "followed, fast but dangerous. The safety bicycle of 1885, with a chain driving the rear "
    "wheel and two wheels of equal size, settled the basic shape that most riders still use "
    "today. Air-filled tyres, patented in 1888, made the ride comfortable."
)
CHAT = [{"role": "user", "content": "What is the capital of France?"}]
SENTENCES = [
    "A man is playing a guitar on the street.",
    "The new movie is awesome, I loved the soundtrack!",
    "Quantum computers use qubits, which can be 0 and 1 at once.",
]


def r8(x: float) -> float:
    return float(f"{x:.8g}")


def need(folder: Path) -> None:
    if not (folder / "model.safetensors").is_file():
        sys.exit(f"error: {folder} missing; run scripts/fetch-models.sh first")


@torch.no_grad()
def smollm2() -> dict:
    need(SMOL)
    tok = AutoTokenizer.from_pretrained(SMOL)
    raw = Tokenizer.from_file(str(SMOL / "tokenizer.json"))
    model = AutoModelForCausalLM.from_pretrained(SMOL, dtype=torch.float32).eval()

    ids = tok(PARAGRAPH)["input_ids"]
    assert ids == raw.encode(PARAGRAPH).ids, "transformers and tokenizers.json disagree on the paragraph"
    assert ids[0] not in tok.all_special_ids, "a special token was added"
    logits = model(torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    nll = -logp[:-1].gather(1, torch.tensor(ids[1:])[:, None]).mean().item()
    last = logits[-1]
    print(f"smollm2: paragraph {len(ids)} tokens, mean NLL {nll:.4f}, last argmax {last.argmax().item()} "
          f"({tok.decode([last.argmax().item()])!r})")

    prompt = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    prompt_ids = tok(prompt)["input_ids"]
    assert prompt_ids == raw.encode(prompt).ids
    templated = tok.apply_chat_template(CHAT, tokenize=True, add_generation_prompt=True)
    templated = templated["input_ids"] if isinstance(templated, dict) or hasattr(templated, "keys") else templated
    assert list(templated) == prompt_ids, "apply_chat_template(tokenize=True) differs from tokenizing the string"
    x = torch.tensor([prompt_ids])

    def greedy(stop: bool) -> list[int]:
        out = model.generate(
            x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=20,
            min_new_tokens=0 if stop else 20,
            do_sample=False,
            eos_token_id=tok.eos_token_id if stop else None,
            pad_token_id=tok.pad_token_id,
        )
        return out[0, x.shape[1]:].tolist()

    stop_ids, free_ids = greedy(True), greedy(False)
    # The same greedy path without the KV cache: one full forward per step.
    seq = list(prompt_ids)
    for _ in range(20):
        seq.append(model(torch.tensor([seq]), use_cache=False).logits[0, -1].argmax().item())
    assert seq[len(prompt_ids):] == free_ids, "cached and uncached greedy decoding differ"
    assert stop_ids == free_ids[: len(stop_ids)]
    text = tok.decode(stop_ids, skip_special_tokens=True)
    print(f"smollm2: greedy answer {text!r} ({len(stop_ids)} tokens); 20 without stop: "
          f"{tok.decode(free_ids, skip_special_tokens=False)!r}")
    assert text.startswith("The capital of France is Paris."), text

    return {
        "model_dir": "models/smollm2-135m-instruct",
        "computed_in": "float32",
        "paragraph": {
            "text": PARAGRAPH,
            "ids": ids,
            "n_tokens": len(ids),
            "teacher_forced_mean_nll": r8(nll),
            "nll_definition": "mean over t in 0..n-2 of -log_softmax(logits[t])[ids[t+1]]; no BOS prepended",
            "last_logits_first16": [r8(v) for v in last[:16].tolist()],
            "last_logits_argmax": int(last.argmax().item()),
            "last_logits_max": r8(last.max().item()),
        },
        "chat": {
            "messages": CHAT,
            "add_generation_prompt": True,
            "rendered": prompt,
            "ids": prompt_ids,
            "greedy": {
                "max_new_tokens": 20,
                "stop_at_eos": {"eos_token_id": tok.eos_token_id, "ids": stop_ids,
                                "text": tok.decode(stop_ids, skip_special_tokens=False),
                                "text_skip_special": text},
                "ignore_eos": {"ids": free_ids, "text": tok.decode(free_ids, skip_special_tokens=False)},
            },
        },
    }


@torch.no_grad()
def minilm() -> dict:
    need(MINILM)
    tok = AutoTokenizer.from_pretrained(MINILM)
    model = AutoModel.from_pretrained(MINILM, dtype=torch.float32).eval()
    enc = tok(SENTENCES, padding=True, return_tensors="pt")
    h = model(**enc).last_hidden_state
    m = enc["attention_mask"][..., None].float()
    mean = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    normed = torch.nn.functional.normalize(mean, p=2, dim=1)

    rows = []
    for i, s in enumerate(SENTENCES):
        n = int(enc["attention_mask"][i].sum())
        ids = enc["input_ids"][i, :n].tolist()
        assert ids == tok(s)["input_ids"]
        rows.append(
            {
                "text": s,
                "ids": ids,
                "token_type_ids": enc["token_type_ids"][i, :n].tolist(),
                "mean_pooled": [r8(v) for v in mean[i].tolist()],
                "mean_pooled_l2_normalized": [r8(v) for v in normed[i].tolist()],
            }
        )
    cos = (normed @ normed.T).tolist()
    print(f"minilm: ids lengths {[len(r['ids']) for r in rows]}, cosine(0,1) {cos[0][1]:.4f}, (0,2) {cos[0][2]:.4f}")

    # Cross-check with sentence-transformers (the model's own pipeline), when installed.
    st_check = None
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        pass
    else:
        st = SentenceTransformer(str(MINILM), device="cpu")
        ref = torch.tensor(st.encode(SENTENCES, convert_to_numpy=True))
        st_check = float((ref - normed).abs().max())
        print(f"minilm: sentence-transformers encode() vs ours: max abs diff {st_check:.3g}")
        assert st_check < 1e-5
    return {
        "model_dir": "models/all-minilm-l6-v2",
        "computed_in": "float32",
        "pooling": "mean over attention_mask==1 positions (sum(h*mask)/sum(mask)); then L2-normalised",
        "note": "ids are unpadded; the shipped tokenizer.json enables padding (Fixed 128) and truncation (128), "
                "which transformers overrides per call but the tokenizers crate applies",
        "sentences": rows,
        "cosine_similarity_normalized": [[r8(v) for v in row] for row in cos],
        "sentence_transformers_max_abs_diff": st_check,
    }


def dump(obj) -> str:
    """Indented JSON with lists of numbers kept on one line."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    return re.sub(r"\[\s+([-0-9.eE,\s]+?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)


def main() -> None:
    import safetensors
    import tokenizers

    golden = {
        "generated_by": "scripts/gen-real-goldens.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "safetensors": safetensors.__version__},
        "smollm2": smollm2(),
        "minilm": minilm(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(dump(golden) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
