#!/usr/bin/env bash
# rmtk's checks on a GPU machine, as one prepared script: the machine has no Rust toolchain
# and no network, so the CUDA binary is built and stripped here and carried (with a
# tokenizer) in .gpu/, and what runs there needs only bash and the python3 that holds
# PyTorch. Stages run in order; each writes its result to $OUT/STAGE.txt as it finishes and
# appends one line to $OUT/summary.txt, so a run cut short still returns what it finished.
#   smoke    (under a minute) the device is found; a tiny Llama reward model with a LoRA
#            adapter (tests/golden/lora-tiny-llama-init) scores its golden batch: loss and
#            mean rewards within 1e-4 of PEFT's (scripts/gen-lora-goldens.py)
#   goldens  the same batch in bf16 (within 3e-2 of PEFT's f32 values); tiny Llama and tiny
#            BERT adapters on the 240 demo pairs: the device's f32 within 1e-5 of the CPU's
#            (same binary), its bf16 within 3e-2
#   bf16     50 LoRA updates of the tiny Llama in bf16 and in f32 on the device: the losses
#            within 0.02 at every step (the CPU test's bound; bf16 training on cubecl has an
#            open convergence report)
#   memory   two train-rm steps on random Qwen2.5-0.5B and 1.5B weights (benches/configs),
#            4 pairs x 512: full f32, bf16 + LoRA r 16, bf16 + LoRA + checkpointing; the
#            device memory's peak (nvidia-smi, sampled every 100 ms) beside `rmtk info
#            --memory`; and two GRPO steps (LoRA r 16, bf16, KL to the base) of the 0.5B
#            shape with a tiny reward model
#   bench    train-rm steps/s of the random Qwen2.5-0.5B (4 pairs x 512, 6 steps) beside
#            PyTorch (transformers + peft, the same shapes, dtype and LoRA) on the same GPU
#   parity   where the device parts from the CPU: per-response rewards of the tiny Llama's
#            golden adapter on 48 demo responses (.gpu/parity.jsonl, cut at 64 tokens), the
#            CPU's f32 against the device's f32 at the default batch (attention written
#            out, as rmtk runs it on CUDA), with burn's attention op instead
#            (RMTK_CUDA_ATTENTION=burn), at batch 1, with autotune at its minimal level and
#            with cubecl's bounds validation; the largest and mean differences, and the
#            rows that differ most. f32 on CUDA multiplies in TF32 (cubek's choice for f32
#            on tensor cores): differences of a few 1e-3 are that, the bound is 1e-2
#   backbone the backbone benchmark (benches/backbone.rs beside scripts/bench-torch.py) on
#            random Qwen2.5-0.5B weights, f32 and bf16: forward 8 x 512, greedy decode
#            after 32-token prompts at batch 1 and 8, and 16 chat-length prompts (80-500
#            tokens) generated whole; 3 interleaved rounds, medians and ratios
#
# Here (build machine):  scripts/gpu-check.sh --prepare
#   builds `cargo build --release --features cuda` and the backbone bench, strips them and
#   packs them as .gpu/rmtk.xz and .gpu/backbone.xz (the binary about 60 MiB stripped,
#   12 MiB packed; unpacked there with python3's lzma), copies the
#   SmolLM2 tokenizer into .gpu/tokenizer, and checks that what travels (.gpu and the tree
#   git would send) stays under the 64 MiB a call may carry. Then call the device tool with
#   carry [".gpu"] and the command `scripts/gpu-check.sh --stages smoke` (a minute: is the
#   binary fit?), then `scripts/gpu-check.sh --stages "goldens backbone bench bf16 memory"`.
# Within a 15-minute lease (the machine's start takes one or two of them), the stages do
# not all fit: cubecl's first use of each shape compiles and tunes kernels. The H200 run of
# 2026-12-04 (README, "On a GPU") got through smoke and part of goldens in 420 s. Run
# what is unmeasured first, each call with a timeout that leaves a rerun:
#   BACKBONE_ROUNDS=1 BACKBONE_REPS=1 scripts/gpu-check.sh --stages "parity backbone"
#   scripts/gpu-check.sh --stages "bench memory"
# There:   scripts/gpu-check.sh [--stages "smoke goldens bf16 memory bench"] [--out DIR]
#                               [--bin PATH] [--device cuda|cpu] [--quick]
#   --device cpu  the same stages on the CPU with any rmtk binary (default: the dev build),
#                 to check the script itself; --quick: the smoke stage only, on the CPU
#   --out         where results go (default: $OUT, else ./gpu-check-out)
# Exit status: 0 if every stage run passed, 1 otherwise.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
rmtk_help_if_asked "$0" "$@"
cd "$RMTK_ROOT"

