#!/usr/bin/env bash
# Sets up the WireGuard interface INTERFACE_NAME (wg-quick@INTERFACE_NAME, enabled at boot)
# at TUNNEL_ADDRESS on UDP LISTEN_PORT with the PEERS given. The private key is PRIVATE_KEY,
# or one generated once into /etc/wireguard/<interface>.key. A running tunnel takes a change
# of peers, port or key with `wg syncconf` (the unit's reload) and is not dropped; a change
# of address restarts it. Without a WireGuard kernel module it runs wireguard-go (userspace,
# needs /dev/net/tun) through a drop-in of the unit.
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
port=${LISTEN_PORT:-51820}
address=${TUNNEL_ADDRESS:-}
key_input=${PRIVATE_KEY:-}
peers=${PEERS:-}
key_re='^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$'

[[ $iface =~ ^[A-Za-z][A-Za-z0-9_.-]{0,14}$ ]] ||
  die 1 "interface_name must be a letter, then up to 14 letters, digits, _ . -"
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die 1 "listen_port must be 1-65535"; fi
# cidr_ok CIDR [no-default]: an IPv4 or IPv6 address with a prefix length in range; with a
# second argument, a /0 (every address) is refused.
cidr_ok() {
  local cidr=$1 ip len octet
  [[ $cidr =~ ^([0-9A-Fa-f.:]+)/([0-9]{1,3})$ ]] || return 1
  ip=${BASH_REMATCH[1]}
  len=$((10#${BASH_REMATCH[2]}))
  if [ -n "${2:-}" ] && [ "$len" -eq 0 ]; then return 1; fi
  if [[ $ip =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]]; then
    for octet in "${BASH_REMATCH[@]:1}"; do [ "$((10#$octet))" -le 255 ] || return 1; done
    [ "$len" -le 32 ]
  else
    [[ $ip == *:* && $ip =~ ^[0-9A-Fa-f:]*(:[0-9]{1,3}(\.[0-9]{1,3}){3})?$ ]] && [ "$len" -le 128 ]
  fi
}
IFS=, read -r -a addresses <<<"$address"
[ "${#addresses[@]}" -gt 0 ] || die 1 "tunnel_address is required, for example 10.44.0.1/24"
for a in "${addresses[@]}"; do
  cidr_ok "$a" || die 1 "tunnel_address: $a is not an address with a prefix length, like 10.44.0.1/24"
done
[[ -z $key_input || $key_input =~ $key_re ]] || die 1 "private_key is not a WireGuard key (44 characters of base64, as wg genkey prints)"

# The peers: "KEY ALLOWED_IPS [ENDPOINT|-] [KEEPALIVE]" separated by ";".
peer_blocks=""
peer_keys=()
endpoint_hosts=()
IFS=';' read -r -a entries <<<"$peers"
for entry in "${entries[@]}"; do
  read -r -a f <<<"$entry"
  [ "${#f[@]}" -eq 0 ] && continue
  n=$((${#peer_keys[@]} + 1))
  [ "${#f[@]}" -ge 2 ] || die 1 "peers: peer $n needs at least a public key and its allowed IPs"
  [ "${#f[@]}" -le 4 ] || die 1 "peers: peer $n has more than 4 fields (KEY ALLOWED_IPS [ENDPOINT] [KEEPALIVE])"
  pub=${f[0]} allowed=${f[1]} endpoint="" keepalive=""
  [[ $pub =~ $key_re ]] || die 1 "peers: peer $n's public key is not a WireGuard key (44 characters of base64)"
  for k in "${peer_keys[@]}"; do [ "$k" != "$pub" ] || die 1 "peers: the public key of peer $n is listed twice"; done
  IFS=, read -r -a nets <<<"$allowed"
  [ "${#nets[@]}" -gt 0 ] || die 1 "peers: peer $n has no allowed IPs"
  for net in "${nets[@]}"; do
    cidr_ok "$net" no-default ||
      die 1 "peers: peer $n: allowed IP $net is not a network like 10.44.0.2/32 (and not a /0, which would route all of this server's traffic to the peer)"
  done
  if [ "${#f[@]}" -eq 3 ] && [[ ${f[2]} =~ ^[0-9]+$ ]]; then
    keepalive=${f[2]}
  elif [ "${#f[@]}" -ge 3 ]; then
    endpoint=${f[2]}
    keepalive=${f[3]:-}
  fi
  if [ "$endpoint" = - ]; then endpoint=""; fi
  if [ -n "$endpoint" ]; then
    [[ $endpoint =~ ^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$ ]] ||
      die 1 "peers: peer $n's endpoint $endpoint is not host:port or [IPv6]:port"
    eport=$((10#${BASH_REMATCH[3]}))
    if [ "$eport" -lt 1 ] || [ "$eport" -gt 65535 ]; then die 1 "peers: peer $n's endpoint port is not 1-65535"; fi
  fi
  if [ -n "$keepalive" ]; then
    if ! [[ $keepalive =~ ^[0-9]{1,5}$ ]] || [ "$((10#$keepalive))" -lt 1 ] || [ "$((10#$keepalive))" -gt 65535 ]; then
      die 1 "peers: peer $n's keepalive must be 1-65535 seconds"
    fi
    keepalive=$((10#$keepalive))
  fi
  if [ -n "$endpoint" ] && [[ ${endpoint%:*} =~ [A-Za-z] ]] && [[ ${endpoint:0:1} != "[" ]]; then
    endpoint_hosts+=("${endpoint%:*}")
  fi
  peer_keys+=("$pub")
  peer_blocks+=$'\n'"[Peer]"$'\n'"PublicKey = $pub"$'\n'"AllowedIPs = $allowed"$'\n'
  if [ -n "$endpoint" ]; then peer_blocks+="Endpoint = $endpoint"$'\n'; fi
  if [ -n "$keepalive" ]; then peer_blocks+="PersistentKeepalive = $keepalive"$'\n'; fi
done

conf=/etc/wireguard/$iface.conf
keyfile=/etc/wireguard/$iface.key
unit=wg-quick@$iface
dropin_dir=/etc/systemd/system/$unit.service.d
if [ -f "$conf" ] && [[ $(head -n 1 "$conf") != "$header" ]]; then
  die 3 "$conf exists and was not written by this app; move it away or choose another interface_name"
fi

progress 10 "Installing wireguard-tools"
# iproute2 (ip) is what wg-quick drives; if this install adds it, it is marked automatic so
# that the uninstall's autoremove takes it only when nothing else needs it.
helpers=()
if ! is_installed iproute2; then helpers+=(iproute2); fi
apt_install wireguard-tools iproute2
if [ "${#helpers[@]}" -gt 0 ]; then apt-mark auto "${helpers[@]}" >/dev/null || die 2 "apt-mark auto ${helpers[*]} failed"; fi
install -d -m 0700 /etc/wireguard

progress 25 "Looking for WireGuard in the kernel"
kernel_wireguard() {
  [ -d /sys/module/wireguard ] && return 0
  ip link add oc-wgprobe0 type wireguard 2>/dev/null || return 1
  ip link delete oc-wgprobe0 2>/dev/null || true
}
dropin_changed=0
if kernel_wireguard; then
  implementation="the kernel module"
  if [ -f "$dropin_dir/outfitter-userspace.conf" ]; then
    rm -f "$dropin_dir/outfitter-userspace.conf"
    rmdir "$dropin_dir" 2>/dev/null || true
    dropin_changed=1
  fi
else
  implementation="wireguard-go (userspace; this kernel has no WireGuard module)"
  [ -c /dev/net/tun ] ||
    die 3 "this kernel has no WireGuard module and /dev/net/tun is missing, which wireguard-go needs (a container must be given /dev/net/tun)"
  (exec 3<>/dev/net/tun) 2>/dev/null ||
    die 3 "this kernel has no WireGuard module and /dev/net/tun cannot be opened, which wireguard-go needs (a container must be allowed the TUN device)"
  progress 30 "Installing wireguard-go"
  apt_install wireguard-go
  mkdir -p "$dropin_dir"
  if write_file "$dropin_dir/outfitter-userspace.conf" 0644 "$header
# This kernel has no WireGuard module: wg-quick runs the userspace implementation.
[Service]
Environment=WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go"; then dropin_changed=1; fi
fi
if [ "$dropin_changed" -eq 1 ]; then systemctl daemon-reload; fi

progress 40 "Taking over from an earlier interface name"
# A change of interface_name: the tunnel this app set up under another name goes, and its
# generated key comes along (this end keeps its identity).
shopt -s nullglob
for other_conf in /etc/wireguard/*.conf; do
  other=$(basename "$other_conf" .conf)
  [ "$other" != "$iface" ] || continue
  [[ $(head -n 1 "$other_conf") == "$header" ]] || continue
  systemctl disable --now "wg-quick@$other" >/dev/null 2>&1 || true
  systemctl reset-failed "wg-quick@$other.service" >/dev/null 2>&1 || true
  rm -f "$other_conf" "/etc/systemd/system/wg-quick@$other.service.d/outfitter-userspace.conf"
  rmdir "/etc/systemd/system/wg-quick@$other.service.d" 2>/dev/null || true
  if [ -f "/etc/wireguard/$other.key" ] && [ ! -e "$keyfile" ]; then mv "/etc/wireguard/$other.key" "$keyfile"; fi
  systemctl daemon-reload
done
shopt -u nullglob

progress 50 "Preparing the private key"
if [ -n "$key_input" ]; then
  private_key=$key_input
else
  if ! [ -s "$keyfile" ]; then
    (umask 077 && wg genkey >"$keyfile.new") || die 3 "wg genkey failed"
    mv -f "$keyfile.new" "$keyfile"
  fi
  chmod 0600 "$keyfile"
  private_key=$(<"$keyfile")
  [[ $private_key =~ $key_re ]] || die 3 "$keyfile does not hold a WireGuard private key; remove it to have a new one generated"
fi
public_key=$(wg pubkey <<<"$private_key") || die 3 "wg pubkey failed"
for k in "${peer_keys[@]}"; do [ "$k" != "$public_key" ] || die 1 "peers: a peer has this end's own public key"; done

# wg-quick@ retries a name lookup forever (WG_ENDPOINT_RESOLUTION_RETRIES=infinity, for
# boots before DNS is up), and a oneshot unit has no start timeout: an endpoint name that
# does not resolve now would hang the install, so it is refused first.
for host in "${endpoint_hosts[@]}"; do
  getent ahosts "$host" >/dev/null || die 3 "peers: the endpoint host $host does not resolve on this server"
done

progress 60 "Writing $conf"
old_address=""
if [ -f "$conf" ]; then
  while IFS= read -r line; do
    if [[ $line == "Address = "* ]]; then old_address=${line#Address = }; fi
  done <"$conf"
fi
new_address=$(IFS=, && printf '%s' "${addresses[*]}")
config="$header
[Interface]
Address = $new_address
ListenPort = $port
PrivateKey = $private_key
${peer_blocks%$'\n'}"
changed=0
# write_file's temporary file is made by mktemp, mode 0600, before the key goes in.
if write_file "$conf" 0600 "$config"; then changed=1; fi

progress 75 "Bringing the tunnel up"
systemctl enable "$unit" >/dev/null 2>&1 || die 3 "systemctl enable $unit failed"
start_failed() {
  journalctl -u "$unit" -n 20 --no-pager 2>&1 || true
  die 3 "$1; see journalctl -u $unit"
}
if ! systemctl is-active --quiet "$unit" || ! [ -e "/sys/class/net/$iface" ]; then
  systemctl restart "$unit" || start_failed "wg-quick could not bring $iface up"
  applied="started"
elif [ "$dropin_changed" -eq 1 ] || [ "$old_address" != "$new_address" ]; then
  systemctl restart "$unit" || start_failed "wg-quick could not bring $iface up again"
  applied="restarted (its address or implementation changed)"
elif [ "$changed" -eq 1 ]; then
  # wg syncconf: peers, port and key change in place; the tunnel and its sessions stay up.
  systemctl reload "$unit" || start_failed "wg syncconf rejected the new configuration of $iface"
  applied="updated in place with wg syncconf"
else
  applied="unchanged"
fi

progress 90 "Checking the interface"
for _ in $(seq 1 20); do
  wg show "$iface" >/dev/null 2>&1 && break
  sleep 0.5
done
wg show "$iface" >/dev/null 2>&1 || start_failed "wg show $iface fails: the interface is not up"
[ "$(wg show "$iface" listen-port)" = "$port" ] || start_failed "$iface does not listen on UDP port $port"
[ "$(wg show "$iface" public-key)" = "$public_key" ] || start_failed "$iface does not run with this configuration's key"
progress 100 "WireGuard $iface is up ($applied) at $new_address, UDP port $port, ${#peer_keys[@]} peer(s), with $implementation. This end's public key: $public_key"
