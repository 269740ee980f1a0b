#!/usr/bin/env bash
# GRPO step-time benchmark: a few steps of the README's setting (SmolLM2-135M-Instruct
# policy, a MiniLM reward model, IFEval rule constraints), then the step time split
# into generation / scoring / update and the generation throughput, from the run's
# metrics.jsonl.
#
#   scripts/bench-grpo.sh RM_DIR            # CPU
#   DEVICE=cuda scripts/bench-grpo.sh RM_DIR
#   scripts/bench-grpo.sh --quick [RM_DIR]  # seconds: the tiny Llama of tests/fixtures as the
#                                           # policy (random weights), a dev build (or RMTK_BIN),
#                                           # 3 steps of 2 x 2 completions, 8 new tokens; without
#                                           # RM_DIR, a tiny BERT reward model trained first
# Environment: STEPS (default 3; --quick 3), MAX_NEW_TOKENS (128; 8), N (4; 2),
# PROMPTS (4; 2), DEVICE (cpu), RMTK_BIN (use this binary instead of building),
# GRPO_FLAGS (more grpo flags, e.g. "--lora-r 16 --dtype bf16").
# With /usr/bin/time (Debian's `time`), the run's peak resident memory is printed too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
rmtk_quick_args bench-grpo "$@"
cd "$RMTK_ROOT"
DEVICE=${DEVICE:-cpu}
FEATURES=()
[[ "$DEVICE" == cuda* ]] && FEATURES=(--features cuda)
OUT=$(rmtk_tmpdir bench-grpo)
trap 'rm -rf "$OUT"' EXIT   # the run's policy and checkpoint are not kept
if [[ "$QUICK" == 1 ]]; then
  export HF_HUB_OFFLINE=1
  RMTK="$(rmtk_bin dev "${FEATURES[@]}")"
  rmtk_quick_policy_rm "$RMTK" "$OUT" "${ARGS[0]:-}"
  STEPS=${STEPS:-3} MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-8} N=${N:-2} PROMPTS=${PROMPTS:-2}
else
  RM=${ARGS[0]:?usage: scripts/bench-grpo.sh RM_DIR (or --quick; see --help)}
  RMTK="$(rmtk_bin release "${FEATURES[@]}")"
  POLICY=models/smollm2-135m-instruct
fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
TIMER=()
[[ -x /usr/bin/time ]] && TIMER=(/usr/bin/time -f "peak resident memory: %M KiB" -o "$OUT/time.txt")
# shellcheck disable=SC2086 # GRPO_FLAGS is a list of flags
"${TIMER[@]}" "$RMTK" grpo --policy "$POLICY" --reward-model "$RM" ${GRPO_FLAGS:-} \
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
if [[ -f "$OUT/time.txt" ]]; then
  awk '/peak resident memory/ { printf "peak resident memory: %.2f GiB\n", $4 / 1048576 }' "$OUT/time.txt"
fi
if [[ "$QUICK" == 1 ]]; then
  echo "(--quick: dev build, tiny random policy: shows that the benchmark runs, not rmtk's speed)"
fi
