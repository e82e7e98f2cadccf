#!/usr/bin/env bash
# Interop: Debian's psql against `tagpipe sql serve` (PostgreSQL wire protocol) on a temp
# data dir and free ports: queries, \dt, \d, a refused write, wrong and right passwords
# (SCRAM-SHA-256 and md5), TLS, and POST /v1/query on the admin listener.
# Needs Debian's postgresql-client (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${TAGPIPE_BIN:-bin/tagpipe}
command -v psql >/dev/null || { echo "psql is not installed (apt-get install postgresql-client)"; exit 1; }
command -v curl >/dev/null || { echo "curl is not installed (apt-get install curl)"; exit 1; }
[ -x "$BIN" ] || { echo "$BIN missing: run make build"; exit 1; }
ML=$(pwd)/testdata/movielens

tmp=$(mktemp -d)
pid=
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
cleanup() { stop; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- server log"; tail -30 "$tmp/sql.log" 2>/dev/null; exit 1; }

# start AUTH [TLS]: run the server, set $pg_port and $admin.
start() {
  stop
  local auth=$1 tlsenv=()
  if [ "${2:-}" = tls ]; then tlsenv=(TAGPIPE_SQL_TLS_CERT="$tmp/cert.pem" TAGPIPE_SQL_TLS_KEY="$tmp/key.pem"); fi
  env TAGPIPE_SQL_PG_LISTEN=127.0.0.1:0 TAGPIPE_ADMIN_LISTEN=127.0.0.1:0 TAGPIPE_SQL_PASSWORD=s3cret \
    TAGPIPE_SQL_PASSWORD_AUTH="$auth" "${tlsenv[@]}" \
    "$BIN" --data-dir "$tmp/data" sql serve --view "ratings=$ML/ratings.csv" --view "movies=$ML/movies.csv" 2>"$tmp/sql.log" &
  pid=$!
  pg_port= admin=
  for _ in $(seq 1 150); do
    pg_port=$(sed -n 's/.*msg="postgresql wire listening".* addr=127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/sql.log" | head -1)
    admin=$(sed -n 's/.*msg="admin listening".* addr=\([^ ]*\).*/\1/p' "$tmp/sql.log" | head -1)
    [ -n "$pg_port" ] && [ -n "$admin" ] && break
    kill -0 "$pid" 2>/dev/null || fail "server exited"
    sleep 0.1
  done
  [ -n "$pg_port" ] && [ -n "$admin" ] || fail "server did not start"
}

q() { PGPASSWORD=${PW:-s3cret} PGCONNECT_TIMEOUT=10 psql -h 127.0.0.1 -p "$pg_port" -U tagpipe -d tagpipe -X -w -v ON_ERROR_STOP=1 "$@"; }

start scram-sha-256
echo "postgresql wire on 127.0.0.1:$pg_port, admin on $admin"

out=$(q -A -t -c "SELECT count(*) FROM ratings") || fail "count query"
[ "$out" = 100836 ] || fail "count(*) = $out, want 100836"

out=$(q -A -t -F, -c "SELECT m.title, count(*) AS n FROM ratings r JOIN movies m USING (movieId) GROUP BY m.title ORDER BY n DESC, m.title LIMIT 2") || fail "join query"
[ "$out" = $'Forrest Gump (1994),329\nShawshank Redemption, The (1994),317' ] || fail "join result: $out"

out=$(q -c '\dt') || fail '\dt'
grep -q 'movies  | table | tagpipe' <<<"$out" && grep -q 'ratings | table | tagpipe' <<<"$out" || fail "\\dt output:
$out"

out=$(q -c '\d ratings') || fail '\d ratings'
grep -q 'Table "main.ratings"' <<<"$out" && grep -q 'userId    | bigint' <<<"$out" && grep -q 'rating    | double precision' <<<"$out" \
  || fail "\\d output:
$out"

if out=$(q -c "COPY ratings TO '$tmp/stolen.csv'" 2>&1); then fail "COPY TO succeeded"; fi
grep -q 'ERROR' <<<"$out" || fail "COPY: $out"
[ ! -e "$tmp/stolen.csv" ] || fail "COPY wrote a file"
out=$(q -c "\\copy (SELECT movieId, title FROM movies ORDER BY movieId LIMIT 2) TO '$tmp/movies.csv' CSV HEADER") || fail '\copy'
[ "$(cat "$tmp/movies.csv")" = $'movieId,title\n1,Toy Story (1995)\n2,Jumanji (1995)' ] || fail "\\copy wrote: $(cat "$tmp/movies.csv")"
if out=$(q -c "SELECT * FROM read_csv('/etc/passwd')" 2>&1); then fail "read_csv('/etc/passwd') succeeded"; fi
grep -q 'Permission Error' <<<"$out" || fail "read_csv: $out"

if out=$(PW=wrong q -c "SELECT 1" 2>&1); then fail "wrong password accepted"; fi
grep -q 'password authentication failed for user "tagpipe"' <<<"$out" || fail "wrong password: $out"

# HTTP on the admin listener: JSON and CSV, basic auth.
out=$(curl -sf -u tagpipe:s3cret -H 'Content-Type: application/json' -d '{"sql":"SELECT count(*) AS n FROM movies"}' "http://$admin/v1/query") || fail "POST /v1/query"
grep -q '"rows":\[\[9742\]' <<<"$out" || fail "HTTP JSON: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' -d 'SELECT 1' "http://$admin/v1/query")
[ "$code" = 401 ] || fail "HTTP without password: $code"

# md5 authentication.
start md5
out=$(q -A -t -c "SELECT 40 + 2") || fail "md5 login"
[ "$out" = 42 ] || fail "md5 query: $out"
if PW=wrong q -c "SELECT 1" >/dev/null 2>&1; then fail "md5: wrong password accepted"; fi

# TLS (self-signed certificate), sslmode=require.
if command -v openssl >/dev/null; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 -subj /CN=127.0.0.1 2>/dev/null
  start scram-sha-256 tls
  out=$(PGSSLMODE=require q -A -t -c "SELECT count(*) FROM movies") || fail "TLS login"
  [ "$out" = 9742 ] || fail "TLS query: $out"
else
  echo "openssl not installed: TLS check skipped (the Go tests cover TLS)"
fi
echo "psql interop: ok"
