#!/usr/bin/env bash
set -euo pipefail
# What this script got, for the test to read.
mkdir -p "$ROOT_DIR/env"
env | grep -E "^(OUTFITTER_ACTION|INSTANCE|PREVIOUS_VERSION|BACKUP_DIR|PURGE|GREETING|APP_VERSION)=" | sort > "$ROOT_DIR/env/$OUTFITTER_ACTION"
echo "$OUTFITTER_ACTION $APP_VERSION" >> "$ROOT_DIR/history"
rm -rf "$ROOT_DIR/app"
if [ "$PURGE" = true ]; then rm -rf "$ROOT_DIR/data"; fi
echo "uninstalled (purge=$PURGE)"
