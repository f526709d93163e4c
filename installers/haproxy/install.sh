#!/usr/bin/env bash
# Installs HAProxy with one HTTP frontend on FRONTEND_PORT balancing (BALANCE) over BACKENDS,
# each checked every 2 s. The whole /etc/haproxy/haproxy.cfg is written, checked with
# `haproxy -c` and only then put in place and reloaded.
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

port=${FRONTEND_PORT:-80}
backends=${BACKENDS:-}
balance=${BALANCE:-roundrobin}
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die 1 "frontend_port must be 1-65535"; fi
[[ $balance == roundrobin || $balance == leastconn ]] || die 1 "balance must be roundrobin or leastconn"
[[ $backends =~ ^[A-Za-z0-9.-]+:[0-9]{1,5}(,[A-Za-z0-9.-]+:[0-9]{1,5})*$ ]] || die 1 "backends must look like 10.0.0.5:8080,10.0.0.6:8080"
servers=""
n=0
IFS=, read -r -a list <<<"$backends"
for backend in "${list[@]}"; do
  bport=${backend##*:}
  if [ "$bport" -lt 1 ] || [ "$bport" -gt 65535 ]; then die 1 "backends: $backend has no port within 1-65535"; fi
  n=$((n + 1))
  servers+="    server app$n $backend check inter 2s"$'\n'
done

progress 10 "Installing HAProxy"
apt_install haproxy

progress 40 "Writing the configuration"
config="# Managed by Outfitter (haproxy bundle); changes are overwritten on reinstall.
global
    log /dev/log local0
    user haproxy
    group haproxy
    daemon
    stats socket /run/haproxy/admin.sock mode 660 level admin

defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch

frontend outfitter_http
    bind :$port
    monitor-uri /haproxy-health
    default_backend outfitter_servers

backend outfitter_servers
    balance $balance
${servers%$'\n'}"
candidate=$(mktemp /etc/haproxy/haproxy.cfg.XXXXXX)
printf '%s\n' "$config" >"$candidate"
haproxy -c -q -f "$candidate" 2>&1 || {
  rm -f "$candidate"
  die 3 "haproxy -c rejects the configuration"
}
rm -f "$candidate"
changed=0
if write_file /etc/haproxy/haproxy.cfg 0644 "$config"; then changed=1; fi

progress 70 "Applying the configuration"
systemctl enable haproxy >/dev/null 2>&1 || true
start_failed() {
  journalctl -u haproxy -n 20 --no-pager 2>&1 || true
  die 3 "HAProxy did not start with the new configuration; see journalctl -u haproxy"
}
if ! systemctl is-active --quiet haproxy; then
  systemctl restart haproxy || start_failed
elif [ "$changed" -eq 1 ]; then
  # The unit's reload is `haproxy -c` (done above) and SIGUSR2 to the master, sent with
  # /bin/kill, which minimal systems lack (procps): systemd sends the signal itself here.
  # The master re-reads the configuration and keeps established connections.
  systemctl kill --kill-whom=main --signal=USR2 haproxy || systemctl restart haproxy || start_failed
fi

progress 90 "Waiting for the frontend"
answers() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /haproxy-health HTTP/1.0\r\n\r\n' >&3 &&
    [[ $(head -n 1 <&3) == *' 200 '* ]]
}
for _ in $(seq 1 30); do
  (answers) 2>/dev/null && break
  sleep 1
done
(answers) 2>/dev/null || die 3 "HAProxy does not answer on port $port"
progress 100 "HAProxy balances port $port over $n backend(s)"
