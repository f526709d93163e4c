#!/usr/bin/env bash
# Installs Docker Engine (docker.io) and compose; log rotation at LOG_MAX_SIZE_MB; adds the
# comma-separated DOCKER_USERS to the docker group.
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

log_max=${LOG_MAX_SIZE_MB:-20}
users=${DOCKER_USERS:-}
if ! [[ $log_max =~ ^[0-9]{1,5}$ ]] || [ "$log_max" -lt 1 ]; then die 1 "log_max_size_mb must be a number from 1 to 10240"; fi
[[ -z $users || $users =~ ^[a-z_][a-z0-9_-]*(,[a-z_][a-z0-9_-]*)*$ ]] || die 1 "docker_users must be comma-separated user names"
rest=$users
while [ -n "$rest" ]; do
  user=${rest%%,*}
  if [[ $rest == *,* ]]; then rest=${rest#*,}; else rest=""; fi
  id "$user" >/dev/null 2>&1 || die 1 "docker_users: there is no user $user on this server"
done

progress 10 "Installing Docker Engine"
apt_quiet update >/dev/null 2>&1 || true
# Debian 12 ships compose as docker-compose (v1); Ubuntu 22.04+ has the docker-compose-v2 plugin.
if [[ $(apt-cache policy docker-compose-v2 2>/dev/null) =~ Candidate:\ [^\(] ]]; then compose=docker-compose-v2; else compose=docker-compose; fi
apt_install docker.io "$compose" ca-certificates

progress 60 "Configuring the engine"
daemon_json=/etc/docker/daemon.json
mkdir -p /etc/docker
previous=""
[ -f "$daemon_json" ] && previous=$(cat "$daemon_json")
changed=0
if write_file "$daemon_json" 0644 "{
  \"log-driver\": \"json-file\",
  \"log-opts\": { \"max-size\": \"${log_max}m\", \"max-file\": \"3\" },
  \"live-restore\": true
}"; then changed=1; fi

systemctl enable docker.socket docker.service >/dev/null 2>&1 || true
if [ "$changed" -eq 1 ] || ! systemctl is-active --quiet docker; then
  progress 75 "Restarting Docker"
  if ! systemctl restart docker; then
    if [ -n "$previous" ]; then printf '%s\n' "$previous" >"$daemon_json"; else rm -f "$daemon_json"; fi
    systemctl restart docker || true
    die 3 "Docker did not start with the new daemon.json; the previous one was restored (journalctl -u docker)"
  fi
fi
for _ in $(seq 1 30); do
  docker info >/dev/null 2>&1 && break
  sleep 1
done
docker info >/dev/null 2>&1 || die 3 "the Docker engine does not answer; see journalctl -u docker"

progress 90 "Granting docker access"
rest=$users
while [ -n "$rest" ]; do
  user=${rest%%,*}
  if [[ $rest == *,* ]]; then rest=${rest#*,}; else rest=""; fi
  [[ " $(id -nG "$user") " == *" docker "* ]] || usermod -aG docker "$user"
done

progress 100 "Docker $(docker version --format '{{.Server.Version}}' 2>/dev/null) is running"
