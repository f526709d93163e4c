#!/usr/bin/env bash
# Removes the app APP_NAME. Its own: its systemd service pyapp-APP_NAME and its system user
# and group py-APP_NAME; once no other app of this bundle is left, the packages this bundle
# installed (python3-venv, python3-gunicorn or python3-uvicorn, git, curl, ca-certificates:
# those listed in /var/lib/outfitter/python-app/packages, never one that was there before),
# purged when nothing else needs them and marked automatically installed otherwise. The
# deployed app and its virtualenv in /srv/APP_NAME stay unless PURGE=true. It has no backup
# script: the app is deployed from its source, and state it keeps elsewhere is the app's to
# back up.
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

readonly state_root=/var/lib/outfitter/python-app
app=${APP_NAME:-}
[[ $app =~ ^[a-z][a-z0-9-]{0,28}$ ]] || die 1 "app_name must be a lower-case letter, then up to 28 lower-case letters, digits or dashes"
user="py-$app"
home="/srv/$app"
service="pyapp-$app"

progress 10 "Stopping $service"
systemctl disable --now "$service" >/dev/null 2>&1 || true
rm -f "/etc/systemd/system/$service.service"
systemctl daemon-reload
systemctl reset-failed "$service.service" >/dev/null 2>&1 || true

progress 30 "Removing the user $user"
if id "$user" >/dev/null 2>&1; then userdel "$user" || die 2 "userdel $user failed"; fi
if getent group "$user" >/dev/null; then groupdel "$user" || die 2 "groupdel $user failed"; fi

if [ -z "$(find /etc/systemd/system -maxdepth 1 -name 'pyapp-*.service' -print -quit)" ]; then
  marked=()
  for mark in "$state_root"/packages/*; do [ -e "$mark" ] && marked+=("${mark##*/}"); done
  purge=()
  for pkg in "${marked[@]}"; do
    is_installed "$pkg" || continue
    # A package that something installed since depends on stays, left to apt as automatic.
    sim=$(apt-get -s purge "$pkg" 2>/dev/null) || sim=""
    others=$(awk -v p="$pkg" '$1 == "Purg" && $2 != p' <<<"$sim")
    if [ -z "$sim" ] || [ -n "$others" ]; then
      progress 50 "Keeping $pkg, which other packages need (marked automatically installed)"
      apt-mark auto "$pkg" >/dev/null || die 2 "apt-mark auto $pkg failed"
    else
      purge+=("$pkg")
    fi
  done
  if [ "${#purge[@]}" -gt 0 ]; then
    progress 60 "Removing ${purge[*]}: installed by this bundle, and no other app of it is left"
    apt_purge "${purge[@]}"
  fi
  rm -rf "$state_root"
  rmdir /var/lib/outfitter 2>/dev/null || true
else
  progress 60 "Other apps of this bundle are left: keeping Python and the servers"
fi

if [ "${PURGE:-false}" = true ]; then
  progress 80 "Deleting $home"
  rm -rf "$home"
elif [ -d "$home" ]; then
  find "$home" -mindepth 1 -maxdepth 1 -name '.incoming.*' -exec rm -rf {} +
  progress 80 "Keeping $home (the app and its virtualenv; PURGE deletes them)"
fi
progress 100 "The app $app is removed"
