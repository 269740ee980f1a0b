#!/usr/bin/env bash
# Reward-model training throughput and peak memory: rmtk train-rm against TRL's
# RewardTrainer, same machine, model, data, batch size and max length.
#
#   scripts/bench-rm.sh [--models minilm,smollm2] [--batch 8] [--length 256] [--steps 12]
#                       [--device cpu|cuda] [--trl-gradient-checkpointing] [--skip-trl]
#
# For each model (models/all-minilm-l6-v2, models/smollm2-135m-instruct):
#   1. scripts/bench_rm_data.py writes BATCH*STEPS pre-tokenized pairs of exactly LENGTH
#      tokens (from data/prefs-en-demo.parquet; no padding anywhere);
#   2. rmtk train-rm (release build) trains STEPS updates on them;
#   3. TRL's RewardTrainer (scripts/bench_trl.py) trains STEPS updates on the same file
#      (float32, dropout off, gradient checkpointing off unless asked: rmtk keeps
#      activations too).
# Tokens/s are real tokens (2 * BATCH * LENGTH per update) over the updates after the
# first two; peak memory is the process's maximum resident set (GNU time's
# "Maximum resident set size"). The machine's load average is printed: other work on
# the machine lowers both tools' figures.
#
# TRL comes from PyPI into .venv-trl/ (created on first use):
#   - by default layered over the reference venv .venv-ref/ (scripts/setup-ref-venv.sh:
#     torch 2.15, transformers 5.23), adding trl==1.16.0 and datasets;
#   - with TRL_STANDALONE=1, a venv of its own: torch (from TORCH_INDEX_URL if set, e.g.
#     https://download.pytorch.org/whl/cpu), transformers, trl, datasets, pyarrow.
# Environment: RMTK_BIN (use this binary instead of building), PYTHON (for the venv).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
MODELS=minilm,smollm2
BATCH=8
LENGTH=256
STEPS=12
DEVICE=cpu
TRL_GC=""
SKIP_TRL=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --models) MODELS="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --length) LENGTH="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --trl-gradient-checkpointing) TRL_GC="--gradient-checkpointing"; shift ;;
    --skip-trl) SKIP_TRL=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench-rm: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x /usr/bin/time ]] || { echo "bench-rm: needs GNU time (/usr/bin/time; apt-get install time)" >&2; exit 1; }

log() { printf 'bench-rm: %s\n' "$*" >&2; }

# rmtk, release build.
if [[ -n "${RMTK_BIN:-}" ]]; then
  BIN="$RMTK_BIN"
else
  FEATURES=()
  [[ "$DEVICE" == cuda* ]] && FEATURES=(--features cuda)
  log "building rmtk (release${FEATURES:+, ${FEATURES[*]}})"
  cargo build --release --quiet "${FEATURES[@]}"
  BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/rmtk"
fi

# TRL.
VENV="$REPO/.venv-trl"
PY="$VENV/bin/python"
if [[ "$SKIP_TRL" == 0 && ! -x "$PY" ]]; then
  if [[ "${TRL_STANDALONE:-0}" == 1 ]]; then
    log "creating $VENV (standalone)"
    "${PYTHON:-python3}" -m venv "$VENV"
    if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
      "$PY" -m pip install --quiet --index-url "$TORCH_INDEX_URL" torch==2.15.0
    fi
    "$PY" -m pip install --quiet torch==2.15.0 transformers==5.23.0 trl==1.16.0 datasets pyarrow
  else
    [[ -x "$REPO/.venv-ref/bin/python" ]] || { echo "bench-rm: .venv-ref/ is missing: run scripts/setup-ref-venv.sh, or set TRL_STANDALONE=1" >&2; exit 1; }
    REF="$(readlink -f "$REPO/.venv-ref")"
    log "creating $VENV over $REF"
    "$REF/bin/python" -m venv "$VENV"
    SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    "$REF/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$SITE/_rmtk_ref.pth"
    "$PY" -m pip install --quiet trl==1.16.0 datasets
  fi
fi
DATA_PY="$PY"
[[ -x "$DATA_PY" ]] || DATA_PY="$REPO/.venv-ref/bin/python"

peak_kib() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rmtk-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
printf '\nmachine: %s, %s cores, load average %s\n' "$(uname -m)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'batch %s pairs (%s sequences) x %s tokens, %s updates, device %s\n\n' "$BATCH" "$((2 * BATCH))" "$LENGTH" "$STEPS" "$DEVICE"
printf '%-10s %-6s %12s %12s %10s\n' model tool tokens/s s/update peak_MiB
IFS=, read -ra LIST <<< "$MODELS"
for name in "${LIST[@]}"; do
  case "$name" in
    minilm) MODEL="$REPO/models/all-minilm-l6-v2" ;;
    smollm2) MODEL="$REPO/models/smollm2-135m-instruct" ;;
    *) MODEL="$name" ;;
  esac
  DATA="$WORK/$name.parquet"
  "$DATA_PY" scripts/bench_rm_data.py "$MODEL" "$LENGTH" "$((BATCH * STEPS))" "$DATA" >&2

  OUT="$WORK/$name-rmtk"
  /usr/bin/time -v -o "$WORK/$name-rmtk.time" "$BIN" train-rm --model "$MODEL" --data "$DATA" \
    --output "$OUT" --batch-size "$BATCH" --max-length "$LENGTH" --max-steps "$STEPS" \
    --lr 1e-5 --save-every 0 --no-group-by-length --device "$DEVICE" 2> "$WORK/$name-rmtk.log" \
    || { cat "$WORK/$name-rmtk.log" >&2; exit 1; }
  RMTK_TPS="$(python3 - "$OUT/metrics.jsonl" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
timed = recs[2:] if len(recs) > 2 else recs
tokens = sum(r["tokens"] for r in timed)
secs = sum(r["step_seconds"] for r in timed)
print(f"{tokens / secs:.1f} {secs / len(timed):.3f}")
EOF
)"
  read -r tps sps <<< "$RMTK_TPS"
  rss="$(peak_kib "$WORK/$name-rmtk.time")"
  printf '%-10s %-6s %12s %12s %10s\n' "$name" rmtk "$tps" "$sps" "$((rss / 1024))"
  RMTK_TPS_N="$tps"

  if [[ "$SKIP_TRL" == 0 ]]; then
    /usr/bin/time -v -o "$WORK/$name-trl.time" "$PY" scripts/bench_trl.py "$MODEL" "$DATA" "$BATCH" "$LENGTH" "$STEPS" $TRL_GC \
      > "$WORK/$name-trl.json" 2> "$WORK/$name-trl.log" || { cat "$WORK/$name-trl.log" >&2; exit 1; }
    read -r ttps tsps <<< "$(python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); t, s = d["tokens_per_s"], d["seconds_per_step"]; print(f"{t:.1f} {s:.3f}")' "$WORK/$name-trl.json")"
    trss="$(peak_kib "$WORK/$name-trl.time")"
    printf '%-10s %-6s %12s %12s %10s\n' "$name" trl "$ttps" "$tsps" "$((trss / 1024))"
    python3 -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f"{sys.argv[3]:<10} rmtk/trl   {a / b:10.2f}x tokens/s, {int(sys.argv[4]) / int(sys.argv[5]):.2f}x peak memory")' \
      "$RMTK_TPS_N" "$ttps" "$name" "$rss" "$trss"
  fi
done
printf '\nload average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
