#!/usr/bin/env bash
# make demo: the whole pipeline on real data, from a fresh clone, in a few minutes.
#
#   1. start `tagpipe up` (broker, collector, streaming, scheduler, SQL) on a temp data dir
#   2. load MovieLens movie genres as item tags (dim_item)
#   3. drop MovieLens ratings.csv and a generated Taobao-style log into the spool directory
#   4. wait until streaming has committed every line to dwd_events (or dlq_events)
#   5. run the nightly tag job for the data's last day
#   6. print the top interest tags of a few users and the commands to query further
#   7. stop cleanly (DEMO_KEEP=1 keeps it running)
#
# Exits non-zero if any step fails. DEMO_DIR picks the data dir (default: a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${DEMO_BIN:-$ROOT/bin/tagpipe}
DEMO_DIR=${DEMO_DIR:-$(mktemp -d /tmp/tagpipe-demo.XXXXXX)}
DATA=$DEMO_DIR/data
LOG=$DEMO_DIR/tagpipe-up.log
TB_EVENTS=${DEMO_TAOBAO_EVENTS:-50000}
DS=2018-09-24   # the last day of the MovieLens sample
mkdir -p "$DATA"

START=$(date +%s)
say() { printf '\n\033[1m== [%3ss] %s\033[0m\n' "$(($(date +%s) - START))" "$*"; }
fail() { echo "demo: $*" >&2; [ -f "$LOG" ] && { echo "--- last lines of $LOG:" >&2; tail -40 "$LOG" >&2; }; exit 1; }

# Use the documented default ports when free; otherwise pick free ones so the demo still
# runs next to another tagpipe.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pick() { if port_free "$1"; then echo "$1"; else free_port; fi; }
KAFKA_PORT=$(pick 9092); ADMIN_PORT=$(pick 8080); PG_PORT=$(pick 5433)
export TAGPIPE_BROKER_LISTEN=127.0.0.1:$KAFKA_PORT
export TAGPIPE_ADMIN_LISTEN=127.0.0.1:$ADMIN_PORT
export TAGPIPE_SQL_PG_LISTEN=127.0.0.1:$PG_PORT
export TAGPIPE_STREAMING_BATCH_INTERVAL=${TAGPIPE_STREAMING_BATCH_INTERVAL:-2s}
T="$BIN --data-dir $DATA"

say "tagpipe up (data dir $DATA, Kafka 127.0.0.1:$KAFKA_PORT, admin http://127.0.0.1:$ADMIN_PORT, PostgreSQL 127.0.0.1:$PG_PORT)"
$T up >"$LOG" 2>&1 &
UP=$!
stop_up() {
  if kill -0 "$UP" 2>/dev/null; then
    kill -TERM "$UP"
    wait "$UP" || fail "tagpipe up did not stop cleanly"
  fi
}
trap 'kill -9 $UP 2>/dev/null || true' EXIT
for i in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$UP" 2>/dev/null || fail "tagpipe up exited"
  sleep 0.5
done
curl -fs "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null || fail "tagpipe up not ready after 60s"
echo "ready"

say "load item tags: MovieLens genres -> dim_item"
$T tags items --format movielens testdata/movielens/movies.csv

# Lines already committed (a DEMO_DIR of an earlier run): the wait below counts on top.
q() { $T sql --format csv -e "$1" | tail -n +2; }
COMMITTED="SELECT (SELECT count(*) FROM dwd_events) + (SELECT count(*) FROM dlq_events WHERE raw NOT LIKE 'userId,%')"
base=$(q "$COMMITTED" 2>/dev/null || echo 0)

say "drop MovieLens ratings and a generated Taobao-style log into the spool directory"
SPOOL=$DATA/spool/events
mkdir -p "$SPOOL"
RATINGS=$(($(wc -l < testdata/movielens/ratings.csv) - 1))
# Files are written under a dot name and renamed in: the spooldir source only picks up
# complete, immutable files.
cp testdata/movielens/ratings.csv "$SPOOL/.movielens-ratings.csv.tmp"
mv "$SPOOL/.movielens-ratings.csv.tmp" "$SPOOL/movielens-ratings.csv"
# Taobao ids get a "tb" prefix so they never collide with MovieLens users and movies.
$BIN gen --events "$TB_EVENTS" --users 2000 --items 20000 --categories 50 --days 7 --start 2018-09-18 --seed 7 \
  | awk -F, -v OFS=, '{ $1 = "tb" $1; $2 = "tb" $2; $3 = "cat" $3; print }' > "$SPOOL/.taobao.log.tmp"
