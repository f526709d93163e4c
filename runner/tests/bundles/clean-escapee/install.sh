#!/usr/bin/env bash
set -euo pipefail
# The test finds the escapee by the pid written here: it carries nothing of the job.
pid_file="/tmp/outfitter-clean-escapee-$JOB_ID.pid"
env -i setsid sh -c 'sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > "$1"' sh "$pid_file"
echo "escapee started"
sleep 3004
