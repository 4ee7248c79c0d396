#!/usr/bin/env bash
# Builds Strata (release) and runs a local cluster: three nodes, every key on two of them, data
# directories under ./data/. Installs what it needs on a fresh Debian machine (run as root).
# Ctrl-C stops every node gracefully (each finishes in-flight commands, flushes its disk tier and
# snapshots its hot keys). STRATA_NODES=1 runs a single node instead. Prometheus runs beside the
# nodes on 127.0.0.1:9090 (PROMETHEUS_PORT) with grafana/prometheus.yml and grafana/alerts.yml.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-deps.sh

swift build -c release --product strata
BIN="$(swift build -c release --show-bin-path)/strata"

NODES="${STRATA_NODES:-3}"
BASE_PORT="${STRATA_PORT:-7379}"
BASE_HTTP="${STRATA_HTTP_PORT:-9379}"
mkdir -p data

peers=""
for i in $(seq 1 "$NODES"); do
    peers+="${peers:+,}n$i=127.0.0.1:$((BASE_PORT + i - 1))"
done

pids=()
stop() {
    echo "stopping..."
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM

echo "Strata: $NODES node(s); data and logs in $PWD/data/"
for i in $(seq 1 "$NODES"); do
    port=$((BASE_PORT + i - 1))
    http=$((BASE_HTTP + i - 1))
    cluster=()
    if [ "$NODES" -gt 1 ]; then
        cluster=(--node-id "n$i" --peers "$peers" --replicas "${STRATA_REPLICAS:-2}")
    fi
    "$BIN" serve --data-dir "data/n$i" --port "$port" --http-port "$http" \
        --memory "${STRATA_MEMORY:-256MiB}" --disk "${STRATA_DISK:-4GiB}" "${cluster[@]}" "$@" \
        > "data/n$i.log" 2>&1 &
    pids+=($!)
    echo "  n$i  redis-cli -p $port      metrics: curl http://127.0.0.1:$http/metrics   log: data/n$i.log"
done
# Prometheus scrapes every node with grafana/prometheus.yml and evaluates grafana/alerts.yml; with
# other HTTP ports or another node count, a copy in data/ lists the right targets.
PROM_PORT="${PROMETHEUS_PORT:-9090}"
prom_config=grafana/prometheus.yml
if [ "$NODES" -ne 3 ] || [ "$BASE_HTTP" -ne 9379 ]; then
    targets=""
    for i in $(seq 1 "$NODES"); do
        targets+="${targets:+, }\"127.0.0.1:$((BASE_HTTP + i - 1))\""
    done
    sed -e "s|- targets: \[.*\]|- targets: [$targets]|" -e "s|- alerts\.yml$|- $PWD/grafana/alerts.yml|" \
        grafana/prometheus.yml > data/prometheus.yml
    prom_config=data/prometheus.yml
fi
if ! command -v prometheus >/dev/null 2>&1; then
    echo "  (prometheus is not installed: no metrics history or alerts)"
elif (exec 3<>"/dev/tcp/127.0.0.1/$PROM_PORT") 2>/dev/null; then
    # Debian's prometheus package runs a system Prometheus on 9090 where systemd is in charge.
    echo "  (port $PROM_PORT is taken, so Prometheus is not started: choose another with"
    echo "   PROMETHEUS_PORT=9091 $0, or stop Debian's service: systemctl disable --now prometheus)"
else
    prometheus --config.file="$prom_config" --storage.tsdb.path=data/prometheus \
        --web.listen-address="127.0.0.1:$PROM_PORT" > data/prometheus.log 2>&1 &
    pids+=($!)
    echo "  Prometheus  http://127.0.0.1:$PROM_PORT   alerts: http://127.0.0.1:$PROM_PORT/alerts   log: data/prometheus.log"
fi
echo "Any node answers for any key. Stop with Ctrl-C; start again and every node comes back warm."
wait "${pids[@]}"
