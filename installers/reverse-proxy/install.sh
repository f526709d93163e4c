#!/usr/bin/env bash
# Puts an nginx site for DOMAIN in front of the upstreams of ROUTES (path=host:port, the
# longest path wins), with websockets, a body limit and optional HTTPS from certbot-cert.
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
readonly map_conf=/etc/nginx/conf.d/outfitter-websocket.conf
domain=${DOMAIN:-}
routes=${ROUTES:-}
websockets=${WEBSOCKETS:-true}
max_body=${MAX_BODY_MB:-10}
tls=${ENABLE_TLS:-false}
[[ $domain =~ $name_re ]] || die 1 "domain must be a domain name such as app.example.com"
if ! [[ $max_body =~ ^[0-9]{1,5}$ ]] || [ "$max_body" -lt 1 ] || [ "$max_body" -gt 10240 ]; then
  die 1 "max_body_mb must be 1-10240"
fi
[[ $websockets == true || $websockets == false ]] || die 1 "websockets must be true or false"
[[ $tls == true || $tls == false ]] || die 1 "enable_tls must be true or false"
[[ $routes == *=* ]] || routes="/=$routes"

# One location block per route, checked one by one.
locations=""
seen=" "
IFS=, read -r -a entries <<<"$routes"
if [ "${#entries[@]}" -lt 1 ] || [ "${#entries[@]}" -gt 32 ]; then die 1 "routes must list 1 to 32 path=host:port pairs"; fi
for entry in "${entries[@]}"; do
  path=${entry%%=*}
  upstream=${entry#*=}
  [[ $path =~ ^/[A-Za-z0-9._~/-]*$ ]] || die 1 "routes: path $path must start with / and use letters, digits and . _ ~ / - only"
  [[ $upstream =~ ^[A-Za-z0-9.-]+:([0-9]{1,5})$ ]] || die 1 "routes: upstream $upstream must be host:port"
  port=${BASH_REMATCH[1]}
  if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die 1 "routes: port of $upstream must be 1-65535"; fi
  [[ $seen == *" $path "* ]] && die 1 "routes: path $path is listed twice"
  seen+="$path "
  if [ "$websockets" == true ]; then
    upgrade="        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection \$outfitter_connection_upgrade;
        proxy_read_timeout 3600s;"
  else
    upgrade="        proxy_set_header Connection \"\";"
  fi
  locations+="    location $path {
        proxy_pass http://$upstream;
        proxy_http_version 1.1;
        proxy_set_header Host \$host;
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
$upgrade
    }
"
done

progress 5 "Checking for nginx"
is_installed nginx || die 3 "nginx is not installed: install the nginx app first"
vhost="/etc/nginx/sites-available/$domain.conf"
enabled="/etc/nginx/sites-enabled/$domain.conf"
cert_dir="/etc/letsencrypt/live/$domain"
ours='^# Managed by Outfitter \((reverse-proxy|certbot-cert)\)'
if [ -f "$vhost" ] && ! [[ $(head -n 1 "$vhost") =~ $ours ]]; then
  die 3 "$domain is already served by another site ($vhost); remove it first"
fi
if [ "$tls" == true ] && { ! [ -f "$cert_dir/fullchain.pem" ] || ! [ -f "$cert_dir/privkey.pem" ]; }; then
  die 3 "no certificate for $domain in $cert_dir: get one with the certbot-cert app first"
fi

progress 20 "Writing the site for $domain"
mkdir -p "$state"
# A change of domain: the old site goes.
old=""
[ -f "$state/domain" ] && old=$(cat "$state/domain")
if [ -n "$old" ] && [ "$old" != "$domain" ] && [[ $old =~ $name_re ]]; then
  rm -f "/etc/nginx/sites-available/$old.conf" "/etc/nginx/sites-enabled/$old.conf"
fi
# Websocket upgrades need a map in the http block; the name is ours so it cannot clash.
write_file "$map_conf" 0644 "# Managed by Outfitter (reverse-proxy): Connection header for websocket upgrades.
map \$http_upgrade \$outfitter_connection_upgrade {
    default upgrade;
    '' close;
}" || true
acme=""
[ -f /etc/nginx/snippets/outfitter-acme.conf ] && acme="    include snippets/outfitter-acme.conf;"
health="    location = /outfitter-proxy-health {
        access_log off;
        default_type text/plain;
        return 200 \"ok\\n\";
    }"
if [ "$tls" == true ]; then
  site="# Managed by Outfitter (reverse-proxy); changes are overwritten on reinstall.
server {
    listen 80;
    listen [::]:80;
    server_name $domain;
    client_max_body_size ${max_body}m;
$acme
$health
    location / {
        return 301 https://\$host\$request_uri;
    }
}
server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name $domain;
    ssl_certificate $cert_dir/fullchain.pem;
    ssl_certificate_key $cert_dir/privkey.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    client_max_body_size ${max_body}m;
$health
$locations}"
else
  site="# Managed by Outfitter (reverse-proxy); changes are overwritten on reinstall.
server {
    listen 80;
    listen [::]:80;
    server_name $domain;
    client_max_body_size ${max_body}m;
$acme
$health
$locations}"
fi
previous=""
[ -f "$vhost" ] && previous=$(cat "$vhost")
changed=0
write_file "$vhost" 0644 "$site" && changed=1
ln -sfn "$vhost" "$enabled"
printf '%s\n' "$domain" >"$state/domain"

progress 60 "Checking the nginx configuration"
if ! nginx -t 2>&1; then
  if [ -n "$previous" ]; then printf '%s\n' "$previous" >"$vhost"; else rm -f "$vhost" "$enabled"; fi
  die 3 "nginx -t rejected the site for $domain; the previous state was restored"
fi

progress 80 "Reloading nginx"
systemctl enable --now nginx >/dev/null 2>&1 || die 3 "nginx failed to start; see journalctl -u nginx"
if [ "$changed" -eq 1 ] || [ -n "$old" ]; then systemctl reload nginx || die 3 "nginx failed to reload"; fi

progress 90 "Waiting for the site to answer"
answers() {
  exec 3<>/dev/tcp/127.0.0.1/80 &&
    printf 'GET /outfitter-proxy-health HTTP/1.0\r\nHost: %s\r\n\r\n' "$domain" >&3 &&
    [[ $(head -n 1 <&3) =~ \ (200|301)\  ]]
}
for _ in $(seq 1 20); do
  (answers) 2>/dev/null && break
  sleep 0.5
done
(answers) 2>/dev/null || die 3 "nginx does not answer for $domain on port 80"
progress 100 "$domain forwards to ${#entries[@]} upstream route(s)"
