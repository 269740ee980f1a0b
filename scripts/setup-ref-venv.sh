#!/usr/bin/env bash
# Create the reference venv, .venv-ref/ at the repo root, used to re-run the golden scripts:
#
#   scripts/setup-ref-venv.sh
#   .venv-ref/bin/python scripts/check-smollm2-conversion.py   # after scripts/fetch-models.sh
#   .venv-ref/bin/python scripts/gen-tiny-goldens.py
#   .venv-ref/bin/python scripts/gen-real-goldens.py           # after scripts/fetch-models.sh
#
# (or `source .venv-ref/bin/activate` and call them with python3). Every package is pinned in
# scripts/requirements/ref.txt (from ref.in, by scripts/requirements/lock.py); the venv is
# made by scripts/lib/venv.sh, which re-installs when that file changes and does nothing
# when it has not. Everything runs on CPU. Other scripts (bench-models.sh, bench-rm.sh) call
# this one when they need the venv.
#
# Usage: scripts/setup-ref-venv.sh [--force]
#   --force          delete and recreate an existing .venv-ref/
# Environment:
#   PYTHON           interpreter for the venv (default python3; 3.10 or newer, 3.11 was used)
#   TORCH_INDEX_URL  install torch from this index first, e.g. the CPU-only wheels at
#                    https://download.pytorch.org/whl/cpu (much smaller than PyPI's CUDA build;
#                    numerically the same on CPU). Default: PyPI only.
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$SCRIPT_DIR/lib/common.sh"
source "$SCRIPT_DIR/lib/venv.sh"
rmtk_help_if_asked "$0" "$@"

VENV="$RMTK_ROOT/.venv-ref"
REQS="$SCRIPT_DIR/requirements/ref.txt"
PYTHON="${PYTHON:-python3}"

die() { printf 'setup-ref-venv: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'setup-ref-venv: %s\n' "$*" >&2; }

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

"$VENV/bin/python" - <<'PYEOF' || die "the venv was installed but does not import"
import accelerate, gguf, jinja2, numpy, pyarrow, safetensors, tokenizers, torch, transformers
print(f"setup-ref-venv: ok: torch {torch.__version__}, transformers {transformers.__version__}, "
      f"tokenizers {tokenizers.__version__}, numpy {numpy.__version__}")
PYEOF
