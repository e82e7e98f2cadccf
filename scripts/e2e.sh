#!/usr/bin/env bash
# make e2e: the end-to-end suite (e2e/, build tag e2e). It drives bin/tagpipe as separate
# broker / collector / streaming processes on free 127.0.0.1 ports and a temp data dir:
# the demo flow asserted table by table (TestDemoFlow) and a kill -9 fault round
# (TestFaultRound; E2E_SEED picks the kill moments, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
make build
export TAGPIPE_BIN=${TAGPIPE_BIN:-$(pwd)/bin/tagpipe}
exec go test -tags e2e -count=1 -timeout 30m -v ./e2e/ "$@"