STAGES="smoke goldens backbone bench bf16 memory"
DEST="${OUT:-$RMTK_ROOT/gpu-check-out}"
BIN=""
DEVICE=cuda
PREPARE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --stages) STAGES="$2"; shift 2 ;;
    --out) DEST="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --quick) DEVICE=cpu; STAGES=smoke; shift ;;
    --prepare) PREPARE=1; shift ;;
    *) echo "gpu-check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

PY_HOST=python3
if [[ "$PREPARE" == 1 ]]; then
  set -e
  WORKBIN="$(rmtk_tmpdir gpu-prepare)/rmtk"
  echo "building rmtk --release --features cuda, and the backbone bench" >&2
  cargo build --release --locked --features cuda
  bench="$(cargo build --release --locked --features cuda --bench backbone --message-format=json \
    | $PY_HOST -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "backbone" and m.get("executable"):
        print(m["executable"])')"
  rm -rf .gpu && mkdir -p .gpu/tokenizer
  for pair in "$(rmtk_target_dir)/release/rmtk:rmtk" "$bench:backbone"; do
    cp "${pair%:*}" "$WORKBIN"
    strip "$WORKBIN"
    # The stripped binary alone is about 60 MiB: it travels xz-compressed (about 12 MiB)
    # and is unpacked there with python3's lzma.
    xz -9 -T2 -c "$WORKBIN" >".gpu/${pair##*:}.xz"
    echo "stripped ${pair##*:}: $(du -h "$WORKBIN" | cut -f1), xz-compressed $(du -h ".gpu/${pair##*:}.xz" | cut -f1)"
  done
  rm -f "$WORKBIN"
  tok=models/smollm2-135m-instruct
  cp "$tok/tokenizer.json" "$tok/tokenizer_config.json" .gpu/tokenizer/
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
  gpu_kib=$(du -sk .gpu | cut -f1)
  tree_kib=$( (git ls-files -z; git ls-files -z --others --exclude-standard) \
    | xargs -0 du -cb 2>/dev/null | tail -1 | awk '{printf "%d", $1/1024}')
  echo "to carry: .gpu $((gpu_kib / 1024)) MiB + the tree $((tree_kib / 1024)) MiB, of 64 MiB"
  (( gpu_kib + tree_kib < 64 * 1024 )) || { echo "gpu-check: too large to carry (64 MiB a call)" >&2; exit 1; }
  exit 0
fi

mkdir -p "$DEST"
WORK="$(rmtk_tmpdir gpu-check)"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"; rm -f cubecl.toml' EXIT
# cubecl compiles every kernel at run time (a 3-pair evaluation took 53 s on an H200, the
# same 48 rewards in batches of 8 over 150 s): keep the compiled kernels across this
# script's processes (cubecl reads cubecl.toml from the working folder; "target" is the
# checkout's target/). Autotune results are kept there by default.
cubecl_config() {  # cubecl_config [EXTRA LINE...]: (re)write cubecl.toml's [compilation]
  printf '[compilation]\ncache = "target"\n' >cubecl.toml
  local line
  for line in "$@"; do printf '%s\n' "$line" >>cubecl.toml; done
}
[[ "$DEVICE" == cuda* ]] && cubecl_config
unpack() {  # unpack NAME: .gpu/NAME.xz into $WORK/NAME
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
    ".gpu/$1.xz" "$WORK/$1" && chmod +x "$WORK/$1" || { echo "gpu-check: cannot unpack .gpu/$1.xz" >&2; exit 1; }
}
if [[ -z "$BIN" && -f .gpu/rmtk.xz ]]; then
  unpack rmtk
  BIN="$WORK/rmtk"
fi
# The backbone bench: carried in .gpu/, or (for --device cpu) $BACKBONE_BIN.
BACKBONE="${BACKBONE_BIN:-}"
if [[ -z "$BACKBONE" && -f .gpu/backbone.xz ]]; then
  unpack backbone
  BACKBONE="$WORK/backbone"
fi
if [[ -z "$BIN" ]]; then
  if [[ -x .gpu/rmtk ]]; then BIN=.gpu/rmtk
  elif [[ "$DEVICE" == cpu ]]; then BIN="$(rmtk_bin dev)" || exit 1
  else echo "gpu-check: no .gpu/rmtk (scripts/gpu-check.sh --prepare on the build machine)" >&2; exit 1
  fi
fi
TOK=.gpu/tokenizer
[[ -f "$TOK/tokenizer.json" ]] || TOK=models/smollm2-135m-instruct
PY=python3
SUMMARY="$DEST/summary.txt"
FAILED=0
: >"$SUMMARY"
echo "# $(date -u +%FT%TZ) rmtk gpu-check on ${DEVICE}: $(uname -m), $(nproc) cores; binary $BIN" >>"$SUMMARY"
if [[ "$DEVICE" == cuda* ]] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$SUMMARY" 2>&1
fi

# run_stage NAME: runs stage_NAME with its output in $DEST/NAME.txt, then one summary line.
run_stage() {
  local name="$1" start=$SECONDS status
  "stage_$name" >"$DEST/$name.txt" 2>&1
  status=$?
  if [[ $status == 0 ]]; then
    echo "ok    $name ($((SECONDS - start)) s)" >>"$SUMMARY"
  else
    FAILED=1
    echo "FAIL  $name ($((SECONDS - start)) s): $(tail -n 1 "$DEST/$name.txt")" >>"$SUMMARY"
  fi
}

tiny() {  # tiny llama|bert DEST: a tiny model folder (weights and word-level tokenizer)
  rmtk_tiny_model "$1" "$2"
}

# The golden batch of a LoRA golden file as pre-tokenized pairs with their margins.
golden_batch() {
  $PY - "tests/golden/lora-tiny-$1.json" "$2" <<'EOF'
import json, sys
g = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    for c, r, m in zip(g["batch"]["chosen"], g["batch"]["rejected"], g["margins"]):
        f.write(json.dumps({"chosen_ids": c, "rejected_ids": r, "margin": m}) + "\n")
EOF
}

# eval_golden KIND DEVICE DTYPE TOL: eval-rm of the golden adapter on its golden batch,
# checked against PEFT's loss and mean rewards; prints the largest difference.
eval_golden() {
  local kind="$1" device="$2" dtype="$3" tol="$4"
  local base="$WORK/tiny-$kind" out="$WORK/eval-$kind-$device-$dtype.json"
  [[ -d "$base" ]] || tiny "$kind" "$base"
  golden_batch "$kind" "$WORK/batch-$kind.jsonl"
  "$BIN" eval-rm --model "tests/golden/lora-tiny-$kind-init" --base-model "$base" \
    --data "$WORK/batch-$kind.jsonl" --margin-column margin \
    --center-rewards-coef "$($PY -c "import json; print(json.load(open('tests/golden/lora-tiny-$kind.json'))['center_rewards_coef'])")" \
    --device "$device" --dtype "$dtype" --output "$out" >/dev/null || return 1
  $PY - "tests/golden/lora-tiny-$kind.json" "$out" "$tol" "$kind $device $dtype" <<'EOF'
import json, sys
g = json.load(open(sys.argv[1]))["step1"]
got = json.load(open(sys.argv[2]))
tol = float(sys.argv[3])
mean = lambda v: sum(v) / len(v)
want = {"loss": g["loss"], "chosen_reward_mean": mean(g["rewards_chosen"]),
        "rejected_reward_mean": mean(g["rewards_rejected"])}
diff = max(abs(got[k] - v) for k, v in want.items())
print(f"{sys.argv[4]:<20} loss {got['loss']:.7f} (PEFT {want['loss']:.7f}); "
      f"largest difference {diff:.2e} (bound {tol:g})")
sys.exit(0 if diff <= tol else 1)
EOF
}

stage_smoke() {
  if [[ "$DEVICE" == cuda* ]]; then
    nvidia-smi -L || return 1
  fi
  "$BIN" --version
  eval_golden llama "$DEVICE" f32 1e-4
}

# eval_text KIND DEVICE DTYPE: eval-rm of the golden adapter on the demo pairs (text).
eval_text() {
  local kind="$1" device="$2" dtype="$3" base="$WORK/tiny-$1"
  [[ -d "$base" ]] || tiny "$kind" "$base"
  "$BIN" eval-rm --model "tests/golden/lora-tiny-$kind-init" --base-model "$base" \
    --data data/prefs-en-demo.parquet --max-length 64 --overlong truncate --device "$device" \
    --dtype "$dtype" --output "$WORK/text-$kind-$device-$dtype.json" >/dev/null
}

# same A B BOUND LABEL: two eval-rm results agree on loss and mean rewards.
same() {
  $PY - "$1" "$2" "$3" "$4" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
d = max(abs(a[k] - b[k]) for k in ("loss", "chosen_reward_mean", "rejected_reward_mean"))
print(f"{sys.argv[4]:<34} largest difference {d:.2e} (bound {sys.argv[3]})")
sys.exit(0 if d <= float(sys.argv[3]) else 1)
EOF
}

stage_goldens() {
  local ok=0 kind
  # Against PEFT's values (the tiny Llama's golden batch is pre-tokenized; BERT's needs
  # token types, which pre-tokenized rows do not carry, so BERT is checked on text below).
  eval_golden llama "$DEVICE" f32 1e-4 || ok=1
  eval_golden llama "$DEVICE" bf16 3e-2 || ok=1
  # The device against the CPU, same binary, the 240 demo pairs as text.
  for kind in llama bert; do
    eval_text "$kind" cpu f32 || ok=1
    eval_text "$kind" "$DEVICE" f32 || ok=1
    eval_text "$kind" "$DEVICE" bf16 || ok=1
    same "$WORK/text-$kind-$DEVICE-f32.json" "$WORK/text-$kind-cpu-f32.json" 1e-5 \
      "$kind demo pairs, $DEVICE f32 vs cpu" || ok=1
    same "$WORK/text-$kind-$DEVICE-bf16.json" "$WORK/text-$kind-cpu-f32.json" 3e-2 \
      "$kind demo pairs, $DEVICE bf16 vs cpu f32" || ok=1
  done
  return $ok
}

stage_bf16() {
  local base="$WORK/tiny-llama" dtype
  [[ -d "$base" ]] || tiny llama "$base"
  for dtype in f32 bf16; do
    "$BIN" train-rm --model "$base" --data data/prefs-en-demo.parquet --output "$WORK/bf16-$dtype" \
      --max-length 64 --overlong truncate --batch-size 4 --max-steps 50 --save-every 0 \
      --lr 2e-3 --lora-r 8 --lora-target-modules all-linear --dtype "$dtype" --seed 3 \
      --device "$DEVICE" >"$WORK/bf16-$dtype.log" 2>&1 || { tail -n 20 "$WORK/bf16-$dtype.log"; return 1; }
  done
  $PY - "$WORK/bf16-f32/metrics.jsonl" "$WORK/bf16-bf16/metrics.jsonl" <<'EOF'
import json, sys
def losses(p):
    return [r["loss"] for r in map(json.loads, open(p)) if "loss" in r and "eval_loss" not in r]
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert len(a) == len(b) == 50, (len(a), len(b))
worst = max(range(50), key=lambda i: abs(a[i] - b[i]))
print(f"50 LoRA updates: losses f32 {a[0]:.4f} -> {a[-1]:.4f}, bf16 {b[0]:.4f} -> {b[-1]:.4f}; "
      f"largest gap {abs(a[worst] - b[worst]):.4f} at update {worst + 1} (bound 0.02)")
sys.exit(0 if abs(a[worst] - b[worst]) < 0.02 else 1)
EOF
}

# A random-weight model folder of a benches/configs shape with the carried tokenizer.
shaped() {
  mkdir -p "$WORK/$1"
  cp "benches/configs/$1/config.json" "$WORK/$1/"
  cp "$TOK/tokenizer.json" "$TOK/tokenizer_config.json" "$WORK/$1/"
  echo "$WORK/$1"
}

long_pairs() {
  $PY - "$WORK/pairs.jsonl" <<'EOF'
import json, sys
words = "the quiet river carried stories of old towns past fields of barley and stone".split()
with open(sys.argv[1], "w") as f:
    for i in range(32):
        chosen = " ".join(words[(i + j) % len(words)] for j in range(900))
        rejected = " ".join(words[(i + 7 * j + 3) % len(words)] for j in range(900))
        f.write(json.dumps({"prompt": f"Write story {i}.", "chosen": "A " + chosen,
                            "rejected": "B " + rejected}) + "\n")
EOF
}

# peak_of CMD...: runs CMD; prints the peak device memory (MiB, nvidia-smi) or, on the CPU,
# the peak resident memory the trainer logs.
peak_of() {
  local log="$WORK/peak.log" smi="$WORK/smi.csv" pid
  if [[ "$DEVICE" == cuda* ]]; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$smi" 2>/dev/null &
    pid=$!
  fi
  "$@" >"$log" 2>&1
  local status=$?
  [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  if [[ $status != 0 ]]; then tail -n 15 "$log" >&2; return 1; fi
  if [[ "$DEVICE" == cuda* ]]; then
    # nvidia-smi's peak (the whole device: the CUDA context included) and the trainer's
    # own sample of the allocator's reserved bytes.
    sort -n "$smi" | tail -1 | awk '{printf "%.2f GiB (device)", $1/1024}'
    sed -n 's/.*device memory: peak reserved by the allocator \([0-9.]* GiB\).*/, allocator \1/p' "$log" | tail -1
  else
    sed -n 's/.*memory: peak resident \([0-9.]* GiB\).*/\1 (resident)/p' "$log" | tail -1
  fi
}

stage_memory() {
  long_pairs
  local ok=0 m run dir est peak
  printf '%-14s %-5s %10s %22s\n' model run estimate peak
  for m in qwen2.5-0.5b qwen2.5-1.5b; do
    dir="$(shaped "$m")"
    for run in full lora ckpt; do
      case "$run" in
        full) flags=(--dtype f32) ;;
        lora) flags=(--dtype bf16 --lora-r 16 --lora-target-modules all-linear) ;;
        ckpt) flags=(--dtype bf16 --lora-r 16 --lora-target-modules all-linear --gradient-checkpointing) ;;
      esac
      info=("${flags[@]}")
      est="$("$BIN" info --model "$dir" --memory --batch-size 4 --max-length 512 "${info[@]}" | sed -n 's/^ *peak *//p')"
      rm -rf "$WORK/run"
      peak="$(peak_of "$BIN" train-rm --model "$dir" --random-weights --data "$WORK/pairs.jsonl" \
        --output "$WORK/run" --max-length 512 --overlong truncate --batch-size 4 --max-steps 2 \
        --save-every 0 --seed 7 --device "$DEVICE" "${flags[@]}")" || { ok=1; peak=FAILED; }
      printf '%-14s %-5s %10s %22s\n' "$m" "$run" "$est" "$peak"
    done
  done
  # GRPO: a tiny BERT reward model (trained here on the CPU, seconds), writing-only mixing
  # (a random policy violates every rule, and RLMR drops all-violator groups).
  rmtk_tiny_rm "$BIN" "$WORK" >/dev/null 2>&1 || { echo "tiny reward model: FAILED"; return 1; }
  $PY - "$WORK/prompts.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(8):
        f.write(json.dumps({"prompt": f"Describe place number {i} briefly.",
                            "instruction_id_list": ["length_constraints:number_words"],
                            "kwargs": [{"relation": "less than", "num_words": 20}]}) + "\n")
