#!/usr/bin/env bash
# Held-out accuracy of a SmolLM2-135M reward model trained on the demo pairs with each
# overlong rule at --max-length 256 (most demo conversations are longer):
#   truncate        the prompt is cut (oldest turns first) and the responses kept
#   truncate-start  the first 256 tokens kept (rmtk's rule before; a decoder's default)
# Same budget for both: LoRA r 16 / alpha 32 on all linear layers (f32), lr 2e-4, one epoch
# of 8-pair updates, the same seed. Each model is then evaluated by `rmtk eval-rm` on the
# 60 pairs of data/prefs-en-demo-test.parquet with its own rule; pairs a rule leaves
# identical are dropped there, so the line also gives the accuracy over all 60 pairs with
# those counted as ties (half a hit). Prints, per rule: pairs cut and dropped in training,
# the loss of update 1, held-out accuracy and loss, wall time.
# 60 held-out pairs: one pair is 1.7 points of accuracy; a report, not a test.
#
# Usage: scripts/compare-truncation.sh [--seed N] [--epochs N] [--out DIR]
# Needs: models/smollm2-135m-instruct (scripts/fetch-models.sh). Environment: RMTK_BIN.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
cd "$RMTK_ROOT"
SEED=42
EPOCHS=1
OUTDIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) SEED="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --out) OUTDIR="$2"; shift 2 ;;
    *) echo "compare-truncation: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
MODEL=models/smollm2-135m-instruct
[[ -f "$MODEL/config.json" ]] || { echo "compare-truncation: no $MODEL (scripts/fetch-models.sh)" >&2; exit 1; }
BIN="$(rmtk_bin release)"
if [[ -z "$OUTDIR" ]]; then
  OUTDIR="$(rmtk_tmpdir compare-truncation)"
  trap 'rm -rf "$OUTDIR"' EXIT
fi
mkdir -p "$OUTDIR"
printf '# %s; %s cores; load %s; seed %s, %s epoch(s)\n' \
  "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "$SEED" "$EPOCHS"
printf '%-15s %14s %9s %14s %9s %12s %7s\n' rule "cut/identical" "loss@1" "acc (pairs)" "acc/60" "eval loss" "wall s"
for rule in truncate truncate-start; do
  out="$OUTDIR/$rule"
  rm -rf "$out"
  start=$SECONDS
  "$BIN" train-rm --model "$MODEL" --data data/prefs-en-demo.parquet --output "$out" \
    --max-length 256 --overlong "$rule" --batch-size 8 --epochs "$EPOCHS" --lr 2e-4 \
    --lora-r 16 --lora-alpha 32 --lora-target-modules all-linear --seed "$SEED" \
    --save-every 0 >"$out.log" 2>&1 || { tail -n 20 "$out.log" >&2; exit 1; }
  "$BIN" eval-rm --model "$out" --data data/prefs-en-demo-test.parquet >"$out.eval.json" \
    2>>"$out.log" || { tail -n 20 "$out.log" >&2; exit 1; }
  python3 - "$rule" "$out.log" "$out/metrics.jsonl" "$out.eval.json" "$((SECONDS - start))" <<'PYEOF'
import json, re, sys
rule, log, metrics, ev, wall = sys.argv[1:]
text = open(log).read()
m = re.search(r"train: --max-length \d+ \([^)]*\): (\d+) pairs cut.*?(?:identical once cut: (\d+))?$", text, re.M)
cut, same = (m.group(1), m.group(2) or "0") if m else ("?", "?")
first = json.loads(open(metrics).readline())
e = json.load(open(ev))
total = e["pairs"] + e["identical_pairs_dropped"] + e["filtered_pairs"]
all_acc = (e["accuracy"] * e["pairs"] + 0.5 * e["identical_pairs_dropped"]) / total
print(f"{rule:<15} {cut + '/' + same:>14} {first['loss']:>9.4f} {e['accuracy']:>8.4f} ({e['pairs']:>2}) "
      f"{all_acc:>9.4f} {e['loss']:>12.4f} {wall:>7}")
PYEOF
done | tee "$OUTDIR/results.txt"
