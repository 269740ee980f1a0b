# Shared by rmtk's shell scripts (source it; bash). Sourcing has no side effect.
#
#   rmtk_help_if_asked SCRIPT ARGS...   -h/--help among ARGS: print SCRIPT's header, exit 0
#   rmtk_usage SCRIPT                   print SCRIPT's header comment (its usage)
#   rmtk_target_dir                     cargo's target directory (honours CARGO_TARGET_DIR)
#   rmtk_bin dev|release [FEATURES...]  the rmtk binary: $RMTK_BIN if set, else built with
#                                       that profile (`cargo build --locked`); prints its path
#   rmtk_bench NAME dev|release [FEATURES...] -- ARGS...
#                                       run benches/NAME.rs: release: `cargo bench`; dev:
#                                       `cargo test --bench NAME` (same program, dev profile)
#   rmtk_tiny_model llama|bert DEST     a tiny model folder (tests/fixtures' config and
#                                       weights + a word-level tokenizer), as the tests make
#   rmtk_tiny_rm BIN DIR                a tiny writing reward model trained by `rmtk train-rm`
#                                       (tiny BERT, 2 updates on the demo pairs) in DIR/rm
#   rmtk_quick_args NAME ARGS...      sets QUICK (1 with --quick) and ARGS (the positional
#                                       arguments); any other option is an error naming NAME
#   rmtk_quick_policy_rm BIN DIR [RM]   the quick modes' GRPO models: POLICY, a tiny Llama in
#                                       DIR; RM, the given one or a tiny one trained in DIR
#   rmtk_tmpdir TAG                     a new temporary folder (rmtk-TAG.XXXXXX under TMPDIR)
#   rmtk_serve_start BIN LOG ARGS...    start `BIN serve --port 0 ARGS...` in the background
#                                       (stderr to LOG), wait until it listens; sets
#                                       RMTK_SERVE_PID and RMTK_SERVE_URL (http://host:port)
#   rmtk_serve_stop                     stop that server (SIGTERM), if one was started

RMTK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

rmtk_usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$1"
}

rmtk_help_if_asked() {
  local script="$1" arg
  shift
  for arg in "$@"; do
    case "$arg" in
      -h|--help) rmtk_usage "$script"; exit 0 ;;
      --) break ;;
    esac
  done
}

rmtk_target_dir() {
  if [[ -n "${RMTK_TARGET_DIR_CACHED:-}" ]]; then
    printf '%s\n' "$RMTK_TARGET_DIR_CACHED"
    return
  fi
  local meta
  meta="$(cargo metadata --format-version 1 --no-deps --manifest-path "$RMTK_ROOT/Cargo.toml")" \
    || { echo "cargo metadata failed: cannot find cargo's target directory" >&2; return 1; }
  RMTK_TARGET_DIR_CACHED="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' <<<"$meta")" \
    || return 1
  printf '%s\n' "$RMTK_TARGET_DIR_CACHED"
}

# Build messages go to stderr; the binary's path to stdout.
rmtk_bin() {
  local profile="$1"
  shift
  if [[ -n "${RMTK_BIN:-}" ]]; then
    [[ -x "$RMTK_BIN" ]] || { echo "RMTK_BIN=$RMTK_BIN is not an executable" >&2; return 1; }
    printf '%s\n' "$RMTK_BIN"
    return
  fi
  local target
  target="$(rmtk_target_dir)" || return 1
  case "$profile" in
    dev)
      echo "building rmtk (dev profile${1:+, $*})" >&2
      (cd "$RMTK_ROOT" && cargo build --locked --quiet "$@") >&2 || return 1
      printf '%s\n' "$target/debug/rmtk" ;;
    release)
      echo "building rmtk (release${1:+, $*})" >&2
      (cd "$RMTK_ROOT" && cargo build --release --locked --quiet "$@") >&2 || return 1
      printf '%s\n' "$target/release/rmtk" ;;
    *) echo "rmtk_bin: profile dev or release, not $profile" >&2; return 2 ;;
  esac
}

rmtk_bench() {
  local name="$1" profile="$2"
  shift 2
  local features=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do features+=("$1"); shift; done
  [[ "${1:-}" == "--" ]] && shift
  case "$profile" in
    dev) (cd "$RMTK_ROOT" && cargo test --locked --quiet --bench "$name" "${features[@]}" -- "$@") ;;
    release) (cd "$RMTK_ROOT" && cargo bench --locked --quiet --bench "$name" "${features[@]}" -- "$@") ;;
    *) echo "rmtk_bench: profile dev or release, not $profile" >&2; return 2 ;;
  esac
}

rmtk_tiny_model() {
  local kind="$1" dest="$2" name
  mkdir -p "$dest"
  for name in config.json model.safetensors; do
    cp "$RMTK_ROOT/tests/fixtures/tiny-$kind/$name" "$dest/$name"
  done
  for name in tokenizer.json tokenizer_config.json; do
    cp "$RMTK_ROOT/tests/fixtures/tiny-tokenizers/$kind/$name" "$dest/$name"
  done
}

rmtk_tiny_rm() {
  local bin="$1" dir="$2"
  rmtk_tiny_model bert "$dir/tiny-bert"
  "$bin" train-rm --model "$dir/tiny-bert" --data "$RMTK_ROOT/data/prefs-en-demo.parquet" \
    --output "$dir/rm" --max-length 64 --overlong truncate --batch-size 4 --max-steps 2 \
    --lr 1e-3 --save-every 0 --seed 42 >&2
}

rmtk_tmpdir() {
  mktemp -d "${TMPDIR:-/tmp}/rmtk-$1.XXXXXX"
}

rmtk_quick_args() {
  local name="$1" arg
  shift
  QUICK=0
  ARGS=()
  for arg in "$@"; do
    case "$arg" in
      --quick) QUICK=1 ;;
      -*) echo "$name: unknown option $arg (see --help)" >&2; exit 2 ;;
      *) ARGS+=("$arg") ;;
    esac
  done
}

rmtk_quick_policy_rm() {
  local bin="$1" dir="$2"
  POLICY="$dir/tiny-llama"
  rmtk_tiny_model llama "$POLICY"
  if [[ -n "${3:-}" ]]; then
    RM="$3"
  else
    rmtk_tiny_rm "$bin" "$dir"
    RM="$dir/rm"
  fi
}

rmtk_serve_start() {
  local bin="$1" log="$2"
  shift 2
  "$bin" serve --port 0 "$@" 2>"$log" &
  RMTK_SERVE_PID=$!
  RMTK_SERVE_URL=""
  local _
  for _ in $(seq 1 1200); do
    RMTK_SERVE_URL="$(sed -n 's/^serve: listening on //p' "$log")"
    [[ -n "$RMTK_SERVE_URL" ]] && return 0
    if ! kill -0 "$RMTK_SERVE_PID" 2>/dev/null; then
      cat "$log" >&2
      echo "rmtk serve exited before listening" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "rmtk serve did not start in 120 s" >&2
  return 1
}

rmtk_serve_stop() {
  if [[ -n "${RMTK_SERVE_PID:-}" ]]; then
    kill "$RMTK_SERVE_PID" 2>/dev/null || true
    wait "$RMTK_SERVE_PID" 2>/dev/null || true
    RMTK_SERVE_PID=""
  fi
}
