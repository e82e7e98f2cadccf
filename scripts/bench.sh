#!/usr/bin/env bash
# make bench — filled in as the features it checks land.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "make bench: nothing to run yet"
