#!/usr/bin/env bash
# Installs the PostgreSQL server; LISTEN (localhost|all), MAX_CONNECTIONS, SHARED_BUFFERS_MB.
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

listen=${LISTEN:-localhost}
max_connections=${MAX_CONNECTIONS:-100}
shared_buffers=${SHARED_BUFFERS_MB:-128}
[[ $listen == localhost || $listen == all ]] || die 1 "listen must be localhost or all"
[[ $max_connections =~ ^[0-9]{2,4}$ ]] || die 1 "max_connections must be a number from 10 to 2000"
[[ $shared_buffers =~ ^[0-9]{2,5}$ ]] || die 1 "shared_buffers_mb must be a number from 16 to 65536"
cd / # runuser keeps the working directory, which postgres may not be allowed to read

progress 10 "Installing the PostgreSQL server"
# Clusters an uninstall kept: back in place before the packages look for clusters, so that
# they adopt these instead of creating an empty one.
kept=/var/lib/postgresql.outfitter-kept
if [ -d "$kept" ] && [ ! -e /var/lib/postgresql ] && [ ! -e /etc/postgresql ]; then
  if [ -d "$kept/.etc-postgresql" ]; then mv "$kept/.etc-postgresql" /etc/postgresql; fi
  mv "$kept" /var/lib/postgresql
fi
apt_install postgresql
# Kept clusters belonged to the postgres user of an earlier install, whose id may differ.
if [ -n "$(find /var/lib/postgresql /etc/postgresql ! -user postgres -print -quit)" ]; then
  systemctl stop postgresql
  chown -R postgres:postgres /var/lib/postgresql /etc/postgresql
fi

version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
[ -n "$version" ] || die 2 "postgresql installed but no cluster directory appeared in /etc/postgresql"
conf_dir="/etc/postgresql/$version/main"

progress 40 "Configuring PostgreSQL $version"
addresses=localhost
[ "$listen" == all ] && addresses='*'
changed=0
if write_file "$conf_dir/conf.d/50-outfitter.conf" 0644 "# Managed by Outfitter (postgresql bundle); changes are overwritten on reinstall.
listen_addresses = '$addresses'
max_connections = $max_connections
shared_buffers = ${shared_buffers}MB
password_encryption = scram-sha-256"; then changed=1; fi

hba="$conf_dir/pg_hba.conf"
remote_rules="host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256"
marker="# Outfitter: remote password logins"
if [ "$listen" == all ] && ! grep -qxF "$marker" "$hba"; then
  printf '%s\n%s\n' "$marker" "$remote_rules" >>"$hba"
  changed=1
elif [ "$listen" == localhost ] && grep -qxF "$marker" "$hba"; then
  sed -i "/^$marker\$/,+2d" "$hba"
  changed=1
fi

progress 60 "Checking the configuration"
systemctl enable postgresql >/dev/null 2>&1 || true
if [ "$changed" -eq 1 ] || ! systemctl is-active --quiet "postgresql@$version-main"; then
  progress 70 "Restarting PostgreSQL"
  systemctl restart "postgresql@$version-main" ||
    die 3 "PostgreSQL did not start with the new configuration; see journalctl -u postgresql@$version-main"
fi

progress 90 "Waiting for PostgreSQL"
for _ in $(seq 1 60); do
  runuser -u postgres -- pg_isready -q && break
  sleep 1
done
runuser -u postgres -- pg_isready -q || die 3 "PostgreSQL does not accept connections after 60 s"
# pg_hba.conf errors only show in this view; a bad line means no logins at all.
hba_errors=$(runuser -u postgres -- psql -XtAc "select count(*) from pg_hba_file_rules where error is not null" 2>/dev/null || echo unknown)
[ "$hba_errors" == 0 ] || die 3 "pg_hba.conf has errors; see select * from pg_hba_file_rules"

progress 100 "PostgreSQL $version is running"