EOF
  dir="$WORK/qwen2.5-0.5b"
  rm -rf "$WORK/grpo"
  peak="$(peak_of "$BIN" grpo --policy "$dir" --random-weights --reward-model "$WORK/rm" \
    --mixing writing-only \
    --prompts "$WORK/prompts.jsonl" --output "$WORK/grpo" --num-generations 4 --batch-prompts 2 \
    --max-new-tokens 48 --max-generation-rounds 2 --max-steps 2 --save-every 0 --lr 1e-5 \
    --beta 0.04 --lora-r 16 --dtype bf16 --device "$DEVICE")" || { ok=1; peak=FAILED; }
  # The estimate grpo logs at its start (train::memory::estimate_grpo).
  est="$(sed -n 's/.*memory estimate for a step.*: peak \([0-9.]* GiB\).*/\1/p' "$WORK/peak.log" | head -1)"
  printf '%-14s %-5s %10s %22s\n' "qwen2.5-0.5b" grpo "${est:--}" "$peak"
  [[ -f "$WORK/grpo/metrics.jsonl" ]] && grep -h '"step_time_s"' "$WORK/grpo/metrics.jsonl"
  return $ok
}

# score_rows OUT [ENV...] -- FLAGS...: rmtk score of the parity rows with the golden adapter.
score_rows() {
  local out="$1"; shift
  local envs=()
  while [[ "$1" != -- ]]; do envs+=("$1"); shift; done
  shift
  local base="$WORK/tiny-llama"
  [[ -d "$base" ]] || tiny llama "$base"
  env "${envs[@]}" timeout 150 "$BIN" score --model tests/golden/lora-tiny-llama-init \
    --base-model "$base" --input "$PARITY" --output "$out" --max-length 64 "$@" >"$out.log" 2>&1 \
    || { tail -n 5 "$out.log"; return 1; }
}

