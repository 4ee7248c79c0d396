"""Collections as a cache keeps them: through kill -9, warm restarts, a node's death in a
cluster, TTLs and memory smaller than the collection; and blocking pops woken by pushes that
arrive through any node, in arrival order.

Command-by-command replies are compared with redis-server in test_hashes_sets.py,
test_lists.py and test_sorted_sets.py; this file is about where the values live.
"""
import threading
import time

import pytest
import redis

from test_cluster import owners, start_cluster, tier, wait_for_state


def fill_collections(client, prefix, count, members=20):
    """`count` keys of each type under `prefix`, each with `members` members; returns what
    each key must hold."""
    expected = {}
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        fields = {f"f{j}": f"v{i}-{j}" for j in range(members)}
        pipe.hset(f"{prefix}:h:{i}", mapping=fields)
        expected[f"{prefix}:h:{i}"] = ("hash", {k.encode(): v.encode() for k, v in fields.items()})
        items = [f"e{i}-{j}" for j in range(members)]
        pipe.rpush(f"{prefix}:l:{i}", *items)
        expected[f"{prefix}:l:{i}"] = ("list", [x.encode() for x in items])
        pipe.sadd(f"{prefix}:s:{i}", *items)
        expected[f"{prefix}:s:{i}"] = ("set", {x.encode() for x in items})
        scores = {f"m{j}": j * 1.5 + i for j in range(members)}
        pipe.zadd(f"{prefix}:z:{i}", scores)
        expected[f"{prefix}:z:{i}"] = ("zset", sorted(((k.encode(), v) for k, v in scores.items()), key=lambda p: (p[1], p[0])))
    pipe.execute()
    return expected


def read_back(client, key, kind):
    if kind == "hash":
        return client.hgetall(key)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "set":
        return client.smembers(key)
    return client.zrange(key, 0, -1, withscores=True)


def assert_holds(client, expected):
    for key, (kind, value) in expected.items():
        assert client.type(key) == kind.encode(), key
        assert read_back(client, key, kind) == value, key


def test_acknowledged_collection_writes_survive_kill_9_under_fsync_always(make_node):
    node = make_node("--fsync", "always", "--memory", "32MiB")
    client = node.client()
    expected = fill_collections(client, "k9", 25)
    # Changes after the first writes, each acknowledged before the kill.
    client.hset("k9:h:0", "f0", "changed")
    expected["k9:h:0"][1][b"f0"] = b"changed"
    client.lpop("k9:l:0")
    expected["k9:l:0"] = ("list", expected["k9:l:0"][1][1:])
    client.srem("k9:s:0", "e0-0")
    expected["k9:s:0"][1].discard(b"e0-0")
    client.zincrby("k9:z:0", 100, "m0")
    z = dict(expected["k9:z:0"][1])
    z[b"m0"] += 100
    expected["k9:z:0"] = ("zset", sorted(z.items(), key=lambda p: (p[1], p[0])))
    node.kill()
    node.restart()
    assert_holds(node.client(), expected)


def test_a_warm_restart_brings_collections_back_into_memory(make_node):
    node = make_node("--memory", "32MiB", "--snapshot-interval", "1")
    client = node.client()
    expected = fill_collections(client, "warm", 20)
    node.stop()
    node.restart()
    client = node.client()
    deadline = time.time() + 20
    while node.http("/ready")[0] != 200:
        assert time.time() < deadline, "warm start did not finish"
        time.sleep(0.1)
    # The hot collections are in memory before anything reads them.
    in_memory = sum(tier(client, key) == "memory" for key in expected)
    assert in_memory == len(expected)
    assert_holds(client, expected)


def test_collections_larger_than_memory_are_served_from_disk(make_node):
    node = make_node("--memory", "1MiB", "--disk", "256MiB")
    client = node.client()
    element = "x" * 90
    total = 0
    for batch in range(30):  # a 3 MB list: larger than the whole memory tier
        client.rpush("big:list", *[f"{batch}:{i}:{element}" for i in range(1000)])
        total += 1000
    fields = {f"field:{i}": element for i in range(20_000)}
    for start in range(0, len(fields), 5000):
        client.hset("big:hash", mapping=dict(list(fields.items())[start:start + 5000]))
    assert tier(client, "big:list") == "disk"
    assert client.llen("big:list") == total
    assert client.lindex("big:list", 0) == f"0:0:{element}".encode()
    assert client.lindex("big:list", -1) == f"29:999:{element}".encode()
    assert client.lrange("big:list", 15_000, 15_001) == [f"15:0:{element}".encode(), f"15:1:{element}".encode()]
    assert client.hlen("big:hash") == 20_000
    assert client.hget("big:hash", "field:12345") == element.encode()
    client.hset("big:hash", "field:12345", "changed")
    node.stop()
    node.restart()
    client = node.client()
    assert client.llen("big:list") == total
    assert client.hget("big:hash", "field:12345") == b"changed"
    assert client.hlen("big:hash") == 20_000


