#!/usr/bin/env bash
set -euo pipefail
if read -r x; then echo "stdin gave: ${x}"; else echo "stdin: eof"; fi
# A child without a script file of its own lists exactly what it inherited.
echo "fds: $(sh -c 'ls /proc/$$/fd' | tr '\n' ' ')"
env | sed 's/^/env: /'
