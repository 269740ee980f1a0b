#!/usr/bin/env python3
"""Tiny random checkpoints in Hugging Face layout, and golden outputs computed by transformers.

Writes (and overwrites) tests/fixtures/<name>/ for
  tiny-llama  LlamaForCausalLM, GQA, llama3 RoPE scaling, untied lm_head; weights bf16,
              one model.safetensors
  tiny-qwen2  Qwen2ForCausalLM, q/k/v biases, tied embeddings; weights f32, sharded into
              3 files + model.safetensors.index.json
  tiny-bert   BertModel (sentence-transformers MiniLM layout, un-prefixed keys); weights f16
each with config.json (classic HF key names: rope_theta / rope_scaling / torch_dtype, as
transformers 4.x wrote them; transformers 5 would write rope_parameters / dtype), the weights,
and golden.json. Goldens are computed by transformers in float32 from the *stored* weights
(loaded back from the fixture folder and upcast), with eager attention.

Usage (python3 = the reference venv: torch, transformers, safetensors; see
scripts/setup-ref-venv.sh):

    .venv-ref/bin/python scripts/gen-tiny-goldens.py

Deterministic: everything is seeded; re-running reproduces the same files with the same
library versions (recorded in each golden.json).
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import torch
import transformers
from transformers import (
    BertConfig,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from transformers.utils import logging as hf_logging

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SEED = 20240611
TOL = 1e-5

torch.set_num_threads(min(2, os.cpu_count() or 1))
hf_logging.disable_progress_bar()


def r8(x: float) -> float:
    """8 significant digits: plenty for f32 goldens compared at ~1e-4, and keeps files small."""
    return float(f"{x:.8g}")


def floats(t: torch.Tensor):
    if t.dim() == 0:
        return r8(t.item())
    return [floats(s) for s in t] if t.dim() > 1 else [r8(v) for v in t.tolist()]


def versions() -> dict:
    import safetensors

    return {"torch": torch.__version__, "transformers": transformers.__version__, "safetensors": safetensors.__version__}


# --------------------------------------------------------------------------------------------
# weights


@torch.no_grad()
def perturb(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Move every tensor away from its default init, so a wrong or missing tensor shows:
    norm weights around 1 but not 1, biases non-zero, matrices ~ 1/sqrt(fan_in)."""
    for name, p in model.named_parameters():
        if p.dim() == 1 and ("norm" in name.lower() or "LayerNorm" in name) and name.endswith("weight"):
            p.copy_(torch.empty_like(p).uniform_(0.6, 1.4, generator=gen))
        elif p.dim() == 1:  # biases (including LayerNorm bias)
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        elif "embed" in name or "embeddings" in name:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        else:  # Linear weight (out, in)
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))


def save(model, out: Path, dtype: torch.dtype, config: dict, max_shard_size=None) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.to(dtype).save_pretrained(out, **kwargs)
    # transformers 5 writes `rope_parameters` / `dtype`; we want the classic config.json.
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for extra in ("generation_config.json",):
        (out / extra).unlink(missing_ok=True)


def load(cls, out: Path):
    model, info = cls.from_pretrained(out, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        sys.exit(f"error: loading {out.name} back: {bad}")
    return model.eval()


def stored_dtypes(out: Path) -> dict:
    from safetensors import safe_open

    dtypes, keys = set(), []
    for f in sorted(out.glob("*.safetensors")):
        with safe_open(str(f), "pt") as st:
            for k in st.keys():
                dtypes.add(str(st.get_slice(k).get_dtype()))
                keys.append(k)
    return {"dtypes": sorted(dtypes), "keys": sorted(keys)}


# --------------------------------------------------------------------------------------------
# decoder goldens


def rows_for(gen: torch.Generator, vocab: int, lengths=(9, 5, 7)) -> list[list[int]]:
    return [torch.randint(0, vocab, (n,), generator=gen).tolist() for n in lengths]


@torch.no_grad()
def decoder_golden(model, rows: list[list[int]], pad_id: int = 0) -> dict:
    per_row = []
    for ids in rows:
        x = torch.tensor([ids])
        logits = model(input_ids=x).logits[0].float()  # (L, V)
        logp = torch.log_softmax(logits, dim=-1)
        nxt = logp[:-1].gather(1, x[0, 1:, None])[:, 0]  # log p(ids[t+1] | ids[..t])
        per_row.append(
            {
                "ids": ids,
                "logits": floats(logits),
                "next_token_logprobs": floats(nxt),
                "mean_nll": r8(-nxt.mean().item()),
            }
        )

    # The same rows, left-padded, with attention_mask and per-row positions cumsum(mask)-1.
    n = max(map(len, rows))
    input_ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, ids in enumerate(rows):
        input_ids[i, n - len(ids):] = torch.tensor(ids)
        mask[i, n - len(ids):] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    batch = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids).logits.float()
    worst = 0.0
    for i, ids in enumerate(rows):
        single = model(input_ids=torch.tensor([ids])).logits[0].float()
        worst = max(worst, (batch[i, n - len(ids):] - single).abs().max().item())
    assert worst <= TOL, f"left-padded batch differs from per-row logits by {worst:g} > {TOL}"
    print(f"    left-padded batch vs per-row logits: max abs diff {worst:.3g} (<= {TOL})")
    return {
        "rows": rows,
        "per_row": per_row,
        "left_padded_batch": {
            "pad_id": pad_id,
            "input_ids": input_ids.tolist(),
            "attention_mask": mask.tolist(),
            "position_ids": position_ids.tolist(),
            "max_abs_diff_vs_per_row": float(f"{worst:.3g}"),
        },
    }


