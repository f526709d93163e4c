#!/usr/bin/env bash
# Installs nginx and serves SERVER_NAME from /var/www/$SERVER_NAME.
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

readonly name_re='^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
[[ ${SERVER_NAME:-} =~ $name_re ]] || die 1 "server_name must be a host name such as www.example.com"

progress 10 "Installing nginx"
apt_install nginx

progress 50 "Writing the site for $SERVER_NAME"
webroot="/var/www/$SERVER_NAME"
vhost="/etc/nginx/sites-available/$SERVER_NAME.conf"
enabled="/etc/nginx/sites-enabled/$SERVER_NAME.conf"
mkdir -p "$webroot" /var/lib/outfitter/acme
# Shared with static-site and certbot-cert: lets certbot's webroot challenge reach any vhost.
write_file /etc/nginx/snippets/outfitter-acme.conf 0644 "# Managed by Outfitter: answers ACME http-01 challenges (certbot webroot mode).
location ^~ /.well-known/acme-challenge/ {
    root /var/lib/outfitter/acme;
    default_type text/plain;
}" || true
if [ ! -e "$webroot/index.html" ]; then
  write_file "$webroot/index.html" 0644 "<!doctype html><title>$SERVER_NAME</title><h1>$SERVER_NAME is served by nginx</h1>" || true
fi

previous=""
[ -f "$vhost" ] && previous=$(cat "$vhost")
changed=0
if write_file "$vhost" 0644 "# Managed by Outfitter (nginx bundle); changes are overwritten on reinstall.
server {
    listen 80;
    listen [::]:80;
    server_name $SERVER_NAME;
    include snippets/outfitter-acme.conf;
    root $webroot;
    index index.html index.htm;
    location / {
        try_files \$uri \$uri/ =404;
    }
}"; then changed=1; fi
ln -sfn "$vhost" "$enabled"
# One nginx installation per server: a new server name replaces the site of the old one.
for old in /etc/nginx/sites-available/*.conf; do
  if [ ! -f "$old" ] || [ "$old" == "$vhost" ]; then continue; fi
  [[ $(head -n 1 "$old") == "# Managed by Outfitter (nginx bundle)"* ]] || continue
  rm -f "$old" "/etc/nginx/sites-enabled/${old##*/}"
  changed=1
done

progress 70 "Checking the nginx configuration"
if ! nginx -t 2>&1; then
  # Put the previous state back so a running nginx keeps serving the other sites.
  if [ -n "$previous" ]; then printf '%s\n' "$previous" >"$vhost"; else rm -f "$vhost" "$enabled"; fi
  die 3 "nginx -t rejected the configuration; the site was not enabled"
fi

progress 85 "Starting nginx"
systemctl enable --now nginx >/dev/null 2>&1 || die 3 "nginx failed to start; see journalctl -u nginx"
if [ "$changed" -eq 1 ]; then
  systemctl reload nginx || die 3 "nginx failed to reload; see journalctl -u nginx"
fi

progress 100 "nginx serves $SERVER_NAME"
