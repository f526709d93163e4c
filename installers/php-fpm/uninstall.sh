#!/usr/bin/env bash
# Removes PHP-FPM. Its own: the php<version>-* packages it installed (FPM, CLI, the listed
# extensions) and the php-fpm metapackage; they stay while another pool than the default
# "www" is configured (a site of laravel-site runs in it), and the default pool is then left
# running. It holds no data.
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

version=${PHP_VERSION:-default}
[[ $version == default || $version =~ ^8\.[1-4]$ ]] || die 1 "php_version must be default, 8.1, 8.2, 8.3 or 8.4"
if [ "$version" == default ]; then
  version=$(find /etc/php -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
fi
if [ -z "$version" ] || [ ! -d "/etc/php/$version" ]; then
  progress 100 "PHP-FPM is not installed"
  exit 0
fi
pools=()
if [ -d "/etc/php/$version/fpm/pool.d" ]; then
  while IFS= read -r pool; do pools+=("$pool"); done < <(find "/etc/php/$version/fpm/pool.d" -mindepth 1 -maxdepth 1 -name '*.conf' ! -name www.conf -printf '%f\n')
fi
if [ "${#pools[@]}" -gt 0 ]; then
  progress 100 "PHP-FPM $version still runs ${#pools[@]} other pools: keeping it"
  exit 0
fi
progress 20 "Stopping PHP-FPM $version"
systemctl disable --now "php$version-fpm" >/dev/null 2>&1 || true
progress 40 "Removing PHP $version"
packages=(php-fpm)
while IFS= read -r pkg; do packages+=("$pkg"); done < <(dpkg-query -W -f='${Package}\n' "php$version-*" 2>/dev/null)
apt_purge "${packages[@]}"
rc=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'php*' 2>/dev/null || true)
while read -r state pkg; do
  [ "$state" = rc ] && { dpkg --purge "$pkg" >/dev/null || die 2 "dpkg --purge $pkg failed"; }
done <<<"$rc"
if [ -z "$(find /etc/php -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ]; then rm -rf /etc/php; fi
# Alternatives whose every choice went with the packages (php-fpm.sock) stay as dangling
# links in /etc/alternatives.
while read -r name _; do
  [[ $name == php* ]] || continue
  if [ ! -e "/etc/alternatives/$name" ]; then update-alternatives --remove-all "$name" >/dev/null 2>&1 || true; fi
done < <(update-alternatives --get-selections 2>/dev/null || true)
systemctl reset-failed "php$version-fpm.service" >/dev/null 2>&1 || true
progress 100 "PHP-FPM $version is removed"
