#!/usr/bin/env bash
# Deploys the Python WSGI/ASGI app APP_NAME from SOURCE (git URL, .tar.gz URL or local path;
# SOURCE_REF for git) to /srv/$APP_NAME/app with the virtualenv /srv/$APP_NAME/venv, installs
# its requirements.txt with pip into that venv, and runs APP_MODULE with SERVER (gunicorn or
# uvicorn, WORKERS processes) as service pyapp-$APP_NAME on 127.0.0.1:PORT under the user
# py-$APP_NAME. The server comes from Debian's package (python3-gunicorn, python3-uvicorn)
# when the mirror has it, and the venv then sees the system's packages
# (--system-site-packages); otherwise pip installs it into the venv. Packages this bundle
# installed are remembered in /var/lib/outfitter/python-app/packages for the uninstall.
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

readonly state_root=/var/lib/outfitter/python-app
app=${APP_NAME:-}
source_spec=${SOURCE:-}
ref=${SOURCE_REF:-}
port=${PORT:-8000}
server=${SERVER:-gunicorn}
app_module=${APP_MODULE:-app:app}
workers=${WORKERS:-2}
[[ $app =~ ^[a-z][a-z0-9-]{0,28}$ ]] || die 1 "app_name must be a lower-case letter, then up to 28 lower-case letters, digits or dashes"
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die 1 "port must be 1-65535"; fi
[[ $server == gunicorn || $server == uvicorn ]] || die 1 "server must be gunicorn or uvicorn"
[[ $app_module =~ ^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$ ]] ||
  die 1 "app_module must be module:callable, for example app:app"
