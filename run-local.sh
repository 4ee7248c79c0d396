#!/usr/bin/env bash
# Builds Strata (release) and runs a local node with its data directory under ./data/.
# Installs what it needs on a fresh Debian machine (run as root). Ctrl-C stops it gracefully:
# it finishes in-flight commands, flushes the disk tier and snapshots its hot keys.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-deps.sh

swift build -c release --product strata
BIN="$(swift build -c release --show-bin-path)/strata"

PORT="${STRATA_PORT:-7379}"
HTTP_PORT="${STRATA_HTTP_PORT:-9379}"
DATA="${STRATA_DATA_DIR:-$PWD/data/node1}"
mkdir -p "$(dirname "$DATA")"

cat <<INFO
Strata node starting
  data directory: $DATA
  clients:        redis-cli -p $PORT        (any Redis client, RESP2 or RESP3)
  metrics:        curl http://127.0.0.1:$HTTP_PORT/metrics
  readiness:      curl http://127.0.0.1:$HTTP_PORT/ready
Stop with Ctrl-C (or SIGTERM); start again and it comes back warm.
INFO

exec "$BIN" serve --data-dir "$DATA" --port "$PORT" --http-port "$HTTP_PORT" \
    --memory "${STRATA_MEMORY:-256MiB}" --disk "${STRATA_DISK:-4GiB}" "$@"