stage_parity() {
  local ok=0 variant
  PARITY=.gpu/parity.jsonl
  [[ -f "$PARITY" ]] || { echo "no $PARITY (scripts/gpu-check.sh --prepare)"; return 1; }
  score_rows "$WORK/parity-cpu.jsonl" -- --device cpu || return 1
  for variant in default burn-attention batch1 minimal validate; do
    local start=$SECONDS envs=() flags=(--device "$DEVICE")
    [[ "$DEVICE" == cuda* ]] && cubecl_config
    case "$variant" in
      burn-attention) envs+=(RMTK_CUDA_ATTENTION=burn) ;;
      batch1) flags+=(--batch-size 1) ;;
      minimal) envs+=(CUBECL_AUTOTUNE_LEVEL=minimal) ;;
      validate) cubecl_config 'check_mode = "validate"' ;;
    esac
    score_rows "$WORK/parity-$variant.jsonl" "${envs[@]}" -- "${flags[@]}" \
      || { echo "$variant: FAILED"; ok=1; continue; }
    $PY - "$WORK/parity-cpu.jsonl" "$WORK/parity-$variant.jsonl" "$variant" "$((SECONDS - start))" <<'EOF' || ok=1
import json, sys
a = [json.loads(l)["reward"] for l in open(sys.argv[1])]
b = [json.loads(l)["reward"] for l in open(sys.argv[2])]
d = [abs(x - y) for x, y in zip(a, b)]
worst = sorted(range(len(d)), key=lambda i: -d[i])[:4]
print(f"{sys.argv[3]:<9} {sys.argv[4]:>4} s: {len(d)} rewards, largest difference {max(d):.2e}, "
      f"mean {sum(d) / len(d):.2e}, over 1e-2: {sum(x > 1e-2 for x in d)}; worst rows "
      + ", ".join(f"{i} ({a[i]:.4f} vs {b[i]:.4f})" for i in worst))
