# shellcheck shell=bash
# Sourced by scripts/check-openapi and scripts/schemathesis: the pinned Python tools in a
# virtual environment under target/, and a throwaway installation to point them at (a
# private redis-server, `outfitter-panel serve`, one runner with the test bundles that only
# print, as tests/src/stack.rs starts them). Everything it starts is stopped on exit, by pid.

# The sourcing script sets `repo` to the repository root.
: "${repo:?set repo before sourcing api-stack.sh}"
tools_file="$repo/tests/openapi/requirements.txt"
venv="$repo/target/python-tools"

# Creates the venv on first use, and again when tests/openapi/requirements.txt changes; prints its path.
python_tools() {
  local stamp="$venv/.requirements"
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$tools_file" "$stamp"; then
    echo "==> installing $(tr '\n' ' ' <"$tools_file")into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$tools_file" >&2
    cp "$tools_file" "$stamp"
  fi
  echo "$venv"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stack_pids=()
stack_dir=""
stop_stack() {
  local pid
  for pid in "${stack_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${stack_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  stack_pids=()
  [ -z "$stack_dir" ] || rm -rf "$stack_dir"
}

# Waits until `$1` answers 2xx, or fails after 30 s naming the log `$2`.
wait_http() {
  local i
  for i in $(seq 300); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: $1 did not answer within 30 s; $2:" >&2
  tail -n 40 "$2" >&2
  return 1
}

# Starts the installation and exports PANEL_URL, PANEL_TOKEN (admin), AGENT_ID (its runner
# is up and has sent a heartbeat) and APP_ID (a test bundle that prints and succeeds).
start_stack() {
  local panel="$repo/target/debug/outfitter-panel" runner="$repo/target/debug/outfitter-runner"
  # A no-op when the debug binaries are current (as after `cargo test`).
  cargo build -q -p outfitter-panel -p outfitter-runner
  command -v redis-server >/dev/null || {
    echo "error: redis-server is not installed" >&2
    return 1
  }
  stack_dir=$(mktemp -d "${TMPDIR:-/tmp}/outfitter-api-XXXXXX")
  trap stop_stack EXIT
  local redis_port panel_port
  redis_port=$(free_port)
  panel_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$stack_dir" >"$stack_dir/redis.log" 2>&1 &
  stack_pids+=($!)
  local i
  for i in $(seq 100); do
    redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  export OUTFITTER_REDIS_URL="redis://127.0.0.1:$redis_port/"
  export OUTFITTER_SECRET_FILE="$stack_dir/panel.secret"
  export OUTFITTER_INSTALLERS="$repo/tests/bundles"
  export OUTFITTER_LOG="${OUTFITTER_LOG:-warn}"
  # A long random name: a fuzzer deleting tokens by name never finds this one.
  PANEL_TOKEN=$("$panel" token add --name "api-check-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
    --role admin 2>>"$stack_dir/setup.log" | tail -n 1)
  AGENT_ID=api-check
  "$panel" agent add "$AGENT_ID" >"$stack_dir/runner.toml" 2>>"$stack_dir/setup.log"
  # Checkers send thousands of bad tokens from one address on purpose; the throttle that
  # would answer them 429 (declared in the document, tested in panel/tests/hardening_auth.rs)
  # is set out of their way so each bad token gets its own 401.
  OUTFITTER_BIND="127.0.0.1:$panel_port" OUTFITTER_AUTH_FAILURE_BURST=1000000 \
    "$panel" serve >"$stack_dir/panel.log" 2>&1 &
  stack_pids+=($!)
  mkdir -p "$stack_dir/runner-log" "$stack_dir/runner-state"
  OUTFITTER_LOG_DIR="$stack_dir/runner-log" OUTFITTER_STATE_DIR="$stack_dir/runner-state" \
    OUTFITTER_KILL_GRACE_SECONDS=2 OUTFITTER_STOP_GRACE_SECONDS=5 \
    "$runner" run --config "$stack_dir/runner.toml" >"$stack_dir/runner.log" 2>&1 &
  stack_pids+=($!)
  PANEL_URL="http://127.0.0.1:$panel_port"
  wait_http "$PANEL_URL/healthz" "$stack_dir/panel.log"
  for i in $(seq 300); do
    curl -fsS -H "Authorization: Bearer $PANEL_TOKEN" "$PANEL_URL/api/v1/agents/$AGENT_ID" |
      grep -q '"online":true' && break
    [ "$i" -lt 300 ] || {
      echo "error: the runner sent no heartbeat within 30 s:" >&2
      tail -n 40 "$stack_dir/runner.log" >&2
      return 1
    }
    sleep 0.1
  done
  APP_ID=e2e-hello
  export PANEL_URL PANEL_TOKEN AGENT_ID APP_ID
}
