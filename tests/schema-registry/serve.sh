#!/usr/bin/env bash
# Run a schema registry and its broker in the foreground, for trying things by hand
# (the tests start both themselves, see tests/common/registry.rs):
#
#   tests/schema-registry/serve.sh DATA_DIR BROKER_PORT REGISTRY_PORT
#
# Both bind 127.0.0.1 only; the broker's controller listener takes an OS-assigned port.
# Logs: DATA_DIR/broker.log, DATA_DIR/registry.log. Prints `ready url=…` once the
# registry accepts writes. Ctrl-C or SIGTERM stops both (by PID). Installs first if
# needed (install.sh; exit 3 = cannot be installed here).
set -euo pipefail
if [[ $# -ne 3 ]]; then
  echo "usage: $0 DATA_DIR BROKER_PORT REGISTRY_PORT" >&2
  exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$("$HERE/install.sh" | tail -n 1)" || exit $?
data="$1" bport="$2" rport="$3" url="http://127.0.0.1:$3"
mkdir -p "$data/broker"
meta="$data/broker/meta.properties.json"
[[ -f $meta ]] || printf '{"cluster_id":"%s","directory_id":"%s","version":1}\n' \
  "$(cat /proc/sys/kernel/random/uuid)" "$(cat /proc/sys/kernel/random/uuid)" >"$meta"

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
trap 'exit 143' TERM INT
NO_COLOR=1 "$bin/crabka-broker" --listen-addr "127.0.0.1:$bport" --controller-listen-addr 127.0.0.1:0 \
  --log-dir "$data/broker" --metrics-listen-addr none >"$data/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$bport") 2>/dev/null && break; sleep 0.1; done
NO_COLOR=1 "$bin/crabka-schema-registry" --bootstrap-servers "127.0.0.1:$bport" \
  --listen-addr "127.0.0.1:$rport" --advertised-url "$url" --schemas-topic-rf 1 >"$data/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
    --data '{"schema":"\"string\""}' "$url/compatibility/subjects/__ready/versions/latest" || true)
  if [[ $code != 000 && $code != 503 ]]; then echo "ready url=$url bootstrap=127.0.0.1:$bport"; break; fi
  sleep 0.1
done
[[ ${code:-000} != 000 && $code != 503 ]] || { echo "not ready after 60 s; see $data/*.log" >&2; exit 1; }
wait -n "${pids[@]}"
echo "a server exited; see $data/*.log" >&2
exit 1
