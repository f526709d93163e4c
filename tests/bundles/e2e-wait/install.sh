#!/usr/bin/env bash
# Test bundle: a long-running step that a person cancels.
set -euo pipefail
printf '::progress 20 %s\n' "waiting to be canceled"
# The job id in argv[0] lets the test check that nothing of the tree survives.
exec -a "e2e-wait-${JOB_ID}" sleep 60
