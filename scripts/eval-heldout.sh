#!/usr/bin/env bash
# A policy's held-out constraint pass rate and writing reward, with rmtk's commands
# chained: `generate` (sampled, as in training) -> `verify` (IFEval rules) -> `score`
# (the writing reward model). Compare a policy before and after GRPO:
#
#   scripts/eval-heldout.sh POLICY RM OUT_DIR
#   scripts/eval-heldout.sh --quick [POLICY RM OUT_DIR]
#
# --quick: seconds: without arguments, the tiny Llama of tests/fixtures as the policy
# (random weights) and a tiny BERT reward model trained first, in a temporary folder
# removed at the end; 4 held-out prompts, 2 samples each, 8 new tokens; a dev build (or
# RMTK_BIN). The figures only show that the chain runs.
# Environment: SAMPLES (per prompt, default 4; --quick 2), TEMPERATURE (1.0),
# MAX_NEW_TOKENS (128; 8), PROMPTS (default data/grpo/ifeval-rules-heldout.jsonl), SEED (0),
# DEVICE (cpu), RMTK_BIN (the rmtk binary; RMTK is read too; default: a release build).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
rmtk_quick_args eval-heldout "$@"
cd "$RMTK_ROOT"
[[ -n "${RMTK:-}" && -z "${RMTK_BIN:-}" ]] && export RMTK_BIN="$RMTK"
DEVICE=${DEVICE:-cpu}
FEATURES=()
[[ "$DEVICE" == cuda* ]] && FEATURES=(--features cuda)
USAGE="usage: scripts/eval-heldout.sh POLICY RM OUT_DIR (or --quick; see --help)"
PROMPTS=${PROMPTS:-data/grpo/ifeval-rules-heldout.jsonl}
if [[ "$QUICK" == 1 ]]; then
  export HF_HUB_OFFLINE=1
  RMTK="$(rmtk_bin dev "${FEATURES[@]}")"
  SAMPLES=${SAMPLES:-2} MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-8}
  if [[ ${#ARGS[@]} -eq 0 ]]; then
    WORK=$(rmtk_tmpdir eval-heldout)
    trap 'rm -rf "$WORK"' EXIT
    POLICY="$WORK/tiny-llama"
    rmtk_tiny_model llama "$POLICY"
    rmtk_tiny_rm "$RMTK" "$WORK"
    RM="$WORK/rm"
    OUT="$WORK/eval"
  else
    [[ ${#ARGS[@]} -eq 3 ]] || { echo "$USAGE" >&2; exit 2; }
    POLICY=${ARGS[0]} RM=${ARGS[1]} OUT=${ARGS[2]}
  fi
  mkdir -p "$OUT"
  head -n 4 "$PROMPTS" > "$OUT/prompts.jsonl"
  PROMPTS="$OUT/prompts.jsonl"
else
  [[ ${#ARGS[@]} -eq 3 ]] || { echo "$USAGE" >&2; exit 2; }
  POLICY=${ARGS[0]} RM=${ARGS[1]} OUT=${ARGS[2]}
  RMTK="$(rmtk_bin release "${FEATURES[@]}")"
fi
mkdir -p "$OUT"
"$RMTK" generate --model "$POLICY" --input "$PROMPTS" \
  --chat --num-samples "${SAMPLES:-4}" --temperature "${TEMPERATURE:-1.0}" \
  --max-new-tokens "${MAX_NEW_TOKENS:-128}" --seed "${SEED:-0}" --batch-size 32 \
  --device "$DEVICE" --output "$OUT/completions.jsonl"
"$RMTK" verify --input "$OUT/completions.jsonl" --response-column completion \
  --output "$OUT/verified.jsonl" --summary "$OUT/verify-summary.json" > /dev/null
"$RMTK" score --model "$RM" --input "$OUT/verified.jsonl" --response-column completion \
  --output "$OUT/scored.jsonl" --device "$DEVICE"
python3 - "$OUT/scored.jsonl" "$POLICY" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
p = sum(bool(r["pass"]) for r in rows) / len(rows)
w = [r["reward"] for r in rows]
print(json.dumps({"policy": sys.argv[2], "completions": len(rows), "pass_rate": round(p, 4),
                  "writing_reward_mean": round(statistics.mean(w), 4),
                  "writing_reward_std": round(statistics.stdev(w), 4) if len(w) > 1 else None}))
PY
