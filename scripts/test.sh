#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite: unit tests, then integration tests
# against live embedded FerretDB servers. The output ends with ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
echo "[test] setup and build took $(( $(date +%s) - start ))s"
BUILD_DIR=${BUILD_DIR:-build}
cd "$BUILD_DIR"
exec ctest --output-on-failure -j "$(nproc)" --timeout 900
