#!/usr/bin/env bash
set -euo pipefail
echo "::progress 5 ticking"
for i in $(seq 1 "${TICKS}"); do
  echo "tick ${i}"
  sleep 0.1
done
echo "::progress 100 done"
