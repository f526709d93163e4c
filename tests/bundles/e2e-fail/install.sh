#!/usr/bin/env bash
# Test bundle: an installation error that is not retryable. Touches nothing.
set -euo pipefail
echo "failing on purpose (attempt ${JOB_ATTEMPT})" >&2
exit 1
