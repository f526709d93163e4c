#!/usr/bin/env bash
# Puts the time zone found before the first install back and removes the NTP settings;
# systemd-timesyncd is purged (with its user) when this app installed it. It holds no data.
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

state=/var/lib/outfitter/timezone-and-ntp
progress 10 "Putting the previous time zone back"
if [ -f "$state/previous-timezone" ]; then
  previous=$(cat "$state/previous-timezone")
  if [ -n "$previous" ] && [ -e "/usr/share/zoneinfo/$previous" ]; then
    ln -sfn "/usr/share/zoneinfo/$previous" /etc/localtime
    printf '%s\n' "$previous" >/etc/timezone
  elif [ -z "$previous" ]; then
    rm -f /etc/localtime
  fi
fi
[ -f "$state/no-timezone-file" ] && rm -f /etc/timezone
progress 40 "Removing the NTP settings"
rm -f /etc/systemd/timesyncd.conf.d/outfitter.conf
rmdir /etc/systemd/timesyncd.conf.d 2>/dev/null || true
if [ -f "$state/installed-timesyncd" ]; then
  progress 60 "Purging systemd-timesyncd, which this app installed"
  systemctl disable --now systemd-timesyncd >/dev/null 2>&1 || true
  apt_purge systemd-timesyncd
  if [ -f "$state/created-timesync-user" ] && id systemd-timesync >/dev/null 2>&1; then userdel systemd-timesync || die 2 "userdel systemd-timesync failed"; fi
  if [ -f "$state/created-timesync-user" ] && getent group systemd-timesync >/dev/null; then groupdel systemd-timesync || die 2 "groupdel systemd-timesync failed"; fi
  systemctl reset-failed systemd-timesyncd.service >/dev/null 2>&1 || true
elif systemctl is-active --quiet systemd-timesyncd; then
  systemctl restart systemd-timesyncd || true
fi
if [ -f "$state/installed-tzdata" ]; then
  rm -f /etc/localtime /etc/timezone
  apt_purge tzdata
fi
rm -rf "$state"
rmdir /var/lib/outfitter 2>/dev/null || true
progress 100 "Time settings removed"
