"""Differential tests of Redis' sorted-set commands: ZADD, ZINCRBY, ZSCORE, ZMSCORE, ZCARD, ZCOUNT,
ZLEXCOUNT, ZRANGE (BYSCORE, BYLEX, REV, LIMIT, WITHSCORES), ZRANGESTORE, ZRANGEBYSCORE,
ZREVRANGEBYSCORE, ZREVRANGE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZRANK, ZREVRANK, ZREM, ZREMRANGEBYRANK,
ZREMRANGEBYSCORE, ZREMRANGEBYLEX, ZPOPMIN, ZPOPMAX, BZPOPMIN, BZPOPMAX, ZMPOP, BZMPOP, ZUNION, ZINTER,
ZDIFF and their STORE forms, ZINTERCARD, ZRANDMEMBER and ZSCAN.

Every script runs side by side on Strata and a real redis-server 7.0, in RESP2 and RESP3, and
every reply must match, error texts, score formatting (%.17g, inf) and RESP3 types (doubles,
nested pairs) included. Random replies (ZRANDMEMBER) are checked for shape, count and
membership; ZSCAN of a skiplist-encoded set is compared as a whole scan in any order.
"""
import random
import socket
import threading
import time

import pytest

from test_commands import exchange, redis_port, reply, resp, strata  # noqa: F401 (module fixtures)
from test_commands import pair  # noqa: F401
from test_hashes_sets import AnyOrder, assert_same, raw_replies

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"

ZSET_COMMANDS_ON = [
    lambda k: ["ZADD", k, "1", "m"], lambda k: ["ZINCRBY", k, "1", "m"], lambda k: ["ZSCORE", k, "m"],
    lambda k: ["ZMSCORE", k, "m", "n"], lambda k: ["ZCARD", k], lambda k: ["ZCOUNT", k, "-inf", "+inf"],
    lambda k: ["ZLEXCOUNT", k, "-", "+"], lambda k: ["ZRANGE", k, "0", "-1"],
    lambda k: ["ZRANGE", k, "0", "1", "BYSCORE", "REV", "LIMIT", "0", "1", "WITHSCORES"],
    lambda k: ["ZRANGESTORE", "{x}dst", k, "0", "-1"], lambda k: ["ZRANGEBYSCORE", k, "0", "1"],
    lambda k: ["ZREVRANGEBYSCORE", k, "1", "0"], lambda k: ["ZREVRANGE", k, "0", "1"],
    lambda k: ["ZRANGEBYLEX", k, "-", "+"], lambda k: ["ZREVRANGEBYLEX", k, "+", "-"],
    lambda k: ["ZRANK", k, "m"], lambda k: ["ZREVRANK", k, "m"], lambda k: ["ZREM", k, "m"],
    lambda k: ["ZREMRANGEBYRANK", k, "0", "1"], lambda k: ["ZREMRANGEBYSCORE", k, "0", "1"],
    lambda k: ["ZREMRANGEBYLEX", k, "-", "+"], lambda k: ["ZPOPMIN", k], lambda k: ["ZPOPMAX", k, "2"],
    lambda k: ["BZPOPMIN", k, "0.01"], lambda k: ["BZPOPMAX", k, "0.01"], lambda k: ["ZMPOP", "1", k, "MIN"],
    lambda k: ["BZMPOP", "0.01", "1", k, "MAX", "COUNT", "2"], lambda k: ["ZUNION", "1", k],
    lambda k: ["ZINTER", "2", k, "{x}src"], lambda k: ["ZDIFF", "1", k], lambda k: ["ZUNIONSTORE", "{x}d", "1", k],
    lambda k: ["ZINTERSTORE", "{x}d", "1", k], lambda k: ["ZDIFFSTORE", "{x}d", "1", k],
    lambda k: ["ZINTERCARD", "1", k], lambda k: ["ZRANDMEMBER", k], lambda k: ["ZRANDMEMBER", k, "2"],
    lambda k: ["ZSCAN", k, "0"],
]

SCORES = ["1", "1.5", "0.1", "1e300", "-inf", "+inf", "inf", "-0", "0", "-1.25", "123456789012345678",
          "4503599627370496", "0.3", "1e-300", "2.5e-5", "-1e17", "0x10", "+7", "3.", ".5"]

