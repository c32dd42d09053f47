#!/usr/bin/env bash
# Runs every test of ferry, from a fresh machine: installs what the tests need (Debian
# packages: the build dependencies of deploy/install-packages.sh, kcat, and an MIT
# Kerberos KDC), then formatting, lints, unit tests and integration tests against
# librdkafka's mock Kafka cluster, a Kerberos realm of their own and Google's Pub/Sub
# emulator.
#
# Usage: tests/run.sh            (from anywhere; needs root or sudo to install packages)
set -euo pipefail
cd "$(dirname "$0")/.."

# kcat: the independent Kafka client the tests check ferry against; the KDC programs and
# MIT's client tools: the throw-away Kerberos realm of the GSSAPI tests.
deploy/install-packages.sh kcat krb5-kdc krb5-admin-server krb5-user
command -v cargo >/dev/null || { echo "tests/run.sh: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }

emulator=${PUBSUB_EMULATOR_BIN:-/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator}
if [[ ! -x $emulator ]] || ! command -v java >/dev/null; then
  echo "tests/run.sh: Google's Pub/Sub emulator (and a Java runtime) is not installed: the Pub/Sub tests will be skipped."
  echo "             Install the Debian package google-cloud-cli-pubsub-emulator from Google's apt repository"
  echo "             (https://cloud.google.com/sdk/docs/install#deb), or set PUBSUB_EMULATOR_BIN."
fi

# The BigQuery emulator (local-bigquery in a venv of its own; a no-op once installed, see
# tests/bigquery-emulator/README.md). Exit 3: no Python >= 3.13 here.
bq_status=0
tests/bigquery-emulator/install.sh >/dev/null || bq_status=$?
if ((bq_status == 3)); then
  echo "tests/run.sh: the BigQuery emulator cannot be installed here (it needs Python >= 3.13; see above):"
  echo "             the BigQuery tests will be skipped (each records a counted skip)."
elif ((bq_status != 0)); then
  echo "tests/run.sh: installing the BigQuery emulator failed (tests/bigquery-emulator/install.sh exit $bq_status)" >&2
  exit 1
fi

# The schema registry of the Confluent Avro converter's tests (a Confluent-compatible
# registry built from crates.io, see tests/schema-registry/README.md; a no-op once built).
sr_status=0
tests/schema-registry/install.sh >/dev/null || sr_status=$?
if ((sr_status == 3)); then
  echo "tests/run.sh: the schema registry cannot be built here (see SKIP above): its tests will be skipped."
elif ((sr_status != 0)); then
  echo "tests/run.sh: installing the schema registry failed (tests/schema-registry/install.sh exit $sr_status)" >&2
  exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== build (the mock broker binary the integration tests start)"
cargo build --workspace --bins --quiet
echo "== tests"
mkdir -p target && rm -f target/test-skips.txt
# The integration tests each start their own mock cluster and ferry processes; two at a
# time keeps a 2-core machine responsive.
cargo test --workspace --quiet -- --test-threads 2 2>&1 | tee target/test-output.txt
passed=$(grep -Eo '[0-9]+ passed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
skipped=0
# (no file means nothing was skipped; `cat` of a missing file would end the script under pipefail)
if [[ -f target/test-skips.txt ]]; then skipped=$(wc -l <target/test-skips.txt); fi
echo "== all tests passed: ${passed} passed, ${skipped} skipped"
if ((skipped)); then
  sed 's/^/   skipped: /' target/test-skips.txt
fi
if [[ -d ../shared/data/ztf/alerts || -n "${FERRY_ZTF_ALERTS:-}" ]]; then
  echo "   (the ZTF test used the real alerts)"
else
  echo "   (the ZTF test used synthetic alert-sized payloads: ../shared/data/ztf/alerts not found)"
fi
