#!/usr/bin/env bash
# Sets the time zone (TIMEZONE: /etc/localtime and /etc/timezone) and has systemd-timesyncd
# follow NTP_SERVERS (/etc/systemd/timesyncd.conf.d/outfitter.conf). The time zone found
# before the first install is remembered, so that the uninstall puts it back.
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

zone=${TIMEZONE:-UTC}
servers=${NTP_SERVERS:-}
[[ $zone =~ ^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$ ]] || die 1 "timezone must be a tz database name such as Europe/Berlin"
[[ $servers =~ ^[A-Za-z0-9.:-]+(\ [A-Za-z0-9.:-]+)*$ ]] || die 1 "ntp_servers must be host names or addresses separated by spaces"
state=/var/lib/outfitter/timezone-and-ntp

progress 10 "Installing tzdata and systemd-timesyncd"
mkdir -p "$state"
# What the first install found, for the uninstall to put back.
if [ ! -f "$state/previous-timezone" ]; then
  previous=$(readlink /etc/localtime 2>/dev/null || true)
  [ -e /etc/timezone ] || touch "$state/no-timezone-file"
  is_installed tzdata || touch "$state/installed-tzdata"
  if ! is_installed systemd-timesyncd; then
    touch "$state/installed-timesyncd"
    id systemd-timesync >/dev/null 2>&1 || touch "$state/created-timesync-user"
  fi
  printf '%s\n' "${previous#*zoneinfo/}" >"$state/previous-timezone"
fi
apt_install tzdata systemd-timesyncd
[ -f "/usr/share/zoneinfo/$zone" ] || die 1 "unknown time zone $zone (no /usr/share/zoneinfo/$zone)"

progress 40 "Setting the time zone to $zone"
[ "$(readlink /etc/localtime 2>/dev/null || true)" = "/usr/share/zoneinfo/$zone" ] ||
  ln -sfn "/usr/share/zoneinfo/$zone" /etc/localtime
write_file /etc/timezone 0644 "$zone" || true

progress 60 "Configuring time synchronisation"
mkdir -p /etc/systemd/timesyncd.conf.d
changed=0
if write_file /etc/systemd/timesyncd.conf.d/outfitter.conf 0644 "# Managed by Outfitter (timezone-and-ntp bundle); changes are overwritten on reinstall.
[Time]
NTP=$servers"; then changed=1; fi
systemctl enable systemd-timesyncd >/dev/null 2>&1 || die 3 "systemd-timesyncd could not be enabled"
if systemd-detect-virt --quiet --container; then
  progress 90 "In a container the host keeps the clock: systemd-timesyncd stays idle"
elif [ "$changed" -eq 1 ] || ! systemctl is-active --quiet systemd-timesyncd; then
  systemctl restart systemd-timesyncd || die 3 "systemd-timesyncd did not start; see journalctl -u systemd-timesyncd"
fi
progress 100 "Time zone $zone; clock follows $servers"
