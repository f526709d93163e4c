#!/usr/bin/env bash
# Restores backup set BACKUP_NAME from /var/backups/outfitter (ARCHIVE, or the newest):
# files (RESTORE_FILES) to their original path, database (RESTORE_DATABASE) in place.
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

name=${BACKUP_NAME:-}
archive_name=${ARCHIVE:-}
restore_files=${RESTORE_FILES:-true}
restore_db=${RESTORE_DATABASE:-true}
[[ $name =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die 1 "backup_name must be lower-case letters, digits and dashes"
[[ -z $archive_name || $archive_name =~ ^[a-z][a-z0-9-]*-[0-9]{8}T[0-9]{6}Z(-[0-9]+)?\.tar\.gz$ ]] ||
  die 1 "archive must be the file name of an archive of this backup set"
[[ $restore_files == true || $restore_files == false ]] || die 1 "restore_files must be true or false"
[[ $restore_db == true || $restore_db == false ]] || die 1 "restore_database must be true or false"
dir="/var/backups/outfitter/$name"
[ -d "$dir" ] || die 1 "there is no backup set $name in /var/backups/outfitter"

progress 10 "Finding the archive"
if [ -n "$archive_name" ]; then
  archive="$dir/$archive_name"
  [ -f "$archive" ] || die 1 "archive $archive_name is not in $dir"
else
  archive=$(find "$dir" -maxdepth 1 -name "$name-*.tar.gz" -printf '%T@ %p\n' | sort -rn | head -n 1 | cut -d' ' -f2-)
  [ -n "$archive" ] || die 1 "backup set $name has no archive yet"
fi
echo "restoring from $(basename "$archive")"

cd /
work=$(mktemp -d /var/tmp/outfitter-restore.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$archive" || die 3 "$archive is damaged or not a backup-site archive"
[ -f "$work/backup-info" ] || die 3 "$archive has no backup-info; it was not made by backup-site"
info() { sed -n "s/^$1=//p" "$work/backup-info" | tail -n 1; }
site_path=$(info site_path)
engine=$(info db_engine)
db_name=$(info db_name)
[[ $site_path =~ ^/(var/www|srv|home)/[A-Za-z0-9._/-]+$ && /$site_path/ != */../* ]] ||
  die 3 "backup-info names an unexpected site path"

if [ "$restore_files" == true ]; then
  progress 30 "Restoring the files of $site_path"
  parent=$(dirname "$site_path")
  mkdir -p "$parent"
  incoming=$(mktemp -d "$parent/.restore.XXXXXX")
  tar -C "$incoming" -xpf "$work/site.tar" || die 3 "the site files in $archive cannot be extracted"
  restored="$incoming/$(basename "$site_path")"
  [ -d "$restored" ] || die 3 "the archive does not hold $(basename "$site_path")"
  # Swap by rename so that the site is never half restored.
  rm -rf "$site_path.pre-restore"
  [ -e "$site_path" ] && mv "$site_path" "$site_path.pre-restore"
  mv "$restored" "$site_path"
  rmdir "$incoming"
fi

if [ "$restore_db" == true ] && [ "$engine" != none ]; then
  progress 60 "Restoring the $engine database $db_name"
  case "$engine" in
  postgresql)
    [ -f "$work/database.pgdump" ] || die 3 "the archive has no PostgreSQL dump"
    command -v pg_restore >/dev/null || apt_install postgresql-client
    chmod 0644 "$work/database.pgdump"
    chmod 0755 "$work"
    if [ "$(runuser -u postgres -- psql -XtAc "select 1 from pg_database where datname = '$db_name'")" != 1 ]; then
      runuser -u postgres -- createdb "$db_name" || die 3 "could not create the database $db_name"
    fi
    runuser -u postgres -- pg_restore --clean --if-exists --single-transaction -d "$db_name" "$work/database.pgdump" ||
      die 3 "pg_restore failed; the database was left as it was (single transaction)"
    ;;
  mariadb)
    [ -f "$work/database.sql" ] || die 3 "the archive has no MariaDB dump"
    mariadb <"$work/database.sql" || die 3 "restoring the MariaDB dump failed"
    ;;
  *) die 3 "backup-info names an unknown database engine $engine" ;;
  esac
fi

progress 100 "Restored $(basename "$archive")"
