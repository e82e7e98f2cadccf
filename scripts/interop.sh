#!/usr/bin/env bash
# make interop: every scripts/interop.d/*.sh in order. Each checks tagpipe against a real
# non-Go peer (kcat, kafka-python, confluent-kafka-python, kafkajs, rsyslog, psql, headless Chromium)
# and exits non-zero on failure.
# A check whose peer is not installed says so and fails: .ci/run installs them all.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
checks=(scripts/interop.d/*.sh)
if [ ${#checks[@]} -eq 0 ]; then echo "make interop: no checks yet"; exit 0; fi
for c in "${checks[@]}"; do
  echo "== interop: $c"
  bash "$c"
done
echo "interop: all ${#checks[@]} checks passed"
