#!/usr/bin/env bash
# Installs Debian/Ubuntu packages that are missing, with apt (as root, or through sudo).
#
#   deploy/install-packages.sh            the packages ferry needs to build and run:
#                                         a C toolchain, pkg-config, zlib, OpenSSL, Cyrus SASL
#                                         and MIT Kerberos headers (librdkafka with GSSAPI),
#                                         libclang (bindings to MIT's GSSAPI library), and
#                                         Cyrus SASL's GSSAPI plugin (used at run time)
#   deploy/install-packages.sh PKG...     those packages as well
set -euo pipefail

packages=(build-essential pkg-config zlib1g-dev libssl-dev libsasl2-dev libkrb5-dev libclang-dev
          libsasl2-modules-gssapi-mit "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
echo "install-packages: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
  echo "install-packages: need root or sudo to run: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