if ! [[ $workers =~ ^[0-9]{1,2}$ ]] || [ "$workers" -lt 1 ] || [ "$workers" -gt 32 ]; then die 1 "workers must be 1-32"; fi
[[ -z $ref || $ref =~ ^[A-Za-z0-9._/-]+$ ]] || die 1 "source_ref may use letters, digits and . _ / - only"
case "$source_spec" in
*.git | git@* | https://*.git/ | ssh://*) kind=git ;;
http://*.tar.gz | https://*.tar.gz | http://*.tgz | https://*.tgz) kind=archive-url ;;
/*.tar.gz | /*.tgz) kind=archive-file ;;
/*) kind=directory ;;
*) die 1 "source must be a git URL ending in .git, a .tar.gz URL, or an absolute path" ;;
esac
[[ /$source_spec/ == */../* ]] && die 1 "source must not contain .. components"

user="py-$app"
home="/srv/$app"
app_dir="$home/app"
venv="$home/venv"
service="pyapp-$app"
module_path=${app_module%%:*}
module_path=${module_path//.//}
# has_module DIR: the module of APP_MODULE is a file or a package in DIR.
has_module() { [ -f "$1/$module_path.py" ] || [ -f "$1/$module_path/__init__.py" ]; }

progress 10 "Installing Python"
server_pkg="python3-$server"
has_candidate() { [[ $(apt-cache policy "$1" 2>/dev/null) =~ Candidate:\ [^\(] ]]; }
server_from_debian=0
if is_installed "$server_pkg"; then
  server_from_debian=1
else
  # A system that never ran apt-get update knows no candidates yet.
  has_candidate "$server_pkg" || apt_quiet update >/dev/null || die 2 "apt-get update failed"
  has_candidate "$server_pkg" && server_from_debian=1
fi
packages=(python3-venv)
[ "$server_from_debian" -eq 1 ] && packages+=("$server_pkg")
[ "$kind" == git ] && packages+=(git ca-certificates)
[ "$kind" == archive-url ] && packages+=(curl ca-certificates)
# Remember what this bundle installs (not what was there), so that its uninstall removes
# that and nothing else; recorded first, so that a half-finished install is cleaned up too.
mkdir -p "$state_root/packages"
chmod 0700 "$state_root"
for pkg in "${packages[@]}"; do is_installed "$pkg" || touch "$state_root/packages/$pkg"; done
apt_install "${packages[@]}"

progress 20 "Fetching $source_spec"
id "$user" >/dev/null 2>&1 || useradd --system --home-dir "$home" --shell /usr/sbin/nologin "$user"
# An app an uninstall kept belonged to the user of an earlier install, whose id may differ.
if [ -d "$home" ] && [ "$(stat -c %u "$home")" != "$(id -u "$user")" ]; then chown -R "$user:$user" "$home"; fi
mkdir -p "$home"
chown "$user:$user" "$home"
staging=$(mktemp -d "$home/.incoming.XXXXXX")
pip_log=$(mktemp)
trap 'rm -rf "$staging" "$pip_log"' EXIT
# pip runs as the app's user and must reach the sources inside (mktemp makes it 0700).
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
  if [ "${#entries[@]}" -eq 1 ] && [ -d "${entries[0]}" ] && ! has_module "$staging/src"; then
    mv "${entries[0]}" "$staging/top" && rm -rf "$staging/src" && mv "$staging/top" "$staging/src"
  fi
fi
if [ "$kind" == directory ]; then
  fingerprint="dir:$(tar -C "$staging/src" --sort=name --mtime=@0 --owner=0 --group=0 -cf - . | sha256sum | cut -d' ' -f1)"
fi
has_module "$staging/src" || die 1 "source has no $module_path.py or $module_path/__init__.py at its top (app_module $app_module)"
chown -R "$user:$user" "$staging/src"

redeploy=0
[ "$(cat "$app_dir/.outfitter-source" 2>/dev/null)" != "$fingerprint" ] && redeploy=1
src="$app_dir"
[ "$redeploy" -eq 1 ] && src="$staging/src"

progress 35 "Preparing the virtualenv $venv"
changed=0
site_packages=false
venv_opts=()
if [ "$server_from_debian" -eq 1 ]; then
  site_packages=true
  venv_opts+=(--system-site-packages)
fi
# A venv is rebuilt when it lost its interpreter (python3 was removed since) or when it
# should see the system's packages and does not, or the other way round.
if [ -d "$venv" ]; then
  cfg=$(cat "$venv/pyvenv.cfg" 2>/dev/null) || cfg=""
  if ! [[ $cfg =~ include-system-site-packages\ =\ $site_packages ]] ||
    ! runuser -u "$user" -- "$venv/bin/python" -c '' >/dev/null 2>&1; then
    progress 38 "Rebuilding the virtualenv"
    rm -rf "$venv"
  fi
fi
if [ ! -d "$venv" ]; then
  (cd "$home" && runuser -u "$user" -- python3 -m venv "${venv_opts[@]}" "$venv") ||
    die 3 "python3 -m venv $venv failed"
  changed=1
fi

# pip_install WHAT DIR ARGS...: pip install ARGS in the venv as the app's user, from DIR. A
# failure to reach the package index is worth a retry (2); any other failure (a requirement
# that does not exist or does not build) needs a person (3).
pip_install() {
  local what=$1 dir=$2 rc=0
  shift 2
  (cd "$dir" && runuser -u "$user" -- env HOME="$home" PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$venv/bin/pip" install --no-input --no-cache-dir --retries 2 --timeout 30 "$@") >"$pip_log" 2>&1 || rc=$?
  cat "$pip_log"
  [ "$rc" -eq 0 ] && return 0
  if grep -Eq 'Retrying \(Retry\(|NewConnectionError|ConnectTimeoutError|ReadTimeoutError|ProxyError|SSLError|Could not fetch URL|Temporary failure in name resolution|Name or service not known|Network is unreachable|Connection refused' "$pip_log"; then
    die 2 "pip could not reach the package index to install $what"
  fi
  die 3 "pip could not install $what; see its output above"
}

progress 45 "Installing $server"
if [ "$server_from_debian" -eq 1 ]; then
  progress 46 "$server comes from the package $server_pkg"
elif ! runuser -u "$user" -- "$venv/bin/python" -c "import $server" >/dev/null 2>&1; then
  pip_install "$server" "$home" "$server"
  changed=1
fi

progress 55 "Installing the requirements"
# The venv remembers which requirements.txt it holds; a new one (or a new venv) installs again.
requirements="none"
if [ -f "$src/requirements.txt" ]; then requirements="sha256:$(sha256sum "$src/requirements.txt" | cut -d' ' -f1)"; fi
if [ "$(cat "$venv/.outfitter-requirements" 2>/dev/null)" != "$requirements" ]; then
  if [ "$requirements" != none ] && grep -Eqv '^[[:space:]]*(#|$)' "$src/requirements.txt"; then
    pip_install requirements.txt "$src" -r requirements.txt
  else
    progress 56 "The app has no requirements.txt with requirements: pip has nothing to install"
  fi
  printf '%s\n' "$requirements" >"$venv/.outfitter-requirements"
  chown "$user:$user" "$venv/.outfitter-requirements"
  changed=1
else
  progress 56 "The requirements are installed"
fi

if [ "$redeploy" -eq 1 ]; then
  progress 65 "Switching to the new version"
  printf '%s\n' "$fingerprint" >"$staging/src/.outfitter-source"
  chown "$user:$user" "$staging/src/.outfitter-source"
  rm -rf "$home/app.old"
  [ -d "$app_dir" ] && mv "$app_dir" "$home/app.old"
  mv "$staging/src" "$app_dir"
  rm -rf "$home/app.old"
  changed=1
else
  progress 65 "The deployed version is current"
fi

progress 75 "Writing the service $service"
if [ "$server" == gunicorn ]; then
  exec_start="$venv/bin/python -m gunicorn --bind 127.0.0.1:$port --workers $workers --access-logfile - $app_module"
else
  exec_start="$venv/bin/python -m uvicorn --host 127.0.0.1 --port $port --workers $workers $app_module"
fi
if write_file "/etc/systemd/system/$service.service" 0644 "# Managed by Outfitter (python-app bundle); changes are overwritten on reinstall.
[Unit]
Description=Python app $app with $server (Outfitter)
After=network.target

[Service]
Type=simple
User=$user
Group=$user
WorkingDirectory=$app_dir
Environment=PORT=$port
Environment=VIRTUAL_ENV=$venv
Environment=PATH=$venv/bin:/usr/local/bin:/usr/bin:/bin
Environment=PYTHONUNBUFFERED=1
ExecStart=$exec_start
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

progress 100 "$app runs as $service with $server on 127.0.0.1:$port"
