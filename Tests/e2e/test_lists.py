"""Differential tests of Redis' list commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN,
LRANGE, LINDEX, LSET, LREM, LTRIM, LINSERT, LPOS, LMOVE, RPOPLPUSH, LMPOP, and the blocking
forms BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and BLMPOP.

Every script runs side by side on Strata and a real redis-server 7.0, in RESP2 and RESP3, and
every reply must match, error texts and RESP3 types included. Lists are ordered, so every reply
is compared as it is.
"""
import random
import socket
import threading
import time

import pytest

from test_commands import exchange, redis_port, reply, resp, strata  # noqa: F401 (module fixtures)
from test_commands import pair  # noqa: F401
from test_hashes_sets import assert_same

MAX = "9223372036854775807"
MIN = "-9223372036854775808"

LIST_COMMANDS_ON = [
    lambda k: ["LPUSH", k, "a"], lambda k: ["RPUSH", k, "a"], lambda k: ["LPUSHX", k, "a"],
    lambda k: ["RPUSHX", k, "a"], lambda k: ["LPOP", k], lambda k: ["RPOP", k], lambda k: ["LPOP", k, "2"],
    lambda k: ["RPOP", k, "0"], lambda k: ["LLEN", k], lambda k: ["LRANGE", k, "0", "-1"],
    lambda k: ["LINDEX", k, "0"], lambda k: ["LSET", k, "0", "x"], lambda k: ["LREM", k, "0", "a"],
    lambda k: ["LTRIM", k, "0", "1"], lambda k: ["LINSERT", k, "BEFORE", "a", "b"], lambda k: ["LPOS", k, "a"],
    lambda k: ["LPOS", k, "a", "COUNT", "0"], lambda k: ["LMOVE", k, "{x}dst", "LEFT", "RIGHT"],
    lambda k: ["RPOPLPUSH", k, "{x}dst"], lambda k: ["LMPOP", "1", k, "LEFT"],
    lambda k: ["BLPOP", k, "0.05"], lambda k: ["BRPOP", k, "0.05"], lambda k: ["BLMOVE", k, "{x}dst", "LEFT", "LEFT", "0.05"],
    lambda k: ["BRPOPLPUSH", k, "{x}dst", "0.05"], lambda k: ["BLMPOP", "0.05", "1", k, "RIGHT"],
]

