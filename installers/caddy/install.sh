#!/usr/bin/env bash
# Installs Caddy and serves DOMAIN: static files from DOCUMENT_ROOT (MODE=static) or a
# reverse proxy to UPSTREAM (MODE=reverse_proxy); AUTOMATIC_HTTPS=false serves plain HTTP.
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
mode=${MODE:-static}
https=${AUTOMATIC_HTTPS:-true}
[[ $https == true || $https == false ]] || die 1 "automatic_https must be true or false"
case "$mode" in
static)
  docroot=${DOCUMENT_ROOT:-/var/www/$DOMAIN}
  [[ $docroot =~ ^/(var/www|srv|home)/[A-Za-z0-9._/-]+$ && /$docroot/ != */../* ]] ||
    die 1 "document_root must be an absolute path under /var/www, /srv or /home"
  ;;
reverse_proxy)
  upstream=${UPSTREAM:-}
  [[ $upstream =~ ^[A-Za-z0-9.-]+:[0-9]{1,5}$ ]] || die 1 "upstream must be host:port, for example 127.0.0.1:3000"
  ;;
*) die 1 "mode must be static or reverse_proxy" ;;
esac

progress 10 "Installing Caddy"
apt_install caddy

progress 40 "Writing the site for $DOMAIN"
caddyfile=/etc/caddy/Caddyfile
sites=/etc/caddy/sites.d
mkdir -p "$sites"
import_line="import $sites/*.caddy"
changed=0
if grep -q 'The Caddyfile is an easy way to configure' "$caddyfile" 2>/dev/null; then
  # The package's example site would claim port 80 for every name: replace it.
  cp -n "$caddyfile" "$caddyfile.dpkg-example"
  if write_file "$caddyfile" 0644 "# Managed by Outfitter (caddy bundle): one file per site in $sites.
$import_line"; then changed=1; fi
elif ! grep -qxF "$import_line" "$caddyfile"; then
  printf '\n# Added by Outfitter (caddy bundle)\n%s\n' "$import_line" >>"$caddyfile"
  changed=1
fi

address=$DOMAIN
[ "$https" == false ] && address="http://$DOMAIN"
if [ "$mode" == static ]; then
  mkdir -p "$docroot"
  if [ -z "$(ls -A "$docroot")" ]; then
    write_file "$docroot/index.html" 0644 "<!doctype html><title>$DOMAIN</title><h1>$DOMAIN is served by Caddy</h1>" || true
  fi
  body="	root * $docroot
	file_server"
else
  body="	reverse_proxy $upstream"
fi
site="$sites/$DOMAIN.caddy"
previous=""
[ -f "$site" ] && previous=$(cat "$site")
if write_file "$site" 0644 "# Managed by Outfitter (caddy bundle); changes are overwritten on reinstall.
$address {
	encode gzip
$body
}"; then changed=1; fi

progress 70 "Checking the Caddy configuration"
if ! caddy validate --config "$caddyfile" --adapter caddyfile 2>&1; then
  if [ -n "$previous" ]; then printf '%s\n' "$previous" >"$site"; else rm -f "$site"; fi
  die 3 "caddy validate rejected the configuration; the previous site was restored"
fi

progress 85 "Starting Caddy"
systemctl enable --now caddy >/dev/null 2>&1 || die 3 "Caddy failed to start; see journalctl -u caddy"
if [ "$changed" -eq 1 ]; then
  systemctl reload caddy || die 3 "Caddy failed to reload; see journalctl -u caddy"
fi

progress 100 "Caddy serves $address"