SCRIPTS = {
    "zadd_basics": [
        ["ZADD", "z", "1", "a", "2", "b", "3", "c"], ["ZADD", "z", "1", "a"], ["ZADD", "z", "10", "a", "4", "d"],
        ["ZRANGE", "z", "0", "-1", "WITHSCORES"], ["ZCARD", "z"], ["ZCARD", "missing"],
        ["ZADD", "z", "NX", "100", "a", "5", "e"], ["ZADD", "z", "XX", "100", "a", "6", "f"], ["ZSCORE", "z", "f"],
        ["ZADD", "z", "XX", "CH", "101", "a", "6", "f"], ["ZADD", "z", "CH", "101", "a", "7", "b", "8", "g"],
        ["ZADD", "z", "GT", "50", "a"], ["ZADD", "z", "GT", "CH", "500", "a"], ["ZADD", "z", "LT", "CH", "600", "a", "1", "c"],
        ["ZADD", "z", "GT", "XX", "CH", "1000", "a", "1000", "new"], ["ZADD", "z", "LT", "1", "brandnew"],
        ["ZADD", "z", "GT", "1", "brandnew2"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        ["ZADD", "z", "INCR", "5", "a"], ["ZADD", "z", "INCR", "5", "nope"], ["ZADD", "z", "INCR", "NX", "5", "a"],
        ["ZADD", "z", "INCR", "XX", "5", "missingm"], ["ZADD", "z", "INCR", "GT", "-5", "a"],
        ["ZADD", "z", "INCR", "LT", "-5", "a"], ["ZADD", "z", "INCR", "GT", "0", "a"], ["ZADD", "z", "INCR", "0", "a"],
        ["ZADD", "xx", "XX", "1", "a"], ["EXISTS", "xx"], ["ZADD", "xx", "XX", "INCR", "1", "a"], ["EXISTS", "xx"],
        ["ZADD", "nx", "NX", "CH", "1", "a"], ["ZADD", "z", "nx", "xx", "1", "a"], ["ZADD", "z", "gt", "lt", "1", "a"],
        ["ZADD", "z", "gt", "nx", "1", "a"], ["ZADD", "z", "lt", "nx", "1", "a"], ["ZADD", "z", "incr", "1", "a", "2", "b"],
        ["ZADD", "z", "1"], ["ZADD", "z", "1", "a", "2"], ["ZADD", "z", "NX"], ["ZADD", "z", "NX", "1"],
        ["ZADD", "z", "abc", "a"], ["ZADD", "z", "1", "a", "nan", "b"], ["ZADD", "z", " 1", "a"], ["ZADD", "z", "", "a"],
        ["ZADD", "z", "1e400", "a"], ["ZADD", "z", "1 ", "a"], ["ZADD", "z", "1", "a", "x", "b"], ["ZSCORE", "z", "a"],
        ["ZADD", "z", "xx", "nx", "abc", "a"], ["ZADD", "z", "nx", "xx"], ["ZADD", "z", "incr", "1", "a", "2"],
        ["ZADD", "inf", "+inf", "a"], ["ZADD", "inf", "INCR", "-inf", "a"], ["ZINCRBY", "inf", "-inf", "a"],
        ["ZSCORE", "inf", "a"], ["ZADD", "inf", "INCR", "+inf", "a"], ["ZSCORE", "inf", "a"],
        ["ZADD", "b", "1", b"\x00\xff", "1", "", "1", "A"], ["ZRANGE", "b", "0", "-1"],
        ["ZADD", "t", "1", "a"], ["EXPIRE", "t", "100"], ["ZADD", "t", "2", "b"], ["TTL", "t"],
    ],
    "score_formatting": [
        ["ZADD", "s", *[x for i, sc in enumerate(SCORES) for x in (sc, f"m{i}")]],
        ["ZRANGE", "s", "0", "-1", "WITHSCORES"], *[["ZSCORE", "s", f"m{i}"] for i in range(len(SCORES))],
        ["ZMSCORE", "s", "m0", "nope", "m4", "m5", "m2"], ["ZMSCORE", "missing", "a", "b"],
        ["ZSCAN", "s", "0"], ["ZSCAN", "s", "0", "MATCH", "m1*"], ["ZPOPMIN", "s"], ["ZPOPMAX", "s", "2"],
        ["ZINCRBY", "i", "0.1", "x"], ["ZINCRBY", "i", "0.2", "x"], ["ZINCRBY", "i", "1e300", "y"],
        ["ZINCRBY", "i", "1e300", "y"], ["ZINCRBY", "i", "-2e300", "y"], ["ZINCRBY", "i", "1.7976931348623157e308", "y"],
        ["ZINCRBY", "i", "1.7976931348623157e308", "y"], ["ZINCRBY", "i", "5", "neg"], ["ZINCRBY", "i", "-5", "neg"],
        ["ZINCRBY", "i", "x", "y"], ["ZINCRBY", "i", "nan", "y"], ["ZINCRBY", "i", "", "y"], ["ZINCRBY", "i", "1"],
        ["ZRANGE", "i", "0", "-1", "WITHSCORES"], ["ZRANGEBYSCORE", "i", "-inf", "+inf", "WITHSCORES"],
        ["ZRANDMEMBER", "i", "10", "WITHSCORES"], ["ZUNION", "1", "i", "WITHSCORES"],
    ],
    "zrange_by_rank": [
        ["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"],
        *[["ZRANGE", "z", a, b] for a, b in [("0", "-1"), ("1", "3"), ("-2", "-1"), ("3", "1"), ("-100", "100"),
                                              ("5", "10"), ("-1", "-5"), ("0", "0"), ("4", "4")]],
        ["ZRANGE", "z", "0", "-1", "WITHSCORES"], ["ZRANGE", "z", "0", "1", "REV"], ["ZRANGE", "z", "0", "1", "rev", "withscores"],
        ["ZREVRANGE", "z", "0", "-1"], ["ZREVRANGE", "z", "1", "2", "WITHSCORES"], ["ZREVRANGE", "z", "-1", "-1"],
        ["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"], ["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"],
        ["ZRANGE", "z", "0", "-1", "LIMIT", "1"], ["ZRANGE", "z", "0", "-1", "REV", "REV"],
        ["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"], ["ZRANGE", "z", "a", "1"], ["ZRANGE", "z", "0", "1.5"],
        ["ZRANGE", "z", "0", "-1", "FOO"], ["ZREVRANGE", "z", "0", "-1", "REV"], ["ZREVRANGE", "z", "0", "-1", "BYSCORE"],
        ["ZREVRANGE", "z", "0", "-1", "LIMIT", "0", "1"], ["ZRANGE", "missing", "0", "-1"],
        ["ZRANGE", "missing", "0", "-1", "WITHSCORES"], ["ZRANGE", "z", "0"], ["ZRANGE", "z", "0", "-1", "LIMIT", "x", "1"],
        ["ZRANGE", "z", "0", "-1", "BYLEX", "WITHSCORES"], ["ZRANGE", "missing", "x", "y"],
    ],
    "zrange_by_score": [
        ["ZADD", "z", "-inf", "ninf", "1", "a", "2", "b", "2", "bb", "3", "c", "4.5", "d", "+inf", "pinf"],
        *[["ZRANGEBYSCORE", "z", a, b] for a, b in [
            ("-inf", "+inf"), ("1", "3"), ("(1", "3"), ("1", "(3"), ("(1", "(3"), ("2", "2"), ("(2", "2"), ("3", "1"),
            ("-inf", "-inf"), ("+inf", "+inf"), ("(-inf", "(+inf"), ("4.5", "inf"), ("-1e300", "1e300"), ("", "2"),
            ("(", "2"), (" 1", "2"), ("1", "2 "), ("0x1", "0x2"), ("(abc", "2"), ("nan", "1"), ("1", "(nan"), ("a", "b"),
            ("[1", "2"), ("1e400", "+inf")]],
        ["ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"], ["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "1", "2"],
        ["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "1", "-1", "WITHSCORES"], ["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "-1", "2"],
        ["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "10", "2"], ["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "0", "0"],
        ["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "0"], ["ZRANGEBYSCORE", "z", "-inf", "+inf", "REV"],
        ["ZRANGEBYSCORE", "z", "-inf", "+inf", "BYSCORE"], ["ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES", "LIMIT", "2", "2", "WITHSCORES"],
        ["ZREVRANGEBYSCORE", "z", "+inf", "-inf"], ["ZREVRANGEBYSCORE", "z", "3", "(1", "WITHSCORES"],
        ["ZREVRANGEBYSCORE", "z", "1", "3"], ["ZREVRANGEBYSCORE", "z", "+inf", "-inf", "LIMIT", "1", "3"],
        ["ZRANGE", "z", "1", "3", "BYSCORE"], ["ZRANGE", "z", "(1", "+inf", "BYSCORE", "LIMIT", "1", "2", "WITHSCORES"],
        ["ZRANGE", "z", "+inf", "(1", "BYSCORE", "REV", "LIMIT", "0", "3"], ["ZRANGE", "z", "1", "+inf", "BYSCORE", "REV"],
        ["ZRANGE", "z", "x", "1", "BYSCORE"], ["ZRANGEBYSCORE", "missing", "x", "1"], ["ZRANGEBYSCORE", "missing", "0", "1"],
        *[["ZCOUNT", "z", a, b] for a, b in [("-inf", "+inf"), ("(1", "3"), ("2", "2"), ("3", "1"), ("x", "1"),
                                              ("(-inf", "(inf"), ("", "")]],
        ["ZCOUNT", "missing", "0", "1"], ["ZCOUNT", "missing", "x", "1"], ["ZCOUNT", "z", "1"],
    ],
    "zrange_by_lex": [
        ["ZADD", "z", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "ab", "0", "", "0", b"\xff"],
        *[["ZRANGEBYLEX", "z", a, b] for a, b in [
            ("-", "+"), ("[a", "[c"), ("(a", "[c"), ("[a", "(c"), ("(a", "(c"), ("[c", "[a"), ("+", "-"), ("-", "-"),
            ("+", "+"), ("[", "+"), ("(", "+"), ("-", "[b"), ("a", "c"), ("[a", "c"), ("", "+"), ("-x", "+"),
            ("+x", "-"), ("[\xff", "+")]],
        ["ZRANGEBYLEX", "z", "-", "+", "LIMIT", "1", "3"], ["ZRANGEBYLEX", "z", "-", "+", "LIMIT", "-1", "3"],
        ["ZRANGEBYLEX", "z", "-", "+", "LIMIT", "2", "-1"], ["ZRANGEBYLEX", "z", "-", "+", "WITHSCORES"],
        ["ZRANGEBYLEX", "z", "-", "+", "LIMIT", "1"], ["ZREVRANGEBYLEX", "z", "+", "-"], ["ZREVRANGEBYLEX", "z", "[c", "(a"],
        ["ZREVRANGEBYLEX", "z", "-", "+"], ["ZREVRANGEBYLEX", "z", "+", "-", "LIMIT", "2", "2"],
        ["ZRANGE", "z", "[b", "[d", "BYLEX"], ["ZRANGE", "z", "[d", "[b", "BYLEX", "REV"],
        ["ZRANGE", "z", "-", "+", "BYLEX", "LIMIT", "1", "2"], ["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"],
        *[["ZLEXCOUNT", "z", a, b] for a, b in [("-", "+"), ("[a", "(c"), ("(c", "[a"), ("a", "b"), ("-", "[")]],
        ["ZLEXCOUNT", "missing", "-", "+"], ["ZLEXCOUNT", "missing", "x", "+"], ["ZRANGEBYLEX", "missing", "x", "+"],
    ],
    "zrangestore": [
        ["ZADD", "{z}s", "1", "a", "2", "b", "3", "c", "4", "d"], ["ZRANGESTORE", "{z}d", "{z}s", "0", "-1"],
        ["ZRANGE", "{z}d", "0", "-1", "WITHSCORES"], ["ZRANGESTORE", "{z}d", "{z}s", "1", "2", "REV"],
        ["ZRANGE", "{z}d", "0", "-1", "WITHSCORES"], ["ZRANGESTORE", "{z}d", "{z}s", "(1", "+inf", "BYSCORE", "LIMIT", "1", "5"],
        ["ZRANGE", "{z}d", "0", "-1", "WITHSCORES"], ["ZRANGESTORE", "{z}d", "{z}s", "[c", "-", "BYLEX", "REV"],
        ["ZRANGE", "{z}d", "0", "-1"], ["ZRANGESTORE", "{z}d", "{z}s", "5", "10"], ["EXISTS", "{z}d"],
        ["SET", "{z}str", "x"], ["ZRANGESTORE", "{z}str", "{z}s", "0", "0"], ["TYPE", "{z}str"],
        ["ZRANGESTORE", "{z}d", "{z}str", "0", "-1"], ["ZRANGESTORE", "{z}d", "{z}missing", "0", "-1"],
        ["ZRANGESTORE", "{z}d", "{z}s", "0", "-1", "WITHSCORES"], ["ZRANGESTORE", "{z}d", "{z}s", "0"],
        ["ZRANGESTORE", "{z}s", "{z}s", "0", "1"], ["ZRANGE", "{z}s", "0", "-1"], ["ZADD", "{z}t", "1", "x"],
        ["EXPIRE", "{z}t", "100"], ["ZRANGESTORE", "{z}t", "{z}s", "0", "-1"], ["TTL", "{z}t"],
        ["ZRANGESTORE", "{z}d", "{z}s", "0", "-1", "LIMIT", "0", "1"],
    ],
    "zrank_zrem": [
        ["ZADD", "z", "1", "a", "2", "b", "3", "c"], ["ZRANK", "z", "a"], ["ZRANK", "z", "c"], ["ZREVRANK", "z", "a"],
        ["ZREVRANK", "z", "c"], ["ZRANK", "z", "nope"], ["ZRANK", "missing", "a"], ["ZREVRANK", "z", "nope"],
        ["ZREM", "z", "a", "nope", "a"], ["ZREM", "missing", "a"], ["ZRANK", "z", "b"], ["ZREM", "z", "b", "c"],
        ["EXISTS", "z"], ["ZREM", "z"], ["ZRANK", "z"],
    ],
    "zremrange": [
        ["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f"], ["ZREMRANGEBYRANK", "z", "0", "0"],
        ["ZREMRANGEBYRANK", "z", "-1", "-1"], ["ZREMRANGEBYRANK", "z", "3", "1"], ["ZREMRANGEBYRANK", "z", "10", "20"],
        ["ZRANGE", "z", "0", "-1"], ["ZREMRANGEBYSCORE", "z", "(2", "3"], ["ZREMRANGEBYSCORE", "z", "x", "3"],
        ["ZRANGE", "z", "0", "-1"], ["ZREMRANGEBYRANK", "z", "x", "1"], ["ZREMRANGEBYRANK", "missing", "0", "1"],
        ["ZREMRANGEBYSCORE", "missing", "0", "1"], ["ZREMRANGEBYLEX", "missing", "-", "+"],
        ["ZREMRANGEBYRANK", "missing", "x", "1"], ["ZREMRANGEBYSCORE", "z", "-inf", "+inf"], ["EXISTS", "z"],
        ["ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d"], ["ZREMRANGEBYLEX", "l", "(a", "[c"], ["ZRANGE", "l", "0", "-1"],
        ["ZREMRANGEBYLEX", "l", "a", "c"], ["ZREMRANGEBYLEX", "l", "-", "+"], ["EXISTS", "l"],
    ],
    "zpop": [
        ["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"], ["ZPOPMIN", "z"], ["ZPOPMAX", "z"],
        ["ZPOPMIN", "z", "1"], ["ZPOPMAX", "z", "0"], ["ZPOPMIN", "z", "10"], ["EXISTS", "z"], ["ZPOPMIN", "z"],
        ["ZPOPMIN", "missing", "2"], ["ZPOPMAX", "missing"], ["ZPOPMIN", "missing", "0"], ["ZPOPMIN", "z", "-1"],
        ["ZPOPMIN", "z", "x"], ["ZPOPMIN", "z", "1", "2"], ["SET", "str", "x"], ["ZPOPMIN", "str", "0"],
        ["ZPOPMIN", "str", "-1"], ["ZADD", "y", "1", "a", "2", "b"], ["ZPOPMAX", "y", "5"],
    ],
    "zmpop": [
        ["ZADD", "{m}a", "1", "x", "2", "y", "3", "z"], ["ZADD", "{m}b", "10", "p"],
        ["ZMPOP", "2", "{m}none", "{m}a", "MIN"], ["ZMPOP", "2", "{m}a", "{m}b", "MAX", "COUNT", "5"],
        ["ZMPOP", "2", "{m}a", "{m}b", "MIN", "COUNT", "1"], ["ZMPOP", "1", "{m}a", "MIN"], ["ZMPOP", "1", "{m}none", "MAX"],
        ["ZMPOP", "0", "{m}a", "MIN"], ["ZMPOP", "-1", "{m}a", "MIN"], ["ZMPOP", "x", "{m}a", "MIN"],
        ["ZMPOP", "3", "{m}a", "MIN"], ["ZMPOP", "1", "{m}a", "MIDDLE"], ["ZMPOP", "1", "{m}a", "MIN", "COUNT"],
        ["ZMPOP", "1", "{m}a", "MIN", "COUNT", "0"], ["ZMPOP", "1", "{m}a", "MIN", "COUNT", "-1"],
        ["ZMPOP", "1", "{m}a", "MIN", "COUNT", "x"], ["ZMPOP", "1", "{m}a", "MIN", "COUNT", "1", "COUNT", "1"],
        ["ZMPOP", "1", "{m}a", "MIN", "FOO"], ["ZMPOP", "99999999999999999999", "{m}a", "MIN"],
        ["ZMPOP", "9223372036854775807", "{m}a", "MIN"], ["SET", "{m}s", "x"], ["ZMPOP", "2", "{m}s", "{m}b", "MIN"],
        ["ZADD", "{m}c", "5", "q"], ["ZMPOP", "2", "{m}c", "{m}s", "MIN"],
        ["BZMPOP", "0.01", "2", "{m}none", "{m}none2", "MIN"], ["BZMPOP", "x", "1", "{m}a", "MIN"],
        ["BZMPOP", "-1", "1", "{m}a", "MIN"], ["BZMPOP", "0", "0", "{m}a", "MIN"], ["BZMPOP", "x", "1", "{m}a", "FOO"],
        ["ZADD", "{m}d", "1", "one", "2", "two"], ["BZMPOP", "0", "2", "{m}none", "{m}d", "MAX", "COUNT", "10"],
        ["BZMPOP", "0.01", "1", "{m}s", "MIN"], ["BZPOPMIN", "{m}s", "0.01"],
    ],
    "bzpop_with_data": [
        ["ZADD", "{b}a", "1", "x", "2", "y"], ["ZADD", "{b}b", "5", "p"], ["BZPOPMIN", "{b}none", "{b}a", "0"],
        ["BZPOPMAX", "{b}a", "{b}b", "0"], ["BZPOPMAX", "{b}a", "{b}b", "0.5"],
        ["EXISTS", "{b}a", "{b}b"], ["BZPOPMIN", "{b}a", "0.01"], ["BZPOPMIN", "{b}a", "x"], ["BZPOPMIN", "{b}a", "-1"],
        ["BZPOPMIN", "{b}a", "nan"], ["BZPOPMIN", "{b}a", "inf"], ["BZPOPMIN", "{b}a", "1e20"], ["BZPOPMIN", "{b}a", "1e400"],
        ["BZPOPMIN", "{b}a", " 1"], ["BZPOPMIN", "{b}a", "1x"], ["BZMPOP", "inf", "1", "{b}a", "MIN"], ["BZPOPMIN", "{b}a"], ["SET", "{b}s", "x"], ["ZADD", "{b}c", "1", "m"],
        ["BZPOPMIN", "{b}c", "{b}s", "0"], ["BZPOPMIN", "{b}s", "{b}c", "0"],
    ],
    "algebra": [
        ["ZADD", "{a}1", "1", "a", "2", "b", "3", "c"], ["ZADD", "{a}2", "10", "b", "20", "c", "30", "d"],
        ["SADD", "{a}s", "a", "d", "e"], ["ZADD", "{a}i", "+inf", "a", "-inf", "b"],
        ["ZUNION", "2", "{a}1", "{a}2"], ["ZUNION", "2", "{a}1", "{a}2", "WITHSCORES"],
        ["ZUNION", "3", "{a}1", "{a}2", "{a}s", "WITHSCORES", "AGGREGATE", "MAX"],
        ["ZUNION", "2", "{a}1", "{a}2", "WEIGHTS", "2", "0.5", "WITHSCORES"],
        ["ZUNION", "2", "{a}1", "{a}2", "AGGREGATE", "min", "WITHSCORES"],
        ["ZUNION", "2", "{a}1", "{a}i", "WEIGHTS", "1", "0", "WITHSCORES"],
        ["ZUNION", "2", "{a}i", "{a}i", "WEIGHTS", "1", "-1", "WITHSCORES"],
        ["ZUNION", "2", "{a}1", "{a}missing", "WITHSCORES"], ["ZUNION", "1", "{a}missing"],
        ["ZINTER", "2", "{a}1", "{a}2", "WITHSCORES"], ["ZINTER", "2", "{a}1", "{a}s", "WITHSCORES"],
        ["ZINTER", "3", "{a}1", "{a}2", "{a}s"], ["ZINTER", "2", "{a}1", "{a}2", "AGGREGATE", "MAX", "WITHSCORES"],
        ["ZINTER", "2", "{a}1", "{a}2", "WEIGHTS", "-1", "1", "AGGREGATE", "MIN", "WITHSCORES"],
        ["ZINTER", "2", "{a}1", "{a}missing"], ["ZINTER", "2", "{a}i", "{a}i", "WEIGHTS", "1", "-1", "WITHSCORES"],
        ["ZINTER", "2", "{a}i", "{a}s", "WEIGHTS", "0", "1", "WITHSCORES"],
        ["ZDIFF", "2", "{a}1", "{a}2", "WITHSCORES"], ["ZDIFF", "2", "{a}2", "{a}s"], ["ZDIFF", "1", "{a}s", "WITHSCORES"],
        ["ZDIFF", "2", "{a}missing", "{a}1"], ["ZDIFF", "2", "{a}1", "{a}missing", "WITHSCORES"],
        ["ZUNIONSTORE", "{a}d", "2", "{a}1", "{a}2"], ["ZRANGE", "{a}d", "0", "-1", "WITHSCORES"],
        ["ZINTERSTORE", "{a}d", "2", "{a}1", "{a}2", "WEIGHTS", "1", "2"], ["ZRANGE", "{a}d", "0", "-1", "WITHSCORES"],
        ["ZDIFFSTORE", "{a}d", "2", "{a}1", "{a}2"], ["ZRANGE", "{a}d", "0", "-1", "WITHSCORES"],
        ["ZINTERSTORE", "{a}d", "2", "{a}1", "{a}missing"], ["EXISTS", "{a}d"],
        ["ZUNIONSTORE", "{a}1", "2", "{a}1", "{a}1"], ["ZRANGE", "{a}1", "0", "-1", "WITHSCORES"],
        ["SET", "{a}str", "x"], ["ZUNIONSTORE", "{a}str", "1", "{a}2"], ["TYPE", "{a}str"],
        ["ZUNIONSTORE", "{a}s2", "1", "{a}s"], ["TYPE", "{a}s2"], ["ZRANGE", "{a}s2", "0", "-1", "WITHSCORES"],
        ["ZINTERCARD", "2", "{a}1", "{a}2"], ["ZINTERCARD", "2", "{a}1", "{a}2", "LIMIT", "1"],
        ["ZINTERCARD", "2", "{a}1", "{a}2", "LIMIT", "0"], ["ZINTERCARD", "2", "{a}1", "{a}s"],
        ["ZINTERCARD", "1", "{a}missing"], ["ZINTERCARD", "2", "{a}1", "{a}2", "LIMIT", "-1"],
        ["ZINTERCARD", "2", "{a}1", "{a}2", "LIMIT", "x"], ["ZINTERCARD", "2", "{a}1", "{a}2", "LIMIT"],
        ["ZINTERCARD", "0", "{a}1"], ["ZINTERCARD", "x", "{a}1"], ["ZINTERCARD", "3", "{a}1"],
        ["ZINTERCARD", "1", "{a}1", "WITHSCORES"], ["ZINTERCARD", "1", "{a}1", "WEIGHTS", "1"],
    ],
    "algebra_errors": [
        ["ZADD", "{a}1", "1", "a"], ["SET", "{a}str", "x"],
        ["ZUNION", "0", "{a}1"], ["ZUNION", "-1", "{a}1"], ["ZUNION", "x", "{a}1"], ["ZUNION", "2", "{a}1"],
        ["ZUNIONSTORE", "{a}d", "0", "{a}1"], ["ZINTERSTORE", "{a}d", "3", "{a}1"], ["ZDIFFSTORE", "{a}d", "0", "{a}1"],
        ["ZUNION", "1", "{a}1", "WEIGHTS"], ["ZUNION", "1", "{a}1", "WEIGHTS", "x"], ["ZUNION", "1", "{a}1", "WEIGHTS", "1", "2"],
        ["ZUNION", "2", "{a}1", "{a}1", "WEIGHTS", "1"], ["ZUNION", "1", "{a}1", "WEIGHTS", "nan"],
        ["ZUNION", "1", "{a}1", "AGGREGATE"], ["ZUNION", "1", "{a}1", "AGGREGATE", "AVG"], ["ZUNION", "1", "{a}1", "FOO"],
        ["ZUNIONSTORE", "{a}d", "1", "{a}1", "WITHSCORES"], ["ZDIFF", "1", "{a}1", "WEIGHTS", "1"],
        ["ZDIFF", "1", "{a}1", "AGGREGATE", "SUM"], ["ZUNION", "1", "{a}1", "LIMIT", "1"],
        ["ZUNION", "2", "{a}1", "{a}str"], ["ZUNION", "2", "{a}str", "{a}1", "FOO"], ["ZINTER", "2", "{a}1", "{a}str"],
        ["ZDIFF", "2", "{a}1", "{a}str"], ["ZINTERCARD", "2", "{a}1", "{a}str", "LIMIT", "-1"],
        ["ZUNIONSTORE", "{a}d", "1", "{a}str"], ["ZUNION", "1", "{a}1", "withscores", "withscores"],
        ["ZUNION", "1", "{a}1", "AGGREGATE", "MIN", "AGGREGATE", "MAX", "WITHSCORES"],
    ],
    "zrandmember_deterministic": [
        ["ZRANDMEMBER", "missing"], ["ZRANDMEMBER", "missing", "3"], ["ZRANDMEMBER", "missing", "-3", "WITHSCORES"],
        ["ZADD", "z", "1", "a", "2.5", "b"], ["ZRANDMEMBER", "z", "0"], ["ZRANDMEMBER", "z", "0", "WITHSCORES"],
        ["ZRANDMEMBER", "z", "2"], ["ZRANDMEMBER", "z", "5", "WITHSCORES"], ["ZRANDMEMBER", "z", "1", "FOO"],
        ["ZRANDMEMBER", "z", "x"], ["ZRANDMEMBER", "z", "1", "WITHSCORES", "x"], ["ZRANDMEMBER", "z", "-9223372036854775808"],
        ["ZRANDMEMBER", "z", "-9223372036854775807", "WITHSCORES"], ["ZADD", "one", "7", "x"], ["ZRANDMEMBER", "one"],
        ["ZRANDMEMBER", "one", "-3", "WITHSCORES"], ["ZRANDMEMBER", "one", "-2"],
    ],
    "zscan": [
        ["ZADD", "z", "1", "a", "2.5", "b", "-inf", "c", "0.1", "ab"], ["ZSCAN", "z", "0"], ["ZSCAN", "z", "0", "MATCH", "a*"],
        ["ZSCAN", "z", "0", "COUNT", "100", "MATCH", "*b"], ["ZSCAN", "z", "0", "COUNT", "0"], ["ZSCAN", "z", "0", "MATCH"],
        ["ZSCAN", "z", "x"], ["ZSCAN", "missing", "0"], ["ZSCAN", "missing", "0", "FOO"], ["ZSCAN", "z", "0", "FOO", "1"],
    ],
    "zset_arity": [
        ["ZADD", "z"], ["ZADD", "z", "1"], ["ZINCRBY", "z", "1"], ["ZSCORE", "z"], ["ZMSCORE", "z"], ["ZCARD"],
        ["ZCOUNT", "z", "1"], ["ZLEXCOUNT", "z"], ["ZRANGE", "z", "0"], ["ZRANGESTORE", "d", "z", "0"],
        ["ZRANGEBYSCORE", "z", "0"], ["ZREVRANGE", "z"], ["ZRANK", "z"], ["ZREM", "z"], ["ZREMRANGEBYRANK", "z", "0"],
        ["ZPOPMIN"], ["BZPOPMIN", "z"], ["ZMPOP", "1", "z"], ["BZMPOP", "0", "1", "z"], ["ZUNION", "1"],
        ["ZUNIONSTORE", "d", "1"], ["ZINTERCARD", "1"], ["ZRANDMEMBER"], ["ZSCAN", "z"], ["ZCARD", "z", "x"],
        ["ZREMRANGEBYLEX", "z", "-", "+", "x"],
    ],
    "zset_wrongtype": [
        ["SET", "str", "x"], ["SADD", "set", "m"], ["HSET", "h", "f", "v"],
        *[make("str") for make in ZSET_COMMANDS_ON], *[make("h") for make in ZSET_COMMANDS_ON],
        # Arguments are checked before the key's type where Redis does so.
        ["ZADD", "str", "x", "a"], ["ZADD", "str", "NX", "XX", "1", "a"], ["ZCOUNT", "str", "x", "1"],
        ["ZRANGE", "str", "0", "-1", "FOO"], ["ZRANGEBYLEX", "str", "x", "+"], ["ZPOPMIN", "str", "-1"],
        ["ZRANDMEMBER", "str", "x"], ["ZSCAN", "str", "x"], ["ZSCAN", "str", "0", "FOO"], ["ZINCRBY", "str", "x", "m"],
        ["ZREMRANGEBYSCORE", "str", "x", "1"], ["GET", "str"],
    ],
    "multi_and_eval": [
        ["MULTI"], ["ZADD", "{k}z", "1", "a", "2.5", "b"], ["ZRANGE", "{k}z", "0", "-1", "WITHSCORES"],
        ["ZINCRBY", "{k}z", "0.5", "a"], ["ZPOPMIN", "{k}z", "1"], ["BZPOPMIN", "{k}none", "0"],
        ["BZMPOP", "0", "1", "{k}none", "MIN"], ["BZPOPMAX", "{k}z", "0"], ["EXEC"],
        ["ZADD", "{k}z", "1", "a", "2", "b", "3", "c"],
        ["EVAL", "return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')", "1", "{k}z"],
        ["EVAL", "return redis.call('ZSCORE', KEYS[1], 'b')", "1", "{k}z"],
        ["EVAL", "return redis.call('ZINCRBY', KEYS[1], 1.5, 'b')", "1", "{k}z"],
        ["EVAL", "return redis.call('BZPOPMIN', KEYS[1], 0)", "1", "{k}z"],
        ["EVAL", "return redis.call('BZPOPMIN', KEYS[1], 0)", "1", "{k}none"],
        ["EVAL", "return redis.call('ZMPOP', 1, KEYS[1], 'MAX', 'COUNT', 2)", "1", "{k}z"],
        ["EVAL", "return redis.call('BZMPOP', 0, 1, KEYS[1], 'MIN')", "1", "{k}none"],
        ["ZADD", "{k}z", "4", "d"], ["EVAL", "return redis.call('BZMPOP', 0, 1, KEYS[1], 'MIN')", "1", "{k}z"],
        ["EVAL", "return redis.pcall('ZADD', KEYS[1], 'x', 'a')", "1", "{k}z"],
        ["EVAL", "return redis.call('ZUNIONSTORE', KEYS[2], 1, KEYS[1])", "2", "{k}z", "{k}d"],
        ["EVAL", "redis.setresp(3); return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')", "1", "{k}d"],
        ["EXISTS", "{k}z"],
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(pair, name):
    theirs, ours = pair
    assert_same(theirs, ours, SCRIPTS[name])


COMMANDS = ["zadd", "zincrby", "zscore", "zmscore", "zcard", "zcount", "zlexcount", "zrange", "zrangestore",
            "zrangebyscore", "zrevrangebyscore", "zrevrange", "zrangebylex", "zrevrangebylex", "zrem",
            "zremrangebyrank", "zremrangebyscore", "zremrangebylex", "zpopmin", "zpopmax", "bzpopmin", "bzpopmax",
            "zrandmember", "zscan"]
# Their key count is an argument: only the arity is compared. ZRANK and ZREVRANK take 7.2's
# WITHSCORE, so their arity is 7.2's (-3) rather than 7.0's (3).
NUMKEYS_COMMANDS = ["zmpop", "bzmpop", "zunion", "zinter", "zdiff", "zunionstore", "zinterstore", "zdiffstore",
                    "zintercard"]


def test_command_info(pair):
    theirs, ours = pair
    expected = {row[0]: row[1:2] + row[3:6] for row in reply(theirs, "COMMAND", "INFO", *COMMANDS)}
    actual = {row[0]: row[1:2] + row[3:6] for row in reply(ours, "COMMAND", "INFO", *COMMANDS) if row}
    assert actual == expected
    for name in NUMKEYS_COMMANDS:
        assert reply(ours, "COMMAND", "INFO", name)[0][1] == reply(theirs, "COMMAND", "INFO", name)[0][1], name
    assert [reply(ours, "COMMAND", "INFO", name)[0][1] for name in ("zrank", "zrevrank")] == [-3, -3]


def random_steps(rng, count):
    """A few thousand random writes and reads on three sorted sets and a set, scores drawn from
    a small pool so ties (and so member order) matter."""
    keys = ["{r}z1", "{r}z2", "{r}z3"]
    pool = ["0", "1", "-1", "1.5", "2", "0.1", "-inf", "+inf", "3", "1e300", "-2.25", "7", "-0", "123456789012345678"]
    steps = []

    def member():
        return rng.choice([f"m{rng.randrange(60)}", "x" * rng.choice([1, 70]), str(rng.randrange(10))])

    def bound():
        return rng.choice(["-inf", "+inf", "(1", "1", "0", "(0", "2", "(3", "1.5", "-1"])

    def lex():
        return rng.choice(["-", "+", "[m1", "(m1", "[m3", "(m5", "[x", "[", "(m"])

    for _ in range(count):
        k, k2 = rng.choice(keys), rng.choice(keys)
        op = rng.randrange(20)
        if op < 4:
            flags = rng.choice([[], [], ["NX"], ["XX"], ["GT"], ["LT"], ["CH"], ["XX", "GT", "CH"]])
            pairs = [x for _ in range(rng.randrange(1, 6)) for x in (rng.choice(pool), member())]
            steps.append(["ZADD", k, *flags, *pairs])
        elif op == 4:
            steps.append(["ZINCRBY", k, rng.choice(pool[:6]), member()])
        elif op == 5:
            steps.append(["ZREM", k, *[member() for _ in range(rng.randrange(1, 4))]])
        elif op == 6:
            steps.append(rng.choice([["ZSCORE", k, member()], ["ZMSCORE", k, member(), member()], ["ZCARD", k],
                                     ["ZRANK", k, member()], ["ZREVRANK", k, member()]]))
        elif op == 7:
            a, b = rng.randrange(-8, 8), rng.randrange(-8, 8)
            steps.append(["ZRANGE", k, str(a), str(b), *rng.choice([[], ["REV"], ["WITHSCORES"], ["REV", "WITHSCORES"]])])
        elif op == 8:
            limit = rng.choice([[], ["LIMIT", str(rng.randrange(-1, 4)), str(rng.randrange(-1, 5))]])
            steps.append(rng.choice([["ZRANGEBYSCORE", k, bound(), bound(), "WITHSCORES", *limit],
                                     ["ZREVRANGEBYSCORE", k, bound(), bound(), *limit],
                                     ["ZRANGE", k, bound(), bound(), "BYSCORE", *rng.choice([[], ["REV"]]), *limit]]))
            steps.append(["ZCOUNT", k, bound(), bound()])
        elif op == 9:
            # BYLEX is only defined when all scores are equal: these run on a set scored 0 throughout.
            steps.append(["ZADD", "{r}lex", "0", member()])
            steps.append(rng.choice([["ZRANGEBYLEX", "{r}lex", lex(), lex()], ["ZREVRANGEBYLEX", "{r}lex", lex(), lex()],
                                     ["ZLEXCOUNT", "{r}lex", lex(), lex()], ["ZREMRANGEBYLEX", "{r}lex", lex(), lex()],
                                     ["ZRANGE", "{r}lex", lex(), lex(), "BYLEX", "REV", "LIMIT", "1", "3"]]))
        elif op == 10:
            steps.append(rng.choice([["ZREMRANGEBYRANK", k, str(rng.randrange(-5, 5)), str(rng.randrange(-5, 5))],
                                     ["ZREMRANGEBYSCORE", k, bound(), bound()]]))
        elif op == 11:
            steps.append(rng.choice([["ZPOPMIN", k], ["ZPOPMAX", k, str(rng.randrange(0, 4))],
                                     ["ZMPOP", "2", k, k2, rng.choice(["MIN", "MAX"]), "COUNT", str(rng.randrange(1, 4))]]))
        elif op == 12:
            srcs = rng.sample(keys + ["{r}s", "{r}none"], rng.randrange(1, 4))
            opts = rng.choice([[], ["AGGREGATE", rng.choice(["MIN", "MAX", "SUM"])],
                               ["WEIGHTS", *[rng.choice(["1", "2", "-1", "0.5"]) for _ in srcs]]])
            cmd = rng.choice(["ZUNION", "ZINTER"])
            steps.append([cmd, str(len(srcs)), *srcs, *opts, "WITHSCORES"])
            steps.append(["ZDIFF", str(len(srcs)), *srcs, "WITHSCORES"])
            steps.append(["ZINTERCARD", str(len(srcs)), *srcs, "LIMIT", str(rng.randrange(3))])
        elif op == 13:
            srcs = rng.sample(keys + ["{r}s"], rng.randrange(1, 3))
            steps.append([rng.choice(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), rng.choice(keys), str(len(srcs)), *srcs])
        elif op == 14:
            steps.append(["ZRANGESTORE", k2, k, str(rng.randrange(-3, 3)), str(rng.randrange(-3, 5))])
        elif op == 15:
            steps.append(["SADD", "{r}s", member()])
        elif op == 16:
            steps.append(["OBJECT", "ENCODING", k])
            # A count past the size answers the whole set (deterministic); a large COUNT scans it in one call.
            steps.append(["ZRANDMEMBER", k, "1000", "WITHSCORES"])
            steps.append(AnyOrder("ZSCAN", k, "0", "COUNT", "1000", pairs=True))
        else:
            steps.append(["ZRANGE", k, "0", "-1", "WITHSCORES"])
    return steps


@pytest.mark.parametrize("entries, value", [("128", "64"), ("4", "64"), ("2", "3")])
def test_random_sorted_set_operations(pair, entries, value):
    """Random operations compared reply by reply, under the default thresholds and small ones
    (`zset-max-listpack-entries`, `zset-max-listpack-value` set on both servers), so sets are
    created, converted and scored in both encodings."""
    theirs, ours = pair
    for client in (theirs, ours):
        reply(client, "CONFIG", "SET", "zset-max-listpack-entries", entries)
        reply(client, "CONFIG", "SET", "zset-max-listpack-value", value)
    try:
        steps = random_steps(random.Random(int(entries) + int(value)), 2500)
        encodings = set()
        for start in range(0, len(steps), 250):
            assert_same(theirs, ours, steps[start:start + 250])
            encodings |= {reply(ours, "OBJECT", "ENCODING", k) for k in ("{r}z1", "{r}z2", "{r}z3")}
        # Both encodings really are exercised along the way.
        assert {b"skiplist", b"listpack"} <= encodings, encodings
    finally:
        for client in (theirs, ours):
            reply(client, "CONFIG", "SET", "zset-max-listpack-entries", "128")
            reply(client, "CONFIG", "SET", "zset-max-listpack-value", "64")


def full_zscan(client, key, *options):
    cursor, items = b"0", []
    while True:
        cursor, batch = reply(client, "ZSCAN", key, cursor, *options)
        items += list(zip(batch[::2], batch[1::2]))
        if cursor == b"0":
            return sorted(items)


def test_big_sorted_set(pair):
    """A skiplist-encoded set of 1,000 members: ranges, ranks, a whole ZSCAN (any order) and
    ZRANDMEMBER's picks."""
    theirs, ours = pair
    rng = random.Random(5)
    args = [x for i in range(1000) for x in (str(rng.choice([rng.randrange(100), rng.random() * 50])), f"m{i}")]
    steps = [["ZADD", "big", *args[j:j + 200]] for j in range(0, len(args), 200)]
    steps += [["OBJECT", "ENCODING", "big"], ["ZCARD", "big"], ["ZRANGE", "big", "100", "120", "WITHSCORES"],
              ["ZRANGE", "big", "(10", "20", "BYSCORE", "LIMIT", "5", "10"], ["ZRANK", "big", "m500"],
              ["ZREVRANK", "big", "m999"], ["ZCOUNT", "big", "10", "(60"], ["ZREMRANGEBYRANK", "big", "0", "99"],
              ["ZPOPMAX", "big", "3"], ["ZRANGE", "big", "-5", "-1", "WITHSCORES"], ["ZCARD", "big"]]
    assert_same(theirs, ours, steps)
    assert full_zscan(ours, "big") == full_zscan(theirs, "big")
    assert full_zscan(ours, "big", "MATCH", "m1*", "COUNT", "7") == full_zscan(theirs, "big", "MATCH", "m1*", "COUNT", "7")
    members = set(reply(ours, "ZRANGE", "big", "0", "-1"))
    for count in (5, -20, 2000):
        picks = reply(ours, "ZRANDMEMBER", "big", count)
        assert len(picks) == min(abs(count), len(members)) and set(picks) <= members
        if count > 0:
            assert len(set(picks)) == len(picks)


def test_zrandmember_shapes(pair, request):
    theirs, ours = pair
    resp3 = "resp3" in request.node.callspec.id
    scores = {f"m{i}".encode(): float(i) / 2 for i in range(20)}
    for client in (theirs, ours):
        reply(client, "ZADD", "z", *[x for m, s in scores.items() for x in (s, m)])
        for count in (1, 5, 20, 25, -1, -7, -50):
            picks = reply(client, "ZRANDMEMBER", "z", count)
            assert len(picks) == (min(count, 20) if count > 0 else -count) and set(picks) <= scores.keys()
            if count > 0:
                assert len(set(picks)) == len(picks)
            with_scores = reply(client, "ZRANDMEMBER", "z", count, "WITHSCORES")
            pairs = with_scores if resp3 else [with_scores[i:i + 2] for i in range(0, len(with_scores), 2)]
            assert len(pairs) == (min(count, 20) if count > 0 else -count)
            assert all(isinstance(p, list) and len(p) == 2 for p in pairs)
            assert all(float(s) == scores[m] for m, s in pairs)
            assert all(isinstance(s, float) == resp3 for _, s in pairs)
        assert reply(client, "ZRANDMEMBER", "z") in scores


@pytest.mark.parametrize("protocol", [2, 3])
def test_exact_reply_bytes(strata, redis_port, protocol):  # noqa: F811
    commands = [
        ("FLUSHALL",), ("ZADD", "z", "1", "a", "1.5", "b", "0.1", "c", "1e300", "d", "-inf", "e", "+inf", "f"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("ZSCORE", "z", "c"), ("ZSCORE", "z", "e"), ("ZSCORE", "z", "nope"),
        ("ZMSCORE", "z", "a", "nope"), ("ZINCRBY", "z", "1", "a"), ("ZADD", "z", "INCR", "XX", "1", "nope"),
        ("ZRANK", "z", "nope"), ("ZPOPMIN", "z"), ("ZPOPMIN", "z", "1"), ("ZPOPMAX", "z", "2"), ("ZPOPMIN", "nope"),
        ("ZPOPMIN", "nope", "1"), ("ZMPOP", "1", "z", "MIN"), ("ZMPOP", "1", "nope", "MIN"),
        ("BZPOPMIN", "z", "0"), ("BZPOPMIN", "nope", "0.01"), ("BZMPOP", "0.01", "1", "nope", "MIN"),
        ("ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"), ("ZUNION", "1", "z", "WITHSCORES"),
        ("ZRANDMEMBER", "nope"), ("ZRANDMEMBER", "nope", "2"), ("ZSCAN", "z", "0"), ("ZRANGE", "nope", "0", "-1"),
        ("PING",),
    ]
    payload = b"".join(resp(*command) for command in commands)
    assert raw_replies(strata.port, payload, protocol) == raw_replies(redis_port, payload, protocol)


# ---------------------------------------------------------------------------------------------
# Blocking pops.


def blocked_call(client, *command):
    """Runs `command` on a thread; returns (thread, result list) so the caller can write meanwhile."""
    result = []
    thread = threading.Thread(target=lambda: result.append(reply(client, *command)))
    thread.start()
    return thread, result


def test_bzpop_times_out_and_is_served(pair):
    theirs, ours = pair
    for client in (theirs, ours):
        started = time.monotonic()
        assert reply(client, "BZPOPMIN", "q", "0.1") is None
        assert reply(client, "BZMPOP", "0.1", "2", "q", "q2", "MAX") is None
        assert 0.15 <= time.monotonic() - started < 2
    steps = [["ZADD", "q", "1", "a", "2", "b"], ["BZPOPMIN", "q", "1"], ["BZPOPMAX", "q", "1"], ["EXISTS", "q"]]
    assert_same(theirs, ours, steps)


@pytest.mark.parametrize("command", [["BZPOPMIN", "{w}q", "5"], ["BZPOPMAX", "{w}other", "{w}q", "0"],
                                     ["BZMPOP", "5", "2", "{w}other", "{w}q", "MIN", "COUNT", "2"]])
def test_blocked_pop_is_served_by_a_write(pair, command):
    """A client blocked on an empty key is woken by ZADD from another connection; a second
    blocked client takes what the first left, and a ZADD to an unrelated key wakes nobody."""
    from test_commands import raw_client
    theirs, ours = pair
    outcome = {}
    for name, client in (("redis", theirs), ("strata", ours)):
        port = client.connection_pool.connection_kwargs["port"]
        protocol = client.connection_pool.connection_kwargs.get("protocol", 2)
        waiter = raw_client(port, protocol)
        thread, result = blocked_call(waiter, *command)
        time.sleep(0.2)
        reply(client, "ZADD", "{w}unrelated", "1", "x")
        time.sleep(0.1)
        assert result == [] and thread.is_alive()
        reply(client, "ZADD", "{w}q", "3", "c", "1", "a", "2", "b")
        thread.join(5)
        assert not thread.is_alive()
        outcome[name] = (result[0], reply(client, "ZRANGE", "{w}q", "0", "-1", "WITHSCORES"))
        waiter.close()
        reply(client, "FLUSHALL")
    assert outcome["strata"] == outcome["redis"]


def test_a_blocked_pop_passes_over_a_key_that_changed_type(pair):
    """As Redis 7.0: WRONGTYPE answers at once, but a client already blocked is not answered
    when its key becomes another type; it is served once the key is a sorted set again."""
    from test_commands import raw_client
    theirs, ours = pair
    outcome = {}
    for name, client in (("redis", theirs), ("strata", ours)):
        kwargs = client.connection_pool.connection_kwargs
        waiter = raw_client(kwargs["port"], kwargs.get("protocol", 2))
        thread, result = blocked_call(waiter, "BZMPOP", "5", "2", "{t}a", "{t}b", "MAX")
        time.sleep(0.2)
        reply(client, "SET", "{t}a", "string now")
        time.sleep(0.2)
        still_blocked = thread.is_alive()
        reply(client, "ZADD", "{t}b", "1", "x")
        thread.join(5)
        outcome[name] = (still_blocked, result, reply(client, "BZPOPMIN", "{t}a", "{t}b", "0"))
        waiter.close()
        reply(client, "FLUSHALL")
    assert outcome["strata"] == outcome["redis"]
    assert outcome["strata"][0] is True


def test_zrank_withscore_as_redis_7_2(strata):
    """7.2's WITHSCORE (7.0 has none, so this is not compared): [rank, score], a null array for
    a missing member or key, its syntax and arity errors."""
    from test_commands import raw_client
    for protocol in (2, 3):
        client = raw_client(strata.port, protocol)
        client.execute_command("FLUSHALL")
        reply(client, "ZADD", "z", "1", "a", "2.5", "b")
        score = 2.5 if protocol == 3 else b"2.5"
        assert reply(client, "ZRANK", "z", "b", "withscore") == [1, score]
        assert reply(client, "ZREVRANK", "z", "b", "WITHSCORE") == [0, score]
        assert reply(client, "ZRANK", "z", "nope", "WITHSCORE") is None
        assert reply(client, "ZRANK", "missing", "a", "WITHSCORE") is None
        assert reply(client, "ZRANK", "z", "a", "FOO") == "ERR syntax error"
        assert reply(client, "ZRANK", "z", "a", "WITHSCORE", "x") == "ERR wrong number of arguments for 'zrank' command"
        client.close()
    with socket.create_connection(("127.0.0.1", strata.port), timeout=10) as sock:
        payload = resp("ZRANK", "z", "nope", "WITHSCORE") + resp("ZRANK", "z", "nope") + resp("PING")
        assert exchange(sock, payload, until=b"+PONG\r\n") == b"*-1\r\n$-1\r\n+PONG\r\n"


def test_commands_in_a_cluster(make_node):
    """Every command works through any node; multi-key ones need their keys on one coordinator
    (hash tags), else CROSSSLOT; a blocking pop sent to another node is served by a write
    through a third."""
    from test_cluster import keys_with_different_coordinators, owners, start_cluster
    from test_commands import raw_client
    nodes = start_cluster(make_node)
    first = next(iter(nodes.values()))
    a, b = keys_with_different_coordinators(first)
    crossslot = "CROSSSLOT Keys in request don't hash to the same slot"
    for n, node in enumerate(nodes.values()):
        client = raw_client(node.port)
        z = f"{{t}}z{n}"
        assert reply(client, "ZADD", z, "1", "x", "2", "y", "3", "z") == 3
        assert reply(client, "ZINCRBY", z, "0.5", "x") == b"1.5"
        assert reply(client, "ZRANGE", z, "0", "-1", "WITHSCORES") == [b"x", b"1.5", b"y", b"2", b"z", b"3"]
        assert reply(client, "ZADD", "{t}other", "5", "y") in (0, 1)
        assert reply(client, "ZINTER", "2", z, "{t}other", "WITHSCORES") == [b"y", b"7"]
        assert reply(client, "ZINTERCARD", "2", z, "{t}other") == 1
        assert reply(client, "ZUNIONSTORE", "{t}dest", "2", z, "{t}other") == 3
        assert reply(client, "ZRANGESTORE", "{t}dest2", z, "0", "0") == 1
        assert reply(client, "ZMPOP", "2", "{t}none", z, "MAX") == [z.encode(), [[b"z", b"3"]]]
        assert reply(client, "BZMPOP", "0", "1", z, "MIN") == [z.encode(), [[b"x", b"1.5"]]]
        assert reply(client, "BZPOPMIN", z, "0") == [z.encode(), b"y", b"2"]
        assert reply(client, "ZADD", a, "1", "m") in (0, 1) and reply(client, "ZADD", b, "1", "m") in (0, 1)
        assert reply(client, "ZUNION", "2", a, b) == crossslot
        assert reply(client, "ZUNIONSTORE", a, "1", b) == crossslot
        assert reply(client, "ZRANGESTORE", a, b, "0", "-1") == crossslot
        assert reply(client, "ZINTERCARD", "2", a, b) == crossslot
        assert reply(client, "ZMPOP", "2", a, b, "MIN") == crossslot
        assert reply(client, "BZPOPMIN", a, b, "0") == crossslot
        assert reply(client, "ZSCORE", b, "m") == b"1"
        client.close()
    coordinator_of_q = owners(first, "{q}board")[0]
    others = [name for name in nodes if name != coordinator_of_q]
    waiter = raw_client(nodes[others[0]].port)
    thread, result = blocked_call(waiter, "BZMPOP", "10", "1", "{q}board", "MAX", "COUNT", "2")
    time.sleep(0.3)
    assert reply(raw_client(nodes[others[1]].port), "ZADD", "{q}board", "1", "low", "9", "high") == 2
    thread.join(15)
    assert result == [[b"{q}board", [[b"high", b"9"], [b"low", b"1"]]]]
    waiter.close()


# ---------------------------------------------------------------------------------------------
# Values only on the disk tier: the commands read and rewrite them there as in memory.


def test_values_on_the_disk_tier(make_node, redis_port):  # noqa: F811
    from test_commands import raw_client
    node = make_node("--memory", "1MiB", "--disk", "256MiB", name="small")
    theirs, ours = raw_client(redis_port), raw_client(node.port)
    theirs.execute_command("FLUSHALL")
    setup = [["ZADD", "{o}z", "1", "a", "2.5", "b", "-inf", "c"], ["ZADD", "{o}y", "3", "b", "4", "d"],
             ["ZADD", "{o}q", "1", "x"], ["ZADD", "{o}t", "1", "z"], ["EXPIRE", "{o}t", "1000"]]
    setup += [["MSET"] + [part for i in range(j, j + 100) for part in (f"filler:{i}", "x" * 1000)]
              for j in range(0, 3000, 100)]
    assert_same(theirs, ours, setup)
    keys = ["{o}z", "{o}y", "{o}q", "{o}t"]
    tiers = {key: dict(zip(*[iter(reply(ours, "STRATA.TIER", key))] * 2))[b"tier"] for key in keys}
    assert all(tier == b"disk" for tier in tiers.values()), f"not all on the disk tier: {tiers}"
    steps = [
        ["ZRANGE", "{o}z", "0", "-1", "WITHSCORES"], ["ZSCORE", "{o}z", "b"], ["ZINCRBY", "{o}z", "1", "a"],
        ["ZUNIONSTORE", "{o}d", "2", "{o}z", "{o}y"], ["ZRANGE", "{o}d", "0", "-1", "WITHSCORES"],
        ["BZPOPMIN", "{o}q", "0"], ["EXISTS", "{o}q"], ["ZADD", "{o}t", "2", "y"], ["TTL", "{o}t"],
        ["ZMPOP", "1", "{o}y", "MAX"], ["ZSCAN", "{o}z", "0"],
    ]
    assert_same(theirs, ours, steps)
    theirs.close()
    ours.close()
