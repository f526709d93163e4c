#!/usr/bin/env bash
set -euo pipefail
sleep 600 &
exit 0
