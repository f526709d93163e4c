#!/usr/bin/env bash
# Removes Docker Engine. Its own: the docker.io and compose packages (with containerd, runc
# and what else only they needed), /etc/docker and the docker group (its members lose
# docker access). ca-certificates, which it installed for pulls, is marked automatically
# installed so that apt removes it only when nothing else needs it. Images, containers and
# volumes in /var/lib/docker and /var/lib/containerd stay unless PURGE=true. It has no backup
# script: what matters inside containers is the data of the apps deployed there.
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

progress 10 "Stopping Docker"
systemctl disable --now docker.socket docker.service containerd.service >/dev/null 2>&1 || true
progress 30 "Removing the Docker packages"
if is_installed ca-certificates; then apt-mark auto ca-certificates >/dev/null || die 2 "apt-mark auto ca-certificates failed"; fi
# docker.io's purge nukes /var/lib/docker: without PURGE, park the engine's data meanwhile.
kept=/var/lib/outfitter-docker-kept
if [ "${PURGE:-false}" != true ]; then
  mkdir -p "$kept"
  for dir in /var/lib/docker /var/lib/containerd; do
    if [ -d "$dir" ] && [ ! -e "$kept/${dir##*/}" ]; then mv "$dir" "$kept/"; fi
  done
fi
apt_purge docker.io docker-compose docker-compose-v2 containerd runc
rm -rf /etc/docker
if [ -d "$kept" ]; then
  for dir in "$kept"/*; do
    [ -e "$dir" ] || continue
    rm -rf "/var/lib/${dir##*/}"
    mv "$dir" /var/lib/
  done
  rmdir "$kept"
fi
if getent group docker >/dev/null; then groupdel docker || die 2 "groupdel docker failed"; fi
systemctl reset-failed docker.service docker.socket containerd.service >/dev/null 2>&1 || true
if [ "${PURGE:-false}" = true ]; then
  progress 80 "Deleting images, containers and volumes"
  rm -rf /var/lib/docker /var/lib/containerd
fi
progress 100 "Docker Engine is removed"
