#!/usr/bin/env bash
# Installs memcached with a memory limit (MEMORY_MB), a port (PORT) and a listen address
# (LISTEN_ADDRESS). UDP is off (it amplifies reflection attacks).
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

memory=${MEMORY_MB:-64}
port=${PORT:-11211}
address=${LISTEN_ADDRESS:-127.0.0.1}
if ! [[ $memory =~ ^[0-9]{2,5}$ ]] || [ "$memory" -lt 16 ] || [ "$memory" -gt 65536 ]; then
  die 1 "memory_mb must be a number from 16 to 65536"
fi
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die 1 "port must be 1-65535"; fi
[[ $address == 127.0.0.1 || $address == 0.0.0.0 ]] || die 1 "listen_address must be 127.0.0.1 or 0.0.0.0"

progress 10 "Installing memcached"
apt_install memcached

progress 50 "Writing /etc/memcached.conf"
changed=0
if write_file /etc/memcached.conf 0644 "# Managed by Outfitter (memcached bundle); changes are overwritten on reinstall.
-d
logfile /var/log/memcached.log
-m $memory
-p $port
-U 0
-u memcache
-l $address
-c 1024
-P /var/run/memcached/memcached.pid"; then changed=1; fi

progress 70 "Applying the configuration"
systemctl enable memcached >/dev/null 2>&1 || true
if [ "$changed" -eq 1 ] || ! systemctl is-active --quiet memcached; then
  systemctl restart memcached || die 3 "memcached did not start with the new configuration; see journalctl -u memcached"
fi

progress 90 "Waiting for memcached"
answers() { exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'version\r\n' >&3 && [[ $(head -n 1 <&3) == VERSION* ]]; }
for _ in $(seq 1 30); do
  (answers) 2>/dev/null && break
  sleep 1
done
(answers) 2>/dev/null || die 3 "memcached does not answer on port $port"

progress 100 "memcached runs with ${memory} MB on $address:$port"
