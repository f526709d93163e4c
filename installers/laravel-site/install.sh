#!/usr/bin/env bash
# Deploys the Laravel app from SOURCE for DOMAIN: releases/<timestamp>, shared storage and
# .env, composer, migrations (RUN_MIGRATIONS) before an atomic switch of `current`, then its
# own PHP-FPM pool (PHP_VERSION) and nginx vhost. Keeps KEEP_RELEASES releases.
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
[[ ${DOMAIN:-} =~ $name_re ]] || die 1 "domain must be a domain name such as app.example.com"
source_spec=${SOURCE:-}
ref=${SOURCE_REF:-}
version=${PHP_VERSION:-default}
db=${DB_CONNECTION:-sqlite}
migrate=${RUN_MIGRATIONS:-true}
keep=${KEEP_RELEASES:-5}
[[ -z $ref || $ref =~ ^[A-Za-z0-9._/-]+$ ]] || die 1 "source_ref may use letters, digits and . _ / - only"
[[ $version == default || $version =~ ^8\.[1-4]$ ]] || die 1 "php_version must be default or 8.1-8.4"
[[ $db == sqlite || $db == mysql || $db == pgsql ]] || die 1 "db_connection must be sqlite, mysql or pgsql"
[[ $migrate == true || $migrate == false ]] || die 1 "run_migrations must be true or false"
if ! [[ $keep =~ ^[0-9]{1,2}$ ]] || [ "$keep" -lt 1 ] || [ "$keep" -gt 50 ]; then die 1 "keep_releases must be 1-50"; fi
if [ "$db" != sqlite ]; then
  db_host=${DB_HOST:-127.0.0.1}
  db_name=${DB_NAME:-}
  db_user=${DB_USER:-}
  db_password=${DB_PASSWORD:-}
  [[ $db_host =~ ^[A-Za-z0-9.-]+$ ]] || die 1 "db_host must be a host name or an IP address"
  [[ $db_name =~ ^[A-Za-z][A-Za-z0-9_]*$ ]] || die 1 "db_name is required for $db"
  [[ $db_user =~ ^[A-Za-z][A-Za-z0-9_]*$ ]] || die 1 "db_user is required for $db"
  [ -n "$db_password" ] || die 1 "db_password is required for $db"
