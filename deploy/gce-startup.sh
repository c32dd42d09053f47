#!/usr/bin/env bash
# GCE startup script: install a ferry release binary and run it under systemd.
# Metadata keys: ferry-url (where the tarball deploy/dist.sh builds is served:
# ferry-<version>-linux-amd64.tar.gz, holding ferry, the connect-standalone link, the unit),
# ferry-worker and ferry-connector (the properties files).
set -euo pipefail
md() { curl -fsS -H 'Metadata-Flavor: Google' "http://metadata.google.internal/computeMetadata/v1/instance/attributes/$1"; }
id ferry >/dev/null 2>&1 || useradd --system --home /var/lib/ferry ferry
install -d -o ferry -g ferry /var/lib/ferry
install -d /etc/ferry/connectors
unpacked=$(mktemp -d)
curl -fsSL "$(md ferry-url)" | tar -xz -C "$unpacked"
install -m 0755 "$unpacked/ferry" /usr/local/bin/ferry
/usr/local/bin/ferry install-aliases /usr/local/bin
install -m 0644 "$unpacked/ferry.service" /etc/systemd/system/ferry.service
[[ -e /etc/ferry/krb5.conf ]] || install -m 0644 "$unpacked/krb5.conf" /etc/ferry/krb5.conf
rm -rf "$unpacked"
md ferry-worker > /etc/ferry/worker.properties
md ferry-connector > /etc/ferry/connectors/connector.properties
/usr/local/bin/ferry validate /etc/ferry/worker.properties /etc/ferry/connectors
systemctl daemon-reload
systemctl enable --now ferry
