#!/usr/bin/env bash
# `rmtk data inspect` beside its pandas peer (scripts/inspect_pandas.py) on one synthetic
# preference file (scripts/make-synthetic-prefs.py), in one run, then `inspect` again under a
# memory cap smaller than the file:
#   1. the file: --pairs conversational pairs (default 1,000,000), uncompressed parquet;
#   2. rmtk data inspect FILE --model MODEL --max-length N (release build), wall time and
#      peak resident memory (/usr/bin/time);
#   3. the pandas script on the same file: the same tokenizer (HF tokenizers, encode_batch)
#      and chat template; wall time, peak memory; the two reports' figures compared;
#   4. rmtk again in a memory cgroup limited to --cap-mib MiB (default: half the file's
#      size; cgroup v1 or v2, so root in a container that lets it make one; `ulimit -v` is no
#      substitute: glibc then mmaps every allocation): it must complete with the same report.
# Prints the machine and its load, one line per run and the ratio. A report, not a test.
#
# Usage: scripts/bench-data.sh [--pairs N] [--max-length N] [--cap-mib M] [--dir DIR]
#   --dir DIR   keep the file (and reuse it if there) in DIR; default: a temporary folder
# Needs: models/smollm2-135m-instruct (scripts/fetch-models.sh; MODEL overrides), Python 3
# (the venv .venv-data/ is made from scripts/requirements/data.txt). Environment: RMTK_BIN.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/venv.sh"
rmtk_help_if_asked "$0" "$@"
cd "$RMTK_ROOT"
PAIRS=1000000
MAXLEN=96
CAP=""
DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) PAIRS="$2"; shift 2 ;;
    --max-length) MAXLEN="$2"; shift 2 ;;
    --cap-mib) CAP="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    *) echo "bench-data: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
MODEL=${MODEL:-models/smollm2-135m-instruct}
[[ -f "$MODEL/tokenizer.json" ]] || { echo "bench-data: no $MODEL (scripts/fetch-models.sh)" >&2; exit 1; }
RMTK_VENV_QUIET=1 ensure_venv .venv-data scripts/requirements/data.txt
PY=.venv-data/bin/python
BIN="$(rmtk_bin release)"
if [[ -z "$DIR" ]]; then
  DIR="$(rmtk_tmpdir bench-data)"
  trap 'rm -rf "$DIR"' EXIT
fi
mkdir -p "$DIR"
FILE="$DIR/prefs-$PAIRS.parquet"
[[ -f "$FILE" ]] || "$PY" scripts/make-synthetic-prefs.py --pairs "$PAIRS" --out "$FILE" >&2
SIZE_MIB=$(( $(stat -c %s "$FILE") / 1048576 ))
CAP=${CAP:-$(( SIZE_MIB / 2 ))}
printf '# %s; %s cores; load %s; %s pairs, %s MiB on disk; --max-length %s\n' \
  "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "$PAIRS" "$SIZE_MIB" "$MAXLEN"
timed() { # OUT TIMEFILE CMD...: stdout to OUT, "seconds KiB" to TIMEFILE
  local out="$1" tf="$2"; shift 2
  /usr/bin/time -f '%e %M' -o "$tf" "$@" >"$out" 2>"$out.err" || { tail -n 20 "$out.err" >&2; return 1; }
}
timed "$DIR/rmtk.json" "$DIR/rmtk.time" "$BIN" data inspect "$FILE" --model "$MODEL" --max-length "$MAXLEN"
timed "$DIR/pandas.json" "$DIR/pandas.time" "$PY" scripts/inspect_pandas.py "$FILE" --model "$MODEL" --max-length "$MAXLEN"
# A memory cgroup of CAP MiB: v1 (memory.limit_in_bytes) or v2 (memory.max).
capped=ok
CG=""
if [[ -d /sys/fs/cgroup/memory ]] && mkdir -p "/sys/fs/cgroup/memory/rmtk-bench-$$" 2>/dev/null; then
  CG="/sys/fs/cgroup/memory/rmtk-bench-$$"
  echo $(( CAP * 1048576 )) >"$CG/memory.limit_in_bytes"
elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null && mkdir -p "/sys/fs/cgroup/rmtk-bench-$$" 2>/dev/null; then
  CG="/sys/fs/cgroup/rmtk-bench-$$"
  echo $(( CAP * 1048576 )) >"$CG/memory.max"
fi
if [[ -n "$CG" ]]; then
  bash -c "echo \$\$ >'$CG/cgroup.procs'; exec /usr/bin/time -f '%e %M' -o '$DIR/capped.time' '$BIN' data inspect '$FILE' --model '$MODEL' --max-length $MAXLEN" \
    >"$DIR/capped.json" 2>"$DIR/capped.err" || capped="FAILED ($(tail -n 1 "$DIR/capped.err"))"
  cat "$CG/memory.max_usage_in_bytes" "$CG/memory.peak" 2>/dev/null | head -n 1 >"$DIR/capped.cg" || true
  rmdir "$CG" 2>/dev/null || true
else
  capped="not run: no memory cgroup can be made here (needs root and a writable /sys/fs/cgroup)"
fi
python3 - "$DIR" "$CAP" "$capped" <<'PYEOF'
import json, sys
d, cap, capped = sys.argv[1], sys.argv[2], sys.argv[3]
def load(name):
    secs, kib = open(f"{d}/{name}.time").read().split()[-2:]
    return float(secs), int(kib) / 1024
(rs, rm), (ps, pm) = load("rmtk"), load("pandas")
print(f"rmtk data inspect      {rs:8.1f} s  peak {rm:8.0f} MiB")
print(f"pandas (inspect_pandas) {ps:7.1f} s  peak {pm:8.0f} MiB")
print(f"rmtk is {ps / rs:.2f}x faster, {pm / rm:.1f}x less memory")
r, p = json.load(open(f"{d}/rmtk.json")), json.load(open(f"{d}/pandas.json"))
keys = ["rows", "pairs", "bad_rows", "identical_chosen_rejected", "duplicate_pairs", "distinct_prompts"]
diff = [k for k in keys if r[k] != p[k]]
for part in ["prompt", "chosen", "rejected", "sequence"]:
    if r["lengths"][part] != p["lengths"][part]:
        diff.append(f"lengths.{part}")
ro, po = r["lengths"]["overlong"], p["lengths"]["overlong"]
for k in ["over", "truncate_start_identical", "truncate_identical", "truncate_responses_cut"]:
    if ro[k] != po[k]:
        diff.append(f"overlong.{k} ({ro[k]} vs {po[k]}{'; the pandas script approximates it' if k == 'truncate_responses_cut' else ''})")
print("reports agree" if not diff else "reports differ in: " + ", ".join(diff))
if capped == "ok":
    cs, cm = load("capped")
    same = json.load(open(f"{d}/capped.json")) == r
    try:
        cg = f", the cgroup's peak {int(open(f'{d}/capped.cg').read()) / 2**20:.0f} MiB"
    except (OSError, ValueError):
        cg = ""
    print(f"in a memory cgroup of {cap} MiB: completed in {cs:.1f} s (peak resident {cm:.0f} MiB{cg}), "
          f"{'the same report' if same else 'A DIFFERENT REPORT'}")
else:
    print(f"in a memory cgroup of {cap} MiB: {capped}")
PYEOF
