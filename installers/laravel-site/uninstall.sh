#!/usr/bin/env bash
# Removes the site DOMAIN. Its own: its nginx vhost, its PHP-FPM pool and its system user;
# PHP (the php<version>-* packages, composer, unzip) once no other pool than the default
# one is left, and nginx once no other site is enabled. git, curl and ca-certificates, which
# it installed to fetch sources, are then marked automatically installed so that apt
# removes them when nothing else needs them. The site (releases, shared storage, .env and
# the SQLite database) in /var/www/DOMAIN stays unless PURGE=true; a MySQL or PostgreSQL
# database belongs to its own bundle.
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
progress 10 "Removing the site $DOMAIN"
rm -f "/etc/nginx/sites-available/$DOMAIN.conf" "/etc/nginx/sites-enabled/$DOMAIN.conf"
rm -f /etc/php/*/fpm/pool.d/"$site_user.conf"
progress 20 "Removing the user $site_user"
# A reload stops the workers of the removed pool, which run as the site user.
for unit in /lib/systemd/system/php*-fpm.service; do
  [ -e "$unit" ] || continue
  unit=${unit##*/}
  if systemctl is-active --quiet "$unit"; then systemctl reload "$unit" || die 3 "$unit failed to reload"; fi
done
for _ in $(seq 1 10); do
  [ -z "$(find /proc -maxdepth 1 -user "$site_user" -print -quit 2>/dev/null)" ] && break
  sleep 1
done
if id "$site_user" >/dev/null 2>&1; then userdel "$site_user" || die 2 "userdel $site_user failed (is a process of it still running?)"; fi
if getent group "$site_user" >/dev/null; then groupdel "$site_user" || die 2 "groupdel $site_user failed"; fi

for dir in /etc/php/*/; do
  [ -d "${dir}fpm/pool.d" ] || continue
  v=${dir#/etc/php/}
  v=${v%/}
  if [ -n "$(find "${dir}fpm/pool.d" -mindepth 1 -maxdepth 1 -name '*.conf' ! -name www.conf -print -quit)" ]; then
    progress 40 "PHP-FPM $v still runs other pools: keeping it"
    continue
  fi
  progress 40 "Removing PHP $v: no other pool is left"
  systemctl disable --now "php$v-fpm" >/dev/null 2>&1 || true
  for pkg in git curl ca-certificates; do
    if is_installed "$pkg"; then apt-mark auto "$pkg" >/dev/null || die 2 "apt-mark auto $pkg failed"; fi
  done
  packages=(php-fpm composer unzip)
  while IFS= read -r pkg; do packages+=("$pkg"); done < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "php$v-*" 2>/dev/null | awk '$1 == "ii" {print $2}')
  apt_purge "${packages[@]}"
  rc=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'php*' 2>/dev/null || true)
  while read -r state pkg; do
    [ "$state" = rc ] && { dpkg --purge "$pkg" >/dev/null || die 2 "dpkg --purge $pkg failed"; }
  done <<<"$rc"
  systemctl reset-failed "php$v-fpm.service" >/dev/null 2>&1 || true
done
if [ -d /etc/php ] && [ -z "$(find /etc/php -mindepth 1 -maxdepth 1 -type d)" ]; then rm -rf /etc/php; fi
# Alternatives whose every choice went with the packages (php-fpm.sock) stay as dangling
# links in /etc/alternatives.
while read -r name _; do
  [[ $name == php* ]] || continue
  if [ ! -e "/etc/alternatives/$name" ]; then update-alternatives --remove-all "$name" >/dev/null 2>&1 || true; fi
done < <(update-alternatives --get-selections 2>/dev/null || true)

others=()
if [ -d /etc/nginx/sites-enabled ]; then
  while IFS= read -r site; do others+=("$site"); done < <(find /etc/nginx/sites-enabled -mindepth 1 -maxdepth 1 ! -name default -printf '%f\n')
fi
if [ "${#others[@]}" -gt 0 ]; then
  progress 70 "nginx still serves ${#others[@]} other sites: keeping it"
  if systemctl is-active --quiet nginx; then
    nginx -t 2>&1 || die 3 "nginx -t rejects the remaining configuration"
    systemctl reload nginx || die 3 "nginx failed to reload; see journalctl -u nginx"
  fi
else
  progress 70 "Removing nginx: no other site is left"
  systemctl disable --now nginx >/dev/null 2>&1 || true
  rm -f /etc/nginx/snippets/outfitter-acme.conf
  apt_purge nginx nginx-common
  systemctl reset-failed nginx.service >/dev/null 2>&1 || true
fi
if [ "${PURGE:-false}" = true ]; then
  progress 90 "Deleting $base"
  rm -rf "$base"
fi
progress 100 "The site $DOMAIN is removed"
