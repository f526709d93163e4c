#!/usr/bin/env bash
# Hardens sshd with /etc/ssh/sshd_config.d/00-outfitter-hardening.conf (first in the include
# order, and sshd keeps the first value it reads): no passwords, no keyboard-interactive, no
# root, MAX_AUTH_TRIES attempts, optionally AllowUsers ADMIN_USER. Nothing changes unless
# ADMIN_KEY is in an authorized_keys file of ADMIN_USER under the new settings, ADMIN_USER
# can log in (not root, a real shell), and `sshd -t` accepts the result.
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

user=${ADMIN_USER:-}
key=${ADMIN_KEY:-}
only=${ALLOW_ONLY_ADMIN:-false}
tries=${MAX_AUTH_TRIES:-3}
[[ $user =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die 1 "admin_user must be a user name"
[ "$user" != root ] || die 1 "admin_user cannot be root: root logins are turned off"
key_types='ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|sk-ssh-ed25519@openssh.com|sk-ecdsa-sha2-nistp256@openssh.com'
[[ $key =~ ^($key_types)\ ([A-Za-z0-9+/]+={0,3}) ]] || die 1 "admin_key must be one OpenSSH public key line"
key_type=${BASH_REMATCH[1]}
key_blob=${BASH_REMATCH[2]}
[[ $only == true || $only == false ]] || die 1 "allow_only_admin must be true or false"
if ! [[ $tries =~ ^[0-9]{1,2}$ ]] || [ "$tries" -lt 1 ] || [ "$tries" -gt 10 ]; then die 1 "max_auth_tries must be 1-10"; fi

progress 10 "Checking that $user keeps access"
command -v sshd >/dev/null || die 3 "no OpenSSH server (sshd) is installed"
entry=$(getent passwd "$user") || die 3 "there is no user $user"
IFS=: read -r _ _ uid _ _ home login_shell <<<"$entry"
[ "$uid" -ne 0 ] || die 3 "$user has uid 0, and root logins are turned off"
case $login_shell in
*/nologin | */false | "") die 3 "$user has no login shell ($login_shell)" ;;
esac
shadow=$(getent shadow "$user" | cut -d: -f2)
[[ $shadow != '!'* ]] || die 3 "$user's account is locked (usermod -p '*' $user leaves it key-only)"

drop_in=/etc/ssh/sshd_config.d/00-outfitter-hardening.conf
allow=""
[ "$only" = true ] && allow="AllowUsers $user"
config="# Managed by Outfitter (ssh-hardening bundle); changes are overwritten on reinstall.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
PermitEmptyPasswords no
PubkeyAuthentication yes
MaxAuthTries $tries
${allow}"
mkdir -p /etc/ssh/sshd_config.d
[[ $(cat /etc/ssh/sshd_config) == *$'\nInclude /etc/ssh/sshd_config.d/*.conf'* ]] ||
  die 3 "/etc/ssh/sshd_config does not include /etc/ssh/sshd_config.d/*.conf"

# Everything below is tried on a candidate: the live configuration changes only at the end.
previous=""
[ -f "$drop_in" ] && previous=$(cat "$drop_in")
restore() {
  if [ -n "$previous" ]; then printf '%s\n' "$previous" >"$drop_in"; else rm -f "$drop_in"; fi
}
# sshd -t needs its privilege separation directory, which only a running sshd has made.
mkdir -p /run/sshd
changed=0
if write_file "$drop_in" 0644 "$config"; then changed=1; fi
if ! test_out=$(sshd -t 2>&1); then
  restore
  die 3 "sshd -t rejects the hardened configuration: $test_out"
fi
effective=$(sshd -T -C "user=$user,host=localhost,addr=127.0.0.1" 2>&1) || {
  restore
  die 3 "sshd -T failed: $effective"
}
# The key must be in an authorized_keys file sshd will read for this user.
found=0
files=$(sed -n 's/^authorizedkeysfile //p' <<<"$effective")
for file in $files; do
  file=${file//%h/$home}
  file=${file//%u/$user}
  file=${file//%%/%}
  [[ $file == /* ]] || file=$home/$file
  [ -f "$file" ] || continue
  while read -r line; do
    [[ " $line " == *" $key_type $key_blob "* ]] && found=1
  done <"$file"
done
if [ "$found" -eq 0 ]; then
  restore
  die 3 "the given key is not in an authorized_keys file of $user; refusing, it would lock that key out"
fi
if [[ $effective == *$'\npubkeyauthentication no\n'* ]]; then
  restore
  die 3 "public key logins would still be off for $user"
fi
allowed=$(sed -n 's/^allowusers //p' <<<"$effective")
denied=$(sed -n 's/^denyusers //p' <<<"$effective")
listed() {
  local pattern patterns
  read -r -a patterns <<<"$2"
  for pattern in "${patterns[@]}"; do
    # shellcheck disable=SC2053 # the entries are sshd's patterns, matched as globs
    [[ $1 == ${pattern%%@*} ]] && return 0
  done
  return 1
}
if [ -n "$allowed" ] && ! listed "$user" "$allowed"; then
  restore
  die 3 "$user is not in AllowUsers; refusing, it would lock that key out"
fi
if [ -n "$denied" ] && listed "$user" "$denied"; then
  restore
  die 3 "$user is in DenyUsers; refusing, it would lock that key out"
fi

progress 70 "Reloading sshd"
if [ "$changed" -eq 1 ]; then
  if systemctl is-active --quiet ssh; then
    systemctl reload ssh || {
      restore
      systemctl reload ssh || true
      die 3 "sshd did not reload; the previous configuration is back"
    }
  fi
fi
progress 100 "SSH: no passwords, no root; $user keeps key access"
