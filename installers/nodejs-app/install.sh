#!/usr/bin/env bash
# Deploys Node.js app APP_NAME from SOURCE (git URL, .tar.gz URL or local path; SOURCE_REF for
# git) to /srv/$APP_NAME/app and runs it as service nodeapp-$APP_NAME on PORT.
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

app=${APP_NAME:-}
source_spec=${SOURCE:-}
ref=${SOURCE_REF:-}
port=${PORT:-3000}
node_env=${NODE_ENV:-production}
start_command=${START_COMMAND:-}
[[ $app =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die 1 "app_name must be lower-case letters, digits and dashes"
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die 1 "port must be 1-65535"; fi
[[ $node_env == production || $node_env == development ]] || die 1 "node_env must be production or development"
[[ -z $ref || $ref =~ ^[A-Za-z0-9._/-]+$ ]] || die 1 "source_ref may use letters, digits and . _ / - only"
[[ -z $start_command || $start_command =~ ^[A-Za-z0-9\ ._/:=@-]+$ ]] || die 1 "start_command has characters that are not allowed"
case "$source_spec" in
*.git | git@* | https://*.git/ | ssh://*) kind=git ;;
http://*.tar.gz | https://*.tar.gz | http://*.tgz | https://*.tgz) kind=archive-url ;;
/*.tar.gz | /*.tgz) kind=archive-file ;;
/*) kind=directory ;;
*) die 1 "source must be a git URL ending in .git, a .tar.gz URL, or an absolute path" ;;
esac
[[ /$source_spec/ == */../* ]] && die 1 "source must not contain .. components"

user="node-$app"
home="/srv/$app"
app_dir="$home/app"
service="nodeapp-$app"

progress 10 "Installing Node.js"
packages=(nodejs)
[ "$kind" == git ] && packages+=(git ca-certificates)
[ "$kind" == archive-url ] && packages+=(curl ca-certificates)
apt_install "${packages[@]}"

progress 25 "Fetching $source_spec"
id "$user" >/dev/null 2>&1 || useradd --system --home-dir "$home" --shell /usr/sbin/nologin "$user"
# An app an uninstall kept belonged to the user of an earlier install, whose id may differ.
if [ -d "$home" ] && [ "$(stat -c %u "$home")" != "$(id -u "$user")" ]; then chown -R "$user:$user" "$home"; fi
mkdir -p "$home"
chown "$user:$user" "$home"
staging=$(mktemp -d "$home/.incoming.XXXXXX")
trap 'rm -rf "$staging"' EXIT
# npm runs as the app's user and must reach the sources inside (mktemp makes it 0700).
chown "$user:$user" "$staging"
case "$kind" in
git)
  clone=(git clone --quiet --depth 1)
  [ -n "$ref" ] && clone+=(--branch "$ref")
  GIT_TERMINAL_PROMPT=0 "${clone[@]}" "$source_spec" "$staging/src" || die 2 "git clone of $source_spec failed"
  fingerprint="git:$(git -C "$staging/src" rev-parse HEAD)"
  rm -rf "$staging/src/.git"
  ;;
archive-url)
  curl -fsSL --retry 3 -o "$staging/src.tar.gz" "$source_spec" || die 2 "downloading $source_spec failed"
  ;;
archive-file)
  [ -f "$source_spec" ] || die 1 "source: there is no file $source_spec"
  cp "$source_spec" "$staging/src.tar.gz"
  ;;
directory)
  [ -d "$source_spec" ] || die 1 "source: there is no directory $source_spec"
  mkdir "$staging/src"
  cp -a "$source_spec/." "$staging/src/"
  ;;
esac
if [ -f "$staging/src.tar.gz" ]; then
  fingerprint="sha256:$(sha256sum "$staging/src.tar.gz" | cut -d' ' -f1)"
  mkdir "$staging/src"
  tar -xzf "$staging/src.tar.gz" -C "$staging/src" --no-same-owner || die 1 "source is not a valid .tar.gz archive"
  # Archives often hold one top directory; the app is inside it.
  entries=("$staging/src"/*)
  if [ "${#entries[@]}" -eq 1 ] && [ -d "${entries[0]}" ] && [ ! -f "$staging/src/package.json" ]; then
    mv "${entries[0]}" "$staging/top" && rm -rf "$staging/src" && mv "$staging/top" "$staging/src"
  fi
fi
if [ "$kind" == directory ]; then
  fingerprint="dir:$(tar -C "$staging/src" --sort=name --mtime=@0 --owner=0 --group=0 -cf - . | sha256sum | cut -d' ' -f1)"
fi
[ -f "$staging/src/package.json" ] || die 1 "source has no package.json at its top"
fingerprint="$fingerprint env:$node_env"

pkg_field() { node -e 'const p = require(process.argv[1]); const v = process.argv[2].split(".").reduce((o, k) => (o == null ? o : o[k]), p); process.stdout.write(v == null ? "" : typeof v === "object" ? String(Object.keys(v).length) : String(v));' "$1/package.json" "$2"; }
needs_npm=0
[ "$(pkg_field "$staging/src" dependencies)" -gt 0 ] 2>/dev/null && needs_npm=1
if [ -z "$start_command" ]; then
  if [ -n "$(pkg_field "$staging/src" scripts.start)" ]; then
    start_command="npm start"
  else
    main=$(pkg_field "$staging/src" main)
    start_command="node ${main:-index.js}"
  fi
fi
[[ $start_command == npm* ]] && needs_npm=1

changed=0
if [ "$(cat "$app_dir/.outfitter-source" 2>/dev/null)" != "$fingerprint" ]; then
  progress 45 "Installing dependencies"
  [ "$needs_npm" -eq 1 ] && apt_install npm
  chown -R "$user:$user" "$staging/src"
  if [ "$(pkg_field "$staging/src" dependencies)" -gt 0 ] 2>/dev/null; then
    npm_cmd=(npm install --no-audit --no-fund)
    [ -f "$staging/src/package-lock.json" ] && npm_cmd=(npm ci --no-audit --no-fund)
    [ "$node_env" == production ] && npm_cmd+=(--omit=dev)
    (cd "$staging/src" && runuser -u "$user" -- env HOME="$home" NODE_ENV="$node_env" "${npm_cmd[@]}") ||
      die 2 "npm could not install the dependencies"
  fi
  printf '%s\n' "$fingerprint" >"$staging/src/.outfitter-source"
  progress 60 "Switching to the new version"
  rm -rf "$home/app.old"
  [ -d "$app_dir" ] && mv "$app_dir" "$home/app.old"
  mv "$staging/src" "$app_dir"
  rm -rf "$home/app.old"
  changed=1
else
  progress 60 "The deployed version is current"
fi

progress 75 "Writing the service $service"
if write_file "/etc/systemd/system/$service.service" 0644 "# Managed by Outfitter (nodejs-app bundle); changes are overwritten on reinstall.
[Unit]
Description=Node.js app $app (Outfitter)
After=network.target

[Service]
Type=simple
User=$user
Group=$user
WorkingDirectory=$app_dir
Environment=NODE_ENV=$node_env
Environment=PORT=$port
ExecStart=/bin/sh -c 'exec $start_command'
Restart=on-failure
RestartSec=2
NoNewPrivileges=true
PrivateTmp=true
ProtectSystem=full

[Install]
WantedBy=multi-user.target"; then changed=1; fi
systemctl daemon-reload
systemctl enable "$service" >/dev/null 2>&1 || die 3 "systemd rejected the unit $service"
if [ "$changed" -eq 1 ] || ! systemctl is-active --quiet "$service"; then
  systemctl restart "$service" || die 3 "the service $service failed to start; see journalctl -u $service"
fi

progress 90 "Waiting for the app on port $port"
for _ in $(seq 1 30); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
  die 3 "the app does not listen on port $port after 30 s; see journalctl -u $service"

progress 100 "$app runs as $service on port $port"
