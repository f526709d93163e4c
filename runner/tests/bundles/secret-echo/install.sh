#!/usr/bin/env bash
set -euo pipefail
echo "token=${API_TOKEN}"
echo "token on stderr: ${API_TOKEN}" >&2
uri="$(jq -rn --arg v "${API_TOKEN}" '$v|@uri')"
echo "url=https://user:${uri}@example.com/"
echo "form=t=${uri//%20/+}"
for prefix in "" "a" "ab"; do
  echo "b64=$(printf '%s%s' "${prefix}" "${API_TOKEN}" | base64 -w0)"
done
echo "half=${API_TOKEN:7}"
echo "hex=$(printf '%s' "${API_TOKEN}" | xxd -p)"
echo "--- xxd -p -c 7"
printf 'x%s' "${API_TOKEN}" | xxd -p -c 7
echo "--- base64 -w 8"
printf '%s' "${API_TOKEN}" | base64 -w 8
echo "label=${LABEL}"
