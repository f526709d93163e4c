#!/usr/bin/env bash
# Test bundle for the browser test: progress in visible steps, then success. Installs nothing.
set -euo pipefail
steps=("Checking the settings" "Preparing the site" "Writing the configuration" "Starting the service")
i=0
for step in "${steps[@]}"; do
  i=$((i + 1))
  printf '::progress %s %s\n' "$((i * 20))" "$step"
  echo "$step for ${SITE_NAME} on port ${HTTP_PORT} (https: ${ENABLE_TLS}${TLS_EMAIL:+, ${TLS_EMAIL}})"
  sleep 0.7
done
printf '::progress 100 %s\n' "${SITE_NAME} is ready"
