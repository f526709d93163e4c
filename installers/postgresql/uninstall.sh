#!/usr/bin/env bash
# Removes the PostgreSQL server. Its own: the postgresql packages (with their dependencies
# nothing else needs), /etc/postgresql-common and the postgres user. Without PURGE=true the
# clusters stay: their data (/var/lib/postgresql) and their configuration (/etc/postgresql,
# which Debian keeps beside the data) are parked in /var/lib/postgresql.outfitter-kept while
# the packages are purged (the purge drops every cluster), and an install again puts them
# back. PURGE=true deletes the clusters too.
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

kept=/var/lib/postgresql.outfitter-kept
cd / # runuser keeps the working directory, which postgres may not be allowed to read
progress 10 "Stopping PostgreSQL"
systemctl disable --now postgresql >/dev/null 2>&1 || true
if [ "${PURGE:-false}" != true ] && [ -d /var/lib/postgresql ] && [ ! -e "$kept" ]; then
  progress 20 "Parking the clusters in $kept"
  mv /var/lib/postgresql "$kept"
  if [ -d /etc/postgresql ]; then mv /etc/postgresql "$kept/.etc-postgresql"; fi
fi
installed=()
while IFS= read -r pkg; do installed+=("$pkg"); done < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'postgresql*' 2>/dev/null | awk '$1 == "ii" {print $2}')
progress 40 "Purging the PostgreSQL packages"
[ "${#installed[@]}" -eq 0 ] || apt_purge "${installed[@]}"
rm -rf /etc/postgresql /etc/postgresql-common /var/lib/postgresql /var/log/postgresql
[ "${PURGE:-false}" = true ] && rm -rf "$kept"
progress 80 "Removing the postgres user"
if id postgres >/dev/null 2>&1; then userdel postgres || die 2 "userdel postgres failed"; fi
if getent group postgres >/dev/null; then groupdel postgres || die 2 "groupdel postgres failed"; fi
# ssl-cert (the snakeoil certificate) came with postgresql; its group goes with it.
if ! is_installed ssl-cert && getent group ssl-cert >/dev/null; then groupdel ssl-cert || die 2 "groupdel ssl-cert failed"; fi
systemctl reset-failed 'postgresql*' >/dev/null 2>&1 || true
if [ "${PURGE:-false}" = true ]; then
  progress 100 "PostgreSQL and its clusters are removed"
else
  progress 100 "PostgreSQL is removed; its clusters wait in $kept for an install again"
fi
