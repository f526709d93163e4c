#!/usr/bin/env bash
set -euo pipefail
# What this script got, for the test to read.
mkdir -p "$ROOT_DIR/env"
env | grep -E "^(OUTFITTER_ACTION|INSTANCE|PREVIOUS_VERSION|BACKUP_DIR|PURGE|GREETING|APP_VERSION)=" | sort > "$ROOT_DIR/env/$OUTFITTER_ACTION"
echo "$OUTFITTER_ACTION $APP_VERSION" >> "$ROOT_DIR/history"
test -d "$BACKUP_DIR/app"
rm -rf "$ROOT_DIR/app" "$ROOT_DIR/data"
cp -a "$BACKUP_DIR/app" "$BACKUP_DIR/data" "$ROOT_DIR/"
echo "restored from $BACKUP_DIR"
