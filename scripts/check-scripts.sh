#!/usr/bin/env bash
# The scripts' own check (cheap; scripts/test.sh runs it after `cargo test`):
#   1. every script README.md names (plus scripts/test.sh and scripts/demo.sh) exists, is
#      executable and answers --help: exit 0, usage on stdout, nothing created in the
#      checkout (a shell script that does not handle --help is reported, not run);
#   2. the quick modes of rmtk's side, each a few seconds on the tiny test models:
#      demo.sh, bench-rm.sh, bench-models.sh, bench-verify.sh, bench-grpo.sh,
#      ablation-grpo.sh, eval-heldout.sh, bench-memory.sh, serve-load.sh and bench-serve.sh
#      with --quick.
# No release build, no model download, no torch/TRL venv (unless --with-peers).
# Prints one line per check and a summary line; exits 1 if any check failed.
#
# Usage: scripts/check-scripts.sh [--no-quick] [--with-peers]
#   --no-quick    step 1 only (no build, nothing run)
#   --with-peers  the quick modes with their Python peers too (--with-peer): the official
#                 IFEval checker's venv (small), and the reference and TRL venvs (torch:
#                 gigabytes, minutes)
# Environment: RMTK_BIN (the rmtk binary the quick modes use; default: a dev build, made
# once here), CHECK_TIMEOUT (seconds per quick mode, default 600).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
QUICK=1
PEERS=0
for arg in "$@"; do
  case "$arg" in
    --no-quick) QUICK=0 ;;
    --with-peers) PEERS=1 ;;
    *) echo "check-scripts: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
cd "$RMTK_ROOT"
STARTED=$SECONDS
LOGS="$(rmtk_tmpdir check-scripts)"
trap 'rm -rf "$LOGS"' EXIT
PASSED=()
FAILED=()
pass() { PASSED+=("$1"); printf 'ok    %-44s %s\n' "$1" "${2:-}"; }
fail() { FAILED+=("$1"); printf 'FAIL  %-44s %s\n' "$1" "${2:-}"; }
show_log() { sed 's/^/      | /' "$1" | tail -n "${2:-40}"; }

# The README's scripts.
# (Files ending in .sh or .py, in scripts/ or a folder of it; scripts/lib/ holds sourced
# helpers, not scripts.)
mapfile -t SCRIPTS < <( { grep -oE 'scripts/[A-Za-z0-9_./-]+\.(sh|py)\b' README.md | grep -v '^scripts/lib/'
                          printf '%s\n' scripts/test.sh scripts/demo.sh; } | sort -u)
# What --help may not change: the checkout's top level and runs/ (venvs, models, outputs).
snapshot() { ls -A "$RMTK_ROOT"; ls -A "$RMTK_ROOT/runs" 2>/dev/null; }

echo "== --help of the ${#SCRIPTS[@]} scripts README.md names"
for s in "${SCRIPTS[@]}"; do
  if [[ ! -f "$s" ]]; then fail "$s" "missing"; continue; fi
  if [[ ! -x "$s" ]]; then fail "$s" "not executable"; continue; fi
  case "$s" in
    *.py) head -n1 "$s" | grep -q '^#!/usr/bin/env python3' || { fail "$s" "no #!/usr/bin/env python3 line"; continue; } ;;
    *) grep -q -- '--help\|rmtk_help_if_asked' "$s" || { fail "$s --help" "does not handle --help (not run)"; continue; } ;;
  esac
  before="$(snapshot)"
  log="$LOGS/help.$(basename "$s").log"
  timeout 60 "./$s" --help >"$log" 2>"$log.err"
  rc=$?
  after="$(snapshot)"
  if [[ $rc -ne 0 ]]; then
    fail "$s --help" "exit $rc"; show_log "$log.err" 10
  elif [[ ! -s "$log" ]]; then
    fail "$s --help" "no usage on stdout"
  elif [[ "$before" != "$after" ]]; then
    fail "$s --help" "changed the checkout: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ' ')"
  else
    pass "$s --help" "($(wc -l <"$log") lines)"
  fi
done

if [[ "$QUICK" == 1 ]]; then
  echo "== quick modes (rmtk's side$([[ "$PEERS" == 1 ]] && echo ', with the Python peers'))"
  NO_BIN=0
  if [[ -z "${RMTK_BIN:-}" ]]; then
    if RMTK_BIN="$(rmtk_bin dev 2>"$LOGS/build.log")"; then
      pass "dev build of rmtk" "$RMTK_BIN"
    else
      fail "dev build of rmtk"; show_log "$LOGS/build.log"; NO_BIN=1
    fi
  elif [[ ! -x "$RMTK_BIN" ]]; then
    fail "RMTK_BIN=$RMTK_BIN" "not an executable"; NO_BIN=1
  fi
  export RMTK_BIN
  PEER=()
  [[ "$PEERS" == 1 ]] && PEER=(--with-peer)
  QUICKS=(
    "scripts/demo.sh --quick"
    "scripts/bench-rm.sh --quick ${PEER[*]}"
    "scripts/bench-models.sh --quick ${PEER[*]}"
    "scripts/bench-verify.sh --quick ${PEER[*]}"
    "scripts/bench-grpo.sh --quick"
    "scripts/ablation-grpo.sh --quick"
    "scripts/eval-heldout.sh --quick"
    "scripts/bench-memory.sh --quick"
    "scripts/serve-load.sh --quick"
    "scripts/bench-serve.sh --quick"
  )
  for cmd in "${QUICKS[@]}"; do
    cmd="${cmd% }"
    if [[ "$NO_BIN" == 1 ]]; then fail "$cmd" "not run: no rmtk binary"; continue; fi
    log="$LOGS/quick.$(basename "${cmd%% *}").log"
    t0=$SECONDS
    # shellcheck disable=SC2086
    timeout "${CHECK_TIMEOUT:-600}" $cmd >"$log" 2>&1
    rc=$?
    if [[ $rc -eq 0 ]]; then
      pass "$cmd" "($((SECONDS - t0)) s)"
    else
      fail "$cmd" "exit $rc after $((SECONDS - t0)) s$([[ $rc == 124 ]] && echo ' (timed out)')"; show_log "$log"
    fi
  done
fi

total=$(( ${#PASSED[@]} + ${#FAILED[@]} ))
if [[ ${#FAILED[@]} -eq 0 ]]; then
  echo "check-scripts: all $total checks passed in $((SECONDS - STARTED)) s"
else
  echo "check-scripts: ${#FAILED[@]} of $total checks FAILED in $((SECONDS - STARTED)) s: ${FAILED[*]}"
  exit 1
fi
