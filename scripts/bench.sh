#!/usr/bin/env bash
# make bench: every Go benchmark in the tree (each compares itself with its peer in the
# same run where one exists, e.g. franz-go's kfake). BENCH=regexp and PKGS=… narrow it.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench "${BENCH:-.}" -benchmem -timeout 60m ${PKGS:-./...}
