#!/usr/bin/env bash
# Serving throughput of `rmtk serve` beside `rmtk generate`'s batch throughput, same model
# (SmolLM2-135M-Instruct), same chat prompts (the first 32 IFEval prompts, 15-72 words),
# greedy, 64 new tokens each:
#   generate:  `rmtk generate --chat --greedy --batch-size 16` over the 32 prompts; tokens/s
#              of its decoding (wall time minus the same command's time on one 1-token prompt,
#              its start-up and model load)
#   serve@C:   the 32 prompts as chat requests from C concurrent clients (C = 1, 8, 16, 32);
#              generated tokens/s over the level's wall time
# Rounds are interleaved (generate, then every level); the table shows medians and the
# ratio serve@16 / generate. Prints the CPU model and load first.
#
# Usage: scripts/bench-serve.sh [--rounds 3] [--quick]
#   --quick   the tiny Llama of tests/fixtures, a dev build, 1 round, 8 prompts (seconds)
# Environment: RMTK_BIN (default: a release build, made here; dev with --quick).
# Needs: models (scripts/fetch-models.sh), python3 (standard library only).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
cd "$RMTK_ROOT"
ROUNDS=3
QUICK=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    *) echo "bench-serve: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
TMP="$(rmtk_tmpdir bench-serve)"
trap 'rmtk_serve_stop; rm -rf "$TMP"' EXIT
NPROMPTS=32
NEW=64
if [[ "$QUICK" == 1 ]]; then
  BIN="$(rmtk_bin dev)"
  MODEL="$TMP/tiny"
  rmtk_tiny_model llama "$MODEL"
  ROUNDS=1
  NPROMPTS=8
  NEW=8
  python3 - "$TMP/prompts.jsonl" <<'PYEOF'
import json, sys
words = "the a of and to in is it that was he for on are as with his they at be this".split()
with open(sys.argv[1], "w") as f:
    for i in range(8):
        f.write(json.dumps({"prompt": " ".join(words[(i + k) % len(words)] for k in range(5 + 3 * i))}) + "\n")
PYEOF
else
  BIN="$(rmtk_bin release)"
  MODEL="$RMTK_ROOT/models/smollm2-135m-instruct"
  [[ -d "$MODEL" ]] || { echo "bench-serve: $MODEL missing: run scripts/fetch-models.sh" >&2; exit 1; }
  python3 - "$TMP/prompts.jsonl" "$NPROMPTS" <<'PYEOF'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
with open("data/ifeval/input_data.jsonl") as f, open(out, "w") as g:
    for line in list(f)[:n]:
        g.write(json.dumps({"prompt": json.loads(line)["prompt"]}) + "\n")
PYEOF
fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) threads; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: $MODEL; $NPROMPTS chat prompts, $NEW new tokens each, greedy; $ROUNDS rounds"

secs() { date +%s.%N; }
gen_rate() {
  local t0 t1 t2
  t0=$(secs)
  "$BIN" generate --model "$MODEL" --prompt "hi" --greedy --max-new-tokens 1 >/dev/null 2>&1
  t1=$(secs)
  RMTK_PROGRESS=0 "$BIN" generate --model "$MODEL" --input "$TMP/prompts.jsonl" --chat --greedy \
    --max-new-tokens "$NEW" --batch-size 16 --output "$TMP/gen.jsonl" >/dev/null 2>&1
  t2=$(secs)
  python3 - "$TMP/gen.jsonl" "$t0" "$t1" "$t2" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
t0, t1, t2 = map(float, sys.argv[2:])
tokens = sum(r["completion_tokens"] for r in rows)
print(json.dumps({"engine": "generate", "tokens": tokens, "tokens_per_s": round(tokens / ((t2 - t1) - (t1 - t0)), 1)}))
PYEOF
}

: >"$TMP/results.jsonl"
rmtk_serve_start "$BIN" "$TMP/serve.log" --model "$MODEL" --served-model-name m --max-num-seqs 32 \
  --max-model-len 512
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round"
  # The server idles (no request) while generate runs.
  gen_rate | tee -a "$TMP/results.jsonl"
  python3 scripts/serve_client.py bench --base-url "$RMTK_SERVE_URL/v1" --model m \
    --prompts "$TMP/prompts.jsonl" --max-tokens "$NEW" | sed 's/^{/{"engine": "serve", /' | tee -a "$TMP/results.jsonl"
done
python3 - "$TMP/results.jsonl" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
gen = statistics.median(r["tokens_per_s"] for r in rows if r["engine"] == "generate")
print()
print(f"{'engine':<22}{'tokens/s (median)':>20}{'vs generate b16':>18}")
print(f"{'generate --batch-size 16':<22}{gen:>20.1f}{1.0:>17.2f}x")
for c in sorted({r["concurrency"] for r in rows if r["engine"] == "serve"}):
    v = statistics.median(r["tokens_per_s"] for r in rows if r["engine"] == "serve" and r["concurrency"] == c)
    print(f"{'serve @ ' + str(c):<22}{v:>20.1f}{v / gen:>17.2f}x")
PYEOF