fi
case "$source_spec" in
*.git | git@* | ssh://*) kind=git ;;
http://*.tar.gz | https://*.tar.gz | http://*.tgz | https://*.tgz) kind=archive-url ;;
/*.tar.gz | /*.tgz) kind=archive-file ;;
/*) kind=directory ;;
*) die 1 "source must be a git URL ending in .git, a .tar.gz URL, or an absolute path" ;;
esac
[[ /$source_spec/ == */../* ]] && die 1 "source must not contain .. components"

site_user="lv-${DOMAIN//./-}"
[ "${#site_user}" -le 32 ] || site_user="lv-$(printf '%s' "$DOMAIN" | sha256sum | cut -c1-20)"
base="/var/www/$DOMAIN"

progress 5 "Installing nginx, PHP and composer"
if [ "$version" == default ]; then
  apt_install php-fpm
  version=$(find /etc/php -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
  [ -n "$version" ] || die 2 "php-fpm installed but no /etc/php/<version> appeared"
fi
packages=(nginx composer unzip "php$version-fpm" "php$version-cli")
for ext in mbstring xml curl zip bcmath intl sqlite3 mysql pgsql; do packages+=("php$version-$ext"); done
[ "$kind" == git ] && packages+=(git ca-certificates)
[ "$kind" == archive-url ] && packages+=(curl ca-certificates)
apt_install "${packages[@]}"
php_bin="php$version"

progress 20 "Preparing $base for user $site_user"
id "$site_user" >/dev/null 2>&1 || useradd --system --home-dir "$base" --shell /usr/sbin/nologin "$site_user"
# A site an uninstall kept belonged to the user of an earlier install, whose id may differ.
if [ -d "$base" ] && [ "$(stat -c %u "$base")" != "$(id -u "$site_user")" ]; then chown -R "$site_user:$site_user" "$base"; fi
mkdir -p "$base/releases" "$base/shared"
chown "$site_user:$site_user" "$base" "$base/releases" "$base/shared"
as_site() { runuser -u "$site_user" -- env HOME="$base/shared" COMPOSER_HOME="$base/shared/.composer" "$@"; }

progress 25 "Fetching $source_spec"
staging=$(mktemp -d "$base/.incoming.XXXXXX")
trap 'rm -rf "$staging"' EXIT
case "$kind" in
git)
  clone=(git clone --quiet --depth 1)
  [ -n "$ref" ] && clone+=(--branch "$ref")
  GIT_TERMINAL_PROMPT=0 "${clone[@]}" "$source_spec" "$staging/src" || die 2 "git clone of $source_spec failed"
  fingerprint="git:$(git -C "$staging/src" rev-parse HEAD)"
  rm -rf "$staging/src/.git"
  ;;
archive-url)
  curl -fsSL --retry 3 -o "$staging/src.tar.gz" "$source_spec" || die 2 "downloading $source_spec failed"
  ;;
archive-file)
  [ -f "$source_spec" ] || die 1 "source: there is no file $source_spec"
  cp "$source_spec" "$staging/src.tar.gz"
  ;;
directory)
  [ -d "$source_spec" ] || die 1 "source: there is no directory $source_spec"
  mkdir "$staging/src"
  cp -a "$source_spec/." "$staging/src/"
  fingerprint="dir:$(tar -C "$staging/src" --sort=name --mtime=@0 --owner=0 --group=0 -cf - . | sha256sum | cut -d' ' -f1)"
  ;;
esac
if [ -f "$staging/src.tar.gz" ]; then
  fingerprint="sha256:$(sha256sum "$staging/src.tar.gz" | cut -d' ' -f1)"
  mkdir "$staging/src"
  tar -xzf "$staging/src.tar.gz" -C "$staging/src" --no-same-owner || die 1 "source is not a valid .tar.gz archive"
  entries=("$staging/src"/*)
  if [ "${#entries[@]}" -eq 1 ] && [ -d "${entries[0]}" ] && [ ! -f "$staging/src/composer.json" ]; then
    mv "${entries[0]}" "$staging/top" && rm -rf "$staging/src" && mv "$staging/top" "$staging/src"
  fi
fi
[ -f "$staging/src/composer.json" ] || die 1 "source has no composer.json at its top; is it a Laravel application?"
[ -f "$staging/src/public/index.php" ] || die 1 "source has no public/index.php; is it a Laravel application?"

progress 35 "Writing the shared .env"
env_file="$base/shared/.env"
# set_env KEY VALUE: sets one line of the shared .env, keeping every other line.
set_env() {
  local key=$1 value=$2 tmp
  value=${value//\\/\\\\}
  value=${value//\"/\\\"}
  tmp=$(mktemp "$env_file.XXXXXX")
  awk -v k="$key" -v line="$key=\"$value\"" 'BEGIN { done = 0 }
    index($0, k "=") == 1 { if (!done) print line; done = 1; next }
    { print }
    END { if (!done) print line }' "$env_file" >"$tmp"
  chmod 0640 "$tmp"
  mv -f "$tmp" "$env_file"
}
if [ ! -f "$env_file" ]; then
  install -m 0640 /dev/null "$env_file"
  set_env APP_KEY "base64:$(head -c 32 /dev/urandom | base64)"
fi
set_env APP_NAME "$DOMAIN"
set_env APP_ENV production
set_env APP_DEBUG false
set_env APP_URL "http://$DOMAIN"
set_env LOG_CHANNEL stack
set_env DB_CONNECTION "$db"
if [ "$db" == sqlite ]; then
  touch "$base/shared/database.sqlite"
  chown "$site_user:$site_user" "$base/shared/database.sqlite"
  set_env DB_DATABASE "$base/shared/database.sqlite"
else
  port=3306
  [ "$db" == pgsql ] && port=5432
  set_env DB_HOST "$db_host"
  set_env DB_PORT "$port"
  set_env DB_DATABASE "$db_name"
  set_env DB_USERNAME "$db_user"
  set_env DB_PASSWORD "$db_password"
fi
chown "$site_user:$site_user" "$env_file"

current_release=""
[ -L "$base/current" ] && current_release=$(readlink -f "$base/current")
if [ -n "$current_release" ] && [ "$(cat "$current_release/.outfitter-source" 2>/dev/null)" == "$fingerprint" ]; then
  progress 60 "The deployed release is current ($(basename "$current_release"))"
  release=$current_release
else
  release="$base/releases/$(date -u +%Y%m%d%H%M%S)"
  [ -e "$release" ] && release="$release-$$"
  progress 40 "Creating release $(basename "$release")"
  mv "$staging/src" "$release"
  printf '%s\n' "$fingerprint" >"$release/.outfitter-source"
  # Storage lives outside the releases; the first release seeds it.
  if [ ! -d "$base/shared/storage" ]; then
    if [ -d "$release/storage" ]; then cp -a "$release/storage" "$base/shared/storage"; else mkdir -p "$base/shared/storage"; fi
  fi
  mkdir -p "$base/shared/storage/app/public" "$base/shared/storage/framework/cache" \
    "$base/shared/storage/framework/sessions" "$base/shared/storage/framework/views" "$base/shared/storage/logs"
  rm -rf "$release/storage" "$release/.env"
  ln -s ../../shared/storage "$release/storage"
  ln -s ../../shared/.env "$release/.env"
  mkdir -p "$release/bootstrap/cache"
  chown -R "$site_user:$site_user" "$release" "$base/shared/storage"

  progress 50 "Installing dependencies with composer"
  (cd "$release" && as_site composer install --no-dev --prefer-dist --no-interaction --no-progress --optimize-autoloader 2>&1) ||
    die 2 "composer install failed (see its output above); the live release is unchanged"

  if [ "$migrate" == true ] && [ -f "$release/artisan" ]; then
    progress 60 "Running migrations"
    (cd "$release" && as_site "$php_bin" artisan migrate --force 2>&1) ||
      die 3 "php artisan migrate --force failed; the live release is unchanged"
  fi

  progress 70 "Switching current to $(basename "$release")"
  ln -sfn "releases/$(basename "$release")" "$base/current.new"
  mv -T "$base/current.new" "$base/current"
fi

progress 80 "Writing the PHP-FPM pool $site_user"
pool="/etc/php/$version/fpm/pool.d/$site_user.conf"
socket="/run/php/$site_user.sock"
pool_prev=""
[ -f "$pool" ] && pool_prev=$(cat "$pool")
pool_changed=0
if write_file "$pool" 0644 "; Managed by Outfitter (laravel-site); changes are overwritten on reinstall.
[$site_user]
user = $site_user
group = $site_user
listen = $socket
listen.owner = www-data
listen.group = www-data
listen.mode = 0660
pm = dynamic
pm.max_children = 10
pm.start_servers = 2
pm.min_spare_servers = 1
pm.max_spare_servers = 3
php_admin_value[open_basedir] = $base/:/tmp/:/usr/share/php/
php_admin_value[error_log] = $base/shared/storage/logs/php-fpm.log"; then pool_changed=1; fi
if ! "php-fpm$version" -t 2>&1; then
  if [ -n "$pool_prev" ]; then printf '%s\n' "$pool_prev" >"$pool"; else rm -f "$pool"; fi
  die 3 "php-fpm$version -t rejected the pool; the previous pool was restored"
fi

progress 85 "Writing the nginx site $DOMAIN"
vhost="/etc/nginx/sites-available/$DOMAIN.conf"
mkdir -p /var/lib/outfitter/acme
write_file /etc/nginx/snippets/outfitter-acme.conf 0644 "# Managed by Outfitter: answers ACME http-01 challenges (certbot webroot mode).
location ^~ /.well-known/acme-challenge/ {
    root /var/lib/outfitter/acme;
    default_type text/plain;
}" || true
vhost_prev=""
[ -f "$vhost" ] && vhost_prev=$(cat "$vhost")
vhost_changed=0
# $realpath_root resolves the current symlink, so PHP and OPcache see the real release.
if write_file "$vhost" 0644 "# Managed by Outfitter (laravel-site); changes are overwritten on reinstall.
server {
    listen 80;
    listen [::]:80;
    server_name $DOMAIN;
    root $base/current/public;
    index index.php;
    charset utf-8;
    include snippets/outfitter-acme.conf;

    location / {
        try_files \$uri \$uri/ /index.php?\$query_string;
    }
    location = /favicon.ico { access_log off; log_not_found off; }
    location = /robots.txt  { access_log off; log_not_found off; }
    error_page 404 /index.php;

    location ~ \.php\$ {
        fastcgi_pass unix:$socket;
        fastcgi_param SCRIPT_FILENAME \$realpath_root\$fastcgi_script_name;
        fastcgi_param DOCUMENT_ROOT \$realpath_root;
        include fastcgi_params;
        fastcgi_hide_header X-Powered-By;
    }
    location ~ /\.(?!well-known).* {
        deny all;
    }
}"; then vhost_changed=1; fi
ln -sfn "$vhost" "/etc/nginx/sites-enabled/$DOMAIN.conf"
if ! nginx -t 2>&1; then
  if [ -n "$vhost_prev" ]; then printf '%s\n' "$vhost_prev" >"$vhost"; else rm -f "$vhost" "/etc/nginx/sites-enabled/$DOMAIN.conf"; fi
  die 3 "nginx -t rejected the site; the previous site was restored"
fi

progress 92 "Reloading PHP-FPM and nginx"
systemctl enable --now "php$version-fpm" nginx >/dev/null 2>&1 || die 3 "php$version-fpm or nginx failed to start"
# A reload also drops OPcache, so a new release is served at once.
if [ "$pool_changed" -eq 1 ] || [ "$release" != "$current_release" ]; then
  systemctl reload "php$version-fpm" || die 3 "php$version-fpm failed to reload"
fi
for _ in $(seq 1 20); do
  [ -S "$socket" ] && break
  sleep 0.5
done
[ -S "$socket" ] || die 3 "the PHP-FPM pool did not create $socket; see journalctl -u php$version-fpm"
if [ "$vhost_changed" -eq 1 ]; then systemctl reload nginx || die 3 "nginx failed to reload"; fi

# A new release goes live only when the site answers 200 with it; otherwise current goes back
# to the release that was live (the rollback), and the failed one is removed.
answers() {
  exec 3<>/dev/tcp/127.0.0.1/80 && printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$DOMAIN" >&3 &&
    [[ $(head -n 1 <&3) == *' 200 '* ]]
}
progress 95 "Checking that $DOMAIN answers"
ok=0
for _ in $(seq 1 20); do
  if (answers) 2>/dev/null; then
    ok=1
    break
  fi
  sleep 0.5
done
if [ "$ok" -eq 0 ]; then
  if [ "$release" != "$current_release" ] && [ -n "$current_release" ] && [ -d "$current_release" ]; then
    ln -sfn "releases/$(basename "$current_release")" "$base/current.new"
    mv -T "$base/current.new" "$base/current"
    systemctl reload "php$version-fpm" || true
    rm -rf "$release"
    die 3 "$DOMAIN does not answer 200 with release $(basename "$release"); switched back to $(basename "$current_release") and removed the new one"
  fi
  die 3 "$DOMAIN does not answer 200 on port 80; see $base/shared/storage/logs and journalctl -u php$version-fpm"
fi

progress 97 "Removing old releases (keeping $keep)"
live=$(readlink -f "$base/current")
count=0
while IFS= read -r -d '' old; do
  count=$((count + 1))
  if [ "$count" -gt "$keep" ] && [ "$(readlink -f "$old")" != "$live" ]; then rm -rf "$old"; fi
done < <(find "$base/releases" -mindepth 1 -maxdepth 1 -type d -print0 | sort -rz)

progress 100 "$DOMAIN is live from $(basename "$(readlink -f "$base/current")")"
