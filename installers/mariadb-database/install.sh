#!/usr/bin/env bash
# Creates database DB_NAME and user DB_USER@ALLOW_FROM (password DB_PASSWORD) with every
# privilege on it, installing the MariaDB server when it is missing.
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

readonly ident_re='^[A-Za-z][A-Za-z0-9_]*$'
[[ ${DB_NAME:-} =~ $ident_re && ${#DB_NAME} -le 64 ]] || die 1 "db_name must be letters, digits and _ (max 64)"
[[ ${DB_USER:-} =~ $ident_re && ${#DB_USER} -le 32 ]] || die 1 "db_user must be letters, digits and _ (max 32)"
[ "${#DB_PASSWORD}" -ge 12 ] || die 1 "db_password must be at least 12 characters"
host=${ALLOW_FROM:-localhost}
[[ $host == localhost || $host == % ]] || die 1 "allow_from must be localhost or %"
case "$DB_USER" in root | mysql | mariadb.sys) die 1 "db_user must not be a system account" ;; esac

progress 10 "Installing the MariaDB server"
apt_install mariadb-server
systemctl enable --now mariadb >/dev/null 2>&1 || die 3 "MariaDB failed to start; see journalctl -u mariadb"
for _ in $(seq 1 60); do
  mariadb-admin ping >/dev/null 2>&1 && break
  sleep 1
done
mariadb-admin ping >/dev/null 2>&1 || die 3 "MariaDB does not answer after 60 s"

progress 50 "Creating database $DB_NAME and user $DB_USER"
# The password is escaped as an SQL string literal and travels on stdin, never on a
# command line; errors are silenced because the client would echo the statement.
escaped=${DB_PASSWORD//\\/\\\\}
escaped=${escaped//\'/\\\'}
mariadb >/dev/null 2>&1 <<SQL || die 3 "could not create database $DB_NAME or user $DB_USER"
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$DB_USER'@'$host' IDENTIFIED BY '$escaped';
ALTER USER '$DB_USER'@'$host' IDENTIFIED BY '$escaped';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'$host';
FLUSH PRIVILEGES;
SQL

progress 100 "Database $DB_NAME is ready for $DB_USER@$host"