def test_ttls_on_collections(node):
    client = node.client()
    client.hset("ttl:h", "f", "v")
    client.rpush("ttl:l", "a", "b")
    client.sadd("ttl:s", "a")
    client.zadd("ttl:z", {"a": 1})
    for key in ("ttl:h", "ttl:l", "ttl:s", "ttl:z"):
        assert client.pexpire(key, 400)
        assert 0 < client.pttl(key) <= 400
    # A write to a collection keeps its TTL, as in Redis.
    client.hset("ttl:h", "g", "w")
    client.rpush("ttl:l", "c")
    assert 0 < client.pttl("ttl:h") <= 400
    assert 0 < client.pttl("ttl:l") <= 400
    client.sadd("ttl:keep", "a")
    client.expire("ttl:keep", 100)
    assert client.persist("ttl:keep")
    assert client.ttl("ttl:keep") == -1
    time.sleep(0.6)
    for key in ("ttl:h", "ttl:l", "ttl:s", "ttl:z"):
        assert client.exists(key) == 0
        assert client.type(key) == b"none"
    assert client.smembers("ttl:keep") == {b"a"}


def test_types_are_kept_apart(node):
    client = node.client()
    client.hset("kind:h", "f", "v")
    for call in (lambda: client.get("kind:h"), lambda: client.incr("kind:h"), lambda: client.append("kind:h", "x"),
                 lambda: client.lpush("kind:h", "x"), lambda: client.sadd("kind:h", "x"), lambda: client.zadd("kind:h", {"x": 1})):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            call()
    assert client.mget("kind:h") == [None]
    assert client.type("kind:h") == b"hash"
    assert client.object("encoding", "kind:h") == b"listpack"
    assert client.rename("kind:h", "kind:h2")
    assert client.hgetall("kind:h2") == {b"f": b"v"}
    assert client.copy("kind:h2", "kind:h3")
    assert client.hgetall("kind:h3") == {b"f": b"v"}
    assert sorted(client.scan(0, _type="hash", count=1000)[1]) == [b"kind:h2", b"kind:h3"]
    client.set("kind:h2", "now a string")  # SET replaces any type
    assert client.get("kind:h2") == b"now a string"
    assert client.type("kind:h2") == b"string"
    assert client.delete("kind:h3") == 1


# ---------------------------------------------------------------------------------------------
# Blocking pops


