#!/usr/bin/env bash
set -euo pipefail
# What this script got, for the test to read.
mkdir -p "$ROOT_DIR/env"
env | grep -E "^(OUTFITTER_ACTION|INSTANCE|PREVIOUS_VERSION|BACKUP_DIR|PURGE|GREETING|APP_VERSION)=" | sort > "$ROOT_DIR/env/$OUTFITTER_ACTION"
echo "$OUTFITTER_ACTION $APP_VERSION" >> "$ROOT_DIR/history"
mkdir -p "$ROOT_DIR/app" "$ROOT_DIR/data"
echo "$APP_VERSION" > "$ROOT_DIR/app/version"
echo "$GREETING" > "$ROOT_DIR/app/greeting"
touch "$ROOT_DIR/app/healthy"
[ -f "$ROOT_DIR/data/created" ] || echo "$APP_VERSION" > "$ROOT_DIR/data/created"
echo "installed $APP_VERSION"
