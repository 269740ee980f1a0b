#!/usr/bin/env bash
# Memory of one reward-model training step on random weights of real configurations
# (benches/configs: Qwen2.5-0.5B, Qwen2.5-1.5B and a Llama-3-8B-shaped model, written from
# their published config.json values), beside `rmtk info --memory`'s estimate.
#   Each run is a fresh `rmtk train-rm --random-weights --max-steps 2` (the weights drawn
#   directly in the compute dtype, nothing read from disk) under /usr/bin/time; the figure is
#   the process's peak resident memory, initialisation and the final save included. Two
#   updates, because the second forward pass is the first with the optimizer's moments alive
#   (the steady state the estimate describes).
#   Runs: full   full fine-tuning, f32
#         lora   LoRA r 16 on all linear layers (PEFT's all-linear), bf16 frozen base
#         ckpt   lora plus --gradient-checkpointing
#   Shapes: 4 pairs x 512 tokens (every sequence exactly 512: long synthetic pairs, cut
#   with --overlong truncate); the 8B shape 1 pair x 256. A run whose estimate exceeds the
#   memory this machine has available is not started: the table says so, with the estimate.
#
# Usage: scripts/bench-memory.sh [--models "qwen2.5-0.5b qwen2.5-1.5b llama-3-8b-shape"]
#                                [--runs "full lora ckpt"] [--quick]
#   --quick   seconds: the tiny Llama config of tests/fixtures, 2 pairs x 32, dev build
# Needs: /usr/bin/time (Debian's `time` package); the tokenizer of models/smollm2-135m-instruct
# (scripts/fetch-models.sh) stands in for each model's own (its ids fit every vocabulary).
# Environment: RMTK_BIN (an rmtk binary; default: a release build made here).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
cd "$RMTK_ROOT"

MODELS="qwen2.5-0.5b qwen2.5-1.5b llama-3-8b-shape"
RUNS="full lora ckpt"
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --models) MODELS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    *) echo "bench-memory: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x /usr/bin/time ]] || { echo "bench-memory: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
OUT="$(rmtk_tmpdir bench-memory)"
trap 'rm -rf "$OUT"' EXIT

if [[ "$QUICK" == 1 ]]; then
  BIN="$(rmtk_bin dev)"
  MODELS="tiny-llama"
  rmtk_tiny_model llama "$OUT/models/tiny-llama"
  rm "$OUT/models/tiny-llama/model.safetensors"
else
  BIN="$(rmtk_bin release)"
  TOK="$RMTK_ROOT/models/smollm2-135m-instruct"
  [[ -f "$TOK/tokenizer.json" ]] || { echo "bench-memory: no $TOK/tokenizer.json (scripts/fetch-models.sh)" >&2; exit 1; }
  for m in $MODELS; do
    [[ -f "benches/configs/$m/config.json" ]] || { echo "bench-memory: no benches/configs/$m/config.json" >&2; exit 1; }
    mkdir -p "$OUT/models/$m"
    cp "benches/configs/$m/config.json" "$OUT/models/$m/"
    cp "$TOK/tokenizer.json" "$TOK/tokenizer_config.json" "$OUT/models/$m/"
  done
fi

# Long synthetic pairs: each side far past 512 tokens and the two sides different from
# their first word, so every cut sequence is full length and no pair is empty.
python3 - "$OUT/pairs.jsonl" <<'EOF'
import json, sys
words = "the quiet river carried stories of old towns past fields of barley and stone".split()
with open(sys.argv[1], "w") as f:
    for i in range(8):
        chosen = " ".join(words[(i + j) % len(words)] for j in range(900))
        rejected = " ".join(words[(i + 7 * j + 3) % len(words)] for j in range(900))
        f.write(json.dumps({"prompt": f"Write story {i}.", "chosen": "A " + chosen,
                            "rejected": "B " + rejected}) + "\n")
EOF

avail_kib() { awk '/^MemAvailable:/ {print $2}' /proc/meminfo; }
printf '# %s; %s cores; %s GiB memory, %s GiB available; load %s\n' \
  "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)" \
  "$(awk '/^MemTotal:/ {printf "%.1f", $2/1048576}' /proc/meminfo)" \
  "$(awk '/^MemAvailable:/ {printf "%.1f", $2/1048576}' /proc/meminfo)" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-18s %-5s %-9s %12s %12s %7s %9s  %s\n' model run tokens estimate peak "est/pk" "wall s" note
for m in $MODELS; do
  dir="$OUT/models/$m"
  if [[ "$QUICK" == 1 ]]; then pairs=2; len=32
  elif [[ "$m" == llama-3-8b-shape ]]; then pairs=1; len=256
  else pairs=4; len=512
  fi
  for run in $RUNS; do
    case "$run" in
      full) flags=(--dtype f32) ;;
      lora) flags=(--dtype bf16 --lora-r 16 --lora-target-modules all-linear) ;;
      ckpt) flags=(--dtype bf16 --lora-r 16 --lora-target-modules all-linear --gradient-checkpointing) ;;
      *) echo "bench-memory: unknown run $run (full, lora or ckpt)" >&2; exit 2 ;;
    esac
    info_flags=(--dtype "${flags[1]}" --batch-size "$pairs" --max-length "$len")
    [[ "$run" != full ]] && info_flags+=(--lora-r 16 --lora-target-modules all-linear)
    [[ "$run" == ckpt ]] && info_flags+=(--gradient-checkpointing)
    est="$("$BIN" info --model "$dir" --memory --json "${info_flags[@]}" \
      | python3 -c 'import json,sys; b=json.load(sys.stdin)["bytes"]; print(b["peak"] + b["process"])')"
    est_gib="$(python3 -c "print(f'{$est/2**30:.2f} GiB')")"
    if (( est / 1024 > $(avail_kib) )); then
      printf '%-18s %-5s %-9s %12s %12s %7s %9s  %s\n' "$m" "$run" "${pairs}x2x$len" "$est_gib" - - - \
        "not run: the estimate exceeds the $(python3 -c "print(f'{$(avail_kib)/2**20:.1f}')") GiB available"
      continue
    fi
    log="$OUT/$m-$run.log"
    rm -rf "$OUT/run"
    if ! /usr/bin/time -v "$BIN" train-rm --model "$dir" --random-weights --data "$OUT/pairs.jsonl" \
        --output "$OUT/run" --max-length "$len" --overlong truncate --batch-size "$pairs" \
        --max-steps 2 --save-every 0 --seed 7 "${flags[@]}" >"$log" 2>&1; then
      printf '%-18s %-5s %-9s %12s %12s %7s %9s  %s\n' "$m" "$run" "${pairs}x2x$len" "$est_gib" - - - "FAILED: see below"
      tail -n 15 "$log" >&2
      continue
    fi
    peak_kib="$(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$log")"
    wall="$(sed -n 's/^\s*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log" \
      | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.0f", s }')"
    python3 - "$m" "$run" "${pairs}x2x$len" "$est" "$peak_kib" "$wall" <<'EOF'
import sys
m, run, shape, est, peak_kib, wall = sys.argv[1:]
est, peak = int(est), int(peak_kib) * 1024
print(f"{m:<18} {run:<5} {shape:<9} {est/2**30:>8.2f} GiB {peak/2**30:>8.2f} GiB "
      f"{(est/peak - 1)*100:>+6.0f}% {wall:>9}")
EOF
  done
done
