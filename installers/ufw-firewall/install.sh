#!/usr/bin/env bash
# Turns on UFW: SSHD_PORT always allowed (rate-limited), ALLOWED_TCP_PORTS open, everything
# else incoming dropped (INCOMING_POLICY deny) or refused (reject); outgoing allowed.
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

sshd_port=${SSHD_PORT:-22}
ports=${ALLOWED_TCP_PORTS:-}
policy=${INCOMING_POLICY:-deny}
valid_port() { [[ $1 =~ ^[0-9]{1,5}$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }
valid_port "$sshd_port" || die 1 "sshd_port must be 1-65535"
[[ $policy == deny || $policy == reject ]] || die 1 "incoming_policy must be deny or reject"
[[ -z $ports || $ports =~ ^[0-9]{1,5}(:[0-9]{1,5})?(,[0-9]{1,5}(:[0-9]{1,5})?)*$ ]] ||
  die 1 "allowed_tcp_ports must look like 80,443,8000:8010"
rules=()
rest=$ports
while [ -n "$rest" ]; do
  item=${rest%%,*}
  if [[ $rest == *,* ]]; then rest=${rest#*,}; else rest=""; fi
  low=${item%%:*}
  high=${item##*:}
  if ! { valid_port "$low" && valid_port "$high" && [ "$low" -le "$high" ]; }; then
    die 1 "allowed_tcp_ports: $item is not a port or a low:high range within 1-65535"
  fi
  rules+=("$item")
done

progress 10 "Installing ufw"
# ufw applies /etc/ufw/sysctl.conf with sysctl (procps), which minimal systems lack.
apt_install ufw procps iptables

progress 40 "Setting the rules"
# SSH first, so that there is no moment with the firewall on and SSH closed.
ufw limit "$sshd_port/tcp" comment 'SSH (Outfitter)' >/dev/null || die 3 "ufw refused the SSH rule"
for rule in "${rules[@]}"; do
  ufw allow "$rule/tcp" comment 'Outfitter' >/dev/null || die 3 "ufw refused the rule $rule/tcp"
done
# Ports this app opened before but that are no longer listed are closed again.
added=$(ufw show added)
while [ -n "$added" ]; do
  line=${added%%$'\n'*}
  if [[ $added == *$'\n'* ]]; then added=${added#*$'\n'}; else added=""; fi
  if [[ $line =~ ^ufw\ allow\ ([0-9:]+)/tcp\ comment\ \'Outfitter\'$ ]]; then
    existing=${BASH_REMATCH[1]}
    keep=0
    for rule in "${rules[@]}"; do [ "$rule" == "$existing" ] && keep=1; done
    [ "$keep" -eq 1 ] || ufw --force delete allow "$existing/tcp" >/dev/null || die 3 "could not remove the rule $existing/tcp"
  fi
done
ufw default "$policy" incoming >/dev/null || die 3 "ufw refused the incoming policy"
ufw default allow outgoing >/dev/null || die 3 "ufw refused the outgoing policy"

progress 80 "Enabling the firewall"
ufw --force enable >/dev/null || die 3 "ufw could not enable the firewall (kernel without netfilter?)"
systemctl enable ufw >/dev/null 2>&1 || true
[[ $(ufw status verbose) == "Status: active"* ]] || die 3 "ufw reports the firewall inactive"

progress 100 "Firewall on: SSH $sshd_port and ${ports:-no other ports} open"
