#!/usr/bin/env bash
# Benchmark of `rmtk verify` (the README's figures):
#   1. the official Python IFEval checker on the 541 IFEval rows (each prompt's
#      instructions on the text-bison response of the same line, strict and loose), and
#      the official IFBench checker on IFBench's 294 rows (sample_output.jsonl);
#   2. rmtk's rules engine on the same rows, one thread and all threads (IFBench: one
#      thread), and the SmolLM2-135M yes/no judge (`cargo bench --bench verify`, release
#      build);
#   3. `rmtk verify --ifeval` and `--ifbench` end to end (process start, reading, writing);
# then the table and the ratio, with the machine and its load.
#
#   scripts/bench-verify.sh                 # CPU
#   DEVICE=cuda scripts/bench-verify.sh     # the judge on CUDA (builds --features cuda)
#   scripts/bench-verify.sh --quick         # seconds: rmtk's side only, dev profile
#
# Options:
#   --quick      rmtk's side in the dev profile (`cargo test --bench verify`, RMTK_BIN or a
#                dev build for step 3), 1 repetition, no judge (its model is SmolLM2), no
#                Python checker unless --with-peer; the figures only show it runs
#   --with-peer  with --quick: run the official checker too (1 repetition)
#   --no-peer    skip the official checker (also in the full mode)
# Environment:
#   IFBENCH_PYTHON  a Python with the IFBench checker (scripts/requirements/ifbench-checker.txt
#               and ifbench-checker-nodeps.txt); default: the venv .venv-ifbench-ref/, made
#               from them on first use
#   REF_PYTHON  a Python with the checker's packages (scripts/requirements/ifeval-checker.txt);
#               default: the venv .venv-ifeval-ref/, made from that file on first use
#               (scripts/lib/venv.sh) with PYTHON, else python3.11 if present, else python3.
#               The reference verdicts were made with Python 3.11.
#   REPS        repetitions of the 541 rows (default: Python 3, rmtk 20; --quick 1)
#   JUDGE_ROWS  judge checks timed (default 32)
#   RMTK_BIN    the rmtk binary for step 3 (default: a release build; --quick: a dev build)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$RMTK_ROOT/scripts/lib/venv.sh"
rmtk_help_if_asked "$0" "$@"
QUICK=0
PEER=1
PEER_SET=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --with-peer) PEER=1; PEER_SET=1 ;;
    --no-peer) PEER=0; PEER_SET=1 ;;
    *) echo "bench-verify: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$QUICK" == 1 && "$PEER_SET" == 0 ]] && PEER=0
cd "$RMTK_ROOT"

step() { printf '\n==> %s\n' "$*" >&2; }
OUT=$(rmtk_tmpdir bench-verify)
DEVICE=${DEVICE:-cpu}
FEATURES=()
[[ "$DEVICE" == cuda* ]] && FEATURES=(--features cuda)
if [[ "$QUICK" == 1 ]]; then
  PROFILE=dev
  PY_REPS=${REPS:-1}
  RS_REPS=${REPS:-1}
  JUDGE=(--no-judge)
  trap 'rm -rf "$OUT"' EXIT
else
  PROFILE=release
  PY_REPS=${REPS:-3}
  RS_REPS=${REPS:-20}
  JUDGE=(--judge-rows "${JUDGE_ROWS:-32}")
fi

if [[ "$PEER" == 1 ]]; then
  PY=${REF_PYTHON:-}
  if [[ -z "$PY" ]]; then
    if [[ -z "${PYTHON:-}" ]]; then
      PYTHON=python3
      command -v python3.11 >/dev/null 2>&1 && PYTHON=python3.11
    fi
    step "the official checker's environment (.venv-ifeval-ref/, scripts/requirements/ifeval-checker.txt)"
    RMTK_VENV_QUIET=1 ensure_venv .venv-ifeval-ref scripts/requirements/ifeval-checker.txt
    PY=.venv-ifeval-ref/bin/python
  fi
  IFB_PY=${IFBENCH_PYTHON:-}
  if [[ -z "$IFB_PY" ]]; then
    step "the official IFBench checker's environment (.venv-ifbench-ref/, scripts/requirements/ifbench-checker*.txt)"
    RMTK_VENV_QUIET=1 ensure_venv .venv-ifbench-ref scripts/requirements/ifbench-checker.txt
    .venv-ifbench-ref/bin/pip install --quiet --no-deps --require-hashes \
      -r scripts/requirements/ifbench-checker-nodeps.txt
    IFB_PY=.venv-ifbench-ref/bin/python
  fi
