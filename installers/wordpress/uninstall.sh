#!/usr/bin/env bash
# Removes the WordPress site DOMAIN. Its own: the nginx site, /etc/wordpress/config-DOMAIN.php,
# and the packages this app installed (wordpress, its theme, php-mysql, the php CLI, as
# recorded in /var/lib/outfitter/wordpress/packages) once no other config-*.php is left.
# Kept without PURGE, so that installing again brings the same site back: the WordPress
# tables in the database, the uploads in /var/lib/wordpress/wp-content/uploads/DOMAIN and
# the keys and salts in /var/lib/outfitter/wordpress (nothing of it is under /etc).
# With PURGE=true those go too: the tables with the prefix wp_ are dropped, the database
# itself stays (it is the mariadb-database app's, as are its user; nginx, PHP-FPM and MariaDB
# belong to their own apps and stay).
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
readonly ident_re='^[A-Za-z][A-Za-z0-9_]*$'
domain=${DOMAIN:-}
[[ $domain =~ $name_re && ${#domain} -le 253 ]] || die 1 "domain must be a domain name such as blog.example.com"
[[ ${DB_NAME:-} =~ $ident_re && ${#DB_NAME} -le 64 ]] || die 1 "db_name must be letters, digits and _ (max 64)"
[[ ${DB_USER:-} =~ $ident_re && ${#DB_USER} -le 32 ]] || die 1 "db_user must be letters, digits and _ (max 32)"
purge=${PURGE:-false}
state=/var/lib/outfitter/wordpress
uploads=/var/lib/wordpress/wp-content/uploads/$domain

if [ "$purge" = true ]; then
  progress 10 "Dropping the WordPress tables (wp_*) from $DB_NAME"
  if ! command -v mariadb >/dev/null; then
    printf 'warning: no MariaDB client here: the wp_ tables in %s, if any, stay\n' "$DB_NAME" >&2
  else
    # As the site's own user (the password travels in the environment, never on a command
    # line), else as root through the socket; the client's errors would echo nothing secret.
    sql() { MYSQL_PWD="$DB_PASSWORD" mariadb -u "$DB_USER" -NB "$DB_NAME" <<<"$1" 2>/dev/null || mariadb -NB "$DB_NAME" <<<"$1"; }
    if tables=$(sql "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'wp\\_%'"); then
      drop="SET FOREIGN_KEY_CHECKS = 0;"
      while read -r table; do
        [[ $table =~ ^wp_[A-Za-z0-9_]+$ ]] && drop+=" DROP TABLE IF EXISTS \`$table\`;"
      done <<<"$tables"
      sql "$drop" >/dev/null || die 3 "could not drop the wp_ tables in $DB_NAME"
    else
      printf 'warning: cannot reach database %s: its wp_ tables, if any, stay\n' "$DB_NAME" >&2
    fi
  fi
fi

progress 30 "Removing the nginx site $domain"
rm -f "/etc/nginx/sites-enabled/wordpress-$domain.conf" "/etc/nginx/sites-available/wordpress-$domain.conf"
if systemctl is-active --quiet nginx; then
  nginx -t 2>&1 || die 3 "nginx -t rejects the remaining configuration"
  systemctl reload nginx || die 3 "nginx failed to reload; see journalctl -u nginx"
fi

progress 45 "Removing /etc/wordpress/config-$domain.php"
rm -f "/etc/wordpress/config-$domain.php"

others=()
if [ -d /etc/wordpress ]; then
  while IFS= read -r other; do others+=("$other"); done < <(find /etc/wordpress -maxdepth 1 -name 'config-*.php' -printf '%f\n')
fi
if [ "${#others[@]}" -gt 0 ]; then
  progress 60 "WordPress still serves ${#others[@]} other sites: keeping its packages"
else
  progress 60 "Purging the packages this app installed"
  packages=()
  for mark in "$state"/packages/*; do [ -e "$mark" ] && packages+=("${mark##*/}"); done
  if [ "${#packages[@]}" -gt 0 ]; then apt_purge "${packages[@]}"; fi
  rm -rf "$state/packages"
  # New or removed PHP extensions take effect in PHP-FPM on a reload.
  sock=$(find /run/php -maxdepth 1 -name 'php[0-9]*-fpm.sock' -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$sock" ] && [ "${#packages[@]}" -gt 0 ]; then
    version=${sock#php}
    systemctl reload "php${version%-fpm.sock}-fpm" || true
  fi
fi

if [ "$purge" = true ]; then
  progress 85 "Deleting the uploads and the keys of $domain"
  rm -rf "$uploads" "$state/salts-$domain"
  rmdir "$state" /var/lib/outfitter 2>/dev/null || true
  # What the wordpress package's purge left because the uploads were still in it.
  if ! is_installed wordpress; then
    rmdir /var/lib/wordpress/wp-content/uploads /var/lib/wordpress/wp-content /var/lib/wordpress 2>/dev/null || true
  fi
fi
progress 100 "The WordPress site $domain is removed"
