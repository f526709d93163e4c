#!/usr/bin/env bash
set -euo pipefail
setsid sleep 3001 < /dev/null > /dev/null 2>&1 &
# Double fork: the daemon's parent exits at once, so it is reparented away from the script.
( setsid bash -c 'trap "" TERM; sleep 3002' < /dev/null > /dev/null 2>&1 & ) &
sleep 3003 &
echo "children started"
sleep 3004
