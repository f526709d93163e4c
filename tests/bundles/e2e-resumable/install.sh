#!/usr/bin/env bash
# Test bundle: attempt 1 sleeps (the test kills the runner meanwhile); a re-run succeeds.
set -euo pipefail
printf '::progress 10 %s\n' "attempt ${JOB_ATTEMPT}"
if [ "${JOB_ATTEMPT}" -eq 1 ]; then
  sleep 20
fi
echo "finished on attempt ${JOB_ATTEMPT}"
