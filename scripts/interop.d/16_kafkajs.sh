#!/usr/bin/env bash
# Interop: kafkajs 2.2.4 (pure JavaScript, its own protocol code) against `tagpipe broker`
# on a temp data dir and a free port: admin (createTopics, createPartitions,
# fetchTopicMetadata, describeConfigs, alterConfigs, fetchTopicOffsets[ByTimestamp],
# describeGroups, deleteTopics), the idempotent producer (gzip, keys), a group of two
# (eachBatch, commits) and a second run (eachMessage) that resumes, and consume-transform-
# produce transactions, one committed and one aborted, read with read_committed. The
# checks are in js/kafkajs_check.js; js/package-lock.json pins kafkajs. Needs node >= 18
# and npm (.ci/run installs Debian's nodejs and npm when node is missing). When npm cannot
# install kafkajs (no registry), the check says SKIP and passes; any other failure fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v node >/dev/null || { echo "node is not installed (apt-get install nodejs npm)"; exit 1; }
command -v npm >/dev/null || { echo "npm is not installed (apt-get install npm)"; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' ||
  { echo "node $(node --version) is too old: kafkajs checks need node >= 18"; exit 1; }
. scripts/interop.d/lib/broker.sh

mkdir -p "$tmp/js"
cp scripts/interop.d/js/package.json scripts/interop.d/js/package-lock.json "$tmp/js/"
rc=0
(cd "$tmp/js" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >"$tmp/npm.log" 2>&1) || rc=$?
if [ "$rc" != 0 ]; then
  # Only a registry out of reach (or npm timing out) is a skip; a lock out of step with
  # package.json, a bad integrity sum and the like fail the check.
  if [ "$rc" = 124 ] || grep -Eq 'ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|ENETUNREACH|EHOSTUNREACH|network' "$tmp/npm.log"; then
    echo "################################################################"
    echo "SKIP kafkajs: npm install failed: $( (grep -m1 -i 'err' "$tmp/npm.log" || echo "timed out") | cut -c1-200)"
    echo "################################################################"
    exit 0
  fi
  echo "FAIL: npm ci (exit $rc):"; cat "$tmp/npm.log"; exit 1
fi
start_broker
KAFKAJS_NO_PARTITIONER_WARNING=1 NODE_PATH="$tmp/js/node_modules" \
  timeout 240 node scripts/interop.d/js/kafkajs_check.js "$addr" || fail "kafkajs (exit $?)"
echo "interop kafkajs: ok"
