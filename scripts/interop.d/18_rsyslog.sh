#!/usr/bin/env bash
# Interop: rsyslog, the syslog daemon most Linux hosts run, as a real syslog and Kafka
# client. Messages logged with `logger` into its socket reach tagpipe three ways:
#   - omfwd over TCP, RFC 5424 with octet-counted framing -> `tagpipe ingest` syslog source
#   - omfwd over UDP, RFC 3164 (rsyslog's traditional forward format) -> syslog source
#   - omkafka (librdkafka, lz4, acks=all) straight into the broker
# and are read back with `tagpipe consume`: every message once per path, with the
# facility, severity, host and app name the syslog sources parsed from it.
# Needs Debian's rsyslog and rsyslog-kafka (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v rsyslogd >/dev/null || { echo "rsyslog is not installed (apt-get install rsyslog rsyslog-kafka)"; exit 1; }
command -v logger >/dev/null || { echo "logger (bsdutils) is not installed"; exit 1; }
. scripts/interop.d/lib/broker.sh
start_broker
rpid= ipid=
stop_all() {
  for p in $rpid $ipid; do { kill "$p" && wait "$p"; } 2>/dev/null || true; done
  cleanup
}
trap stop_all EXIT
free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
tcp=$(free_port SOCK_STREAM) udp=$(free_port SOCK_DGRAM)

# The collector: both syslog sources into one memory channel, a kafka sink to `syslog`;
# a static interceptor per source says which path a record came by.
cat >"$tmp/ingest.yaml" <<YAML
ingest:
  bootstrap_servers: ["$addr"]
  agents:
    rs:
      sources:
        tcp:
          type: syslog
          protocol: tcp
          listen: "127.0.0.1:$tcp"
          channels: [mem]
          interceptors: [{type: static, key: via, value: tcp}]
        udp:
          type: syslog
          protocol: udp
          listen: "127.0.0.1:$udp"
          channels: [mem]
          interceptors: [{type: static, key: via, value: udp}]
      channels:
        mem: {type: memory}
      sinks:
        kafka: {type: kafka, channel: mem, topic: syslog}
YAML
TAGPIPE_ADMIN_LISTEN=127.0.0.1:0 "$BIN" --data-dir "$tmp/data" --config "$tmp/ingest.yaml" ingest 2>"$tmp/ingest.log" &
ipid=$!
for _ in $(seq 1 100); do
  grep -q "127.0.0.1:$tcp" "$tmp/ingest.log" 2>/dev/null && break
  kill -0 "$ipid" 2>/dev/null || { cat "$tmp/ingest.log"; fail "tagpipe ingest exited"; }
  sleep 0.1
done

mkdir -p "$tmp/rs"
cat >"$tmp/rsyslog.conf" <<CONF
global(workDirectory="$tmp/rs")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$tmp/log.sock")
module(load="omkafka")
action(type="omfwd" target="127.0.0.1" port="$tcp" protocol="tcp" TCP_Framing="octet-counted"
       template="RSYSLOG_SyslogProtocol23Format" action.resumeRetryCount="-1" queue.type="LinkedList")
action(type="omfwd" target="127.0.0.1" port="$udp" protocol="udp" template="RSYSLOG_TraditionalForwardFormat")
action(type="omkafka" broker=["$addr"] topic="rsyslog" template="RSYSLOG_TraditionalFileFormat"
       confParam=["compression.codec=lz4", "request.required.acks=-1"] action.resumeRetryCount="-1")
CONF
rsyslogd -N1 -f "$tmp/rsyslog.conf" >"$tmp/rsyslog-check.log" 2>&1 || { cat "$tmp/rsyslog-check.log"; fail "rsyslog config"; }
rsyslogd -n -f "$tmp/rsyslog.conf" -i "$tmp/rsyslog.pid" >"$tmp/rsyslog.log" 2>&1 &
rpid=$!
for _ in $(seq 1 100); do [ -S "$tmp/log.sock" ] && break; sleep 0.1; done
[ -S "$tmp/log.sock" ] || { cat "$tmp/rsyslog.log"; fail "rsyslogd did not open its socket"; }

n=20
for i in $(seq 1 $n); do
  logger -u "$tmp/log.sock" -t tagpipe-check -p local3.warning "check message $i of $n"
done

# count TOPIC VIA: the records of TOPIC (with header via=VIA when given) seen so far.
consume() { "$BIN" consume --bootstrap-server "$addr" --topic "$1" --from-beginning --timeout-ms 2000 --print-headers 2>/dev/null || true; }
for _ in $(seq 1 60); do
  consume syslog >"$tmp/syslog.out"; consume rsyslog >"$tmp/rsyslog.out"
  t=$(grep -c 'via:tcp' "$tmp/syslog.out" || true) u=$(grep -c 'via:udp' "$tmp/syslog.out" || true) k=$(grep -c 'check message' "$tmp/rsyslog.out" || true)
  [ "$t" -ge $n ] && [ "$u" -ge $n ] && [ "$k" -ge $n ] && break
  sleep 0.5
done
echo "--- a record of each path:"; grep -m1 via:tcp "$tmp/syslog.out"; grep -m1 via:udp "$tmp/syslog.out"; grep -m1 'check message' "$tmp/rsyslog.out"
for via in tcp udp; do
  got=$(grep "via:$via" "$tmp/syslog.out" | grep -c 'facility:19' || true)
  [ "$got" = $n ] || fail "$got of $n records by $via with facility 19 (local3)"
  got=$(grep "via:$via" "$tmp/syslog.out" | grep 'severity:4' | grep 'app_name:tagpipe-check' | grep -c 'check message' || true)
  [ "$got" = $n ] || fail "$got of $n records by $via with severity 4, app name and message"
  for i in $(seq 1 $n); do
    c=$(grep "via:$via" "$tmp/syslog.out" | grep -c "check message $i of $n\$" || true)
    [ "$c" = 1 ] || fail "message $i came by $via $c times"
  done
done
for i in $(seq 1 $n); do
  c=$(grep -c "tagpipe-check.*check message $i of $n\$" "$tmp/rsyslog.out" || true)
  [ "$c" = 1 ] || fail "message $i came by omkafka $c times"
done
echo "rsyslog: $n messages each by omfwd TCP (RFC 5424, octet-counted) and UDP (RFC 3164) into the syslog sources, and by omkafka (lz4, acks=all) into the broker"
