"""Differential tests of Redis' hash and set commands: HSET, HMSET, HSETNX, HGET, HMGET, HGETALL,
HDEL, HEXISTS, HLEN, HKEYS, HVALS, HINCRBY, HINCRBYFLOAT, HSTRLEN, HRANDFIELD, HSCAN, and SADD,
SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER, SMOVE, SINTER, SUNION, SDIFF,
their STORE forms, SINTERCARD and SSCAN.

Every script runs side by side on Strata and a real redis-server 7.0, in RESP2 and RESP3, and
every reply must match, error texts and RESP3 types included. Where the order of members is not
Redis' to promise (hash tables; 7.0 keeps small string sets in a hash table, 7.2 and Strata in a
listpack), a step compares them in any order. Random replies (HRANDFIELD, SPOP, SRANDMEMBER) are
checked for shape, count, distinctness and membership; their deterministic cases (missing key,
count 0, one member, errors) are compared as they are.
"""
import random
import socket

import pytest

from test_commands import exchange, redis_port, reply, resp, strata  # noqa: F401 (module fixtures)
from test_commands import pair  # noqa: F401

MAX = "9223372036854775807"
MIN = "-9223372036854775808"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


class AnyOrder:
    """A reply compared without order: arrays sorted, RESP3 sets and maps as they are, the
    cursor of a SCAN-like reply kept and its items sorted. With `pairs`, a flat array is read as
    field, value pairs (HGETALL in RESP2, HSCAN, HRANDFIELD WITHVALUES)."""

    def __init__(self, *command, pairs=False):
        self.command, self.pairs = list(command), pairs


class Shape:
    """A random reply compared by type and length only."""

    def __init__(self, *command):
        self.command = list(command)


def normalize(value, pairs=False):
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], list) and isinstance(value[0], bytes) \
            and value[0].isdigit():
        return ["scan", value[0], normalize(value[1], pairs)]
    if isinstance(value, list):
        if pairs and all(not isinstance(v, list) for v in value):
            return sorted(zip(value[::2], value[1::2]))
        return sorted((normalize(v) for v in value), key=repr)
    return value


def run(theirs, ours, steps):
    differences = []
    for step in steps:
        command = step.command if isinstance(step, (AnyOrder, Shape)) else step
        expected, actual = reply(theirs, *command), reply(ours, *command)
        if isinstance(step, Shape):
            same = type(expected) is type(actual) and len(expected) == len(actual)
        elif isinstance(step, AnyOrder):
            same = type(expected) is type(actual) and \
                normalize(expected, step.pairs) == normalize(actual, step.pairs)
        else:
            same = type(expected) is type(actual) and expected == actual
        if not same:
            differences.append(f"{command!r}:\n    redis:  {expected!r}\n    strata: {actual!r}")
    return differences


def assert_same(theirs, ours, steps):
    differences = run(theirs, ours, steps)
    assert not differences, f"{len(differences)} replies differ from Redis:\n" + "\n".join(differences)


# ---------------------------------------------------------------------------------------------
# Scripts: each runs on an empty keyspace.

HASH_COMMANDS_ON = [
    lambda k: ["HSET", k, "f", "v"], lambda k: ["HMSET", k, "f", "v"], lambda k: ["HSETNX", k, "f", "v"],
    lambda k: ["HGET", k, "f"], lambda k: ["HMGET", k, "f", "g"], lambda k: ["HGETALL", k],
    lambda k: ["HDEL", k, "f"], lambda k: ["HEXISTS", k, "f"], lambda k: ["HLEN", k], lambda k: ["HKEYS", k],
    lambda k: ["HVALS", k], lambda k: ["HINCRBY", k, "f", "1"], lambda k: ["HINCRBYFLOAT", k, "f", "1.5"],
    lambda k: ["HSTRLEN", k, "f"], lambda k: ["HRANDFIELD", k], lambda k: ["HRANDFIELD", k, "2"],
    lambda k: ["HRANDFIELD", k, "-2", "WITHVALUES"], lambda k: ["HSCAN", k, "0"],
    lambda k: ["HSCAN", k, "0", "COUNT", "0"],
]

SET_COMMANDS_ON = [
    lambda k: ["SADD", k, "m"], lambda k: ["SREM", k, "m"], lambda k: ["SMEMBERS", k],
    lambda k: ["SISMEMBER", k, "m"], lambda k: ["SMISMEMBER", k, "m", "n"], lambda k: ["SCARD", k],
    lambda k: ["SPOP", k], lambda k: ["SPOP", k, "2"], lambda k: ["SRANDMEMBER", k],
    lambda k: ["SRANDMEMBER", k, "-2"], lambda k: ["SMOVE", k, "{x}dst", "m"], lambda k: ["SMOVE", "{x}src", k, "m"],
    lambda k: ["SINTER", k], lambda k: ["SUNION", "{x}src", k], lambda k: ["SDIFF", k, "{x}src"],
    lambda k: ["SINTERSTORE", "{x}d", k], lambda k: ["SUNIONSTORE", "{x}d", k], lambda k: ["SDIFFSTORE", "{x}d", k],
    lambda k: ["SINTERCARD", "1", k], lambda k: ["SSCAN", k, "0"], lambda k: ["SSCAN", k, "0", "COUNT", "0"],
]

