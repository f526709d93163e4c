#!/usr/bin/env bash
# Serves Adminer (Debian's adminer package, /etc/adminer/conf.php) through the nginx and
# php-fpm apps on LISTEN_PORT, to ALLOW_FROM only, with the PHP drivers of DRIVERS.
# Refuses with exit 3 when nginx or PHP-FPM is missing: they are other apps' to install.
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

port=${LISTEN_PORT:-8081}
allow=${ALLOW_FROM:-127.0.0.1}
drivers=${DRIVERS:-mysql}
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die 1 "listen_port must be 1-65535"; fi
[[ $allow =~ ^[0-9a-fA-F:.]+(/[0-9]{1,3})?(\ [0-9a-fA-F:.]+(/[0-9]{1,3})?)*$ ]] ||
  die 1 "allow_from must be addresses or networks separated by spaces"
case $drivers in
mysql | pgsql | sqlite) wanted=("php-$drivers") ;;
all) wanted=(php-mysql php-pgsql php-sqlite3) ;;
*) die 1 "drivers must be mysql, pgsql, sqlite or all" ;;
esac
[ "$drivers" = sqlite ] && wanted=(php-sqlite3)

progress 5 "Checking for nginx and PHP-FPM"
is_installed nginx || die 3 "nginx is not installed: install the nginx app first"
# php8.2-fpm.sock and the like; php-fpm.sock is the alternatives link to one of them.
sock=$(find /run/php -maxdepth 1 -name 'php[0-9]*-fpm.sock' -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
[ -n "$sock" ] || die 3 "PHP-FPM is not running: install the php-fpm app first"
version=${sock#php}
version=${version%-fpm.sock}

progress 20 "Installing Adminer and the PHP drivers"
state=/var/lib/outfitter/adminer
mkdir -p "$state"
added=()
for pkg in adminer "${wanted[@]}"; do is_installed "$pkg" || added+=("$pkg"); done
apt_install adminer "${wanted[@]}"
# Remember which drivers this app added, so that its uninstall removes those and no others.
for pkg in "${added[@]}"; do [ "$pkg" = adminer ] || touch "$state/$pkg"; done
# Drivers this app added earlier but no longer wants.
unwanted=()
for mark in "$state"/php-*; do
  [ -e "$mark" ] || continue
  pkg=${mark##*/}
  [[ " ${wanted[*]} " == *" $pkg "* ]] && continue
  unwanted+=("$pkg")
  rm -f "$mark"
done
if [ "${#unwanted[@]}" -gt 0 ]; then apt_purge "${unwanted[@]}"; fi

progress 60 "Writing the nginx site"
allows=""
for address in $allow; do allows+="    allow $address;"$'\n'; done
site=/etc/nginx/sites-available/outfitter-adminer.conf
changed=0
if write_file "$site" 0644 "# Managed by Outfitter (adminer bundle); changes are overwritten on reinstall.
server {
    listen $port;
    listen [::]:$port;
    server_name _;
${allows}    deny all;
    root /etc/adminer;
    location = / {
        include fastcgi_params;
        fastcgi_param SCRIPT_FILENAME /etc/adminer/conf.php;
        fastcgi_pass unix:/run/php/$sock;
    }
    location / {
        return 404;
    }
}"; then changed=1; fi
ln -sfn "$site" /etc/nginx/sites-enabled/outfitter-adminer.conf

progress 80 "Reloading PHP-FPM and nginx"
# A new driver is a new PHP extension: PHP-FPM loads it on reload.
if [ "${#added[@]}" -gt 0 ] || [ "${#unwanted[@]}" -gt 0 ]; then
  systemctl reload "php$version-fpm" || die 3 "php$version-fpm failed to reload"
fi
nginx -t 2>&1 || die 3 "nginx -t rejects the configuration"
if [ "$changed" -eq 1 ]; then systemctl reload nginx || die 3 "nginx failed to reload"; fi

progress 90 "Waiting for Adminer"
answers() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 &&
    [[ $(cat <&3) == *' 200 '*'Login - Adminer'* ]]
}
for _ in $(seq 1 20); do
  (answers) 2>/dev/null && break
  sleep 1
done
if ! (answers) 2>/dev/null; then
  [[ " $allow " == *" 127.0.0.1 "* || " $allow " == *" 127.0.0.0/8 "* ]] &&
    die 3 "Adminer does not answer on port $port"
fi
progress 100 "Adminer is served on port $port to $allow"