fi

step "machine"
{
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt" >&2

if [[ "$PEER" == 1 ]]; then
  step "official Python checker"
  "$PY" scripts/bench-ifeval-python.py --reps "$PY_REPS" | tee "$OUT/python.jsonl"
  step "official Python checker (IFBench)"
  "$IFB_PY" scripts/bench-ifbench-python.py --reps "$PY_REPS" | tee -a "$OUT/python.jsonl"
else
  echo "bench-verify: the official Python checker skipped (--with-peer runs it)" >&2
  : > "$OUT/python.jsonl"
fi

step "rmtk: rules engine, $([[ "$QUICK" == 1 ]] && echo 'no judge' || echo 'and judge') (benches/verify.rs, $PROFILE profile)"
rmtk_bench verify "$PROFILE" "${FEATURES[@]}" -- --reps "$RS_REPS" "${JUDGE[@]}" --device "$DEVICE" \
  | grep '^{' | tee "$OUT/rust.jsonl"

step "rmtk verify --ifeval, end to end"
RMTK="$(rmtk_bin "$PROFILE" "${FEATURES[@]}")"
start=$(date +%s.%N)
"$RMTK" verify --ifeval data/ifeval/input_data.jsonl \
  --responses data/ifeval/input_response_data_text_bison.jsonl \
  --output "$OUT/ifeval.jsonl" --summary "$OUT/ifeval-summary.json" > "$OUT/ifeval-report.txt"
end=$(date +%s.%N)
echo "{\"bench\": \"rmtk verify --ifeval (156 rows, process wall time)\", \"seconds\": $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", b - a }')}" \
  | tee "$OUT/cli.jsonl"
step "rmtk verify --ifbench, end to end"
start=$(date +%s.%N)
"$RMTK" verify --ifbench data/ifbench/IFBench_test.jsonl \
  --responses data/ifbench/sample_output.jsonl \
  --output "$OUT/ifbench.jsonl" --summary "$OUT/ifbench-summary.json" > "$OUT/ifbench-report.txt"
end=$(date +%s.%N)
echo "{\"bench\": \"rmtk verify --ifbench (294 rows, process wall time)\", \"seconds\": $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", b - a }')}" \
  | tee -a "$OUT/cli.jsonl"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2

step "summary$([[ "$QUICK" == 1 ]] || echo " (files in $OUT)")"
python3 - "$OUT" "$PROFILE" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = [json.loads(l) for f in ("python.jsonl", "rust.jsonl", "cli.jsonl") for l in open(out / f) if l.strip()]
official = {("IFBench" in r["bench"]): r for r in rows if r["bench"].startswith("official")}
python = official.get(False)
print(f"{'measurement':<52} {'rows/s':>12} {'vs Python':>10}")
for r in rows:
    if "rows_per_s" in r:
        peer = official.get("IFBench" in r["bench"])
        ratio = r["rows_per_s"] / peer["rows_per_s"] if peer and r["bench"].startswith("rules") else None
        print(f"{r['bench']:<52} {r['rows_per_s']:>12.1f} {('%.0fx' % ratio) if ratio else '':>10}")
    else:
        print(f"{r['bench']:<52} {r['seconds']:>11.3f}s")
if python is None:
    print("(no official checker: skipped)")
if sys.argv[2] == "dev":
    print("(dev profile: rmtk's figures are not the release build's)")
print(open(out / "machine.txt").read(), end="")
PY
