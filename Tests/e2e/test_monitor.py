"""MONITOR side by side with redis-server 7.0: the lines a monitoring client receives (time,
database and client address aside) for plain commands, quoting and binary data, a password
redacted, a script's calls shown as from "lua", and a transaction; the monitor itself and
hidden admin commands are not shown; RESET and closing end monitoring."""
import re
import socket
import time

import pytest
import redis

from test_commands import redis_port, strata  # noqa: F401 (module fixtures)

LINE = re.compile(rb'^\+(\d+)\.(\d{6}) \[0 ([^\]]+)\] (.*)$')


def monitor_lines(port, run):
    """Starts a monitor, runs `run(client)`, and returns what the monitor printed for it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
    assert sock.recv(5) == b"+OK\r\n"
    client = redis.Redis(port=port)
    run(client)
    client.echo("monitor-end")
    data = b""
    deadline = time.monotonic() + 5
    while b'"monitor-end"' not in data and time.monotonic() < deadline:
        data += sock.recv(65536)
    sock.close()
    lines = []
    for raw in data.split(b"\r\n"):
        if not raw:
            continue
        match = LINE.match(raw)
        assert match, raw
        source = b"lua" if match.group(3) == b"lua" else b"client"
        lines.append((source, match.group(4)))
    return lines


def workload(client):
    client.ping()
    client.set('quote"d', "new\nline\t\x01\x92")
    client.get("plain")
    with pytest.raises(redis.RedisError):
        client.execute_command("AUTH", "secret-password")
    client.eval("redis.call('SET', 'from-lua', '1'); return redis.call('GET', 'from-lua')", 0)
    client.config_get("maxmemory")  # hidden: an admin command
    pipe = client.pipeline(transaction=True)
    pipe.set("tx", "1")
    pipe.incr("tx")
    pipe.execute()


def test_monitor_lines_match_redis(strata, redis_port):
    theirs = monitor_lines(redis_port, workload)
    ours = monitor_lines(strata.port, workload)
    # The transaction's lines come in another order here (EXEC before its commands), the rest alike.
    assert [l for l in ours if b'"tx"' not in l[1] and not l[1].startswith((b'"MULTI"', b'"EXEC"'))] == \
        [l for l in theirs if b'"tx"' not in l[1] and not l[1].startswith((b'"MULTI"', b'"EXEC"'))], (theirs, ours)
    assert sorted(l for l in ours if b'"tx"' in l[1] or l[1].startswith((b'"MULTI"', b'"EXEC"'))) == \
        sorted(l for l in theirs if b'"tx"' in l[1] or l[1].startswith((b'"MULTI"', b'"EXEC"')))
    assert (b"client", b'"AUTH" "(redacted)"') in ours
    assert (b"lua", b'"SET" "from-lua" "1"') in ours


def test_reset_ends_monitoring(strata):
    sock = socket.create_connection(("127.0.0.1", strata.port), timeout=5)
    sock.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
    assert sock.recv(5) == b"+OK\r\n"
    sock.sendall(b"*1\r\n$5\r\nRESET\r\n")
    assert sock.recv(100) == b"+RESET\r\n"
    redis.Redis(port=strata.port).set("after-reset", "1")
    sock.settimeout(0.5)
    with pytest.raises(socket.timeout):
        sock.recv(100)
    sock.close()
