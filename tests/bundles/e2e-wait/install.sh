#!/usr/bin/env bash
# Test bundle: a long-running step that a person cancels.
set -euo pipefail
printf '::progress 20 %s\n' "waiting to be canceled"
sleep 60
