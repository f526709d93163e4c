#!/usr/bin/env bash
# Serves a static site for DOMAIN from DOCUMENT_ROOT with nginx; with ENABLE_TLS=true it
# obtains a Let's Encrypt certificate (webroot challenge) and redirects HTTP to HTTPS.
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
docroot=${DOCUMENT_ROOT:-/var/www/$DOMAIN}
[[ $docroot =~ ^/(var/www|srv|home)/[A-Za-z0-9._/-]+$ ]] ||
  die 1 "document_root must be an absolute path under /var/www, /srv or /home"
[[ /$docroot/ == */../* || /$docroot/ == */./* ]] && die 1 "document_root must not contain . or .. components"
tls=${ENABLE_TLS:-false}
email=${TLS_EMAIL:-}
if [ "$tls" == true ] && [ -z "$email" ]; then die 1 "tls_email is required when enable_tls is on"; fi

vhost="/etc/nginx/sites-available/$DOMAIN.conf"
enabled="/etc/nginx/sites-enabled/$DOMAIN.conf"
cert_dir="/etc/letsencrypt/live/$DOMAIN"

# check_and_reload: nginx -t, restoring the previous vhost when it fails (exit 3).
check_and_reload() {
  local previous=$1
  if ! nginx -t 2>&1; then
    if [ -n "$previous" ]; then printf '%s\n' "$previous" >"$vhost"; else rm -f "$vhost" "$enabled"; fi
    die 3 "nginx -t rejected the configuration for $DOMAIN; the previous state was restored"
  fi
  systemctl enable --now nginx >/dev/null 2>&1 || die 3 "nginx failed to start; see journalctl -u nginx"
  systemctl reload nginx || die 3 "nginx failed to reload; see journalctl -u nginx"
}

http_site="    root $docroot;
    index index.html index.htm;
    location / {
        try_files \$uri \$uri/ =404;
    }"

progress 10 "Installing nginx"
apt_install nginx

progress 30 "Preparing $docroot"
mkdir -p "$docroot" "$acme_root"
if [ -z "$(ls -A "$docroot")" ]; then
  write_file "$docroot/index.html" 0644 "<!doctype html><title>$DOMAIN</title><h1>$DOMAIN</h1><p>Upload your site here.</p>" || true
fi
write_file /etc/nginx/snippets/outfitter-acme.conf 0644 "# Managed by Outfitter: answers ACME http-01 challenges (certbot webroot mode).
location ^~ /.well-known/acme-challenge/ {
    root $acme_root;
    default_type text/plain;
}" || true

previous=""
[ -f "$vhost" ] && previous=$(cat "$vhost")
if [ "$tls" == true ] && [ -f "$cert_dir/fullchain.pem" ]; then
  progress 50 "Certificate for $DOMAIN already present"
else
  progress 50 "Writing the HTTP site for $DOMAIN"
  if write_file "$vhost" 0644 "# Managed by Outfitter (static-site); changes are overwritten on reinstall.
server {
    listen 80;
    listen [::]:80;
    server_name $DOMAIN;
    include snippets/outfitter-acme.conf;
$http_site
}"; then
    ln -sfn "$vhost" "$enabled"
    check_and_reload "$previous"
    previous=$(cat "$vhost")
  fi
  ln -sfn "$vhost" "$enabled"
  systemctl enable --now nginx >/dev/null 2>&1 || die 3 "nginx failed to start; see journalctl -u nginx"
fi

if [ "$tls" == true ]; then
  progress 60 "Checking that $DOMAIN points at this server"
  apt_install certbot curl ca-certificates
  getent ahosts "$DOMAIN" >/dev/null || die 3 "$DOMAIN does not resolve; point its DNS at this server first"
  token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mkdir -p "$acme_root/.well-known/acme-challenge"
  printf '%s' "$token" >"$acme_root/.well-known/acme-challenge/outfitter-$token"
  seen=$(curl -fsS --max-time 10 "http://$DOMAIN/.well-known/acme-challenge/outfitter-$token" 2>/dev/null || true)
  rm -f "$acme_root/.well-known/acme-challenge/outfitter-$token"
  [ "$seen" == "$token" ] || die 3 "$DOMAIN does not point at this server (HTTP check failed); fix its DNS first"

  progress 70 "Obtaining a certificate for $DOMAIN"
  certbot certonly --webroot -w "$acme_root" -d "$DOMAIN" --email "$email" \
    --agree-tos --non-interactive --keep-until-expiring \
    --deploy-hook "systemctl reload nginx" ||
    die 3 "Let's Encrypt refused the certificate for $DOMAIN; see /var/log/letsencrypt/letsencrypt.log"

  progress 85 "Enabling HTTPS for $DOMAIN"
  if write_file "$vhost" 0644 "# Managed by Outfitter (static-site); changes are overwritten on reinstall.
server {
    listen 80;
    listen [::]:80;
    server_name $DOMAIN;
    include snippets/outfitter-acme.conf;
    location / {
        return 301 https://\$host\$request_uri;
    }
}
server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name $DOMAIN;
    ssl_certificate $cert_dir/fullchain.pem;
    ssl_certificate_key $cert_dir/privkey.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
$http_site
}"; then
    ln -sfn "$vhost" "$enabled"
    check_and_reload "$previous"
  fi
fi

progress 100 "$DOMAIN is served from $docroot"
