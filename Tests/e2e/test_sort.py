"""SORT and SORT_RO side by side with redis-server 7.0 in RESP2 and RESP3: numeric and ALPHA
order, ties, BY patterns over strings and hash fields, BY nosort on lists and sorted sets, GET
(# and patterns, missing keys as nulls), LIMIT, DESC, STORE (a list; an empty result deletes
the destination), and the errors."""
import random

from test_commands import pair, redis_port, run_script, strata  # noqa: F401 (module fixtures)

SCRIPT = [
    ["RPUSH", "nums", "3", "1", "2", "10", "-5", "2.5", "1e3"],
    ["SORT", "nums"],
    ["SORT", "nums", "DESC"],
    ["SORT", "nums", "ALPHA"],
    ["SORT", "nums", "LIMIT", "1", "3"],
    ["SORT", "nums", "LIMIT", "-2", "2"],
    ["SORT", "nums", "LIMIT", "5", "-1"],
    ["SORT", "nums", "LIMIT", "100", "2"],
    ["SORT", "nums", "LIMIT", "x", "2"],
    ["SORT", "nums", "LIMIT", "1"],
    ["RPUSH", "words", "banana", "apple", "cherry", "apple"],
    ["SORT", "words"],
    ["SORT", "words", "ALPHA"],
    ["SORT", "words", "ALPHA", "DESC", "LIMIT", "0", "2"],
    ["MSET", "w_banana", "2", "w_apple", "3", "w_cherry", "1"],
    ["SORT", "words", "BY", "w_*"],
    ["SORT", "words", "BY", "w_*", "DESC", "GET", "#", "GET", "w_*"],
    ["SORT", "words", "BY", "nosort"],
    ["SORT", "words", "BY", "missing_*"],
    ["SORT", "words", "BY", "missing_*", "ALPHA"],
    ["HSET", "h_banana", "rank", "5", "name", "Banana"],
    ["HSET", "h_apple", "rank", "7", "name", "Apple"],
    ["SORT", "words", "BY", "h_*->rank", "GET", "h_*->name", "GET", "#", "GET", "h_*->nope", "GET", "x"],
    ["SORT", "words", "BY", "h_*->rank", "ALPHA"],
    ["ZADD", "z", "3", "c", "1", "a", "2", "b", "2", "bb"],
    ["SORT", "z", "BY", "nosort"],
    ["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "2"],
    ["SORT", "z", "ALPHA", "DESC"],
    ["SADD", "s", "5", "3", "9", "1"],
    ["SORT", "s"],
    ["SORT", "s", "BY", "nosort", "STORE", "sstore"],
    ["LRANGE", "sstore", "0", "-1"],
    ["SORT", "nums", "STORE", "dst"],
    ["LRANGE", "dst", "0", "-1"],
    ["TYPE", "dst"],
    ["SORT", "words", "BY", "h_*->rank", "GET", "h_*->name", "STORE", "dst"],
    ["LRANGE", "dst", "0", "-1"],
    ["SORT", "emptykey", "STORE", "dst"],
    ["EXISTS", "dst"],
    ["SORT", "emptykey"],
    ["SORT", "words"],
    ["SET", "str", "x"],
    ["SORT", "str"],
    ["HSET", "hash", "f", "v"],
    ["SORT", "hash"],
    ["SORT", "nums", "BOGUS"],
    ["SORT", "nums", "GET"],
    ["SORT_RO", "nums", "DESC"],
    ["SORT_RO", "nums", "STORE", "x"],
    ["RPUSH", "weird", "1", " 2", "", "inf", "-inf", "3"],
    ["SORT", "weird"],
    ["RPUSH", "bad", "1", "abc"],
    ["SORT", "bad"],
    ["SORT", "bad", "ALPHA"],
    ["SORT"],
]


def test_script_matches_redis(pair):
    theirs, ours = pair
    differences = run_script(theirs, ours, SCRIPT)
    assert not differences, f"{len(differences)} replies differ from Redis:\n" + "\n".join(differences)


def test_random_sorts_match_redis(pair):
    theirs, ours = pair
    rng = random.Random(11)
    steps = [["RPUSH", "r", *[str(rng.randint(-50, 50)) for _ in range(200)]]]
    for i in range(-50, 51):
        if rng.random() < 0.7:
            steps.append(["SET", f"weight_{i}", str(rng.randint(0, 20))])
    for _ in range(40):
        command = ["SORT", "r"]
        if rng.random() < 0.5:
            command += ["BY", "weight_*"]
        if rng.random() < 0.5:
            command += ["LIMIT", str(rng.randint(-5, 150)), str(rng.randint(-1, 60))]
        if rng.random() < 0.5:
            command += ["DESC"]
        if rng.random() < 0.3:
            command += ["GET", "#", "GET", "weight_*"]
        steps.append(command)
    differences = run_script(theirs, ours, steps)
    assert not differences, f"{len(differences)} replies differ from Redis:\n" + "\n".join(differences[:10])
