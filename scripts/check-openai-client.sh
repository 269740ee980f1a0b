#!/usr/bin/env bash
# The official OpenAI Python client (`openai`, from PyPI) against `rmtk serve` on loopback:
# makes the venv .venv-openai from scripts/requirements/openai.txt, starts `rmtk serve` with
# SmolLM2 (an API key set), runs scripts/check-openai-client.py (completions, chat,
# streaming, log-probs, n with a seed, models, and the errors 400/401/404/413), stops the
# server. scripts/test.sh runs it.
#
# Usage: scripts/check-openai-client.sh [--require]
#   --require   fail when the venv cannot be built (default: print why and skip, exit 0:
#               a machine without PyPI can still run the rest of the suite)
# Environment: RMTK_BIN (the rmtk binary; default: a dev build, made here).
# Needs: models (scripts/fetch-models.sh), python3 with venv, PyPI for the first run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$RMTK_ROOT/scripts/lib/venv.sh"
rmtk_help_if_asked "$0" "$@"
cd "$RMTK_ROOT"
REQUIRE=0
for arg in "$@"; do
  case "$arg" in
    --require) REQUIRE=1 ;;
    *) echo "check-openai-client: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

VENV="$RMTK_ROOT/.venv-openai"
if ! RMTK_VENV_QUIET=1 ensure_venv "$VENV" scripts/requirements/openai.txt; then
  if [[ "$REQUIRE" == 1 ]]; then
    echo "check-openai-client: could not build $VENV" >&2
    exit 1
  fi
  echo "check-openai-client: SKIPPED: could not build $VENV from PyPI (see above); the openai client was not checked"
  exit 0
fi
BIN="$(rmtk_bin dev)"
MODEL="$RMTK_ROOT/models/smollm2-135m-instruct"
[[ -d "$MODEL" ]] || { echo "check-openai-client: $MODEL missing: run scripts/fetch-models.sh" >&2; exit 1; }

TMP="$(rmtk_tmpdir openai-client)"
export RMTK_OPENAI_CHECK_KEY="key-$RANDOM-$RANDOM"
trap 'rmtk_serve_stop; rm -rf "$TMP"' EXIT
rmtk_serve_start "$BIN" "$TMP/serve.log" --model "$MODEL" --served-model-name smol \
  --max-model-len 512 --api-key-env RMTK_OPENAI_CHECK_KEY || exit 1
ADDR="$RMTK_SERVE_URL"
"$VENV/bin/python" scripts/check-openai-client.py --base-url "$ADDR/v1" --model smol \
  --api-key "$RMTK_OPENAI_CHECK_KEY"
