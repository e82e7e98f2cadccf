#!/usr/bin/env bash
# make demo: the all-in-one pipeline on the embedded defaults and the MovieLens sample.
# Until `tagpipe up` lands (issue 11) it shows what the binary can do today.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=bin/tagpipe
"$BIN" version
echo
echo "Effective configuration (embedded defaults; no file needed):"
"$BIN" config print
echo
echo "tagpipe up is not built yet: the demo will run the whole pipeline once it lands."
