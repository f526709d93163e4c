#!/usr/bin/env bash
set -euo pipefail
# head ends the flood; reading from a process substitution keeps yes's SIGPIPE out of the status.
head -c 2147483648 < <(yes 'flooding the runner with one line after another, 2 GB in all')
echo "flood done" >&2
