#!/usr/bin/env bash
# Removes the backup set BACKUP_NAME. Its own: its settings and timer; once no other set is
# left, the outfitter-backup tool and its systemd units; and the database client it
# installed, which is marked automatically installed so that apt removes it when nothing
# else needs it (a database server on this machine still does). The archives in
# /var/backups/outfitter/BACKUP_NAME are the data: they stay unless PURGE=true.
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
[[ $name =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die 1 "backup_name must be lower-case letters, digits and dashes"
progress 10 "Stopping the timer of $name"
systemctl disable --now "outfitter-backup@$name.timer" >/dev/null 2>&1 || true
systemctl reset-failed "outfitter-backup@$name.service" "outfitter-backup@$name.timer" >/dev/null 2>&1 || true
rm -f "/etc/outfitter/backups/$name.conf"
if [ -z "$(find /etc/outfitter/backups -name '*.conf' -print -quit 2>/dev/null)" ]; then
  progress 40 "Removing the backup tool: no other set is left"
  rm -f /usr/local/sbin/outfitter-backup /etc/systemd/system/outfitter-backup@.service /etc/systemd/system/outfitter-backup@.timer
  systemctl daemon-reload
  rmdir /etc/outfitter/backups /etc/outfitter 2>/dev/null || true
  clients=()
  for pkg in postgresql-client mariadb-client; do
    if is_installed "$pkg"; then
      apt-mark auto "$pkg" >/dev/null || die 2 "apt-mark auto $pkg failed"
      clients+=("$pkg")
    fi
  done
  if [ "${#clients[@]}" -gt 0 ]; then
    apt_quiet -y -o APT::AutoRemove::RecommendsImportant=false -o APT::AutoRemove::SuggestsImportant=false autoremove --purge ||
      die 2 "apt-get autoremove failed"
  fi
fi
if [ "${PURGE:-false}" = true ]; then
  progress 80 "Deleting the archives of $name"
  rm -rf "/var/backups/outfitter/$name"
  rmdir /var/backups/outfitter 2>/dev/null || true
fi
progress 100 "The backup set $name is removed"
