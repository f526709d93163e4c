#!/usr/bin/env bash
# Removes the site DOMAIN. Its own: its vhost, its Let's Encrypt certificate (with certbot
# once no other certificate is left), and nginx itself once no other site is enabled
# (another bundle's or the administrator's site keeps nginx). The document root stays
# unless PURGE=true.
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
docroot=${DOCUMENT_ROOT:-/var/www/$DOMAIN}
[[ $docroot =~ ^/(var/www|srv|home)/[A-Za-z0-9._/-]+$ ]] ||
  die 1 "document_root must be an absolute path under /var/www, /srv or /home"
[[ /$docroot/ == */../* || /$docroot/ == */./* ]] && die 1 "document_root must not contain . or .. components"

progress 10 "Removing the site $DOMAIN"
rm -f "/etc/nginx/sites-available/$DOMAIN.conf" "/etc/nginx/sites-enabled/$DOMAIN.conf"
if command -v certbot >/dev/null && [ -e "/etc/letsencrypt/renewal/$DOMAIN.conf" ]; then
  progress 20 "Deleting the certificate of $DOMAIN"
  certbot delete --non-interactive --cert-name "$DOMAIN" >/dev/null 2>&1 || die 3 "certbot could not delete the certificate of $DOMAIN"
fi
if is_installed certbot && [ -z "$(find /etc/letsencrypt/renewal -name '*.conf' 2>/dev/null)" ]; then
  progress 30 "Removing certbot: no certificate is left"
  systemctl disable --now certbot.timer >/dev/null 2>&1 || true
  apt_purge certbot
  rm -rf /etc/letsencrypt
fi

others=()
if [ -d /etc/nginx/sites-enabled ]; then
  while IFS= read -r site; do others+=("$site"); done < <(find /etc/nginx/sites-enabled -mindepth 1 -maxdepth 1 ! -name default -printf '%f\n')
fi
if [ "${#others[@]}" -gt 0 ]; then
  progress 60 "nginx still serves ${#others[@]} other sites: keeping it"
  if systemctl is-active --quiet nginx; then
    nginx -t 2>&1 || die 3 "nginx -t rejects the remaining configuration"
    systemctl reload nginx || die 3 "nginx failed to reload; see journalctl -u nginx"
  fi
else
  progress 50 "Removing nginx: no other site is left"
  systemctl disable --now nginx >/dev/null 2>&1 || true
  rm -f /etc/nginx/snippets/outfitter-acme.conf
  apt_purge nginx nginx-common
  systemctl reset-failed nginx.service >/dev/null 2>&1 || true
fi

if [ "${PURGE:-false}" = true ]; then
  progress 80 "Deleting $docroot"
  rm -rf "$docroot"
  rmdir /var/lib/outfitter/acme/.well-known/acme-challenge /var/lib/outfitter/acme/.well-known /var/lib/outfitter/acme /var/lib/outfitter 2>/dev/null || true
fi
progress 100 "The site $DOMAIN is removed"
