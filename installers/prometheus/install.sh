#!/usr/bin/env bash
# Installs the Prometheus server from the distribution's package, listening on LISTEN_PORT
# (every address), scraping itself and the node exporters in SCRAPE_TARGETS every
# SCRAPE_INTERVAL_SECONDS and keeping RETENTION_DAYS of metrics. The whole
# /etc/prometheus/prometheus.yml and the ARGS of /etc/default/prometheus are written; the
# configuration is checked with `promtool check config` before Prometheus is restarted.
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

port=${LISTEN_PORT:-9090}
targets=${SCRAPE_TARGETS:-}
interval=${SCRAPE_INTERVAL_SECONDS:-15}
retention=${RETENTION_DAYS:-15}
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die 1 "listen_port must be 1-65535"; fi
if ! [[ $interval =~ ^[0-9]{1,3}$ ]] || [ "$interval" -lt 5 ] || [ "$interval" -gt 300 ]; then die 1 "scrape_interval_seconds must be 5-300"; fi
if ! [[ $retention =~ ^[0-9]{1,3}$ ]] || [ "$retention" -lt 1 ] || [ "$retention" -gt 365 ]; then die 1 "retention_days must be 1-365"; fi
[[ $targets =~ ^[A-Za-z0-9.-]+:[0-9]{1,5}(,[A-Za-z0-9.-]+:[0-9]{1,5})*$ ]] || die 1 "scrape_targets must look like 127.0.0.1:9100,10.0.0.6:9100"
node_targets=""
n=0
IFS=, read -r -a list <<<"$targets"
for target in "${list[@]}"; do
  tport=${target##*:}
  if [ "$tport" -lt 1 ] || [ "$tport" -gt 65535 ]; then die 1 "scrape_targets: $target has no port within 1-65535"; fi
  n=$((n + 1))
  node_targets+="${node_targets:+, }'$target'"
done
# Prometheus refuses a scrape timeout longer than the interval; its default is 10 s.
timeout=10
[ "$interval" -lt "$timeout" ] && timeout=$interval

conf=/etc/prometheus/prometheus.yml
defaults=/etc/default/prometheus
data=/var/lib/prometheus/metrics2
kept=/var/lib/prometheus-metrics2.outfitter-kept

progress 10 "Installing Prometheus"
# Metrics an uninstall parked and did not put back because it was interrupted.
if [ -d "$kept" ] && [ ! -e "$data" ]; then
  mkdir -p /var/lib/prometheus
  mv "$kept" "$data"
fi
apt_install prometheus
# Kept metrics belonged to the prometheus user of an earlier install, whose id may differ.
if [ -d "$data" ] && [ "$(stat -c %U:%G "$data")" != prometheus:prometheus ]; then
  chown -R prometheus:prometheus "$data"
fi

progress 40 "Writing the configuration"
config="# Managed by Outfitter (prometheus bundle); changes are overwritten on reinstall.
global:
  scrape_interval: ${interval}s
  scrape_timeout: ${timeout}s
  evaluation_interval: ${interval}s

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$port']

  - job_name: node
    static_configs:
      - targets: [$node_targets]"
previous=""
cleanup() { if [ -n "$previous" ]; then rm -f "$previous"; fi; }
trap cleanup EXIT
if [ -f "$conf" ]; then
  previous=$(mktemp "$conf.previous.XXXXXX")
  cp -p "$conf" "$previous"
fi
changed=0
if write_file "$conf" 0644 "$config"; then changed=1; fi

progress 55 "Checking the configuration"
if ! promtool check config "$conf" 2>&1; then
  if [ -n "$previous" ]; then mv -f "$previous" "$conf"; fi
  previous=""
  die 3 "promtool check config rejects the configuration; the previous one is restored"
fi
cleanup
previous=""

if write_file "$defaults" 0644 "# Managed by Outfitter (prometheus bundle); changes are overwritten on reinstall.
# Options for prometheus; see prometheus --help.
ARGS=\"--config.file=$conf --storage.tsdb.path=$data/ --web.listen-address=:$port --storage.tsdb.retention.time=${retention}d\""; then
  changed=1
fi

progress 70 "Applying the configuration"
systemctl enable prometheus >/dev/null 2>&1 || true
start_failed() {
  journalctl -u prometheus -n 20 --no-pager 2>&1 || true
  die 3 "Prometheus did not start with the new configuration; see journalctl -u prometheus"
}
if [ "$changed" -eq 1 ] || ! systemctl is-active --quiet prometheus; then
  progress 80 "Restarting Prometheus"
  systemctl restart prometheus || start_failed
fi

progress 90 "Waiting for Prometheus to be ready"
ready() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /-/ready HTTP/1.0\r\n\r\n' >&3 &&
    [[ $(head -n 1 <&3) == *' 200 '* ]]
}
for _ in $(seq 1 90); do
  (ready) 2>/dev/null && break
  # An unknown flag or a port in use makes Prometheus exit right after the start.
  systemctl is-failed --quiet prometheus && start_failed
  sleep 1
done
(ready) 2>/dev/null || start_failed
progress 100 "Prometheus is ready on port $port, scraping $n node exporter(s) every ${interval}s"
