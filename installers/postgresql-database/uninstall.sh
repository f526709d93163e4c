#!/usr/bin/env bash
# Removes the database's access. Its own: role DB_OWNER and, with PURGE=true, database
# DB_NAME. Without PURGE the database stays, and so does its owner role, but it may no
# longer log in (an install again gives it its password back). The PostgreSQL server is not
# its own (it is the postgresql bundle's, even when this bundle installed it because it was
# missing): other databases may live on it.
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

readonly ident_re='^[a-z][a-z0-9_]{0,62}$'
[[ ${DB_NAME:-} =~ $ident_re ]] || die 1 "db_name must be lower-case letters, digits and _ (max 63)"
cd / # runuser keeps the working directory, which postgres may not be allowed to read
[[ ${DB_OWNER:-} =~ $ident_re ]] || die 1 "db_owner must be lower-case letters, digits and _ (max 63)"
case "$DB_OWNER" in postgres | pg_*) die 1 "db_owner must not be a PostgreSQL system role" ;; esac
as_postgres() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -tA -c "$1"; }

if ! command -v pg_isready >/dev/null || ! id postgres >/dev/null 2>&1; then
  progress 100 "PostgreSQL is not installed: nothing to remove"
  exit 0
fi
progress 10 "Connecting to PostgreSQL"
systemctl start postgresql >/dev/null 2>&1 || die 3 "PostgreSQL does not start; see journalctl -u postgresql"
for _ in $(seq 1 60); do
  runuser -u postgres -- pg_isready -q && break
  sleep 1
done
runuser -u postgres -- pg_isready -q || die 3 "PostgreSQL does not accept connections after 60 s"
if [ "$(as_postgres "SELECT 1 FROM pg_roles WHERE rolname = '$DB_OWNER'")" != 1 ]; then
  progress 100 "Role $DB_OWNER does not exist: nothing to remove"
  exit 0
fi
if [ "${PURGE:-false}" = true ]; then
  progress 40 "Dropping database $DB_NAME and role $DB_OWNER"
  as_postgres "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null || die 3 "could not drop database $DB_NAME"
  as_postgres "DROP OWNED BY \"$DB_OWNER\"" >/dev/null || die 3 "could not drop what $DB_OWNER owns"
  as_postgres "DROP ROLE \"$DB_OWNER\"" >/dev/null || die 3 "could not drop role $DB_OWNER"
else
  progress 40 "Closing role $DB_OWNER; database $DB_NAME stays"
  as_postgres "ALTER ROLE \"$DB_OWNER\" NOLOGIN PASSWORD NULL" >/dev/null || die 3 "could not close role $DB_OWNER"
  as_postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '$DB_OWNER'" >/dev/null || true
fi
progress 100 "Access to $DB_NAME is removed"
