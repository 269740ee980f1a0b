#!/usr/bin/env bash
# Create the reference venv, .venv-ref/ at the repo root, used to re-run the golden scripts:
#
#   scripts/setup-ref-venv.sh
#   .venv-ref/bin/python scripts/check-smollm2-conversion.py   # after scripts/fetch-models.sh
#   .venv-ref/bin/python scripts/gen-tiny-goldens.py
#   .venv-ref/bin/python scripts/gen-real-goldens.py           # after scripts/fetch-models.sh
#
# (or `source .venv-ref/bin/activate` and call them with python3). Pinned versions are in
# scripts/requirements-ref.txt. Everything runs on CPU.
#
# Environment:
#   PYTHON           interpreter for the venv (default python3; 3.10 or newer, 3.11 was used)
#   TORCH_INDEX_URL  install torch from this index first, e.g. the CPU-only wheels at
#                    https://download.pytorch.org/whl/cpu (much smaller than PyPI's CUDA build;
#                    numerically the same on CPU). Default: PyPI only.
# Options:
#   --force          delete and recreate an existing .venv-ref/
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
VENV="$REPO_ROOT/.venv-ref"
REQS="$SCRIPT_DIR/requirements-ref.txt"
PYTHON="${PYTHON:-python3}"

die() { printf 'setup-ref-venv: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'setup-ref-venv: %s\n' "$*" >&2; }

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

[[ -f "$REQS" ]] || die "missing $REQS"
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; set PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1); need Python >= 3.10"

if [[ -d "$VENV" && "$FORCE" == 1 ]]; then
  log "removing $VENV"
  rm -rf "$VENV"
elif [[ -d "$VENV" ]]; then
  log "$VENV exists: bringing it to the pins (pip does nothing if they are met)"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV with $("$PYTHON" -V 2>&1)"
  "$PYTHON" -m venv "$VENV" || die "could not create a venv (on Debian: apt-get install python3-venv)"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip

torch_pin="$(grep -E '^torch==' "$REQS")"
if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
  log "installing $torch_pin from $TORCH_INDEX_URL"
  "$PY" -m pip install --disable-pip-version-check --index-url "$TORCH_INDEX_URL" "$torch_pin" \
    || die "could not install $torch_pin from $TORCH_INDEX_URL"
fi
log "installing $(grep -cE '^[a-zA-Z]' "$REQS") pinned packages from $REQS (torch is large: a few minutes)"
"$PY" -m pip install --disable-pip-version-check -r "$REQS" || die "pip install -r $REQS failed"

"$PY" - <<'PYEOF' || die "the venv was installed but does not import"
import accelerate, gguf, jinja2, numpy, safetensors, tokenizers, torch, transformers
print(f"setup-ref-venv: ok: torch {torch.__version__}, transformers {transformers.__version__}, "
      f"tokenizers {tokenizers.__version__}, numpy {numpy.__version__}")
PYEOF
