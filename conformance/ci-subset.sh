#!/usr/bin/env bash
# CI's conformance subset: a web server (nginx), a database (postgresql-database, on the
# postgresql bundle), the deploy flow (laravel-site) and the lockout guard of ssh-hardening
# (about 40 s: it must refuse a key that is not authorized), each installed for real twice in a
# throwaway systemd container through `outfitter-runner exec`, with its smoke checks after
# each install, then its lifecycle: health check, change of settings, backup and restore,
# uninstall, leftovers check, install again, purge (docs/authoring.md, "Lifecycle in
# conformance").
#
# Needs root and the host packages debootstrap, systemd-container and iproute2 (installed
# here when missing), plus network access to the Debian mirror of the host's apt sources.
# Results go to target/conformance/ci (logs and one conformance.json per bundle); the
# committed results and docs/catalog.md are left alone. The full catalog run is
# `outfitter-conformance run --all` (see docs/authoring.md).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v ip >/dev/null || missing+=(iproute2)
command -v shellcheck >/dev/null || missing+=(shellcheck)
if [ "${#missing[@]}" -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

cargo build -p outfitter-panel -p outfitter-runner -p outfitter-conformance
started=$(date +%s)
target/debug/outfitter-conformance run nginx postgresql-database laravel-site ssh-hardening \
  --via runner --jobs 2 --no-record --logs-dir target/conformance/ci
echo "conformance subset passed in $(($(date +%s) - started)) s"
