#!/usr/bin/env bash
# Serves WordPress (Debian's wordpress package: code in /usr/share/wordpress, configuration
# in /etc/wordpress/config-DOMAIN.php) for DOMAIN on LISTEN_PORT through the nginx and
# php-fpm apps, with its tables (prefix wp_) in the database DB_NAME that the
# mariadb-database app created for DB_USER. Runs the WordPress installer once (SITE_TITLE,
# ADMIN_USER, ADMIN_EMAIL, ADMIN_PASSWORD); a later run keeps the site and its content and
# applies the inputs: title, admin e-mail, and the admin password, which is set only when it
# no longer matches (so the same inputs change nothing and keep every login session); a new
# ADMIN_USER is created as another administrator (the old one stays).
# The secret keys and salts are generated once and kept in /var/lib/outfitter/wordpress.
# Refuses with exit 3 when nginx, PHP-FPM or the database is missing: other apps' to install.
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
port=${LISTEN_PORT:-80}
[[ $domain =~ $name_re && ${#domain} -le 253 ]] || die 1 "domain must be a domain name such as blog.example.com"
[[ ${DB_NAME:-} =~ $ident_re && ${#DB_NAME} -le 64 ]] || die 1 "db_name must be letters, digits and _ (max 64)"
[[ ${DB_USER:-} =~ $ident_re && ${#DB_USER} -le 32 ]] || die 1 "db_user must be letters, digits and _ (max 32)"
[ "${#DB_PASSWORD}" -ge 12 ] || die 1 "db_password must be at least 12 characters"
[[ -n ${SITE_TITLE:-} && $SITE_TITLE != *[\<\>]* ]] || die 1 "site_title must not be empty nor contain < or >"
[[ ${ADMIN_USER:-} =~ ^[A-Za-z0-9._-]{1,60}$ ]] || die 1 "admin_user may use letters, digits, . _ - only (max 60)"
[[ ${ADMIN_EMAIL:-} =~ ^[^@[:space:]]+@[^@[:space:]]+$ ]] || die 1 "admin_email must be an e-mail address"
[ "${#ADMIN_PASSWORD}" -ge 12 ] || die 1 "admin_password must be at least 12 characters"
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die 1 "listen_port must be 1-65535"; fi

progress 5 "Checking for nginx, PHP-FPM and MariaDB"
is_installed nginx || die 3 "nginx is not installed: install the nginx app first"
# php8.2-fpm.sock and the like; php-fpm.sock is the alternatives link to one of them.
sock=$(find /run/php -maxdepth 1 -name 'php[0-9]*-fpm.sock' -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
[ -n "$sock" ] || die 3 "PHP-FPM is not running: install the php-fpm app first"
version=${sock#php}
version=${version%-fpm.sock}
[ -S /run/mysqld/mysqld.sock ] || die 3 "MariaDB is not running here: install the mariadb and mariadb-database apps first"

progress 15 "Installing WordPress and the PHP MySQL driver"
state=/var/lib/outfitter/wordpress
marks=$state/packages
mkdir -p "$marks"
chmod 0700 "$state"
# wordpress depends on "libapache2-mod-php | php": naming php (which PHP-FPM satisfies)
# keeps apt from choosing Apache's PHP module, and Apache with it. The php CLI comes with
# the php-fpm app (php<version>-cli); it is installed only when missing.
wanted=(php wordpress wordpress-theme-twentytwentythree php-mysql "php$version-cli")
added=()
for pkg in "${wanted[@]}"; do is_installed "$pkg" || added+=("$pkg"); done
apt_install "${wanted[@]}"
# Remember which packages this app added, so that its uninstall removes those and no others.
for pkg in "${added[@]}"; do touch "$marks/$pkg"; done
php_bin=$(command -v "php$version") || die 3 "php$version is missing although php$version-cli is installed"

progress 30 "Writing /etc/wordpress/config-$domain.php"
# Keys and salts are made once (64 random characters each) and kept, so a reinstall or a
# change of settings keeps everyone logged in. They are never printed.
salts=$state/salts-$domain
if [ ! -s "$salts" ]; then
  tmp=$(mktemp "$salts.XXXXXX")
  for key in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
    printf '%s %s\n' "$key" "$(head -c 48 /dev/urandom | base64 -w 0)" >>"$tmp"
  done
  chmod 0600 "$tmp"
  mv -f "$tmp" "$salts"
fi
salt_defines=""
while read -r key value; do
  [[ $key =~ ^[A-Z_]+$ && $value =~ ^[A-Za-z0-9+/=]+$ ]] || die 3 "$salts is damaged; delete it to make new keys (everyone is logged out)"
  salt_defines+="define('$key', '$value');"$'\n'
done <"$salts"
# php_string VALUE: VALUE as a single-quoted PHP string literal.
php_string() {
  local value=${1//\\/\\\\}
  printf "'%s'" "${value//\'/\\\'}"
}
home="http://$domain"
[ "$port" = 80 ] || home="$home:$port"
uploads=/var/lib/wordpress/wp-content/uploads/$domain
install -d -o www-data -g www-data -m 0755 "$uploads"
config=/etc/wordpress/config-$domain.php
config_changed=0
if write_file "$config" 0640 "<?php
// Managed by Outfitter (wordpress bundle); changes are overwritten on reinstall.
// Read by /usr/share/wordpress/wp-config.php for the host $domain.
define('DB_NAME', $(php_string "$DB_NAME"));
define('DB_USER', $(php_string "$DB_USER"));
define('DB_PASSWORD', $(php_string "$DB_PASSWORD"));
define('DB_HOST', 'localhost');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
\$table_prefix = 'wp_';
define('WP_HOME', '$home');
define('WP_SITEURL', '$home');
define('WP_CONTENT_DIR', '/var/lib/wordpress/wp-content');
// WordPress is updated with the Debian package (apt), not by itself.
define('AUTOMATIC_UPDATER_DISABLED', true);
${salt_defines%$'\n'}"; then config_changed=1; fi
chown root:www-data "$config"

progress 45 "Running the WordPress installer"
# The PHP reads the inputs from its environment (nothing secret on a command line) and
# prints no secret. It loads WordPress the way wp-admin/install.php does.
php_log=$(mktemp)
trap 'rm -f "$php_log"' EXIT
php_rc=0
cd /
runuser -u www-data -- env HTTP_HOST="$domain" WP_UPLOADS_DIR="$uploads" WP_UPLOADS_URL="$home/wp-content/uploads/$domain" \
  "$php_bin" >"$php_log" 2>&1 <<'PHP' || php_rc=$?
<?php
mysqli_report(MYSQLI_REPORT_OFF);
$link = @mysqli_connect('localhost', getenv('DB_USER'), getenv('DB_PASSWORD'), getenv('DB_NAME'));
if (!$link) {
    fwrite(STDERR, 'cannot log in to database ' . getenv('DB_NAME') . ' as ' . getenv('DB_USER') . ': ' . mysqli_connect_error() . "\n");
    exit(3);
}
mysqli_close($link);
define('WP_INSTALLING', true);
require '/usr/share/wordpress/wp-load.php';
// No mail server here: the "your new site" e-mail would only fail.
function wp_new_blog_notification($blog_title, $blog_url, $user_id, $password) {}
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
$title = getenv('SITE_TITLE');
$login = getenv('ADMIN_USER');
$email = getenv('ADMIN_EMAIL');
$password = getenv('ADMIN_PASSWORD');
if (!is_blog_installed()) {
    $result = wp_install($title, $login, $email, true, '', wp_slash($password));
    if (empty($result['user_id']) || is_wp_error($result['user_id'])) {
        fwrite(STDERR, "the WordPress installer did not create the admin user\n");
        exit(3);
    }
    echo "installed WordPress\n";
} else {
    echo "WordPress is installed already\n";
}
update_option('blogname', $title);
update_option('admin_email', $email);
// Each site keeps its uploads in a directory of its own below the shared wp-content.
update_option('upload_path', getenv('WP_UPLOADS_DIR'));
update_option('upload_url_path', getenv('WP_UPLOADS_URL'));
add_filter('send_email_change_email', '__return_false');
add_filter('send_password_change_email', '__return_false');
$user = get_user_by('login', $login);
if (!$user) {
    $id = wp_insert_user(array('user_login' => $login, 'user_pass' => $password, 'user_email' => $email, 'role' => 'administrator'));
    if (is_wp_error($id)) {
        fwrite(STDERR, 'cannot create the admin user: ' . $id->get_error_message() . "\n");
        exit(3);
    }
    echo "created the admin user\n";
} else {
    if (!wp_check_password($password, $user->user_pass, $user->ID)) {
        wp_set_password($password, $user->ID);
        echo "set the new admin password\n";
    }
    if (!in_array('administrator', (array) $user->roles, true)) {
        $user->add_role('administrator');
        echo "made the admin user an administrator\n";
    }
    if (strtolower($user->user_email) !== strtolower($email)) {
        $id = wp_update_user(array('ID' => $user->ID, 'user_email' => $email));
        if (is_wp_error($id)) {
            fwrite(STDERR, 'cannot set the admin e-mail: ' . $id->get_error_message() . "\n");
            exit(3);
        }
        echo "set the admin e-mail\n";
    }
}
echo "outfitter: done\n";
PHP
# A WordPress error page (wp_die) ends with exit 0: only the last line says it worked.
if [ "$php_rc" -ne 0 ] || [[ $(tail -n 1 "$php_log") != "outfitter: done" ]]; then
  sed -e 's/<[^>]*>//g' "$php_log" | grep -v '^[[:space:]]*$' | tail -n 20 >&2 || true
  [ "$php_rc" -eq 3 ] && die 3 "WordPress cannot use database $DB_NAME as $DB_USER: create it with the mariadb-database app (same name, user and password) first"
  die 3 "the WordPress installer failed (exit $php_rc)"
fi
grep -v '^outfitter: done$' "$php_log" || true

progress 65 "Writing the nginx site $domain"
site=/etc/nginx/sites-available/wordpress-$domain.conf
enabled=/etc/nginx/sites-enabled/wordpress-$domain.conf
fpm=unix:/run/php/$sock
host=$domain
[ "$port" = 80 ] || host="$domain:$port"
previous=""
[ -f "$site" ] && previous=$(cat "$site")
site_changed=0
if write_file "$site" 0644 "# Managed by Outfitter (wordpress bundle); changes are overwritten on reinstall.
server {
    listen $port;
    listen [::]:$port;
    server_name $domain;
    root /usr/share/wordpress;
    index index.php;
    client_max_body_size 32m;
    # Debian's fastcgi_params passes HTTP_HOST as \$host, without the port, and WordPress
    # would redirect to WP_HOME forever on another port than 80: PHP gets the site's own.

    # The Debian master configuration, and every dotfile (.htaccess, .git, ...).
    location = /wp-config.php { deny all; }
    location ~ /\\. { deny all; }

    # Themes, plugins and uploads live in /var/lib/wordpress/wp-content.
    location ^~ /wp-content/ {
        root /var/lib/wordpress;
        location ~ /\\. { deny all; }
        location ~* ^/wp-content/uploads/.*\\.(php[0-9]?|phtml|phar)\$ { deny all; }
        location ~ \\.php\$ {
            try_files \$uri =404;
            include fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param HTTP_HOST $host;
            fastcgi_param HTTP_PROXY \"\";
            fastcgi_pass $fpm;
        }
    }

    location / {
        try_files \$uri \$uri/ /index.php?\$args;
    }
    location ~ \\.php\$ {
        try_files \$uri =404;
        include fastcgi_params;
        fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
        fastcgi_param HTTP_HOST $host;
        fastcgi_param HTTP_PROXY \"\";
        fastcgi_pass $fpm;
    }
}"; then site_changed=1; fi
ln -sfn "$site" "$enabled"

progress 80 "Reloading PHP-FPM and nginx"
if ! nginx -t 2>&1; then
  if [ -n "$previous" ]; then printf '%s\n' "$previous" >"$site"; else rm -f "$site" "$enabled"; fi
  die 3 "nginx -t rejected the site; the previous site was restored"
fi
# New extensions (mysqli, gd) load on a reload, which also drops OPcache's copy of the config.
if [ "${#added[@]}" -gt 0 ] || [ "$config_changed" -eq 1 ]; then
  systemctl reload "php$version-fpm" || die 3 "php$version-fpm failed to reload"
fi
if [ "$site_changed" -eq 1 ]; then systemctl reload nginx || die 3 "nginx failed to reload; see journalctl -u nginx"; fi

progress 90 "Waiting for WordPress"
answers() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /wp-login.php HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3 &&
    [[ $(cat <&3) == *' 200 '*'id="loginform"'* ]]
}
for _ in $(seq 1 20); do
  (answers) 2>/dev/null && break
  sleep 1
done
(answers) 2>/dev/null || die 3 "WordPress does not answer on port $port for $domain; see /var/log/nginx/error.log"
progress 100 "WordPress is served at $home/"
