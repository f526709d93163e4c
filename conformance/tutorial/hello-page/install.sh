#!/usr/bin/env bash
# Serves GREETING on LISTEN_PORT with nginx.
set -euo pipefail

progress() { printf '::progress %s %s\n' "$1" "$2"; }
die() {
  local code=$1
  shift
  printf 'error: %s\n' "$*" >&2
  exit "$code"
}

greeting=${GREETING:-}
port=${LISTEN_PORT:-8080}
[[ $greeting =~ ^[A-Za-z0-9\ ,.!?-]+$ ]] || die 1 "greeting may use letters, digits, spaces and , . ! ? - only"
[[ $port =~ ^[0-9]{1,5}$ ]] || die 1 "listen_port must be a number"

progress 10 "Installing nginx"
if [[ $(dpkg-query -W -f='${Status}' nginx 2>/dev/null) != *"ok installed" ]]; then
  apt-get -q -o DPkg::Lock::Timeout=120 update || die 2 "apt-get update failed"
  apt-get -q -y -o DPkg::Lock::Timeout=120 install --no-install-recommends nginx ||
    die 2 "apt-get install nginx failed"
fi

progress 50 "Writing the page and the site"
mkdir -p /var/www/hello-page
printf '<!doctype html><title>Hello</title><h1>%s</h1>\n' "$greeting" >/var/www/hello-page/index.html
printf 'server {\n    listen %s;\n    root /var/www/hello-page;\n}\n' "$port" \
  >/etc/nginx/sites-available/hello-page.conf
ln -sfn /etc/nginx/sites-available/hello-page.conf /etc/nginx/sites-enabled/hello-page.conf

progress 80 "Checking and reloading nginx"
nginx -t 2>&1 || die 3 "nginx -t rejected the configuration"
systemctl enable --now nginx >/dev/null 2>&1 || die 3 "nginx failed to start"
systemctl reload nginx || die 3 "nginx failed to reload"

progress 100 "The greeting is served on port $port"
