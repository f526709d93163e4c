#!/usr/bin/env bash
# Deploys BRANCH of the git REPOSITORY (https://…, git@host:path / ssh://…, or a repository
# on this server) as a static or prebuilt site: each new commit becomes
# /srv/SITE_NAME/releases/<UTC timestamp>-<commit>, the symlink /srv/SITE_NAME/current
# switches to it atomically (rename), the last KEEP_RELEASES releases stay, and nginx serves
# current (or its WEB_ROOT subdirectory) for DOMAIN. A deploy of the commit that is live
# changes nothing. DEPLOY_KEY (sensitive) reaches ssh only as a mode 0600 file in a private
# temporary directory, removed when the script ends; it is never printed. nginx belongs to
# the nginx app, which must be installed first; git (and openssh-client or ca-certificates
# when the repository needs them) are installed here and remembered in
# /var/lib/outfitter/git-deploy/packages so that the uninstall removes only those.
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

readonly name_re='^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
readonly state_root=/var/lib/outfitter/git-deploy
umask 022

# --- inputs ---
site=${SITE_NAME:-}
repo=${REPOSITORY:-}
branch=${BRANCH:-main}
domain=${DOMAIN:-}
web_root=${WEB_ROOT:-}
keep=${KEEP_RELEASES:-5}
deploy_key=${DEPLOY_KEY:-}
# The key goes to a file for ssh; no child process needs it in its environment.
unset DEPLOY_KEY

