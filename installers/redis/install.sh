#!/usr/bin/env bash
# Installs Redis with a password (REDIS_PASSWORD), a memory limit (MAXMEMORY_MB) and a bind
# address (BIND_ADDRESS). The password lives only in /etc/redis/outfitter.conf (0640).
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

password=${REDIS_PASSWORD:-}
maxmemory=${MAXMEMORY_MB:-256}
bind=${BIND_ADDRESS:-127.0.0.1}
[ "${#password}" -ge 16 ] || die 1 "redis_password must be at least 16 characters"
[[ $password =~ ^[A-Za-z0-9._~+-]+$ ]] || die 1 "redis_password may use letters, digits and . _ ~ + - only"
if ! [[ $maxmemory =~ ^[0-9]{2,6}$ ]] || [ "$maxmemory" -lt 16 ]; then die 1 "maxmemory_mb must be a number from 16 to 65536"; fi
[[ $bind == 127.0.0.1 || $bind == 0.0.0.0 ]] || die 1 "bind_address must be 127.0.0.1 or 0.0.0.0"

progress 10 "Installing Redis"
# Data an uninstall kept, or parked and did not put back when it was interrupted.
if [ -d /var/lib/redis.outfitter-kept ] && [ ! -e /var/lib/redis ]; then mv /var/lib/redis.outfitter-kept /var/lib/redis; fi
apt_install redis-server
# Kept data belonged to the redis user of an earlier install, whose id may differ.
chown -R redis:redis /var/lib/redis

progress 50 "Configuring Redis"
main_conf=/etc/redis/redis.conf
drop_in=/etc/redis/outfitter.conf
# Later directives win in redis.conf, so one include at the end overrides the defaults.
grep -qxF "include $drop_in" "$main_conf" || printf '\n# Added by Outfitter (redis bundle)\ninclude %s\n' "$drop_in" >>"$main_conf"
protected=yes
[ "$bind" == 0.0.0.0 ] && protected=no
touch "$drop_in"
chown redis:redis "$drop_in"
chmod 0640 "$drop_in"
changed=0
if write_file "$drop_in" 0640 "# Managed by Outfitter (redis bundle); changes are overwritten on reinstall.
bind $bind
protected-mode $protected
requirepass $password
maxmemory ${maxmemory}mb
maxmemory-policy allkeys-lru"; then changed=1; fi
chown redis:redis "$drop_in"

progress 70 "Applying the configuration"
# Redis has no offline config check: a bad directive shows as a failed (re)start, exit 3.
systemctl enable redis-server >/dev/null 2>&1 || true
if [ "$changed" -eq 1 ] || ! systemctl is-active --quiet redis-server; then
  progress 80 "Restarting Redis"
  systemctl restart redis-server || die 3 "Redis did not start with the new configuration; see journalctl -u redis-server"
fi

progress 90 "Waiting for Redis"
for _ in $(seq 1 30); do
  [ "$(REDISCLI_AUTH=$password redis-cli ping 2>/dev/null)" == PONG ] && break
  sleep 1
done
[ "$(REDISCLI_AUTH=$password redis-cli ping 2>/dev/null)" == PONG ] || die 3 "Redis does not answer an authenticated PING"

progress 100 "Redis is running with a password on $bind:6379"
