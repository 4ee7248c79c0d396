"""Bad input end to end: malformed commands, protocol garbage, oversized values, clients that
never read, too many clients. In every case the node must stay up, keep its memory bounded,
and keep serving the other clients, whose connections are opened before the abuse starts.
"""
import random
import socket
import time

import pytest
import redis

MiB = 1 << 20


# ---------------------------------------------------------------------------------------------
# Helpers


def rss_bytes(pid):
    """The process' resident set size, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def exchange(port, payload, quiet=2.0, deadline=10.0):
    """Sends `payload` on a new connection and reads until the server closes it, goes quiet for
    `quiet` seconds, or `deadline` passes. Returns (bytes received, whether the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=quiet) as s:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before taking everything; its reply is still readable
        chunks, closed, end = [], False, time.time() + deadline
        while time.time() < end:
            try:
                data = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not data:
                closed = True
                break
            chunks.append(data)
        return b"".join(chunks), closed


def replies_of(data):
    """Splits simple replies (+, -, :) into lines; enough for the error/status replies here."""
    return [line for line in data.split(b"\r\n") if line]


def command(*args):
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


@pytest.fixture
def bystander(node):
    """A client connected before the abuse; at the end it must still be served, and a fresh
    client too (the node is up)."""
    client = node.client()
    client.set("bystander", "still here")
    yield client
    assert client.ping(), "an unrelated connection was affected"
    assert client.get("bystander") == b"still here"
    fresh = node.client()
    assert fresh.ping()
    fresh.close()
    client.close()
    assert node.process.poll() is None, "the node exited"


# ---------------------------------------------------------------------------------------------
# Command errors keep the connection


def test_command_errors_reply_and_keep_the_connection(node, bystander):
    payload = b"".join([
        command("GET"),                              # too few arguments
        command("SET", "k"),                         # too few arguments
        command("GET", "a", "b"),                    # too many arguments
        command("NOSUCHCOMMAND", "x"),
        command("INCRBY", "counter", "abc"),
        command("SET", "k", "v", "EX", "soon"),
        command("EXPIRE", "k", "1.5"),
        command("SET", "k", "v", "PX", "-5"),
        command("PING"),
    ])
    data, closed = exchange(node.port, payload, quiet=1.0)
    replies = replies_of(data)
    assert not closed, f"the connection was closed after command errors: {data!r}"
    assert len(replies) == 9, replies
    assert replies[0].startswith(b"-ERR wrong number of arguments for 'get' command"), replies[0]
    assert replies[1].startswith(b"-ERR wrong number of arguments for 'set' command"), replies[1]
    assert replies[2].startswith(b"-ERR wrong number of arguments for 'get' command"), replies[2]
    assert replies[3].startswith(b"-ERR unknown command 'NOSUCHCOMMAND'"), replies[3]
    assert replies[4] == b"-ERR value is not an integer or out of range", replies[4]
    assert replies[5] == b"-ERR value is not an integer or out of range", replies[5]
    assert replies[6] == b"-ERR value is not an integer or out of range", replies[6]
    assert replies[7].startswith(b"-ERR invalid expire time"), replies[7]
    assert replies[8] == b"+PONG"

    # The same through a client library: errors raise, the connection goes on.
    r = node.client()
    for args in [("GET",), ("NOSUCHCOMMAND",), ("INCRBY", "counter", "abc")]:
        with pytest.raises(redis.ResponseError):
            r.execute_command(*args)
    assert r.ping() and r.get("k") is None and r.get("counter") is None


# ---------------------------------------------------------------------------------------------
# Oversized values


