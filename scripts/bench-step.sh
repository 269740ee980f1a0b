#!/usr/bin/env bash
# One reward-model training step (forward, Bradley-Terry loss, backward) of a backbone,
# rmtk (benches/train_step.rs, release) beside PyTorch (scripts/bench_step.py, the reference
# venv) on the same token ids, in interleaved rounds; then the step's matrix multiplies
# alone on the same shapes and layouts; then where each tool's time goes.
#
#   scripts/bench-step.sh [--model DIR] [--batch 4] [--seq 256] [--rounds 3] [--reps 2]
#                         [--no-gemm] [--no-profile] [--no-peer] [--plain]
#
#   --batch     sequences per step (pairs x 2); every sequence --seq real tokens
#   --rounds    interleaved rounds (rmtk, PyTorch, rmtk, ...); medians are reported
#   --reps      timed steps per round after one warm-up (each round reports its best)
#   --no-gemm   skip the multiply-only comparison
#   --no-profile  skip the breakdowns (PyTorch's profiler table per op; for rmtk, `perf`
#               samples of one step grouped by what the code does: needs perf, from
#               Debian's linux-perf)
#   --plain     also time rmtk's plain-op path (RMTK_KERNELS=plain)
#
# Prints the CPU and the load average before and after. Figures are seconds of wall time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$RMTK_ROOT/scripts/lib/venv.sh"
rmtk_help_if_asked "$0" "$@"
cd "$RMTK_ROOT"
log() { printf 'bench-step: %s\n' "$*" >&2; }

MODEL=models/smollm2-135m-instruct
BATCH=4
SEQ=256
ROUNDS=3
REPS=2
GEMM=1
PROFILE=1
PEER=1
PLAIN=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --seq) SEQ="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --no-gemm) GEMM=0; shift ;;
    --no-profile) PROFILE=0; shift ;;
    --no-peer) PEER=0; shift ;;
    --plain) PLAIN=1; shift ;;
    *) echo "bench-step: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [[ "$PEER" == 1 ]]; then
  ensure_venv "$RMTK_ROOT/.venv-ref" scripts/requirements/ref.txt
  PY="$RMTK_ROOT/.venv-ref/bin/python"
fi
log "building benches/train_step.rs (release)"
cargo build --release --locked --quiet --bench train_step >&2
target="${CARGO_TARGET_DIR:-$RMTK_ROOT/target}"
BIN="$(ls -t "$target"/release/deps/train_step-* | grep -v '\.d$' | head -1)"
WORK="$(rmtk_tmpdir bench-step)"
trap 'rm -rf "$WORK"' EXIT

printf '\nmachine: %s (%s), %s cores, load average %s\n' "$(uname -m)" \
  "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'model %s, %s sequences x %s tokens, %s rounds of %s timed steps\n\n' "$MODEL" "$BATCH" "$SEQ" "$ROUNDS" "$REPS"

for round in $(seq 1 "$ROUNDS"); do
  "$BIN" --model "$MODEL" --batch "$BATCH" --seq "$SEQ" --reps "$REPS" | tee -a "$WORK/steps.jsonl"
  if [[ "$PLAIN" == 1 ]]; then
    RMTK_KERNELS=plain "$BIN" --model "$MODEL" --batch "$BATCH" --seq "$SEQ" --reps "$REPS" | tee -a "$WORK/steps.jsonl"
  fi
  if [[ "$PEER" == 1 ]]; then
    "$PY" scripts/bench_step.py "$MODEL" "$BATCH" "$SEQ" "$REPS" 2>/dev/null | tee -a "$WORK/steps.jsonl"
  fi
done

if [[ "$GEMM" == 1 ]]; then
  echo
  "$BIN" --model "$MODEL" --batch "$BATCH" --seq "$SEQ" --reps 3 --gemm > "$WORK/gemm.jsonl"
  [[ "$PEER" == 1 ]] && "$PY" scripts/bench_step.py "$MODEL" "$BATCH" "$SEQ" 3 --gemm 2>/dev/null >> "$WORK/gemm.jsonl"
fi

python3 - "$WORK/steps.jsonl" "$WORK/gemm.jsonl" <<'PY'
import json, os, statistics, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
key = lambda r: r["engine"] + ("" if r.get("kernels", "fused") == "fused" else " (plain ops)")
med = {}
print(f"\n{'engine':<20} {'forward s':>10} {'backward s':>11} {'step s':>8} {'tokens/s':>9}   (medians)")
for name in dict.fromkeys(key(r) for r in steps):
    rows = [r for r in steps if key(r) == name]
    m = {k: statistics.median(r[k] for r in rows) for k in ("forward_s", "backward_s", "step_s", "tokens_per_s")}
    med[name] = m
    print(f"{name:<20} {m['forward_s']:10.3f} {m['backward_s']:11.3f} {m['step_s']:8.3f} {m['tokens_per_s']:9.1f}")
