#!/usr/bin/env bash
# Test bundle: reports progress, prints who runs it, succeeds. Touches nothing.
set -euo pipefail
printf '::progress 10 %s\n' "starting"
echo "greeting=${GREETING} agent=${AGENT_ID} attempt=${JOB_ATTEMPT}"
printf '::progress 60 %s\n' "halfway"
echo "stderr line" >&2
printf '::progress 100 %s\n' "done"
