# Sourced by interop checks: `tagpipe broker` on a temp data dir and a free port of
# 127.0.0.1 (3 partitions by default), stopped and its dir removed on exit.
# After `start_broker`: $tmp (the temp dir), $addr (host:port), $bpid; `fail MSG` prints
# MSG and the broker log's tail and exits 1. Extra env for the broker: BROKER_ENV.
BIN=${BIN:-bin/tagpipe}
tmp=$(mktemp -d)
bpid=
cleanup() { # never stopped by set -e: the temp dir always goes
  if [ -n "$bpid" ]; then { kill "$bpid" && wait "$bpid"; } 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- broker log"; tail -50 "$tmp/broker.log"; exit 1; }

start_broker() {
  [ -x "$BIN" ] || { echo "$BIN missing: run make build"; exit 1; }
  env TAGPIPE_BROKER_LISTEN=127.0.0.1:0 TAGPIPE_ADMIN_LISTEN=127.0.0.1:0 TAGPIPE_BROKER_DEFAULT_PARTITIONS=3 \
    ${BROKER_ENV:-} "$BIN" --data-dir "$tmp/data" broker 2>"$tmp/broker.log" &
  bpid=$!
  addr=
  for _ in $(seq 1 100); do
    addr=$(sed -n 's/.*msg="broker listening".* addr=\([^ ]*\).*/\1/p' "$tmp/broker.log" | head -1)
    [ -n "$addr" ] && break
    kill -0 "$bpid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "broker did not start:"; cat "$tmp/broker.log"; exit 1; }
  echo "broker on $addr"
}
