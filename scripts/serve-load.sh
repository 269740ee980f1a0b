#!/usr/bin/env bash
# Load test of `rmtk serve` on loopback: 200 completion requests at concurrency 32 against
# SmolLM2, each with its own prompt (token ids); checks that none is lost or duplicated and
# that each answer is its own prompt's; prints p50/p99 latency and tokens/s. Then 40 long
# requests fill --max-queued-requests 40 and 20 more, sent one at a time while those decode,
# must each get 503 within 100 ms. Prints the CPU model and load first.
#
# Usage: scripts/serve-load.sh [--requests 200] [--concurrency 32] [--quick]
#   --quick   the tiny Llama of tests/fixtures, a dev build, 40 requests (seconds)
# Environment: RMTK_BIN (default: a release build, made here; dev with --quick).
# Needs: models (scripts/fetch-models.sh), python3 (standard library only).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
cd "$RMTK_ROOT"
REQUESTS=200
CONCURRENCY=32
QUICK=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --requests) REQUESTS="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    *) echo "serve-load: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
TMP="$(rmtk_tmpdir serve-load)"
trap 'rmtk_serve_stop; rm -rf "$TMP"' EXIT
if [[ "$QUICK" == 1 ]]; then
  BIN="$(rmtk_bin dev)"
  MODEL="$TMP/tiny"
  rmtk_tiny_model llama "$MODEL"
  REQUESTS=40
  VOCAB=200
  # The tiny model decodes thousands of tokens/s: the requests filling the queue decode
  # together, long, so that they are still there when the ones beyond it arrive.
  SEQS=40
  HOLD=490
  LEN=512
else
  VOCAB=4096
  SEQS=32
  HOLD=64
  LEN=128
  BIN="$(rmtk_bin release)"
  MODEL="$RMTK_ROOT/models/smollm2-135m-instruct"
  [[ -d "$MODEL" ]] || { echo "serve-load: $MODEL missing: run scripts/fetch-models.sh" >&2; exit 1; }
fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) threads; load: $(cut -d' ' -f1-3 /proc/loadavg)"
rmtk_serve_start "$BIN" "$TMP/serve.log" --model "$MODEL" --served-model-name m \
  --max-num-seqs "$SEQS" --max-model-len "$LEN" --max-queued-requests 40
python3 scripts/serve_client.py load --base-url "$RMTK_SERVE_URL/v1" --model m \
  --requests "$REQUESTS" --concurrency "$CONCURRENCY" --queue-bound 40 --beyond 20 --vocab "$VOCAB" --hold-tokens "$HOLD"
