#!/usr/bin/env bash
# Removes the site SITE_NAME: every nginx vhost it wrote (nginx reloads; nginx itself
# belongs to the nginx app and stays), /srv/SITE_NAME/releases and current, and its state in
# /var/lib/outfitter/git-deploy. The releases are checkouts of the repository, not data, so
# they go either way; anything else someone put in /srv/SITE_NAME stays unless PURGE=true,
# which deletes the whole directory. With the app's last site go the packages it installed
# itself (git, and openssh-client or ca-certificates when it added them), unless something
# installed since depends on them: those are marked automatically installed instead.
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

readonly state_root=/var/lib/outfitter/git-deploy
site=${SITE_NAME:-}
[[ $site =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die 1 "site_name must be a lowercase letter, then up to 30 lowercase letters, digits or -"
base="/srv/$site"
state="$state_root/sites/$site"
header="# Managed by Outfitter (git-deploy site $site); changes are overwritten on every deploy."

progress 10 "Removing the nginx site of $site"
# Every vhost this site wrote, under whichever domain it had.
removed=0
for vhost in /etc/nginx/sites-available/*.conf; do
  [ -f "$vhost" ] || continue
  [[ $(head -n 1 "$vhost") == "$header" ]] || continue
  rm -f "$vhost" "/etc/nginx/sites-enabled/${vhost##*/}"
  removed=1
done
if [ "$removed" -eq 1 ] && systemctl is-active --quiet nginx; then
  nginx -t 2>&1 || die 3 "nginx -t rejects the remaining configuration"
  systemctl reload nginx || die 3 "nginx failed to reload; see journalctl -u nginx"
fi

progress 30 "Removing the releases of $site"
rm -rf "$base/current" "$base/current.new" "$base/releases"
if [ -d "$base" ]; then find "$base" -mindepth 1 -maxdepth 1 -name '.incoming.*' -exec rm -rf {} +; fi
if [ "${PURGE:-false}" = true ]; then
  progress 40 "Deleting $base"
  rm -rf "$base"
elif [ -d "$base" ]; then
  rmdir "$base" 2>/dev/null || progress 40 "Keeping the other files in $base (PURGE deletes them)"
fi
rm -rf "$state"

# The packages this app installed go with its last site.
if [ -n "$(find "$state_root/sites" -mindepth 1 -maxdepth 1 -type d -print -quit 2>/dev/null)" ]; then
  progress 60 "Other sites of this app are left: keeping git"
else
  marked=()
  for mark in "$state_root"/packages/*; do [ -e "$mark" ] && marked+=("${mark##*/}"); done
  purge=()
  for pkg in "${marked[@]}"; do
    is_installed "$pkg" || continue
    # A package that something installed since depends on stays, left to apt as automatic.
    sim=$(apt-get -s purge "$pkg" 2>/dev/null) || sim=""
    others=$(awk -v p="$pkg" '$1 == "Purg" && $2 != p' <<<"$sim")
    if [ -z "$sim" ] || [ -n "$others" ]; then
      progress 60 "Keeping $pkg, which other packages need (marked automatically installed)"
      apt-mark auto "$pkg" >/dev/null || die 2 "apt-mark auto $pkg failed"
    else
      purge+=("$pkg")
    fi
  done
  if [ "${#purge[@]}" -gt 0 ]; then
    progress 70 "Removing ${purge[*]}, installed by this app"
    apt_purge "${purge[@]}"
  fi
  rm -rf "$state_root"
  rmdir /var/lib/outfitter 2>/dev/null || true
fi
progress 100 "The site $site is removed"
