#!/usr/bin/env bash
# Kill-and-resume of a GRPO run on a real model: the same run twice, once whole and once
# SIGKILLed during step 3 and resumed (`rmtk grpo --resume`) from its checkpoint-2; the
# final policies must be bit for bit equal and metrics.jsonl the same (timings aside).
# (tests/it/grpo_cli.rs checks the same on the tiny model in CI; this is the real-size
# check, in the dtype and mode of your choice.)
#
#   scripts/check-grpo-resume.sh RM_DIR [OUT]
#
# Setting: SmolLM2-135M-Instruct, the IFEval rule prompts of data/grpo/, 2 groups x 4
# completions, 32 new tokens, KL 0.04, 2 PPO epochs, a checkpoint every step, 3 steps.
# Environment: RMTK_BIN (default: a release build made here), GRPO_FLAGS (default: "--lora-r
# 16 --lora-alpha 32 --lora-target-modules all-linear --lora-dropout 0.05 --dtype bf16").
# OUT (default: a temporary folder, removed after) keeps both runs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
cd "$RMTK_ROOT"
RM=${1:?usage: scripts/check-grpo-resume.sh RM_DIR [OUT] (see --help)}
if [[ -n "${2:-}" ]]; then
  W="$2"
  mkdir -p "$W"
else
  W="$(rmtk_tmpdir check-grpo-resume)"
  trap 'rm -rf "$W"' EXIT
fi
B="$(rmtk_bin release)"
FLAGS=${GRPO_FLAGS:---lora-r 16 --lora-alpha 32 --lora-target-modules all-linear --lora-dropout 0.05 --dtype bf16}
# shellcheck disable=SC2206 # FLAGS is a list of flags
common=(--policy models/smollm2-135m-instruct --reward-model "$RM"
  --prompts data/grpo/ifeval-rules-train.jsonl --num-generations 4 --batch-prompts 2
  --max-new-tokens 32 --max-generation-rounds 1 --filter-std-eps 0 --max-steps 3
  --save-every 1 --lr 1e-5 --beta 0.04 --ppo-epochs 2 --seed 5 $FLAGS)
rm -rf "$W/whole" "$W/killed"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores), load $(cut -d' ' -f1-3 /proc/loadavg); flags: $FLAGS"
t0=$SECONDS
"$B" grpo "${common[@]}" --output "$W/whole" 2>"$W/whole.log" || { tail -n 15 "$W/whole.log" >&2; exit 1; }
echo "whole run: $(( SECONDS - t0 )) s"
"$B" grpo "${common[@]}" --output "$W/killed" 2>"$W/killed.log" &
pid=$!
until [[ "$(cat "$W/killed/latest" 2>/dev/null)" == checkpoint-2 ]]; do
  kill -0 "$pid" 2>/dev/null || { echo "the run ended before its checkpoint-2" >&2; exit 1; }
  sleep 0.5
done
sleep 3
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
echo "killed during step 3 (latest: $(cat "$W/killed/latest"))"
"$B" grpo --resume "$W/killed" 2>"$W/resume.log" || { tail -n 15 "$W/resume.log" >&2; exit 1; }
status=0
for f in adapter_model.safetensors model.safetensors; do
  [[ -f "$W/whole/$f" ]] || continue
  if cmp -s "$W/whole/$f" "$W/killed/$f"; then echo "$f: bit for bit equal"; else echo "$f: DIFFERS"; status=1; fi
done
python3 - "$W/whole/metrics.jsonl" "$W/killed/metrics.jsonl" <<'PY' || status=1
import json, sys
def load(path):
    drop = lambda r: {k: v for k, v in r.items()
                      if not (k.startswith("time_") or k.endswith("_per_s") or k == "step_time_s")}
    return [drop(json.loads(line)) for line in open(path)]
a, b = load(sys.argv[1]), load(sys.argv[2])
print(f"metrics.jsonl (timings aside): {'equal' if a == b else 'DIFFER'} ({len(a)} lines)")
sys.exit(0 if a == b else 1)
PY
exit $status
