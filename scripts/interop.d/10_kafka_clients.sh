#!/usr/bin/env bash
# Interop: non-Go Kafka clients against `tagpipe broker` on a temp data dir and a free
# port: kcat (librdkafka) -L/-P/-C with every codec, kafka-python producer and consumer.
# Needs Debian's kcat and python3-kafka (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin/tagpipe}
PY=${KAFKA_PYTHON:-/usr/bin/python3}
command -v kcat >/dev/null || { echo "kcat is not installed (apt-get install kcat)"; exit 1; }
"$PY" -c 'import kafka' 2>/dev/null || { echo "kafka-python is not installed for $PY (apt-get install python3-kafka)"; exit 1; }
[ -x "$BIN" ] || { echo "$BIN missing: run make build"; exit 1; }

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
TAGPIPE_BROKER_LISTEN=127.0.0.1:0 TAGPIPE_ADMIN_LISTEN=127.0.0.1:0 TAGPIPE_BROKER_DEFAULT_PARTITIONS=3 \
  TAGPIPE_BROKER_LOG_CLEANER_BACKOFF=500ms "$BIN" --data-dir "$tmp/data" broker 2>"$tmp/broker.log" &
pid=$!
addr=
for _ in $(seq 1 100); do
  addr=$(sed -n 's/.*msg="broker listening".* addr=\([^ ]*\).*/\1/p' "$tmp/broker.log" | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "broker did not start:"; cat "$tmp/broker.log"; exit 1; }
echo "broker on $addr"
fail() { echo "FAIL: $*"; echo "--- broker log"; tail -50 "$tmp/broker.log"; exit 1; }

# kcat: produce keyed lines with each codec, read everything back, compare.
"$BIN" --data-dir "$tmp/data" topics create --bootstrap-server "$addr" --topic kcat --partitions 3 >/dev/null
: >"$tmp/want"
for codec in none gzip snappy lz4 zstd; do
  for i in $(seq 1 50); do echo "key$((i % 7)):$codec-$i"; done >"$tmp/in-$codec"
  kcat -P -b "$addr" -t kcat -K: -z "$codec" -X request.required.acks=-1 <"$tmp/in-$codec" || fail "kcat -P -z $codec"
  cat "$tmp/in-$codec" >>"$tmp/want"
done
kcat -C -b "$addr" -t kcat -o beginning -e -q -f '%k:%s\n' >"$tmp/got" || fail "kcat -C"
diff <(sort "$tmp/want") <(sort "$tmp/got") >/dev/null || fail "kcat read back $(wc -l <"$tmp/got") of $(wc -l <"$tmp/want") records"
# Per partition, each key's records come back in the order produced.
for p in 0 1 2; do
  kcat -C -b "$addr" -t kcat -p "$p" -o beginning -e -q -f '%k:%s\n' >"$tmp/p$p"
done
for k in $(seq 0 6); do
  got=$(cat "$tmp/p0" "$tmp/p1" "$tmp/p2" | grep "^key$k:" | tr '\n' ' ')
  want=$(grep "^key$k:" "$tmp/want" | tr '\n' ' ')
  [ "$got" = "$want" ] || fail "key$k order: got [$got] want [$want]"
done
kcat -L -b "$addr" -t kcat >"$tmp/meta" || fail "kcat -L"
grep -q '3 partitions' "$tmp/meta" || fail "kcat -L: $(cat "$tmp/meta")"
grep -q "broker 0 at $addr" "$tmp/meta" || fail "kcat -L broker: $(cat "$tmp/meta")"
echo "kcat: -L, -P/-C with none/gzip/snappy/lz4/zstd: $(wc -l <"$tmp/got") records ok"

# kcat against a compacted topic: each codec's batch (a segment each, segment.bytes=200)
# keeps one key of its own and loses the rest to the zstd batch's newer copies, so the
# log cleaner writes every codec's batch again; librdkafka reads the cleaned log.
"$BIN" --data-dir "$tmp/data" topics create --bootstrap-server "$addr" --topic kcompact --partitions 1 \
  --config cleanup.policy=compact --config segment.bytes=200 --config min.cleanable.dirty.ratio=0.01 >/dev/null
: >"$tmp/cwant"
for codec in none gzip snappy lz4 zstd; do
  { for i in $(seq 1 12); do echo "key$((i % 4)):$codec-$i"; done; echo "only-$codec:$codec"; } >"$tmp/cin"
  kcat -P -b "$addr" -t kcompact -K: -z "$codec" -X request.required.acks=-1 <"$tmp/cin" || fail "kcat -P compacted -z $codec"
  echo "only-$codec:$codec" >>"$tmp/cwant"
done
for i in $(seq 9 12); do echo "key$((i % 4)):zstd-$i" >>"$tmp/cwant"; done
for end in end1 end2; do # end2 stays in the active segment, which is never cleaned
  echo "$end:x" | kcat -P -b "$addr" -t kcompact -K: -X request.required.acks=-1 || fail "kcat -P $end"
  echo "$end:x" >>"$tmp/cwant"
done
for _ in $(seq 1 100); do
  kcat -C -b "$addr" -t kcompact -o beginning -e -q -f '%k:%s\n' >"$tmp/cgot" || fail "kcat -C compacted"
  diff <(sort "$tmp/cwant") <(sort "$tmp/cgot") >/dev/null && break
  sleep 0.2
done
diff <(sort "$tmp/cwant") <(sort "$tmp/cgot") || fail "compacted topic: kcat read $(wc -l <"$tmp/cgot") records, want the $(wc -l <"$tmp/cwant") newest per key"
grep -q "log cleaner compacted partition" "$tmp/broker.log" || fail "no log cleaner pass in the broker log"
echo "kcat: compacted topic cleaned in every codec, $(wc -l <"$tmp/cgot") records left, read back"

