#!/usr/bin/env bash
# Build a Confluent-Schema-Registry-compatible server for the integration tests:
# crabka-schema-registry 0.3.0 and the Kafka-compatible broker it stores schemas in,
# crabka-broker 0.3.0 (both Apache-2.0, from crates.io). Needs crates.io once; after
# that the binaries start with no network at all.
#
#   tests/schema-registry/install.sh        # idempotent; fast no-op when done
#
# Root: ${FERRY_SCHEMA_REGISTRY_HOME:-$HOME/.cache/ferry/schema-registry}
#   bin/crabka-broker, bin/crabka-schema-registry
#   dl/*.crate       the two sources, SHA-256 checked (kept: 1.3 MB, spares a download)
#   .ferry-stamp     written last; its content must match for the no-op path
#
# Last line of stdout: absolute path of bin/. Progress goes to stderr.
#
# Exit codes: 0 ok; 3 it cannot be installed here (no cargo >= 1.95, or crates.io not
# reachable on a first install): the line `SKIP: reason` says why, tests skip with it;
# 1 any other failure (a checksum mismatch, a build error).
#
# Env: FERRY_SCHEMA_REGISTRY_PROFILE=dev|release   cargo profile (default dev: a cold
#                                                  build takes 2.6 min on 2 cores against
#                                                  ~8 for release, and the servers start
#                                                  and answer as fast, see README.md)
#      FERRY_SCHEMA_REGISTRY_KEEP_TARGET=1         keep the cargo target dir (a rebuild
#                                                  is then quick; costs about 1 GB)
#
# Both 0.3.0 releases are yanked, so `cargo install --version` refuses them; the .crate
# files still download from static.crates.io and carry their own Cargo.lock, so
# `cargo build --locked` gives the exact dependency set their authors tested.
#
# One patch is applied to crabka-broker's src/bin/broker.rs: upstream binds the KRaft
# controller listener on the listen IP at port 9093, always, so two brokers cannot run
# on one host. The patch adds `--controller-listen-addr` (env
# CRABKA_CONTROLLER_LISTEN_ADDR); the tests pass 127.0.0.1:0 (an OS-assigned port, the
# same thing the crate's own BrokerConfig::for_tests does). Unset, it behaves as upstream.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${FERRY_SCHEMA_REGISTRY_HOME:-$HOME/.cache/ferry/schema-registry}"
BIN="$ROOT/bin"
DL="$ROOT/dl"
STAMP="$ROOT/.ferry-stamp"
PROFILE="${FERRY_SCHEMA_REGISTRY_PROFILE:-dev}"

VERSION=0.3.0
# sha256 = the `cksum` of each version in the crates.io index (index.crates.io/cr/ab/<name>).
declare -A SHA256=(
  [crabka-broker]=554e4628d62fa805fc5f410c901c749b5ac253fabdaf474b94cee974c5342602
  [crabka-schema-registry]=0064a84e558e40e269d376a83b8697753428c52d0074574b94742dde8f7056d3
)
CRATES=(crabka-broker crabka-schema-registry)
RUST_MIN=1.95

log() { printf '[schema-registry install] %s\n' "$*" >&2; }
skip() { echo "SKIP: $*" >&2; exit 3; }

case "$PROFILE" in dev | release) ;; *) log "FERRY_SCHEMA_REGISTRY_PROFILE must be dev or release"; exit 1 ;; esac

# Only what changes the binaries goes into the stamp (not this whole file: editing a
# comment here must not cost a 10-minute rebuild). Change PATCH_ID with the patch.
PATCH_ID=controller-listen-addr-v1
want_stamp="$VERSION ${SHA256[crabka-broker]} ${SHA256[crabka-schema-registry]} $PATCH_ID $PROFILE"

# ---- fast path -------------------------------------------------------------
installed() {
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" \
     && -x "$BIN/crabka-broker" && -x "$BIN/crabka-schema-registry" ]]
}
if installed; then
  echo "$BIN"
  exit 0
fi
# Serialize concurrent installers (parallel test processes), then look again.
mkdir -p "$ROOT"
exec 9>"$ROOT/.lock"
if command -v flock >/dev/null; then flock 9; fi
if installed; then
  echo "$BIN"
  exit 0
fi
start=$SECONDS

