#!/usr/bin/env bash
# Run the BigQuery emulator in the foreground: serve.sh HOST PORT GRPC_PORT DATA_DIR
# exec's the emulator, so this script's PID is the emulator's (kill it by PID).
# Installs first if needed (install.sh; its output goes to stderr). Exit 3 = no
# Python >= 3.13 available (skip the test).
set -euo pipefail
if [[ $# -ne 4 ]]; then
  echo "usage: $0 HOST PORT GRPC_PORT DATA_DIR" >&2
  exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wrapper="$("$HERE/install.sh" | tail -n 1)" || exit $?
exec "$wrapper" "$@"
