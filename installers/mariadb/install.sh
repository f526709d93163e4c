#!/usr/bin/env bash
# Installs and secures the MariaDB server; BIND_ADDRESS, INNODB_BUFFER_POOL_MB.
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

bind=${BIND_ADDRESS:-127.0.0.1}
pool=${INNODB_BUFFER_POOL_MB:-128}
[[ $bind == 127.0.0.1 || $bind == 0.0.0.0 ]] || die 1 "bind_address must be 127.0.0.1 or 0.0.0.0"
[[ $pool =~ ^[0-9]{2,5}$ ]] || die 1 "innodb_buffer_pool_mb must be a number from 32 to 65536"

progress 10 "Installing the MariaDB server"
apt_install mariadb-server
# Databases an uninstall kept belonged to the mysql user of an earlier install, whose id
# may differ.
if [ -n "$(find /var/lib/mysql ! -user mysql -print -quit)" ]; then
  systemctl stop mariadb
  chown -R mysql:mysql /var/lib/mysql
fi

progress 50 "Configuring MariaDB"
changed=0
if write_file /etc/mysql/mariadb.conf.d/60-outfitter.cnf 0644 "# Managed by Outfitter (mariadb bundle); changes are overwritten on reinstall.
[mysqld]
bind-address = $bind
innodb_buffer_pool_size = ${pool}M"; then changed=1; fi

progress 60 "Checking the configuration"
# mariadbd --help --verbose parses every option file and fails on an unknown variable.
mariadbd --help --verbose >/dev/null 2>&1 || die 3 "MariaDB rejects its configuration; run mariadbd --help --verbose"
systemctl enable mariadb >/dev/null 2>&1 || true
if [ "$changed" -eq 1 ] || ! systemctl is-active --quiet mariadb; then
  progress 70 "Restarting MariaDB"
  systemctl restart mariadb || die 3 "MariaDB did not start with the new configuration; see journalctl -u mariadb"
fi
for _ in $(seq 1 60); do
  mariadb-admin ping >/dev/null 2>&1 && break
  sleep 1
done
mariadb-admin ping >/dev/null 2>&1 || die 3 "MariaDB does not answer after 60 s"

progress 85 "Securing the installation"
# What mysql_secure_installation does, without its prompts. Root keeps unix_socket auth.
mariadb <<'SQL' || die 3 "could not secure the installation"
DELETE FROM mysql.global_priv WHERE User = '';
DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1');
DROP DATABASE IF EXISTS test;
DELETE FROM mysql.db WHERE Db = 'test' OR Db = 'test\_%';
FLUSH PRIVILEGES;
SQL

progress 100 "MariaDB is running on $bind:3306"
