#!/usr/bin/env bash
# Removes what the nginx bundle installed. Its own: the vhosts it wrote (marked "Managed by
# Outfitter (nginx bundle)"), and the nginx package itself once no other site is enabled
# (another bundle's or the administrator's site keeps nginx installed and running).
# Site files under /var/www/$SERVER_NAME stay unless PURGE=true.
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

progress 10 "Removing the sites of the nginx bundle"
for vhost in /etc/nginx/sites-available/*.conf; do
  [ -f "$vhost" ] || continue
  [[ $(head -n 1 "$vhost") == "# Managed by Outfitter (nginx bundle)"* ]] || continue
  rm -f "$vhost" "/etc/nginx/sites-enabled/${vhost##*/}"
done

others=()
if [ -d /etc/nginx/sites-enabled ]; then
  while IFS= read -r site; do others+=("$site"); done < <(find /etc/nginx/sites-enabled -mindepth 1 -maxdepth 1 ! -name default -printf '%f\n')
fi
if [ "${#others[@]}" -gt 0 ]; then
  progress 60 "nginx still serves ${#others[@]} other sites: keeping it"
  if systemctl is-active --quiet nginx; then
    nginx -t 2>&1 || die 3 "nginx -t rejects the remaining configuration"
    systemctl reload nginx || die 3 "nginx failed to reload; see journalctl -u nginx"
  fi
else
  progress 50 "Removing nginx"
  systemctl disable --now nginx >/dev/null 2>&1 || true
  rm -f /etc/nginx/snippets/outfitter-acme.conf
  apt_purge nginx nginx-common
  systemctl reset-failed nginx.service >/dev/null 2>&1 || true
fi

if [ "${PURGE:-false}" = true ]; then
  progress 80 "Deleting the site files of $SERVER_NAME"
  rm -rf "/var/www/$SERVER_NAME"
  rmdir /var/lib/outfitter/acme /var/lib/outfitter 2>/dev/null || true
fi
progress 100 "nginx bundle removed"
