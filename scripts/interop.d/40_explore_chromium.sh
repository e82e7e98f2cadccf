#!/usr/bin/env bash
# Interop: `tagpipe explore` reports opened in Debian's headless Chromium: MovieLens
# ratings.csv and a deliberately broken CSV. Each page must render its charts with no
# console message; the screenshots are kept in .artifacts/ for a human to look at.
# Needs Debian's chromium (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${TAGPIPE_BIN:-bin/tagpipe}
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || { echo "chromium is not installed (apt-get install chromium)"; exit 1; }
[ -x "$BIN" ] || { echo "$BIN missing: run make build"; exit 1; }
mkdir -p .artifacts
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# A broken copy of the first 2000 ratings: wrong field counts, a broken quote, values
# that do not fit their column, a blank line.
{
  head -n 1001 testdata/movielens/ratings.csv
  echo '1,31,2.5,1260759144,surplus'
  echo '1,1029'
  echo '1,"1061,3.0,1260759182'
  echo ''
  echo '1,1129,abc,1260759185'
  sed -n '1002,2001p' testdata/movielens/ratings.csv
} >"$tmp/broken.csv"

chrome() { # chrome PAGE PNG LOG
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
    --disable-sync --user-data-dir="$(mktemp -d -p "$tmp")" --window-size=1280,2200 --screenshot="$2" \
    --enable-logging=stderr --v=0 "file://$1" 2>"$3" || { cat "$3"; fail "chromium failed on $1"; }
}

for name in ratings broken; do
  src=testdata/movielens/ratings.csv
  [ "$name" = broken ] && src=$tmp/broken.csv
  "$BIN" --data-dir "$tmp/data" explore "$src" --out "$tmp/$name.html" >"$tmp/$name.txt" 2>"$tmp/$name.err" \
    || { cat "$tmp/$name.err"; fail "explore $src"; }
  page=$tmp/$name.html
  grep -q '<script' "$page" && fail "$name report has a script"
  grep -Eq ' (src|href)=' "$page" && fail "$name report references an external resource"
  [ "$(grep -o '<svg' "$page" | wc -l)" -ge 5 ] || fail "$name report has too few charts"
  png=.artifacts/explore-$name.png
  rm -f "$png"
  chrome "$(cd "$(dirname "$page")" && pwd)/$(basename "$page")" "$png" "$tmp/$name.chrome.log"
  if grep -E ':CONSOLE|Uncaught|Refused to|Failed to load resource' "$tmp/$name.chrome.log"; then
    fail "$name report logged console messages"
  fi
  [ -s "$png" ] && [ "$(stat -c %s "$png")" -gt 20000 ] || fail "$name screenshot is missing or blank"
  cp "$page" ".artifacts/explore-$name.html"
  echo "explore $name: $(head -2 "$tmp/$name.txt" | tail -1); screenshot $png"
done
grep -q 'rows: 100836 of 100836 lines; malformed: 0 (0.00%)' "$tmp/ratings.txt" || fail "ratings summary: $(cat "$tmp/ratings.txt")"
grep -q 'rows: 2000 of 2004 lines; malformed: 4 (0.20%)' "$tmp/broken.txt" || fail "broken summary: $(cat "$tmp/broken.txt")"
grep -q '<b id="malformed">4</b>' .artifacts/explore-broken.html || fail "broken report lacks the malformed count"
echo "explore chromium interop: ok"
