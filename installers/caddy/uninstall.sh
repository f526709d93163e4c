#!/usr/bin/env bash
# Removes Caddy's site for DOMAIN. Its own: the site file in /etc/caddy/sites.d; and once no
# other site is left, the caddy package, the Caddyfile it replaced, the caddy user and
# /var/lib/caddy (certificates it obtained). The document root stays unless PURGE=true.
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
sites=/etc/caddy/sites.d
progress 10 "Removing the site for $DOMAIN"
rm -f "$sites/$DOMAIN.caddy"

others=()
if [ -d "$sites" ]; then
  while IFS= read -r site; do others+=("$site"); done < <(find "$sites" -mindepth 1 -maxdepth 1 -name '*.caddy' -printf '%f\n')
fi
if [ "${#others[@]}" -gt 0 ]; then
  progress 60 "Caddy still serves ${#others[@]} other sites: keeping it"
  if systemctl is-active --quiet caddy; then
    systemctl reload caddy || die 3 "Caddy failed to reload; see journalctl -u caddy"
  fi
else
  progress 40 "Removing Caddy"
  systemctl disable --now caddy >/dev/null 2>&1 || true
  rm -rf "$sites" /etc/caddy/Caddyfile.dpkg-example
  apt_purge caddy
  rm -rf /etc/caddy /var/lib/caddy
  if id caddy >/dev/null 2>&1; then userdel caddy || die 2 "userdel caddy failed"; fi
  if getent group caddy >/dev/null; then groupdel caddy || die 2 "groupdel caddy failed"; fi
  systemctl reset-failed caddy.service >/dev/null 2>&1 || true
fi
if [ "${PURGE:-false}" = true ] && [ "${MODE:-static}" = static ]; then
  docroot=${DOCUMENT_ROOT:-/var/www/$DOMAIN}
  [[ $docroot =~ ^/(var/www|srv|home)/[A-Za-z0-9._/-]+$ && /$docroot/ != */../* ]] || die 1 "document_root must be under /var/www, /srv or /home"
  progress 90 "Deleting $docroot"
  rm -rf "$docroot"
fi
progress 100 "The site for $DOMAIN is removed"
