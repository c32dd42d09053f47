#!/usr/bin/env bash
# Runs every test of ferry, from a fresh machine: installs what the tests need (Debian
# packages: the build dependencies of deploy/install-packages.sh, kcat, and an MIT
# Kerberos KDC; the BigQuery emulator and the schema registry, each into ~/.cache/ferry),
# then formatting, lints, unit tests and integration tests against librdkafka's mock Kafka
# cluster, a Kerberos realm of their own and Google's Pub/Sub and BigQuery emulators.
#
# Usage: tests/run.sh            (from anywhere; needs root or sudo to install packages)
#        tests/run.sh ARGS...    the same, with ARGS given to `cargo test` to run fewer
#                                tests, e.g. `tests/run.sh --test ztf`
#
# It always ends with its report, whatever failed:
#   N passed, N failed, N skipped      (alone on a line; the three are disjoint)
# then each skipped test with its reason and each failure by name (a test, or a step such
# as `cargo clippy`), and exits 1 if anything failed. Long steps print a line every 30 s;
# the output of third-party builds and of the long cargo steps goes to logs under target/,
# shown (path and last lines) only when the step fails.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p target

failures=()   # every failed step and test, by name
ticker=
out=target/test-output.txt
built=0
test_rc=0
# This run's skips and test output only.
rm -f target/test-skips.txt "$out"

# Prints "   LABEL: N s" every 30 s until stop_ticker. The sleeps' output goes nowhere, so
# none keeps a pipe (`tests/run.sh | tee`) open once the ticker is gone.
start_ticker() {
  local label=$1 log=${2:-} since
  since=$(date +%s)
  (
    # `wait` returns at once on TERM (a foreground `sleep` would hold the trap for 30 s).
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    while :; do
      sleep 30 >/dev/null 2>&1 </dev/null &
      nap=$!
      wait "$nap"
      line="   $label: $(($(date +%s) - since)) s"
      # cargo's latest `Compiling x`/`Checking x`, as a sign of where it is.
      if [[ -n $log && -f $log ]]; then
        last=$(grep -E '^ *(Compiling|Checking) ' "$log" | tail -n1 | sed -E 's/^ +//')
        [[ -n $last ]] && line+=", ${last}"
      fi
      echo "$line"
    done
  ) &
  ticker=$!
}
stop_ticker() {
  if [[ -n $ticker ]]; then
    kill "$ticker" 2>/dev/null
    wait "$ticker" 2>/dev/null
    ticker=
  fi
}
trap stop_ticker EXIT

# step LABEL LOG CMD...: runs CMD with its output in LOG, a progress line every 30 s, and
# one line at the end with the time it took. Returns CMD's exit status.
step() {
  local label=$1 log=$2 t0=$SECONDS rc=0
  shift 2
  echo "== $label (output: $log)"
  start_ticker "$label" "$log"
  "$@" >"$log" 2>&1 </dev/null || rc=$?
  stop_ticker
  if ((rc == 0)); then
    echo "   $label: done in $((SECONDS - t0)) s"
  else
    echo "   $label: exit $rc after $((SECONDS - t0)) s"
  fi
  return $rc
}

# The last lines of a failed step's log, with its path.
show_log() {
  local log=$1 lines=${2:-25}
  echo "   last $lines lines of $log:"
  tail -n "$lines" "$log" | sed 's/^/   | /'
}

# cargo's diagnostics from a log, without the `Compiling x`/`Checking x` progress lines.
show_diagnostics() {
  local log=$1
  echo "   diagnostics (full output in $log):"
  grep -Ev '^ *(Compiling|Checking|Finished|Blocking|Updating|Downloading|Downloaded|Locking|Adding) ' "$log" \
    | head -n 200 | sed 's/^/   | /'
}

