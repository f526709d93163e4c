#!/usr/bin/env bash
set -euo pipefail
head -c 209715200 /dev/zero | tr '\0' 'x'
