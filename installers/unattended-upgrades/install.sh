#!/usr/bin/env bash
# Installs unattended-upgrades and writes /etc/apt/apt.conf.d/52outfitter-unattended-upgrades
# (read after the package's 50unattended-upgrades, so its settings win): daily list refresh
# and upgrade, the origins of UPDATES, AUTO_REBOOT at REBOOT_TIME, REMOVE_UNUSED.
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

updates=${UPDATES:-security}
reboot=${AUTO_REBOOT:-false}
reboot_time=${REBOOT_TIME:-04:00}
remove=${REMOVE_UNUSED:-true}
[[ $updates == security || $updates == stable ]] || die 1 "updates must be security or stable"
[[ $reboot == true || $reboot == false ]] || die 1 "auto_reboot must be true or false"
[[ $remove == true || $remove == false ]] || die 1 "remove_unused must be true or false"
[[ $reboot_time =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]] || die 1 "reboot_time must be HH:MM"

progress 10 "Installing unattended-upgrades"
apt_install unattended-upgrades

progress 50 "Writing the policy"
# shellcheck disable=SC2016 # ${distro_codename} is apt's variable, not the shell's
origins='        "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";'
# shellcheck disable=SC2016 # ${distro_codename} is apt's variable, not the shell's
if [ "$updates" = stable ]; then
  origins+=$'\n''        "origin=Debian,codename=${distro_codename},label=Debian";'
  origins+=$'\n''        "origin=Debian,codename=${distro_codename}-updates";'
fi
# '#clear' drops the package's own origins list, so that ours is the whole list.
write_file /etc/apt/apt.conf.d/52outfitter-unattended-upgrades 0644 "// Managed by Outfitter (unattended-upgrades bundle); changes are overwritten on reinstall.
APT::Periodic::Update-Package-Lists \"1\";
APT::Periodic::Unattended-Upgrade \"1\";
APT::Periodic::AutocleanInterval \"7\";
#clear Unattended-Upgrade::Origins-Pattern;
Unattended-Upgrade::Origins-Pattern {
$origins
};
Unattended-Upgrade::Automatic-Reboot \"$reboot\";
Unattended-Upgrade::Automatic-Reboot-Time \"$reboot_time\";
Unattended-Upgrade::Remove-Unused-Dependencies \"$remove\";" || true

progress 70 "Checking the policy"
apt-config dump >/dev/null 2>&1 || die 3 "apt-config rejects /etc/apt/apt.conf.d/52outfitter-unattended-upgrades"
systemctl enable --now apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 ||
  die 3 "the apt timers could not be enabled"
dry=$(unattended-upgrade --dry-run 2>&1) || die 3 "unattended-upgrade --dry-run fails: ${dry##*$'\n'}"
progress 100 "Daily $updates updates are on"