# ---- report -----------------------------------------------------------------
# The summary, whatever happened before; exits 1 if anything failed, else 0.
report() {
  touch "$out"
  total() { grep -E '^test result: ' "$out" | grep -Eo "[0-9]+ $1" | awk '{s += $1} END {print s + 0}'; }
  ran_ok=$(total passed)
  ignored=$(total ignored)
  # The failed tests, each with the test binary cargo named in its `Running` line: from
  # libtest's `test NAME ... FAILED` lines and its closing `failures:` list (the list
  # directly under the heading; the earlier `failures:` heading is followed by a blank line
  # and the tests' output). A binary that ended without its `test result:` line crashed (a
  # signal, an abort): its tests after the crash never reported.
  local verdicts
  verdicts=$(awk '
    function target(line) {
      sub(/^ +(Running|Doc-tests) /, "", line)
      sub(/ \(.*\/deps\//, " (", line)
      sub(/-[0-9a-f]+\)$/, ")", line)
      return line
    }
    /^ +(Running|Doc-tests) / {
      if (cur != "" && !done) print "crashed\t" cur
      cur = target($0); done = 0; next
    }
    /^test result: / { done = 1; next }
    /^test .* \.\.\. FAILED$/ {
      name = $0; sub(/^test /, "", name); sub(/ \.\.\. FAILED$/, "", name)
      print "test\t" name " in " cur; next
    }
    /^failures:$/ { list = 1; first = 1; next }
    list && first && /^$/ { list = 0; next }
    list && /^    [^ ]/ { name = $0; sub(/^    /, "", name); print "test\t" name " in " cur; first = 0; next }
    list { list = 0 }
    END { if (cur != "" && !done) print "crashed\t" cur }
  ' "$out" | sort -u)
  local failed_tests=0 crashed=0 kind what
  while IFS=$'\t' read -r kind what; do
    case $kind in
      test) failures+=("test: $what"); failed_tests=$((failed_tests + 1)) ;;
      crashed) failures+=("$what: the test binary ended without its result (a crash; see $out)"); crashed=$((crashed + 1)) ;;
    esac
  done <<<"$verdicts"
  if ((built && test_rc != 0 && failed_tests == 0 && crashed == 0)); then
    failures+=("step: cargo test exited $test_rc (see $out)")
  fi

  skipped=0
  if [[ -f target/test-skips.txt ]]; then skipped=$(wc -l <target/test-skips.txt); fi
  # A skipped test returns early, so libtest counts it as passed: it is counted here as
  # skipped only.
  passed=$((ran_ok > skipped ? ran_ok - skipped : 0))

  echo
  echo "== summary"
  echo "${passed} passed, ${#failures[@]} failed, ${skipped} skipped"
  if ((ignored)); then
    echo "   (${ignored} ignored: measurements, run by hand)"
  fi
  if ((skipped)); then
    sed 's/^/   skipped: /' target/test-skips.txt
  fi
  for f in "${failures[@]}"; do
    echo "   failed: $f"
  done
  if ((${#failures[@]})); then
    exit 1
  fi
  exit 0
}

# kcat: the independent Kafka client the tests check ferry against; the KDC programs and
# MIT's client tools: the throw-away Kerberos realm of the GSSAPI tests; systemd: its
# systemd-analyze verifies the unit the packages install (tests/dist.rs); protoc: the
# descriptor sets of the protocol buffer converter tests (tests/aliecs.rs).
if ! deploy/install-packages.sh kcat krb5-kdc krb5-admin-server krb5-user systemd protobuf-compiler; then
  failures+=("step: deploy/install-packages.sh (the Debian packages the tests need)")
fi
# prometheus: promtool checks /metrics, and a server of the test's own scrapes it
# (tests/metrics.rs). Without Recommends (node-exporter), and its packaged service is not
# wanted: the tests start their own server on a free loopback port and stop it by PID.
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  sudo_=(); [[ $(id -u) -eq 0 ]] || sudo_=(sudo)
  if "${sudo_[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
       "${sudo_[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null; then
    if [[ -d /run/systemd/system ]]; then
      "${sudo_[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
  else
    echo "tests/run.sh: could not install the Debian package prometheus: the promtool and Prometheus server checks of tests/metrics.rs will be skipped."
  fi
fi
if ! command -v cargo >/dev/null; then
  echo "tests/run.sh: cargo not found; install Rust (https://rustup.rs)" >&2
  failures+=("step: cargo not found (install Rust: https://rustup.rs): nothing was built or tested")
  report
fi

# Google's Pub/Sub emulator, where the tests look for it (tests/mock-broker/src/pubsub_emulator.rs).
pubsub=
for p in "${PUBSUB_EMULATOR_BIN:-}" /usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator; do
  if [[ -n $p && -e $p ]]; then pubsub=$p; break; fi
done
if [[ -z $pubsub ]]; then
  echo "tests/run.sh: Google's Pub/Sub emulator is not installed: the Pub/Sub tests will be skipped."
  echo "             Install the Debian package google-cloud-cli-pubsub-emulator from Google's apt repository"
  echo "             (https://cloud.google.com/sdk/docs/install#deb), or set PUBSUB_EMULATOR_BIN."
elif ! command -v java >/dev/null; then
  echo "tests/run.sh: Google's Pub/Sub emulator needs a Java runtime, and there is none: the Pub/Sub tests will fail."
  echo "             Install one (e.g. apt-get install default-jre-headless)."
fi

# The BigQuery emulator (local-bigquery in a venv of its own; a no-op once installed, see
# tests/bigquery-emulator/README.md). Exit 3: no Python >= 3.13 here.
log=target/bigquery-emulator-install.log
rc=0
step "install the BigQuery emulator" "$log" tests/bigquery-emulator/install.sh || rc=$?
if ((rc == 3)); then
  echo "tests/run.sh: the BigQuery emulator cannot be installed here: the BigQuery tests will be skipped (each records a counted skip)."
  grep '^SKIP' "$log" | sed 's/^/   /'
elif ((rc != 0)); then
  show_log "$log"
  failures+=("step: tests/bigquery-emulator/install.sh (exit $rc; log $log)")
fi

# The schema registry of the Confluent Avro converter's tests (a Confluent-compatible
# registry built from crates.io, see tests/schema-registry/README.md; a no-op once built).
log=target/schema-registry-install.log
rc=0
step "build the schema registry" "$log" tests/schema-registry/install.sh || rc=$?
if ((rc == 3)); then
  echo "tests/run.sh: the schema registry cannot be built here: its tests will be skipped."
  grep '^SKIP' "$log" | sed 's/^/   /'
elif ((rc != 0)); then
  show_log "$log"
  failures+=("step: tests/schema-registry/install.sh (exit $rc; log $log)")
fi

echo "== cargo fmt --check"
if ! cargo fmt --all --check; then
  failures+=("step: cargo fmt --all --check (run cargo fmt --all)")
fi

log=target/clippy.log
if ! step "cargo clippy" "$log" cargo clippy --workspace --all-targets -- -D warnings; then
  show_diagnostics "$log"
  failures+=("step: cargo clippy --workspace --all-targets -- -D warnings (log $log)")
fi

# Everything the tests run, built first, so that the test step below only runs tests: the
# binaries (the mock broker and ferry, which the integration tests start) and the tests.
log=target/build.log
built=1
if ! step "build (binaries and tests)" "$log" \
  bash -c 'cargo build --workspace --bins && cargo test --workspace --no-run'; then
  show_diagnostics "$log"
  failures+=("step: cargo build / cargo test --no-run (log $log): no test ran")
  built=0
fi

if ((built)); then
  echo "== cargo test (output: $out)"
  # The integration tests each start their own mock cluster and ferry processes; two at a
  # time keeps a 2-core machine responsive. --no-fail-fast: every test binary runs even
  # when one fails.
  cargo test --workspace --no-fail-fast "$@" -- --test-threads 2 2>&1 | tee "$out"
  test_rc=${PIPESTATUS[0]}
fi

report
