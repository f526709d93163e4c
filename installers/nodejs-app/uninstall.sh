#!/usr/bin/env bash
# Removes the app APP_NAME. Its own: its systemd service, its system user and group, and the
# Node.js packages (nodejs, npm) once no other app of this bundle is left; git, curl and
# ca-certificates, which it installed to fetch sources, are then marked automatically
# installed so that apt removes them when nothing else needs them. The deployed app in
# /srv/APP_NAME stays unless PURGE=true. It has no backup script: the app is deployed from
# its source, and state it keeps elsewhere is the app's to back up.
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

app=${APP_NAME:-}
[[ $app =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die 1 "app_name must be lower-case letters, digits and dashes"
user="node-$app"
service="nodeapp-$app"
progress 10 "Stopping $service"
systemctl disable --now "$service" >/dev/null 2>&1 || true
rm -f "/etc/systemd/system/$service.service"
systemctl daemon-reload
systemctl reset-failed "$service.service" >/dev/null 2>&1 || true
progress 40 "Removing the user $user"
if id "$user" >/dev/null 2>&1; then userdel "$user" || die 2 "userdel $user failed"; fi
if getent group "$user" >/dev/null; then groupdel "$user" || die 2 "groupdel $user failed"; fi
if [ -z "$(find /etc/systemd/system -maxdepth 1 -name 'nodeapp-*.service' -print -quit)" ]; then
  progress 60 "Removing Node.js: no other app is left"
  for pkg in git curl ca-certificates; do
    if is_installed "$pkg"; then apt-mark auto "$pkg" >/dev/null || die 2 "apt-mark auto $pkg failed"; fi
  done
  apt_purge nodejs npm
fi
if [ "${PURGE:-false}" = true ]; then
  progress 80 "Deleting /srv/$app"
  rm -rf "/srv/$app"
fi
progress 100 "The app $app is removed"
