#!/usr/bin/env bash
# Removes USERNAME: the account, its group, its sudoers rule and its home directory. The
# home stays only with KEEP_HOME=true and PURGE=false (handed to root, so that nobody who
# later gets the same uid reads it). sudo, when this app installed it, goes when no user of
# this app needs it any more.
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
[[ $user =~ ^[a-z][a-z0-9_-]{0,31}$ ]] || die 1 "username must be lowercase letters, digits, - and _, starting with a letter"
state=/var/lib/outfitter/system-user

progress 10 "Removing the sudo rule of $user"
rm -f "/etc/sudoers.d/outfitter-$user"

if id -u "$user" >/dev/null 2>&1 && [ -f "$state/$user" ]; then
  progress 30 "Stopping the processes of $user"
  # /proc rather than pkill: minimal systems have no procps.
  while IFS= read -r proc; do kill -KILL "${proc#/proc/}" 2>/dev/null || true; done < <(
    find /proc -mindepth 1 -maxdepth 1 -regex '/proc/[0-9]+' -user "$user" 2>/dev/null || true
  )
  home=$(getent passwd "$user" | cut -d: -f6)
  progress 50 "Removing the user $user"
  if [ "${KEEP_HOME:-false}" = true ] && [ "${PURGE:-false}" != true ]; then
    userdel "$user" 2>&1 || die 2 "userdel $user failed"
    [ -d "$home" ] && chown -R root:root "$home"
  else
    # userdel -r warns (exit 12) when the mail spool is missing; the home is removed anyway.
    userdel -r "$user" 2>&1 || [ ! -d "$home" ] || die 2 "userdel -r $user failed"
  fi
fi
if getent group "$user" >/dev/null && [ -f "$state/$user" ]; then groupdel "$user" || die 2 "groupdel $user failed"; fi
rm -f "$state/$user"

others=$(find "$state" -mindepth 1 -maxdepth 1 ! -name sudo-installed 2>/dev/null || true)
if [ -z "$others" ] && [ -f "$state/sudo-installed" ]; then
  progress 80 "Removing sudo, which this app installed"
  # sudo's prerm refuses while root has no password; this app installed it, and root had
  # its way in before that.
  SUDO_FORCE_REMOVE=yes apt_purge sudo
  rm -f "$state/sudo-installed"
fi
[ -z "$others" ] && rm -rf "$state" && { rmdir /var/lib/outfitter 2>/dev/null || true; }
progress 100 "User $user is removed"
