#!/usr/bin/env bash
# Runs every Strata test: the Swift unit and integration tests, then the end-to-end tests that
# start real `strata` processes and drive them with redis-cli and redis-py.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-deps.sh

swift build --build-tests
swift test --skip-build
