#!/usr/bin/env bash
# Installs what building and testing Strata needs, when it is missing (Debian, as root).
# Sourced by run-local.sh and run-tests.sh.
set -euo pipefail

need_apt=()
for pkg in liblmdb-dev liblua5.1-0-dev lua-cjson-dev lua-bitop-dev zlib1g-dev redis-tools redis-server prometheus python3-pip; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    echo "installing: ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "error: the Swift toolchain (6.1 or later) is not on PATH; install it from swift.org" >&2
    exit 1
fi

if ! python3 -c 'import redis, pytest, pexpect, django' >/dev/null 2>&1; then
    echo "installing redis-py, pytest and pexpect from PyPI"
    python3 -m pip install -q redis pytest pexpect django 2>/dev/null \
        || python3 -m pip install -q --break-system-packages redis pytest pexpect django
fi