def write_golden(out: Path, golden: dict) -> None:
    text = json.dumps(golden, separators=(",", ":")) + "\n"
    (out / "golden.json").write_text(text)


# --------------------------------------------------------------------------------------------


def tiny_llama(gen: torch.Generator) -> None:
    name = "tiny-llama"
    out = FIXTURES / name
    rope_scaling = {
        "factor": 8.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        # With head_dim 16 and theta 5e5 the shortest RoPE wavelength is 2*pi ~ 6.28, so
        # high-frequency dims (wavelength < original_max / high_freq_factor) need original_max
        # > 25.1: 16 would give none. 64 gives one dim in each branch at least (printed below).
        "original_max_position_embeddings": 64,
        "rope_type": "llama3",
    }
    config = {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": 16,
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 160,
        "max_position_embeddings": 512,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": rope_scaling,
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": 256,
    }
    print(f"[{name}]")
    model = LlamaForCausalLM(LlamaConfig(**copy.deepcopy(config)))
    perturb(model, gen)
    save(model, out, torch.bfloat16, config)
    model = load(LlamaForCausalLM, out)
    rp = model.config.rope_parameters
    assert rp["rope_type"] == "llama3" and rp["rope_theta"] == 500000.0 and rp["original_max_position_embeddings"] == 64, rp

    # Which inverse frequencies fall in which llama3 branch.
    head_dim = config["head_dim"]
    base_inv = 1.0 / (config["rope_theta"] ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    wavelen = 2 * math.pi / base_inv
    orig = rope_scaling["original_max_position_embeddings"]
    hi_wl, lo_wl = orig / rope_scaling["high_freq_factor"], orig / rope_scaling["low_freq_factor"]
    inv = model.model.rotary_emb.inv_freq.float()
    branches = []
    for i, (wl, b, s) in enumerate(zip(wavelen.tolist(), base_inv.tolist(), inv.tolist())):
        br = "high (kept)" if wl < hi_wl else "low (/factor)" if wl > lo_wl else "mid (smoothed)"
        branches.append({"pair": i, "dims": [i, i + head_dim // 2], "wavelength": r8(wl), "branch": br.split()[0],
                         "inv_freq_unscaled": r8(b), "inv_freq": r8(s)})
        print(f"    rope pair {i} (dims {i},{i + head_dim // 2}): wavelength {wl:10.2f}  {br:15s} inv_freq {b:.6g} -> {s:.6g}")
    assert {b["branch"] for b in branches} == {"high", "mid", "low"}, "not all llama3 branches occur"
    info = stored_dtypes(out)
    assert info["dtypes"] == ["BF16"] and "lm_head.weight" in info["keys"], info
    rows = rows_for(gen, config["vocab_size"])
    golden = {
        "model": name,
        "generated_by": "scripts/gen-tiny-goldens.py",
        "versions": versions(),
        "stored_dtype": "bfloat16",
        "computed_in": "float32 (stored weights upcast), eager attention",
        "rope_llama3": {"high_freq_wavelen": hi_wl, "low_freq_wavelen": lo_wl, "pairs": branches},
        **decoder_golden(model, rows),
    }
    write_golden(out, golden)


def tiny_qwen2(gen: torch.Generator) -> None:
    name = "tiny-qwen2"
    out = FIXTURES / name
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 128,
        "max_position_embeddings": 512,
        "max_window_layers": 2,
        "model_type": "qwen2",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": 256,
    }
    print(f"[{name}]")
    model = Qwen2ForCausalLM(Qwen2Config(**copy.deepcopy(config)))
    perturb(model, gen)
    save(model, out, torch.float32, config, max_shard_size="150KB")
    shards = sorted(p.name for p in out.glob("*.safetensors"))
    assert 2 <= len(shards) <= 3 and (out / "model.safetensors.index.json").is_file(), shards
    print(f"    shards: {shards}")
    model = load(Qwen2ForCausalLM, out)
    assert model.config.rope_parameters["rope_theta"] == 1e6
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "lm_head not tied"
    info = stored_dtypes(out)
    assert info["dtypes"] == ["F32"] and "lm_head.weight" not in info["keys"], info
    assert "model.layers.0.self_attn.q_proj.bias" in info["keys"]
    rows = rows_for(gen, config["vocab_size"])
    golden = {
        "model": name,
        "generated_by": "scripts/gen-tiny-goldens.py",
        "versions": versions(),
        "stored_dtype": "float32",
        "computed_in": "float32, eager attention",
        **decoder_golden(model, rows),
    }
    write_golden(out, golden)


def tiny_bert(gen: torch.Generator) -> None:
    name = "tiny-bert"
    out = FIXTURES / name
    config = {
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": 32,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 64,
        "model_type": "bert",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float16",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": 128,
    }
    print(f"[{name}]")
    model = BertModel(BertConfig(**copy.deepcopy(config)))
    perturb(model, gen)
    save(model, out, torch.float16, config)
    model = load(BertModel, out)
    info = stored_dtypes(out)
    assert info["dtypes"] == ["F16"], info
    prefixed = [k for k in info["keys"] if k.startswith("bert.")]
    print(f"    {len(info['keys'])} tensors; keys start with: {sorted({k.split('.')[0] for k in info['keys']})}"
          f" ({len(prefixed)} prefixed 'bert.')")

    cls_id, sep_id, pad_id = 2, 3, 0
    specs = [(5, 4), (3, 0), (4, 6)]  # (segment A length, segment B length); B gets token type 1
    rows, types = [], []
    for a, b in specs:
        seg_a = torch.randint(4, config["vocab_size"], (a,), generator=gen).tolist()
        seg_b = torch.randint(4, config["vocab_size"], (b,), generator=gen).tolist()
        ids = [cls_id] + seg_a + [sep_id] + (seg_b + [sep_id] if b else [])
        tt = [0] * (a + 2) + ([1] * (b + 1) if b else [])
        rows.append(ids)
        types.append(tt)

    n = max(map(len, rows))
    input_ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    token_type_ids = torch.zeros((len(rows), n), dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, (ids, tt) in enumerate(zip(rows, types)):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        token_type_ids[i, : len(tt)] = torch.tensor(tt)
        mask[i, : len(ids)] = 1
    with torch.no_grad():
        batch = model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=mask).last_hidden_state
        m = mask[..., None].float()
        mean_pooled = (batch * m).sum(1) / m.sum(1).clamp(min=1e-9)
        per_row, worst = [], 0.0
        for i, (ids, tt) in enumerate(zip(rows, types)):
            single = model(input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([tt])).last_hidden_state[0]
            worst = max(worst, (batch[i, : len(ids)] - single).abs().max().item())
            worst = max(worst, (mean_pooled[i] - single.mean(0)).abs().max().item())
            per_row.append(
                {
                    "ids": ids,
                    "token_type_ids": tt,
                    "last_hidden_state": floats(single),
                    "mean_pooled": floats(mean_pooled[i]),
                    "cls": floats(single[0]),
                }
            )
    assert worst <= TOL, f"padded batch differs from per-row results by {worst:g}"
    print(f"    right-padded batch vs per-row: max abs diff {worst:.3g} (<= {TOL})")
    golden = {
        "model": name,
        "generated_by": "scripts/gen-tiny-goldens.py",
        "versions": versions(),
        "stored_dtype": "float16",
        "computed_in": "float32 (stored weights upcast), eager attention",
        "special_ids": {"cls": cls_id, "sep": sep_id, "pad": pad_id},
        "pooling": "mean over attention_mask==1 positions (sum(h*mask)/sum(mask)), not normalised; cls = position 0",
        "rows": rows,
        "per_row": per_row,
        "right_padded_batch": {
            "input_ids": input_ids.tolist(),
            "token_type_ids": token_type_ids.tolist(),
            "attention_mask": mask.tolist(),
            "max_abs_diff_vs_per_row": float(f"{worst:.3g}"),
        },
    }
    write_golden(out, golden)


def main() -> None:
    torch.manual_seed(SEED)
    # One generator per fixture, so changing one fixture leaves the others unchanged.
    tiny_llama(torch.Generator().manual_seed(SEED + 1))
    tiny_qwen2(torch.Generator().manual_seed(SEED + 2))
    tiny_bert(torch.Generator().manual_seed(SEED + 3))
    total = 0
    for p in sorted(FIXTURES.rglob("*")):
        if p.is_file():
            total += p.stat().st_size
            print(f"  {p.relative_to(REPO)}  {p.stat().st_size / 1024:.1f} KiB")
    print(f"tests/fixtures total: {total / 1024:.1f} KiB")
    assert total < 2 * 1024 * 1024, "fixtures exceed 2 MB"


if __name__ == "__main__":
    main()