# kcat -G: a balanced consumer group reads everything, then commits; a second run of the
# same group finds nothing new (it resumes from the committed offsets).
timeout 60 kcat -b "$addr" -G kcatgroup -o beginning -e -q -f '%k:%s\n' \
  -X auto.commit.interval.ms=100 -X session.timeout.ms=6000 kcat >"$tmp/group" 2>"$tmp/group.err" || true
diff <(sort "$tmp/want") <(sort "$tmp/group") >/dev/null || fail "kcat -G read $(wc -l <"$tmp/group") of $(wc -l <"$tmp/want"): $(tail -3 "$tmp/group.err")"
timeout 60 kcat -b "$addr" -G kcatgroup -e -q -f '%k:%s\n' -X session.timeout.ms=6000 kcat >"$tmp/group2" 2>/dev/null || true
[ ! -s "$tmp/group2" ] || fail "kcat -G second run re-read $(wc -l <"$tmp/group2") records"
echo "kcat -G: group read $(wc -l <"$tmp/group") records, resumed from committed offsets"

# kcat reads the group's commits from the internal __consumer_offsets topic: Kafka's
# binary keys (version, group, topic, partition), every one in the group's partition,
# abs(Java hashCode("kcatgroup")) % 50 = 42.
kcat -L -b "$addr" -t __consumer_offsets | grep -q '50 partitions' || fail "kcat -L __consumer_offsets: $(kcat -L -b "$addr" -t __consumer_offsets)"
kcat -C -b "$addr" -t __consumer_offsets -o beginning -e -q -f '%p %k\n' | grep -a kcatgroup >"$tmp/offsets" || fail "kcat -C __consumer_offsets: no record of kcatgroup"
parts=$(cut -d' ' -f1 "$tmp/offsets" | sort -u | tr '\n' ' ')
[ "$parts" = "42 " ] || fail "kcatgroup's records in partitions $parts, want 42"
[ "$(grep -ac 'kcat' "$tmp/offsets")" -ge 4 ] || fail "kcat -C __consumer_offsets: $(wc -l <"$tmp/offsets") records of kcatgroup"
echo "kcat -C __consumer_offsets: $(wc -l <"$tmp/offsets") records of kcatgroup, all in partition 42"

# kafka-python: producer (acks=all, gzip) then a group-less consumer from the beginning.
"$PY" - "$addr" <<'PYEOF' || fail "kafka-python"
import sys
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
addr = sys.argv[1]
n = 500
p = KafkaProducer(bootstrap_servers=addr, acks='all', compression_type='gzip', linger_ms=5)
futs = [p.send('pyt', key=b'k%d' % (i % 5), value=b'v%d' % i) for i in range(n)]
p.flush()
meta = [f.get(timeout=30) for f in futs]
p.close()
c = KafkaConsumer(bootstrap_servers=addr, group_id=None, auto_offset_reset='earliest',
                  enable_auto_commit=False, consumer_timeout_ms=5000)
parts = c.partitions_for_topic('pyt')
c.assign([TopicPartition('pyt', q) for q in parts])
got = [m for m in c]
c.close()
assert len(got) == n, "consumed %d of %d" % (len(got), n)
per_key = {}
for m in got:
    per_key.setdefault(m.key, []).append(int(m.value[1:]))
for k, seqs in per_key.items():
    assert seqs == sorted(seqs), "key %r out of order" % k
for m, md in zip(sorted(got, key=lambda m: int(m.value[1:])), meta):
    assert (m.partition, m.offset) == (md.partition, md.offset), "record %r at %d/%d, acked %d/%d" % (m.value, m.partition, m.offset, md.partition, md.offset)
print("kafka-python: %d records produced (gzip, acks=all) and consumed back in order" % n)
g = KafkaConsumer('pyt', bootstrap_servers=addr, group_id='pygroup', auto_offset_reset='earliest',
                  enable_auto_commit=False, consumer_timeout_ms=8000, session_timeout_ms=6000)
seen = [m for m in g]
g.commit()
g.close()
assert len(seen) == n, "group consumed %d of %d" % (len(seen), n)
g = KafkaConsumer('pyt', bootstrap_servers=addr, group_id='pygroup', auto_offset_reset='earliest',
                  consumer_timeout_ms=3000, session_timeout_ms=6000)
again = [m for m in g]
g.close()
assert not again, "group re-read %d records after commit" % len(again)
print("kafka-python: KafkaConsumer group read %d records, committed, resumed with nothing new" % n)
PYEOF
# kcat reads transactions: librdkafka's default isolation is read_committed, so of a
# committed, an aborted and a committed transaction (franz-go's transactional producer,
# broker/testdata/txnproducer) it shows the committed records only; read_uncommitted all.
"$BIN" --data-dir "$tmp/data" topics create --bootstrap-server "$addr" --topic txn --partitions 1 >/dev/null
go run ./broker/testdata/txnproducer -brokers "$addr" -topic txn || fail "txnproducer"
got=$(kcat -C -b "$addr" -t txn -o beginning -e -q -f '%s\n' | tr '\n' ' ')
[ "$got" = "c1 c2 c3 " ] || fail "kcat read_committed read: $got"
got=$(kcat -C -b "$addr" -t txn -o beginning -e -q -X isolation.level=read_uncommitted -f '%s\n' | tr '\n' ' ')
[ "$got" = "c1 c2 a1 a2 c3 " ] || fail "kcat read_uncommitted read: $got"
echo "kcat: read_committed skips the aborted transaction, read_uncommitted sees it"
echo "interop kafka clients: ok"
