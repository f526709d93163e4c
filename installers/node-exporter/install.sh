#!/usr/bin/env bash
# Installs the Prometheus node exporter on LISTEN_ADDRESS:PORT; COLLECT_UNIT_STATES on/off.
set -euo pipefail

# --- Outfitter bundle helpers (identical in every bundle; conformance/bundle-helpers.sh) ---
# Exit codes: 1 bad input (no retry), 2 retryable install error, 3 configuration error.
progress() { printf '::progress %s %s\n' "$1" "$2"; }
die() {
  local code=$1
  shift
  printf 'error: %s\n' "$*" >&2
  exit "$code"
}
# Tests capture output instead of piping into `grep -q`: under pipefail, grep -q quits at the
# first match and the writer dies of SIGPIPE (141), which fails the pipeline at random.
is_installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == *"ok installed" ]]; }
apt_quiet() { apt-get -q -o DPkg::Lock::Timeout=120 -o Acquire::Retries=3 "$@"; }
# apt_install PKG...: installs what is missing. Any apt failure (mirror unreachable,
# dpkg lock held past the timeout) is worth a retry, so it exits 2.
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do is_installed "$pkg" || missing+=("$pkg"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  apt_quiet update || die 2 "apt-get update failed"
  apt_quiet -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    install --no-install-recommends "${missing[@]}" || die 2 "apt-get install ${missing[*]} failed"
}
# apt_purge PKG...: purges those installed, with the automatically installed packages
# nothing depends on any more (uninstall scripts). Bundles install without recommends, so a
# package that another one only recommends or suggests goes too. An apt failure is worth a
# retry, so it exits 2.
apt_purge() {
  local present=() pkg
  for pkg in "$@"; do is_installed "$pkg" && present+=("$pkg"); done
  [ "${#present[@]}" -eq 0 ] && return 0
  apt_quiet -y -o APT::AutoRemove::RecommendsImportant=false -o APT::AutoRemove::SuggestsImportant=false \
    purge --autoremove "${present[@]}" || die 2 "apt-get purge ${present[*]} failed"
}
# write_file PATH MODE CONTENT: replaces PATH only when CONTENT differs; true when it changed.
write_file() {
  local dest=$1 mode=$2 content=$3 tmp
  if [ -f "$dest" ] && [ "$(cat "$dest")" == "$content" ]; then return 1; fi
  tmp=$(mktemp "$dest.XXXXXX")
  printf '%s\n' "$content" >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
}
# --- end of Outfitter bundle helpers ---

listen=${LISTEN_ADDRESS:-127.0.0.1}
port=${PORT:-9100}
collect_unit_states=${COLLECT_UNIT_STATES:-true}
[[ $listen == 127.0.0.1 || $listen == 0.0.0.0 ]] || die 1 "listen_address must be 127.0.0.1 or 0.0.0.0"
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die 1 "port must be 1-65535"; fi
[[ $collect_unit_states == true || $collect_unit_states == false ]] || die 1 "collect_unit_states must be true or false"

progress 10 "Installing the node exporter"
apt_install prometheus-node-exporter

progress 60 "Configuring the node exporter"
args="--web.listen-address=$listen:$port"
[ "$collect_unit_states" == true ] && args="$args --collector.systemd"
changed=0
if write_file /etc/default/prometheus-node-exporter 0644 "# Managed by Outfitter (node-exporter bundle); changes are overwritten on reinstall.
# Options for prometheus-node-exporter; see prometheus-node-exporter --help.
ARGS=\"$args\""; then changed=1; fi

systemctl enable prometheus-node-exporter >/dev/null 2>&1 || true
if [ "$changed" -eq 1 ] || ! systemctl is-active --quiet prometheus-node-exporter; then
  progress 80 "Restarting the node exporter"
  systemctl restart prometheus-node-exporter || die 3 "the node exporter did not start; see journalctl -u prometheus-node-exporter"
fi
for _ in $(seq 1 20); do
  systemctl is-active --quiet prometheus-node-exporter && break
  sleep 1
done
# An unknown flag makes the exporter exit right after start.
sleep 1
systemctl is-active --quiet prometheus-node-exporter || die 3 "the node exporter stopped; see journalctl -u prometheus-node-exporter"

progress 100 "Metrics are served on http://$listen:$port/metrics"