SCRIPTS = {
    "push_and_pop": [
        ["LPUSH", "l", "a", "b", "c"], ["RPUSH", "l", "d", "e"], ["LRANGE", "l", "0", "-1"], ["LLEN", "l"],
        ["LPUSHX", "l", "z"], ["RPUSHX", "l", "y", "x"], ["LPUSHX", "none", "a"], ["RPUSHX", "none", "a"],
        ["EXISTS", "none"], ["LRANGE", "l", "0", "-1"], ["LPOP", "l"], ["RPOP", "l"], ["LPOP", "l", "2"],
        ["RPOP", "l", "2"], ["LPOP", "l", "0"], ["RPOP", "l", "0"], ["LRANGE", "l", "0", "-1"],
        ["LPOP", "l", "100"], ["EXISTS", "l"], ["LPOP", "l"], ["RPOP", "l"], ["LPOP", "l", "2"], ["RPOP", "l", "0"],
        ["LPOP", "l", "-1"], ["LPOP", "l", "x"], ["LPOP", "l", "1.5"], ["RPOP", "l", MIN], ["LPOP", "l", "1", "2"],
        ["RPUSH", "b", b"\x00\xff\r\n", "", b"\x80"], ["LRANGE", "b", "0", "-1"], ["LPOP", "b", MAX], ["LLEN", "b"],
        ["RPUSH", "n", "1", "-2", MAX, MIN, "3.5"], ["LRANGE", "n", "0", "-1"], ["RPOP", "n", "3"],
        ["RPUSH", "t", "a", "b"], ["EXPIRE", "t", "100"], ["RPUSH", "t", "c"], ["TTL", "t"], ["LPOP", "t"], ["TTL", "t"],
        ["LPUSH", "big", "x" * 5000], ["LINDEX", "big", "0"],
    ],
    "read_by_index": [
        ["RPUSH", "l", *"abcdefghij"], ["LRANGE", "l", "0", "0"], ["LRANGE", "l", "-3", "-1"], ["LRANGE", "l", "5", "2"],
        ["LRANGE", "l", "-100", "100"], ["LRANGE", "l", "10", "20"], ["LRANGE", "l", MIN, MAX], ["LRANGE", "l", "2", "-3"],
        ["LRANGE", "l", "x", "1"], ["LRANGE", "l", "0", "1.0"], ["LRANGE", "none", "0", "-1"],
        ["LINDEX", "l", "0"], ["LINDEX", "l", "-1"], ["LINDEX", "l", "9"], ["LINDEX", "l", "10"], ["LINDEX", "l", "-11"],
        ["LINDEX", "l", MIN], ["LINDEX", "l", "x"], ["LINDEX", "none", "0"], ["LLEN", "none"],
    ],
    "lset_lrem_ltrim": [
        ["RPUSH", "l", "a", "b", "a", "c", "a", "b"], ["LSET", "l", "0", "A"], ["LSET", "l", "-1", "B"],
        ["LSET", "l", "6", "x"], ["LSET", "l", "-7", "x"], ["LSET", "l", "x", "y"], ["LSET", "none", "0", "x"],
        ["LSET", "none", "x", "y"], ["LRANGE", "l", "0", "-1"], ["LREM", "l", "1", "a"], ["LREM", "l", "-1", "b"],
        ["LRANGE", "l", "0", "-1"], ["LREM", "l", "0", "a"], ["LREM", "l", "0", "nope"], ["LREM", "none", "0", "a"],
        ["LREM", "l", "x", "a"], ["LRANGE", "l", "0", "-1"], ["RPUSH", "r", *"aaaaaxaaaa"], ["LREM", "r", "-3", "a"],
        ["LRANGE", "r", "0", "-1"], ["LREM", "r", MIN, "a"], ["LREM", "r", "0", "x"], ["EXISTS", "r"],
        ["RPUSH", "t", *"0123456789"], ["LTRIM", "t", "2", "-3"], ["LRANGE", "t", "0", "-1"], ["LTRIM", "t", "-2", "100"],
        ["LRANGE", "t", "0", "-1"], ["LTRIM", "t", "5", "1"], ["EXISTS", "t"], ["LTRIM", "none", "0", "1"],
        ["LTRIM", "t", "x", "1"], ["RPUSH", "t", "a"], ["LTRIM", "t", MIN, MAX], ["LRANGE", "t", "0", "-1"],
        ["LSET", "t", "0", "only"], ["LINDEX", "t", "0"],
    ],
    "linsert": [
        ["RPUSH", "l", "a", "b", "c", "b"], ["LINSERT", "l", "BEFORE", "b", "x"], ["LINSERT", "l", "after", "b", "y"],
        ["LRANGE", "l", "0", "-1"], ["LINSERT", "l", "BEFORE", "nope", "z"], ["LINSERT", "none", "BEFORE", "a", "z"],
        ["EXISTS", "none"], ["LINSERT", "l", "MIDDLE", "a", "z"], ["LINSERT", "none", "MIDDLE", "a", "z"],
        ["LINSERT", "l", "AFTER", "b", ""], ["LINSERT", "l", "BEFORE", "a", "first"], ["LINSERT", "l", "AFTER", "c", "last"],
        ["LRANGE", "l", "0", "-1"],
    ],
    "lpos": [
        ["RPUSH", "l", "a", "b", "c", "a", "b", "a", "c"], ["LPOS", "l", "a"], ["LPOS", "l", "c"], ["LPOS", "l", "z"],
        ["LPOS", "l", "a", "RANK", "2"], ["LPOS", "l", "a", "RANK", "-1"], ["LPOS", "l", "a", "RANK", "-3"],
        ["LPOS", "l", "a", "RANK", "4"], ["LPOS", "l", "a", "RANK", "0"], ["LPOS", "l", "a", "RANK", "x"],
        ["LPOS", "l", "a", "RANK", MAX], ["LPOS", "l", "a", "RANK", "-" + MAX], ["LPOS", "l", "a", "COUNT", "0"],
        ["LPOS", "l", "a", "COUNT", "2"], ["LPOS", "l", "a", "COUNT", "2", "RANK", "-1"], ["LPOS", "l", "z", "COUNT", "2"],
        ["LPOS", "l", "a", "COUNT", "-1"], ["LPOS", "l", "a", "COUNT", "x"], ["LPOS", "l", "a", "MAXLEN", "3"],
        ["LPOS", "l", "a", "MAXLEN", "3", "COUNT", "0"], ["LPOS", "l", "a", "MAXLEN", "3", "RANK", "-1", "COUNT", "0"],
        ["LPOS", "l", "a", "MAXLEN", "-1"], ["LPOS", "l", "a", "MAXLEN", "x"], ["LPOS", "l", "a", "RANK"],
        ["LPOS", "l", "a", "FOO", "1"], ["LPOS", "l", "a", "COUNT", "1", "COUNT", "0"], ["LPOS", "none", "a"],
        ["LPOS", "none", "a", "COUNT", "1"], ["LPOS", "none", "a", "RANK", "0"], ["LPOS", "l", "a", "RANK", "2", "RANK", "1"],
    ],
    "lmove": [
        ["RPUSH", "{x}s", "1", "2", "3"], ["LMOVE", "{x}s", "{x}d", "LEFT", "RIGHT"], ["LMOVE", "{x}s", "{x}d", "right", "left"],
        ["LRANGE", "{x}s", "0", "-1"], ["LRANGE", "{x}d", "0", "-1"], ["LMOVE", "{x}d", "{x}d", "LEFT", "RIGHT"],
        ["LRANGE", "{x}d", "0", "-1"], ["LMOVE", "{x}d", "{x}d", "RIGHT", "LEFT"], ["LRANGE", "{x}d", "0", "-1"],
        ["LMOVE", "{x}none", "{x}d", "LEFT", "LEFT"], ["LMOVE", "{x}s", "{x}d", "UP", "LEFT"],
        ["LMOVE", "{x}s", "{x}d", "LEFT", "DOWN"], ["RPOPLPUSH", "{x}s", "{x}d"], ["EXISTS", "{x}s"],
        ["RPOPLPUSH", "{x}s", "{x}d"], ["LRANGE", "{x}d", "0", "-1"], ["RPUSH", "{x}one", "x"],
        ["LMOVE", "{x}one", "{x}one", "LEFT", "LEFT"], ["LRANGE", "{x}one", "0", "-1"], ["RPOPLPUSH", "{x}one", "{x}one"],
        ["SET", "{x}str", "v"], ["LMOVE", "{x}d", "{x}str", "LEFT", "LEFT"], ["LMOVE", "{x}none", "{x}str", "LEFT", "LEFT"],
        ["LMOVE", "{x}str", "{x}d", "LEFT", "LEFT"], ["RPOPLPUSH", "{x}d", "{x}str"], ["LRANGE", "{x}d", "0", "-1"],
    ],
    "lmpop": [
        ["RPUSH", "{x}b", "1", "2", "3"], ["RPUSH", "{x}c", "x"], ["LMPOP", "2", "{x}a", "{x}b", "LEFT"],
        ["LMPOP", "3", "{x}a", "{x}c", "{x}b", "RIGHT", "COUNT", "5"], ["LMPOP", "2", "{x}a", "{x}b", "RIGHT", "count", "10"],
        ["LMPOP", "2", "{x}a", "{x}b", "LEFT"], ["EXISTS", "{x}b"], ["LMPOP", "0", "{x}a", "LEFT"], ["LMPOP", "-1", "{x}a", "LEFT"],
        ["LMPOP", "x", "{x}a", "LEFT"], ["LMPOP", "2", "{x}a", "LEFT"], ["LMPOP", MAX, "{x}a", "LEFT"],
        ["LMPOP", "1", "{x}a", "MIDDLE"], ["LMPOP", "1", "{x}a", "LEFT", "COUNT", "0"], ["LMPOP", "1", "{x}a", "LEFT", "COUNT", "-1"],
        ["LMPOP", "1", "{x}a", "LEFT", "COUNT", "x"], ["LMPOP", "1", "{x}a", "LEFT", "COUNT"],
        ["LMPOP", "1", "{x}a", "LEFT", "COUNT", "1", "COUNT", "2"], ["LMPOP", "1", "{x}a", "LEFT", "FOO"],
        ["SET", "{x}s", "v"], ["RPUSH", "{x}l", "e"], ["LMPOP", "2", "{x}s", "{x}l", "LEFT"],
        ["LMPOP", "2", "{x}l", "{x}s", "LEFT"], ["LMPOP", "2", "{x}l", "{x}s", "LEFT"],
    ],
    "blocking_without_waiting": [
        ["RPUSH", "{x}a", "1", "2", "3"], ["RPUSH", "{x}b", "x"], ["BLPOP", "{x}none", "{x}a", "0"], ["BRPOP", "{x}a", "{x}b", "0"],
        ["BLMOVE", "{x}a", "{x}b", "LEFT", "LEFT", "0"], ["LRANGE", "{x}b", "0", "-1"], ["BRPOPLPUSH", "{x}b", "{x}a", "0"],
        ["LRANGE", "{x}a", "0", "-1"], ["BLMPOP", "0", "2", "{x}none", "{x}b", "LEFT", "COUNT", "9"], ["EXISTS", "{x}b"],
        ["BLPOP", "{x}none", "0.05"], ["BRPOP", "{x}none", "{x}none2", "0.05"], ["BLMOVE", "{x}none", "{x}a", "LEFT", "LEFT", "0.05"],
        ["BRPOPLPUSH", "{x}none", "{x}a", "0.05"], ["BLMPOP", "0.05", "1", "{x}none", "LEFT"],
        # Timeouts and their errors, as Redis reads them.
        ["RPUSH", "{x}a", *"abcdefgh"], ["BLPOP", "{x}a", "x"], ["BLPOP", "{x}a", "-1"], ["BLPOP", "{x}a", "nan"], ["BLPOP", "{x}a", "inf"],
        ["BLPOP", "{x}a", "1e400"], ["BLPOP", "{x}a", "-0.0001"], ["BLPOP", "{x}a", "1e-400"], ["BLPOP", "{x}a", "0.1e1"],
        ["BLPOP", "{x}a", ""], ["BRPOP", "{x}a", "1 "], ["BLMOVE", "{x}a", "{x}b", "LEFT", "LEFT", "x"],
        ["BLMOVE", "{x}a", "{x}b", "UP", "LEFT", "x"], ["BRPOPLPUSH", "{x}a", "{x}b", "-1"],
        ["BLMPOP", "x", "1", "{x}a", "LEFT"], ["BLMPOP", "-1", "1", "{x}a", "LEFT"], ["BLMPOP", "0.1", "0", "{x}a", "LEFT"],
        ["BLMPOP", "-1", "0", "{x}a", "LEFT"], ["BLMPOP", "x", "1", "{x}a", "MIDDLE"], ["BLMPOP", "x", "1", "{x}a", "LEFT", "COUNT", "0"],
        ["BLMPOP", "0", "1", "{x}a", "RIGHT", "COUNT", "2"], ["LRANGE", "{x}a", "0", "-1"],
    ],
    # Past 64 KiB a command works on a disk thread; past 8 KiB the list has many nodes.
    "big_list": [
        ["RPUSH", "big", *[f"{i:04d}" + "x" * 96 for i in range(1500)]], ["LLEN", "big"], ["LINDEX", "big", "777"],
        ["LRANGE", "big", "1000", "1003"], ["LPOS", "big", "0500" + "x" * 96], ["LSET", "big", "750", "mid"],
        ["LINSERT", "big", "BEFORE", "mid", "before-mid"], ["LRANGE", "big", "749", "752"], ["LREM", "big", "0", "mid"],
        ["LTRIM", "big", "100", "-100"], ["LLEN", "big"], ["LPOP", "big", "3"], ["RPOP", "big", "3"],
        ["LMPOP", "1", "big", "LEFT", "COUNT", "2"], ["BLPOP", "big", "0"], ["LRANGE", "big", "-3", "-1"],
        ["LMOVE", "big", "big", "LEFT", "RIGHT"], ["LINDEX", "big", "-1"], ["LPOS", "big", "before-mid", "RANK", "-1"],
    ],
    "arity": [
        ["LPUSH", "l"], ["RPUSH"], ["LPUSHX", "l"], ["RPUSHX", "l"], ["LPOP"], ["RPOP"], ["RPOP", "l", "1", "2"], ["LLEN"],
        ["LLEN", "l", "x"], ["LRANGE", "l", "0"], ["LRANGE", "l", "0", "1", "2"], ["LINDEX", "l"], ["LSET", "l", "0"],
        ["LREM", "l", "0"], ["LTRIM", "l", "0"], ["LINSERT", "l", "BEFORE", "a"], ["LPOS", "l"], ["LMOVE", "a", "b", "LEFT"],
        ["RPOPLPUSH", "a"], ["LMPOP", "1", "a"], ["BLPOP", "a"], ["BRPOP"], ["BLMOVE", "a", "b", "LEFT", "LEFT"],
        ["BRPOPLPUSH", "a", "b"], ["BLMPOP", "0", "1", "a"], ["lpush", "l"], ["LpUsH", "l"], ["EXISTS", "l"],
    ],
    "wrongtype": [
        ["SET", "str", "x"], ["HSET", "h", "f", "v"], ["SADD", "{x}set", "m"], ["RPUSH", "{x}dst", "d"],
        *[make("str") for make in LIST_COMMANDS_ON], *[make("h") for make in LIST_COMMANDS_ON],
        *[make("{x}set") for make in LIST_COMMANDS_ON],
        # Arguments are checked before the key's type where Redis does so.
        ["LPOP", "str", "-1"], ["LRANGE", "str", "x", "0"], ["LINDEX", "str", "x"], ["LSET", "str", "x", "v"],
        ["LINSERT", "str", "MIDDLE", "a", "b"], ["LPOS", "str", "a", "RANK", "0"], ["LMPOP", "1", "str", "UP"],
        ["BLPOP", "str", "x"], ["GET", "str"], ["RPUSH", "l", "v"], ["SMEMBERS", "{x}set"], ["LRANGE", "{x}dst", "0", "-1"],
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(pair, name):
    theirs, ours = pair
    assert_same(theirs, ours, SCRIPTS[name])


COMMANDS = ["lpush", "rpush", "lpushx", "rpushx", "lpop", "rpop", "llen", "lrange", "lindex", "lset", "lrem", "ltrim",
            "linsert", "lpos", "lmove", "rpoplpush", "blpop", "brpop", "blmove", "brpoplpush"]


def test_command_info(pair):
    """COMMAND INFO's arity and key positions (LMPOP's and BLMPOP's key count is an argument:
    only their arity is compared)."""
    theirs, ours = pair
    expected = {row[0]: row[1:2] + row[3:6] for row in reply(theirs, "COMMAND", "INFO", *COMMANDS)}
    actual = {row[0]: row[1:2] + row[3:6] for row in reply(ours, "COMMAND", "INFO", *COMMANDS) if row}
    assert actual == expected
    for name in ("lmpop", "blmpop"):
        assert reply(ours, "COMMAND", "INFO", name)[0][1] == reply(theirs, "COMMAND", "INFO", name)[0][1]


def test_inside_multi_and_scripts(pair):
    """In MULTI the blocking forms answer at once (BLMOVE a null bulk, the others a null
    array); from a script all but BLMPOP are refused, the other list commands run."""
    theirs, ours = pair
    for client in pair:
        client.execute_command("RPUSH", "{x}q", "a", "b")
    results = []
    for client in pair:
        pipe = client.pipeline(transaction=True)
        for command in (["BLPOP", "{x}none", "0"], ["BLMOVE", "{x}none", "{x}q", "LEFT", "LEFT", "0"],
                        ["BRPOPLPUSH", "{x}none", "{x}q", "0"], ["BLMPOP", "0", "1", "{x}none", "LEFT"],
                        ["BRPOP", "{x}q", "0"], ["LMOVE", "{x}q", "{x}d", "LEFT", "RIGHT"], ["LPUSH", "{x}q", "z"],
                        ["LRANGE", "{x}q", "0", "-1"]):
            pipe.execute_command(*command)
        results.append(pipe.execute())
    assert results[0] == results[1]
    assert results[1][0] is None and results[1][-1] == [b"z"]

    def script(body, *keys):
        return ["EVAL", body, str(len(keys)), *keys]
    assert_same(theirs, ours, [
        script("redis.call('rpush', KEYS[1], 'x', 'y'); return redis.call('lrange', KEYS[1], 0, -1)", "{x}s"),
        script("return redis.call('lmpop', 1, KEYS[1], 'RIGHT', 'COUNT', 5)", "{x}s"),
        script("return redis.pcall('lpos', KEYS[1], 'a', 'RANK', 0)", "{x}s"),
        ["EVAL", "return redis.pcall('blpop', 'k', 0)", "0"],
    ])
    # Redis appends the script's name to a refused command's error: compared up to it.
    for command in (["BLPOP", "k", "0"], ["BRPOP", "k", "0"], ["BLMOVE", "a", "b", "LEFT", "LEFT", "0"],
                    ["BRPOPLPUSH", "a", "b", "0"]):
        body = "return redis.call(" + ", ".join(f"'{c}'" for c in command) + ")"
        expected, actual = reply(theirs, "EVAL", body, "0"), reply(ours, "EVAL", body, "0")
        assert expected.startswith("ERR This Redis command is not allowed from script"), (expected, actual)
        assert actual.startswith("ERR This Redis command is not allowed from script"), actual


def random_steps(rng, count):
    steps = []
    keys = ["{k}a", "{k}b", "{k}c"]

    def element():
        return rng.choice([f"e{rng.randrange(30)}", str(rng.randrange(-5, 50)), "x" * rng.choice([1, 60, 300])])

    for _ in range(count):
        k = rng.choice(keys)
        op = rng.randrange(16)
        if op in (0, 1, 2):
            steps.append([rng.choice(["LPUSH", "RPUSH"]), k] + [element() for _ in range(rng.randrange(1, 8))])
        elif op == 3:
            steps.append([rng.choice(["LPUSHX", "RPUSHX"]), k, element()])
        elif op == 4:
            steps.append([rng.choice(["LPOP", "RPOP"]), k] + ([str(rng.randrange(0, 6))] if rng.random() < 0.5 else []))
        elif op == 5:
            steps.append(["LRANGE", k, str(rng.randrange(-20, 20)), str(rng.randrange(-20, 40))])
        elif op == 6:
            steps.append(["LINDEX", k, str(rng.randrange(-40, 40))])
        elif op == 7:
            steps.append(["LSET", k, str(rng.randrange(-40, 40)), element()])
        elif op == 8:
            steps.append(["LREM", k, str(rng.randrange(-3, 4)), element()])
        elif op == 9:
            steps.append(["LTRIM", k, str(rng.randrange(-5, 5)), str(rng.randrange(-3, 60))])
        elif op == 10:
            steps.append(["LINSERT", k, rng.choice(["BEFORE", "AFTER"]), element(), element()])
        elif op == 11:
            options = []
            if rng.random() < 0.5:
                options += ["RANK", str(rng.choice([1, 2, -1, -2, 3]))]
            if rng.random() < 0.5:
                options += ["COUNT", str(rng.randrange(0, 4))]
            if rng.random() < 0.3:
                options += ["MAXLEN", str(rng.randrange(0, 30))]
            steps.append(["LPOS", k, element(), *options])
        elif op == 12:
            steps.append(["LMOVE", k, rng.choice(keys), rng.choice(["LEFT", "RIGHT"]), rng.choice(["LEFT", "RIGHT"])])
        elif op == 13:
            chosen = rng.sample(keys + ["{k}none"], rng.randrange(1, 4))
            steps.append(["LMPOP", str(len(chosen)), *chosen, rng.choice(["LEFT", "RIGHT"]), "COUNT", str(rng.randrange(1, 5))])
        elif op == 14:
            steps.append(["LLEN", k])
        else:
            steps.append(["LRANGE", k, "0", "-1"])
    return steps


@pytest.mark.parametrize("listpack_size", ["-2", "4", "1", "-1"])
def test_random_list_operations(pair, listpack_size):
    """Random writes and reads on a few lists, every reply compared, with the quicklist's nodes
    small (a few entries, or 4 KiB with long elements) so that nodes split and merge."""
    theirs, ours = pair
    for client in pair:
        client.execute_command("CONFIG", "SET", "list-max-listpack-size", listpack_size)
    try:
        rng = random.Random(f"lists-{listpack_size}")
        steps = random_steps(rng, 1500)
        steps += [["LRANGE", k, "0", "-1"] for k in ("{k}a", "{k}b", "{k}c")]
        assert_same(theirs, ours, steps)
        # The nodes did split: a list longer than a node is a quicklist (Redis 7.0 names every
        # list so, so this is checked on Strata alone).
        if listpack_size in ("1", "4"):
            lengths = {k: reply(ours, "LLEN", k) for k in ("{k}a", "{k}b", "{k}c")}
            assert max(lengths.values()) > 4, lengths
            for k, n in lengths.items():
                if n > int(listpack_size):
                    assert reply(ours, "OBJECT", "ENCODING", k) == b"quicklist", (k, n)
    finally:
        for client in pair:
            client.execute_command("CONFIG", "SET", "list-max-listpack-size", "-2")


def test_random_operations_with_compression(pair):
    theirs, ours = pair
    for client in pair:
        client.execute_command("CONFIG", "SET", "list-max-listpack-size", "3")
        client.execute_command("CONFIG", "SET", "list-compress-depth", "1")
    try:
        steps = random_steps(random.Random(5), 1000)
        steps += [["LRANGE", k, "0", "-1"] for k in ("{k}a", "{k}b", "{k}c")]
        assert_same(theirs, ours, steps)
    finally:
        for client in pair:
            client.execute_command("CONFIG", "SET", "list-max-listpack-size", "-2")
            client.execute_command("CONFIG", "SET", "list-compress-depth", "0")


def test_encodings(strata):
    client = strata.client()
    client.flushall()
    client.rpush("enc", *[str(i) for i in range(10)])
    assert client.object("encoding", "enc") == b"listpack"
    client.rpush("enc", *["x" * 100 for _ in range(200)])
    assert client.object("encoding", "enc") == b"quicklist"
    client.ltrim("enc", 0, 2)
    assert client.object("encoding", "enc") == b"listpack"
    assert client.type("enc") == b"list"


# ---------------------------------------------------------------------------------------------
# Exact reply bytes: nulls and null arrays.


def raw_replies(port, payload, protocol):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if protocol == 3:
            assert exchange(sock, resp("HELLO", "3"), until=b"*0\r\n").startswith(b"%7\r\n")
        return exchange(sock, payload, until=b"+PONG\r\n")


@pytest.mark.parametrize("protocol", [2, 3])
def test_exact_reply_bytes(strata, redis_port, protocol):  # noqa: F811
    commands = [
        ("FLUSHALL",), ("RPUSH", "l", "a", "b"), ("LPOP", "nope"), ("LPOP", "nope", "1"), ("LPOP", "nope", "0"),
        ("LPOP", "l", "0"), ("LINDEX", "l", "5"), ("LPOS", "l", "z"), ("LPOS", "l", "z", "COUNT", "0"),
        ("LMOVE", "nope", "l", "LEFT", "LEFT"), ("LMPOP", "1", "nope", "LEFT"), ("LMPOP", "1", "l", "LEFT"),
        ("BLPOP", "nope", "0.01"), ("BLMOVE", "nope", "l", "LEFT", "LEFT", "0.01"), ("BRPOPLPUSH", "nope", "l", "0.01"),
        ("BLMPOP", "0.01", "1", "nope", "LEFT"), ("BLPOP", "l", "0"), ("MULTI",), ("BLMOVE", "nope", "l", "LEFT", "LEFT", "0"),
        ("BLPOP", "nope", "0"), ("BLMPOP", "0", "1", "nope", "LEFT"), ("EXEC",), ("PING",),
    ]
    payload = b"".join(resp(*command) for command in commands)
    assert raw_replies(strata.port, payload, protocol) == raw_replies(redis_port, payload, protocol)


# ---------------------------------------------------------------------------------------------
# Blocking: waits, wakes and timeouts.


def blocked(client, *command):
    result = {}

    def run():
        try:
            answer = client.execute_command(*command)
            result["reply"] = list(answer) if isinstance(answer, tuple) else answer  # redis-py's BLPOP tuple
        except Exception as error:  # noqa: BLE001 - the test reads it
            result["error"] = error
    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def wait_blocked(client, count, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if client.info("clients").get("blocked_clients", 0) >= count:
            return True
        time.sleep(0.02)
    return False


def test_blocking_pops_wait_and_wake(strata):
    control = strata.client()
    control.flushall()
    started = time.time()
    assert strata.client().execute_command("BLPOP", "empty", 0.1) is None
    assert 0.09 <= time.time() - started < 2
    control.rpush("ready", "x")
    assert list(strata.client().execute_command("BLPOP", "empty", "ready", 0)) == [b"ready", b"x"]
    # An error is the reply at once, not after the timeout.
    control.set("str", "v")
    started = time.time()
    with pytest.raises(Exception, match="WRONGTYPE"):
        strata.client().execute_command("BLPOP", "str", 5)
    assert time.time() - started < 2

    t, r = blocked(strata.client(socket_timeout=15), "BRPOP", "q1", "q2", 10)
    assert wait_blocked(control, 1)
    control.rpush("q2", "a", "b")
    t.join(15)
    assert r == {"reply": [b"q2", b"b"]}
    assert control.lrange("q2", 0, -1) == [b"a"]

    t, r = blocked(strata.client(socket_timeout=15), "BLMOVE", "src", "dst", "RIGHT", "LEFT", 10)
    assert wait_blocked(control, 1)
    control.rpush("src", "1", "2")
    t.join(15)
    assert r == {"reply": b"2"}
    assert control.lrange("src", 0, -1) == [b"1"] and control.lrange("dst", 0, -1) == [b"2"]

    t, r = blocked(strata.client(socket_timeout=15), "BRPOPLPUSH", "src2", "dst", 10)
    assert wait_blocked(control, 1)
    control.lpush("src2", "z")
    t.join(15)
    assert r == {"reply": b"z"} and control.lrange("dst", 0, -1) == [b"z", b"2"]

    t, r = blocked(strata.client(socket_timeout=15), "BLMPOP", 10, 2, "m1", "m2", "LEFT", "COUNT", 2)
    assert wait_blocked(control, 1)
    control.rpush("m2", "a", "b", "c")
    t.join(15)
    assert r == {"reply": [b"m2", [b"a", b"b"]]}
    assert control.lrange("m2", 0, -1) == [b"c"]

    # A BLMOVE served by a push wakes a waiter on its destination.
    t1, r1 = blocked(strata.client(socket_timeout=15), "BLMOVE", "c1", "c2", "LEFT", "LEFT", 10)
    assert wait_blocked(control, 1)
    t2, r2 = blocked(strata.client(socket_timeout=15), "BLPOP", "c2", 10)
    assert wait_blocked(control, 2)
    control.rpush("c1", "hop")
    t1.join(15)
    t2.join(15)
    assert r1 == {"reply": b"hop"} and r2 == {"reply": [b"c2", b"hop"]}
    assert control.exists("c1", "c2") == 0
    assert control.info("clients")["blocked_clients"] == 0

    # Pushes inside a transaction or a script wake a waiter once they ran.
    t, r = blocked(strata.client(socket_timeout=15), "BRPOP", "txq", 10)
    assert wait_blocked(control, 1)
    pipe = control.pipeline(transaction=True)
    pipe.rpush("txq", "a").rpush("txq", "b")
    pipe.execute()
    t.join(15)
    assert r == {"reply": [b"txq", b"b"]}
    t, r = blocked(strata.client(socket_timeout=15), "BLMPOP", 10, 1, "evq", "RIGHT", "COUNT", 5)
    assert wait_blocked(control, 1)
    control.eval("redis.call('rpush', KEYS[1], 'p', 'q')", 1, "evq")
    t.join(15)
    assert r == {"reply": [b"evq", [b"q", b"p"]]}
    assert control.exists("txq", "evq") == 1 and control.lrange("txq", 0, -1) == [b"a"]

    # A timeout while blocked answers a null array (RESP2) for every form.
    for command in (["BLMOVE", "n1", "n2", "LEFT", "LEFT", 0.1], ["BLMPOP", 0.1, 1, "n1", "LEFT"]):
        assert strata.client().execute_command(*command) is None


def test_values_on_the_disk_tier(make_node, redis_port):  # noqa: F811
    from test_commands import raw_client
    node = make_node("--memory", "1MiB", "--disk", "256MiB", name="small")
    theirs, ours = raw_client(redis_port), raw_client(node.port)
    theirs.execute_command("FLUSHALL")
    setup = [["RPUSH", "{o}l", *[f"e{i}" for i in range(300)]], ["RPUSH", "{o}m", "a", "b", "c"],
             ["RPUSH", "{o}t", "z"], ["EXPIRE", "{o}t", "1000"]]
    setup += [["MSET"] + [part for i in range(j, j + 100) for part in (f"filler:{i}", "x" * 1000)]
              for j in range(0, 3000, 100)]
    assert_same(theirs, ours, setup)
    keys = ["{o}l", "{o}m", "{o}t"]
    tiers = {key: dict(zip(*[iter(reply(ours, "STRATA.TIER", key))] * 2))[b"tier"] for key in keys}
    assert all(tier == b"disk" for tier in tiers.values()), f"not all on the disk tier: {tiers}"
    steps = [
        ["LINDEX", "{o}l", "150"], ["LRANGE", "{o}l", "10", "20"], ["LPOS", "{o}l", "e42"], ["LLEN", "{o}m"],
        ["RPUSH", "{o}t", "y"], ["TTL", "{o}t"], ["LMOVE", "{o}m", "{o}l", "LEFT", "RIGHT"], ["LRANGE", "{o}l", "-2", "-1"],
        ["BLPOP", "{o}m", "0"], ["LMPOP", "1", "{o}m", "LEFT"], ["EXISTS", "{o}m"], ["LSET", "{o}l", "0", "first"],
        ["LINSERT", "{o}l", "AFTER", "first", "second"], ["LRANGE", "{o}l", "0", "2"], ["LREM", "{o}l", "0", "e5"],
        ["LTRIM", "{o}l", "0", "9"], ["LRANGE", "{o}l", "0", "-1"],
    ]
    assert_same(theirs, ours, steps)
    theirs.close()
    ours.close()


def test_commands_in_a_cluster(make_node):
    from test_cluster import keys_with_different_coordinators, start_cluster
    from test_commands import raw_client
    nodes = start_cluster(make_node)
    first = next(iter(nodes.values()))
    a, b = keys_with_different_coordinators(first)
    crossslot = "CROSSSLOT Keys in request don't hash to the same slot"
    for n, node in enumerate(nodes.values()):
        client = raw_client(node.port)
        lst = f"{{t}}l{n}"
        assert reply(client, "RPUSH", lst, "x", "y", "z") == 3
        assert reply(client, "LRANGE", lst, "0", "-1") == [b"x", b"y", b"z"]
        assert reply(client, "LMOVE", lst, "{t}dst", "LEFT", "RIGHT") == b"x"
        assert reply(client, "LMPOP", "2", "{t}none", lst, "RIGHT", "COUNT", "5") == [lst.encode(), [b"z", b"y"]]
        assert reply(client, "BLPOP", "{t}dst", "0") == [b"{t}dst", b"x"]
        assert reply(client, "RPUSH", a, "1") >= 1 and reply(client, "RPUSH", b, "1") >= 1
        assert reply(client, "LMOVE", a, b, "LEFT", "LEFT") == crossslot
        assert reply(client, "BLPOP", a, b, "0.1") == crossslot
        assert reply(client, "LMPOP", "2", a, b, "LEFT") == crossslot
        client.close()


def test_a_waiter_goes_on_waiting_when_its_key_gets_another_type(strata, redis_port):  # noqa: F811
    """After a write Redis serves a blocked client only from a list: a key turned into a string
    leaves it waiting (WRONGTYPE is only for the first try), and a push to its other key serves it."""
    import redis as redis_py

    def scenario(port):
        control = redis_py.Redis(port=port, socket_timeout=10)
        control.flushall()
        t, r = blocked(redis_py.Redis(port=port, socket_timeout=15), "BLPOP", "w1", "w2", 10)
        assert wait_blocked(control, 1)
        control.set("w1", "now a string")
        time.sleep(0.2)
        still = control.info("clients")["blocked_clients"]
        control.rpush("w2", "x")
        t.join(15)
        t2, r2 = blocked(redis_py.Redis(port=port, socket_timeout=15), "BLMOVE", "m1", "m2", "LEFT", "LEFT", 10)
        assert wait_blocked(control, 1)
        control.set("m1", "s")
        time.sleep(0.2)
        still2 = control.info("clients")["blocked_clients"]
        control.delete("m1")
        control.rpush("m1", "y")
        t2.join(15)
        return still, r, still2, r2, control.lrange("m2", 0, -1)

    expected = (1, {"reply": [b"w2", b"x"]}, 1, {"reply": b"y"}, [b"y"])
    assert scenario(redis_port) == expected
    assert scenario(strata.port) == expected
