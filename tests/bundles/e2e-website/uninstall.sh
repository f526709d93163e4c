#!/usr/bin/env bash
# Test bundle for the browser test: says what it would remove. Removes nothing.
set -euo pipefail
echo "Removing ${SITE_NAME} (instance ${INSTANCE}; data kept unless purge: ${PURGE})"
printf '::progress 100 %s\n' "${SITE_NAME} is gone"
