#!/usr/bin/env bash
# Puts the site's state back from BACKUP_DIR: the shared directory (swapped in by rename,
# the replaced one kept as shared.pre-restore) and the database dump when there is one, then
# reloads PHP-FPM so that no worker keeps the old state.
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

readonly name_re='^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
[[ ${DOMAIN:-} =~ $name_re ]] || die 1 "domain must be a domain name such as example.com"
site_user="lv-${DOMAIN//./-}"
[ "${#site_user}" -le 32 ] || site_user="lv-$(printf '%s' "$DOMAIN" | sha256sum | cut -c1-20)"
base="/var/www/$DOMAIN"
[ -f "${BACKUP_DIR:-}/shared.tar" ] || die 1 "no shared.tar in BACKUP_DIR"
id "$site_user" >/dev/null 2>&1 || die 3 "the site user $site_user does not exist; install the site first"
progress 20 "Restoring $base/shared"
incoming=$(mktemp -d "$base/.restore.XXXXXX")
trap 'rm -rf "$incoming"' EXIT
tar -C "$incoming" -xpf "$BACKUP_DIR/shared.tar" || die 3 "shared.tar cannot be extracted"
[ -d "$incoming/shared" ] || die 3 "shared.tar does not hold shared/"
chown -R "$site_user:$site_user" "$incoming/shared"
rm -rf "$base/shared.pre-restore"
[ -e "$base/shared" ] && mv "$base/shared" "$base/shared.pre-restore"
mv "$incoming/shared" "$base/shared"
env_get() { sed -n "s/^$1=\"\\(.*\\)\"\$/\\1/p" "$base/shared/.env" | tail -n 1; }
if [ -f "$BACKUP_DIR/database.sql" ]; then
  progress 50 "Loading the MySQL dump"
  MYSQL_PWD=$(env_get DB_PASSWORD) mariadb -h "$(env_get DB_HOST)" -u "$(env_get DB_USERNAME)" \
    "$(env_get DB_DATABASE)" <"$BACKUP_DIR/database.sql" || die 3 "loading the MySQL dump failed"
elif [ -f "$BACKUP_DIR/database.pgdump" ]; then
  progress 50 "Loading the PostgreSQL dump"
  PGPASSWORD=$(env_get DB_PASSWORD) pg_restore --clean --if-exists --single-transaction -h "$(env_get DB_HOST)" \
    -U "$(env_get DB_USERNAME)" -d "$(env_get DB_DATABASE)" <"$BACKUP_DIR/database.pgdump" || die 3 "pg_restore failed"
fi
progress 80 "Reloading PHP-FPM"
for unit in /lib/systemd/system/php*-fpm.service; do
  [ -e "$unit" ] || continue
  unit=${unit##*/}
  if systemctl is-active --quiet "$unit"; then systemctl reload "$unit" || die 3 "$unit failed to reload"; fi
done
progress 100 "Site $DOMAIN restored"
