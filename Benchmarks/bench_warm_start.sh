#!/usr/bin/env bash
# The warm start without load: fill a node, stop it with SIGTERM (it writes its hot-set snapshot),
# start it again and time /ready. Prints the shutdown time and the time to /ready.
#
#   Benchmarks/bench_warm_start.sh STRATA_BIN [KEYS] [VALUE_BYTES]     # default 1000000 x 1024
#
# Needs strata-load (swift build -c release --product strata-load in Benchmarks/). Uses ports
# 29901-29902 and a data directory under a fresh temporary directory.
set -euo pipefail
BIN=$1
KEYS=${2:-1000000}
VALUE=${3:-1024}
HERE="$(cd "$(dirname "$0")" && pwd)"
LOAD="$(cd "$HERE" && swift build -c release --product strata-load --show-bin-path)/strata-load"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
serve() { "$BIN" serve --port 29901 --http-port 29902 --data-dir "$WORK/data" --memory 2GiB --disk 8GiB --log-level warning >> "$WORK/log" 2>&1 & }
ready() { until curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:29902/ready | grep -q 200; do sleep 0.01; done; }

serve; PID=$!; ready
"$LOAD" --port 29901 --fill --keys "$KEYS" --value-size "$VALUE" --fill-pipeline 32 > /dev/null
sleep 2
T0=$(date +%s.%N); kill -TERM "$PID"; wait "$PID"; T1=$(date +%s.%N)
echo "shutdown: $(echo "$T1 - $T0" | bc) s"
T0=$(date +%s.%N); serve; PID=$!; ready; T1=$(date +%s.%N)
echo "ready: $(echo "$T1 - $T0" | bc) s"
curl -s http://127.0.0.1:29902/metrics | grep -E '^strata_warmup_(loaded_keys|duration_seconds)'
kill -TERM "$PID"; wait "$PID"
