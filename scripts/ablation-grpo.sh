#!/usr/bin/env bash
# The paper's comparison at small scale: the same GRPO budget under each reward
# mixing (rlmr, fixed, writing-only, constraint-only, gdpo, and rlmr+rubric: RLMR with a
# rubric score added), then held-out constraint pass rate, writing reward and rubric
# score side by side.
#
#   scripts/ablation-grpo.sh RM_DIR [OUT_DIR]
#   scripts/ablation-grpo.sh --quick [RM_DIR]
#
# RM_DIR: a writing reward model (e.g. runs/demo/rm from scripts/demo.sh).
# --quick: seconds: the tiny Llama of tests/fixtures as the policy (random weights), a dev
# build (or RMTK_BIN), 1 step of 2 x 2 completions, 8 new tokens, 4 held-out prompts, per
# mixing; without RM_DIR, a tiny BERT reward model trained first; everything in a
# temporary folder, removed at the end. The figures only show that the runs complete.
# Environment: STEPS (default 12; --quick 1), MAX_NEW_TOKENS (96; 8), N (group size, 4; 2),
# PROMPTS (groups per step, 4; 2), LR (1e-5), DEVICE (cpu), MIXINGS (all six:
# "rlmr fixed writing-only constraint-only gdpo rlmr+rubric"), RUBRIC_WEIGHT (rlmr+rubric's
# --rubric-weight, 1), RMTK_BIN (use this binary instead of building).
# Every run uses the same seed, prompts and held-out set. The prompts are the IFEval-rule
# prompts of data/grpo/ with a rubric of soft rule items added (written into OUT_DIR:
# at least 30 different words, weight 2; at least 3 sentences, weight 1; an item is
# left out where the prompt's own instructions use the same instruction id); every run
# but rlmr+rubric gives the rubric weight 0, so its score is only measured, and the
# constraint verdict (the listed instructions) is the same for all.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
rmtk_quick_args ablation-grpo "$@"
cd "$RMTK_ROOT"
DEVICE=${DEVICE:-cpu}
MIXINGS=${MIXINGS:-rlmr fixed writing-only constraint-only gdpo rlmr+rubric}
TRAIN=data/grpo/ifeval-rules-train.jsonl
FEATURES=()
[[ "$DEVICE" == cuda* ]] && FEATURES=(--features cuda)
HELDOUT=data/grpo/ifeval-rules-heldout.jsonl
if [[ "$QUICK" == 1 ]]; then
  export HF_HUB_OFFLINE=1
  OUT=$(rmtk_tmpdir ablation)
  trap 'rm -rf "$OUT"' EXIT
  RMTK="$(rmtk_bin dev "${FEATURES[@]}")"
  rmtk_quick_policy_rm "$RMTK" "$OUT" "${ARGS[0]:-}"
  head -n 4 "$HELDOUT" > "$OUT/heldout.jsonl"
  HELDOUT="$OUT/heldout.jsonl"
  STEPS=${STEPS:-1} MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-8} N=${N:-2} PROMPTS=${PROMPTS:-2}
else
  RM=${ARGS[0]:?usage: scripts/ablation-grpo.sh RM_DIR [OUT_DIR] (or --quick; see --help)}
  OUT=${ARGS[1]:-runs/ablation}
  STEPS=${STEPS:-12}
  MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-96}
  RMTK="$(rmtk_bin release "${FEATURES[@]}")"
  POLICY=models/smollm2-135m-instruct
fi
mkdir -p "$OUT"
# The prompts with a rubric of soft rule items (deterministic: the same every run).
python3 - "$TRAIN" "$OUT/train-rubric.jsonl" "$HELDOUT" "$OUT/heldout-rubric.jsonl" <<'PY'
import json, sys
SOFT = [
    ("count:unique_word_count", 2.0, "Uses at least 30 different words", {"N": 30}),
    ("length_constraints:number_sentences", 1.0, "Has at least 3 sentences",
     {"relation": "at least", "num_sentences": 3}),
]
for src, dst in [(sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])]:
    with open(src) as f, open(dst, "w") as out:
        for line in f:
            row = json.loads(line)
            own = set(row.get("instruction_id_list") or [])
            row["rubric"] = [
                {"criterion": c, "weight": w, "check": {"rule": i, "kwargs": kw}}
                for i, w, c, kw in SOFT if i not in own
            ]
            out.write(json.dumps(row) + "\n")
PY
TRAIN="$OUT/train-rubric.jsonl"
HELDOUT="$OUT/heldout-rubric.jsonl"
for name in $MIXINGS; do
  run="$OUT/$name"
  [[ -f "$run/train_summary.json" ]] && continue
  printf '\n==> %s\n' "$name" >&2
  rm -rf "$run"
  case "$name" in
    rlmr+rubric) mixing=rlmr; weight=${RUBRIC_WEIGHT:-1} ;;
    *) mixing=$name; weight=0 ;;
  esac
  "$RMTK" grpo --policy "$POLICY" --reward-model "$RM" \
    --prompts "$TRAIN" \
    --eval-prompts "$HELDOUT" --rubric-weight "$weight" \
    --output "$run" --mixing "$mixing" --num-generations "${N:-4}" \
    --batch-prompts "${PROMPTS:-4}" --max-new-tokens "$MAX_NEW_TOKENS" \
    --max-generation-rounds 3 --lr "${LR:-1e-5}" --max-steps "$STEPS" \
    --eval-temperature 0 --save-every 0 --micro-batch-size 4 --seed 42 --device "$DEVICE"
done
python3 - "$OUT" "$HELDOUT" $MIXINGS <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print(f"\n{'mixing':<16} {'pass rate (held out)':>22} {'writing reward (held out)':>27} {'rubric score (held out)':>25} {'train pass':>11} {'filtered':>9}")
for m in sys.argv[3:]:
    s = json.loads((out / m / "train_summary.json").read_text())
    a, b = s["first_eval"], s["final_eval"]
    lines = [json.loads(l) for l in (out / m / "metrics.jsonl").read_text().splitlines()]
    train = [l for l in lines if l.get("split") != "eval"]
    tail = train[len(train) // 2:]
    tp = sum(l["pass_rate"] for l in tail) / max(len(tail), 1)
    fr = sum(l.get("filtered_group_rate", 0) for l in train) / max(len(train), 1)
    wr = lambda r: r.get("writing_reward_mean", float("nan"))
    rs = lambda r: r.get("rubric_score_mean", float("nan"))
    print(f"{m:<16} {a['pass_rate']:>10.3f} -> {b['pass_rate']:<9.3f} {wr(a):>12.3f} -> {wr(b):<12.3f} {rs(a):>11.3f} -> {rs(b):<11.3f} {tp:>11.3f} {fr:>9.3f}")
print(f"(held out: greedy completions of {sys.argv[2]} before -> after; rubric score: its soft items' weighted score, weight 0 in every run but rlmr+rubric;")
print(" train pass: mean pass rate of the sampled completions over the second half of the run)")
PY
if [[ "$QUICK" == 1 ]]; then
  echo "(--quick: dev build, tiny random policy: shows that the runs complete, nothing more)"
fi