SCRIPTS = {
    "hash_basics": [
        ["HSET", "h", "f1", "v1", "f2", "v2"], ["HSET", "h", "f1", "x", "f3", "y"], ["HGET", "h", "f1"],
        ["HGET", "h", "nope"], ["HGET", "missing", "f"], ["HMSET", "h", "a", "1", "b", "2"],
        ["HSETNX", "h", "a", "9"], ["HSETNX", "h", "new", "9"], ["HGET", "h", "a"], ["HGET", "h", "new"],
        ["HSETNX", "n", "f", "v"], ["HGETALL", "n"], ["HLEN", "h"], ["HLEN", "missing"],
        ["HEXISTS", "h", "f1"], ["HEXISTS", "h", "nope"], ["HEXISTS", "missing", "f"],
        ["HSTRLEN", "h", "f1"], ["HSTRLEN", "h", "nope"], ["HSTRLEN", "missing", "f"],
        ["HMGET", "h", "f1", "nope", "a", "f1"], ["HMGET", "missing", "a", "b"],
        ["HKEYS", "h"], ["HVALS", "h"], ["HGETALL", "h"], ["HGETALL", "missing"], ["HKEYS", "missing"],
        ["HVALS", "missing"], ["HSET", "h", "f1", "v1", "f1", "v2"], ["HGET", "h", "f1"],
        ["HSET", "h", "", ""], ["HGET", "h", ""], ["HSTRLEN", "h", ""], ["HEXISTS", "h", ""],
        ["HSET", "b", b"\x00\xff\r\n", b"\x80\x00"], ["HGET", "b", b"\x00\xff\r\n"], ["HGETALL", "b"],
        ["HSET", "num", "i", "12345", "neg", "-7", "big", MAX], ["HSTRLEN", "num", "big"], ["HGETALL", "num"],
        ["HDEL", "h", "f1", "nope", "f1"], ["HDEL", "missing", "f"], ["HLEN", "h"],
        ["HDEL", "h", "f2", "f3", "a", "b", "new", ""], ["EXISTS", "h"], ["HGETALL", "h"], ["HDEL", "h", "x"],
        ["HSET", "t", "f", "v"], ["EXPIRE", "t", "100"], ["HSET", "t", "g", "w"], ["TTL", "t"],
        ["HDEL", "t", "f"], ["TTL", "t"],
    ],
    "hash_arity": [
        ["HSET", "h", "f"], ["HSET", "h", "f", "v", "g"], ["HMSET", "h", "f", "v", "g"], ["HMSET", "h", "f"],
        ["EXISTS", "h"], ["HSET", "h"], ["HSETNX", "h", "f"], ["HSETNX", "h", "f", "v", "w"], ["HGET", "h"],
        ["HGET", "h", "f", "g"], ["HMGET", "h"], ["HGETALL"], ["HGETALL", "h", "x"], ["HDEL", "h"],
        ["HEXISTS", "h"], ["HLEN"], ["HLEN", "h", "x"], ["HKEYS", "h", "x"], ["HVALS"], ["HINCRBY", "h", "f"],
        ["HINCRBY", "h", "f", "1", "2"], ["HINCRBYFLOAT", "h", "f"], ["HSTRLEN", "h"], ["HRANDFIELD"],
        ["HSCAN", "h"], ["hset", "h", "f"], ["HsEt", "h", "f", "v", "x"],
    ],
    "hash_wrongtype": [
        ["SET", "str", "x"], ["SADD", "set", "m"],
        *[make("str") for make in HASH_COMMANDS_ON], *[make("set") for make in HASH_COMMANDS_ON],
        ["HSET", "h", "f", "v"], *[make("h") for make in SET_COMMANDS_ON],
        # Arguments are checked before the key's type where Redis does so.
        ["HINCRBY", "str", "f", "x"], ["HINCRBYFLOAT", "str", "f", "x"], ["HINCRBYFLOAT", "str", "f", "inf"],
        ["HRANDFIELD", "str", "x"], ["HRANDFIELD", "str", "1", "FOO"], ["HSCAN", "str", "x"],
        ["HSCAN", "str", "0", "FOO"], ["HSET", "str", "f"], ["GET", "str"], ["HGETALL", "h"], ["SMEMBERS", "set"],
    ],
    "hincrby": [
        ["HINCRBY", "h", "n", "5"], ["HINCRBY", "h", "n", "-10"], ["HGET", "h", "n"], ["HINCRBY", "h", "n", "0"],
        ["HINCRBY", "h", "n", "abc"], ["HINCRBY", "h", "n", "1.5"], ["HINCRBY", "h", "n", ""],
        ["HINCRBY", "h", "n", " 1"], ["HINCRBY", "h", "n", "+1"], ["HINCRBY", "h", "n", "01"],
        ["HINCRBY", "h", "n", "9223372036854775808"], ["HINCRBY", "h", "n", MIN], ["HGET", "h", "n"],
        ["HSET", "h", "s", "abc"], ["HINCRBY", "h", "s", "1"], ["HSET", "h", "s", " 1"], ["HINCRBY", "h", "s", "1"],
        ["HSET", "h", "s", "01"], ["HINCRBY", "h", "s", "1"], ["HSET", "h", "s", "1.0"], ["HINCRBY", "h", "s", "1"],
        ["HSET", "h", "s", ""], ["HINCRBY", "h", "s", "1"], ["HSET", "h", "s", "-0"], ["HINCRBY", "h", "s", "1"],
        ["HSET", "h", "big", MAX], ["HINCRBY", "h", "big", "1"], ["HINCRBY", "h", "big", "0"],
        ["HINCRBY", "h", "big", MIN], ["HGET", "h", "big"], ["HSET", "h", "small", MIN],
        ["HINCRBY", "h", "small", "-1"], ["HINCRBY", "h", "small", MAX], ["HINCRBY", "h", "small", "1"],
        ["HINCRBY", "h", "x", MAX], ["HINCRBY", "h", "x", "1"], ["HGET", "h", "x"],
        ["HINCRBY", "z", "f", "0"], ["EXISTS", "z"], ["HGET", "z", "f"],
        ["HINCRBY", "bad", "f", "x"], ["EXISTS", "bad"],
        ["HSET", "t", "a", "1"], ["EXPIRE", "t", "100"], ["HINCRBY", "t", "a", "1"], ["TTL", "t"],
    ],
    "hincrbyfloat": [
        ["HINCRBYFLOAT", "h", "f", "10.5"], ["HINCRBYFLOAT", "h", "f", "0.1"], ["HINCRBYFLOAT", "h", "f", "-5"],
        ["HGET", "h", "f"], ["HINCRBYFLOAT", "h", "g", "0.1"], ["HINCRBYFLOAT", "h", "g", "0.2"],
        ["HINCRBYFLOAT", "h", "e", "5.0e3"], ["HINCRBYFLOAT", "h", "e", "2.0e-3"], ["HINCRBYFLOAT", "h", "e", "-5002.002"],
        ["HINCRBYFLOAT", "h", "p", "3.0000000000000000001"], ["HINCRBYFLOAT", "h", "q", "1e17"],
        ["HINCRBYFLOAT", "h", "q", "1"], ["HINCRBYFLOAT", "h", "r", "1.7976931348623157e308"],
        ["HINCRBYFLOAT", "h", "r", "1e308"], ["HINCRBYFLOAT", "h", "hex", "0x10"], ["HINCRBYFLOAT", "h", "m", "-.5"],
        ["HINCRBYFLOAT", "h", "m", "5."], ["HINCRBYFLOAT", "h", "m", "+2"], ["HINCRBYFLOAT", "h", "z", "-0.0"],
        ["HINCRBYFLOAT", "h", "s", "1.5e-7"], ["HINCRBYFLOAT", "h", "int", MAX], ["HINCRBYFLOAT", "h", "int", "1"],
        ["HSET", "h", "i", "10"], ["HINCRBYFLOAT", "h", "i", "0.5"], ["HINCRBYFLOAT", "h", "i", "-10.5"],
        # Rejected increments and values.
        ["HINCRBYFLOAT", "h", "f", "inf"], ["HINCRBYFLOAT", "h", "f", "-inf"], ["HINCRBYFLOAT", "h", "f", "Infinity"],
        ["HINCRBYFLOAT", "h", "f", "nan"], ["HINCRBYFLOAT", "h", "f", "1e5000"], ["HINCRBYFLOAT", "h", "f", "1e-5000"],
        ["HINCRBYFLOAT", "h", "f", " 1"], ["HINCRBYFLOAT", "h", "f", "1 "], ["HINCRBYFLOAT", "h", "f", ""],
        ["HINCRBYFLOAT", "h", "f", "abc"], ["HINCRBYFLOAT", "h", "f", "1" * 5200], ["HGET", "h", "f"],
        ["HSET", "h", "bad", "abc"], ["HINCRBYFLOAT", "h", "bad", "1"], ["HSET", "h", "bad", " 1"],
        ["HINCRBYFLOAT", "h", "bad", "1"], ["HSET", "h", "bad", ""], ["HINCRBYFLOAT", "h", "bad", "1"],
        ["HSET", "h", "bad", "nan"], ["HINCRBYFLOAT", "h", "bad", "1"], ["HSET", "h", "bad", "inf"],
        ["HINCRBYFLOAT", "h", "bad", "1"], ["HSET", "h", "huge", "1e4932"], ["HINCRBYFLOAT", "h", "huge", "1e4932"],
        ["HGET", "h", "huge"], ["HINCRBYFLOAT", "new", "f", "nan"], ["HINCRBYFLOAT", "new", "f", "inf"],
        ["EXISTS", "new"], ["HINCRBYFLOAT", "new", "f", "0"], ["HGETALL", "new"],
        ["HSET", "t", "a", "1"], ["EXPIRE", "t", "100"], ["HINCRBYFLOAT", "t", "a", "1.5"], ["TTL", "t"],
    ],
    "hrandfield_deterministic": [
        ["HRANDFIELD", "missing"], ["HRANDFIELD", "missing", "5"], ["HRANDFIELD", "missing", "-5"],
        ["HRANDFIELD", "missing", "5", "WITHVALUES"], ["HRANDFIELD", "missing", "0"], ["HRANDFIELD", "missing", "x"],
        ["HSET", "h", "a", "1", "b", "2", "c", "3"], ["HRANDFIELD", "h", "0"], ["HRANDFIELD", "h", "0", "WITHVALUES"],
        ["HRANDFIELD", "h", "x"], ["HRANDFIELD", "h", "1.5"], ["HRANDFIELD", "h", "1", "FOO"],
        ["HRANDFIELD", "h", "1", "WITHVALUES", "x"], ["HRANDFIELD", "h", "x", "WITHVALUES"],
        ["HRANDFIELD", "h", MIN], ["HRANDFIELD", "h", MIN, "WITHVALUES"],
        ["HRANDFIELD", "h", "-9223372036854770000", "WITHVALUES"], ["HRANDFIELD", "h", "9223372036854770000", "WITHVALUES"],
        ["HRANDFIELD", "missing", "-9223372036854770000", "WITHVALUES"], ["HRANDFIELD", "h", "-20000000", "FOO"],
        AnyOrder("HRANDFIELD", "h", "3"), ["HRANDFIELD", "h", "100"], ["HRANDFIELD", "h", MAX],
        AnyOrder("HRANDFIELD", "h", "3", "WITHVALUES", pairs=True),
        ["HRANDFIELD", "h", "100", "withvalues"], ["HRANDFIELD", "h", "3", "WITHVALUES"],
        ["HSET", "one", "f", "v"], ["HRANDFIELD", "one"], ["HRANDFIELD", "one", "1"], ["HRANDFIELD", "one", "5"],
        ["HRANDFIELD", "one", "-3"], ["HRANDFIELD", "one", "1", "WITHVALUES"], ["HRANDFIELD", "one", "5", "WITHVALUES"],
        ["HRANDFIELD", "one", "-3", "WITHVALUES"], ["HRANDFIELD", "one", "-1", "WITHVALUES"],
    ],
    "hscan": [
        ["HSCAN", "missing", "0"], ["HSCAN", "missing", "0", "COUNT", "0"], ["HSCAN", "missing", "0", "FOO"],
        ["HSCAN", "missing", "x"], ["HSCAN", "missing", "7"],
        ["HSET", "h", "f1", "a", "f2", "b", "g1", "c", "x", "d"], ["HSCAN", "h", "0"], ["HSCAN", "h", "0", "MATCH", "f*"],
        ["HSCAN", "h", "0", "match", "?1"], ["HSCAN", "h", "0", "MATCH", "*"], ["HSCAN", "h", "0", "MATCH", "nothing"],
        ["HSCAN", "h", "0", "MATCH", "[fg]1"], ["HSCAN", "h", "0", "COUNT", "1"], ["HSCAN", "h", "0", "count", "1000"],
        ["HSCAN", "h", "0", "MATCH", "f*", "COUNT", "2"], ["HSCAN", "h", "0", "MATCH", "f*", "MATCH", "g*"],
        ["HSCAN", "h", "0", "COUNT", "0"], ["HSCAN", "h", "0", "COUNT", "-1"], ["HSCAN", "h", "0", "COUNT", "x"],
        ["HSCAN", "h", "0", "COUNT", MAX], ["HSCAN", "h", "0", "COUNT"], ["HSCAN", "h", "0", "MATCH"],
        ["HSCAN", "h", "0", "FOO", "bar"], ["HSCAN", "h", "0", "TYPE", "string"], ["HSCAN", "h", "0", "NOVALUES"],
        ["HSCAN", "h", "5"], ["HSCAN", "h", ""], ["HSCAN", "h", "-1"], ["HSCAN", "h", "+3"], ["HSCAN", "h", " 0"],
        ["HSCAN", "h", "0 "], ["HSCAN", "h", "-"], ["HSCAN", "h", "+"], ["HSCAN", "h", "0x1"],
        ["HSCAN", "h", "18446744073709551615"], ["HSCAN", "h", "18446744073709551616"], ["HSCAN", "h", "1.5"],
        ["HSCAN", "h", "x", "COUNT", "0"],
    ],
    "set_basics": [
        ["SADD", "s", "a", "b", "c", "a"], ["SADD", "s", "a", "d"], ["SCARD", "s"], ["SCARD", "missing"],
        ["SISMEMBER", "s", "a"], ["SISMEMBER", "s", "x"], ["SISMEMBER", "missing", "a"],
        ["SMISMEMBER", "s", "a", "x", "b", "a"], ["SMISMEMBER", "missing", "a", "b"], AnyOrder("SMEMBERS", "s"),
        ["SMEMBERS", "missing"], ["SREM", "s", "a", "x", "a"], ["SREM", "missing", "a"], AnyOrder("SMEMBERS", "s"),
        ["SREM", "s", "b", "c", "d"], ["EXISTS", "s"], ["SMEMBERS", "s"], ["SREM", "s", "b"],
        # Integer sets answer in ascending order.
        ["SADD", "n", "3", "1", "2", "-5", MAX, MIN], ["SMEMBERS", "n"], ["SISMEMBER", "n", "3"],
        ["SISMEMBER", "n", "03"], ["SISMEMBER", "n", "x"], ["SADD", "n", "03"], ["SCARD", "n"], AnyOrder("SMEMBERS", "n"),
        ["SADD", "m", "10", "-0", "9223372036854775808"], AnyOrder("SMEMBERS", "m"), ["SREM", "m", "10", "x"],
        ["SADD", "e", ""], ["SMEMBERS", "e"], ["SISMEMBER", "e", ""], ["SADD", "b", b"\x00\xff\r\n"], ["SMEMBERS", "b"],
        ["SADD", "t", "x"], ["EXPIRE", "t", "100"], ["SADD", "t", "y"], ["SREM", "t", "x"], ["TTL", "t"],
    ],
    "set_arity": [
        ["SADD", "s"], ["SREM", "s"], ["SMEMBERS"], ["SMEMBERS", "s", "x"], ["SISMEMBER", "s"],
        ["SISMEMBER", "s", "a", "b"], ["SMISMEMBER", "s"], ["SCARD"], ["SPOP"], ["SRANDMEMBER"], ["SMOVE", "a", "b"],
        ["SMOVE", "a", "b", "c", "d"], ["SINTER"], ["SUNION"], ["SDIFF"], ["SINTERSTORE", "d"], ["SUNIONSTORE", "d"],
        ["SDIFFSTORE", "d"], ["SINTERCARD", "1"], ["SSCAN", "s"], ["SPOP", "s", "1", "2"],
        ["SRANDMEMBER", "s", "1", "2"], ["SPOP", "missing", "1", "2"],
    ],
    "set_wrongtype": [
        ["SET", "str", "x"], *[make("str") for make in SET_COMMANDS_ON],
        ["SADD", "{x}src", "m"], ["SET", "{x}dst", "x"], ["SMOVE", "{x}src", "{x}dst", "m"], ["SMEMBERS", "{x}src"],
        ["SMOVE", "{x}missing", "{x}dst", "m"], ["SINTER", "{x}src", "{x}dst"], ["SINTER", "{x}missing", "{x}dst"],
        ["SINTER", "{x}dst", "{x}missing"], ["SUNION", "{x}missing", "{x}dst"], ["SDIFF", "{x}missing", "{x}dst"],
        ["SINTERCARD", "2", "{x}missing", "{x}dst"], ["SINTERSTORE", "{x}d", "{x}missing", "{x}dst"],
        ["SPOP", "str", "x"], ["SPOP", "str", "-1"], ["SRANDMEMBER", "str", "x"], ["SSCAN", "str", "x"],
        ["SSCAN", "str", "0", "FOO"], ["GET", "str"],
    ],
    "spop_deterministic": [
        ["SPOP", "missing"], ["SPOP", "missing", "0"], ["SPOP", "missing", "5"], ["SPOP", "missing", "x"],
        ["SPOP", "missing", "-1"], ["SADD", "s", "a", "b", "c"], ["SPOP", "s", "0"], ["SPOP", "s", "-1"],
        ["SPOP", "s", "x"], ["SPOP", "s", "1.5"], ["SPOP", "s", MIN], ["SCARD", "s"], AnyOrder("SPOP", "s", "3"),
        ["EXISTS", "s"], ["SADD", "s", "a", "b"], AnyOrder("SPOP", "s", MAX), ["EXISTS", "s"],
        ["SADD", "one", "m"], ["SPOP", "one"], ["EXISTS", "one"], ["SADD", "one", "m"], ["SPOP", "one", "1"],
        ["EXISTS", "one"], ["SADD", "n", "3", "1", "2"], ["SPOP", "n", "10"], ["EXISTS", "n"],
        ["SADD", "t", "1", "2"], ["EXPIRE", "t", "100"], Shape("SPOP", "t", "1"), ["TTL", "t"],
    ],
    "srandmember_deterministic": [
        ["SRANDMEMBER", "missing"], ["SRANDMEMBER", "missing", "5"], ["SRANDMEMBER", "missing", "-5"],
        ["SRANDMEMBER", "missing", "0"], ["SRANDMEMBER", "missing", "x"], ["SADD", "s", "a", "b", "c"],
        ["SRANDMEMBER", "s", "0"], ["SRANDMEMBER", "s", "x"], ["SRANDMEMBER", "s", "1.5"], ["SRANDMEMBER", "s", MIN],
        AnyOrder("SRANDMEMBER", "s", "3"), AnyOrder("SRANDMEMBER", "s", "100"), AnyOrder("SRANDMEMBER", "s", MAX),
        ["SCARD", "s"], ["SADD", "one", "m"], ["SRANDMEMBER", "one"], ["SRANDMEMBER", "one", "1"],
        ["SRANDMEMBER", "one", "5"], ["SRANDMEMBER", "one", "-3"], ["SRANDMEMBER", "one", "-1"],
        ["SADD", "n", "3", "1", "2"], ["SRANDMEMBER", "n", "10"], ["SRANDMEMBER", "n", "3"],
    ],
    "smove": [
        ["SADD", "{x}src", "a", "b", "c"], ["SADD", "{x}dst", "c", "d"], ["SMOVE", "{x}src", "{x}dst", "a"],
        ["SMOVE", "{x}src", "{x}dst", "nope"], ["SMOVE", "{x}src", "{x}dst", "c"], AnyOrder("SMEMBERS", "{x}src"),
        AnyOrder("SMEMBERS", "{x}dst"), ["SMOVE", "{x}missing", "{x}dst", "a"], ["SMOVE", "{x}src", "{x}src", "b"],
        ["SMOVE", "{x}src", "{x}src", "nope"], ["SMOVE", "{x}src", "{x}new", "b"], ["EXISTS", "{x}src"],
        ["SMEMBERS", "{x}new"], ["SCARD", "{x}dst"], ["SADD", "{x}ints", "1", "2"], ["SMOVE", "{x}ints", "{x}i2", "2"],
        ["SMEMBERS", "{x}i2"], ["SMOVE", "{x}ints", "{x}dst", "1"], ["EXISTS", "{x}ints"], AnyOrder("SMEMBERS", "{x}dst"),
        ["SADD", "{x}t", "a"], ["EXPIRE", "{x}t", "100"], ["SADD", "{x}u", "b"], ["SMOVE", "{x}u", "{x}t", "b"],
        ["TTL", "{x}t"],
    ],
    "set_algebra": [
        ["SADD", "{s}1", "a", "b", "c", "d"], ["SADD", "{s}2", "c", "d", "e"], ["SADD", "{s}3", "a", "c", "e"],
        AnyOrder("SINTER", "{s}1", "{s}2"), ["SINTER", "{s}1", "{s}2", "{s}3"], AnyOrder("SINTER", "{s}1"),
        ["SINTER", "{s}1", "{s}missing"], ["SINTER", "{s}missing", "{s}1"], ["SINTER", "{s}missing"],
        AnyOrder("SUNION", "{s}1", "{s}2", "{s}3"), AnyOrder("SUNION", "{s}missing", "{s}2"), ["SUNION", "{s}missing"],
        AnyOrder("SDIFF", "{s}1", "{s}2"), ["SDIFF", "{s}1", "{s}2", "{s}3"], AnyOrder("SDIFF", "{s}1", "{s}missing"),
        ["SDIFF", "{s}missing", "{s}1"], ["SDIFF", "{s}1", "{s}1"], AnyOrder("SDIFF", "{s}3", "{s}missing", "{s}2"),
        AnyOrder("SUNION", "{s}1", "{s}1"), AnyOrder("SINTER", "{s}2", "{s}2"),
        # Integer results come out sorted, as Redis builds them in an intset.
        ["SADD", "{s}n1", "5", "1", "3", "4", "2"], ["SADD", "{s}n2", "3", "4", "5", "6", "-1"],
        ["SINTER", "{s}n1", "{s}n2"], ["SUNION", "{s}n1", "{s}n2"], ["SDIFF", "{s}n1", "{s}n2"],
        ["SDIFF", "{s}n2", "{s}n1"], AnyOrder("SUNION", "{s}n1", "{s}1"), ["SINTER", "{s}n1", "{s}1"],
        AnyOrder("SDIFF", "{s}1", "{s}n1"),
    ],
    "set_store": [
        ["SADD", "{s}1", "a", "b", "c", "d"], ["SADD", "{s}2", "c", "d", "e"],
        ["SINTERSTORE", "{s}d", "{s}1", "{s}2"], AnyOrder("SMEMBERS", "{s}d"),
        ["SUNIONSTORE", "{s}d", "{s}1", "{s}2"], ["SCARD", "{s}d"], ["SDIFFSTORE", "{s}d", "{s}1", "{s}2"],
        AnyOrder("SMEMBERS", "{s}d"),
        # A destination of another type is replaced, its TTL dropped.
        ["SET", "{s}d", "x", "EX", "100"], ["SUNIONSTORE", "{s}d", "{s}1"], ["TTL", "{s}d"], ["SCARD", "{s}d"],
        ["HSET", "{s}d", "f", "v"], ["SINTERSTORE", "{s}d", "{s}1", "{s}2"], ["SCARD", "{s}d"], ["HGET", "{s}d", "f"],
        ["SADD", "{s}d", "z"], ["EXPIRE", "{s}d", "100"], ["SDIFFSTORE", "{s}d", "{s}2"], ["TTL", "{s}d"],
        # An empty result deletes the destination.
        ["SINTERSTORE", "{s}d", "{s}1", "{s}missing"], ["EXISTS", "{s}d"], ["SET", "{s}d", "x"],
        ["SDIFFSTORE", "{s}d", "{s}1", "{s}1"], ["EXISTS", "{s}d"], ["SET", "{s}d", "x"],
        ["SUNIONSTORE", "{s}d", "{s}missing"], ["EXISTS", "{s}d"], ["SINTERSTORE", "{s}d", "{s}missing"],
        ["SADD", "{s}e1", "x"], ["SADD", "{s}e2", "y"], ["SINTERSTORE", "{s}d", "{s}e1", "{s}e2"], ["EXISTS", "{s}d"],
        # The destination may be a source.
        ["SUNIONSTORE", "{s}1", "{s}1", "{s}2"], AnyOrder("SMEMBERS", "{s}1"), ["SINTERSTORE", "{s}2", "{s}2", "{s}e1"],
        ["EXISTS", "{s}2"], ["SDIFFSTORE", "{s}1", "{s}1", "{s}e1"], ["SCARD", "{s}1"],
        # A source of another type is an error and the destination stays as it was.
        ["SET", "{s}str", "x"], ["SADD", "{s}d", "keep"], ["SINTERSTORE", "{s}d", "{s}1", "{s}str"],
        ["SUNIONSTORE", "{s}d", "{s}str"], ["SDIFFSTORE", "{s}d", "{s}missing", "{s}str"], ["SMEMBERS", "{s}d"],
        ["SUNIONSTORE", "{s}str", "{s}str"],
        # Integer results.
        ["SADD", "{s}n1", "5", "1", "3"], ["SADD", "{s}n2", "3", "4"], ["SUNIONSTORE", "{s}nd", "{s}n1", "{s}n2"],
        ["SMEMBERS", "{s}nd"], ["SINTERSTORE", "{s}nd", "{s}n1", "{s}n2"], ["SMEMBERS", "{s}nd"],
    ],
    "in_multi_and_scripts": [
        ["MULTI"], ["HSET", "{k}h", "a", "1", "b", "2"], ["SADD", "{k}s", "3", "1"], ["HGETALL", "{k}h"],
        ["SMEMBERS", "{k}s"], ["HINCRBYFLOAT", "{k}h", "a", "0.5"], ["SPOP", "{k}s", "0"],
        ["SUNIONSTORE", "{k}d", "{k}s", "{k}s"], ["EXEC"],
        ["EVAL", "return redis.call('HGETALL', KEYS[1])", "1", "{k}h"],
        ["EVAL", "return redis.call('SMEMBERS', KEYS[1])", "1", "{k}s"],
        ["EVAL", "return redis.call('HINCRBY', KEYS[1], 'b', 40)", "1", "{k}h"],
        ["EVAL", "return redis.call('SINTER', KEYS[1], KEYS[2])", "2", "{k}s", "{k}d"],
        ["EVAL", "return redis.pcall('SADD', KEYS[1], 'm')", "1", "{k}h"],
        ["EVAL", "return redis.call('HRANDFIELD', KEYS[1], -2, 'WITHVALUES')", "1", "{k}missing"],
    ],
    "sintercard": [
        ["SADD", "{s}1", "a", "b", "c", "d"], ["SADD", "{s}2", "c", "d", "e", "a"], ["SINTERCARD", "2", "{s}1", "{s}2"],
        ["SINTERCARD", "1", "{s}1"], ["SINTERCARD", "2", "{s}1", "{s}2", "LIMIT", "1"],
        ["SINTERCARD", "2", "{s}1", "{s}2", "limit", "0"], ["SINTERCARD", "2", "{s}1", "{s}2", "LIMIT", "100"],
        ["SINTERCARD", "2", "{s}1", "{s}2", "LIMIT", "-1"], ["SINTERCARD", "2", "{s}1", "{s}2", "LIMIT", "x"],
        ["SINTERCARD", "2", "{s}1", "{s}2", "LIMIT"], ["SINTERCARD", "2", "{s}1", "{s}2", "FOO"],
        ["SINTERCARD", "2", "{s}1", "{s}2", "LIMIT", "1", "LIMIT", "5"], ["SINTERCARD", "1", "{s}1", "{s}2"],
        ["SINTERCARD", "0", "{s}1"], ["SINTERCARD", "-1", "{s}1"], ["SINTERCARD", "x", "{s}1"],
        ["SINTERCARD", "3", "{s}1", "{s}2"], ["SINTERCARD", MAX, "{s}1"], ["SINTERCARD", "2", "{s}1", "{s}missing"],
        ["SINTERCARD", "1", "{s}missing"], ["SINTERCARD", "2", "{s}1", "{s}1"],
        ["SINTERCARD", "2", "{s}missing", "{s}1", "LIMIT", "x"],
    ],
    "sscan": [
        ["SSCAN", "missing", "0"], ["SSCAN", "missing", "0", "COUNT", "0"], ["SSCAN", "missing", "x"],
        ["SADD", "n", "1", "2", "3", "10", "11", "-4"], ["SSCAN", "n", "0"], ["SSCAN", "n", "0", "MATCH", "1*"],
        ["SSCAN", "n", "0", "COUNT", "1"], ["SSCAN", "n", "0", "MATCH", "-*"], ["SSCAN", "n", "0", "COUNT", "0"],
        ["SSCAN", "n", "0", "COUNT", "x"], ["SSCAN", "n", "0", "MATCH"], ["SSCAN", "n", "0", "TYPE", "set"],
        ["SSCAN", "n", "12345"], ["SSCAN", "n", "-1"], ["SSCAN", "n", ""], ["SSCAN", "n", "99999999999999999999"],
        ["SADD", "s", "apple", "avocado", "banana", "cherry"], AnyOrder("SSCAN", "s", "0"),
        AnyOrder("SSCAN", "s", "0", "MATCH", "a*"), AnyOrder("SSCAN", "s", "0", "MATCH", "*an*", "COUNT", "100"),
        ["SSCAN", "s", "0", "MATCH", "zzz"],
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(pair, name):
    theirs, ours = pair
    assert_same(theirs, ours, SCRIPTS[name])


COMMANDS = ["hset", "hmset", "hsetnx", "hget", "hmget", "hgetall", "hdel", "hexists", "hlen", "hkeys", "hvals",
            "hincrby", "hincrbyfloat", "hstrlen", "hrandfield", "hscan", "sadd", "srem", "smembers", "sismember",
            "smismember", "scard", "spop", "srandmember", "smove", "sinter", "sunion", "sdiff", "sinterstore",
            "sunionstore", "sdiffstore", "sscan"]


def test_command_info(pair):
    """COMMAND INFO's arity and key positions, what cluster-aware clients route by (SINTERCARD's
    key count is an argument: only its arity is compared)."""
    theirs, ours = pair
    expected = {row[0]: row[1:2] + row[3:6] for row in reply(theirs, "COMMAND", "INFO", *COMMANDS)}
    actual = {row[0]: row[1:2] + row[3:6] for row in reply(ours, "COMMAND", "INFO", *COMMANDS) if row}
    assert actual == expected
    assert reply(ours, "COMMAND", "INFO", "sintercard")[0][1] == reply(theirs, "COMMAND", "INFO", "sintercard")[0][1]


def test_random_hash_and_set_operations(pair):
    """Random writes and reads on a few hashes and sets, crossing the listpack and intset limits
    (long values, more than 128 string members, more than 512 integers) both ways."""
    theirs, ours = pair
    rng = random.Random(17)
    steps = []

    def field():
        return rng.choice([f"f{rng.randrange(40)}", str(rng.randrange(-5, 700)), "x" * rng.choice([1, 70])])

    for _ in range(1500):
        h, st = rng.choice(["{k}h1", "{k}h2"]), rng.choice(["{k}s1", "{k}s2", "{k}s3"])
        op = rng.randrange(14)
        if op == 0:
            steps.append(["HSET", h] + [x for _ in range(rng.randrange(1, 4)) for x in (field(), field())])
        elif op == 1:
            steps.append(["HDEL", h] + [field() for _ in range(rng.randrange(1, 4))])
        elif op == 2:
            steps.append(rng.choice([["HGET", h, field()], ["HEXISTS", h, field()], ["HSTRLEN", h, field()],
                                     ["HLEN", h], ["HMGET", h, field(), field()]]))
        elif op == 3:
            steps.append(rng.choice([["HINCRBY", h, f"n{rng.randrange(5)}", str(rng.randrange(-100, 100))],
                                     ["HINCRBYFLOAT", h, f"n{rng.randrange(5)}", f"{rng.uniform(-10, 10):.3f}"],
                                     ["HSETNX", h, field(), field()]]))
        elif op in (4, 5, 6):
            members = [str(rng.randrange(-20, 600)) if rng.random() < 0.7 else f"m{rng.randrange(200)}"
                       for _ in range(rng.randrange(1, 20))]
            steps.append(["SADD", st] + members)
        elif op == 7:
            steps.append(["SREM", st] + [str(rng.randrange(-20, 600)) for _ in range(rng.randrange(1, 30))])
        elif op == 8:
            steps.append(rng.choice([["SCARD", st], ["SISMEMBER", st, str(rng.randrange(600))],
                                     ["SMISMEMBER", st, "m1", str(rng.randrange(600))]]))
        elif op == 9:
            steps.append(["SMOVE", st, rng.choice(["{k}s1", "{k}s2", "{k}s3"]), str(rng.randrange(-20, 600))])
        elif op == 10:
            keys = rng.sample(["{k}s1", "{k}s2", "{k}s3", "{k}none"], rng.randrange(1, 4))
            steps.append(AnyOrder(rng.choice(["SINTER", "SUNION", "SDIFF"]), *keys))
            steps.append(["SINTERCARD", str(len(keys)), *keys, "LIMIT", str(rng.randrange(5))])
        elif op == 11:
            keys = rng.sample(["{k}s1", "{k}s2", "{k}s3", "{k}none"], rng.randrange(1, 4))
            steps.append([rng.choice(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), "{k}d", *keys])
            steps.append(AnyOrder("SMEMBERS", "{k}d"))
        elif op == 12:
            steps.append(AnyOrder("HGETALL", h, pairs=True))
        else:
            steps.append(AnyOrder("SMEMBERS", st))
    assert_same(theirs, ours, steps)


# ---------------------------------------------------------------------------------------------
# Random replies: shape, counts, distinctness, membership.


def as_list(value):
    return sorted(value) if isinstance(value, set) else value


def as_dict(value):
    return value if isinstance(value, dict) else dict(zip(value[::2], value[1::2]))


def test_hrandfield_shapes(pair, request):
    theirs, ours = pair
    resp3 = "resp3" in request.node.callspec.id
    fields = {f"f{i}".encode(): f"v{i}".encode() for i in range(20)}
    for client in (theirs, ours):
        reply(client, "HSET", "h", *[x for kv in fields.items() for x in kv])
    for client in (theirs, ours):
        for count in (1, 5, 19, 20, 25):
            picks = reply(client, "HRANDFIELD", "h", count)
            assert len(picks) == min(count, 20) and len(set(picks)) == len(picks) and set(picks) <= fields.keys()
            with_values = reply(client, "HRANDFIELD", "h", count, "WITHVALUES")
            pairs = with_values if resp3 else [with_values[i:i + 2] for i in range(0, len(with_values), 2)]
            assert all(isinstance(p, list) and len(p) == 2 for p in pairs)
            assert len(pairs) == min(count, 20) and len({p[0] for p in pairs}) == len(pairs)
            assert all(fields[f] == v for f, v in pairs)
        for count in (-1, -7, -50):
            picks = reply(client, "HRANDFIELD", "h", count)
            assert len(picks) == -count and set(picks) <= fields.keys()
            with_values = reply(client, "HRANDFIELD", "h", count, "WITHVALUES")
            pairs = with_values if resp3 else [with_values[i:i + 2] for i in range(0, len(with_values), 2)]
            assert len(pairs) == -count and all(fields[f] == v for f, v in pairs)
        assert reply(client, "HRANDFIELD", "h") in fields
    # Many picks from a small hash reach every field.
    assert set(reply(ours, "HRANDFIELD", "h", -2000)) == fields.keys()


def test_spop_and_srandmember_shapes(pair):
    theirs, ours = pair
    for members in ([str(i) for i in range(30)], [f"m{i}" for i in range(30)]):
        for client in (theirs, ours):
            reply(client, "DEL", "s")
            reply(client, "SADD", "s", *members)
            expected = {m.encode() for m in members}
            for count in (1, 4, 29, 30, 40):
                picks = reply(client, "SRANDMEMBER", "s", count)
                assert isinstance(picks, list) and len(picks) == min(count, 30)
                assert len(set(picks)) == len(picks) and set(picks) <= expected
            for count in (-1, -9, -100):
                picks = reply(client, "SRANDMEMBER", "s", count)
                assert isinstance(picks, list) and len(picks) == -count and set(picks) <= expected
            assert reply(client, "SRANDMEMBER", "s") in expected
            remaining = set(expected)
            single = reply(client, "SPOP", "s")
            assert single in remaining
            remaining.discard(single)
            for count in (1, 5, 10):
                popped = reply(client, "SPOP", "s", count)  # redis-py reads a RESP3 set as a list
                assert isinstance(popped, list)
                assert len(popped) == count and len(set(popped)) == count and set(popped) <= remaining
                remaining -= set(popped)
                assert set(as_list(reply(client, "SMEMBERS", "s"))) == remaining
            assert reply(client, "SCARD", "s") == len(remaining) == 13
            last = as_list(reply(client, "SPOP", "s", 100))
            assert set(last) == remaining and reply(client, "EXISTS", "s") == 0


# ---------------------------------------------------------------------------------------------
# Past the listpack and intset thresholds.


def full_scan(client, command, key, *options):
    cursor, items, calls = b"0", [], 0
    while True:
        cursor, batch = reply(client, command, key, cursor, *options)
        items += batch
        calls += 1
        assert calls < 10_000
        if cursor == b"0":
            return items, calls


def test_big_hash_and_set(pair):
    theirs, ours = pair
    rng = random.Random(5)
    fields = [f"field:{i}" for i in range(2000)]
    for client in (theirs, ours):
        for start in range(0, 2000, 500):
            reply(client, "HSET", "h", *[x for f in fields[start:start + 500] for x in (f, f"value:{f}")])
            reply(client, "SADD", "s", *[f"member:{i}" for i in range(start, start + 500)])
            reply(client, "SADD", "n", *[str(i * 7) for i in range(start, start + 500)])
        reply(client, "HSET", "long", "f", "x" * 100)
    steps = [
        ["HLEN", "h"], ["SCARD", "s"], ["SCARD", "n"], AnyOrder("HGETALL", "h", pairs=True), AnyOrder("HKEYS", "h"),
        AnyOrder("HVALS", "h"), AnyOrder("SMEMBERS", "s"), AnyOrder("SMEMBERS", "n"), ["HGETALL", "long"],
        *[["HGET", "h", rng.choice(fields)] for _ in range(20)], ["HGET", "h", "nope"],
        ["HMGET", "h", "field:0", "field:1999", "nope"], ["HSTRLEN", "h", "field:10"], ["HEXISTS", "h", "field:7"],
        ["HINCRBY", "h", "counter", "5"], ["HINCRBYFLOAT", "h", "float", "1.25"], ["HSETNX", "h", "field:3", "x"],
        ["SISMEMBER", "s", "member:1234"], ["SISMEMBER", "n", "700"], ["SISMEMBER", "n", "701"],
        ["SMISMEMBER", "s", "member:0", "member:2000", "member:1999"],
        ["SINTERCARD", "2", "s", "s"], ["SINTERCARD", "2", "s", "s", "LIMIT", "100"],
        ["SADD", "small", "member:5", "member:7", "x"], AnyOrder("SINTER", "s", "small"),
        ["SINTERSTORE", "d", "s", "small"], AnyOrder("SUNION", "s", "small"), ["SUNIONSTORE", "d", "s", "n", "small"],
        ["SDIFFSTORE", "d", "s", "small"], AnyOrder("SDIFF", "small", "s"), ["SCARD", "d"],
        ["SDIFFSTORE", "d", "n", "s"], ["SCARD", "d"],
        *[["HDEL", "h", f] for f in fields[:1500]], ["HLEN", "h"], AnyOrder("HGETALL", "h", pairs=True),
        *[["SREM", "s", f"member:{i}"] for i in range(0, 2000, 2)], ["SCARD", "s"], AnyOrder("SMEMBERS", "s"),
        ["SREM", "n", *[str(i * 7) for i in range(1, 2000)]], ["SMEMBERS", "n"],
    ]
    assert_same(theirs, ours, steps)
    # A full scan with small COUNTs returns every entry; MATCH filters.
    for count in ("5", "100"):
        items, calls = full_scan(ours, "HSCAN", "h", "COUNT", count)
        pairs = dict(zip(items[::2], items[1::2]))
        assert pairs == as_dict(reply(ours, "HGETALL", "h"))
        assert calls > 1
        members, calls = full_scan(ours, "SSCAN", "s", "COUNT", count)
        assert set(members) == set(as_list(reply(ours, "SMEMBERS", "s"))) and calls > 1
    theirs_items, _ = full_scan(theirs, "HSCAN", "h", "MATCH", "field:19*")
    ours_items, _ = full_scan(ours, "HSCAN", "h", "MATCH", "field:19*")
    assert sorted(zip(theirs_items[::2], theirs_items[1::2])) == sorted(zip(ours_items[::2], ours_items[1::2]))
    theirs_members, _ = full_scan(theirs, "SSCAN", "s", "MATCH", "*7")
    ours_members, _ = full_scan(ours, "SSCAN", "s", "MATCH", "*7")
    assert sorted(set(theirs_members)) == sorted(set(ours_members))
    # Random picks from the big forms.
    assert len(set(reply(ours, "HRANDFIELD", "h", 50))) == 50
    assert len(as_list(reply(ours, "SPOP", "s", 50))) == 50 and reply(ours, "SCARD", "s") == 950


def test_encodings_past_thresholds(strata):
    """OBJECT ENCODING follows Redis 7.2 (not compared with 7.0): listpack -> hashtable for a hash
    and intset -> listpack -> hashtable for a set."""
    from test_commands import raw_client
    client = raw_client(strata.port)
    client.execute_command("FLUSHALL")
    client.execute_command("HSET", "h", "f", "v")
    client.execute_command("SADD", "n", "1")
    client.execute_command("SADD", "s", "a")
    encodings = [client.execute_command("OBJECT", "ENCODING", k) for k in ("h", "n", "s")]
    client.execute_command("HSET", "h", *[x for i in range(600) for x in (f"f{i}", "v")])
    client.execute_command("SADD", "n", *range(600))
    client.execute_command("SADD", "s", *[f"m{i}" for i in range(200)])
    encodings += [client.execute_command("OBJECT", "ENCODING", k) for k in ("h", "n", "s")]
    client.close()
    assert encodings == [b"listpack", b"intset", b"listpack", b"hashtable", b"hashtable", b"hashtable"]


# ---------------------------------------------------------------------------------------------
# Exact reply bytes: RESP3 maps, sets, nested pairs and nulls.


def raw_replies(port, payload, protocol):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if protocol == 3:
            assert exchange(sock, resp("HELLO", "3"), until=b"*0\r\n").startswith(b"%7\r\n")
        return exchange(sock, payload, until=b"+PONG\r\n")


@pytest.mark.parametrize("protocol", [2, 3])
def test_exact_reply_bytes(strata, redis_port, protocol):  # noqa: F811
    commands = [
        ("FLUSHALL",), ("HSET", "h", "a", "1"), ("HGETALL", "h"), ("HGETALL", "nope"), ("HRANDFIELD", "h", "-2", "WITHVALUES"),
        ("HRANDFIELD", "h", "1", "WITHVALUES"), ("HRANDFIELD", "nope"), ("HRANDFIELD", "nope", "3"), ("HMGET", "h", "a", "b"),
        ("HINCRBYFLOAT", "h", "a", "0.5"), ("HSCAN", "h", "0"), ("HSCAN", "nope", "0"), ("SADD", "{s}1", "3", "1"),
        ("SMEMBERS", "{s}1"), ("SMEMBERS", "nope"), ("SPOP", "nope"), ("SPOP", "nope", "2"), ("SPOP", "{s}1", "0"),
        ("SRANDMEMBER", "nope"), ("SRANDMEMBER", "nope", "2"), ("SRANDMEMBER", "{s}1", "0"), ("SUNION", "{s}1", "{s}2"),
        ("SINTER", "{s}1", "{s}2"), ("SDIFF", "{s}1", "{s}2"), ("SMISMEMBER", "{s}1", "1", "2"), ("SSCAN", "{s}1", "0"),
        ("SINTERCARD", "1", "{s}1"), ("SUNIONSTORE", "{s}3", "{s}1"), ("SADD", "one", "x"), ("SRANDMEMBER", "one", "3"),
        ("SPOP", "one", "3"), ("PING",),
    ]
    payload = b"".join(resp(*command) for command in commands)
    assert raw_replies(strata.port, payload, protocol) == raw_replies(redis_port, payload, protocol)


# ---------------------------------------------------------------------------------------------
# Values only on the disk tier: the commands read and rewrite them there as in memory.


def test_values_on_the_disk_tier(make_node, redis_port):  # noqa: F811
    from test_commands import raw_client
    node = make_node("--memory", "1MiB", "--disk", "256MiB", name="small")
    theirs, ours = raw_client(redis_port), raw_client(node.port)  # RESP2: STRATA.TIER's map is a list
    theirs.execute_command("FLUSHALL")
    setup = [["HSET", "{o}h", "a", "1", "b", "2", "c", "x" * 80], ["HSET", "{o}h2", "f", "1.5"],
             ["SADD", "{o}s", "a", "b", "c"], ["SADD", "{o}n", "1", "2", "3"], ["SADD", "{o}t", "z"],
             ["EXPIRE", "{o}t", "1000"]]
    # Filler past the 1 MiB memory budget pushes the keys above out to the disk tier.
    setup += [["MSET"] + [part for i in range(j, j + 100) for part in (f"filler:{i}", "x" * 1000)]
              for j in range(0, 3000, 100)]
    assert_same(theirs, ours, setup)
    keys = ["{o}h", "{o}h2", "{o}s", "{o}n", "{o}t"]
    tiers = {key: dict(zip(*[iter(reply(ours, "STRATA.TIER", key))] * 2))[b"tier"] for key in keys}
    assert all(tier == b"disk" for tier in tiers.values()), f"not all on the disk tier: {tiers}"
    steps = [
        ["HGET", "{o}h", "a"], AnyOrder("HGETALL", "{o}h", pairs=True), ["HINCRBYFLOAT", "{o}h2", "f", "1"],
        AnyOrder("HSCAN", "{o}h", "0", pairs=True), ["SISMEMBER", "{o}s", "b"], ["SMEMBERS", "{o}n"], AnyOrder("SINTER", "{o}s", "{o}s"),
        ["SADD", "{o}t", "y"], ["TTL", "{o}t"], ["SDIFFSTORE", "{o}d", "{o}n", "{o}s"], ["SMEMBERS", "{o}d"],
        ["SMOVE", "{o}n", "{o}s", "2"], ["SCARD", "{o}s"], ["HDEL", "{o}h2", "f"], ["EXISTS", "{o}h2"],
    ]
    assert_same(theirs, ours, steps)
    theirs.close()
    ours.close()


# ---------------------------------------------------------------------------------------------
# Cluster: every command works through any node; multi-key ones need their keys on one
# coordinator (hash tags), else CROSSSLOT.


def test_commands_in_a_cluster(make_node):
    from test_cluster import keys_with_different_coordinators, start_cluster
    from test_commands import raw_client
    nodes = start_cluster(make_node)
    first = next(iter(nodes.values()))
    a, b = keys_with_different_coordinators(first)
    crossslot = "CROSSSLOT Keys in request don't hash to the same slot"
    for n, node in enumerate(nodes.values()):
        client = raw_client(node.port)
        h, s = f"h{n}", f"{{t}}s{n}"
        assert reply(client, "HSET", h, "f", "1", "g", "2") == 2
        assert reply(client, "HINCRBY", h, "f", "5") == 6
        assert sorted(reply(client, "HGETALL", h)) == [b"2", b"6", b"f", b"g"]
        assert reply(client, "HSCAN", h, "0", "MATCH", "g") == [b"0", [b"g", b"2"]]
        assert reply(client, "SADD", s, "x", "y", "z") == 3 and reply(client, "SADD", "{t}other", "y") in (0, 1)
        assert reply(client, "SINTER", s, "{t}other") == [b"y"]
        assert reply(client, "SINTERCARD", "2", s, "{t}other") == 1
        assert reply(client, "SUNIONSTORE", "{t}dest", s, "{t}other") == 3
        assert reply(client, "SMOVE", s, "{t}dest2", "x") == 1 and reply(client, "SCARD", "{t}dest2") >= 1
        assert reply(client, "SADD", a, "1") in (0, 1) and reply(client, "SADD", b, "1") in (0, 1)
        assert reply(client, "SINTER", a, b) == crossslot
        assert reply(client, "SUNIONSTORE", a, b) == crossslot
        assert reply(client, "SMOVE", a, b, "1") == crossslot
        assert reply(client, "SINTERCARD", "2", a, b) == crossslot
        assert reply(client, "SISMEMBER", b, "1") == 1
        client.close()
