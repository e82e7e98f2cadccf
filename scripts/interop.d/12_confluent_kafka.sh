#!/usr/bin/env bash
# Interop: confluent-kafka-python (librdkafka) against `tagpipe broker` on a temp data dir
# and a free port: AdminClient (create/describe/alter configs, create_partitions,
# list_topics, delete_topics, list_groups), the idempotent producer with every codec,
# watermarks and offsets_for_times, a cooperative-sticky group of two members with a
# restart, and a consume-transform-produce transaction committed and one aborted.
# The checks are in py/confluent_kafka_check.py. Needs Debian's python3-confluent-kafka
# (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${CONFLUENT_PYTHON:-/usr/bin/python3}
"$PY" -c 'import confluent_kafka' 2>/dev/null ||
  { echo "confluent-kafka is not installed for $PY (apt-get install python3-confluent-kafka)"; exit 1; }
. scripts/interop.d/lib/broker.sh
start_broker
timeout 240 "$PY" scripts/interop.d/py/confluent_kafka_check.py "$addr" || fail "confluent-kafka (exit $?)"
echo "interop confluent-kafka: ok"
