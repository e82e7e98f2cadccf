#!/usr/bin/env bash
# Interop: the web console in Debian's headless Chromium, on the demo data.
#
# Runs scripts/demo.sh with DEMO_KEEP=1 (tagpipe up on a temp dir, MovieLens + a Taobao-style
# log, the nightly tag job), then opens every console page: each must answer 200, show no
# error box and no empty panel ("no data yet", "No … yet"), reference no external resource,
# log no console message in Chromium, and leave a non-blank screenshot in
# .artifacts/console-<page>.png for a human to look at. Stops tagpipe up at the end.
# Needs Debian's chromium (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=bin/tagpipe   # scripts/demo.sh runs this one too
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || { echo "chromium is not installed (apt-get install chromium)"; exit 1; }
[ -x "$BIN" ] || { echo "$BIN missing: run make build"; exit 1; }
mkdir -p .artifacts
tmp=$(mktemp -d /tmp/tagpipe-console.XXXXXX)
UP=
cleanup() {
  if [ -n "$UP" ] && kill -0 "$UP" 2>/dev/null; then
    kill -TERM "$UP" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$UP" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$UP" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The demo data: DEMO_KEEP=1 leaves tagpipe up running and prints its pid.
DEMO_TAOBAO_EVENTS=${DEMO_TAOBAO_EVENTS:-20000} DEMO_KEEP=1 DEMO_DIR="$tmp/demo" ./scripts/demo.sh >"$tmp/demo.out" 2>&1 \
  || { tail -40 "$tmp/demo.out"; fail "scripts/demo.sh"; }
UP=$(sed -n 's/.*tagpipe up keeps running (pid \([0-9]*\).*/\1/p' "$tmp/demo.out")
ADMIN=$(sed -n 's/.*admin http:\/\/\(127\.0\.0\.1:[0-9]*\).*/\1/p' "$tmp/demo.out" | head -1)
[ -n "$UP" ] && [ -n "$ADMIN" ] || { cat "$tmp/demo.out"; fail "cannot find tagpipe up's pid and admin address in the demo output"; }
echo "demo data ready: tagpipe up pid $UP, console http://$ADMIN/console/"
# One streaming batch and one collector report after the demo's last step, so every
# chart has points.
sleep 3

chrome() { # chrome URL PNG LOG
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
    --disable-sync --no-first-run --user-data-dir="$(mktemp -d -p "$tmp")" --window-size=1280,1600 --screenshot="$2" \
    --enable-logging=stderr --v=0 "$1" 2>"$3" || { cat "$3"; fail "chromium failed on $1"; }
}

SQLQ='SELECT%20tag%2C%20count(*)%20AS%20users%20FROM%20ads_user_interest_tags%20GROUP%20BY%20tag%20ORDER%20BY%20users%20DESC%20LIMIT%2010'
# page name, path, what the page must contain on the demo data
pages=(
  "overview||<svg"
  "topics|topics|events"
  "groups|groups|tagpipe-streaming"
  "ingest|ingest|spool"
  "streaming|streaming|<svg"
  "jobs|jobs|tags_nightly"
  "tags|tags|<svg"
  "user|user?id=414|Drama"
  "sql|sql?q=$SQLQ|<td"
)
problems=0
for p in "${pages[@]}"; do
  IFS='|' read -r name path want <<<"$p"
  url="http://$ADMIN/console/$path"
  html=$tmp/$name.html
  code=$(curl -sS -o "$html" -w '%{http_code}' "$url") || fail "GET $url"
  [ "$code" = 200 ] || { head -c 600 "$html"; fail "GET $url: HTTP $code"; }
  cp "$html" ".artifacts/console-$name.html"
  grep -Eq '<script[^>]* src=|<link[^>]* href="?https?:|src="?https?:' "$html" && fail "$name references an external resource"
  why=()
  grep -q -- "$want" "$html" || why+=("lacks \"$want\"")
  grep -q 'class="err"' "$html" && why+=("shows an error: $(grep -o 'class="err">[^<]*' "$html" | head -3 | tr '\n' ' ')")
  grep -Eq 'no data yet|No [a-z ]+ yet\.|reported no metrics yet|No topics\.|No consumer groups\.' "$html" \
    && why+=("has an empty panel: $(grep -oE '[^>]*(no data yet|No [a-z ]+ yet\.|reported no metrics yet|No topics\.|No consumer groups\.)' "$html" | head -3 | tr '\n' ';')")
  png=.artifacts/console-$name.png
  rm -f "$png"
  chrome "$url" "$png" "$tmp/$name.chrome.log"
  if grep -E ':CONSOLE|Uncaught|Refused to|Failed to load resource' "$tmp/$name.chrome.log"; then
    why+=("logged console messages in Chromium")
  fi
  if ! [ -s "$png" ] || [ "$(stat -c %s "$png")" -lt 20000 ]; then why+=("screenshot missing or blank"); fi
  if [ ${#why[@]} -gt 0 ]; then
    problems=$((problems + 1))
    printf 'console %-9s %s: %s\n' "$name" "$url" "$(IFS='; '; echo "${why[*]}")"
  else
    printf 'console %-9s ok  (%d <svg> charts, screenshot %s, %s bytes)\n' "$name" "$(grep -o '<svg' "$html" | wc -l)" "$png" "$(stat -c %s "$png")"
  fi
done
[ "$problems" = 0 ] || fail "$problems console page(s) with problems (pages and screenshots in .artifacts/)"
echo "console chromium interop: ok"
