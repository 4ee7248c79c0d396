"""Differential tests of the rest of Redis' string family: GETRANGE, SUBSTR, SETRANGE,
INCRBYFLOAT, LCS, SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and BITFIELD_RO.

Every script runs side by side on Strata and a real redis-server 7.0, in RESP2 and RESP3, and
every reply must match, error texts included (the helpers are test_commands.py's). Apart from
the scripts: generated sweeps of ranges and BITFIELD operations, exact reply bytes, values that
live only on the disk tier, Strata's --max-value-size, and CROSSSLOT in a cluster.
"""
import random
import socket
import subprocess
import time

import pytest
import redis

from conftest import Node, free_port, require_tool
from test_cluster import keys_with_different_coordinators, owners, start_cluster
from test_commands import Unordered, exchange, raw_client, reply, resp, run_script

MAX = "9223372036854775807"
MIN = "-9223372036854775808"
MIB512 = 512 * 1024 * 1024


@pytest.fixture(scope="module")
def strata(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("strata"), "--memory", "64MiB", "--disk", "256MiB").start()
    yield node
    node.stop(timeout=15)


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    """A real redis-server on loopback without persistence, for the whole module."""
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


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def pair(request, strata, redis_port):
    """(redis client, strata client) in RESP2 or RESP3, both servers flushed."""
    theirs, ours = raw_client(redis_port, request.param), raw_client(strata.port, request.param)
    theirs.execute_command("FLUSHALL")
    ours.execute_command("FLUSHALL")
    yield theirs, ours
    theirs.close()
    ours.close()


def assert_same(theirs, ours, steps):
    differences = run_script(theirs, ours, steps)
    assert not differences, f"{len(differences)} replies differ from Redis:\n" + "\n".join(differences)


# ---------------------------------------------------------------------------------------------
# Scripts: each runs on an empty keyspace.

