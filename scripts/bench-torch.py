#!/usr/bin/env python3
"""PyTorch `transformers` counterpart of `cargo bench --bench backbone`: forward tokens/s
of a causal LM at batch x length (logits of every position), KV-cached greedy decode
tokens/s at batch 1 and 8, and `generate` on 16 left-padded prompts of 80-500 tokens
(prefill included), with the same shapes and the same pseudo-random ids.

Run with the reference venv (scripts/setup-ref-venv.sh):
  .venv-ref/bin/python scripts/bench-torch.py [--model DIR] [--batch 8] [--seq 512]
      [--device cpu|cuda] [--dtype f32|bf16] [--random-weights]
--random-weights builds the model from DIR's config.json alone (the GPU check's
Qwen2.5-0.5B shape; scripts/gpu-check.sh). Prints one JSON line per measurement.
"""
import argparse
import json
import time


def tokens(n, vocab, salt):
    x = 0x9E3779B97F4A7C15 ^ salt
    mask = (1 << 64) - 1
    out = []
    for _ in range(n):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        out.append(100 + x % (vocab - 100))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/smollm2-135m-instruct")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--no-chat", action="store_true", help="skip the 16-prompt generate run")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--random-weights", action="store_true",
                    help="random weights from the folder's config.json (seed 0)")
    a = ap.parse_args()
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if a.threads:
        torch.set_num_threads(a.threads)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    dev = torch.device(a.device)
    if a.random_weights:
        torch.manual_seed(0)
        with dev:  # initialised where it runs
            model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(a.model), dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype)
    model = model.to(dev).eval()
    vocab = model.config.vocab_size
    engine = f"torch-{torch.__version__.split('+')[0]}"
    tensor = lambda x: torch.tensor(x, device=dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    extra = {"dtype": a.dtype, "device": a.device, "threads": torch.get_num_threads()}
    with torch.inference_mode():
        ids = tensor(tokens(a.batch * a.seq, vocab, 1)).view(a.batch, a.seq)
        model(ids)
        sync()
        best = float("inf")
        for _ in range(a.reps):
            t = time.perf_counter()
            model(ids).logits
            sync()
            best = min(best, time.perf_counter() - t)
        print(json.dumps({"engine": engine, "what": "forward", "batch": a.batch, "seq": a.seq,
                          "tokens_per_s": round(a.batch * a.seq / best, 1), **extra}))
        for batch in (1, 8):
            best = float("inf")
            for rep in range(a.reps + 1):
                ids = tensor(tokens(batch * a.prompt, vocab, 7)).view(batch, a.prompt)
                out = model(ids, use_cache=True)
                past = out.past_key_values
                nxt = out.logits[:, -1:].argmax(-1)
                t = time.perf_counter()
                for _ in range(a.new):
                    out = model(nxt, past_key_values=past, use_cache=True)
                    past = out.past_key_values
                    nxt = out.logits[:, -1:].argmax(-1)
                    nxt.tolist()
                if rep > 0:
                    best = min(best, time.perf_counter() - t)
            print(json.dumps({"engine": engine, "what": "decode", "batch": batch, "prompt": a.prompt,
                              "new": a.new, "tokens_per_s": round(batch * a.new / best, 1), **extra}))
        if not a.no_chat:
            # 16 prompts of 80..500 tokens (benches/backbone.rs `chat_lengths`), left-padded as
            # transformers batches them, through `generate` with exactly `new` greedy tokens.
            lengths = [80 + i * 28 for i in range(16)]
            prompts = [tokens(n, vocab, 100 + i) for i, n in enumerate(lengths)]
            width = max(lengths)
            pad = model.config.pad_token_id
            if pad is None:
                pad = model.config.eos_token_id
            if isinstance(pad, list):
                pad = pad[0]
            ids = tensor([[pad] * (width - len(p)) + p for p in prompts])
            mask = tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
            best, prefill = float("inf"), 0.0
            for rep in range(a.reps + 1):
                t = time.perf_counter()
                model(ids, attention_mask=mask, use_cache=True)
                sync()
                pre = time.perf_counter() - t
                t = time.perf_counter()
                model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=a.new,
                               min_new_tokens=a.new, do_sample=False, top_p=None, top_k=None,
                               temperature=None, pad_token_id=pad)
                sync()
                dt = time.perf_counter() - t
                if rep > 0 and dt < best:
                    best, prefill = dt, pre
            print(json.dumps({"engine": engine, "what": "chat", "batch": 16, "prompt": "80-500",
                              "new": a.new, "tokens_per_s": round(16 * a.new / best, 1),
                              "prefill_s": round(prefill, 3), **extra}))


if __name__ == "__main__":
    main()
