#!/usr/bin/env bash
# Backbone throughput on this machine's CPU: rmtk (burn-flex, and optionally ndarray) and
# PyTorch transformers, same model, shapes and token ids; prints a table with ratios.
#   forward: tokens/s of a full forward pass (logits of every position), batch 8 x 512
#   decode:  tokens/s of KV-cached greedy decoding after a 32-token prompt, batch 1 and 8
#   chat:    generated tokens/s of a whole greedy generation (prefill included) for 16 prompts
#            of 80-500 tokens (transformers: `generate` on the left-padded batch)
#   Each engine runs --rounds times (default 3), interleaved; the table shows medians.
#
# Usage: scripts/bench-models.sh [--backends "flex ndarray"] [--model DIR] [--new 64] [--reps 3]
#                                [--rounds 3] [--quick] [--with-peer] [--no-peer]
#        (NDARRAY_FEATURE=bench-openblas for ndarray on OpenBLAS: apt-get install libopenblas-dev)
#   --quick      seconds: the tiny Llama of tests/fixtures (random weights), batch 2 x 32,
#                8 new tokens, 1 repetition, benches/backbone.rs in the dev profile
#                (`cargo test --bench backbone`); no PyTorch unless --with-peer
#   --with-peer  with --quick: PyTorch too (the reference venv, as below)
#   --no-peer    no PyTorch column
# Needs: models (scripts/fetch-models.sh); for the PyTorch column, PYTHON pointing at a python
# with torch + transformers, or else the reference venv .venv-ref/, made on first use from
# scripts/requirements/ref.txt (scripts/setup-ref-venv.sh; torch is large: minutes).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$RMTK_ROOT/scripts/lib/venv.sh"
rmtk_help_if_asked "$0" "$@"
cd "$RMTK_ROOT"

BACKENDS="flex"
MODEL=""
NEW=""
REPS=""
ROUNDS=3
QUICK=0
PEER=1
PEER_SET=0
while [ $# -gt 0 ]; do
  case "$1" in
    --backends) BACKENDS="$2"; shift 2 ;;
    --model) MODEL="$2"; shift 2 ;;
    --new) NEW="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --with-peer) PEER=1; PEER_SET=1; shift ;;
    --no-peer) PEER=0; PEER_SET=1; shift ;;
    *) echo "bench-models: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$QUICK" == 1 && "$PEER_SET" == 0 ]] && PEER=0
OUT="$(rmtk_tmpdir bench-models)"
trap 'rm -rf "$OUT"' EXIT
if [[ "$QUICK" == 1 ]]; then
  PROFILE=dev
  if [[ -z "$MODEL" ]]; then
    MODEL="$OUT/tiny-llama"
    rmtk_tiny_model llama "$MODEL"
  fi
  SHAPE=(--batch 2 --seq 32 --prompt 8 --new "${NEW:-8}" --reps "${REPS:-1}")
  ROUNDS=1
else
  PROFILE=release
  MODEL="${MODEL:-models/smollm2-135m-instruct}"
  SHAPE=(--new "${NEW:-64}" --reps "${REPS:-3}")
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
FEATURES=()
case " $BACKENDS " in *" ndarray "*) FEATURES=(--features "${NDARRAY_FEATURE:-bench-ndarray}") ;; esac
if [[ "$PEER" == 1 && -z "${PYTHON:-}" ]]; then
  RMTK_VENV_QUIET=1 ensure_venv .venv-ref scripts/requirements/ref.txt
  PYTHON=.venv-ref/bin/python
fi
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  for b in $BACKENDS; do
    rmtk_bench backbone "$PROFILE" "${FEATURES[@]}" -- --backend "$b" --model "$MODEL" "${SHAPE[@]}" \
      | tee -a "$OUT/results.jsonl" >&2
  done
  if [[ "$PEER" == 1 ]]; then
    "$PYTHON" scripts/bench-torch.py --model "$MODEL" "${SHAPE[@]}" 2>/dev/null | tee -a "$OUT/results.jsonl" >&2
  fi
done
[[ "$PEER" == 1 ]] || echo "bench-models: PyTorch skipped (--with-peer runs it)" >&2

python3 - "$OUT/results.jsonl" "$PROFILE" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
engines = list(dict.fromkeys(r["engine"] for r in rows))
keys = [("forward", r["batch"]) for r in rows if r["what"] == "forward"][:1] + \
       [("decode", b) for b in (1, 8)] + [("chat", 16)]
torch = next((e for e in engines if e.startswith("torch")), None)
def val(e, what, batch):
    vals = [r["tokens_per_s"] for r in rows if r["engine"] == e and r["what"] == what and r["batch"] == batch]
    return statistics.median(vals) if vals else None
print(f"medians of {max(1, len([r for r in rows if r['what'] == 'forward' and r['engine'] == engines[0]]))} round(s); chat = 16 prompts of 80-500 tokens, prefill included")
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
if sys.argv[2] == "dev":
    print("(dev profile, tiny model: shows the benchmark runs, not rmtk's speed)")
PY