def blocked(client, *command):
    """Runs a blocking command on its own thread; returns (thread, result holder)."""
    result = {}

    def run():
        try:
            answer = client.execute_command(*command)
            # redis-py turns BLPOP's and BRPOP's [key, element] into a tuple, with Redis too.
            result["reply"] = list(answer) if isinstance(answer, tuple) else answer
        except Exception as error:  # noqa: BLE001 - the test reads it
            result["error"] = error
    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def wait_blocked(node, count, seconds=10):
    """Waits until `count` clients of `node` are blocked (INFO clients' blocked_clients), or
    returns False."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        info = node.client().info("clients")
        if info.get("blocked_clients", 0) >= count:
            return True
        time.sleep(0.02)
    return False


def test_blocking_pops_wait_for_pushes_and_are_served_in_arrival_order(node):
    first, second = node.client(socket_timeout=15), node.client(socket_timeout=15)
    t1, r1 = blocked(first, "BLPOP", "q", "other", 10)
    assert wait_blocked(node, 1)
    t2, r2 = blocked(second, "BLPOP", "q", 10)
    assert wait_blocked(node, 2)
    node.client().rpush("q", "one", "two")
    t1.join(15)
    t2.join(15)
    assert r1 == {"reply": [b"q", b"one"]}
    assert r2 == {"reply": [b"q", b"two"]}
    assert node.client().exists("q") == 0
    # A timeout answers null; a pop that finds data does not wait.
    started = time.time()
    assert node.client().execute_command("BLPOP", "q", 0.2) is None
    assert time.time() - started >= 0.19
    node.client().rpush("q", "x")
    assert list(node.client().execute_command("BRPOP", "q", 0)) == [b"q", b"x"]


def test_blocking_move_and_sorted_set_pops_wake_on_writes(node):
    client = node.client(socket_timeout=15)
    t, r = blocked(client, "BLMOVE", "src", "dst", "LEFT", "RIGHT", 10)
    assert wait_blocked(node, 1)
    node.client().lpush("src", "item")
    t.join(15)
    assert r == {"reply": b"item"}
    assert node.client().lrange("dst", 0, -1) == [b"item"]
    t, r = blocked(node.client(socket_timeout=15), "BZPOPMIN", "zq", 10)
    assert wait_blocked(node, 1)
    node.client().zadd("zq", {"b": 2, "a": 1})
    t.join(15)
    assert [r["reply"][0], r["reply"][1], float(r["reply"][2])] == [b"zq", b"a", 1.0]
    # A push inside a transaction wakes a waiter once the transaction ran.
    t, r = blocked(node.client(socket_timeout=15), "BRPOP", "txq", 10)
    assert wait_blocked(node, 1)
    pipe = node.client().pipeline(transaction=True)
    pipe.rpush("txq", "a").rpush("txq", "b")
    pipe.execute()
    t.join(15)
    assert r == {"reply": [b"txq", b"b"]}


def test_a_closed_connection_stops_waiting_and_loses_no_element(node):
    # No retries: redis-py would otherwise send the BLPOP again on a new connection, and that
    # live waiter would rightly take the element.
    waiter = node.client(socket_timeout=15, retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0))
    t, r = blocked(waiter, "BLPOP", "lost", 0)
    assert wait_blocked(node, 1)
    waiter.connection_pool.disconnect()
    t.join(15)
    deadline = time.time() + 10
    while node.client().info("clients")["blocked_clients"] > 0:
        assert time.time() < deadline, "the closed connection's pop still waits"
        time.sleep(0.02)
    node.client().rpush("lost", "kept")
    time.sleep(0.3)
    assert node.client().lrange("lost", 0, -1) == [b"kept"]


@pytest.fixture
def cluster(make_node):
    return start_cluster(make_node)


def test_blocking_pops_through_any_node_are_released_by_pushes_through_another(cluster):
    key = "queue:jobs"
    coordinator = owners(cluster["n1"], key)[0]
    others = [name for name in cluster if name != coordinator]
    # The waiter talks to a node that is not the key's coordinator; the push goes through a third.
    waiter = cluster[others[0]].client(socket_timeout=20)
    t, r = blocked(waiter, "BLPOP", key, 15)
    assert wait_blocked(cluster[coordinator], 1)
    cluster[others[1]].client().rpush(key, "job-1")
    t.join(20)
    assert r == {"reply": [key.encode(), b"job-1"]}
    board_coordinator = owners(cluster["n1"], "board")[0]
    t, r = blocked(cluster[others[1]].client(socket_timeout=20), "BZPOPMAX", "board", 15)
    assert wait_blocked(cluster[board_coordinator], 1)
    cluster[others[0]].client().zadd("board", {"low": 1, "high": 9})
    t.join(20)
    assert [r["reply"][0], r["reply"][1], float(r["reply"][2])] == [b"board", b"high", 9.0]
    # A timeout through a forwarding node is a null, not an error.
    assert cluster[others[0]].client().execute_command("BLPOP", "queue:empty", 0.3) is None


def test_a_node_killed_in_a_cluster_loses_no_member(cluster):
    writer = cluster["n1"].client()
    expected = fill_collections(writer, "fo", 40)
    time.sleep(0.8)  # replication to the other owners runs behind the acknowledgement (quorum 1)
    cluster["n3"].kill()
    survivors = [cluster["n1"].client(), cluster["n2"].client()]
    assert wait_for_state(cluster["n1"], "n3", "down")
    for client in survivors:
        assert_holds(client, expected)
    # Writes go on through the survivors and read back through both.
    survivors[0].hset("fo:h:0", "after", "kill")
    assert survivors[1].hget("fo:h:0", "after") == b"kill"
