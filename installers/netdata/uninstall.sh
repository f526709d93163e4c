#!/usr/bin/env bash
# Removes Netdata. Its own: the netdata packages (netdata, netdata-core,
# netdata-plugins-bash, netdata-web, with the dependencies nothing else needs), /etc/netdata
# and the netdata system user and group. The metrics database (/var/cache/netdata) and the
# agent's state (/var/lib/netdata: its unique id, registry) are data: the package's purge
# deletes them, so they are parked and put back unless PURGE=true.
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

purge=${PURGE:-false}
dirs=(/var/lib/netdata /var/cache/netdata)

progress 10 "Stopping Netdata"
systemctl disable --now netdata >/dev/null 2>&1 || true
if [ "$purge" != true ]; then
  for dir in "${dirs[@]}"; do
    if [ -d "$dir" ]; then
      rm -rf "$dir.outfitter-kept"
      mv "$dir" "$dir.outfitter-kept"
    fi
  done
fi

progress 40 "Purging the netdata packages"
apt_purge netdata netdata-core netdata-plugins-bash netdata-web netdata-plugins-python
rm -rf /etc/netdata /var/log/netdata
systemctl reset-failed netdata.service >/dev/null 2>&1 || true
systemctl daemon-reload >/dev/null 2>&1 || true

if [ "$purge" = true ]; then
  progress 70 "Deleting the metrics"
  for dir in "${dirs[@]}"; do rm -rf "$dir" "$dir.outfitter-kept"; done
else
  for dir in "${dirs[@]}"; do
    if [ -d "$dir.outfitter-kept" ]; then
      rm -rf "$dir"
      mv "$dir.outfitter-kept" "$dir"
    fi
  done
fi

progress 80 "Removing the netdata user"
if id netdata >/dev/null 2>&1; then userdel netdata || die 2 "userdel netdata failed"; fi
if getent group netdata >/dev/null; then groupdel netdata || die 2 "groupdel netdata failed"; fi
if [ "$purge" = true ]; then
  progress 100 "Netdata and its metrics are removed"
else
  progress 100 "Netdata is removed; its metrics stay in /var/cache/netdata"
fi