gemm = {}
if os.path.exists(sys.argv[2]):
    rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
    totals = {r["engine"]: r for r in rows if r["what"] == "gemm_total"}
    if totals:
        print(f"\nmatrix multiplies of the step's linear layers alone (same shapes and layouts):")
        ops = [r for r in rows if r["what"] == "gemm"]
        names = list(dict.fromkeys(r["op"] for r in ops))
        engines = list(totals)
        print(f"{'product':<26} {'m x k x n':>18} {'x/step':>6} " + " ".join(f"{e + ' GFLOP/s':>17}" for e in engines))
        for n in names:
            rs = {r["engine"]: r for r in ops if r["op"] == n}
            r0 = next(iter(rs.values()))
            shape = f"{r0['m']}x{r0['k']}x{r0['n']}"
            print(f"{n:<26} {shape:>18} {r0['per_step']:>6} " + " ".join(f"{rs[e]['gflops']:17.1f}" for e in engines if e in rs))
        for e, t in totals.items():
            gemm[e] = t["seconds"]
            print(f"{e:<8} all of them: {t['seconds']:.3f} s per step ({t['gflops']:.1f} GFLOP/s)")
if "rmtk" in med and "pytorch" in med:
    a, b = med["rmtk"], med["pytorch"]
    print(f"\nrmtk/pytorch: {a['tokens_per_s'] / b['tokens_per_s']:.2f}x tokens/s (medians)")
    if "rmtk" in gemm and "pytorch" in gemm:
        ra, rb = a["step_s"] - gemm["rmtk"], b["step_s"] - gemm["pytorch"]
        print(f"time outside the linear layers' multiplies: rmtk {ra:.3f} s, pytorch {rb:.3f} s per step")
PY

if [[ "$PROFILE" == 1 ]]; then
  if [[ "$PEER" == 1 ]]; then
    echo; echo "PyTorch's profiler, one step (self CPU time per op):"
    # (`|| true`: head closing the pipe early is not a failure)
    "$PY" scripts/bench_step.py "$MODEL" "$BATCH" "$SEQ" 0 --profile 2>&1 >/dev/null \
      | grep -E '^ *(Name|aten|autograd|Self CPU time)' | head -24 || true
  fi
  if command -v perf > /dev/null; then
    echo; echo "rmtk, perf samples of one warm-up and one timed step, by what the code does (self time):"
    perf record -q -e cpu-clock -F 400 -o "$WORK/perf.data" -- "$BIN" --model "$MODEL" --batch "$BATCH" --seq "$SEQ" --reps 1 > /dev/null 2>&1
    perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
      | awk '/^ +[0-9.]+%/ { p = $1; sub("%", "", p); $1 = ""; print p "\t" $0 }' \
      | python3 -c '
import re, sys
groups = [
    ("matrix multiply (gemm crate)", r"gemm"),
    ("exp (softmax, SiLU)", r"expf|exp_"),
    ("memory: page faults, zeroing, copies", r"clear_page|page_fault|memset|memmove|memcpy|do_anonymous|folio|mm_fault"),
    ("strided copies (transposes, contiguous)", r"StridedIter|contiguous|strided"),
    ("rmtk fused kernels", r"rmtk::kernels"),
    ("model loading (not the step)", r"rmtk::models::load|safetensors|read_f32"),
    ("burn-flex element-wise and reductions", r"burn_flex|macerator"),
    ("autodiff bookkeeping", r"burn_autodiff"),
    ("threads (rayon, scheduler)", r"rayon|futex|spin|sched|task_switch|irq"),
]
totals = {g: 0.0 for g, _ in groups}
other = 0.0
for line in sys.stdin:
    pct, sym = line.split("\t", 1)
    for g, pat in groups:
        if re.search(pat, sym):
            totals[g] += float(pct)
            break
    else:
        other += float(pct)
for g, _ in groups:
    print(f"  {totals[g]:5.1f}%  {g}")
print(f"  {other:5.1f}%  other")
'
  else
    echo "(rmtk breakdown skipped: no perf; apt-get install linux-perf)"
  fi
fi
printf '\nload average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
