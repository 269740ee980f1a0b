#!/usr/bin/env bash
# Backbone throughput on this machine's CPU: rmtk (burn-flex, and optionally ndarray) and
# PyTorch transformers, same model, shapes and token ids; prints a table with ratios.
#   forward: tokens/s of a full forward pass (logits of every position), batch 8 x 512
#   decode:  tokens/s of KV-cached greedy decoding after a 32-token prompt, batch 1 and 8
#
# Usage: scripts/bench-models.sh [--backends "flex ndarray"] [--model DIR] [--new 64] [--reps 3]
#        (NDARRAY_FEATURE=bench-openblas for ndarray on OpenBLAS: apt-get install libopenblas-dev)
# Needs: models (scripts/fetch-models.sh); for the PyTorch column, the reference venv
# (scripts/setup-ref-venv.sh) or PYTHON pointing at a python with torch + transformers.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKENDS="flex"
MODEL="models/smollm2-135m-instruct"
NEW=64
REPS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --backends) BACKENDS="$2"; shift 2 ;;
    --model) MODEL="$2"; shift 2 ;;
    --new) NEW="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-.venv-ref/bin/python}"
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
FEATURES=""
case " $BACKENDS " in *" ndarray "*) FEATURES="--features ${NDARRAY_FEATURE:-bench-ndarray}" ;; esac
for b in $BACKENDS; do
  # shellcheck disable=SC2086
  cargo bench --quiet $FEATURES --bench backbone -- --backend "$b" --model "$MODEL" --new "$NEW" --reps "$REPS" | tee -a "$OUT" >&2
done
if [ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1; then
  "$PYTHON" scripts/bench-torch.py --model "$MODEL" --new "$NEW" --reps "$REPS" 2>/dev/null | tee -a "$OUT" >&2
else
  echo "(no PyTorch: set PYTHON or run scripts/setup-ref-venv.sh)" >&2
fi

python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
engines = list(dict.fromkeys(r["engine"] for r in rows))
keys = [("forward", r["batch"]) for r in rows if r["what"] == "forward"][:1] + \
       [("decode", b) for b in (1, 8)]
torch = next((e for e in engines if e.startswith("torch")), None)
def val(e, what, batch):
    return next((r["tokens_per_s"] for r in rows if r["engine"] == e and r["what"] == what and r["batch"] == batch), None)
head = "| engine | " + " | ".join(f"{w} b{b} tok/s" for w, b in keys) + " |"
print(head)
print("|" + "---|" * (len(keys) + 1))
for e in engines:
    cells = []
    for w, b in keys:
        v = val(e, w, b)
        t = val(torch, w, b) if torch else None
        cell = "-" if v is None else f"{v:.1f}"
        if v is not None and t and e != torch:
            cell += f" ({v / t:.2f}x)"
        cells.append(cell)
    print(f"| {e} | " + " | ".join(cells) + " |")
PY
