#!/usr/bin/env python3
"""The official `openai` Python client against a running `rmtk serve` (SmolLM2): completions,
chat, streaming, log-probs, n with a seed, /v1/models and the errors its users catch
(BadRequestError, NotFoundError, AuthenticationError, APIStatusError 413).

    python3 scripts/check-openai-client.py --base-url http://127.0.0.1:8000/v1 --model smol
                                           [--api-key KEY]

Prints one line per check; exits 1 on the first failure. scripts/check-openai-client.sh
makes the venv, starts the server and runs this.
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--api-key", default="rmtk")
    args = ap.parse_args()

    import openai

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0)
    checks = 0

    def ok(what: str, cond: bool, detail: object = "") -> None:
        nonlocal checks
        if not cond:
            print(f"FAIL  {what}: {detail}")
            sys.exit(1)
        checks += 1
        print(f"ok    {what}")

    models = client.models.list()
    ok("models.list names the served model", args.model in [m.id for m in models.data], models)

    comp = client.completions.create(
        model=args.model, prompt="The capital of France is", max_tokens=8, temperature=0, logprobs=2
    )
    choice = comp.choices[0]
    ok("completions.create: text", isinstance(choice.text, str) and len(choice.text) > 0, comp)
    ok("completions.create: usage", comp.usage.completion_tokens == 8, comp.usage)
    lp = choice.logprobs
    ok(
        "completions.create: logprobs",
        len(lp.tokens) == 8 and len(lp.token_logprobs) == 8 and all(x <= 0 for x in lp.token_logprobs)
        and len(lp.top_logprobs[0]) == 2,
        lp,
    )

    chat = client.chat.completions.create(
        model=args.model,
        messages=[{"role": "user", "content": "Say hello in French."}],
        max_tokens=12,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
    )
    msg = chat.choices[0].message
    ok("chat.completions.create: assistant message", msg.role == "assistant" and msg.content, chat)
    content = chat.choices[0].logprobs.content
    ok("chat.completions.create: logprobs", len(content) == chat.usage.completion_tokens
       and len(content[0].top_logprobs) == 3, content[:1])

    stream = client.chat.completions.create(
        model=args.model,
        messages=[{"role": "user", "content": "Say hello in French."}],
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    ok("streaming chat: the same text as the whole answer", "".join(pieces) == msg.content,
       ("".join(pieces), msg.content))
    ok("streaming chat: usage chunk", usage is not None and usage.completion_tokens == chat.usage.completion_tokens, usage)

    a = client.completions.create(model=args.model, prompt="Once upon a time", max_tokens=10, n=3, seed=5, temperature=1.0)
    b = client.completions.create(model=args.model, prompt="Once upon a time", max_tokens=10, n=3, seed=5, temperature=1.0)
    ok("n=3 with a seed: three choices, reproducible", len(a.choices) == 3
       and [c.text for c in a.choices] == [c.text for c in b.choices], [c.text for c in a.choices])

    def raises(what: str, exc: type, status: int, call) -> None:
        try:
            call()
        except exc as e:  # noqa: PERF203
            ok(what, e.status_code == status, e)
            return
        ok(what, False, "no error")

    raises("unknown model: NotFoundError 404", openai.NotFoundError, 404,
           lambda: client.completions.create(model="no-such-model", prompt="hi", max_tokens=2))
    raises("negative max_tokens: BadRequestError 400", openai.BadRequestError, 400,
           lambda: client.completions.create(model=args.model, prompt="hi", max_tokens=-1))
    raises("too long: APIStatusError 413", openai.APIStatusError, 413,
           lambda: client.completions.create(model=args.model, prompt="word " * 600, max_tokens=2))
    bad_key = openai.OpenAI(base_url=args.base_url, api_key="wrong", max_retries=0)
    raises("wrong API key: AuthenticationError 401", openai.AuthenticationError, 401,
           lambda: bad_key.models.list())
    print(f"check-openai-client: {checks} checks passed (openai {openai.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
