#!/usr/bin/env bash
# Install the BigQuery emulator `local-bigquery` 0.4.0 (PyPI) into a private venv,
# able to start with no network at all (DuckDB extensions come from PyPI wheels
# and are placed where DuckDB's autoloader looks, under a private HOME).
#
#   tests/bigquery-emulator/install.sh        # idempotent; fast no-op when done
#
# Root: ${FERRY_BQ_EMULATOR_HOME:-$HOME/.cache/ferry/bigquery-emulator}
#   venv/            python >= 3.13 venv with local-bigquery + checkers
#   home/            HOME for the emulator (home/.duckdb/extensions/v1.5.5/linux_amd64)
#   serve            wrapper: serve HOST PORT GRPC_PORT DATA_DIR (execs the emulator)
#   .ferry-stamp     written last; its content must match for the no-op path
#
# Last line of stdout: absolute path of the `serve` wrapper. Progress goes to stderr.
#
# Exit codes: 0 ok; 3 no Python >= 3.13 could be found or installed (tests should
# skip with the printed reason); 1 any other failure (e.g. PyPI unreachable).
#
# Env: FERRY_BQ_PYTHON=/path/to/python3.13  try this interpreter first (must be >= 3.13)
#      FERRY_BQ_PYTHON_ONLY=1               try no other (tests the "no Python" path)
#      FERRY_BQ_NO_APT=1                    never try apt-get for python3.13
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${FERRY_BQ_EMULATOR_HOME:-$HOME/.cache/ferry/bigquery-emulator}"
VENV="$ROOT/venv"
EHOME="$ROOT/home"
WRAPPER="$ROOT/serve"
STAMP="$ROOT/.ferry-stamp"

LBQ_VERSION=0.4.0
DUCKDB_VERSION=1.5.5
DUCKDB_EXTENSIONS=(icu ducklake spatial)

log() { printf '[bq-emulator install] %s\n' "$*" >&2; }

# Anything that changes the result must change the stamp.
stamp_content() {
  {
    echo "local-bigquery==$LBQ_VERSION duckdb==$DUCKDB_VERSION ext=${DUCKDB_EXTENSIONS[*]}"
    cat "$HERE/requirements.lock" 2>/dev/null || true
    cat "$HERE/install.sh"
  } | sha256sum | cut -d' ' -f1
}

case "$(uname -m)" in
  x86_64 | amd64) DUCKDB_PLATFORM=linux_amd64 ;;
  aarch64 | arm64) DUCKDB_PLATFORM=linux_arm64 ;;
  *) log "unsupported machine $(uname -m)"; exit 1 ;;
esac
EXTDIR="$EHOME/.duckdb/extensions/v$DUCKDB_VERSION/$DUCKDB_PLATFORM"

# ---- fast path -------------------------------------------------------------
want_stamp="$(stamp_content)"
installed() {
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" && -x "$WRAPPER" \
     && -x "$VENV/bin/local-bigquery" ]] && "$VENV/bin/python" -c '' 2>/dev/null
}
if installed; then
  echo "$WRAPPER"
  exit 0
fi
# Serialize concurrent installers (parallel test processes), then look again.
mkdir -p "$ROOT"
exec 9>"$ROOT/.lock"
if command -v flock >/dev/null; then flock 9; fi
if installed; then
  echo "$WRAPPER"
  exit 0
fi

# ---- find a Python >= 3.13 -------------------------------------------------
py_ok() { # prints the interpreter's real path if it is >= 3.13 with venv+ensurepip+ssl
  "$1" -c 'import sys, venv, ensurepip, ssl
assert (3, 13) <= sys.version_info < (3, 16)
print(sys.executable)' 2>/dev/null
}

