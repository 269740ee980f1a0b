#!/usr/bin/env bash
# Reward-model training throughput and peak memory: rmtk train-rm against TRL's
# RewardTrainer, same machine, model, data, batch size and max length.
#
#   scripts/bench-rm.sh [--models minilm,smollm2] [--batch 8] [--length 256] [--steps 12]
#                       [--rounds 3] [--device cpu|cuda] [--trl-gradient-checkpointing]
#                       [--skip-trl] [--quick] [--with-peer]
#
# For each model (models/all-minilm-l6-v2, models/smollm2-135m-instruct, or a folder):
#   1. scripts/bench_rm_data.py writes BATCH*STEPS pre-tokenized pairs of exactly LENGTH
#      tokens (from data/prefs-en-demo.parquet; no padding anywhere);
#   2. rmtk train-rm (release build) trains STEPS updates on them;
#   3. TRL's RewardTrainer (scripts/bench_trl.py) trains STEPS updates on the same file
#      (float32, dropout off, gradient checkpointing off unless asked: rmtk keeps
#      activations too).
# Tokens/s are real tokens (2 * BATCH * LENGTH per update) over the updates after the
# first two; peak memory is the process's maximum resident set (GNU time's
# "Maximum resident set size"). The tools run in ROUNDS interleaved rounds (rmtk, TRL,
# rmtk, TRL, ...); each round is printed, then the median of each tool's rounds and the
# ratio of the medians. The CPU and the machine's load average are printed: other work on
# the machine lowers both tools' figures.
#
# --quick: seconds, on the tiny BERT and Llama of tests/fixtures (random weights; models
# tiny-bert,tiny-llama), batch 2 x 32 tokens, 4 updates, a dev build (or RMTK_BIN), and
# pairs of random token ids written with Python's standard library (no venv); TRL only
# with --with-peer. The figures only show that the benchmark runs.
#
# TRL comes from PyPI into .venv-trl/, made on first use by scripts/lib/venv.sh from
# scripts/requirements/trl.txt (every package pinned):
#   - by default layered over the reference venv .venv-ref/ (scripts/requirements/ref.txt:
#     torch 2.15, transformers 5.23; made on first use too), adding trl==1.16.0 and datasets;
#   - with TRL_STANDALONE=1, a venv of its own with all of trl.txt (torch included; from
#     TORCH_INDEX_URL first if set, e.g. https://download.pytorch.org/whl/cpu).
# --skip-trl without --quick still needs .venv-ref/ (transformers tokenizes the data).
# Environment: RMTK_BIN (use this binary instead of building), PYTHON (makes the venvs),
# TRL_STANDALONE, TORCH_INDEX_URL.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$RMTK_ROOT/scripts/lib/venv.sh"
rmtk_help_if_asked "$0" "$@"
REPO="$RMTK_ROOT"
cd "$REPO"
MODELS=""
BATCH=""
LENGTH=""
STEPS=""
ROUNDS=""
DEVICE=cpu
TRL_GC=""
SKIP_TRL=0
QUICK=0
WITH_PEER=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --models) MODELS="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --length) LENGTH="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --trl-gradient-checkpointing) TRL_GC="--gradient-checkpointing"; shift ;;
    --skip-trl) SKIP_TRL=1; shift ;;
    --quick) QUICK=1; shift ;;
    --with-peer) WITH_PEER=1; shift ;;
    *) echo "bench-rm: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ "$QUICK" == 1 ]]; then
  MODELS=${MODELS:-tiny-bert,tiny-llama}; BATCH=${BATCH:-2}; LENGTH=${LENGTH:-32}; STEPS=${STEPS:-4}; ROUNDS=${ROUNDS:-1}
  [[ "$WITH_PEER" == 1 ]] || SKIP_TRL=1
else
  MODELS=${MODELS:-minilm,smollm2}; BATCH=${BATCH:-8}; LENGTH=${LENGTH:-256}; STEPS=${STEPS:-12}; ROUNDS=${ROUNDS:-3}
fi
[[ -x /usr/bin/time ]] || { echo "bench-rm: needs GNU time (/usr/bin/time; apt-get install time)" >&2; exit 1; }

log() { printf 'bench-rm: %s\n' "$*" >&2; }

# rmtk: a release build (--quick: dev).
FEATURES=()
[[ "$DEVICE" == cuda* ]] && FEATURES=(--features cuda)
BIN="$(rmtk_bin "$([[ "$QUICK" == 1 ]] && echo dev || echo release)" "${FEATURES[@]}")"

# TRL, and the Python that writes the data (none with --quick).
VENV="$REPO/.venv-trl"
PY="$VENV/bin/python"
DATA_PY=""
if [[ "$SKIP_TRL" == 0 ]]; then
  if [[ "${TRL_STANDALONE:-0}" == 1 ]]; then
    ensure_venv "$VENV" scripts/requirements/trl.txt
  else
    ensure_venv "$REPO/.venv-ref" scripts/requirements/ref.txt
    ensure_venv "$VENV" scripts/requirements/trl.txt --over "$REPO/.venv-ref"
  fi
  DATA_PY="$PY"
elif [[ "$QUICK" == 0 ]]; then
  ensure_venv "$REPO/.venv-ref" scripts/requirements/ref.txt
  DATA_PY="$REPO/.venv-ref/bin/python"
fi
[[ "$SKIP_TRL" == 1 ]] && log "TRL skipped$([[ "$QUICK" == 1 ]] && echo ' (--with-peer runs it)')"