SCRIPTS = {
    "getrange": [
        ["SET", "k", "Hello, World"],
        *[["GETRANGE", "k", start, end] for start, end in [
            (0, 4), (0, -1), (-5, -1), (-1, -5), (5, 2), (3, 3), (100, 200), (-100, 100),
            (-100, -50), (-50, -100), (3, -100), (-3, 1000), (11, 11), (12, 12), (0, 0),
            (MIN, MAX), (MAX, MIN), (MIN, MIN), (MAX, MAX)]],
        ["GETRANGE", "k", "a", "1"], ["GETRANGE", "k", "0", "1.5"], ["GETRANGE", "k", "+1", "2"],
        ["GETRANGE", "k", "01", "2"], ["GETRANGE", "k", " 1", "2"], ["GETRANGE", "k", "-0", "2"],
        ["GETRANGE", "k", "9223372036854775808", "1"], ["GETRANGE", "missing", "0", "-1"],
        ["GETRANGE", "missing", "x", "-1"], ["SET", "e", ""], ["GETRANGE", "e", "0", "-1"],
        ["GETRANGE", "e", "0", "0"], ["GETRANGE", "e", "-1", "-1"],
        ["SET", "b", b"\x00\xff\x80binary\r\n"], ["GETRANGE", "b", "0", "2"], ["GETRANGE", "b", "-2", "-1"],
        ["SUBSTR", "k", "0", "4"], ["SUBSTR", "k", "-5", "-1"], ["SUBSTR", "missing", "0", "1"],
        ["SUBSTR", "k", "x", "1"], ["substr", "k", "7", "100"], ["getrange", "k", "7", "100"],
        ["GETRANGE", "k", "0"], ["SUBSTR", "k"], ["GETRANGE", "k", "0", "1", "2"],
    ],
    "setrange": [
        ["SETRANGE", "missing", "0", ""], ["EXISTS", "missing"], ["SETRANGE", "missing", "5", ""],
        ["SETRANGE", "missing", str(MIB512), ""], ["EXISTS", "missing"],
        ["SETRANGE", "k", "3", "abc"], ["GET", "k"], ["STRLEN", "k"],
        ["SETRANGE", "k", "1", "XYZW"], ["GET", "k"], ["SETRANGE", "k", "0", ""], ["GET", "k"],
        ["SETRANGE", "k", "10", "end"], ["GET", "k"], ["SETRANGE", "k", "6", "!"], ["GET", "k"],
        ["SETRANGE", "k", "-1", "x"], ["SETRANGE", "k", "a", "x"], ["SETRANGE", "k", "1.0", "x"],
        ["SETRANGE", "k", MAX, "x"], ["SETRANGE", "k", MIN, "x"], ["SETRANGE", "k", MAX, ""],
        ["SETRANGE", "k", str(MIB512), ""], ["SETRANGE", "k", str(MIB512 - 1), "ab"],
        ["SETRANGE", "k", str(MIB512), "a"], ["SETRANGE", "new", str(MIB512 - 1), "ab"],
        ["EXISTS", "new"], ["GET", "k"],
        ["SETRANGE", "b", "2", b"\x00\xff\r\n"], ["GET", "b"], ["SETRANGE", "b", "0", b"\x80"], ["GET", "b"],
        ["SET", "t", "value", "EX", "100"], ["SETRANGE", "t", "0", "V"], ["TTL", "t"], ["GET", "t"],
        ["SET", "n", "10"], ["SETRANGE", "n", "1", "5"], ["INCR", "n"],
        ["SETRANGE", "k", "0"], ["SETRANGE", "k", "0", "a", "b"],
    ],
    "incrbyfloat": [
        ["SET", "f", "10.5"], ["INCRBYFLOAT", "f", "0.1"], ["INCRBYFLOAT", "f", "-5"], ["GET", "f"],
        ["INCRBYFLOAT", "g", "0.1"], ["INCRBYFLOAT", "g", "0.2"], ["INCRBYFLOAT", "g", "0.3"],
        ["INCRBYFLOAT", "h", "5.0e3"], ["INCRBYFLOAT", "h", "3.0e3"], ["INCRBYFLOAT", "h", "2.0e-3"],
        ["SET", "i", "10"], ["INCRBYFLOAT", "i", "0.5"], ["INCRBYFLOAT", "i", "-10.5"], ["GET", "i"],
        ["INCRBYFLOAT", "z", "-0.0"], ["INCRBYFLOAT", "z", "-0"], ["SET", "z", "-0"],
        ["INCRBYFLOAT", "z", "-0.0"], ["INCRBYFLOAT", "z", "-1e-30"], ["INCRBYFLOAT", "z", "1e-17"],
        ["INCRBYFLOAT", "z", "-1e-17"], ["INCRBYFLOAT", "z", "-4e-18"], ["INCRBYFLOAT", "z", "-6e-18"], ["INCRBYFLOAT", "s", "1.5e-7"],
        ["INCRBYFLOAT", "s", "-1.5e-7"], ["INCRBYFLOAT", "p", "3.0000000000000000001"],
        ["INCRBYFLOAT", "p", "1.1"], ["INCRBYFLOAT", "p", "2.2"], ["INCRBYFLOAT", "q", "1e17"],
        ["INCRBYFLOAT", "q", "1"], ["INCRBYFLOAT", "q", "0.5"], ["INCRBYFLOAT", "r", "1.7976931348623157e308"],
        ["INCRBYFLOAT", "r", "1e308"], ["INCRBYFLOAT", "big", "1e400"], ["INCRBYFLOAT", "tiny", "1e-4940"],
        ["INCRBYFLOAT", "hex", "0x10"], ["INCRBYFLOAT", "hex", "0x1p-2"], ["INCRBYFLOAT", "neg", "-.5"],
        ["INCRBYFLOAT", "neg", "5."], ["INCRBYFLOAT", "neg", "+2"], ["INCRBYFLOAT", "int", MAX],
        ["INCRBYFLOAT", "int", "1"],
        # Rejected increments and values.
        ["INCRBYFLOAT", "f", "inf"], ["INCRBYFLOAT", "f", "-inf"], ["INCRBYFLOAT", "f", "Infinity"],
        ["INCRBYFLOAT", "f", "nan"], ["INCRBYFLOAT", "f", "NaN"], ["INCRBYFLOAT", "f", "1e5000"],
        ["INCRBYFLOAT", "f", "-1e5000"], ["INCRBYFLOAT", "f", "1e-5000"], ["INCRBYFLOAT", "f", " 1"],
        ["INCRBYFLOAT", "f", "1 "], ["INCRBYFLOAT", "f", "\t1"], ["INCRBYFLOAT", "f", ""],
        ["INCRBYFLOAT", "f", "abc"], ["INCRBYFLOAT", "f", "1.5.5"], ["INCRBYFLOAT", "f", b"1\x002"],
        ["INCRBYFLOAT", "f", "1" * 5200], ["GET", "f"],
        ["SET", "bad", "abc"], ["INCRBYFLOAT", "bad", "1"], ["SET", "bad", " 1"], ["INCRBYFLOAT", "bad", "1"],
        ["SET", "bad", ""], ["INCRBYFLOAT", "bad", "1"], ["SET", "bad", "nan"], ["INCRBYFLOAT", "bad", "1"],
        ["SET", "bad", "inf"], ["INCRBYFLOAT", "bad", "1"], ["INCRBYFLOAT", "bad", "-inf"], ["GET", "bad"],
        ["SET", "t", "1", "EX", "100"], ["INCRBYFLOAT", "t", "1.5"], ["TTL", "t"],
        ["INCRBYFLOAT", "f"], ["INCRBYFLOAT", "f", "1", "2"],
    ],
    "setbit_getbit": [
        ["SETBIT", "k", "7", "1"], ["GET", "k"], ["SETBIT", "k", "7", "1"], ["SETBIT", "k", "7", "0"],
        ["GET", "k"], ["SETBIT", "k", "100", "1"], ["STRLEN", "k"], ["GETBIT", "k", "100"],
        ["GETBIT", "k", "101"], ["GETBIT", "k", "99999999"], ["GETBIT", "k", "4294967295"],
        ["GETBIT", "missing", "0"], ["EXISTS", "missing"], ["SETBIT", "zero", "0", "0"], ["GET", "zero"],
        ["SETBIT", "zero", "20", "0"], ["GET", "zero"], ["SETBIT", "k", "0", "1"], ["GET", "k"],
        ["SETBIT", "k", "4294967296", "1"], ["SETBIT", "k", "4294967296", "2"], ["SETBIT", "k", "-1", "1"],
        ["SETBIT", "k", "x", "1"], ["SETBIT", "k", "#1", "1"], ["SETBIT", "k", "1.5", "1"],
        ["SETBIT", "k", "0", "2"], ["SETBIT", "k", "0", "-1"], ["SETBIT", "k", "0", "a"],
        ["SETBIT", "k", "0", "01"], ["SETBIT", "k", "0", ""], ["SETBIT", "k", MAX, "1"],
        ["GETBIT", "k", "4294967296"], ["GETBIT", "k", "-1"], ["GETBIT", "k", "#1"], ["GETBIT", "k", "x"],
        ["GETBIT", "missing", "x"],
        ["SET", "s", "`"], ["GETBIT", "s", "0"], ["GETBIT", "s", "1"], ["GETBIT", "s", "2"],
        ["GETBIT", "s", "3"], ["GETBIT", "s", "8"],
        ["SET", "t", "a", "EX", "100"], ["SETBIT", "t", "6", "1"], ["TTL", "t"], ["GET", "t"],
        ["SETBIT", "k", "0"], ["GETBIT", "k"], ["GETBIT", "k", "0", "1"],
    ],
    "bitcount": [
        ["SET", "s", "foobar"], ["BITCOUNT", "s"], ["BITCOUNT", "s", "0", "0"], ["BITCOUNT", "s", "1", "1"],
        ["BITCOUNT", "s", "1", "1", "BYTE"], ["BITCOUNT", "s", "5", "30", "BIT"],
        ["BITCOUNT", "s", "5", "30", "bit"], ["BITCOUNT", "s", "1", "1", "byte"],
        ["BITCOUNT", "s", "-1", "-1"], ["BITCOUNT", "s", "-2", "-1", "BIT"], ["BITCOUNT", "s", "-1", "-2"],
        ["BITCOUNT", "s", "-100", "-200"], ["BITCOUNT", "s", "-200", "-100"], ["BITCOUNT", "s", "0", "100"],
        ["BITCOUNT", "s", "100", "200"], ["BITCOUNT", "s", "0", "-100"], ["BITCOUNT", "s", "-5", "-20", "BIT"],
        ["BITCOUNT", "s", MIN, MAX], ["BITCOUNT", "s", MIN, MAX, "BIT"], ["BITCOUNT", "s", "0", "47", "BIT"],
        ["BITCOUNT", "s", "1"], ["BITCOUNT", "s", "0", "1", "BIT", "x"], ["BITCOUNT", "s", "0", "1", "FOO"],
        ["BITCOUNT", "s", "a", "1"], ["BITCOUNT", "s", "0", "a"], ["BITCOUNT", "s", "0", "a", "FOO"],
        ["BITCOUNT", "s", "a", "b", "BIT"],
        # Redis 7.0 answers a missing key before it reads the other arguments.
        ["BITCOUNT", "missing"], ["BITCOUNT", "missing", "0", "-1"], ["BITCOUNT", "missing", "1"],
        ["BITCOUNT", "missing", "a", "b", "c", "d"],
        ["SET", "e", ""], ["BITCOUNT", "e"], ["BITCOUNT", "e", "0", "-1"], ["BITCOUNT", "e", "0", "-1", "BIT"],
        ["SET", "ones", b"\xff" * 300], ["BITCOUNT", "ones"], ["BITCOUNT", "ones", "3", "2000", "BIT"],
        ["BITCOUNT"],
    ],
    "bitpos": [
        ["SET", "s", b"\xff\xf0\x00"], ["BITPOS", "s", "0"], ["BITPOS", "s", "1"], ["BITPOS", "s", "0", "0"],
        ["BITPOS", "s", "1", "2"], ["BITPOS", "s", "0", "2"], ["BITPOS", "s", "0", "0", "0"],
        ["BITPOS", "s", "1", "2", "-1"], ["BITPOS", "s", "1", "7", "15", "BIT"], ["BITPOS", "s", "0", "7", "15", "bit"],
        ["BITPOS", "s", "1", "1", "1", "BYTE"], ["BITPOS", "s", "1", "-10", "-20"],
        ["SET", "all", b"\xff\xff\xff"], ["BITPOS", "all", "0"], ["BITPOS", "all", "0", "0", "-1"],
        ["BITPOS", "all", "0", "1"], ["BITPOS", "all", "0", "0", "20", "BIT"], ["BITPOS", "all", "1", "3", "5", "BIT"],
        ["SET", "none", b"\x00\x00"], ["BITPOS", "none", "1"], ["BITPOS", "none", "0"], ["BITPOS", "none", "1", "0", "-1", "BIT"],
        ["BITPOS", "missing", "0"], ["BITPOS", "missing", "1"], ["BITPOS", "missing", "1", "garbage"],
        ["BITPOS", "missing", "2"], ["BITPOS", "missing", "x"], ["BITPOS", "s", "2"], ["BITPOS", "s", "-1"],
        ["BITPOS", "s", "x"], ["BITPOS", "s", "1", "a"], ["BITPOS", "s", "1", "0", "a"],
        ["BITPOS", "s", "1", "0", "1", "FOO"], ["BITPOS", "s", "1", "0", "a", "FOO"], ["BITPOS", "s", "1", "0", "a", "BIT"],
        ["BITPOS", "s", "1", "0", "1", "BIT", "x"],
        ["SET", "e", ""], ["BITPOS", "e", "0"], ["BITPOS", "e", "1"], ["BITPOS", "e", "0", "0", "-1", "BIT"],
        ["BITPOS", "s"],
    ],
    "bitop": [
        ["SET", "a", b"\xff\x0f\x55"], ["SET", "b", b"\xf0"], ["SET", "c", b"\x01\x02\x03\x04"],
        ["BITOP", "AND", "d", "a", "b"], ["GET", "d"], ["BITOP", "OR", "d", "a", "b", "c"], ["GET", "d"],
        ["BITOP", "XOR", "d", "a", "b", "c"], ["GET", "d"], ["BITOP", "NOT", "d", "a"], ["GET", "d"],
        ["BITOP", "and", "d", "a"], ["GET", "d"], ["BITOP", "xor", "d", "a", "a"], ["GET", "d"],
        ["BITOP", "Or", "d", "c", "missing"], ["GET", "d"],
        ["BITOP", "AND", "d", "a", "missing"], ["GET", "d"],
        ["BITOP", "NOT", "d", "a", "b"], ["BITOP", "NOT", "d"], ["BITOP", "FOO", "d", "a"], ["BITOP", "ANDX", "d", "a"],
        ["SET", "d", "x", "EX", "100"], ["BITOP", "OR", "d", "a"], ["TTL", "d"],
        ["BITOP", "AND", "d", "missing", "missing2"], ["EXISTS", "d"], ["BITOP", "NOT", "d", "missing"], ["EXISTS", "d"],
        ["SET", "e", ""], ["BITOP", "OR", "d", "e"], ["EXISTS", "d"],
        ["BITOP", "AND", "a", "a", "c"], ["GET", "a"], ["BITOP", "NOT", "c", "c"], ["GET", "c"],
        ["BITOP", "AND", "d"],
    ],
    "bitfield": [
        ["BITFIELD", "k"], ["EXISTS", "k"], ["BITFIELD", "k", "GET", "u8", "0"], ["EXISTS", "k"],
        ["BITFIELD", "k", "SET", "i8", "0", "-100", "GET", "i8", "0", "GET", "u8", "0"],
        ["BITFIELD", "k", "INCRBY", "i8", "0", "300"], ["BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "1000"],
        ["BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "-1000"],
        ["BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "-1000", "GET", "i8", "0"],
        ["BITFIELD", "k", "overflow", "fail", "incrby", "u2", "100", "1", "overflow", "wrap", "incrby", "u2", "100", "9"],
        ["BITFIELD", "k", "SET", "u8", "#2", "255", "GET", "u8", "#2", "GET", "u4", "#5", "GET", "i4", "#5"],
        ["GET", "k"], ["STRLEN", "k"],
        ["BITFIELD", "w", "SET", "i64", "0", MIN, "INCRBY", "i64", "0", "-1", "GET", "i64", "0"],
        ["BITFIELD", "w", "OVERFLOW", "SAT", "INCRBY", "i64", "0", "1", "INCRBY", "i64", "0", MIN, "INCRBY", "i64", "0", MIN],
        ["BITFIELD", "w", "OVERFLOW", "FAIL", "INCRBY", "i64", "0", "-1", "INCRBY", "i64", "0", MAX],
        ["BITFIELD", "u", "SET", "u63", "0", "-1", "GET", "u63", "0", "OVERFLOW", "SAT", "SET", "u63", "0", "-1"],
        ["BITFIELD", "u", "OVERFLOW", "SAT", "INCRBY", "u63", "0", MAX, "INCRBY", "u63", "0", MIN, "GET", "u63", "0"],
        ["BITFIELD", "u", "OVERFLOW", "FAIL", "SET", "u3", "1", "8", "SET", "u3", "1", "-1", "SET", "u3", "1", "7"],
        ["BITFIELD", "u", "SET", "i5", "3", "-17", "GET", "i5", "3", "SET", "i5", "3", "16", "GET", "u5", "3"],
        ["BITFIELD", "u", "SET", "u1", "63", "1", "GET", "i1", "63", "GET", "u1", "63", "INCRBY", "i1", "63", "1"],
        ["GET", "u"],
        # Redis multiplies a # offset by the width without an overflow check: these wrap to 8 and 64.
        ["BITFIELD", "wr", "GET", "u8", "#2305843009213693953", "SET", "i64", "#288230376151711745", "5",
         "GET", "i64", "64"], ["GET", "wr"],
        # A write whose every operation fails still creates (or grows) the key, as in Redis.
        ["BITFIELD", "new", "OVERFLOW", "FAIL", "SET", "u2", "0", "7"], ["EXISTS", "new"], ["GET", "new"],
        ["BITFIELD", "new", "OVERFLOW", "FAIL", "INCRBY", "u2", "20", "7"], ["STRLEN", "new"],
        ["SET", "t", "a", "EX", "100"], ["BITFIELD", "t", "INCRBY", "u8", "0", "1"], ["TTL", "t"], ["GET", "t"],
        # Errors, in Redis' order.
        ["BITFIELD", "k", "GET", "u64", "0"], ["BITFIELD", "k", "GET", "i65", "0"], ["BITFIELD", "k", "GET", "I8", "0"],
        ["BITFIELD", "k", "GET", "x8", "0"], ["BITFIELD", "k", "GET", "i0", "0"], ["BITFIELD", "k", "GET", "i", "0"],
        ["BITFIELD", "k", "GET", "u08", "0"], ["BITFIELD", "k", "GET", "i-8", "0"], ["BITFIELD", "k", "GET", "i8", "-1"],
        ["BITFIELD", "k", "GET", "i8", "#-1"], ["BITFIELD", "k", "GET", "i8", "4294967296"],
        ["BITFIELD", "k", "GET", "i8", "#536870912"], ["BITFIELD", "k", "GET", "i8", "#"], ["BITFIELD", "k", "GET", "i8", "x"],
        ["BITFIELD", "k", "GET", "i8", "4294967295"], ["BITFIELD", "k", "GET", "u1", "#4294967295"],
        ["BITFIELD", "k", "SET", "i8", "0", "abc"], ["BITFIELD", "k", "INCRBY", "i8", "0", "1.5"],
        ["BITFIELD", "k", "SET", "i8", "0", "9223372036854775808"], ["BITFIELD", "k", "OVERFLOW", "FOO"],
        ["BITFIELD", "k", "OVERFLOW"], ["BITFIELD", "k", "GET", "i8"], ["BITFIELD", "k", "SET", "i8", "0"],
        ["BITFIELD", "k", "FOO"], ["BITFIELD", "k", "GET", "x8", "0", "SET", "i8"],
        ["BITFIELD", "k", "SET", "i8", "0", "1", "GET", "u64", "0"], ["GET", "k"],
        ["BITFIELD_RO", "k", "GET", "u8", "0", "GET", "i16", "#1"], ["BITFIELD_RO", "k"],
        ["BITFIELD_RO", "k", "OVERFLOW", "SAT", "GET", "u8", "0"], ["BITFIELD_RO", "k", "SET", "u8", "0", "1"],
        ["BITFIELD_RO", "k", "GET", "u8", "0", "INCRBY", "u8", "0", "1"], ["BITFIELD_RO", "k", "SET", "u64", "0", "1"],
        ["BITFIELD_RO", "missing", "GET", "i64", "100"], ["EXISTS", "missing"], ["GET", "k"],
        ["BITFIELD"], ["BITFIELD_RO"],
    ],
    "lcs": [
        ["MSET", "k1", "ohmytext", "k2", "mynewtext"], ["LCS", "k1", "k2"], ["LCS", "k1", "k2", "LEN"],
        ["LCS", "k1", "k2", "IDX"], ["LCS", "k1", "k2", "IDX", "MINMATCHLEN", "4"],
        ["LCS", "k1", "k2", "IDX", "WITHMATCHLEN"], ["LCS", "k1", "k2", "idx", "minmatchlen", "4", "withmatchlen"],
        ["LCS", "k1", "k2", "IDX", "MINMATCHLEN", "-5"], ["LCS", "k1", "k2", "MINMATCHLEN", "2"],
        ["LCS", "k1", "k2", "WITHMATCHLEN"], ["LCS", "k1", "k2", "LEN", "LEN"], ["LCS", "k1", "k2", "IDX", "IDX"],
        ["LCS", "k1", "k2", "IDX", "LEN"], ["LCS", "k1", "k2", "LEN", "IDX"], ["LCS", "k1", "k2", "MINMATCHLEN", "a"],
        ["LCS", "k1", "k2", "MINMATCHLEN"], ["LCS", "k1", "k2", "FOO"], ["LCS", "k1", "k2", "IDX", "MINMATCHLEN"],
        ["LCS", "k1", "missing"], ["LCS", "missing", "k2", "IDX"], ["LCS", "missing", "missing2", "LEN"],
        ["LCS", "k1", "k1", "IDX", "WITHMATCHLEN"], ["LCS", "k2", "k1", "IDX", "WITHMATCHLEN"],
        ["MSET", "x", "abcde", "y", "edcba"], ["LCS", "x", "y", "IDX"],
        ["MSET", "x", "aaaaXbbbbYcccc", "y", "ccccZaaaaWbbbb"], ["LCS", "x", "y"], ["LCS", "x", "y", "IDX", "WITHMATCHLEN"],
        ["MSET", "x", b"\x00\xff\x00", "y", b"\xff\x00"], ["LCS", "x", "y"], ["LCS", "x", "y", "IDX"],
        ["SET", "e", ""], ["LCS", "e", "k1", "IDX"], ["LCS", "e", "e"],
        ["LCS", "k1"], ["LCS"],
    ],
    "lcs_memory_limit": [
        # (12,001)^2 cells of 4 bytes is over 512 MiB: refused before anything is allocated.
        ["SET", "x", "a" * 12000], ["SET", "y", "b" * 12000], ["LCS", "x", "y"], ["LCS", "x", "y", "LEN"],
        ["SET", "y", "b" * 100], ["LCS", "x", "y", "LEN"],
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(pair, name):
    theirs, ours = pair
    assert_same(theirs, ours, SCRIPTS[name])


COMMANDS = ["getrange", "substr", "setrange", "incrbyfloat", "setbit", "getbit", "bitcount", "bitpos", "bitop",
            "bitfield", "bitfield_ro", "lcs"]


def test_wrong_arity_and_command_info(pair):
    """Too few arguments for each command, then COMMAND INFO's arity and key positions (what
    cluster-aware clients route by)."""
    theirs, ours = pair
    calls = [["GETRANGE", "k"], ["SUBSTR", "k", "1"], ["SETRANGE", "k"], ["INCRBYFLOAT", "k"], ["SETBIT", "k", "1"],
             ["GETBIT", "k"], ["BITCOUNT"], ["BITPOS", "k"], ["BITOP", "AND", "d"], ["BITFIELD"], ["BITFIELD_RO"],
             ["LCS", "a"], ["GETRANGE", "k", "0", "1", "2"], ["GETBIT", "k", "0", "1"]]
    assert_same(theirs, ours, calls)
    expected = {row[0]: row[1:2] + row[3:6] for row in reply(theirs, "COMMAND", "INFO", *COMMANDS)}
    actual = {row[0]: row[1:2] + row[3:6] for row in reply(ours, "COMMAND", "INFO", *COMMANDS) if row}
    assert actual == expected


# ---------------------------------------------------------------------------------------------
# Generated sweeps: every range of a small value, and random BITFIELD programs and LCS inputs.


def test_every_range_of_bitcount_bitpos_and_getrange(pair):
    theirs, ours = pair
    value = b"\x00\xf0\x0f\xff\x81"
    steps = [["SET", "v", value]]
    bounds = list(range(-45, 46, 4)) + [-1, 0, 39, 40]
    for start in bounds:
        for end in bounds:
            steps.append(["GETRANGE", "v", start, end])
            for unit in ("BYTE", "BIT"):
                steps.append(["BITCOUNT", "v", start, end, unit])
                steps += [["BITPOS", "v", bit, start, end, unit] for bit in (0, 1)]
        steps += [["BITPOS", "v", bit, start] for bit in (0, 1)]
    assert_same(theirs, ours, steps)


def test_random_bitfield_programs(pair):
    theirs, ours = pair
    rng = random.Random(7)
    steps = [["SET", "f", bytes(rng.randrange(256) for _ in range(24))]]
    for _ in range(250):
        command = ["BITFIELD", "f"]
        for _ in range(rng.randrange(1, 5)):
            if rng.random() < 0.2:
                command += ["OVERFLOW", rng.choice(["WRAP", "SAT", "FAIL"])]
            signed = rng.random() < 0.5
            bits = rng.randrange(1, 65 if signed else 64)
            kind = f"{'i' if signed else 'u'}{bits}"
            offset = f"#{rng.randrange(0, 192 // bits + 2)}" if rng.random() < 0.3 else str(rng.randrange(0, 200))
            amount = rng.choice([rng.randrange(-2**63, 2**63), rng.randrange(-300, 300),
                                 2**(bits - 1) - 1, -2**(bits - 1), 2**bits, -1, 0, 1])
            op = rng.choice(["GET", "SET", "INCRBY"])
            command += [op, kind, offset] + ([] if op == "GET" else [str(amount)])
        steps.append(command)
        if rng.random() < 0.3:
            steps.append(["GET", "f"])
    steps.append(["GET", "f"])
    assert_same(theirs, ours, steps)


def test_random_lcs_inputs(pair):
    theirs, ours = pair
    rng = random.Random(11)
    steps = []
    for _ in range(60):
        a = "".join(rng.choice("abc") for _ in range(rng.randrange(0, 40)))
        b = "".join(rng.choice("abc") for _ in range(rng.randrange(0, 40)))
        steps += [["MSET", "{x}a", a, "{x}b", b], ["LCS", "{x}a", "{x}b"], ["LCS", "{x}a", "{x}b", "LEN"],
                  ["LCS", "{x}a", "{x}b", "IDX", "WITHMATCHLEN"],
                  ["LCS", "{x}a", "{x}b", "IDX", "MINMATCHLEN", str(rng.randrange(0, 4))]]
    assert_same(theirs, ours, steps)


def test_incrbyfloat_sums_of_random_decimals(pair):
    theirs, ours = pair
    rng = random.Random(3)
    steps = []
    for _ in range(200):
        increment = f"{rng.uniform(-1000, 1000):.{rng.randrange(0, 12)}f}"
        if rng.random() < 0.2:
            increment = f"{rng.uniform(-9, 9):.3f}e{rng.randrange(-30, 30)}"
        steps.append(["INCRBYFLOAT", rng.choice(["a", "b", "c"]), increment])
    assert_same(theirs, ours, steps)


# ---------------------------------------------------------------------------------------------
# Exact reply bytes: RESP3 maps (LCS IDX), nulls inside arrays (BITFIELD FAIL), bulk floats.


def raw_replies(port, payload, protocol):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if protocol == 3:
            assert exchange(sock, resp("HELLO", "3"), until=b"*0\r\n").startswith(b"%7\r\n")
        return exchange(sock, payload, until=b"+PONG\r\n")


@pytest.mark.parametrize("protocol", [2, 3])
def test_exact_reply_bytes(strata, redis_port, protocol):
    commands = [
        ("FLUSHALL",), ("MSET", "{k}1", "ohmytext", "{k}2", "mynewtext"), ("LCS", "{k}1", "{k}2", "IDX", "WITHMATCHLEN"),
        ("LCS", "{k}1", "{k}2", "LEN"), ("LCS", "{k}1", "{k}2"), ("BITFIELD", "b", "OVERFLOW", "FAIL", "SET", "u2", "0", "7"),
        ("BITFIELD", "b"), ("BITFIELD_RO", "b", "GET", "u2", "0"), ("INCRBYFLOAT", "f", "1.5"), ("GETRANGE", "nope", "0", "1"),
        ("SETRANGE", "nope", "0", ""), ("SETBIT", "b", "1", "1"), ("GETBIT", "b", "1"), ("BITCOUNT", "b"),
        ("BITPOS", "b", "1"), ("BITOP", "NOT", "{k}3", "{k}1"), ("SUBSTR", "{k}3", "0", "1"), ("BITFIELD", "b", "FOO"),
        ("PING",),
    ]
    payload = b"".join(resp(*command) for command in commands)
    assert raw_replies(strata.port, payload, protocol) == raw_replies(redis_port, payload, protocol)


# ---------------------------------------------------------------------------------------------
# Values only on the disk tier: the commands read and rewrite them there as in memory.


def test_values_on_the_disk_tier(make_node, redis_port):
    node = make_node("--memory", "1MiB", "--disk", "256MiB", name="small")
    theirs, ours = raw_client(redis_port), raw_client(node.port)  # RESP2: STRATA.TIER's map is a list
    theirs.execute_command("FLUSHALL")
    old = {f"old:{i}": f"value-{i}-" + "x" * 50 for i in range(8)}
    setup = [["MSET"] + [part for item in old.items() for part in item], ["SET", "old:f", "1.5"],
             ["SET", "old:t", "timed", "EX", "1000"]]
    # Filler past the 1 MiB memory budget pushes the keys above out to the disk tier.
    setup += [["MSET"] + [part for i in range(j, j + 100) for part in (f"filler:{i}", "x" * 1000)]
              for j in range(0, 3000, 100)]
    assert_same(theirs, ours, setup)
    keys = list(old) + ["old:f", "old:t"]
    tiers = {key: dict(zip(*[iter(reply(ours, "STRATA.TIER", key))] * 2))[b"tier"] for key in keys}
    assert all(tier == b"disk" for tier in tiers.values()), f"not all on the disk tier: {tiers}"

    steps = [
        ["GETRANGE", "old:0", "2", "8"], ["SUBSTR", "old:1", "-5", "-1"], ["GETBIT", "old:2", "3"],
        ["SETRANGE", "old:3", "4", "PATCH"], ["GET", "old:3"], ["SETRANGE", "old:t", "8", "!"], ["TTL", "old:t"],
        ["GET", "old:t"], ["SETBIT", "old:4", "1", "0"], ["SETBIT", "old:4", "1000", "1"], ["GET", "old:4"],
        ["BITCOUNT", "old:5", "1", "-2"], ["BITPOS", "old:5", "0", "2"], ["INCRBYFLOAT", "old:f", "2.25"],
        ["BITFIELD", "old:6", "INCRBY", "u8", "#3", "5", "GET", "i16", "0"], ["BITFIELD_RO", "old:7", "GET", "u32", "8"],
        ["BITOP", "XOR", "dest", "old:0", "old:1"], ["GET", "dest"], ["LCS", "old:0", "old:7", "IDX"],
    ]
    assert_same(theirs, ours, steps)
    theirs.close()
    ours.close()


# ---------------------------------------------------------------------------------------------
# Strata's own limit: --max-value-size below Redis' 512 MiB applies with its own error text;
# past 512 MiB, Redis' text.


def test_max_value_size(make_node):
    node = make_node("--memory", "16MiB", "--disk", "64MiB", "--max-value-size", "1KiB", name="limited")
    client = raw_client(node.port)
    strata_error = "ERR string exceeds maximum allowed size (max-value-size)"
    redis_error = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    assert reply(client, "SETRANGE", "k", "1020", "abcd") == 1024
    assert reply(client, "SETRANGE", "k", "1020", "abcde") == strata_error
    assert reply(client, "SETRANGE", "new", "1021", "abcd") == strata_error
    assert reply(client, "SETRANGE", "new", str(MIB512 - 1), "ab") == redis_error
    assert reply(client, "SETRANGE", "new", MAX, "ab") == redis_error
    assert reply(client, "EXISTS", "new") == 0
    assert reply(client, "SETBIT", "b", str(1024 * 8 - 1), "1") == 0
    assert reply(client, "SETBIT", "b", str(1024 * 8), "1") == strata_error
    assert reply(client, "SETBIT", "b", str(2**32), "1") == "ERR bit offset is not an integer or out of range"
    assert reply(client, "STRLEN", "b") == 1024
    assert reply(client, "BITFIELD", "f", "SET", "u8", "#1023", "1") == [0]
    assert reply(client, "BITFIELD", "f", "SET", "u8", "#1024", "1") == strata_error
    assert reply(client, "BITFIELD", "f", "GET", "u8", "#100000") == [0]
    assert reply(client, "STRLEN", "f") == 1024
    client.close()


# ---------------------------------------------------------------------------------------------
# Cluster: BITOP and LCS run on one node; keys with different coordinators get CROSSSLOT.


def test_multi_key_commands_in_a_cluster(make_node):
    nodes = start_cluster(make_node)
    first = next(iter(nodes.values()))
    a, b = keys_with_different_coordinators(first)
    crossslot = "CROSSSLOT Keys in request don't hash to the same slot"
    for node in nodes.values():
        client = raw_client(node.port)
        assert reply(client, "MSET", "{t}a", "ohmytext", "{t}b", "mynewtext") == b"OK"
        assert reply(client, "SET", a, "abc") == b"OK" and reply(client, "SET", b, "abd") == b"OK"
        assert reply(client, "BITOP", "AND", "{t}c", "{t}a", "{t}b") == 9
        assert reply(client, "LCS", "{t}a", "{t}b") == b"mytext"
        assert reply(client, "BITOP", "AND", a, b) == crossslot
        together = owners(first, "{t}c")[0] == owners(first, a)[0]
        assert reply(client, "BITOP", "OR", "{t}c", a) == (3 if together else crossslot)
        assert reply(client, "LCS", a, b) == crossslot
        assert reply(client, "SETRANGE", a, "1", "Z") == 3 and reply(client, "GETRANGE", a, "0", "-1") == b"aZc"
        assert reply(client, "BITFIELD", b, "INCRBY", "u8", "#2", "1") == [ord("d") + 1]
        client.close()