find_python() {
  local c p
  local cands=()
  [[ -n "${FERRY_BQ_PYTHON:-}" ]] && cands+=("$FERRY_BQ_PYTHON")
  if [[ -n "${FERRY_BQ_PYTHON_ONLY:-}" ]]; then cands+=(/nonexistent); else
  for v in 3.13 3.14 3.15; do
    cands+=("python$v" "/usr/bin/python$v" "/usr/local/bin/python$v")
  done
  # pyenv installs, even when not the selected version (shims would refuse them).
  local roots=("${PYENV_ROOT:-}" "$HOME/.pyenv" /root/.pyenv /opt/pyenv /usr/local/pyenv)
  for r in "${roots[@]}"; do
    [[ -n "$r" && -d "$r/versions" ]] || continue
    for d in $(ls -1 "$r/versions" 2>/dev/null | sort -rV); do
      cands+=("$r/versions/$d/bin/python3")
    done
  done
  fi
  for c in "${cands[@]}"; do
    if p="$(py_ok "$c")" && [[ -n "$p" ]]; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

PY="$(find_python || true)"
if [[ -z "$PY" && -z "${FERRY_BQ_NO_APT:-}" ]] && command -v apt-get >/dev/null \
   && [[ "$(id -u)" == 0 ]]; then
  # Debian bookworm has no python3.13 (checked); newer releases do.
  log "no Python >= 3.13 found; asking apt for python3.13"
  if apt-cache show python3.13 >/dev/null 2>&1 || { apt-get update -qq >&2 && apt-cache show python3.13 >/dev/null 2>&1; }; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.13 python3.13-venv >&2 || true
    PY="$(find_python || true)"
  else
    log "apt has no python3.13 package on this distribution"
  fi
fi
if [[ -z "$PY" ]]; then
  echo "SKIP: local-bigquery needs Python >= 3.13 and none was found (looked at" \
       "python3.13..3.15 on PATH, /usr/bin, /usr/local/bin, pyenv versions; apt has" \
       "none). Set FERRY_BQ_PYTHON=/path/to/python3.13." >&2
  exit 3
fi
log "using $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"

# ---- venv + packages -------------------------------------------------------
rm -f "$STAMP"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys; assert sys.version_info >= (3, 13)' 2>/dev/null; then
  rm -rf "$VENV"
  log "creating venv $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input -q)

# local-bigquery 0.4.0 declares duckdb>=2.0.0, but the DuckDB extension wheels on
# PyPI stop at 1.5.5 and duckdb 2.x would try to download its extensions at run
# time. So: install its dependencies ourselves with duckdb pinned to 1.5.5, then
# local-bigquery itself with --no-deps. requirements.lock pins the full set that
# was tested; the ranges below are local-bigquery's own Requires-Dist.
REQS=(
  "duckdb==$DUCKDB_VERSION"
  "fastapi>=0.139" "fastavro>=1.13.1" "google-cloud-bigquery-storage>=2.41.0"
  "grpcio>=1.84.1" "mini-racer>=0.12.4" "numpy>=2.5.4" "prompt-toolkit>=3.0.50"
  "pyarrow>=26.0.0" "pydantic-settings>=2.8.1" "pygments>=2.19.1" "sqlglot>=30.24"
  "uvicorn>=0.35"
  # independent checkers used by ferry's tests
  "google-cloud-bigquery"
)
for e in "${DUCKDB_EXTENSIONS[@]}"; do REQS+=("duckdb-extension-$e==$DUCKDB_VERSION"); done
CONSTRAINTS=()
[[ -f "$HERE/requirements.lock" ]] && CONSTRAINTS=(-c "$HERE/requirements.lock")

log "installing dependencies (duckdb==$DUCKDB_VERSION, extensions ${DUCKDB_EXTENSIONS[*]})"
"${PIP[@]}" install "${CONSTRAINTS[@]}" "${REQS[@]}" >&2
log "installing local-bigquery==$LBQ_VERSION (--no-deps)"
"${PIP[@]}" install --no-deps "local-bigquery==$LBQ_VERSION" >&2

# ---- DuckDB extensions where the autoloader finds them ----------------------
mkdir -p "$EXTDIR"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
for e in "${DUCKDB_EXTENSIONS[@]}"; do
  f="$(ls "$SITE"/duckdb_extension_"$e"/extensions/v"$DUCKDB_VERSION"/"$e".duckdb_extension 2>/dev/null | head -1 || true)"
  [[ -n "$f" ]] || { log "extension file for $e not found under $SITE"; exit 1; }
  cp -f "$f" "$EXTDIR/"
done

# Check: the exact duckdb version, and each extension loads with no network
# (autoinstall off, so a missing file fails instead of downloading).
HOME="$EHOME" "$VENV/bin/python" - "$DUCKDB_VERSION" "${DUCKDB_EXTENSIONS[@]}" >&2 <<'EOF'
import sys, duckdb
want, exts = sys.argv[1], sys.argv[2:]
assert duckdb.__version__ == want, (duckdb.__version__, want)
con = duckdb.connect(config={"autoinstall_known_extensions": "false"})
for e in exts:
    con.execute(f"LOAD {e}")
print("duckdb", duckdb.__version__, "extensions loaded offline:", " ".join(exts))
EOF
"$VENV/bin/python" -c 'import local_bigquery.cli, google.cloud.bigquery, google.cloud.bigquery_storage_v1, fastavro' >&2

# ---- serve wrapper ---------------------------------------------------------
cat >"$WRAPPER.tmp" <<EOF
#!/bin/sh
# Generated by ferry tests/bigquery-emulator/install.sh. Runs in the foreground (exec).
# usage: serve HOST PORT GRPC_PORT DATA_DIR     (project id: \${FERRY_BQ_PROJECT:-test})
if [ \$# -ne 4 ]; then echo "usage: \$0 HOST PORT GRPC_PORT DATA_DIR" >&2; exit 2; fi
mkdir -p "\$4" || exit 1
export HOME='$EHOME'
# the emulator reads these as settings; don't let the caller's env leak in
unset STORAGE_EMULATOR_HOST GCS_LOCAL_ROOT CALLER POSTGRES_URI BIGQUERY_PORT BIGQUERY_HOST GRPC_PORT DATA_DIR DEFAULT_PROJECT_ID DEFAULT_DATASET_ID
exec '$VENV/bin/local-bigquery' serve --host "\$1" --port "\$2" --grpc-port "\$3" \\
  --project "\${FERRY_BQ_PROJECT:-test}" --data-dir "\$4"
EOF
chmod +x "$WRAPPER.tmp"
mv -f "$WRAPPER.tmp" "$WRAPPER"

echo "$want_stamp" >"$STAMP"
log "ready"
echo "$WRAPPER"
