#!/usr/bin/env bash
# Installs RabbitMQ as the node rabbit@localhost (no dependence on the host name resolving),
# AMQP on LISTEN_ADDRESS:5672, with the virtual host RABBITMQ_VHOST and the user
# RABBITMQ_USER (password RABBITMQ_PASSWORD, given to rabbitmqctl on stdin) with full rights
# on it; the guest user is deleted.
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

vhost=${RABBITMQ_VHOST:-app}
user=${RABBITMQ_USER:-app}
password=${RABBITMQ_PASSWORD:-}
address=${LISTEN_ADDRESS:-127.0.0.1}
[[ $vhost =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die 1 "rabbitmq_vhost may use letters, digits and . _ - only"
[[ $user =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die 1 "rabbitmq_user may use letters, digits and . _ - only"
[ "$user" != guest ] || die 1 "rabbitmq_user cannot be guest"
[ "${#password}" -ge 12 ] || die 1 "rabbitmq_password must be at least 12 characters"
[[ $password =~ ^[A-Za-z0-9._~+-]+$ ]] || die 1 "rabbitmq_password may use letters, digits and . _ ~ + - only"
[[ $address == 127.0.0.1 || $address == 0.0.0.0 ]] || die 1 "listen_address must be 127.0.0.1 or 0.0.0.0"

progress 5 "Writing the node's environment"
# Written before the package, whose installation starts the node: it must start as
# rabbit@localhost already (dpkg keeps this file, --force-confold).
mkdir -p /etc/rabbitmq
changed=0
if write_file /etc/rabbitmq/rabbitmq-env.conf 0644 "# Managed by Outfitter (rabbitmq bundle); changes are overwritten on reinstall.
NODENAME=rabbit@localhost
NODE_IP_ADDRESS=$address
NODE_PORT=5672"; then changed=1; fi

progress 10 "Installing RabbitMQ"
# Data an uninstall kept, or parked and did not put back when it was interrupted.
if [ -d /var/lib/rabbitmq.outfitter-kept ] && [ ! -e /var/lib/rabbitmq ]; then mv /var/lib/rabbitmq.outfitter-kept /var/lib/rabbitmq; fi
apt_install rabbitmq-server
# Kept data belonged to the rabbitmq user of an earlier install, whose id may differ.
if [[ $(stat -c %U /var/lib/rabbitmq) != rabbitmq ]]; then
  chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
  changed=1
fi

progress 40 "Starting the node"
systemctl enable rabbitmq-server >/dev/null 2>&1 || true
if [ "$changed" -eq 1 ] || ! systemctl is-active --quiet rabbitmq-server; then
  systemctl restart rabbitmq-server || die 3 "RabbitMQ did not start; see journalctl -u rabbitmq-server"
fi
rabbitmqctl -q --timeout 120 await_startup >/dev/null 2>&1 || die 3 "RabbitMQ did not finish starting"

progress 60 "Creating the virtual host $vhost"
vhosts=$(rabbitmqctl -q list_vhosts name) || die 3 "rabbitmqctl list_vhosts failed"
grep -qxF -- "$vhost" <<<"$vhosts" || rabbitmqctl -q add_vhost "$vhost" >/dev/null || die 3 "could not add the virtual host $vhost"

progress 70 "Creating the user $user"
# list_users takes no column names: the first column of each line is the user.
users=$(rabbitmqctl -q list_users --no-table-headers) || die 3 "rabbitmqctl list_users failed"
users=$(cut -f1 <<<"$users")
if grep -qxF -- "$user" <<<"$users"; then
  printf '%s\n' "$password" | rabbitmqctl -q change_password "$user" >/dev/null || die 3 "could not set the password of $user"
else
  printf '%s\n' "$password" | rabbitmqctl -q add_user "$user" >/dev/null || die 3 "could not add the user $user"
fi
rabbitmqctl -q set_permissions -p "$vhost" "$user" '.*' '.*' '.*' >/dev/null || die 3 "could not grant $user rights on $vhost"
if grep -qxF guest <<<"$users"; then rabbitmqctl -q delete_user guest >/dev/null || die 3 "could not delete the guest user"; fi

progress 90 "Checking the user signs in"
rabbitmq-diagnostics -q check_port_listener 5672 >/dev/null 2>&1 || die 3 "RabbitMQ does not listen on 5672"
progress 100 "RabbitMQ serves $vhost to $user on $address:5672"
