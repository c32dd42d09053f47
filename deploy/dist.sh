#!/usr/bin/env bash
# Builds ferry's release packages from a release build:
#   dist/ferry-<version>-linux-<arch>.tar.gz   ferry, the connect-standalone and connect-distributed links, the
#                                              systemd unit, krb5.conf, README and examples
#   dist/ferry_<version>_<arch>.deb            the same installed as a Debian package:
#                                              /usr/bin/ferry (+ link), the unit, the
#                                              `ferry` system user, /etc/ferry/connectors
#
# Usage: deploy/dist.sh [--bin PATH] [--out DIR] [--fast]
#   --bin PATH   package this ferry executable instead of building target/release/ferry
#                (the tests package their debug build this way)
#   --out DIR    where the packages go (default: dist/)
#   --fast       light compression (gzip -1), for tests
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/dist"
bin=""
fast=0
while (($#)); do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --fast) fast=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "dist.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z $bin ]]; then
  (cd "$root" && cargo build --release --bin ferry)
  bin="$root/target/release/ferry"
fi
[[ -x $bin ]] || { echo "dist.sh: $bin is not an executable" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# The tarball: flat, so that `tar -xz -C /usr/local/bin ferry connect-standalone` works.
t="$stage/ferry-$version"
mkdir -p "$t/examples"
install -m 0755 "$bin" "$t/ferry"
ln -s ferry "$t/connect-standalone"
ln -s ferry "$t/connect-distributed"
install -m 0644 "$root/deploy/ferry.service" "$root/deploy/krb5.conf" "$root/README.md" "$t/"
install -m 0644 "$root"/config/*.properties "$t/examples/"
tarball="$out/ferry-$version-linux-$arch.tar.gz"
gzip_level=$((fast ? 1 : 9))
tar -C "$t" -c --owner=0 --group=0 ferry connect-standalone connect-distributed ferry.service krb5.conf README.md examples | gzip "-$gzip_level" >"$tarball"
echo "dist.sh: $tarball"

# The Debian package.
d="$stage/deb"
mkdir -p "$d/DEBIAN" "$d/usr/bin" "$d/lib/systemd/system" "$d/etc/ferry/connectors" \
         "$d/usr/share/doc/ferry/examples"
install -m 0755 "$bin" "$d/usr/bin/ferry"
ln -s ferry "$d/usr/bin/connect-standalone"
ln -s ferry "$d/usr/bin/connect-distributed"
sed 's#/usr/local/bin/ferry#/usr/bin/ferry#g' "$root/deploy/ferry.service" >"$d/lib/systemd/system/ferry.service"
chmod 0644 "$d/lib/systemd/system/ferry.service"
install -m 0644 "$root/README.md" "$root/deploy/krb5.conf" "$d/usr/share/doc/ferry/"
install -m 0644 "$root"/config/*.properties "$d/usr/share/doc/ferry/examples/"
size_kb=$(du -sk "$d" | cut -f1)
cat >"$d/DEBIAN/control" <<CONTROL
Package: ferry
Version: $version
Architecture: $arch
Maintainer: ferry developers <ferry@users.noreply.github.com>
Installed-Size: $size_kb
Depends: libc6, libssl3, zlib1g, libsasl2-2, libsasl2-modules-gssapi-mit, libgssapi-krb5-2, adduser
Section: net
Priority: optional
Homepage: https://github.com/ferry-connect/ferry
Description: Kafka Connect sink connectors in one small native binary
 Runs Kafka Connect worker and sink connector .properties files unchanged
 (ferry standalone, or the connect-standalone drop-in): Kerberos keytab login,
 Google Pub/Sub and BigQuery sinks, file and directory sinks.
CONTROL
cat >"$d/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd ferry >/dev/null; then
    adduser --system --group --home /var/lib/ferry --no-create-home ferry >/dev/null
  fi
  install -d -o ferry -g ferry -m 0750 /var/lib/ferry
  if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
  echo "ferry: put the worker file at /etc/ferry/worker.properties and connector files in /etc/ferry/connectors, then: systemctl enable --now ferry"
fi
POSTINST
cat >"$d/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
POSTRM
chmod 0755 "$d/DEBIAN/postinst" "$d/DEBIAN/postrm"
deb="$out/ferry_${version}_$arch.deb"
compression=(); ((fast)) && compression=(-Zgzip -z1)
dpkg-deb --root-owner-group "${compression[@]}" --build "$d" "$deb" >/dev/null
echo "dist.sh: $deb"
