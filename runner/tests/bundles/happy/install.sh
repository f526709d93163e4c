#!/usr/bin/env bash
set -euo pipefail
touch "${TMPDIR}/outfitter-ran-${JOB_ID}"
echo "::progress 10 starting"
echo "greeting=${GREETING} attempt=${JOB_ATTEMPT} agent=${AGENT_ID}"
echo "::progress 60 halfway"
echo "to stderr" >&2
echo "::progress 100 done"
