"""Differential tests: every command Strata implements runs side by side on Strata and on a real
redis-server 7.0, and every reply must match, error texts included.

Redis is the spec. Where Strata differs, these tests assert what Redis does, so a failure names
the command, Redis' reply and Strata's reply.

Both servers are started once per module (starting a pair per script would dominate the run
time); every script gets fresh clients and a FLUSHALL on both servers first, so scripts do not
see each other's keys.
"""
import socket
import subprocess
import time

import pytest
import redis

from conftest import Node, free_port, require_tool


# ---------------------------------------------------------------------------------------------
# Servers and clients


@pytest.fixture(scope="module")
def strata(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("strata"), "--memory", "64MiB", "--disk", "256MiB").start()
    yield node
    node.stop(timeout=15)


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    """A real redis-server on loopback without persistence (the module-scoped twin of conftest's
    `redis_server`)."""
    binary = require_tool("redis-server")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while True:
        try:
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as probe:
                probe.ping()
            break
        except redis.ConnectionError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)
    yield port
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def raw_client(port, protocol=2):
    """A redis-py client that returns replies as they came off the wire: no response callbacks
    (they would turn "OK" into True, parse INFO...) and no retries (a retried command would run
    twice on one server and once on the other)."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10, decode_responses=False,
                         protocol=protocol, retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0))
    client.response_callbacks.clear()
    return client


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def pair(request, strata, redis_port):
    """(redis client, strata client), both servers flushed. Every test runs in RESP2 and in RESP3
    (redis-py 5+ speaks RESP3 when asked, 8+ by default): the replies' shapes differ (maps,
    nulls), the errors must not."""
    theirs, ours = raw_client(redis_port, request.param), raw_client(strata.port, request.param)
    theirs.execute_command("FLUSHALL")
    ours.execute_command("FLUSHALL")
    yield theirs, ours
    theirs.close()
    ours.close()


class Err(str):
    """An error reply, holding its full text as sent (redis-py strips a known prefix such as
    "ERR " into `status_code`; it is put back so a missing or wrong prefix shows)."""

    def __repr__(self):
        return f"Err({str.__repr__(self)})"


def reply(client, *args):
    try:
        return client.execute_command(*args)
    except redis.exceptions.ConnectionError as error:
        if error.status_code is None:  # a real I/O problem, not an error reply (NOAUTH, ...)
            raise
        return Err(f"{error.status_code} {error}")
    except redis.ResponseError as error:
        return Err(f"{error.status_code} {error}" if error.status_code else str(error))


# ---------------------------------------------------------------------------------------------
# Script steps. A plain list is a command whose replies must be equal; the wrappers below relax
# the comparison where a reply legitimately depends on timing or ordering.


class Approx:
    """A numeric reply that may differ by `tolerance` (PTTL, EXPIRETIME of a relative TTL):
    the two servers run the command a few milliseconds apart."""

    def __init__(self, command, tolerance):
        self.command, self.tolerance = command, tolerance


class Unordered:
    """An array reply compared as a sorted list (KEYS: the order is unspecified)."""

    def __init__(self, command):
        self.command = command


class Sleep:
    """Waits on the test side (to let a short TTL pass)."""

    def __init__(self, seconds):
        self.seconds = seconds


class At:
    """An absolute Unix time `offset` from now, in seconds (or ms with ms=True), resolved once
    per script so both servers get the same argument."""

    def __init__(self, offset, ms=False):
        self.offset, self.ms = offset, ms

    def resolve(self, now):
        return str(int(now * 1000) + self.offset if self.ms else int(now) + self.offset)


def ttl_approx(command):
    """PTTL-like replies within 100 ms of each other."""
    return Approx(command, 100)


def resolve(command, now):
    return [arg.resolve(now) if isinstance(arg, At) else arg for arg in command]


def run_script(theirs, ours, steps):
    """Runs `steps` on both servers, one step on each before the next, and returns a readable
    list of the steps whose replies differ (empty when they all match)."""
    now = time.time()
    differences = []
    for step in steps:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            continue
        command = resolve(step.command if isinstance(step, (Approx, Unordered)) else step, now)
        expected, actual = reply(theirs, *command), reply(ours, *command)
        if isinstance(step, Approx):
            same = (isinstance(expected, int) and isinstance(actual, int)
                    and abs(expected - actual) <= step.tolerance and (expected < 0) == (actual < 0))
        elif isinstance(step, Unordered):
            same = (isinstance(expected, list) and isinstance(actual, list)
                    and sorted(expected) == sorted(actual))
        else:
            same = type(expected) is type(actual) and expected == actual
        if not same:
            differences.append(f"{command!r}:\n    redis:  {expected!r}\n    strata: {actual!r}")
    return differences


# ---------------------------------------------------------------------------------------------
# The scripts. Each runs on an empty keyspace.

MAX = "9223372036854775807"
MIN = "-9223372036854775808"

SCRIPTS = {
    "set_get": [
        ["SET", "k", "v"], ["GET", "k"], ["GET", "missing"], ["SET", "k", "v2"], ["GET", "k"],
        ["set", "k", "lower"], ["GeT", "k"], ["SET", "k", ""], ["GET", "k"], ["STRLEN", "k"],
        ["SET", "k", "v", "FOO"], ["SET", "k", "v", "EX"], ["GET", "k"],
    ],
    "set_nx_xx": [
        ["SET", "k", "v", "NX"], ["SET", "k", "v2", "NX"], ["GET", "k"],
        ["SET", "k", "v3", "XX"], ["GET", "k"], ["SET", "missing", "v", "XX"], ["EXISTS", "missing"],
        ["SET", "k", "v", "NX", "XX"], ["SET", "k", "v", "XX", "NX"], ["SET", "k", "v", "nx", "nx"],
        ["SET", "k", "v", "xx"], ["GET", "k"],
    ],
    "set_get_option": [
        ["SET", "k", "v", "GET"], ["SET", "k", "v2", "GET"], ["GET", "k"],
        # Redis 7 allows NX with GET: the old value comes back and nothing is written.
        ["SET", "k", "v3", "NX", "GET"], ["GET", "k"],
        ["SET", "k2", "v", "XX", "GET"], ["EXISTS", "k2"],
        ["SET", "k", "v4", "XX", "GET"], ["GET", "k"],
        ["SET", "k", "v5", "GET", "GET"], ["SET", "k", "v6", "GET", "EX", "100"], ["TTL", "k"],
    ],
    "set_expiry_options": [
        ["SET", "k", "v", "EX", "100"], ["TTL", "k"], ttl_approx(["PTTL", "k"]),
        ["SET", "k", "v", "PX", "100000"], ttl_approx(["PTTL", "k"]), ["TTL", "k"],
        ["SET", "k", "v", "EXAT", At(200)], ["EXPIRETIME", "k"], Approx(["TTL", "k"], 1),
        ["SET", "k", "v", "PXAT", At(300000, ms=True)], ["PEXPIRETIME", "k"],
        ["SET", "k", "v"], ["TTL", "k"], ["EXPIRETIME", "k"],
        ["SET", "k", "v", "ex", "100"], ["SET", "k", "v2", "KEEPTTL"], ["TTL", "k"], ["GET", "k"],
        ["SET", "k", "v3", "XX", "KEEPTTL", "GET"], ["TTL", "k"],
        ["SET", "fresh", "v", "KEEPTTL"], ["TTL", "fresh"],
    ],
    "set_invalid_expire": [
        ["SET", "k", "v", "EX", "0"], ["SET", "k", "v", "EX", "-1"], ["SET", "k", "v", "EX", "abc"],
        ["SET", "k", "v", "EX", "1.5"], ["SET", "k", "v", "EX", ""], ["SET", "k", "v", "PX", "0"],
        ["SET", "k", "v", "PX", "-100"], ["SET", "k", "v", "EXAT", "0"], ["SET", "k", "v", "PXAT", "-5"],
        ["SET", "k", "v", "EX", MAX], ["SET", "k", "v", "PX", MAX], ["SET", "k", "v", "EXAT", MAX],
        ["SET", "k", "v", "EX", "9223372036854775808"],
        ["SET", "k", "v", "EX", "10", "PX", "10000"], ["SET", "k", "v", "EX", "10", "EX", "10"],
        ["SET", "k", "v", "EX", "10", "KEEPTTL"], ["SET", "k", "v", "KEEPTTL", "EX", "10"],
        ["SET", "k", "v", "PXAT"], ["EXISTS", "k"],
    ],
    "set_expired_in_the_past": [
        # EXAT/PXAT in the past are valid: the key is written already expired.
        ["SET", "k", "v", "EXAT", "1"], ["GET", "k"], ["EXISTS", "k"],
        ["SET", "k", "v", "PXAT", "1000"], ["EXISTS", "k"], ["TTL", "k"],
    ],
    "setnx_setex_psetex": [
        ["SETNX", "k", "v"], ["SETNX", "k", "v2"], ["GET", "k"],
        ["SETEX", "k", "100", "v3"], ["TTL", "k"], ["GET", "k"], ["SETNX", "k", "x"],
        ["SETEX", "k", "0", "v"], ["SETEX", "k", "-1", "v"], ["SETEX", "k", "abc", "v"],
        ["SETEX", "k", MAX, "v"], ["GET", "k"],
        ["PSETEX", "p", "100000", "v"], ttl_approx(["PTTL", "p"]), ["TTL", "p"], ["GET", "p"],
        ["PSETEX", "p", "0", "v"], ["PSETEX", "p", "-5", "v"], ["PSETEX", "p", "1.5", "v"],
        ["PSETEX", "p", MAX, "v"],
    ],
    "getset": [
        ["GETSET", "k", "v"], ["GETSET", "k", "v2"], ["GET", "k"],
        # GETSET is a plain SET: it drops the TTL.
        ["SET", "k", "v", "EX", "100"], ["GETSET", "k", "v3"], ["TTL", "k"], ["GET", "k"],
    ],
    "getex": [
        ["GETEX", "missing"], ["GETEX", "missing", "EX", "10"], ["EXISTS", "missing"],
        ["SET", "k", "v", "EX", "100"], ["GETEX", "k"], ["TTL", "k"],
        ["GETEX", "k", "PERSIST"], ["TTL", "k"], ["GETEX", "k", "PERSIST"], ["TTL", "k"],
        ["GETEX", "k", "EX", "200"], ["TTL", "k"],
        ["GETEX", "k", "PX", "300000"], ttl_approx(["PTTL", "k"]),
        ["GETEX", "k", "EXAT", At(400)], ["EXPIRETIME", "k"],
        ["GETEX", "k", "PXAT", At(500000, ms=True)], ["PEXPIRETIME", "k"],
        ["GETEX", "k", "ex", "600"], ["TTL", "k"],
    ],
    "getex_invalid": [
        ["SET", "k", "v"],
        ["GETEX", "k", "EX", "0"], ["GETEX", "k", "EX", "-1"], ["GETEX", "k", "EX", "abc"],
        ["GETEX", "k", "PX", "0"], ["GETEX", "k", "EXAT", "0"], ["GETEX", "k", "PXAT", "-1"],
        ["GETEX", "k", "EX", MAX], ["GETEX", "k", "EX", "10", "PERSIST"],
        ["GETEX", "k", "PERSIST", "EX", "10"], ["GETEX", "k", "EX", "10", "PX", "10"],
        ["GETEX", "k", "FOO"], ["GETEX", "k", "EX"], ["GETEX", "k", "KEEPTTL"], ["TTL", "k"],
    ],
    "getex_past_time_deletes": [
        ["SET", "k", "v"], ["GETEX", "k", "EXAT", "1"], ["EXISTS", "k"],
        ["SET", "k", "v"], ["GETEX", "k", "PXAT", "1"], ["GET", "k"],
    ],
    "getdel": [
        ["GETDEL", "missing"], ["SET", "k", "v"], ["GETDEL", "k"], ["EXISTS", "k"], ["GETDEL", "k"],
    ],
    "mget_mset": [
        ["MSET", "a", "1", "b", "2", "c", "3"], ["MGET", "a", "b", "c", "missing", "a"],
        ["MSET", "a", "1", "b"], ["MSET", "a", "x", "a", "y"], ["GET", "a"],
        ["SET", "t", "v", "EX", "100"], ["MSET", "t", "w"], ["TTL", "t"],
        ["MGET", "missing"],
    ],
    "msetnx": [
        ["MSET", "a", "1"],
        ["MSETNX", "a", "x", "d", "4"], ["EXISTS", "d"], ["GET", "a"],
        ["MSETNX", "d", "4", "e", "5"], ["MGET", "d", "e"],
        ["MSETNX", "f"], ["MSETNX", "f", "1", "g"], ["EXISTS", "f"],
        ["MSETNX", "x", "1", "x", "2"], ["GET", "x"],
    ],
    "del_unlink_exists": [
        ["MSET", "a", "1", "b", "2", "c", "3"], ["EXISTS", "a", "a", "b", "missing"],
        ["EXISTS", "missing"], ["DEL", "a", "missing", "a"], ["UNLINK", "b", "c", "b"],
        ["EXISTS", "a", "b", "c"], ["DEL", "a"], ["UNLINK", "a"], ["DBSIZE"],
    ],
    "expire_basic": [
        ["SET", "k", "v"], ["EXPIRE", "k", "100"], ["TTL", "k"],
        ["PEXPIRE", "k", "200000"], ttl_approx(["PTTL", "k"]), ["TTL", "k"],
        ["EXPIREAT", "k", At(300)], ["EXPIRETIME", "k"], Approx(["TTL", "k"], 1),
        ["PEXPIREAT", "k", At(400000, ms=True)], ["PEXPIRETIME", "k"],
        ["EXPIRE", "missing", "100"], ["PEXPIRE", "missing", "100"],
        ["EXPIREAT", "missing", At(100)], ["PEXPIREAT", "missing", At(100, ms=True)],
        ["PERSIST", "k"], ["PERSIST", "k"], ["TTL", "k"], ["PTTL", "k"],
        ["EXPIRETIME", "k"], ["PEXPIRETIME", "k"], ["PERSIST", "missing"],
        ["TTL", "missing"], ["PTTL", "missing"], ["EXPIRETIME", "missing"], ["PEXPIRETIME", "missing"],
        ["SET", "r", "v", "EX", "100"], Approx(["EXPIRETIME", "r"], 1),
        Approx(["PEXPIRETIME", "r"], 100),
    ],
    "expire_nx_xx_gt_lt": [
        ["SET", "k", "v"], ["EXPIRE", "k", "100", "XX"], ["TTL", "k"],
        ["EXPIRE", "k", "100", "NX"], ["EXPIRE", "k", "200", "NX"], ["TTL", "k"],
        ["EXPIRE", "k", "50", "GT"], ["EXPIRE", "k", "200", "GT"], ["TTL", "k"],
        ["EXPIRE", "k", "300", "LT"], ["EXPIRE", "k", "100", "LT"], ["TTL", "k"],
        ["EXPIRE", "k", "150", "XX"], ["TTL", "k"], ["EXPIRE", "k", "300", "xx", "gt"], ["TTL", "k"],
        # A key without a TTL counts as an infinite TTL for GT and LT.
        ["SET", "p", "v"], ["EXPIRE", "p", "100", "GT"], ["TTL", "p"],
        ["EXPIRE", "p", "100", "LT"], ["TTL", "p"],
        ["PEXPIRE", "p", "50000", "LT"], ttl_approx(["PTTL", "p"]),
        ["EXPIREAT", "p", At(1000), "GT"], ["EXPIRETIME", "p"],
        ["PEXPIREAT", "p", At(2000000, ms=True), "NX"], ["EXPIRETIME", "p"],
        ["EXPIRE", "missing", "100", "NX"], ["EXPIRE", "missing", "100", "XX"],
    ],
    "expire_incompatible_options": [
        ["SET", "k", "v"],
        ["EXPIRE", "k", "100", "NX", "XX"], ["EXPIRE", "k", "100", "NX", "GT"],
        ["EXPIRE", "k", "100", "LT", "NX"], ["EXPIRE", "k", "100", "GT", "LT"],
        ["PEXPIRE", "k", "100", "NX", "XX"], ["EXPIREAT", "k", "100", "GT", "LT"],
        ["EXPIRE", "k", "100", "FOO"], ["EXPIRE", "k", "100", "NX", "FOO"],
        ["EXPIRE", "missing", "100", "NX", "XX"], ["TTL", "k"],
    ],
    "expire_invalid_times": [
        ["SET", "k", "v"],
        ["EXPIRE", "k", "abc"], ["EXPIRE", "k", "1.5"], ["EXPIRE", "k", ""],
        ["PEXPIRE", "k", "abc"], ["EXPIREAT", "k", "abc"], ["PEXPIREAT", "k", " 1"],
        ["EXPIRE", "k", MAX], ["EXPIRE", "k", MIN], ["PEXPIRE", "k", MAX], ["PEXPIRE", "k", MIN],
        ["EXPIREAT", "k", MAX], ["PEXPIREAT", "k", MAX],
        ["EXPIRE", "missing", MAX], ["EXPIRE", "k", "9223372036854775808"],
        # Redis parses the options before the number.
        ["EXPIRE", "k", "abc", "FOO"], ["EXPIRE", "k", "abc", "NX", "XX"],
        ["EXISTS", "k"], ["TTL", "k"],
    ],
    "expire_in_the_past_deletes": [
        ["SET", "k", "v"], ["EXPIRE", "k", "-1"], ["EXISTS", "k"],
        ["SET", "k", "v"], ["EXPIRE", "k", "0"], ["GET", "k"],
        ["SET", "k", "v"], ["PEXPIRE", "k", "0"], ["EXISTS", "k"],
        ["SET", "k", "v"], ["EXPIREAT", "k", "1"], ["GET", "k"],
        ["SET", "k", "v"], ["PEXPIREAT", "k", "1000"], ["EXISTS", "k"],
        ["SET", "k", "v"], ["EXPIREAT", "k", "0"], ["EXISTS", "k"],
        ["SET", "k", "v", "EX", "100"], ["EXPIRE", "k", "-5", "LT"], ["EXISTS", "k"],
        ["SET", "k", "v"], ["EXPIRE", "k", "-5", "GT"], ["EXISTS", "k"],
        ["SET", "k", "v"], ["EXPIRE", "k", "-5", "XX"], ["EXISTS", "k"],
    ],
    "ttl_runs_out": [
        ["SET", "k", "v", "PX", "150"], ["SET", "j", "v"], ["PEXPIRE", "j", "150"],
        ["SETEX", "s", "1", "v"], ["PSETEX", "p", "150", "v"], ["SET", "g", "v"],
        ["GETEX", "g", "PX", "150"],
        Sleep(1.3),
        ["GET", "k"], ["EXISTS", "k", "j", "s", "p", "g"], ["TTL", "k"], ["PTTL", "j"],
        ["GET", "s"], ["STRLEN", "p"], ["TYPE", "g"], ["GETDEL", "g"], ["APPEND", "k", "x"],
        ["TTL", "k"], ["SETNX", "j", "new"], ["GET", "j"], ["INCR", "p"], ["DBSIZE"],
    ],
    "incr_decr": [
        ["INCR", "n"], ["INCRBY", "n", "10"], ["DECR", "n"], ["DECRBY", "n", "3"],
        ["INCRBY", "n", "-7"], ["GET", "n"], ["DECRBY", "n", "-5"], ["DECR", "fresh"],
        ["INCRBY", "fresh2", "-3"], ["SET", "n", "-10"], ["INCR", "n"], ["GET", "n"],
        ["SET", "n", "10", "EX", "100"], ["INCR", "n"], ["TTL", "n"], ["DECRBY", "n", "1"], ["TTL", "n"],
        ["SET", "n", "0"], ["DECR", "n"], ["TYPE", "n"],
    ],
    "incr_not_an_integer": [
        ["SET", "s", "abc"], ["INCR", "s"], ["SET", "s", "007"], ["INCR", "s"],
        ["SET", "s", " 1"], ["INCR", "s"], ["SET", "s", "1 "], ["DECR", "s"],
        ["SET", "s", "1.5"], ["INCRBY", "s", "1"], ["SET", "s", "+1"], ["INCR", "s"],
        ["SET", "s", "-0"], ["INCR", "s"], ["SET", "s", ""], ["INCR", "s"],
        ["SET", "s", "9223372036854775808"], ["INCR", "s"], ["SET", "s", "1e3"], ["INCR", "s"],
        ["SET", "s", "0x10"], ["INCR", "s"], ["GET", "s"],
        ["INCRBY", "n", "abc"], ["INCRBY", "n", "1.5"], ["INCRBY", "n", ""], ["INCRBY", "n", "007"],
        ["DECRBY", "n", "abc"], ["DECRBY", "n", " 1"], ["EXISTS", "n"],
        ["SET", "s", "0"], ["INCR", "s"], ["SET", "s", "-5"], ["INCRBY", "s", "-0"],
    ],
    "incr_overflow": [
        ["SET", "n", MAX], ["INCR", "n"], ["GET", "n"], ["INCRBY", "n", "1"], ["DECRBY", "n", "-1"],
        ["DECR", "n"], ["GET", "n"],
        ["SET", "n", MIN], ["DECR", "n"], ["DECRBY", "n", "1"], ["INCRBY", "n", "-1"], ["GET", "n"],
        ["SET", "n", "0"], ["DECRBY", "n", MIN], ["INCRBY", "n", MIN], ["GET", "n"],
        ["SET", "n", "0"], ["INCRBY", "n", MAX], ["INCRBY", "n", "9223372036854775808"], ["GET", "n"],
        ["SET", "n", "-1"], ["DECRBY", "n", MAX], ["GET", "n"], ["DECR", "n"], ["GET", "n"],
    ],
    "append_strlen": [
        ["APPEND", "k", "abc"], ["APPEND", "k", "def"], ["GET", "k"], ["STRLEN", "k"],
        ["STRLEN", "missing"], ["APPEND", "k", ""], ["APPEND", "e", ""], ["EXISTS", "e"], ["GET", "e"],
        ["SET", "t", "v", "EX", "100"], ["APPEND", "t", "x"], ["TTL", "t"], ["GET", "t"],
        ["SET", "n", "10"], ["APPEND", "n", "5"], ["INCR", "n"], ["STRLEN", "n"],
    ],
    "type": [
        ["TYPE", "missing"], ["SET", "k", "v"], ["TYPE", "k"], ["SET", "n", "1"], ["TYPE", "n"],
    ],
    "dbsize_flush": [
        ["DBSIZE"], ["MSET", "a", "1", "b", "2"], ["DBSIZE"], ["FLUSHDB"], ["DBSIZE"],
        ["MSET", "a", "1", "b", "2"], ["FLUSHALL", "ASYNC"], ["DBSIZE"],
        ["SET", "a", "1"], ["FLUSHALL", "sync"], ["GET", "a"],
        ["SET", "a", "1"], ["FLUSHDB", "ASYNC"], ["EXISTS", "a"], ["FLUSHDB", "SYNC"],
        ["FLUSHALL", "FOO"], ["FLUSHALL", "ASYNC", "SYNC"], ["FLUSHDB", "FOO"], ["FLUSHDB", "SYNC", "x"],
    ],
    "ping_echo": [
        ["PING"], ["PING", "hello"], ["PING", ""], ["PING", "a", "b"], ["ping"],
        ["ECHO", "hi"], ["ECHO", ""], ["ECHO"], ["ECHO", "a", "b"],
    ],
    "select": [
        ["SELECT", "0"], ["SELECT", "x"], ["SELECT", "16"], ["SELECT", "-1"], ["SELECT", "1.0"],
        ["SELECT", ""], ["SELECT", "0"], ["SET", "k", "v"], ["GET", "k"],
    ],
    "unknown_commands": [
        ["NOSUCHCOMMAND"], ["NOSUCHCOMMAND", "a", "b"], ["foo", "bar baz"],
        ["FOO"] + [f"arg{i}" for i in range(20)],
        ["FOO", "x" * 200], ["FOO", "y" * 100, "z" * 100],
        # The error echoes arguments; a newline in one must not break the reply's framing.
        ["FOO", "line1\r\nline2"], ["BAR\r\nBAZ"],
        ["A" * 40], ["PING"],
    ],
    "save": [["SET", "k", "v"], ["SAVE"], ["GET", "k"]],
    "binary_safe": [
        ["SET", b"k\x00ey", b"v\x00al\r\n\xff"], ["GET", b"k\x00ey"], ["GET", b"k"],
        ["STRLEN", b"k\x00ey"], ["EXISTS", b"k\x00ey", b"k\x00eY"],
        ["SET", b"\r\n", b"\xff\xfe"], ["GET", b"\r\n"], ["APPEND", b"\r\n", b"\x00"],
        ["GET", b"\r\n"], ["MGET", b"k\x00ey", b"\r\n", b"\xff"],
        ["SET", b"\xff", b"\x00"], ["GETSET", b"\xff", b"\r\n"], ["GETDEL", b"\xff"],
        ["EXPIRE", b"k\x00ey", "100"], ["TTL", b"k\x00ey"], ["TYPE", b"\r\n"],
        Unordered(["KEYS", "*"]), ["DEL", b"k\x00ey", b"\r\n"], ["DBSIZE"],
        ["SET", b"caf\xc3\xa9", "x"], ["GET", b"caf\xc3\xa9"], ["GET", b"cafe"],
    ],
    "empty_key_and_value": [
        ["GET", ""], ["SET", "", ""], ["GET", ""], ["EXISTS", ""], ["STRLEN", ""], ["TYPE", ""],
        ["APPEND", "", "x"], ["GET", ""], ["EXPIRE", "", "100"], ["TTL", ""], ["INCR", ""],
        ["SET", "", "5"], ["INCR", ""], Unordered(["KEYS", "*"]), ["DEL", ""], ["EXISTS", ""],
        ["SET", "k", ""], ["GET", "k"], ["STRLEN", "k"], ["INCR", "k"], ["GETDEL", "k"],
        ["MSET", "", "a", "b", ""], ["MGET", "", "b"],
    ],
    "long_keys": [
        ["SET", "https://example.com/" + "a" * 1980, "page-a"],
        ["SET", "https://example.com/" + "a" * 1979 + "b", "page-b"],
        ["SET", "k" * 511, "v511"], ["SET", "k" * 510, "v510"], ["SET", "k" * 512, "v512"],
        ["GET", "https://example.com/" + "a" * 1980], ["GET", "https://example.com/" + "a" * 1979 + "b"],
        ["GET", "https://example.com/" + "a" * 1981], ["GET", "k" * 511], ["GET", "k" * 510],
        ["GET", "k" * 512], ["STRLEN", "k" * 512],
        ["EXISTS", "https://example.com/" + "a" * 1980, "k" * 511, "k" * 513],
        ["EXPIRE", "https://example.com/" + "a" * 1980, "100"], ["TTL", "https://example.com/" + "a" * 1980],
        ["TTL", "https://example.com/" + "a" * 1979 + "b"], ["PERSIST", "https://example.com/" + "a" * 1980],
        ["TTL", "https://example.com/" + "a" * 1980],
        ["APPEND", "k" * 511, "+"], ["GET", "k" * 511], ["INCR", "n" * 600], ["INCR", "n" * 600],
        ["GETSET", "k" * 512, "w512"], ["GETEX", "k" * 512, "EX", "50"], ["TTL", "k" * 512],
        ["SETNX", "k" * 512, "x"], ["SETNX", "k" * 5000, "x"], ["GET", "k" * 5000],
        ["MSET", "m" * 700, "1", "m" * 701, "2"], ["MGET", "m" * 700, "m" * 701, "m" * 702],
        Unordered(["KEYS", "https://*"]), Unordered(["KEYS", "k*"]), ["DBSIZE"],
        ["DEL", "https://example.com/" + "a" * 1980, "k" * 512, "k" * 513],
        ["GET", "https://example.com/" + "a" * 1980], ["GET", "https://example.com/" + "a" * 1979 + "b"],
        ["GETDEL", "k" * 511], ["EXISTS", "k" * 511, "k" * 510], ["UNLINK", "m" * 700], ["DBSIZE"],
    ],
    "keys_patterns": [
        ["MSET", "user:1", "a", "user:2", "b", "user:10", "c", "usr:1", "d", "admin", "e",
         "a1", "f", "b1", "g", "c1", "h", "d1", "i", "*star", "j", "[br]", "k", "user:", "l"],
        Unordered(["KEYS", "*"]), Unordered(["KEYS", "user:*"]), Unordered(["KEYS", "user:?"]),
        Unordered(["KEYS", "u*r:1*"]), Unordered(["KEYS", "[a-c]1"]), Unordered(["KEYS", "[^a-c]1"]),
        Unordered(["KEYS", "[abc]?"]), Unordered(["KEYS", "\\*star"]), Unordered(["KEYS", "\\[br]"]),
        Unordered(["KEYS", "nothing*"]), Unordered(["KEYS", "admin"]), Unordered(["KEYS", "USER:*"]),
        Unordered(["KEYS", "[c-a]1"]), Unordered(["KEYS", "user:[0-9][0-9]"]), Unordered(["KEYS", "?"]),
        Unordered(["KEYS", ""]),
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(pair, name):
    theirs, ours = pair
    differences = run_script(theirs, ours, SCRIPTS[name])
    assert not differences, f"{len(differences)} replies differ from Redis:\n" + "\n".join(differences)


def test_select_other_databases_is_refused(pair):
    """A deliberate difference: Strata has one database (documented under Known limits), so
    SELECT of any other index is refused rather than silently sharing database 0."""
    _, ours = pair
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        ours.execute_command("SELECT", "1")


# ---------------------------------------------------------------------------------------------
# Arity: every command with too few or too many arguments. The arities are Redis' own
# (COMMAND INFO); test_command_info_arity checks Strata reports the same ones.

ARITY = {
    "get": 2, "set": -3, "setnx": 3, "setex": 4, "psetex": 4, "getset": 3, "getex": -2, "getdel": 2,
    "mget": -2, "mset": -3, "msetnx": -3, "append": 3, "strlen": 2, "incr": 2, "decr": 2,
    "incrby": 3, "decrby": 3, "del": -2, "unlink": -2, "exists": -2, "expire": -3, "pexpire": -3,
    "expireat": -3, "pexpireat": -3, "ttl": 2, "pttl": 2, "expiretime": 2, "pexpiretime": 2,
    "persist": 2, "type": 2, "scan": -2, "keys": 2, "dbsize": 1, "flushall": -1, "flushdb": -1,
    "ping": -1, "echo": 2, "select": 2, "auth": -2, "hello": -1, "client": -2, "info": -1,
    "config": -2, "command": -1, "time": 1, "quit": -1, "reset": 1, "save": 1, "bgsave": -1,
}


def bad_arity_calls():
    calls = []
    for name, arity in sorted(ARITY.items()):
        if arity > 0:
            calls.append([name.upper()] + ["x"] * arity)  # one too many
            if arity > 1:
                calls.append([name.upper()] + ["x"] * (arity - 2))  # one too few
        elif -arity > 1:
            calls.append([name.upper()] + ["x"] * (-arity - 2))
    return calls


def test_wrong_arity(pair):
    theirs, ours = pair
    differences = run_script(theirs, ours, bad_arity_calls() + [
        ["CLIENT", "SETNAME"], ["CLIENT", "SETNAME", "a", "b"], ["CONFIG", "GET"],
    ])
    assert not differences, "\n".join(differences)


def test_command_info_arity(pair):
    """Cluster-aware clients read arity and key positions from COMMAND INFO."""
    theirs, ours = pair
    names = sorted(ARITY)
    expected = {row[0]: row[1:2] + row[3:6] for row in reply(theirs, "COMMAND", "INFO", *names)}
    actual = {row[0]: row[1:2] + row[3:6] for row in reply(ours, "COMMAND", "INFO", *names) if row}
    differences = [f"{name}: redis [arity, first, last, step] {expected[name]} strata {actual.get(name)}"
                   for name in expected if actual.get(name) != expected[name]]
    assert not differences, "\n".join(differences)


# ---------------------------------------------------------------------------------------------
# SCAN: cursors are opaque and differ between servers; a full iteration must find the same keys.


def full_scan(client, *options):
    """The keys a complete SCAN iteration returns (a key may come back twice: Redis allows it)."""
    keys, cursor, rounds = set(), b"0", 0
    while True:
        cursor, batch = client.execute_command("SCAN", cursor, *options)
        keys.update(batch)
        rounds += 1
        if cursor == b"0":
            return keys
        assert rounds < 10_000, "SCAN does not terminate"


@pytest.mark.parametrize("options", [
    (), ("COUNT", "7"), ("MATCH", "user:*"), ("MATCH", "user:*", "COUNT", "7"),
    ("MATCH", "user:?"), ("MATCH", "[a-c]*"), ("MATCH", "*:[a-c]?"), ("COUNT", "1000"),
    ("TYPE", "string"), ("TYPE", "list"), ("MATCH", "nomatch*"),
], ids=lambda options: " ".join(options) or "plain")
def test_scan_finds_the_same_keys(pair, options):
    theirs, ours = pair
    keys = ([f"user:{i}" for i in range(120)] + [f"item:{c}{i}" for c in "abcdxyz" for i in range(12)]
            + [f"{c}-{i}" for c in "abcz" for i in range(10)] + ["user:", "plain"])
    for client in (theirs, ours):
        for start in range(0, len(keys), 50):
            chunk = keys[start:start + 50]
            client.execute_command("MSET", *[part for key in chunk for part in (key, "v")])
    expected, actual = full_scan(theirs, *options), full_scan(ours, *options)
    assert actual == expected, f"missing: {sorted(expected - actual)[:20]} extra: {sorted(actual - expected)[:20]}"


def test_scan_errors(pair):
    theirs, ours = pair
    differences = run_script(theirs, ours, [
        ["SET", "k", "v"],
        # Not compared: cursors the server never issued ("-1", "12345"). Redis documents them as
        # undefined behaviour; Strata refuses them with "ERR invalid cursor".
        ["SCAN", "abc"], ["SCAN", "0", "COUNT", "0"], ["SCAN", "0", "COUNT", "-1"],
        ["SCAN", "0", "COUNT", "x"], ["SCAN", "0", "COUNT"], ["SCAN", "0", "MATCH"], ["SCAN", "0", "FOO", "x"],
    ])
    assert not differences, "\n".join(differences)


def test_scan_empty_database(pair):
    theirs, ours = pair
    assert reply(ours, "SCAN", "0") == reply(theirs, "SCAN", "0") == [b"0", []]


def test_scan_long_and_binary_keys(pair):
    theirs, ours = pair
    keys = ["https://example.com/" + "p" * 2000, "https://example.com/" + "p" * 1999 + "q",
            "k" * 511, b"bin\x00\r\n\xff", ""]
    for client in (theirs, ours):
        for key in keys:
            client.execute_command("SET", key, "v")
    assert full_scan(ours) == full_scan(theirs)
    assert full_scan(ours, "MATCH", "https://*") == full_scan(theirs, "MATCH", "https://*")


# ---------------------------------------------------------------------------------------------
# Reply framing: redis-py shows a status reply (+OK) and a bulk string ($2 OK) alike, and
# clients such as redis-cli do not; compare the exact bytes for replies that do not vary.


def exchange(sock, payload, until, timeout=10):
    """Sends `payload` and returns what comes back, up to the reply ending with `until`."""
    sock.sendall(payload)
    data, deadline = b"", time.time() + timeout
    while not data.endswith(until):
        assert time.time() < deadline, f"no reply ending with {until!r} in {timeout} s: {data!r}"
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def raw_replies(port, payload, protocol):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if protocol == 3:
            # HELLO's reply names the server and the connection: not compared. It ends with
            # the empty "modules" array.
            assert exchange(sock, resp("HELLO", "3"), until=b"*0\r\n").startswith(b"%7\r\n")
        return exchange(sock, payload, until=b"+PONG\r\n")


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


@pytest.mark.parametrize("protocol", [2, 3])
def test_exact_reply_bytes(strata, redis_port, protocol):
    commands = [
        ("FLUSHALL",), ("PING",), ("PING", "hi"), ("SET", "k", "v"), ("GET", "k"), ("GET", "nope"),
        ("TYPE", "k"), ("TYPE", "nope"), ("MSET", "a", "1"), ("MGET", "a", "nope"), ("SELECT", "0"),
        ("SET", "k", "v", "NX"), ("SET", "k", "v", "FOO"), ("INCR", "k"), ("EXISTS", "k"),
        ("SET", "k", "v", "GET"), ("SET", "new", "v", "XX", "GET"), ("GETEX", "nope"), ("GETDEL", "nope"),
        ("ECHO", ""), ("FLUSHDB",), ("KEYS", "*"), ("SCAN", "0"), ("NOPE", "x"), ("GET",),
        ("SET", "k", "v", "EX", "0"), ("TTL", "nope"), ("CLIENT", "GETNAME"), ("DBSIZE",),
    ]
    payload = b"".join(resp(*command) for command in commands)
    # An inline command (what telnet users type) ends the batch.
    payload += b"PING\r\n"
    assert raw_replies(strata.port, payload, protocol) == raw_replies(redis_port, payload, protocol)


def test_time(pair):
    theirs, ours = pair
    expected, actual = reply(theirs, "TIME"), reply(ours, "TIME")
    assert isinstance(actual, list) and len(actual) == 2 and all(isinstance(part, bytes) for part in actual)
    assert abs(int(actual[0]) - int(expected[0])) <= 2
    assert 0 <= int(actual[1]) < 1_000_000


# ---------------------------------------------------------------------------------------------
# Long keys on the disk tier: keys of 511 bytes and more are stored on disk under a derived key
# (LMDB's key limit); they must still read back, expire, delete and list as the original key.


def test_long_keys_on_the_disk_tier(make_node, redis_port):
    node = make_node("--memory", "1MiB", "--disk", "256MiB", name="small")
    theirs, ours = raw_client(redis_port), raw_client(node.port)  # RESP2: STRATA.TIER's map is a list
    theirs.execute_command("FLUSHALL")
    url = "https://example.com/search?q=" + "a" * 1970
    twin = url[:-1] + "b"  # shares every byte but the last, so the derived keys share the prefix
    keys = [url, twin, "k" * 511, "k" * 510, "k" * 512, "", "m" * 5000]
    setup = [["SET", key, f"value-{len(key)}-{i}"] for i, key in enumerate(keys)]
    setup += [["EXPIRE", url, "100"], ["EXPIRE", "k" * 512, "-1"]]
    # Filler past the 1 MiB memory budget pushes the keys above out to the disk tier.
    setup += [["MSET"] + [part for i in range(j, j + 100) for part in (f"filler:{i}", "x" * 1000)]
              for j in range(0, 3000, 100)]
    assert not run_script(theirs, ours, setup)
    on_disk = [key for key in keys if key != "k" * 512
               and reply(ours, "STRATA.TIER", key)[1] == b"disk"]
    assert len(on_disk) >= 4, "the filler did not push the long keys to the disk tier"

    steps = [["GET", key] for key in keys] + [
        ["EXISTS"] + keys, ["TTL", url], ["TTL", twin], ["STRLEN", "m" * 5000],
        Unordered(["KEYS", "https://*"]), Unordered(["KEYS", "k*"]),
        ["APPEND", twin, "+"], ["GET", twin], ["GETDEL", "k" * 511], ["DEL", url, "k" * 510],
        ["GET", url], ["GET", twin], ["EXISTS"] + keys, ["DBSIZE"],
    ]
    differences = run_script(theirs, ours, steps)
    assert not differences, "\n".join(differences)
    assert full_scan(ours, "MATCH", "[hk]*") == full_scan(theirs, "MATCH", "[hk]*")
    theirs.close()
    ours.close()
