#!/usr/bin/env bash
# Test bundle: the exit-code policy retries exit 2 with backoff; attempt 3 succeeds.
set -euo pipefail
echo "attempt ${JOB_ATTEMPT}"
if [ "${JOB_ATTEMPT}" -lt 3 ]; then
  echo "error: mirror unreachable (simulated)" >&2
  exit 2
fi
echo "installed on attempt ${JOB_ATTEMPT}"