# --quick's data: pairs of random token ids (above the special tokens, below the vocabulary).
tiny_data() {
  python3 - "$@" <<'PY'
import json, random, sys
length, pairs, vocab, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(42)
with open(out, "w") as f:
    for _ in range(pairs):
        chosen = [rng.randrange(7, vocab) for _ in range(length)]
        rejected = [rng.randrange(7, vocab) for _ in range(length)]
        f.write(json.dumps({"chosen_ids": chosen, "rejected_ids": rejected}) + "\n")
print(f"{out}: {pairs} pairs of {length} random ids")
PY
}

peak_kib() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }

WORK="$(rmtk_tmpdir bench-rm)"
trap 'rm -rf "$WORK"' EXIT
printf '\nmachine: %s (%s), %s cores, load average %s\n' "$(uname -m)" "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'batch %s pairs (%s sequences) x %s tokens, %s updates, device %s\n\n' "$BATCH" "$((2 * BATCH))" "$LENGTH" "$STEPS" "$DEVICE"
printf '%-10s %-6s %12s %12s %10s\n' model tool tokens/s s/update peak_MiB
IFS=, read -ra LIST <<< "$MODELS"
for name in "${LIST[@]}"; do
  case "$name" in
    minilm) MODEL="$REPO/models/all-minilm-l6-v2" ;;
    smollm2) MODEL="$REPO/models/smollm2-135m-instruct" ;;
    tiny-bert|tiny-llama) MODEL="$WORK/$name"; rmtk_tiny_model "${name#tiny-}" "$MODEL" ;;
    *) MODEL="$name" ;;
  esac
  tag="${name//\//_}"
  if [[ "$QUICK" == 1 ]]; then
    DATA="$WORK/$tag.jsonl"
    vocab="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$MODEL/config.json")"
    tiny_data "$LENGTH" "$((BATCH * STEPS))" "$vocab" "$DATA" >&2
  else
    DATA="$WORK/$tag.parquet"
    "$DATA_PY" scripts/bench_rm_data.py "$MODEL" "$LENGTH" "$((BATCH * STEPS))" "$DATA" >&2
  fi

  RMTK_ROWS=()
  TRL_ROWS=()
  for round in $(seq 1 "$ROUNDS"); do
    OUT="$WORK/$tag-rmtk-$round"
    /usr/bin/time -v -o "$WORK/$tag-rmtk.time" "$BIN" train-rm --model "$MODEL" --data "$DATA" \
      --output "$OUT" --batch-size "$BATCH" --max-length "$LENGTH" --max-steps "$STEPS" \
      --lr 1e-5 --save-every 0 --no-group-by-length --device "$DEVICE" 2> "$WORK/$tag-rmtk.log" \
      || { cat "$WORK/$tag-rmtk.log" >&2; exit 1; }
    read -r tps sps <<< "$(python3 - "$OUT/metrics.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
timed = recs[2:] if len(recs) > 2 else recs
tokens = sum(r["tokens"] for r in timed)
secs = sum(r["step_seconds"] for r in timed)
print(f"{tokens / secs:.1f} {secs / len(timed):.3f}")
PY
)"
    rm -rf "$OUT"
    rss="$(peak_kib "$WORK/$tag-rmtk.time")"
    printf '%-10s %-6s %12s %12s %10s   (round %s)\n' "$name" rmtk "$tps" "$sps" "$((rss / 1024))" "$round"
    RMTK_ROWS+=("$tps $sps $rss")

    if [[ "$SKIP_TRL" == 0 ]]; then
      /usr/bin/time -v -o "$WORK/$tag-trl.time" "$PY" scripts/bench_trl.py "$MODEL" "$DATA" "$BATCH" "$LENGTH" "$STEPS" $TRL_GC \
        > "$WORK/$tag-trl.json" 2> "$WORK/$tag-trl.log" || { cat "$WORK/$tag-trl.log" >&2; exit 1; }
      read -r ttps tsps <<< "$(python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); t, s = d["tokens_per_s"], d["seconds_per_step"]; print(f"{t:.1f} {s:.3f}")' "$WORK/$tag-trl.json")"
      trss="$(peak_kib "$WORK/$tag-trl.time")"
      printf '%-10s %-6s %12s %12s %10s   (round %s)\n' "$name" trl "$ttps" "$tsps" "$((trss / 1024))" "$round"
      TRL_ROWS+=("$ttps $tsps $trss")
    fi
  done
  # Medians of the rounds (tokens/s, s/update), the largest peak memory; then the ratio.
  summary() {
    python3 -c '
import statistics, sys
rows = [list(map(float, r.split())) for r in sys.argv[3:]]
tps = statistics.median(r[0] for r in rows)
sps = statistics.median(r[1] for r in rows)
rss = max(r[2] for r in rows)
print(f"{sys.argv[1]:<10} {sys.argv[2]:<6} {tps:12.1f} {sps:12.3f} {int(rss) // 1024:10d}   (median of {len(rows)})")
print(f"{tps} {int(rss)}", file=sys.stderr)
' "$@"
  }
  summary "$name" rmtk "${RMTK_ROWS[@]}" 2> "$WORK/rmtk.median"
  if [[ "$SKIP_TRL" == 0 ]]; then
    summary "$name" trl "${TRL_ROWS[@]}" 2> "$WORK/trl.median"
    read -r a arss < "$WORK/rmtk.median"
    read -r b brss < "$WORK/trl.median"
    python3 -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f"{sys.argv[3]:<10} rmtk/trl   {a / b:10.2f}x tokens/s, {int(sys.argv[4]) / int(sys.argv[5]):.2f}x peak memory (medians)")' \
      "$a" "$b" "$name" "$arss" "$brss"
  fi
done
printf '\nload average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
if [[ "$QUICK" == 1 ]]; then
  echo "(--quick: dev build, tiny random models: shows that the benchmark runs, not the tools' speed)"
fi
