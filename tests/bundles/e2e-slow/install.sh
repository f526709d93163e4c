#!/usr/bin/env bash
# Test bundle: outlives its timeout; the runner must kill the whole tree.
set -euo pipefail
printf '::progress 5 %s\n' "waiting forever"
# The job id in argv[0] lets the test check that nothing of the tree survives.
exec -a "e2e-slow-${JOB_ID}" sleep 60
