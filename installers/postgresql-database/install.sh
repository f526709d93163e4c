#!/usr/bin/env bash
# Creates database DB_NAME owned by login role DB_OWNER (password DB_PASSWORD), installing
# the PostgreSQL server when it is missing. Reinstalling updates the password only.
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
[[ ${DB_OWNER:-} =~ $ident_re ]] || die 1 "db_owner must be lower-case letters, digits and _ (max 63)"
[ "${#DB_PASSWORD}" -ge 12 ] || die 1 "db_password must be at least 12 characters"
case "$DB_OWNER" in postgres | pg_*) die 1 "db_owner must not be a PostgreSQL system role" ;; esac

# as_postgres SQL: runs one statement as the postgres superuser; prints the result.
as_postgres() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -tA -c "$1"; }

cd /  # runuser keeps the working directory, which postgres may not be allowed to read
progress 10 "Installing the PostgreSQL server"
apt_install postgresql
systemctl enable --now postgresql >/dev/null 2>&1 || die 3 "PostgreSQL failed to start; see journalctl -u postgresql"

progress 40 "Waiting for PostgreSQL to accept connections"
for _ in $(seq 1 60); do
  runuser -u postgres -- pg_isready -q && break
  sleep 1
done
runuser -u postgres -- pg_isready -q || die 3 "PostgreSQL does not accept connections after 60 s"

progress 60 "Setting up role $DB_OWNER"
if [ "$(as_postgres "SELECT 1 FROM pg_roles WHERE rolname = '$DB_OWNER'")" != 1 ]; then
  as_postgres "CREATE ROLE \"$DB_OWNER\" LOGIN" >/dev/null
fi
# The password travels on psql's stdin inside dollar quotes with a random tag, never on a
# command line (visible in ps); errors are silenced because psql would echo the statement.
tag="pw_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[[ $DB_PASSWORD == *"$tag"* ]] && die 1 "db_password contains an unusable sequence; choose another"
runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<SQL ||
SET password_encryption = 'scram-sha-256';
ALTER ROLE "$DB_OWNER" WITH LOGIN PASSWORD \$$tag\$$DB_PASSWORD\$$tag\$;
SQL
  die 3 "could not set the password of role $DB_OWNER"

progress 80 "Creating database $DB_NAME"
if [ "$(as_postgres "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
  as_postgres "CREATE DATABASE \"$DB_NAME\" OWNER \"$DB_OWNER\" ENCODING 'UTF8' TEMPLATE template0" >/dev/null
else
  as_postgres "ALTER DATABASE \"$DB_NAME\" OWNER TO \"$DB_OWNER\"" >/dev/null
fi
as_postgres "REVOKE ALL ON DATABASE \"$DB_NAME\" FROM PUBLIC" >/dev/null

progress 100 "Database $DB_NAME is ready for $DB_OWNER"
