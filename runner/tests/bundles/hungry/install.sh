#!/usr/bin/env bash
set -euo pipefail
if [ "${WANT}" = memory ]; then
  big="$(head -c 314572800 /dev/zero | tr '\0' 'm')"
  echo "allocated ${#big} bytes"
else
  for i in $(seq 1 200); do sleep 30 & done
  echo "started 200 processes"
fi