# ---- toolchain -------------------------------------------------------------
command -v cargo >/dev/null || skip "cargo not found (the schema registry is built from crates.io sources; install Rust >= $RUST_MIN)"
command -v curl >/dev/null || skip "curl not found"
have="$(cargo --version 2>/dev/null | awk '{print $2}')"
if [[ "$(printf '%s\n%s\n' "$RUST_MIN" "${have%%-*}" | sort -V | head -1)" != "$RUST_MIN" ]]; then
  skip "crabka $VERSION needs Rust >= $RUST_MIN; cargo here is ${have:-unknown}"
fi

# ---- sources ---------------------------------------------------------------
rm -f "$STAMP"
mkdir -p "$DL"
for c in "${CRATES[@]}"; do
  f="$DL/$c-$VERSION.crate"
  if [[ -f "$f" ]] && echo "${SHA256[$c]}  $f" | sha256sum -c --status; then continue; fi
  log "downloading $c $VERSION"
  curl -sSfL --retry 3 --max-time 120 -o "$f.tmp" \
    "https://static.crates.io/crates/$c/$c-$VERSION.crate" \
    || { rm -f "$f.tmp"; skip "cannot download $c $VERSION from static.crates.io (no network?)"; }
  if ! echo "${SHA256[$c]}  $f.tmp" | sha256sum -c --status; then
    log "$c-$VERSION.crate: SHA-256 $(sha256sum "$f.tmp" | cut -d' ' -f1), expected ${SHA256[$c]}"
    rm -f "$f.tmp"
    exit 1
  fi
  mv -f "$f.tmp" "$f"
done

SRC="$ROOT/src"
rm -rf "$SRC"
mkdir -p "$SRC"
for c in "${CRATES[@]}"; do tar -xzf "$DL/$c-$VERSION.crate" -C "$SRC"; done

# ---- the controller-port patch ---------------------------------------------
main="$SRC/crabka-broker-$VERSION/src/bin/broker.rs"
grep -q '^    controller_auto_join: bool,$' "$main" && grep -q '^        a.set_port(9093);$' "$main" \
  || { log "patch anchors not found in $main"; exit 1; }
sed -i \
  -e 's|^    controller_auto_join: bool,$|&\
\
    /// KRaft controller listener (ferry patch; upstream: listen IP, port 9093).\
    /// Port 0 lets the OS choose, so several brokers can share a host.\
    #[arg(long, env = "CRABKA_CONTROLLER_LISTEN_ADDR")]\
    controller_listen_addr: Option<SocketAddr>,|' \
  -e 's|^        a.set_port(9093);$|        match args.controller_listen_addr { Some(c) => a = c, None => a.set_port(9093) }|' \
  "$main"
grep -q 'Some(c) => a = c' "$main" && grep -q '^    controller_listen_addr: Option<SocketAddr>,$' "$main" \
  || { log "patching $main failed"; exit 1; }

# ---- build -----------------------------------------------------------------
# Both crates share ~415 locked dependency versions, so one target dir builds those once.
export CARGO_TARGET_DIR="$ROOT/target"
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_DEV_DEBUG=0
# The caller's flags (e.g. RUSTFLAGS=-D warnings from a CI job) are not for these crates.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET
for c in "${CRATES[@]}"; do
  log "fetching the locked dependencies of $c"
  (cd "$SRC/$c-$VERSION" && cargo fetch --locked >&2) \
    || skip "cannot fetch the dependencies of $c $VERSION from crates.io (no network?)"
done
mkdir -p "$BIN"
for c in "${CRATES[@]}"; do
  log "building $c ($PROFILE profile; a cold build of both takes minutes)"
  (cd "$SRC/$c-$VERSION" && cargo build --locked --profile "$PROFILE" --bin "$c" >&2)
  dir=$PROFILE; [[ $PROFILE == dev ]] && dir=debug
  cp -f "$CARGO_TARGET_DIR/$dir/$c" "$BIN/$c.tmp"
  mv -f "$BIN/$c.tmp" "$BIN/$c"
done
"$BIN/crabka-broker" --help | grep -q -- --controller-listen-addr \
  || { log "the built crabka-broker has no --controller-listen-addr"; exit 1; }
"$BIN/crabka-schema-registry" --version >&2

# The binaries link only system libraries (libc, libgcc_s), so the target dir can go.
if [[ -z "${FERRY_SCHEMA_REGISTRY_KEEP_TARGET:-}" ]]; then rm -rf "$CARGO_TARGET_DIR"; fi
rm -rf "$SRC"

echo "$want_stamp" >"$STAMP"
log "ready in $((SECONDS - start)) s; $(du -sh "$ROOT" | cut -f1) in $ROOT"
echo "$BIN"