def test_values_over_max_value_size_are_refused(make_node):
    node = make_node("--memory", "16MiB", "--disk", "64MiB", "--max-value-size", "1MiB")
    bystander = node.client()
    bystander.set("bystander", "still here")
    limit = MiB

    # Just under the limit is fine.
    r = node.client()
    assert r.set("fits", b"f" * (limit - 64))
    assert len(r.get("fits")) == limit - 64

    # A 2 MiB bulk string: the header alone says it is too big, so the error comes before the
    # value has been sent (the rest is never read).
    header = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % (2 * MiB)
    data, _ = exchange(node.port, header + b"x" * 65536, quiet=2.0)
    assert data.startswith(b"-ERR"), f"no error reply to a 2 MiB value over a 1 MiB limit: {data[:200]!r}"

    # The whole 2 MiB through a client: an error (the connection may close).
    with pytest.raises((redis.ResponseError, redis.ConnectionError)):
        node.client().set("big", b"y" * (2 * MiB))

    # A value grown past the limit by APPEND is refused too.
    assert r.set("grow", b"g" * (limit // 2 + 10))
    with pytest.raises(redis.ResponseError):
        r.append("grow", b"g" * (limit // 2 + 10))
    assert r.strlen("grow") == limit // 2 + 10

    assert bystander.ping() and bystander.get("bystander") == b"still here"
    assert node.client().get("big") is None


# ---------------------------------------------------------------------------------------------
# Protocol errors close the connection, without allocating what the header claims


PROTOCOL_ERRORS = [
    pytest.param(b"*1\r\n$9999999999\r\n", id="huge-bulk-length"),
    pytest.param(b"*1\r\n$-5\r\n", id="negative-bulk-length"),
    pytest.param(b"*99999999999\r\n", id="huge-array-length"),
    pytest.param(b"*3000000\r\n", id="too-many-arguments"),
    pytest.param(b"*1\r\n+foo\r\n", id="simple-string-argument"),
    pytest.param(b"*2\r\n$3\r\nGET\r\n$1x\r\n", id="junk-in-bulk-length"),
    pytest.param(b"*1\r\n$3\r\nGETXX\r\n", id="bulk-without-crlf"),
    pytest.param(b"*abc\r\n", id="non-numeric-array-length"),
    pytest.param(b"*99999999999999999999999\r\n", id="overflowing-array-length"),
    pytest.param(b"GET \"unbalanced\r\n", id="unbalanced-inline-quotes"),
    pytest.param(b"A" * (70 << 10), id="unterminated-inline-over-64KiB"),
]


@pytest.mark.parametrize("payload", PROTOCOL_ERRORS)
def test_protocol_error_replies_and_closes(node, bystander, payload):
    before = rss_bytes(node.pid)
    data, closed = exchange(node.port, payload, quiet=3.0)
    assert data.startswith(b"-ERR Protocol error"), f"reply: {data[:200]!r}"
    assert data.endswith(b"\r\n") and data.count(b"\r\n") == 1, f"expected one error line, got {data[:300]!r}"
    assert closed, "the server kept the connection open after a protocol error"
    grown = rss_bytes(node.pid) - before
    assert grown < 32 * MiB, f"RSS grew by {grown / MiB:.0f} MiB on a malformed request"


def test_commands_before_a_protocol_error_are_answered_first(node, bystander):
    data, closed = exchange(node.port, command("SET", "a", "1") + command("GET", "a") + b"*1\r\n$-5\r\n")
    assert data.startswith(b"+OK\r\n$1\r\n1\r\n-ERR Protocol error"), data
    assert closed


def test_rss_stays_flat_under_claimed_but_unsent_lengths(node, bystander):
    # Lengths within the default 512 MiB limit, never followed by the bytes: nothing may be
    # reserved up front. Eight connections each claim 500 MB.
    before = rss_bytes(node.pid)
    sockets = []
    try:
        for i in range(8):
            s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
            s.sendall(b"*3\r\n$3\r\nSET\r\n$2\r\nk%d\r\n$524000000\r\nabc" % i)
            sockets.append(s)
        time.sleep(1.0)
        grown = rss_bytes(node.pid) - before
        assert grown < 64 * MiB, f"RSS grew by {grown / MiB:.0f} MiB for 8 claimed-but-unsent 500 MB values"
        assert bystander.ping()
    finally:
        for s in sockets:
            s.close()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_garbage_after_a_resp_header_is_a_protocol_error(node, bystander, seed):
    rng = random.Random(seed)
    garbage = rng.randbytes(4096)
    if garbage[:1] == b"$":
        garbage = b"!" + garbage[1:]  # keep it garbage: a '$' would start a valid bulk header
    data, closed = exchange(node.port, b"*2\r\n$3\r\nGET\r\n" + garbage, quiet=3.0)
    assert data.startswith(b"-ERR Protocol error"), data[:200]
    assert closed


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_random_bytes_only_get_errors(node, bystander, seed):
    # Random bytes mostly parse as inline commands (unknown ones) or fail to parse: either way
    # every reply is an error, and the node stays up.
    rng = random.Random(seed)
    before = rss_bytes(node.pid)
    data, _ = exchange(node.port, rng.randbytes(16384), quiet=1.5)
    assert replies_of(data), "no reply at all to 16 KiB of random bytes"
    for line in replies_of(data):
        assert line.startswith(b"-ERR"), f"non-error reply to random bytes: {line[:200]!r}"
    assert rss_bytes(node.pid) - before < 32 * MiB


# ---------------------------------------------------------------------------------------------
# Pipelining and backpressure


def read_exactly(s, size, deadline):
    chunks, got = [], 0
    while got < size and time.time() < deadline:
        try:
            data = s.recv(min(1 << 20, size - got))
        except socket.timeout:
            continue
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def test_pipelined_burst_gets_every_reply_in_order(node, bystander):
    n = 10_000
    with socket.create_connection(("127.0.0.1", node.port), timeout=1) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n" * n)
        data = read_exactly(s, 7 * n, time.time() + 20)
        assert data == b"+PONG\r\n" * n, f"{data.count(b'+PONG')} PONGs in {len(data)} bytes"
        # Then ordered replies that differ: PING with an argument echoes it back.
        s.sendall(b"".join(command("PING", f"{i:05d}") for i in range(n)))
        data = read_exactly(s, 11 * n, time.time() + 20)
        assert data == b"".join(b"$5\r\n%05d\r\n" % i for i in range(n)), "replies out of order or missing"
        # Nothing extra follows.
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.recv(1)


def test_client_that_never_reads_cannot_grow_memory(node, bystander):
    big = random.Random(3).randbytes(MiB)
    bystander.set("big", big)
    before = rss_bytes(node.pid)
    hog = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    try:
        # 3,000 GETs of 1 MiB: ~3 GB of replies that are never read.
        hog.sendall(command("GET", "big") * 3000)
        peak, served, deadline = 0, 0, time.time() + 5
        while time.time() < deadline:
            peak = max(peak, rss_bytes(node.pid) - before)
            assert bystander.set(f"during:{served}", served)
            assert bystander.get(f"during:{served}") == str(served).encode()
            served += 1
            time.sleep(0.05)
        assert peak < 300 * MiB, f"RSS grew by {peak / MiB:.0f} MiB for a client that never reads"
        assert served >= 20, f"other clients were starved: {served} round trips in 5 s"
        assert bystander.get("big") == big
    finally:
        hog.close()
    # The hog's connection goes away; the node goes on.
    deadline = time.time() + 10
    while time.time() < deadline and bystander.info("clients")["connected_clients"] > 1:
        time.sleep(0.1)
    assert bystander.info("clients")["connected_clients"] == 1
    assert bystander.get("big") == big


# ---------------------------------------------------------------------------------------------
# Connection limit


def test_max_clients_refuses_the_extra_connection(make_node):
    node = make_node("--memory", "8MiB", "--disk", "32MiB", "--max-clients", "5")
    held = []
    try:
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
            s.sendall(b"PING\r\n")  # a reply proves this connection was accepted
            assert read_exactly(s, 7, time.time() + 5) == b"+PONG\r\n"
            held.append(s)
        data, closed = exchange(node.port, b"PING\r\n", quiet=3.0)
        assert data == b"-ERR max number of clients reached\r\n", data
        assert closed
        # The five accepted connections are unaffected.
        for s in held:
            s.sendall(b"PING\r\n")
            assert read_exactly(s, 7, time.time() + 5) == b"+PONG\r\n"
        # A slot frees when a client leaves.
        held.pop().close()
        deadline, data = time.time() + 10, b""
        while time.time() < deadline:
            data, _ = exchange(node.port, b"PING\r\n", quiet=0.5)
            if data == b"+PONG\r\n":
                break
            time.sleep(0.1)
        assert data == b"+PONG\r\n", f"no slot after a client left: {data!r}"
    finally:
        for s in held:
            s.close()
    status, body = node.http("/metrics")
    assert status == 200
    assert any(line.startswith("strata_rejected_connections_total ") and float(line.split()[-1]) >= 1
               for line in body.splitlines()), "the refusal is not counted in strata_rejected_connections_total"
