#!/usr/bin/env bash
set -euo pipefail
echo "before"
head -c 1048576 /dev/zero | tr '\0' 'e' >&2
echo >&2
for i in $(seq 1 1000); do echo "out $i"; done
echo "after"
