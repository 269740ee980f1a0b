#!/usr/bin/env bash
# The paper's comparison at small scale: the same GRPO budget under each reward
# mixing (rlmr, fixed, writing-only, constraint-only), then held-out constraint pass
# rate and writing reward side by side.
#
#   scripts/ablation-grpo.sh RM_DIR [OUT_DIR]
#
# RM_DIR: a writing reward model (e.g. runs/demo/rm from scripts/demo.sh).
# Environment: STEPS (default 12), MAX_NEW_TOKENS (96), N (group size, 4),
# PROMPTS (groups per step, 4), LR (1e-5), DEVICE (cpu), MIXINGS (all four).
# Every run uses the same seed, prompts and held-out set; only --mixing differs.
set -euo pipefail
cd "$(dirname "$0")/.."
RM=${1:?usage: scripts/ablation-grpo.sh RM_DIR [OUT_DIR]}
OUT=${2:-runs/ablation}
STEPS=${STEPS:-12}
MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-96}
DEVICE=${DEVICE:-cpu}
MIXINGS=${MIXINGS:-rlmr fixed writing-only constraint-only}
FEATURES=()
[[ "$DEVICE" == cuda* ]] && FEATURES=(--features cuda)
cargo build --release --locked --quiet "${FEATURES[@]}"
mkdir -p "$OUT"
for mixing in $MIXINGS; do
  run="$OUT/$mixing"
  [[ -f "$run/train_summary.json" ]] && continue
  printf '\n==> %s\n' "$mixing" >&2
  rm -rf "$run"
  target/release/rmtk grpo --policy models/smollm2-135m-instruct --reward-model "$RM" \
    --prompts data/grpo/ifeval-rules-train.jsonl \
    --eval-prompts data/grpo/ifeval-rules-heldout.jsonl \
    --output "$run" --mixing "$mixing" --num-generations "${N:-4}" \
    --batch-prompts "${PROMPTS:-4}" --max-new-tokens "$MAX_NEW_TOKENS" \
    --max-generation-rounds 3 --lr "${LR:-1e-5}" --max-steps "$STEPS" \
    --eval-temperature 0 --save-every 0 --micro-batch-size 4 --seed 42 --device "$DEVICE"
done
python3 - "$OUT" $MIXINGS <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print(f"\n{'mixing':<16} {'pass rate (held out)':>22} {'writing reward (held out)':>27} {'train pass':>11} {'filtered':>9}")
for m in sys.argv[2:]:
    s = json.loads((out / m / "train_summary.json").read_text())
    a, b = s["first_eval"], s["final_eval"]
    lines = [json.loads(l) for l in (out / m / "metrics.jsonl").read_text().splitlines()]
    train = [l for l in lines if l.get("split") != "eval"]
    tail = train[len(train) // 2:]
    tp = sum(l["pass_rate"] for l in tail) / max(len(tail), 1)
    fr = sum(l.get("filtered_group_rate", 0) for l in train) / max(len(train), 1)
    wr = lambda r: r.get("writing_reward_mean", float("nan"))
    print(f"{m:<16} {a['pass_rate']:>10.3f} -> {b['pass_rate']:<9.3f} {wr(a):>12.3f} -> {wr(b):<12.3f} {tp:>11.3f} {fr:>9.3f}")
print("(held out: greedy completions of data/grpo/ifeval-rules-heldout.jsonl before -> after;")
print(" train pass: mean pass rate of the sampled completions over the second half of the run)")
PY
