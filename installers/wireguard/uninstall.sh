#!/usr/bin/env bash
# Removes the WireGuard tunnel: stops and disables wg-quick@<interface>, removes its
# configuration and the wireguard-go drop-in, and purges wireguard-tools and wireguard-go
# (with iproute2 when this app installed it and nothing else needs it). The generated
# private key /etc/wireguard/<interface>.key is this end's identity, which every peer has
# been given: it is kept (the next install takes it up again) unless PURGE=true.
# WireGuard configurations that this app did not write are left alone, and so are the
# packages then, since those tunnels need them.
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

header="# Managed by Outfitter (wireguard bundle); changes are overwritten on reinstall."
iface=${INTERFACE_NAME:-wg0}
purge=${PURGE:-false}
[[ $iface =~ ^[A-Za-z][A-Za-z0-9_.-]{0,14}$ ]] || die 1 "interface_name must be a letter, then up to 14 letters, digits, _ . -"

progress 10 "Stopping the tunnel"
# The interface of the settings, and any other this app set up under an earlier name.
ifaces=("$iface")
foreign=0
shopt -s nullglob
for conf in /etc/wireguard/*.conf; do
  name=$(basename "$conf" .conf)
  if [[ $(head -n 1 "$conf") == "$header" ]]; then
    [ "$name" = "$iface" ] || ifaces+=("$name")
  else
    foreign=1
  fi
done
shopt -u nullglob
for name in "${ifaces[@]}"; do
  systemctl disable --now "wg-quick@$name" >/dev/null 2>&1 || true
  systemctl reset-failed "wg-quick@$name.service" >/dev/null 2>&1 || true
  conf=/etc/wireguard/$name.conf
  if [ -f "$conf" ] && [[ $(head -n 1 "$conf") == "$header" ]]; then rm -f "$conf"; fi
  rm -f "/etc/systemd/system/wg-quick@$name.service.d/outfitter-userspace.conf"
  rmdir "/etc/systemd/system/wg-quick@$name.service.d" 2>/dev/null || true
  if [ "$purge" = true ]; then rm -f "/etc/wireguard/$name.key" "/etc/wireguard/$name.key.new"; fi
done
systemctl daemon-reload

progress 50 "Purging wireguard-tools and wireguard-go"
if [ "$foreign" -eq 1 ]; then
  progress 90 "Keeping wireguard-tools: /etc/wireguard holds configurations this app did not write"
else
  apt_purge wireguard-tools wireguard-go
fi
if [ "$purge" = true ]; then
  rmdir /etc/wireguard 2>/dev/null || true
  progress 100 "WireGuard is removed, with its private key"
else
  progress 100 "WireGuard is removed; the private key stays in /etc/wireguard for the next install (uninstall with purge to delete it)"
fi