mv "$SPOOL/.taobao.log.tmp" "$SPOOL/taobao-behaviour.log"
echo "$RATINGS ratings + $TB_EVENTS behaviour events"

say "wait until streaming has committed every line"
want=$((RATINGS + TB_EVENTS))
for i in $(seq 1 180); do
  got=$(($(q "$COMMITTED" 2>/dev/null || echo "$base") - base))
  printf '\r%s / %s events in dwd_events' "$got" "$want"
  [ "$got" -ge "$want" ] && break
  kill -0 "$UP" 2>/dev/null || fail "tagpipe up exited"
  sleep 1
done
echo
[ "$got" -ge "$want" ] || fail "only $got of $want events arrived in 180s"
q "SELECT 'ods_events', count(*) FROM ods_events UNION ALL SELECT 'dwd_events', count(*) FROM dwd_events UNION ALL SELECT 'dlq_events', count(*) FROM dlq_events" | column -t -s,

say "nightly tag job for ds=$DS"
$T jobs run --job tags_nightly --downstream --ds "$DS"

say "top interest tags of a few users (ads_user_interest_tags, dt=$DS)"
TB_USER=$(q "SELECT user_id FROM ads_user_interest_tags WHERE dt = '$DS' AND user_id LIKE 'tb%'
              GROUP BY user_id ORDER BY sum(events) DESC, user_id LIMIT 1")
$T sql -e "SELECT user_id, rank, tag, round(weight, 3) AS weight, events
           FROM ads_user_interest_tags WHERE dt = '$DS' AND user_id IN ('1', '2', '414', '$TB_USER') AND rank <= 3
           ORDER BY user_id, rank"
# Why: the events that weighed most for one user (written to a file first: with pipefail,
# head closing the pipe early would fail the demo).
$T tags show --user 414 --ds "$DS" > "$DEMO_DIR/why-414.txt"
head -16 "$DEMO_DIR/why-414.txt"

cat <<TXT

Query further (on the data dir, no server needed):
  $BIN --data-dir $DATA sql                      # DuckDB shell over every table
  $BIN --data-dir $DATA tags show --user 414 --ds $DS
TXT
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  LIVE="while it runs"
else
  # The ports the demo used, when they were not the defaults.
  ENVS=""
  [ "$KAFKA_PORT" = 9092 ] || ENVS+="TAGPIPE_BROKER_LISTEN=$TAGPIPE_BROKER_LISTEN "
  [ "$ADMIN_PORT" = 8080 ] || ENVS+="TAGPIPE_ADMIN_LISTEN=$TAGPIPE_ADMIN_LISTEN "
  [ "$PG_PORT" = 5433 ] || ENVS+="TAGPIPE_SQL_PG_LISTEN=$TAGPIPE_SQL_PG_LISTEN "
  LIVE="after starting it again with: $ENVS$BIN --data-dir $DATA up"
fi
cat <<TXT
Live servers ($LIVE):
  psql -h 127.0.0.1 -p $PG_PORT -U tagpipe -c 'SELECT tag, count(*) FROM ads_user_interest_tags GROUP BY 1 ORDER BY 2 DESC'
  curl -s http://127.0.0.1:$ADMIN_PORT/v1/query -d 'SELECT count(*) FROM dwd_events'
  open http://127.0.0.1:$ADMIN_PORT/console/         # web console
TXT

if [ "${DEMO_KEEP:-0}" = 1 ]; then
  trap - EXIT
  echo
  echo "DEMO_KEEP=1: tagpipe up keeps running (pid $UP, log $LOG). Stop it with: kill $UP"
  exit 0
fi
say "stop"
stop_up
trap - EXIT
echo "stopped cleanly after $(($(date +%s) - START))s; data left in $DATA"
