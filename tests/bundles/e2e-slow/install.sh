#!/usr/bin/env bash
# Test bundle: outlives its timeout; the runner must kill the whole tree.
set -euo pipefail
printf '::progress 5 %s\n' "waiting forever"
sleep 60
