#!/usr/bin/env bash
# GRPO step-time benchmark: a few steps of the README's setting (SmolLM2-135M-Instruct
# policy, a MiniLM reward model, IFEval rule constraints), then the step time split
# into generation / scoring / update and the generation throughput, from the run's
# metrics.jsonl.
#
#   scripts/bench-grpo.sh RM_DIR            # CPU
#   DEVICE=cuda scripts/bench-grpo.sh RM_DIR
# Environment: STEPS (default 3), MAX_NEW_TOKENS (128), N (4), PROMPTS (4).
set -euo pipefail
cd "$(dirname "$0")/.."
RM=${1:?usage: scripts/bench-grpo.sh RM_DIR}
DEVICE=${DEVICE:-cpu}
FEATURES=()
[[ "$DEVICE" == cuda* ]] && FEATURES=(--features cuda)
cargo build --release --locked --quiet "${FEATURES[@]}"
OUT=$(mktemp -d "${TMPDIR:-/tmp}/rmtk-bench-grpo.XXXXXX")
trap 'rm -rf "$OUT"' EXIT   # the run's policy and checkpoint are not kept
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
target/release/rmtk grpo --policy models/smollm2-135m-instruct --reward-model "$RM" \
  --prompts data/grpo/ifeval-rules-train.jsonl --output "$OUT/run" \
  --num-generations "${N:-4}" --batch-prompts "${PROMPTS:-4}" \
  --max-new-tokens "${MAX_NEW_TOKENS:-128}" --max-generation-rounds 1 \
  --filter-std-eps 0 --max-steps "${STEPS:-3}" --save-every 0 --lr 1e-5 --device "$DEVICE"
python3 - "$OUT/run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"split"' not in l]
keys = ["time_generation_s", "time_scoring_s", "time_update_s", "step_time_s",
        "generated_tokens", "generation_tokens_per_s", "trained_tokens"]
print(f"{'step':>4} " + " ".join(f"{k:>24}" for k in keys))
for r in rows:
    print(f"{r['step']:>4} " + " ".join(f"{r.get(k, float('nan')):>24.2f}" for k in keys))
def mean(k):
    vals = [r[k] for r in (rows[1:] or rows) if isinstance(r.get(k), (int, float))]
    return sum(vals) / len(vals) if vals else float("nan")
print("mean over the steps after the first (a skipped step has no update): " + ", ".join(f"{k} {mean(k):.2f}" for k in keys))
PY
