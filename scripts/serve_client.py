#!/usr/bin/env python3
"""Load and throughput clients for `rmtk serve` (Python's standard library only), used by
scripts/serve-load.sh and scripts/bench-serve.sh.

    serve_client.py load  --base-url URL --model NAME [--requests 200] [--concurrency 32]
                          [--max-tokens 16] [--queue-bound 40] [--beyond 20]
    serve_client.py bench --base-url URL --model NAME --prompts FILE [--levels 1,8,16,32]
                          [--max-tokens 64]

load: REQUESTS completions at CONCURRENCY, each with its own prompt sent as token ids; every
answer must come back once, with its own prompt's ids (`prompt_token_ids`), a unique id and
MAX_TOKENS tokens (or a stop): none lost, none duplicated. Prints p50/p99 latency and
tokens/s. Then QUEUE_BOUND long requests fill the server's --max-queued-requests, and BEYOND more,
sent one at a time, must each get 503 within 100 ms.
bench: the chat prompts of FILE (JSONL, `prompt` as text) at each concurrency level, greedy,
MAX_TOKENS new tokens each; prints generated tokens/s per level (one JSON line each).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request


def post(url: str, body: dict, timeout: float = 600.0) -> tuple[int, dict, float]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            answer = json.loads(r.read())
            return r.status, answer, time.perf_counter() - t0
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {"raw": text.decode(errors="replace")}
        return e.code, answer, time.perf_counter() - t0


def run_pool(jobs: list, concurrency: int, work) -> list:
    results = [None] * len(jobs)
    nxt = [0]
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(jobs):
                return
            results[i] = work(jobs[i])

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def load(args) -> int:
    url = args.base_url.rstrip("/") + "/completions"
    # Request i's prompt: 12 token ids below --vocab that no other request has.
    v = args.vocab - 3
    prompts = [[3 + (i * 7 + k * 13) % v for k in range(10)] + [3 + i % v, 3 + i // v]
               for i in range(args.requests)]

    def one(i: int):
        return post(url, {"model": args.model, "prompt": prompts[i], "max_tokens": args.max_tokens,
                          "temperature": 0, "return_token_ids": True})

    t0 = time.perf_counter()
    results = run_pool(list(range(args.requests)), args.concurrency, one)
    wall = time.perf_counter() - t0
    failures = []
    ids = set()
    tokens = 0
    for i, (status, answer, _) in enumerate(results):
        if status != 200:
            failures.append(f"request {i}: HTTP {status}: {answer}")
            continue
        if answer.get("prompt_token_ids") != prompts[i]:
            failures.append(f"request {i}: got the answer of another prompt")
        if answer["id"] in ids:
            failures.append(f"request {i}: duplicate id {answer['id']}")
        ids.add(answer["id"])
        c = answer["choices"][0]
        n = len(c["token_ids"])
        tokens += n
        if n != args.max_tokens and c["finish_reason"] != "stop":
            failures.append(f"request {i}: {n} tokens, finish {c['finish_reason']}")
    lat = [r[2] for r in results if r[0] == 200]
    print(json.dumps({"requests": args.requests, "concurrency": args.concurrency, "ok": len(lat),
                      "unique_answers": len(ids), "p50_s": round(pct(lat, 50), 3),
                      "p99_s": round(pct(lat, 99), 3), "tokens": tokens,
                      "tokens_per_s": round(tokens / wall, 1), "wall_s": round(wall, 2)}))
    for f in failures[:10]:
        print("FAIL", f)
    # The queue bound: with the server holding --max-queued-requests long requests, each
    # request beyond it is refused at once (timed one at a time, so that the client's own
    # threads do not add to what is measured).
    holders = [threading.Thread(target=lambda i=i: held.append(
        post(url, {"model": args.model, "prompt": prompts[i % len(prompts)],
                   "max_tokens": args.hold_tokens, "temperature": 0, "ignore_eos": True})))
        for i in range(args.queue_bound)]
    held: list = []
    for t in holders:
        t.start()
    time.sleep(0.5)
    refused = [post(url, {"model": args.model, "prompt": prompts[0], "max_tokens": 4})
               for _ in range(args.beyond)]
    for t in holders:
        t.join()
    ok_held = [r for r in held if r[0] == 200]
    slow = [r[2] for r in refused if r[2] >= 0.1]
    not_503 = [r[0] for r in refused if r[0] != 503]
    lat = sorted(r[2] for r in refused)
    print(json.dumps({"held": args.queue_bound, "held_ok": len(ok_held), "beyond": args.beyond,
                      "refused_503": args.beyond - len(not_503),
                      "refusal_p50_ms": round(1000 * pct(lat, 50), 1),
                      "refusal_max_ms": round(1000 * lat[-1], 1)}))
    if not_503:
        failures.append(f"beyond the queue bound: answers {not_503[:5]}, not 503")
    if slow:
        failures.append(f"{len(slow)} refusals took 100 ms or more (slowest {max(slow):.3f} s)")
    if len(ok_held) != args.queue_bound:
        failures.append(f"{args.queue_bound - len(ok_held)} of the held requests failed")
    for f in failures[:10]:
        print("FAIL", f)
    print("serve-load:", "FAILED" if failures else "ok: none lost, none duplicated, 503 at once beyond the queue")
    return 1 if failures else 0


def bench(args) -> int:
    url = args.base_url.rstrip("/") + "/chat/completions"
    with open(args.prompts) as f:
        prompts = [json.loads(line)["prompt"] for line in f if line.strip()]

    def one(p: str):
        return post(url, {"model": args.model, "messages": [{"role": "user", "content": p}],
                          "max_tokens": args.max_tokens, "temperature": 0})

    one(prompts[0])  # warm-up
    for level in [int(x) for x in args.levels.split(",")]:
        t0 = time.perf_counter()
        results = run_pool(prompts, level, one)
        wall = time.perf_counter() - t0
        bad = [r for r in results if r[0] != 200]
        if bad:
            print(f"FAIL concurrency {level}: {bad[0]}")
            return 1
        tokens = sum(r[1]["usage"]["completion_tokens"] for r in results)
        lat = [r[2] for r in results]
        print(json.dumps({"concurrency": level, "requests": len(results), "tokens": tokens,
                          "wall_s": round(wall, 2), "tokens_per_s": round(tokens / wall, 1),
                          "p50_s": round(pct(lat, 50), 2)}))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    lo = sub.add_parser("load")
    be = sub.add_parser("bench")
    for p in (lo, be):
        p.add_argument("--base-url", required=True)
        p.add_argument("--model", required=True)
    lo.add_argument("--requests", type=int, default=200)
    lo.add_argument("--concurrency", type=int, default=32)
    lo.add_argument("--max-tokens", type=int, default=16)
    lo.add_argument("--queue-bound", type=int, default=40,
                    help="the server's --max-queued-requests: this many long requests fill it")
    lo.add_argument("--beyond", type=int, default=20, help="requests sent beyond the bound")
    lo.add_argument("--hold-tokens", type=int, default=64, help="tokens each holding request decodes")
    lo.add_argument("--vocab", type=int, default=4096, help="prompt token ids stay below it")
    be.add_argument("--prompts", required=True)
    be.add_argument("--levels", default="1,8,16,32")
    be.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()
    return load(args) if args.mode == "load" else bench(args)


if __name__ == "__main__":
    sys.exit(main())
