#!/usr/bin/env bash
# Obtains a Let's Encrypt certificate for DOMAIN (account EMAIL; STAGING=true for the test
# CA) through nginx and certbot's webroot challenge. Exit 3 when DOMAIN does not point here.
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
readonly acme_root=/var/lib/outfitter/acme
[[ ${DOMAIN:-} =~ $name_re ]] || die 1 "domain must be a domain name such as example.com"
[[ ${EMAIL:-} =~ ^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$ ]] || die 1 "email must be an email address"
staging=${STAGING:-false}
[[ $staging == true || $staging == false ]] || die 1 "staging must be true or false"

progress 10 "Installing certbot and nginx"
apt_install nginx certbot curl ca-certificates

progress 30 "Routing the ACME challenge for $DOMAIN"
mkdir -p "$acme_root/.well-known/acme-challenge"
changed=0
if write_file /etc/nginx/snippets/outfitter-acme.conf 0644 "# Managed by Outfitter: answers ACME http-01 challenges (certbot webroot mode).
location ^~ /.well-known/acme-challenge/ {
    root $acme_root;
    default_type text/plain;
}"; then changed=1; fi
vhost="/etc/nginx/sites-available/$DOMAIN.conf"
if [ ! -f "$vhost" ]; then
  # No site for this domain yet: a minimal one that only answers challenges.
  write_file "$vhost" 0644 "# Managed by Outfitter (certbot-cert): answers ACME challenges for $DOMAIN.
server {
    listen 80;
    listen [::]:80;
    server_name $DOMAIN;
    include snippets/outfitter-acme.conf;
    location / {
        return 404;
    }
}" || true
  ln -sfn "$vhost" "/etc/nginx/sites-enabled/$DOMAIN.conf"
  changed=1
elif ! grep -q 'outfitter-acme.conf' "$vhost"; then
  die 3 "$vhost exists but does not include snippets/outfitter-acme.conf; add that line to its port 80 server block"
fi
if ! nginx -t 2>&1; then
  die 3 "nginx -t rejected the configuration; fix it before requesting a certificate"
fi
systemctl enable --now nginx >/dev/null 2>&1 || die 3 "nginx failed to start; see journalctl -u nginx"
[ "$changed" -eq 1 ] && { systemctl reload nginx || die 3 "nginx failed to reload"; }

if [ -f "/etc/letsencrypt/live/$DOMAIN/fullchain.pem" ] &&
  openssl x509 -checkend 2592000 -noout -in "/etc/letsencrypt/live/$DOMAIN/fullchain.pem" >/dev/null 2>&1; then
  progress 100 "The certificate for $DOMAIN is valid for more than 30 days; nothing to do"
  exit 0
fi

progress 50 "Checking that $DOMAIN points at this server"
getent ahosts "$DOMAIN" >/dev/null || die 3 "$DOMAIN does not resolve; point its DNS (A/AAAA record) at this server first"
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s' "$token" >"$acme_root/.well-known/acme-challenge/outfitter-$token"
seen=$(curl -fsS --max-time 10 "http://$DOMAIN/.well-known/acme-challenge/outfitter-$token" 2>/dev/null || true)
rm -f "$acme_root/.well-known/acme-challenge/outfitter-$token"
[ "$seen" == "$token" ] || die 3 "$DOMAIN resolves, but not to this server (the HTTP self-check failed); fix its DNS first"

progress 70 "Requesting the certificate from Let's Encrypt"
extra=()
[ "$staging" == true ] && extra+=(--staging)
certbot certonly --webroot -w "$acme_root" -d "$DOMAIN" --email "$EMAIL" --agree-tos \
  --non-interactive --keep-until-expiring --deploy-hook "systemctl reload nginx" "${extra[@]}" ||
  die 3 "Let's Encrypt refused the certificate for $DOMAIN; see /var/log/letsencrypt/letsencrypt.log"

progress 90 "Enabling automatic renewal"
systemctl enable --now certbot.timer >/dev/null 2>&1 || true

progress 100 "Certificate for $DOMAIN is in /etc/letsencrypt/live/$DOMAIN/"
