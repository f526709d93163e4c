#!/usr/bin/env bash
# Creates USERNAME with AUTHORIZED_KEY as the only key in ~/.ssh/authorized_keys and no
# usable password; GRANT_SUDO=true adds a sudoers rule (/etc/sudoers.d/outfitter-USERNAME).
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

user=${USERNAME:-}
key=${AUTHORIZED_KEY:-}
sudo=${GRANT_SUDO:-false}
[[ $user =~ ^[a-z][a-z0-9_-]{0,31}$ ]] || die 1 "username must be lowercase letters, digits, - and _, starting with a letter"
key_types='ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|sk-ssh-ed25519@openssh.com|sk-ecdsa-sha2-nistp256@openssh.com'
[[ $key =~ ^($key_types)\ [A-Za-z0-9+/]+={0,3}(\ [A-Za-z0-9@._+-]{1,100})?$ ]] || die 1 "authorized_key must be one OpenSSH public key line"
[[ $sudo == true || $sudo == false ]] || die 1 "grant_sudo must be true or false"
sudoers=/etc/sudoers.d/outfitter-$user
state=/var/lib/outfitter/system-user

progress 10 "Creating the user $user"
if id -u "$user" >/dev/null 2>&1; then
  [ -f "$state/$user" ] || die 3 "a user $user exists that this app did not create; choose another name"
else
  # A kept home (keep_home) is adopted: useradd does not copy the skeleton over it.
  useradd --create-home --user-group --shell /bin/bash --comment "Outfitter system-user" "$user" 2>&1 ||
    die 3 "useradd $user failed"
  mkdir -p "$state"
  touch "$state/$user"
fi
# No password can ever log in; key logins still work ('!' would lock the account for sshd).
usermod -p '*' "$user"
home=$(getent passwd "$user" | cut -d: -f6)
chown -R "$user:$user" "$home"

progress 40 "Installing the SSH key"
install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
write_file "$home/.ssh/authorized_keys" 0600 "$key" || true
chown "$user:$user" "$home/.ssh/authorized_keys"

progress 70 "Setting sudo rights"
if [ "$sudo" = true ]; then
  if ! is_installed sudo; then
    apt_install sudo
    touch "$state/sudo-installed"
  fi
  tmp=$(mktemp)
  printf '# Managed by Outfitter (system-user bundle)\n%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$user" >"$tmp"
  visudo -cqf "$tmp" || {
    rm -f "$tmp"
    die 3 "visudo rejects the sudoers rule for $user"
  }
  if ! cmp -s "$tmp" "$sudoers"; then install -m 0440 "$tmp" "$sudoers"; fi
  rm -f "$tmp"
else
  rm -f "$sudoers"
fi

if [ "$sudo" = true ]; then
  progress 100 "User $user signs in with the given key and may use sudo"
else
  progress 100 "User $user signs in with the given key"
fi
