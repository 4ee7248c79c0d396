#!/usr/bin/env bash
# Runs every Strata test: the Swift unit and integration tests, then the end-to-end tests that
# start real `strata` processes and drive them with redis-cli and redis-py.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-deps.sh

# 1. Swift tests: the store, RESP, and the server's units.
swift build --build-tests
swift test --skip-build

# 2. The embedding example: its own package, depending on this one by path and using only the
#    StrataStore product, as a user's program would (so it builds none of the server's packages).
swift build --package-path Examples/EmbeddedStore
example_output="$("$(swift build --package-path Examples/EmbeddedStore --show-bin-path)/EmbeddedStore")"
echo "$example_output"
[ "$example_output" = "hello from an embedded StrataStore" ]

# 3. End-to-end: real `strata` processes on loopback ports, driven by redis-py, redis-cli,
#    redis-benchmark and a real redis-server for side-by-side replies.
export STRATA_BIN="$(swift build --show-bin-path)/strata"
python3 -m pytest -q Tests/e2e