sys.exit(0 if max(d) <= 1e-2 else 1)
EOF
  done
  [[ "$DEVICE" == cuda* ]] && cubecl_config
  return $ok
}

# The backbone benchmark, rmtk and PyTorch interleaved, each engine's run bounded (a stuck
# one costs minutes of the lease, not all of it); every line is printed as it comes, then
# the medians. On --device cpu (checking this script) the tiny Llama, small shapes, f32.
stage_backbone() {
  [[ -n "$BACKBONE" ]] || { echo "no backbone bench (.gpu/backbone.xz or BACKBONE_BIN)"; return 1; }
  local dir round dtype lines="$WORK/backbone.jsonl" backend=cuda dtypes="f32 bf16" ok=0
  # BACKBONE_ROUNDS and BACKBONE_REPS shorten it where the lease is short.
  local shape=(--batch 8 --seq 512 --prompt 32 --new 64 --reps "${BACKBONE_REPS:-2}")
  if [[ "$DEVICE" == cuda* ]]; then
    dir="$(shaped qwen2.5-0.5b)"
  else
    backend=flex dtypes=f32 shape=(--batch 2 --seq 32 --prompt 8 --new 8 --reps 1 --no-chat)
    dir="$WORK/tiny-llama"
    [[ -d "$dir" ]] || tiny llama "$dir"
  fi
  : >"$lines"
  for round in $(seq "${BACKBONE_ROUNDS:-3}"); do
    for dtype in $dtypes; do
      timeout 240 "$BACKBONE" --backend "$backend" --dtype "$dtype" --model "$dir" \
        --random-weights 7 "${shape[@]}" | tee -a "$lines" || { echo "rmtk $dtype round $round: FAILED"; ok=1; }
      timeout 240 $PY scripts/bench-torch.py --device "${DEVICE%%:*}" --dtype "$dtype" \
        --model "$dir" --random-weights "${shape[@]}" | tee -a "$lines" \
        || { echo "PyTorch $dtype round $round: FAILED"; ok=1; }
    done
  done
  $PY - "$lines" <<'EOF' || ok=1
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def key(r):
    return (r.get("dtype", "f32"), r["what"], r["batch"])
runs = {}
for r in rows:
    side = "rmtk" if r["engine"].startswith("rmtk") else "torch"
    runs.setdefault(key(r), {}).setdefault(side, []).append(r["tokens_per_s"])
print(f"{'dtype':<5} {'what':<8} {'batch':>5} {'rmtk tok/s':>11} {'PyTorch tok/s':>14} {'ratio':>6}  rounds")
for k in sorted(runs):
    v = runs[k]
    ours = statistics.median(v["rmtk"]) if v.get("rmtk") else float("nan")
    theirs = statistics.median(v["torch"]) if v.get("torch") else float("nan")
    print(f"{k[0]:<5} {k[1]:<8} {k[2]:>5} {ours:>11.0f} {theirs:>14.0f} {ours / theirs:>6.2f}  "
          f"{len(v.get('rmtk', []))}/{len(v.get('torch', []))}")
sys.exit(0 if rows else 1)
EOF
  return $ok
}

