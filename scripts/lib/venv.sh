# Shared by the scripts that need a Python environment (source it; bash).
#
#   ensure_venv DIR REQUIREMENTS [--over BASE_VENV]
#
# Makes DIR a venv with exactly the pins of REQUIREMENTS (scripts/requirements/NAME.txt,
# made by scripts/requirements/lock.py): creates it if missing, runs `pip install -r` and
# writes a stamp, DIR/.rmtk-requirements, the sha256 of everything the install depended on
# (the requirements file and the files it includes, the interpreter's version,
# TORCH_INDEX_URL, the base venv's stamp). An unchanged stamp returns at once; a changed
# requirements file re-installs into the venv; a different interpreter recreates it.
# --over BASE_VENV: DIR sees BASE_VENV's packages too (a .pth file), so the TRL venv is the
# reference venv plus TRL, without a second copy of torch.
#
# Environment:
#   PYTHON           interpreter a new venv is made with (default python3)
#   TORCH_INDEX_URL  when REQUIREMENTS pins torch: install that pin from this index first,
#                    e.g. https://download.pytorch.org/whl/cpu (CPU-only wheels, much
#                    smaller than PyPI's CUDA build; torch's CUDA packages are then not
#                    installed: they are constraints, scripts/requirements/torch-cuda.txt)
#   RMTK_VENV_QUIET  1: pip without its progress output
#
# Prints what it does on stderr; returns non-zero (with the reason) if it cannot.

_venv_log() { printf 'venv: %s\n' "$*" >&2; }

# The requirements file and every file it includes (-r / -c), one path a line.
_venv_req_files() {
  local file="$1" dir line inc
  dir="$(dirname "$file")"
  printf '%s\n' "$file"
  while IFS= read -r line || [[ -n "$line" ]]; do
    case "$line" in
      "-r "*|"-c "*|"--requirement "*|"--constraint "*)
        inc="${line#* }"
        inc="${inc#"${inc%%[![:space:]]*}"}"
        _venv_req_files "$dir/$inc" ;;
    esac
  done <"$file"
}

_venv_sha256() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi | cut -d' ' -f1; }

ensure_venv() {
  local dir="$1" reqs="$2" base=""
  shift 2 || { _venv_log "usage: ensure_venv DIR REQUIREMENTS [--over BASE_VENV]"; return 2; }
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --over) base="$2"; shift 2 ;;
      *) _venv_log "ensure_venv: unknown option $1"; return 2 ;;
    esac
  done
  [[ -f "$reqs" ]] || { _venv_log "missing $reqs"; return 1; }
  local python="${PYTHON:-python3}"
  if [[ -n "$base" ]]; then
    [[ -x "$base/bin/python" ]] || { _venv_log "base venv $base is missing"; return 1; }
    python="$base/bin/python"
  fi
  command -v "$python" >/dev/null 2>&1 \
    || { _venv_log "'$python' not found; install Python 3 (>= 3.10) or set PYTHON=/path/to/python3"; return 1; }
  local want_version
  want_version="$("$python" -c 'import sys; print(sys.version.split()[0])')" \
    || { _venv_log "$python does not run"; return 1; }

  local files stamp_want
  files="$(_venv_req_files "$reqs")" || return 1
  local f
  while IFS= read -r f; do
    [[ -f "$f" ]] || { _venv_log "$reqs includes $f, which is missing"; return 1; }
  done <<<"$files"
  stamp_want="$( {
    while IFS= read -r f; do printf '== %s\n' "$(basename "$f")"; cat "$f"; done <<<"$files"
    printf 'python %s\ntorch-index %s\n' "$want_version" "${TORCH_INDEX_URL:-}"
    if [[ -n "$base" ]]; then printf 'base %s\n' "$(cat "$base/.rmtk-requirements" 2>/dev/null || true)"; fi
  } | _venv_sha256)"

  local stamp="$dir/.rmtk-requirements"
  if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$stamp_want" ]]; then
    return 0
  fi

  # A venv of another interpreter (or a broken one) is made again.
  if [[ -e "$dir" ]]; then
    local have_version
    have_version="$("$dir/bin/python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || true)"
    if [[ "$have_version" != "$want_version" ]]; then
      [[ -f "$dir/pyvenv.cfg" ]] || { _venv_log "$dir exists and is not a venv; move it away"; return 1; }
      _venv_log "$dir has Python ${have_version:-(broken)}, want $want_version: recreating it"
      rm -rf "$dir"
    fi
  fi
  if [[ ! -x "$dir/bin/python" ]]; then
    _venv_log "creating $dir (Python $want_version)"
    "$python" -m venv "$dir" \
      || { _venv_log "could not create a venv with $python (on Debian: apt-get install python3-venv)"; return 1; }
  fi
  if [[ -n "$base" ]]; then
    local site base_site
    site="$("$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    base_site="$("$base/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    printf '%s\n' "$base_site" >"$site/_rmtk_base_venv.pth"
  fi

  local pip=("$dir/bin/python" -m pip --disable-pip-version-check)
  [[ "${RMTK_VENV_QUIET:-0}" == 1 ]] && pip+=(--quiet)
  local torch_pin
  torch_pin="$(while IFS= read -r f; do grep -hE '^torch==' "$f" || true; done <<<"$files" | head -n1)"
  if [[ -n "${TORCH_INDEX_URL:-}" && -n "$torch_pin" ]]; then
    _venv_log "installing $torch_pin from $TORCH_INDEX_URL"
    "${pip[@]}" install --index-url "$TORCH_INDEX_URL" "$torch_pin" \
      || { _venv_log "could not install $torch_pin from $TORCH_INDEX_URL"; return 1; }
  fi
  _venv_log "installing $(grep -cE '^[A-Za-z0-9]' "$reqs") pinned packages of ${reqs#"${RMTK_ROOT:-$PWD}/"} into $dir${torch_pin:+ (torch is large: minutes)}"
  rm -f "$stamp"
  "${pip[@]}" install -r "$reqs" \
    || { _venv_log "pip install -r $reqs failed (is PyPI reachable?)"; return 1; }
  printf '%s\n' "$stamp_want" >"$stamp"
}
