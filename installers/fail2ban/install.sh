#!/usr/bin/env bash
# Installs Fail2ban with the sshd jail (journal backend, iptables bans): MAX_RETRY failures
# within FIND_MINUTES ban an address for BAN_MINUTES; IGNORE_IPS are never banned. The jail
# lives in /etc/fail2ban/jail.d/outfitter-sshd.local, read after the distribution's files.
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

retry=${MAX_RETRY:-5}
find=${FIND_MINUTES:-10}
ban=${BAN_MINUTES:-60}
ignore=${IGNORE_IPS:-}
number() {
  if ! [[ $2 =~ ^[0-9]{1,6}$ ]] || [ "$2" -lt 1 ] || [ "$2" -gt "$3" ]; then die 1 "$1 must be a number from 1 to $3"; fi
}
number max_retry "$retry" 100
number find_minutes "$find" 1440
number ban_minutes "$ban" 525600
[[ -z $ignore || $ignore =~ ^[0-9a-fA-F:.]+(/[0-9]{1,3})?(\ [0-9a-fA-F:.]+(/[0-9]{1,3})?)*$ ]] ||
  die 1 "ignore_ips must be addresses or networks separated by spaces"

progress 10 "Installing Fail2ban"
# python3-systemd is its journal reader; iptables carries out the bans. Those this install
# adds are marked automatic, so that the uninstall's autoremove takes them only when
# nothing else needs them; ones that were there already stay as they were.
helpers=()
for pkg in python3-systemd iptables; do is_installed "$pkg" || helpers+=("$pkg"); done
apt_install fail2ban python3-systemd iptables
if [ "${#helpers[@]}" -gt 0 ]; then apt-mark auto "${helpers[@]}" >/dev/null || die 2 "apt-mark auto ${helpers[*]} failed"; fi

progress 40 "Writing the sshd jail"
changed=0
if write_file /etc/fail2ban/jail.d/outfitter-sshd.local 0644 "# Managed by Outfitter (fail2ban bundle); changes are overwritten on reinstall.
[DEFAULT]
banaction = iptables-multiport
banaction_allports = iptables-allports

[sshd]
enabled = true
backend = systemd
journalmatch = _SYSTEMD_UNIT=ssh.service + _SYSTEMD_UNIT=sshd.service + _COMM=sshd
maxretry = $retry
findtime = ${find}m
bantime = ${ban}m
ignoreip = 127.0.0.1/8 ::1${ignore:+ $ignore}"; then changed=1; fi
fail2ban-client -t >/dev/null 2>&1 || die 3 "fail2ban-client -t rejects the configuration"

progress 70 "Applying the configuration"
systemctl enable fail2ban >/dev/null 2>&1 || true
if [ "$changed" -eq 1 ] || ! systemctl is-active --quiet fail2ban; then
  systemctl restart fail2ban || die 3 "Fail2ban did not start; see journalctl -u fail2ban"
fi
progress 90 "Waiting for the sshd jail"
for _ in $(seq 1 30); do
  fail2ban-client status sshd >/dev/null 2>&1 && break
  sleep 1
done
fail2ban-client status sshd >/dev/null 2>&1 || die 3 "the sshd jail is not running; see journalctl -u fail2ban"
progress 100 "Fail2ban bans after $retry failures in ${find} min, for ${ban} min"
