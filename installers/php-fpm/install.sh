#!/usr/bin/env bash
# Installs PHP-FPM PHP_VERSION ("default" = the OS's own) plus EXTENSIONS, and enables it.
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
extensions=${EXTENSIONS:-}
[[ -z $extensions || $extensions =~ ^[a-z0-9]+(,[a-z0-9]+)*$ ]] ||
  die 1 "extensions must be a comma-separated list such as gd,intl"

# has_candidate PKG: true when apt knows an installable version of PKG.
has_candidate() { [[ $(apt-cache policy "$1" 2>/dev/null) =~ Candidate:\ [^\(] ]]; }

progress 10 "Finding PHP $version for this system"
if [ "$version" == default ]; then
  apt_install php-fpm
  version=$(find /etc/php -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
  [ -n "$version" ] || die 2 "php-fpm installed but no /etc/php/<version> appeared"
elif ! is_installed "php$version-fpm"; then
  apt_quiet update || die 2 "apt-get update failed"
  if ! has_candidate "php$version-fpm"; then
    die 1 "PHP $version is not packaged for this OS; choose \"default\""
  fi
fi

progress 30 "Installing PHP $version with FPM"
packages=("php$version-fpm" "php$version-cli")
rest=$extensions
while [ -n "$rest" ]; do
  ext=${rest%%,*}
  if [[ $rest == *,* ]]; then rest=${rest#*,}; else rest=""; fi
  # Several extensions are built into the php-common/cli package and have no package.
  case "$ext" in
  json | ctype | fileinfo | tokenizer | pdo | opcache | sockets | iconv | exif | ftp | gettext | calendar | phar | posix) ;;
  *) packages+=("php$version-$ext") ;;
  esac
done
for pkg in "${packages[@]}"; do
  if ! is_installed "$pkg" && ! has_candidate "$pkg"; then
    apt_quiet update || die 2 "apt-get update failed"
    has_candidate "$pkg" || die 1 "no package $pkg for this OS; remove it from extensions"
  fi
done
apt_install "${packages[@]}"

progress 80 "Checking the PHP-FPM configuration"
"php-fpm$version" -t 2>&1 || die 3 "php-fpm$version -t rejected the configuration"

progress 90 "Starting PHP-FPM $version"
systemctl enable --now "php$version-fpm" >/dev/null 2>&1 || die 3 "php$version-fpm failed to start"
systemctl reload "php$version-fpm" || die 3 "php$version-fpm failed to reload"

progress 100 "PHP-FPM $version is running on /run/php/php$version-fpm.sock"