stage_bench() {
  long_pairs
  local dir run
  dir="$(shaped qwen2.5-0.5b)"
  printf '%-10s %14s %14s\n' run "rmtk tok/s" "PyTorch tok/s"
  for run in full lora; do
    case "$run" in
      full) flags=(--dtype f32); pyflags=(f32 0) ;;
      lora) flags=(--dtype bf16 --lora-r 16 --lora-target-modules all-linear); pyflags=(bf16 16) ;;
    esac
    rm -rf "$WORK/bench"
    "$BIN" train-rm --model "$dir" --random-weights --data "$WORK/pairs.jsonl" --output "$WORK/bench" \
      --max-length 512 --overlong truncate --batch-size 4 --max-steps 6 --save-every 0 --seed 7 \
      --device "$DEVICE" "${flags[@]}" >"$WORK/bench.log" 2>&1 || { tail -n 15 "$WORK/bench.log"; return 1; }
    ours="$($PY -c "
import json, sys
rows = [r for r in map(json.loads, open('$WORK/bench/metrics.jsonl')) if 'tokens_per_s' in r][1:]
print(f\"{sum(r['tokens_per_s'] for r in rows) / len(rows):.0f}\")")"
    theirs="$($PY - "$dir/config.json" "${pyflags[@]}" "$DEVICE" <<'EOF'
