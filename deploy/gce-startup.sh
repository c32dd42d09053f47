#!/usr/bin/env bash
# GCE startup script: install a ferry release binary and run it under systemd.
# Metadata keys: ferry-url (a tarball with the ferry and connect-standalone binaries),
# ferry-worker and ferry-connector (the properties files), ferry-unit (deploy/ferry.service).
set -euo pipefail
md() { curl -fsS -H 'Metadata-Flavor: Google' "http://metadata.google.internal/computeMetadata/v1/instance/attributes/$1"; }
id ferry >/dev/null 2>&1 || useradd --system --home /var/lib/ferry ferry
install -d -o ferry -g ferry /etc/ferry /var/lib/ferry
curl -fsSL "$(md ferry-url)" | tar -xz -C /usr/local/bin ferry connect-standalone
md ferry-worker > /etc/ferry/ztf-worker.properties
md ferry-connector > /etc/ferry/ztf-directory.properties
/usr/local/bin/ferry validate /etc/ferry/ztf-worker.properties /etc/ferry/ztf-directory.properties
md ferry-unit > /etc/systemd/system/ferry.service   # deploy/ferry.service
systemctl daemon-reload
systemctl enable --now ferry
