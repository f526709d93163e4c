#!/usr/bin/env bash
# Removes the reverse-proxy site of DOMAIN. nginx stays (it belongs to the nginx app); a
# certificate from certbot-cert keeps a site that answers its renewal challenges.
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
readonly state=/var/lib/outfitter/reverse-proxy
domain=${DOMAIN:-}
[[ $domain =~ $name_re ]] || die 1 "domain must be a domain name such as app.example.com"
vhost="/etc/nginx/sites-available/$domain.conf"

progress 10 "Removing the site for $domain"
if [ -f "$vhost" ] && [[ $(head -n 1 "$vhost") == "# Managed by Outfitter (reverse-proxy)"* ]]; then
  rm -f "$vhost" "/etc/nginx/sites-enabled/$domain.conf"
  if [ -f "/etc/letsencrypt/renewal/$domain.conf" ] && [ -f /etc/nginx/snippets/outfitter-acme.conf ]; then
    progress 30 "Keeping a site that answers the certificate's renewal challenges"
    write_file "$vhost" 0644 "# Managed by Outfitter (certbot-cert): answers ACME challenges for $domain.
server {
    listen 80;
    listen [::]:80;
    server_name $domain;
    include snippets/outfitter-acme.conf;
    location / {
        return 404;
    }
}" || true
    ln -sfn "$vhost" "/etc/nginx/sites-enabled/$domain.conf"
  fi
fi
rm -rf "$state"
rmdir /var/lib/outfitter 2>/dev/null || true
# The websocket map is shared by every reverse-proxy site; it goes with the last one.
if ! grep -qsl '^# Managed by Outfitter (reverse-proxy)' /etc/nginx/sites-available/*.conf; then
  rm -f /etc/nginx/conf.d/outfitter-websocket.conf
fi

progress 60 "Reloading nginx"
if systemctl is-active --quiet nginx; then
  nginx -t 2>&1 || die 3 "nginx -t rejects the remaining configuration"
  systemctl reload nginx || die 3 "nginx failed to reload"
fi
progress 100 "The site for $domain is removed"
