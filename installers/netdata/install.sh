#!/usr/bin/env bash
# Installs the Netdata host dashboard from the distribution's packages (Debian 12: netdata
# 1.37, the metapackage over netdata-core, netdata-plugins-bash and netdata-web), listening
# on BIND_ADDRESS:LISTEN_PORT, visible to the clients ALLOW_FROM matches, keeping about
# HISTORY_HOURS of metrics. The whole /etc/netdata/netdata.conf is written; Netdata is
# restarted when it changed and must answer /api/v1/info before the install succeeds.
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

port=${LISTEN_PORT:-19999}
bind=${BIND_ADDRESS:-127.0.0.1}
allow=${ALLOW_FROM:-localhost 127.0.0.1}
hours=${HISTORY_HOURS:-24}
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die 1 "listen_port must be 1-65535"; fi
[[ $bind == 127.0.0.1 || $bind == 0.0.0.0 ]] || die 1 "bind_address must be 127.0.0.1 or 0.0.0.0"
[[ $allow =~ ^!?[A-Za-z0-9.:*_-]+(\ !?[A-Za-z0-9.:*_-]+)*$ ]] ||
  die 1 "allow_from must be space-separated patterns such as: localhost 127.0.0.1 10.0.0.*"
if ! [[ $hours =~ ^[0-9]{1,3}$ ]] || [ "$hours" -lt 1 ] || [ "$hours" -gt 720 ]; then die 1 "history_hours must be 1-720"; fi

# Retention. Netdata 1.37 (Debian 12) has no retention time for its default database, the
# dbengine: `[db] retention` (formerly `history`) applies only to the ram/save/alloc modes,
# which would hold every hour in memory, and the per-tier "retention time" settings came
# later (1.45+). The dbengine keeps what fits in `dbengine multihost disk space MB`, so that is
# the setting used: one tier (per-second points), sized at 7 MiB per hour, which is about
# 2000 metrics (a small server) at about 1 byte per compressed point; at least 64 MiB.
disk_mb=$((hours * 7))
[ "$disk_mb" -lt 64 ] && disk_mb=64

conf=/etc/netdata/netdata.conf
lib=/var/lib/netdata
cache=/var/cache/netdata

progress 10 "Installing Netdata"
apt_install netdata
# Data an uninstall kept belonged to the netdata user of an earlier install, whose id may
# differ (the package's postinst fixes only the top directories).
for dir in "$lib" "$cache"; do
  if [ -d "$dir" ] && [ -n "$(find "$dir" ! -user netdata -print -quit)" ]; then
    chown -R netdata:netdata "$dir"
  fi
done

progress 40 "Writing the configuration"
config="# Managed by Outfitter (netdata bundle); changes are overwritten on reinstall.
# history_hours = $hours

[global]
	run as user = netdata

[db]
	mode = dbengine
	update every = 1
	storage tiers = 1
	dbengine page cache size MB = 32
	# about $hours hour(s) of per-second metrics (Netdata 1.37 limits the dbengine by size)
	dbengine multihost disk space MB = $disk_mb

[web]
	default port = $port
	bind to = $bind:$port
	web files owner = root
	web files group = root
	allow connections by dns = heuristic
	allow dashboard by dns = heuristic
	# the loopback stays allowed, for the health check
	allow connections from = localhost 127.0.0.1 ::1 $allow
	allow dashboard from = localhost 127.0.0.1 ::1 $allow

[statsd]
	# no StatsD server (ports 8125): the dashboard does not need it
	enabled = no"
changed=0
if write_file "$conf" 0644 "$config"; then changed=1; fi

progress 70 "Applying the configuration"
systemctl enable netdata >/dev/null 2>&1 || true
start_failed() {
  journalctl -u netdata -n 20 --no-pager 2>&1 || true
  die 3 "Netdata did not start with the new configuration; see journalctl -u netdata"
}
if [ "$changed" -eq 1 ] || ! systemctl is-active --quiet netdata; then
  progress 80 "Restarting Netdata"
  systemctl restart netdata || start_failed
fi

progress 90 "Waiting for the dashboard"
answers() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" &&
    printf 'GET /api/v1/info HTTP/1.0\r\nConnection: close\r\n\r\n' >&3 &&
    [[ $(head -n 1 <&3) == *' 200 '* ]]
}
for _ in $(seq 1 90); do
  (answers) 2>/dev/null && break
  systemctl is-failed --quiet netdata && start_failed
  sleep 1
done
(answers) 2>/dev/null || start_failed
progress 100 "Netdata answers on $bind:$port, keeping about $hours hour(s) of metrics"
