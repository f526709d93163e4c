#!/usr/bin/env bash
# Sets up backup set BACKUP_NAME: SITE_PATH plus database DB_NAME (DB_ENGINE postgresql or
# mariadb) into /var/backups/outfitter/$BACKUP_NAME, newest RETENTION kept, SCHEDULE daily
# through a systemd timer; then takes one backup at once.
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
site=${SITE_PATH:-}
engine=${DB_ENGINE:-none}
db_name=${DB_NAME:-}
retention=${RETENTION:-7}
schedule=${SCHEDULE:-daily}
[[ $name =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die 1 "backup_name must be lower-case letters, digits and dashes"
[[ $site =~ ^/(var/www|srv|home)/[A-Za-z0-9._/-]+$ && /$site/ != */../* ]] ||
  die 1 "site_path must be an absolute path under /var/www, /srv or /home"
site=${site%/}
[ -d "$site" ] || die 1 "site_path: there is no directory $site"
[[ $engine == none || $engine == postgresql || $engine == mariadb ]] || die 1 "db_engine must be none, postgresql or mariadb"
if [ "$engine" != none ]; then [[ $db_name =~ ^[A-Za-z][A-Za-z0-9_]*$ ]] || die 1 "db_name is required for $engine"; fi
if ! [[ $retention =~ ^[0-9]{1,3}$ ]] || [ "$retention" -lt 1 ] || [ "$retention" -gt 365 ]; then die 1 "retention must be 1-365"; fi
[[ $schedule == none || $schedule == daily ]] || die 1 "schedule must be none or daily"

progress 10 "Installing the backup tools"
case "$engine" in
postgresql) command -v pg_dump >/dev/null || apt_install postgresql-client ;;
mariadb) command -v mariadb-dump >/dev/null || apt_install mariadb-client ;;
esac

progress 30 "Writing the backup set $name"
mkdir -p /etc/outfitter/backups
write_file "/etc/outfitter/backups/$name.conf" 0600 "# Managed by Outfitter (backup-site); the settings of /usr/local/sbin/outfitter-backup.
site_path=$site
db_engine=$engine
db_name=$db_name
retention=$retention" || true

# The tool is literal text: nothing in it expands now.
# shellcheck disable=SC2016
write_file /usr/local/sbin/outfitter-backup 0755 '#!/usr/bin/env bash
# outfitter-backup NAME: archives a site and its database into /var/backups/outfitter/NAME
# and keeps the newest archives. Installed by the Outfitter backup-site app.
set -euo pipefail
name=${1:?usage: outfitter-backup NAME}
conf="/etc/outfitter/backups/$name.conf"
[ -f "$conf" ] || { echo "outfitter-backup: no backup set $name ($conf)" >&2; exit 1; }
setting() { sed -n "s/^$1=//p" "$conf" | tail -n 1; }
site_path=$(setting site_path)
db_engine=$(setting db_engine)
db_name=$(setting db_name)
retention=$(setting retention)
dest="/var/backups/outfitter/$name"
umask 077
mkdir -p "$dest"
chmod 0700 /var/backups/outfitter "$dest"
work=$(mktemp -d "$dest/.work.XXXXXX")
trap '\''rm -rf "$work"'\'' EXIT
cd /
tar -C "$(dirname "$site_path")" -cf "$work/site.tar" "$(basename "$site_path")"
files=(site.tar backup-info)
case "$db_engine" in
postgresql)
  runuser -u postgres -- pg_dump -Fc "$db_name" >"$work/database.pgdump"
  files+=(database.pgdump)
  ;;
mariadb)
  mariadb-dump --single-transaction --routines --triggers --databases "$db_name" >"$work/database.sql"
  files+=(database.sql)
  ;;
esac
stamp=$(date -u +%Y%m%dT%H%M%SZ)
printf "name=%s\nsite_path=%s\ndb_engine=%s\ndb_name=%s\ncreated=%s\n" \
  "$name" "$site_path" "$db_engine" "$db_name" "$stamp" >"$work/backup-info"
archive="$dest/$name-$stamp.tar.gz"
n=1
while [ -e "$archive" ]; do archive="$dest/$name-$stamp-$n.tar.gz"; n=$((n + 1)); done
tar -C "$work" -czf "$archive.part" "${files[@]}"
mv "$archive.part" "$archive"
# Newest first; everything past the retention count goes.
find "$dest" -maxdepth 1 -name "$name-*.tar.gz" -printf "%T@ %p\n" | sort -rn |
  tail -n +"$((retention + 1))" | cut -d" " -f2- | xargs -r rm -f --
echo "$archive"' || true

write_file /etc/systemd/system/outfitter-backup@.service 0644 "# Managed by Outfitter (backup-site).
[Unit]
Description=Outfitter backup of %i
After=postgresql.service mariadb.service

[Service]
Type=oneshot
Nice=10
IOSchedulingClass=idle
ExecStart=/usr/local/sbin/outfitter-backup %i" || true
write_file /etc/systemd/system/outfitter-backup@.timer 0644 "# Managed by Outfitter (backup-site).
[Unit]
Description=Daily Outfitter backup of %i

[Timer]
OnCalendar=daily
RandomizedDelaySec=1h
Persistent=true

[Install]
WantedBy=timers.target" || true
systemctl daemon-reload

progress 50 "Taking a backup now"
archive=$(/usr/local/sbin/outfitter-backup "$name") ||
  die 3 "the backup failed (does the database $db_name exist?); see the output above"

progress 90 "Scheduling"
if [ "$schedule" == daily ]; then
  systemctl enable --now "outfitter-backup@$name.timer" >/dev/null 2>&1 || die 3 "could not enable the daily timer"
else
  systemctl disable --now "outfitter-backup@$name.timer" >/dev/null 2>&1 || true
fi

progress 100 "Backup written to $archive ($(du -h "$archive" | cut -f1)); keeping $retention"
