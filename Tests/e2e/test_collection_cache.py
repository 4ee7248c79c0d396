"""Large collections are kept decoded between commands (CollectionCache); these tests change a
large value in every way a key can change and check that no command ever sees a stale copy:
writes, a failed write, RESTORE, a string written over it, DEL, expiry, RENAME, MULTI and Lua,
and a record replicated from another node."""
import time

import pytest
import redis

from test_cluster import owners, start_cluster, wait_for_state


def big_hash(client, key, fields=2000, tag="v"):
    client.delete(key)
    client.hset(key, mapping={f"f{i}": f"{tag}{i}" for i in range(fields)})
    return {f"f{i}".encode(): f"{tag}{i}".encode() for i in range(fields)}


def test_a_large_hash_never_reads_stale(make_node):
    node = make_node("--memory", "64MiB")
    c = node.client()
    expected = big_hash(c, "big")
    assert c.hgetall("big") == expected and c.hget("big", "f7") == b"v7"
    # A write, then reads.
    c.hset("big", "f7", "changed")
    expected[b"f7"] = b"changed"
    assert c.hget("big", "f7") == b"changed" and c.hgetall("big") == expected
    # A write that fails half-way changes nothing, cached or stored.
    with pytest.raises(redis.ResponseError):
        c.hincrby("big", "f8", 1)
    assert c.hgetall("big") == expected
    # RESTORE over it.
    other = big_hash(c, "other", tag="o")
    c.restore("big", 0, c.dump("other"), replace=True)
    assert c.hgetall("big") == other
    # MULTI and a script.
    pipe = c.pipeline(transaction=True)
    pipe.hset("big", "f1", "in-multi")
    pipe.hdel("big", "f2")
    pipe.execute()
    c.eval("redis.call('HSET', KEYS[1], 'f3', 'in-lua')", 1, "big")
    other.update({b"f1": b"in-multi", b"f3": b"in-lua"})
    del other[b"f2"]
    assert c.hgetall("big") == other
    # RENAME another hash onto it.
    third = big_hash(c, "third", tag="t")
    c.rename("third", "big")
    assert c.hgetall("big") == third
    # A string written over it, then a new small hash.
    c.set("big", "plain")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        c.hget("big", "f1")
    c.delete("big")
    c.hset("big", "only", "one")
    assert c.hgetall("big") == {b"only": b"one"}
    # Expiry.
    big_hash(c, "big")
    c.pexpire("big", 100)
    time.sleep(0.3)
    assert c.hgetall("big") == {} and c.exists("big") == 0


def test_a_large_sorted_set_and_list_never_read_stale(make_node):
    node = make_node("--memory", "64MiB")
    c = node.client()
    c.zadd("z", {f"m{i}": i for i in range(1500)})
    assert c.zrange("z", 0, 2) == [b"m0", b"m1", b"m2"]
    c.zadd("z", {"m0": 5000})
    assert c.zrange("z", 0, 2) == [b"m1", b"m2", b"m3"] and c.zscore("z", "m0") == 5000
    with pytest.raises(redis.ResponseError):
        c.zincrby("z", float("nan"), "m1")
    assert c.zrange("z", 0, 0) == [b"m1"]
    c.rpush("l", *[f"e{i}" for i in range(3000)])
    assert c.lindex("l", 0) == b"e0"
    c.lpop("l")
    assert c.lindex("l", 0) == b"e1" and c.llen("l") == 2999


def test_a_record_replicated_from_another_node_is_seen(make_node):
    """A replica that served the hash while its coordinator was down (so it holds it decoded)
    is sent a newer record once the coordinator is back; when the coordinator dies again, the
    replica's reads have the newer record."""
    cluster = start_cluster(make_node)
    client = cluster["n1"].client()
    expected = big_hash(client, "rep:big")
    coordinator, replica = owners(cluster["n1"], "rep:big")[:2]
    time.sleep(0.8)  # replication to the other owners runs behind the acknowledgement
    cluster[coordinator].kill()
    assert wait_for_state(cluster[replica], coordinator, "down")
    assert cluster[replica].client().hgetall("rep:big") == expected  # served, and cached, there
    cluster[coordinator].start()
    assert wait_for_state(cluster[replica], coordinator, "up")
    cluster[coordinator].client().hset("rep:big", "f0", "newer")
    expected[b"f0"] = b"newer"
    time.sleep(0.8)
    cluster[coordinator].kill()
    assert wait_for_state(cluster[replica], coordinator, "down")
    assert cluster[replica].client().hgetall("rep:big") == expected
