#!/usr/bin/env bash
# A policy's held-out constraint pass rate and writing reward, with rmtk's commands
# chained: `generate` (sampled, as in training) -> `verify` (IFEval rules) -> `score`
# (the writing reward model). Compare a policy before and after GRPO:
#
#   scripts/eval-heldout.sh POLICY RM OUT_DIR
# Environment: SAMPLES (per prompt, default 4), TEMPERATURE (1.0), MAX_NEW_TOKENS (128),
# PROMPTS (default data/grpo/ifeval-rules-heldout.jsonl), SEED (0), DEVICE (cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
POLICY=${1:?usage: scripts/eval-heldout.sh POLICY RM OUT_DIR}
RM=${2:?usage: scripts/eval-heldout.sh POLICY RM OUT_DIR}
OUT=${3:?usage: scripts/eval-heldout.sh POLICY RM OUT_DIR}
RMTK=${RMTK:-target/release/rmtk}
mkdir -p "$OUT"
$RMTK generate --model "$POLICY" --input "${PROMPTS:-data/grpo/ifeval-rules-heldout.jsonl}" \
  --chat --num-samples "${SAMPLES:-4}" --temperature "${TEMPERATURE:-1.0}" \
  --max-new-tokens "${MAX_NEW_TOKENS:-128}" --seed "${SEED:-0}" --batch-size 32 \
  --device "${DEVICE:-cpu}" --output "$OUT/completions.jsonl"
$RMTK verify --input "$OUT/completions.jsonl" --response-column completion \
  --output "$OUT/verified.jsonl" --summary "$OUT/verify-summary.json" > /dev/null
$RMTK score --model "$RM" --input "$OUT/verified.jsonl" --response-column completion \
  --output "$OUT/scored.jsonl" --device "${DEVICE:-cpu}"
python3 - "$OUT/scored.jsonl" "$POLICY" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
p = sum(bool(r["pass"]) for r in rows) / len(rows)
w = [r["reward"] for r in rows]
print(json.dumps({"policy": sys.argv[2], "completions": len(rows), "pass_rate": round(p, 4),
                  "writing_reward_mean": round(statistics.mean(w), 4),
                  "writing_reward_std": round(statistics.stdev(w), 4)}))
PY
