#!/usr/bin/env bash
set -euo pipefail
echo "exiting ${CODE} on attempt ${JOB_ATTEMPT}"
exit "${CODE}"