[[ $site =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die 1 "site_name must be a lowercase letter, then up to 30 lowercase letters, digits or -"
[[ $domain =~ $name_re ]] || die 1 "domain must be a domain name such as www.example.com"
if ! [[ $keep =~ ^[0-9]{1,2}$ ]] || [ "$keep" -lt 1 ] || [ "$keep" -gt 20 ]; then die 1 "keep_releases must be 1-20"; fi
[[ $branch =~ ^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$ ]] || die 1 "branch may use letters, digits and . _ / - only"
[[ $branch == *..* || $branch == *//* || $branch == */ || $branch == *.lock || $branch == */.* ]] &&
  die 1 "branch is not a valid git branch name"
if [ -n "$web_root" ]; then
  [[ $web_root =~ ^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$ ]] ||
    die 1 "web_root must be a relative directory such as public or dist/site"
  [[ /$web_root/ == */../* || /$web_root/ == */./* ]] && die 1 "web_root must not contain . or .. components"
fi
# The repository: where it is (kind), what git is given (url), what the log may show (shown).
case $repo in
https://*)
  kind=https
  [[ $repo =~ ^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/%+-]+$ ]] ||
    die 1 "repository: an https URL is https://host/path, without credentials (use an ssh URL and deploy_key for a private repository)"
  ;;
ssh://*)
  kind=ssh
  [[ $repo =~ ^ssh://([A-Za-z0-9._-]+@)?[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?/[A-Za-z0-9._~/+-]+$ ]] ||
    die 1 "repository: an ssh URL is ssh://user@host[:port]/path or user@host:path"
  ;;
file:///* | /*)
  kind=local
  path=${repo#file://}
  [[ $path =~ ^/[A-Za-z0-9._/+-]+$ ]] || die 1 "repository: a local repository is an absolute path such as /srv/repos/site.git"
  [[ $path/ == */../* || $path/ == */./* ]] && die 1 "repository must not contain . or .. components"
  ;;
*@*:*)
  kind=ssh
  [[ $repo =~ ^[A-Za-z0-9._-]+@[A-Za-z0-9][A-Za-z0-9.-]*:[A-Za-z0-9._~+/][A-Za-z0-9._~/+-]*$ ]] ||
    die 1 "repository: an ssh URL is user@host:path, such as git@github.com:owner/site.git"
  ;;
*) die 1 "repository must be an https:// URL, an ssh URL (git@host:path or ssh://…) or an absolute path on this server" ;;
esac
[[ /${repo#*://}/ == */../* ]] && die 1 "repository must not contain .. components"
url=$repo
[ "$kind" == local ] && url="file://$path"
[ -n "$deploy_key" ] && [ "$kind" != ssh ] && die 1 "deploy_key is used with ssh repositories only (git@host:path or ssh://…)"

base="/srv/$site"
state="$state_root/sites/$site"
vhost="/etc/nginx/sites-available/$domain.conf"
enabled="/etc/nginx/sites-enabled/$domain.conf"
header="# Managed by Outfitter (git-deploy site $site); changes are overwritten on every deploy."

progress 5 "Checking for nginx"
is_installed nginx || die 3 "nginx is not installed: install the nginx app first"
# Another app's (or the administrator's) site for this domain would take the requests.
if [ -e "$vhost" ] && [[ $(head -n 1 "$vhost") != "$header" ]]; then
  die 3 "$vhost belongs to another site; choose another domain or remove that site first"
fi
domain_match="^[[:space:]]*server_name([[:space:]]+[^;]*)?[[:space:]]${domain//./\\.}([[:space:]]|;)"
for conf in /etc/nginx/sites-enabled/* /etc/nginx/conf.d/*.conf; do
  [ -f "$conf" ] || continue
  [ "$(readlink -f "$conf")" == "$(readlink -f "$vhost")" ] && continue
  if grep -Eq "$domain_match" "$conf"; then die 3 "$conf already serves $domain; choose another domain or remove that site first"; fi
done

progress 10 "Installing git"
packages=(git)
[ "$kind" == ssh ] && packages+=(openssh-client)
[ "$kind" == https ] && packages+=(ca-certificates)
added=()
for pkg in "${packages[@]}"; do is_installed "$pkg" || added+=("$pkg"); done
apt_install "${packages[@]}"
# Remember what this app installed, so that its uninstall removes that and nothing else.
mkdir -p "$state_root/packages" "$state"
chmod 0700 "$state_root"
for pkg in "${added[@]}"; do touch "$state_root/packages/$pkg"; done
exec 9>"$state/lock"
flock -n 9 || die 2 "another deploy of $site is running"
git check-ref-format "refs/heads/$branch" || die 1 "branch is not a valid git branch name"

workdir=$(mktemp -d)
staging=""
cleanup() {
  rm -rf "$workdir"
  if [ -n "$staging" ]; then rm -rf "$staging"; fi
}
trap cleanup EXIT
git_env=(env GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false)
if [ "$kind" == ssh ]; then
  ssh_cmd="ssh -o BatchMode=yes -o ConnectTimeout=30 -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$state/known_hosts"
  if [ -n "$deploy_key" ]; then
    progress 15 "Preparing the deploy key"
    key="$workdir/deploy_key"
    # One line in, a key file out: the key pasted whole (its line breaks turned into
    # spaces, or dropped by a single-line form field), or the key file in base64.
    key_re='^(-----BEGIN [A-Z0-9 ]+-----)(.+)(-----END [A-Z0-9 ]+-----) *$'
    if [[ $deploy_key =~ $key_re ]]; then
      body=${BASH_REMATCH[2]// /}
      { printf '%s\n' "${BASH_REMATCH[1]}"; fold -w 64 <<<"$body"; printf '%s\n' "${BASH_REMATCH[3]}"; } >"$key"
    else
      base64 -d <<<"$deploy_key" >"$key" 2>/dev/null || die 1 "deploy_key is neither an SSH private key nor one in base64"
    fi
    chmod 0600 "$key"
    ssh-keygen -y -P '' -f "$key" >/dev/null 2>&1 ||
      die 1 "deploy_key is not an unencrypted SSH private key (give the whole key, without a passphrase)"
    ssh_cmd+=" -o IdentitiesOnly=yes -o IdentityAgent=none -i $key"
  fi
  git_env+=("GIT_SSH_COMMAND=$ssh_cmd")
fi
shown=$repo
# git_failed WHAT: reports a failed git command (its messages, with any credentials hidden)
# and exits 3 when the repository refused us (a person must fix access), 2 otherwise.
git_failed() {
  local err
  err=$(sed -E 's#(://)[^/@]*@#\1***@#g' "$workdir/git.err")
  [ -n "$err" ] && printf '%s\n' "$err" >&2
  if [ "$kind" == local ]; then die 3 "$1 $shown failed: is it a git repository that root may read?"; fi
  case $err in
  *"Permission denied"* | *"Host key verification failed"* | *"HOST IDENTIFICATION HAS CHANGED"* | *"Authentication failed"* | \
    *"could not read Username"* | *"could not read Password"* | *"Repository not found"* | *"not found"* | \
    *"does not appear to be a git repository"* | *" 403"* | *" 401"*)
    die 3 "$1 $shown was refused: check the URL, and that the deploy key is allowed to read it" ;;
  esac
  die 2 "$1 $shown failed (network?); it will be tried again"
}
if [ "$kind" == local ] && [ ! -d "$path" ]; then die 1 "repository: there is no directory $path on this server"; fi

progress 20 "Looking up $branch in $shown"
if ! heads=$("${git_env[@]}" git ls-remote --heads -- "$url" "refs/heads/$branch" 2>"$workdir/git.err"); then
  git_failed "Reading"
fi
commit=""
while read -r sha ref; do [ "$ref" == "refs/heads/$branch" ] && commit=$sha; done <<<"$heads"
[[ $commit =~ ^[0-9a-f]{40}([0-9a-f]{24})?$ ]] || die 3 "the repository $shown has no branch $branch"

if [ -e "$base/current" ] && [ ! -L "$base/current" ]; then die 3 "$base/current is not a symlink; move it away first"; fi
mkdir -p "$base/releases"
chmod 0755 "$base" "$base/releases"
live=""
[ -L "$base/current" ] && live=$(readlink "$base/current")
live=${live#releases/}
# A deploy of the commit that is live changes nothing (the name ends in the commit).
if [ -n "$live" ] && [[ $live == *"-${commit:0:12}" ]] && [ -d "$base/releases/$live" ]; then
  release=$live
  progress 40 "$branch is at ${commit:0:12}, which is live already (release $release)"
else
  progress 30 "Fetching $branch (${commit:0:12}) from $shown"
  staging=$(mktemp -d "$base/.incoming.XXXXXX")
  if ! "${git_env[@]}" git clone --quiet --depth 1 --single-branch --no-tags --branch "$branch" -- "$url" "$staging/src" 2>"$workdir/git.err"; then
    git_failed "Fetching from"
  fi
  # The branch may have moved since ls-remote: the clone says what was fetched.
  commit=$(git -C "$staging/src" rev-parse HEAD) || die 3 "the clone of $shown has no HEAD"
  rm -rf "$staging/src/.git"
  release="$(date -u +%Y%m%d%H%M%S)-${commit:0:12}"
  [ -e "$base/releases/$release" ] && die 2 "release $release exists already; try again in a second"
fi

# The directory nginx serves, checked before anything goes live.
if [ -n "$staging" ]; then tree="$staging/src"; else tree="$base/releases/$release"; fi
served=$tree
[ -n "$web_root" ] && served="$tree/$web_root"
if [ ! -d "$served" ] || [ -L "$served" ]; then die 3 "web_root ${web_root:-.} is not a directory in $branch of $shown"; fi
[ -f "$served/index.html" ] || [ -f "$served/index.htm" ] ||
  die 3 "${web_root:-the top of the repository} has no index.html in $branch of $shown; set web_root to the directory that has it"

progress 50 "Writing the nginx site $domain"
acme=""
# The nginx app's snippet routes certbot's webroot challenge (the certbot-cert app).
[ -f /etc/nginx/snippets/outfitter-acme.conf ] && acme=$'\n    include snippets/outfitter-acme.conf;'
previous=""
[ -f "$vhost" ] && previous=$(cat "$vhost")
changed=0
if write_file "$vhost" 0644 "$header
server {
    listen 80;
    listen [::]:80;
    server_name $domain;$acme
    root $base/current${web_root:+/$web_root};
    index index.html index.htm;
    location / {
        try_files \$uri \$uri/ =404;
    }
    # Dotfiles of the repository (.env, .gitignore, .htaccess) are not served.
    location ~ /\\.(?!well-known/) {
        return 404;
    }
}"; then changed=1; fi
ln -sfn "$vhost" "$enabled"
# A site of this app under an earlier domain.
for old in /etc/nginx/sites-available/*.conf; do
  if [ ! -f "$old" ] || [ "$old" == "$vhost" ]; then continue; fi
  [[ $(head -n 1 "$old") == "$header" ]] || continue
  rm -f "$old" "/etc/nginx/sites-enabled/${old##*/}"
  changed=1
done
if ! nginx -t 2>&1; then
  if [ -n "$previous" ]; then printf '%s\n' "$previous" >"$vhost"; else rm -f "$vhost" "$enabled"; fi
  die 3 "nginx -t rejected the site for $domain; the previous configuration was restored"
fi

if [ -n "$staging" ]; then
  progress 60 "Creating release $release"
  chmod 0755 "$staging/src"
  mv "$staging/src" "$base/releases/$release"
  printf '%s %s %s\n' "$release" "$commit" "$branch" >>"$state/history"
  progress 70 "Switching current to $release"
  ln -sfn "releases/$release" "$base/current.new"
  mv -T "$base/current.new" "$base/current"
fi

progress 80 "Reloading nginx"
if ! systemctl is-active --quiet nginx; then
  systemctl start nginx || die 3 "nginx is not running and does not start; see journalctl -u nginx"
elif [ "$changed" -eq 1 ]; then
  systemctl reload nginx || die 3 "nginx failed to reload; see journalctl -u nginx"
fi
answers() {
  exec 3<>/dev/tcp/127.0.0.1/80 && printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$domain" >&3 &&
    [[ $(head -n 1 <&3) == *' 200 '* ]]
}
ok=0
for _ in $(seq 1 20); do
  if (answers) 2>/dev/null; then
    ok=1
    break
  fi
  sleep 0.5
done
if [ "$ok" -eq 0 ]; then
  if [ -n "$staging" ] && [ -n "$live" ] && [ -d "$base/releases/$live" ]; then
    ln -sfn "releases/$live" "$base/current.new"
    mv -T "$base/current.new" "$base/current"
    die 3 "$domain does not answer 200 with release $release; switched back to $live"
  fi
  die 3 "$domain does not answer 200 on port 80; see journalctl -u nginx and /var/log/nginx/error.log"
fi

progress 90 "Removing old releases (keeping $keep)"
count=0
while IFS= read -r -d '' old; do
  count=$((count + 1))
  name=${old##*/}
  if [ "$count" -gt "$keep" ] && [ "$name" != "$release" ]; then rm -rf "$old"; fi
done < <(find "$base/releases" -mindepth 1 -maxdepth 1 -type d -print0 | sort -rz)
# Incoming directories of deploys that were killed half-way.
find "$base" -mindepth 1 -maxdepth 1 -name '.incoming.*' ! -path "${staging:-/nonexistent}" -exec rm -rf {} +
if [ -f "$state/history" ]; then
  tail -n 100 "$state/history" >"$state/history.new" && mv -f "$state/history.new" "$state/history"
fi

progress 100 "$domain is served from $base/current${web_root:+/$web_root} (release $release, $branch at ${commit:0:12})"
