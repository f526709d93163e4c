#!/bin/bash
set -euo pipefail
echo "::progress 50 configuring ${SITE_NAME}"
echo "done"
