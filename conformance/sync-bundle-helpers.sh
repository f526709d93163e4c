#!/usr/bin/env bash
# Copies conformance/bundle-helpers.sh into every script of installers/*/ that carries the
# helper block (between its begin and end markers). Bundles stay self-contained (the digest
# covers manifest and script only); this keeps their copies identical. A unit test
# (helpers::every_bundle_carries_the_canonical_helpers) fails when they drift.
set -euo pipefail
cd "$(dirname "$0")/.."
helpers=conformance/bundle-helpers.sh
for script in installers/*/*.sh; do
  grep -q '^# --- Outfitter bundle helpers' "$script" || continue
  awk -v helpers="$helpers" '
    /^# --- Outfitter bundle helpers/ { while ((getline line < helpers) > 0) print line; close(helpers); skip = 1; next }
    /^# --- end of Outfitter bundle helpers ---/ { skip = 0; next }
    !skip { print }
  ' "$script" >"$script.new"
  chmod --reference="$script" "$script.new"
  mv "$script.new" "$script"
done
