#!/usr/bin/env bash
# Interop: kcat (librdkafka) against `tagpipe broker`'s secured listeners: SSL, SASL_SSL
# with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, SASL_PLAINTEXT; a wrong password fails; a
# SCRAM user added and deleted at run time (tagpipe users scram) logs in, then cannot.
# Needs Debian's kcat and openssl (a throwaway CA and server certificate are made here).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin/tagpipe}
command -v kcat >/dev/null || { echo "kcat is not installed (apt-get install kcat)"; exit 1; }
command -v openssl >/dev/null || { echo "openssl is not installed"; exit 1; }
[ -x "$BIN" ] || { echo "$BIN missing: run make build"; exit 1; }

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# A CA and a server certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=interop-ca \
  -keyout "$tmp/ca-key.pem" -out "$tmp/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca-key.pem" -CAcreateserial -days 1 \
  -extfile "$tmp/ext" -out "$tmp/cert.pem" 2>/dev/null

TAGPIPE_BROKER_LISTEN=127.0.0.1:0 TAGPIPE_ADMIN_LISTEN=127.0.0.1:0 TAGPIPE_BROKER_DEFAULT_PARTITIONS=1 \
  TAGPIPE_BROKER_LISTENERS='[{name: INTERNAL, listen: "127.0.0.1:0"}, {name: SSL, listen: "127.0.0.1:0"}, {name: SASL_SSL, listen: "127.0.0.1:0"}, {name: SASL_PLAINTEXT, listen: "127.0.0.1:0"}]' \
  TAGPIPE_BROKER_SSL_CERT_FILE="$tmp/cert.pem" TAGPIPE_BROKER_SSL_KEY_FILE="$tmp/key.pem" \
  TAGPIPE_BROKER_SASL_USERS='{alice: interop-secret}' \
  "$BIN" --data-dir "$tmp/data" broker 2>"$tmp/broker.log" &
pid=$!
addr_of() { sed -n "s/.*msg=\"broker listening\".* listener=$1 .* addr=\([^ ]*\).*/\1/p" "$tmp/broker.log" | head -1; }
for _ in $(seq 1 100); do
  [ -n "$(addr_of SASL_PLAINTEXT)" ] && break
  sleep 0.1
done
[ -n "$(addr_of SASL_PLAINTEXT)" ] || { echo "broker did not start:"; cat "$tmp/broker.log"; exit 1; }
fail() { echo "FAIL: $*"; echo "--- broker log"; tail -50 "$tmp/broker.log"; exit 1; }

ssl=(-X security.protocol=SSL -X ssl.ca.location="$tmp/ca.pem")
n=0
for mode in SSL SASL_SSL:PLAIN SASL_SSL:SCRAM-SHA-256 SASL_SSL:SCRAM-SHA-512 SASL_PLAINTEXT:SCRAM-SHA-256; do
  listener=${mode%%:*}
  addr=$(addr_of "$listener")
  args=(-b "$addr")
  case $listener in
  SSL) args+=("${ssl[@]}") ;;
  SASL_SSL) args+=(-X security.protocol=SASL_SSL -X ssl.ca.location="$tmp/ca.pem") ;;
  SASL_PLAINTEXT) args+=(-X security.protocol=SASL_PLAINTEXT) ;;
  esac
  if [ "$listener" != SSL ]; then
    args+=(-X sasl.mechanisms="${mode#*:}" -X sasl.username=alice)
  fi
  topic="sec-$n"
  n=$((n + 1))
  seq 1 20 | kcat -P "${args[@]}" -X sasl.password=interop-secret -t "$topic" -X request.required.acks=-1 2>"$tmp/kcat.err" ||
    fail "kcat -P $mode: $(cat "$tmp/kcat.err")"
  got=$(kcat -C "${args[@]}" -X sasl.password=interop-secret -t "$topic" -o beginning -e -q 2>"$tmp/kcat.err" | wc -l) ||
    fail "kcat -C $mode: $(cat "$tmp/kcat.err")"
  [ "$got" = 20 ] || fail "kcat -C $mode read $got of 20 records"
  kcat -L "${args[@]}" -X sasl.password=interop-secret -t "$topic" 2>/dev/null | grep -q "broker 0 at $addr" || fail "kcat -L $mode: not advertised as $addr"
  if [ "$listener" != SSL ]; then
    if timeout 20 kcat -L "${args[@]}" -X sasl.password=wrong -m 5 >/dev/null 2>"$tmp/kcat.err"; then
      fail "kcat -L $mode with a wrong password succeeded"
    fi
  fi
  echo "kcat $mode: produce, consume, metadata ok"
done
# A user added at run time (AlterUserScramCredentials through `tagpipe users scram`, on
# the PLAINTEXT listener) logs in with librdkafka at once; deleted, it no longer can.
internal=$(addr_of INTERNAL)
sasl=(-b "$(addr_of SASL_SSL)" -X security.protocol=SASL_SSL -X ssl.ca.location="$tmp/ca.pem"
  -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=dave -X sasl.password=dave-secret)
echo dave-secret | "$BIN" users scram --bootstrap-server "$internal" --add dave --mechanism SCRAM-SHA-512 --password-stdin \
  >/dev/null 2>"$tmp/users.err" || fail "tagpipe users scram --add: $(cat "$tmp/users.err")"
"$BIN" users list --bootstrap-server "$internal" | grep -q "dave" || fail "tagpipe users list does not show dave"
seq 1 5 | kcat -P "${sasl[@]}" -t sec-dave -X request.required.acks=-1 2>"$tmp/kcat.err" || fail "kcat -P as dave: $(cat "$tmp/kcat.err")"
got=$(kcat -C "${sasl[@]}" -t sec-dave -o beginning -e -q 2>"$tmp/kcat.err" | wc -l)
[ "$got" = 5 ] || fail "kcat -C as dave read $got of 5 records: $(cat "$tmp/kcat.err")"
"$BIN" users scram --bootstrap-server "$internal" --delete dave --mechanism SCRAM-SHA-512 >/dev/null 2>"$tmp/users.err" ||
  fail "tagpipe users scram --delete: $(cat "$tmp/users.err")"
if timeout 20 kcat -L "${sasl[@]}" -m 5 >/dev/null 2>&1; then fail "kcat -L as a deleted user succeeded"; fi
echo "kcat: a SCRAM user added at run time logs in; deleted, it is refused"
grep -q "authentication failed" "$tmp/broker.log" || fail "no failed authentication logged"
if grep -q -e interop-secret -e dave-secret "$tmp/broker.log"; then fail "a password is in the broker log"; fi
if grep -rq dave-secret "$tmp/data"; then fail "a password is in the data dir"; fi
echo "kcat: SSL, SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), SASL_PLAINTEXT ok; wrong passwords refused"
