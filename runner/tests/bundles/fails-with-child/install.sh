#!/usr/bin/env bash
set -euo pipefail
sleep 3005 < /dev/null > /dev/null 2>&1 &
echo "about to fail"
exit 1
