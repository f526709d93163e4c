#!/usr/bin/env bash
# Creates /swapfile of SIZE_MB, turns it on and lists it in /etc/fstab. A swap file of
# another size is turned off and made again. Exit 3 inside a container (swap is the host's)
# and when the disk lacks room.
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

size=${SIZE_MB:-1024}
if ! [[ $size =~ ^[0-9]{2,6}$ ]] || [ "$size" -lt 64 ] || [ "$size" -gt 262144 ]; then die 1 "size_mb must be a number from 64 to 262144"; fi
file=/swapfile
fstab_line="$file none swap sw 0 0"

progress 5 "Checking the system"
if systemd-detect-virt --quiet --container; then
  die 3 "this is a container ($(systemd-detect-virt --container)): its memory and swap are the host's; nothing was changed"
fi
active() { [[ $'\n'$(swapon --show=NAME --noheadings 2>/dev/null)$'\n' == *$'\n'"$file"$'\n'* ]]; }

if [ -f "$file" ] && [ "$(stat -c %s "$file")" -ne $((size * 1024 * 1024)) ]; then
  progress 10 "Turning off the swap file of the old size"
  if active; then swapoff "$file" || die 3 "swapoff $file failed (not enough free memory to take its pages back?)"; fi
  rm -f "$file"
fi

if [ ! -f "$file" ]; then
  progress 20 "Creating a ${size} MB swap file"
  free_kb=$(df --output=avail -k / | tail -n 1 | tr -d ' ')
  [ "$free_kb" -gt $((size * 1024 * 11 / 10)) ] || die 3 "the disk has $((free_kb / 1024)) MB free, too little for a ${size} MB swap file"
  # fallocate makes a file with holes on some filesystems, which swapon refuses; dd then.
  if ! fallocate -l "${size}M" "$file.new" 2>/dev/null; then
    dd if=/dev/zero of="$file.new" bs=1M count="$size" status=none || die 3 "could not write $file"
  fi
  chmod 0600 "$file.new"
  mkswap "$file.new" >/dev/null || {
    rm -f "$file.new"
    die 3 "mkswap failed"
  }
  mv "$file.new" "$file"
fi
chmod 0600 "$file"

progress 70 "Turning the swap file on"
if ! active; then
  if ! swapon "$file" 2>/dev/null; then
    # A filesystem whose fallocate leaves holes: write the file out and try once more.
    rm -f "$file"
    dd if=/dev/zero of="$file" bs=1M count="$size" status=none || die 3 "could not write $file"
    chmod 0600 "$file"
    mkswap "$file" >/dev/null || die 3 "mkswap failed"
    swapon "$file" || die 3 "swapon $file failed: this filesystem cannot hold swap"
  fi
fi

progress 90 "Adding it to /etc/fstab"
grep -qxF "$fstab_line" /etc/fstab || printf '%s\n' "$fstab_line" >>/etc/fstab
progress 100 "${size} MB of swap on $file"
