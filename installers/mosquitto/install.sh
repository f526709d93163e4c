#!/usr/bin/env bash
# Installs Mosquitto with one listener (LISTEN_ADDRESS:MQTT_PORT), anonymous clients refused
# and one user (MQTT_USER, MQTT_PASSWORD) in /etc/mosquitto/outfitter.passwd (hashed, 0640).
# The password is hashed in place by `mosquitto_passwd -U`, so it never reaches a command line.
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

user=${MQTT_USER:-}
password=${MQTT_PASSWORD:-}
port=${MQTT_PORT:-1883}
address=${LISTEN_ADDRESS:-127.0.0.1}
[[ $user =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die 1 "mqtt_user may use letters, digits and . _ - only"
[ "${#password}" -ge 12 ] || die 1 "mqtt_password must be at least 12 characters"
[[ $password =~ ^[A-Za-z0-9._~+-]+$ ]] || die 1 "mqtt_password may use letters, digits and . _ ~ + - only"
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die 1 "mqtt_port must be 1-65535"; fi
[[ $address == 127.0.0.1 || $address == 0.0.0.0 ]] || die 1 "listen_address must be 127.0.0.1 or 0.0.0.0"

progress 10 "Installing Mosquitto"
# Retained messages an uninstall kept, or parked and did not put back when interrupted.
if [ -d /var/lib/mosquitto.outfitter-kept ] && [ ! -e /var/lib/mosquitto ]; then
  mv /var/lib/mosquitto.outfitter-kept /var/lib/mosquitto
fi
apt_install mosquitto
chown -R mosquitto:mosquitto /var/lib/mosquitto

progress 40 "Writing the listener and the password file"
changed=0
if write_file /etc/mosquitto/conf.d/outfitter.conf 0644 "# Managed by Outfitter (mosquitto bundle); changes are overwritten on reinstall.
per_listener_settings false
allow_anonymous false
password_file /etc/mosquitto/outfitter.passwd
listener $port $address"; then changed=1; fi
passwd_file=/etc/mosquitto/outfitter.passwd
# Hashes are salted, so the file differs on every run: written whole, then SIGHUP makes the
# broker read it again without dropping clients.
tmp=$(mktemp /etc/mosquitto/outfitter.passwd.XXXXXX)
printf '%s:%s\n' "$user" "$password" >"$tmp"
mosquitto_passwd -U "$tmp" >/dev/null 2>&1 || {
  rm -f "$tmp"
  die 3 "mosquitto_passwd could not hash the password file"
}
chown root:mosquitto "$tmp"
chmod 0640 "$tmp"
mv -f "$tmp" "$passwd_file"

progress 70 "Applying the configuration"
systemctl enable mosquitto >/dev/null 2>&1 || true
if [ "$changed" -eq 1 ] || ! systemctl is-active --quiet mosquitto; then
  systemctl restart mosquitto || die 3 "Mosquitto did not start with the new configuration; see journalctl -u mosquitto"
else
  # The unit's reload is SIGHUP sent with /bin/kill, which minimal systems lack (procps):
  # systemd sends the signal itself.
  systemctl kill --kill-whom=main --signal=HUP mosquitto || die 3 "Mosquitto did not take the new password file"
fi

progress 90 "Waiting for the broker"
# An MQTT 3.1.1 CONNECT without credentials: the broker must answer CONNACK (0x20 0x02).
answers() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" && printf '\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00' >&3 &&
    [ "$(head -c 2 <&3 | od -An -tx1 | tr -d ' ')" = 2002 ]
}
for _ in $(seq 1 30); do
  (answers) 2>/dev/null && break
  sleep 1
done
(answers) 2>/dev/null || die 3 "Mosquitto does not answer MQTT on port $port"
progress 100 "Mosquitto accepts $user on $address:$port"
