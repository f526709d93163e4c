#!/usr/bin/env bash
# Removes the database user. Its own: the user DB_USER@ALLOW_FROM and, with PURGE=true, the
# database DB_NAME. The MariaDB server is not its own (it is the mariadb bundle's, even when
# this bundle installed it because it was missing): other databases may live on it.
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
host=${ALLOW_FROM:-localhost}
[[ $host == localhost || $host == % ]] || die 1 "allow_from must be localhost or %"
case "$DB_USER" in root | mysql | mariadb.sys) die 1 "db_user must not be a system account" ;; esac

if ! command -v mariadb >/dev/null; then
  progress 100 "MariaDB is not installed: nothing to remove"
  exit 0
fi
progress 10 "Connecting to MariaDB"
systemctl start mariadb >/dev/null 2>&1 || die 3 "MariaDB does not start; see journalctl -u mariadb"
for _ in $(seq 1 60); do
  mariadb-admin ping >/dev/null 2>&1 && break
  sleep 1
done
mariadb-admin ping >/dev/null 2>&1 || die 3 "MariaDB does not answer after 60 s"
progress 50 "Dropping user $DB_USER"
mariadb -e "DROP USER IF EXISTS '$DB_USER'@'$host'" || die 3 "could not drop user $DB_USER"
if [ "${PURGE:-false}" = true ]; then
  progress 80 "Dropping database $DB_NAME"
  mariadb -e "DROP DATABASE IF EXISTS \`$DB_NAME\`" || die 3 "could not drop database $DB_NAME"
fi
progress 100 "User $DB_USER is removed"
