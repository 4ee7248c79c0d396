#!/usr/bin/env bash
# Reproduces the full set of comparison results: builds Strata and strata-load (release), then
# runs the four comparisons, each writing its .md and .png into Benchmarks/results/.
#
#   Benchmarks/run_all.sh                 # full size, about 35 minutes on 2 cores (run on a quiet machine)
#   Benchmarks/run_all.sh --smoke         # tiny sizes, a few minutes: checks that everything works;
#                                         # results go to a temporary directory unless --out-dir is given
#   Benchmarks/run_all.sh --out-dir DIR   # results elsewhere
#   Benchmarks/run_all.sh --only restart,cluster   # a subset (bigger-than-ram, restart, hot-keys, cluster)
#
# Needs: the Swift toolchain on PATH, python3, and root for apt-get (redis-server, memcached; the
# scripts install them, and matplotlib with pip or else gnuplot, when missing).
# A failing comparison does not stop the others; the exit code is 1 if any failed.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
SMOKE=0
OUT=""
ONLY="bigger-than-ram,restart,hot-keys,cluster"
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --out-dir) OUT="$2"; shift ;;
        --only) ONLY="$2"; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$OUT" ]; then
    if [ "$SMOKE" = 1 ]; then OUT=$(mktemp -d /tmp/strata-bench-smoke-XXXXXX); else OUT="$ROOT/Benchmarks/results"; fi
fi
mkdir -p "$OUT"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

log "building strata (release) ..."
swift build -c release --product strata || { log "building strata failed"; exit 1; }
STRATA="$(swift build -c release --show-bin-path)/strata"
log "building strata-load (release) ..."
(cd Benchmarks && swift build -c release --product strata-load) || { log "building strata-load failed"; exit 1; }
LOAD="$(cd Benchmarks && swift build -c release --show-bin-path)/strata-load"

COMMON=(--strata "$STRATA" --load "$LOAD" --out-dir "$OUT")
declare -A ARGS
if [ "$SMOKE" = 1 ]; then
    ARGS[bigger-than-ram]="--keys 20000 --duration 3 --rounds 1 --memory-mib 8"
    ARGS[restart]="--keys 20000 --steady 3 --after 5 --report-seconds 5 --memory-mib 64"
    ARGS[hot-keys]="--keys 20000 --duration 2 --rounds 1"
    ARGS[cluster]="--keys 20000 --duration 2 --rounds 1"
else
    ARGS[bigger-than-ram]=""
    ARGS[restart]=""
    ARGS[hot-keys]=""
    ARGS[cluster]=""
fi

FAILED=()
START=$(date +%s)
for name in bigger-than-ram restart hot-keys cluster; do
    case ",$ONLY," in *",$name,"*) ;; *) continue ;; esac
    script="Benchmarks/bench_${name//-/_}.py"
    log "=== $name: python3 $script ${ARGS[$name]}"
    t=$(date +%s)
    # shellcheck disable=SC2086
    if python3 "$script" "${COMMON[@]}" ${ARGS[$name]}; then
        log "=== $name done in $(( $(date +%s) - t )) s"
    else
        log "=== $name FAILED (exit $?) after $(( $(date +%s) - t )) s"
        FAILED+=("$name")
    fi
done

log "all done in $(( $(date +%s) - START )) s; results in $OUT"
ls -1 "$OUT" >&2
if [ ${#FAILED[@]} -gt 0 ]; then
    log "failed: ${FAILED[*]}"
    exit 1
fi
