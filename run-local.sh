#!/usr/bin/env bash
# Builds Strata (release) and runs a local cluster: three nodes, every key on two of them, data
# directories under ./data/. Installs what it needs on a fresh Debian machine (run as root).
# Ctrl-C stops every node it started gracefully (each finishes in-flight commands, flushes its disk
# tier and snapshots its hot keys); nodes started by hand keep running. STRATA_NODES=1 runs a
# single node instead. Prometheus runs beside the nodes on 127.0.0.1:9090 (PROMETHEUS_PORT) with
# grafana/prometheus.yml and grafana/alerts.yml, its data in data/prometheus (for this node set).
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
done
# A node may refuse to start (one that left the cluster, a port in use, a damaged data
# directory): wait until each serves HTTP or has exited, and say which, with its log's last line.
for _ in $(seq 1 100); do
    waiting=0
    for i in $(seq 1 "$NODES"); do
        if kill -0 "${pids[$((i - 1))]}" 2>/dev/null \
            && ! (exec 3<>"/dev/tcp/127.0.0.1/$((BASE_HTTP + i - 1))") 2>/dev/null; then
            waiting=1
        fi
    done
    [ "$waiting" -eq 0 ] && break
    sleep 0.1
done
for i in $(seq 1 "$NODES"); do
    port=$((BASE_PORT + i - 1))
    http=$((BASE_HTTP + i - 1))
    if kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
        echo "  n$i  redis-cli -p $port      metrics: curl http://127.0.0.1:$http/metrics   log: data/n$i.log"
    else
        echo "  n$i  EXITED at start: $(tail -n 1 "data/n$i.log")   (log: data/n$i.log)"
    fi
done
# Prometheus finds the nodes through their service discovery (/sd on each HTTP port), as
# grafana/prometheus.yml says; with other HTTP ports or another node count, a copy in data/
# asks the right nodes.
PROM_PORT="${PROMETHEUS_PORT:-9090}"
prom_config=grafana/prometheus.yml
if [ "$NODES" -ne 3 ] || [ "$BASE_HTTP" -ne 9379 ]; then
    urls=""
    for i in $(seq 1 "$NODES"); do
        urls+="${urls:+ }http://127.0.0.1:$((BASE_HTTP + i - 1))/sd"
    done
    awk -v urls="$urls" -v rules="$PWD/grafana/alerts.yml" '
        /^ *- url: http:.*\/sd$/ {
            if (!done) {
                n = split(urls, u, " ")
                for (i = 1; i <= n; i++) { print "      - url: " u[i]; print "        refresh_interval: 5s" }
                done = 1
            }
            skip = 1; next
        }
        skip && /^ *refresh_interval:/ { skip = 0; next }
        /^ *- alerts\.yml$/ { sub(/alerts\.yml/, rules) }
        { skip = 0; print }' grafana/prometheus.yml > data/prometheus.yml
    prom_config=data/prometheus.yml
fi
# Prometheus' data belongs to one node set: when the nodes or the config change, old series and
# alert states (of targets that no longer exist) are dropped rather than reused.
prom_key="nodes=$NODES port=$BASE_PORT http=$BASE_HTTP config=$(cksum < "$prom_config")"
if [ -d data/prometheus ] && [ "$(cat data/prometheus.key 2>/dev/null)" != "$prom_key" ]; then
    rm -rf data/prometheus
fi
if ! command -v prometheus >/dev/null 2>&1; then
    echo "  (prometheus is not installed: no metrics history or alerts)"
elif (exec 3<>"/dev/tcp/127.0.0.1/$PROM_PORT") 2>/dev/null; then
    # Debian's prometheus package runs a system Prometheus on 9090 where systemd is in charge.
    echo "  (port $PROM_PORT is taken, so Prometheus is not started: choose another with"
    echo "   PROMETHEUS_PORT=9091 $0, or stop Debian's service: systemctl disable --now prometheus)"
else
    echo "$prom_key" > data/prometheus.key
    prometheus --config.file="$prom_config" --storage.tsdb.path=data/prometheus \
        --web.listen-address="127.0.0.1:$PROM_PORT" > data/prometheus.log 2>&1 &
    pids+=($!)
    echo "  Prometheus  http://127.0.0.1:$PROM_PORT   alerts: http://127.0.0.1:$PROM_PORT/alerts   log: data/prometheus.log"
fi
echo "Any node answers for any key. Stop with Ctrl-C; start again and every node comes back warm."
echo "(Ctrl-C stops only the nodes started here: a node you started by hand keeps running.)"
wait "${pids[@]}"
