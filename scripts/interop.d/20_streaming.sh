#!/usr/bin/env bash
# Interop: records written by kcat (librdkafka) with every codec flow through
# `tagpipe stream` into the warehouse exactly once: ods_events, dwd_events and dlq_events
# counted with `tagpipe sql`; a SIGKILL of the streaming process mid-way and a restart
# leave no duplicate. Needs Debian's kcat (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin/tagpipe}
command -v kcat >/dev/null || { echo "kcat is not installed (apt-get install kcat)"; exit 1; }
[ -x "$BIN" ] || { echo "$BIN missing: run make build"; exit 1; }

tmp=$(mktemp -d)
bpid= spid=
cleanup() {
  for p in $spid $bpid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
export TAGPIPE_ADMIN_LISTEN=127.0.0.1:0 TAGPIPE_SQL_PG_LISTEN=""
TAGPIPE_BROKER_LISTEN=127.0.0.1:0 "$BIN" --data-dir "$tmp/data" broker 2>"$tmp/broker.log" &
bpid=$!
addr=
for _ in $(seq 1 100); do
  addr=$(sed -n 's/.*msg="broker listening".* addr=\([^ ]*\).*/\1/p' "$tmp/broker.log" | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "broker did not start:"; cat "$tmp/broker.log"; exit 1; }
export TAGPIPE_STREAMING_BOOTSTRAP_SERVERS="[$addr]" TAGPIPE_STREAMING_BATCH_INTERVAL=500ms
fail() { echo "FAIL: $*"; echo "--- stream log"; tail -30 "$tmp/stream.log" 2>/dev/null; exit 1; }

"$BIN" --data-dir "$tmp/data" topics create --bootstrap-server "$addr" --topic events --partitions 3 >/dev/null
start_stream() { "$BIN" --data-dir "$tmp/data" stream 2>>"$tmp/stream.log" & spid=$!; }
rows() { "$BIN" --data-dir "$tmp/data" sql -e "select count(*) as n from $1" 2>/dev/null | sed -n 's/^ *\([0-9][0-9]*\) *$/\1/p' | head -1; }

start_stream
n=0
for codec in none gzip snappy lz4 zstd; do
  for i in $(seq 1 400); do
    echo "$((n + i)),$((1000 + i)),$((i % 9)),$([ $((i % 4)) = 0 ] && echo buy || echo pv),$((1511544070 + n + i))"
  done >"$tmp/in-$codec"
  echo "not a taobao line ($codec)" >>"$tmp/in-$codec"
  kcat -P -b "$addr" -t events -z "$codec" -X request.required.acks=-1 <"$tmp/in-$codec" || fail "kcat -P -z $codec"
  n=$((n + 400))
  if [ "$codec" = snappy ]; then # crash the engine mid-stream, then restart it
    sleep 1
    kill -9 "$spid"; wait "$spid" 2>/dev/null || true
    start_stream
  fi
done
want_dwd=$n want_ods=$((n + 5))
for _ in $(seq 1 120); do
  got=$(rows ods_events || true)
  [ "${got:-0}" -ge "$want_ods" ] && break
  sleep 0.5
done
kill "$spid"; wait "$spid" 2>/dev/null || true; spid=
ods=$(rows ods_events) dwd=$(rows dwd_events) dlq=$(rows dlq_events)
[ "$ods" = "$want_ods" ] || fail "ods_events has $ods rows, want $want_ods"
[ "$dwd" = "$want_dwd" ] || fail "dwd_events has $dwd rows, want $want_dwd"
[ "$dlq" = 5 ] || fail "dlq_events has $dlq rows, want 5"
dups=$("$BIN" --data-dir "$tmp/data" sql -e "select count(*) from (select \"partition\", \"offset\" from dwd_events group by all having count(*) > 1)" | sed -n 's/^ *\([0-9][0-9]*\) *$/\1/p' | head -1)
[ "$dups" = 0 ] || fail "$dups duplicate offsets in dwd_events"
echo "streaming: kcat none/gzip/snappy/lz4/zstd -> ods $ods, dwd $dwd, dlq $dlq rows, exactly once across a kill -9"
