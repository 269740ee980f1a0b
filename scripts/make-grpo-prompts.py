#!/usr/bin/env python3
"""Prompt sets for the GRPO demo and its held-out evaluation (data/grpo/).

Source: the IFEval prompts in data/ifeval/input_data.jsonl (Apache-2.0, google-research
instruction_following_eval). Kept: prompts whose every instruction is a length, format,
keyword, punctuation, start/end or placeholder rule, i.e. checkable by rmtk's rules and
learnable by a small model; dropped: language, case-change, two-responses, repeat-prompt
and JSON-format instructions; and prompts whose length requirement cannot be met within a
CPU demo's budget of a few hundred tokens (more than 150 words, 8 sentences, 4 paragraphs,
bullets or sections). Split by a fixed seed into 80 % train / 20 % held out.

Each output row: `key`, `prompt` (text), `instruction_id_list`, `kwargs` (as IFEval).
Run: python3 scripts/make-grpo-prompts.py   (stdlib only; deterministic)
"""
import json
import pathlib
import random

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "data" / "ifeval" / "input_data.jsonl"
OUT = ROOT / "data" / "grpo"

KEEP = {
    "length_constraints:number_words",
    "length_constraints:number_sentences",
    "length_constraints:number_paragraphs",
    "detectable_format:title",
    "detectable_format:number_bullet_lists",
    "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections",
    "detectable_format:constrained_response",
    "detectable_content:postscript",
    "detectable_content:number_placeholders",
    "keywords:existence",
    "keywords:forbidden_words",
    "keywords:frequency",
    "punctuation:no_comma",
    "startend:end_checker",
    "startend:quotation",
}


# The most each count may demand (with relation "at least", or as an exact count).
LIMITS = {
    "num_words": 150,
    "num_sentences": 8,
    "num_paragraphs": 4,
    "num_bullets": 5,
    "num_highlights": 4,
    "num_sections": 4,
    "num_placeholders": 4,
}


def achievable(row):
    for iid, kw in zip(row["instruction_id_list"], row["kwargs"]):
        if iid not in KEEP:
            return False
        for key, limit in LIMITS.items():
            value = kw.get(key)
            if value is not None and kw.get("relation") != "less than" and value > limit:
                return False
    return True


def main():
    rows = [json.loads(line) for line in SRC.read_text().splitlines() if line.strip()]
    kept = [r for r in rows if achievable(r)]
    kept.sort(key=lambda r: r["key"])
    random.Random(20250818).shuffle(kept)
    n_held = max(1, round(len(kept) * 0.2))
    splits = {"heldout": kept[:n_held], "train": kept[n_held:]}
    OUT.mkdir(parents=True, exist_ok=True)
    for name, part in splits.items():
        part.sort(key=lambda r: r["key"])
        path = OUT / f"ifeval-rules-{name}.jsonl"
        with path.open("w") as f:
            for r in part:
                f.write(json.dumps({k: r[k] for k in ("key", "prompt", "instruction_id_list", "kwargs")}) + "\n")
        print(f"{path.relative_to(ROOT)}: {len(part)} prompts")


if __name__ == "__main__":
    main()
