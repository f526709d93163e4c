#!/usr/bin/env bash
set -euo pipefail
echo "mode=${MODE}"
if env | grep -q '^EXTRA='; then echo "extra is set: ${EXTRA:-}"; else echo "extra is absent"; fi
