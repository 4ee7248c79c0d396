"""DUMP and RESTORE side by side with redis-server 7.0: errors and options compared reply by
reply, and payloads moved both ways (Redis' DUMP restored on Strata, Strata's DUMP restored on
Redis) for every type, in Redis' compact encodings (intset, listpack, quicklist) and past them."""
import time

import pytest
import redis

from test_commands import pair, raw_client, redis_port, run_script, strata  # noqa: F401 (module fixtures)


def fill(client, prefix, size):
    """One key of each type under `prefix`, `size` members each; returns what each holds."""
    client.set(f"{prefix}:str", "hello world")
    client.set(f"{prefix}:int", "12345")
    client.set(f"{prefix}:neg", "-70000")
    client.set(f"{prefix}:big", "x" * 5000)
    client.rpush(f"{prefix}:list", *[f"e{i}" if i % 3 else str(i * 1000) for i in range(size)])
    client.sadd(f"{prefix}:intset", *range(size))
    client.sadd(f"{prefix}:set", *[f"m{i}" for i in range(size)])
    client.hset(f"{prefix}:hash", mapping={f"f{i}": f"v{i}" if i % 2 else i for i in range(size)})
    client.zadd(f"{prefix}:zset", {f"z{i}": i * 1.5 - 3 for i in range(size)} | {"inf": float("inf")})
    return [f"{prefix}:{k}" for k in ("str", "int", "neg", "big", "list", "intset", "set", "hash", "zset")]


def contents(client, key):
    kind = client.type(key).decode()
    if kind == "string":
        return kind, client.get(key)
    if kind == "list":
        return kind, client.lrange(key, 0, -1)
    if kind == "set":
        return kind, sorted(client.smembers(key))
    if kind == "hash":
        return kind, sorted(client.hgetall(key).items())
    return kind, client.zrange(key, 0, -1, withscores=True)


@pytest.mark.parametrize("size", [5, 700], ids=["compact", "large"])
def test_payloads_move_between_redis_and_strata_both_ways(strata, redis_port, size):
    theirs, ours = redis.Redis(port=redis_port), redis.Redis(port=strata.port)
    theirs.flushall()
    ours.flushall()
    for source, target, name in [(theirs, ours, "from-redis"), (ours, theirs, "from-strata")]:
        keys = fill(source, name, size)
        for key in keys:
            payload = source.dump(key)
            assert payload is not None, key
            assert target.restore(key, 0, payload), key
            assert contents(target, key) == contents(source, key), key
            # And back again, through the other side's DUMP.
            assert source.restore(key, 0, target.dump(key), replace=True), key
            assert contents(source, key) == contents(target, key), key


def test_restore_ttl_absttl_and_replace(strata):
    client = redis.Redis(port=strata.port)
    client.set("rt:src", "v")
    payload = client.dump("rt:src")
    assert client.restore("rt:ttl", 5000, payload)
    assert 4000 < client.pttl("rt:ttl") <= 5000
    at = int(time.time() * 1000) + 60_000
    assert client.restore("rt:abs", at, payload, absttl=True)
    assert 55_000 < client.pttl("rt:abs") <= 60_000
    # An absolute time already past: the old key goes, nothing is added.
    client.set("rt:old", "x")
    assert client.restore("rt:old", 1000, payload, replace=True, absttl=True)
    assert client.exists("rt:old") == 0
    with pytest.raises(redis.ResponseError, match="BUSYKEY Target key name already exists."):
        client.restore("rt:ttl", 0, payload)
    assert client.restore("rt:ttl", 0, payload, replace=True)
    assert client.pttl("rt:ttl") == -1


BAD = "\x00\x03abc\x0a\x00" + "\x00" * 8  # a string payload with a wrong checksum

SCRIPT = [
    ["SET", "d:s", "value"],
    ["DUMP", "d:missing"],
    ["RESTORE", "d:s", "0", BAD],
    ["RESTORE", "d:new", "-1", BAD],
    ["RESTORE", "d:new", "abc", BAD],
    ["RESTORE", "d:new", "0", BAD],
    ["RESTORE", "d:new", "0", "short"],
    ["RESTORE", "d:new", "0", BAD, "REPLACE", "BOGUS"],
    ["RESTORE", "d:new", "0", BAD, "IDLETIME", "-1"],
    ["RESTORE", "d:new", "0", BAD, "IDLETIME"],
    ["RESTORE", "d:new", "0", BAD, "FREQ", "256"],
    ["RESTORE", "d:new", "0", BAD, "FREQ", "x"],
    ["RESTORE", "d:new", "0", BAD, "FREQ", "1", "IDLETIME", "1"],
    ["RESTORE", "d:new"],
    ["DUMP"],
    ["EXISTS", "d:new"],
]


def test_errors_match_redis(pair):
    theirs, ours = pair
    differences = run_script(theirs, ours, SCRIPT)
    assert not differences, f"{len(differences)} replies differ from Redis:\n" + "\n".join(differences)


def test_payload_with_bad_data_is_refused_and_changes_nothing(strata, redis_port):
    theirs, ours = raw_client(redis_port), raw_client(strata.port)
    for client in (theirs, ours):
        client.set("bd:keep", "kept")
    good = bytearray(redis.Redis(port=redis_port).dump("bd:keep"))
    # A version from the future, with a right checksum for what it says.
    for client in (theirs, ours):
        with pytest.raises(redis.ResponseError) as error:
            future = bytes(good[:-10]) + b"\x63\x00" + bytes(good[-8:])
            client.execute_command("RESTORE", "bd:keep", 0, future, "REPLACE")
        assert "DUMP payload version or checksum are wrong" in str(error.value)
        assert client.get("bd:keep") == b"kept"