import sys, time, torch
from transformers import AutoConfig, AutoModelForSequenceClassification
cfg_path, dtype, r, device = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
device = "cuda" if device.startswith("cuda") else "cpu"
cfg = AutoConfig.from_pretrained(cfg_path.rsplit("/", 1)[0])
cfg.num_labels, cfg.pad_token_id = 1, 0
torch.manual_seed(0)
dt = torch.bfloat16 if dtype == "bf16" else torch.float32
model = AutoModelForSequenceClassification.from_config(cfg, dtype=dt).to(device)
if r:
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(model, LoraConfig(r=r, lora_alpha=8, target_modules="all-linear",
                                             task_type="SEQ_CLS"))
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
ids = torch.randint(100, cfg.vocab_size, (8, 512), device=device)
def step():
    out = model(input_ids=ids).logits.float().squeeze(-1)
    loss = -torch.nn.functional.logsigmoid(out[0::2] - out[1::2]).mean()
    loss.backward(); opt.step(); opt.zero_grad()
step()
if device == "cuda": torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(5): step()
if device == "cuda": torch.cuda.synchronize()
print(f"{5 * 8 * 512 / (time.perf_counter() - t):.0f}")
EOF
)" || theirs=FAILED
    printf '%-10s %14s %14s\n' "$run" "$ours" "$theirs"
  done
}

for stage in $STAGES; do
  declare -F "stage_$stage" >/dev/null || { echo "gpu-check: unknown stage $stage" >&2; exit 2; }
  run_stage "$stage"
  cat "$SUMMARY" | tail -n 1
done
echo "results in $DEST:"
cat "$SUMMARY"
exit $FAILED
