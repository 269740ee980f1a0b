#!/usr/bin/env bash
# Held-out accuracy of the MiniLM demo reward model trained two ways, several seeds each:
#   full   full fine-tuning in f32 (the README's train-rm command: lr 1e-4)
#   lora   --dtype bf16 --lora-r 16 --lora-alpha 32 --lora-target-modules all-linear
#          (lr 1e-3: adapters start at zero and take a larger step, as PEFT's examples do)
# Same data (240 training pairs, the 60 pairs of data/prefs-en-demo-test.parquet held out),
# schedule (2 epochs of 8 pairs, 10 % warmup, max length 256, truncate, centring 0.01) and
# seeds. Prints one line per run (accuracy, loss, wall time) and the mean of each way.
# 60 held-out pairs: one pair is 1.7 points of accuracy; a report, not a test.
#
# Usage: scripts/compare-rm-lora.sh [--seeds "1 2 3"] [--out DIR]
# Needs: models/all-minilm-l6-v2 (scripts/fetch-models.sh). Environment: RMTK_BIN.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
cd "$RMTK_ROOT"
SEEDS="1 2 3"
OUTDIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) SEEDS="$2"; shift 2 ;;
    --out) OUTDIR="$2"; shift 2 ;;
    *) echo "compare-rm-lora: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
MODEL=models/all-minilm-l6-v2
[[ -f "$MODEL/config.json" ]] || { echo "compare-rm-lora: no $MODEL (scripts/fetch-models.sh)" >&2; exit 1; }
BIN="$(rmtk_bin release)"
if [[ -z "$OUTDIR" ]]; then
  OUTDIR="$(rmtk_tmpdir compare-rm-lora)"
  trap 'rm -rf "$OUTDIR"' EXIT
fi
printf '# %s; %s cores; load %s\n' "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %5s %9s %9s %8s\n' way seed accuracy loss "wall s"
for way in full lora; do
  case "$way" in
    full) flags=(--lr 1e-4) ;;
    lora) flags=(--lr 1e-3 --dtype bf16 --lora-r 16 --lora-alpha 32 --lora-target-modules all-linear) ;;
  esac
  for seed in $SEEDS; do
    out="$OUTDIR/$way-$seed"
    rm -rf "$out"
    start=$SECONDS
    "$BIN" train-rm --model "$MODEL" --data data/prefs-en-demo.parquet \
      --eval-data data/prefs-en-demo-test.parquet --output "$out" --max-length 256 \
      --overlong truncate --batch-size 8 --epochs 2 --warmup-ratio 0.1 \
      --center-rewards-coef 0.01 --seed "$seed" --save-every 0 "${flags[@]}" >"$out.log" 2>&1 \
      || { tail -n 20 "$out.log" >&2; exit 1; }
    python3 - "$out/metrics.jsonl" "$way" "$seed" "$((SECONDS - start))" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
last = [r for r in rows if "eval_accuracy" in r][-1]
print(f"{sys.argv[2]:<5} {sys.argv[3]:>5} {last['eval_accuracy']:>9.4f} {last['eval_loss']:>9.4f} {sys.argv[4]:>8}")
EOF
  done
done | tee "$OUTDIR/results.txt"
python3 - "$OUTDIR/results.txt" <<'EOF'
import sys
from collections import defaultdict
acc = defaultdict(list)
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 5 and parts[0] in ("full", "lora"):
        acc[parts[0]].append(float(parts[2]))
for way, v in acc.items():
    print(f"mean {way}: accuracy {sum(v) / len(v):.4f} over {len(v)} seeds ({', '.join(f'{x:.4f}' for x in v)})")
EOF
