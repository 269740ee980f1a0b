#!/usr/bin/env bash
# Create the benchmark-golden venv, .venv-bench/ at the repo root, used by
# scripts/gen-benchmark-goldens.py (RewardBench v1/v2, RM-Bench and length-bias goldens):
#
#   scripts/setup-bench-venv.sh
#   .venv-bench/bin/python scripts/gen-benchmark-goldens.py
#
# Two steps: scripts/requirements/bench.txt (datasets, pandas, numpy, scipy and their
# dependencies, pinned by scripts/requirements/lock.py from bench.in) through
# scripts/lib/venv.sh, then scripts/requirements/bench-nodeps.txt (rewardbench 0.1.4, pinned
# by hash) with --no-deps: rewardbench's declared dependencies (torch, transformers, ...)
# are for running models, which the goldens do not do. CPU only, no torch; needs PyPI.
#
# Usage: scripts/setup-bench-venv.sh [--force]
#   --force          delete and recreate an existing .venv-bench/
# Environment:
#   PYTHON           interpreter for the venv (default python3; 3.10 or newer, 3.11 was used)
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$SCRIPT_DIR/lib/common.sh"
source "$SCRIPT_DIR/lib/venv.sh"
rmtk_help_if_asked "$0" "$@"

VENV="$RMTK_ROOT/.venv-bench"
REQS="$SCRIPT_DIR/requirements/bench.txt"
NODEPS="$SCRIPT_DIR/requirements/bench-nodeps.txt"
PYTHON="${PYTHON:-python3}"

die() { printf 'setup-bench-venv: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'setup-bench-venv: %s\n' "$*" >&2; }

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; set PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1); need Python >= 3.10"

if [[ -d "$VENV" && "$FORCE" == 1 ]]; then
  log "removing $VENV"
  rm -rf "$VENV"
fi
ensure_venv "$VENV" "$REQS" || die "could not make $VENV"

want="$(sed -n 's/^rewardbench==\([^ ]*\).*/\1/p' "$NODEPS")"
have="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("rewardbench"))' 2>/dev/null || true)"
if [[ "$have" != "$want" ]]; then
  log "installing rewardbench $want without its dependencies"
  quiet=(); [[ "${RMTK_VENV_QUIET:-0}" == 1 ]] && quiet=(--quiet)
  "$VENV/bin/python" -m pip --disable-pip-version-check "${quiet[@]}" install --no-deps --require-hashes -r "$NODEPS" \
    || die "pip install -r $NODEPS failed (is PyPI reachable?)"
fi

"$VENV/bin/python" - <<'PYEOF' || die "the venv was installed but does not import"
import importlib.metadata as m
import datasets, numpy, pandas, scipy
print(f"setup-bench-venv: ok: rewardbench {m.version('rewardbench')}, datasets {datasets.__version__}, "
      f"pandas {pandas.__version__}, numpy {numpy.__version__}, scipy {scipy.__version__}")
PYEOF
