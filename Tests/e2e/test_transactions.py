"""Transactions (issue 12): MULTI, EXEC, DISCARD, WATCH and UNWATCH as Redis 7 runs them.

What this file proves, on real processes on loopback:
- Replies and errors match a real redis-server command for command, in RESP2 and RESP3: QUEUED,
  EXECABORT after a queue-time error, a runtime error as one command's reply, nested MULTI, EXEC
  and DISCARD without MULTI, WATCH inside MULTI, and EXEC's null after a changed WATCHed key
  (written by another client, deleted, expired, flushed, or written by the same client).
- WATCH under concurrent writers in several processes: every EXEC that commits saw the value it
  watched, so a counter incremented by check-and-set loses no increment.
- Atomicity: a reader running throughout never sees half of a transaction, even when the keys it
  writes lived only on the disk tier.
- Under `--fsync always` an answered EXEC survives a kill -9.
- redis-py pipelines (with and without transaction) and Django's RedisCache run unchanged.
- In a three-node cluster: a transaction through any node runs on its keys' coordinator (hash
  tags put keys together), WATCH works through any node, keys with different coordinators get
  CROSSSLOT, and a transaction still commits through a coordinator failover.
"""
import multiprocessing
import socket
import threading
import time

import pytest
import redis

from conftest import Node, free_port
from test_cluster import owners, start_cluster, tier, wait_for_state
from test_commands import redis_port, strata  # noqa: F401 (module fixtures)


# ---------------------------------------------------------------------------------------------
# Side by side with redis-server


def raw_exchange(port, commands, protocol=2):
    """Sends `commands` (lists of str) one at a time on one connection and returns every raw
    reply, so RESP types and error texts compare byte for byte."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    file = sock.makefile("rb")
    replies = []

    def send(parts):
        payload = f"*{len(parts)}\r\n".encode()
        for part in parts:
            data = part.encode() if isinstance(part, str) else part
            payload += f"${len(data)}\r\n".encode() + data + b"\r\n"
        sock.sendall(payload)

    def read_reply():
        line = file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"$", b"="):
            n = int(rest)
            return line if n < 0 else line + file.read(n + 2)
        if kind in (b"*", b"%", b"~", b">"):
            n = int(rest)
            if n < 0:
                return line
            body = line
            for _ in range(n * (2 if kind == b"%" else 1)):
                body += read_reply()
            return body
        return line

    if protocol == 3:
        send(["HELLO", "3"])
        read_reply()
    for command in commands:
        send(command)
        replies.append(read_reply())
    sock.close()
    return replies


SCRIPTS = {
    "queued_and_exec": [
        ["MULTI"], ["SET", "a", "1"], ["INCR", "a"], ["GET", "a"], ["MGET", "a", "nope"], ["EXEC"], ["GET", "a"],
    ],
    "empty_exec": [["MULTI"], ["EXEC"]],
    "runtime_error_is_one_reply": [
        ["SET", "s", "text"], ["MULTI"], ["INCR", "s"], ["SET", "t", "2"], ["APPEND", "s", "!"], ["EXEC"], ["GET", "t"],
        ["GET", "s"],
    ],
    "unknown_command_aborts": [["MULTI"], ["SET", "u", "1"], ["NOSUCHCOMMAND", "x"], ["EXEC"], ["EXISTS", "u"]],
    "arity_error_aborts": [["MULTI"], ["SET", "u", "1"], ["GET"], ["EXEC"], ["EXISTS", "u"]],
    "syntax_error_at_run_time": [["MULTI"], ["SET", "v", "1", "NX", "XX"], ["SET", "w", "1"], ["EXEC"], ["GET", "w"]],
    "nested_multi_keeps_the_transaction": [["MULTI"], ["SET", "n", "1"], ["MULTI"], ["EXEC"], ["GET", "n"]],
    "exec_and_discard_without_multi": [["EXEC"], ["DISCARD"], ["UNWATCH"]],
    "discard_drops_the_queue": [["MULTI"], ["SET", "d", "1"], ["DISCARD"], ["EXISTS", "d"], ["EXEC"]],
    "watch_inside_multi": [["MULTI"], ["WATCH", "k"], ["SET", "k", "1"], ["EXEC"]],
    "watch_arity": [["WATCH"]],
    "watch_unchanged_commits": [["SET", "w1", "1"], ["WATCH", "w1", "w2"], ["MULTI"], ["INCR", "w1"], ["EXEC"]],
    "watch_own_write_aborts": [["SET", "o", "1"], ["WATCH", "o"], ["SET", "o", "2"], ["MULTI"], ["SET", "o", "3"], ["EXEC"], ["GET", "o"]],
    "watch_own_delete_aborts": [["SET", "o", "1"], ["WATCH", "o"], ["DEL", "o"], ["MULTI"], ["SET", "x", "3"], ["EXEC"], ["EXISTS", "x"]],
    "unwatch_then_write_commits": [["SET", "o", "1"], ["WATCH", "o"], ["SET", "o", "2"], ["UNWATCH"], ["MULTI"], ["SET", "o", "3"], ["EXEC"]],
    "watch_missing_key_set_aborts": [["WATCH", "m"], ["SET", "m", "1"], ["MULTI"], ["GET", "m"], ["EXEC"]],
    "watch_flushall_aborts": [["SET", "f", "1"], ["WATCH", "f"], ["FLUSHALL"], ["MULTI"], ["SET", "g", "1"], ["EXEC"]],
    "exec_clears_watches": [["SET", "c", "1"], ["WATCH", "c"], ["MULTI"], ["EXEC"], ["SET", "c", "2"], ["MULTI"], ["GET", "c"], ["EXEC"]],
    "discard_clears_watches": [["SET", "c", "1"], ["WATCH", "c"], ["MULTI"], ["DISCARD"], ["SET", "c", "2"], ["MULTI"], ["GET", "c"], ["EXEC"]],
    "ttl_and_expiry_inside": [["MULTI"], ["SET", "e", "1", "EX", "100"], ["TTL", "e"], ["PERSIST", "e"], ["TTL", "e"], ["EXEC"]],
    "wait_alone": [["SET", "a", "1"], ["WAIT", "0", "0"], ["WAIT", "1", "-1"], ["WAIT", "x", "0"], ["WAIT", "1", "x"],
                   ["MULTI"], ["WAIT", "0", "0"], ["EXEC"]],
    "reset_ends_the_transaction": [["MULTI"], ["SET", "r", "1"], ["RESET"], ["EXEC"], ["EXISTS", "r"]],
}


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_replies_match_redis(strata, redis_port, name, protocol):
    for port in (strata.port, redis_port):
        redis.Redis(port=port).flushall()
    ours = raw_exchange(strata.port, SCRIPTS[name], protocol)
    theirs = raw_exchange(redis_port, SCRIPTS[name], protocol)
    for command, mine, reference in zip(SCRIPTS[name], ours, theirs):
        assert mine == reference, f"{name}: {command}: Redis {reference!r}, Strata {mine!r}"


def test_watch_is_broken_by_another_client_and_by_expiry(strata, redis_port):
    for port in (strata.port, redis_port):
        a, b = redis.Redis(port=port), redis.Redis(port=port)
        a.flushall()
        a.set("k", "1")
        pipe = a.pipeline()
        pipe.watch("k")
        b.set("k", "2")
        pipe.multi()
        pipe.set("k", "3")
        with pytest.raises(redis.WatchError):
            pipe.execute()
        assert a.get("k") == b"2"
        # A key that existed when watched and expired before EXEC breaks the transaction.
        a.set("t", "1", px=100)
        pipe = a.pipeline()
        pipe.watch("t")
        time.sleep(0.25)
        pipe.multi()
        pipe.set("u", "1")
        with pytest.raises(redis.WatchError):
            pipe.execute()
        assert a.exists("u") == 0, f"port {port}"


# ---------------------------------------------------------------------------------------------
# Concurrency: several processes


def cas_worker(port, key, rounds, results):
    client = redis.Redis(port=port, socket_timeout=20)
    committed = retried = 0
    while committed < rounds:
        with client.pipeline() as pipe:
            try:
                pipe.watch(key)
                value = int(pipe.get(key) or 0)
                pipe.multi()
                pipe.set(key, value + 1)
                pipe.execute()
                committed += 1
            except redis.WatchError:
                retried += 1
    results.put((committed, retried))


def test_check_and_set_under_concurrent_writers_loses_no_increment(strata):
    client = strata.client()
    client.delete("counter")
    workers, rounds = 4, 150
    results = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=cas_worker, args=(strata.port, "counter", rounds, results))
                 for _ in range(workers)]
    for p in processes:
        p.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(timeout=30)
    assert sum(c for c, _ in outcomes) == workers * rounds
    # Four writers racing on one key must have collided: otherwise WATCH was never tested.
    assert sum(r for _, r in outcomes) > 0
    assert int(client.get("counter")) == workers * rounds


def test_a_reader_never_sees_half_a_transaction(make_node):
    # A small memory tier: most keys live only on disk when the transactions touch them.
    node = make_node("--memory", "4MiB", "--disk", "256MiB")
    client = node.client()
    filler = client.pipeline(transaction=False)
    for i in range(6000):
        filler.set(f"fill:{i}", "x" * 1000)
    filler.execute()
    pairs = [(f"a:{i}", f"b:{i}") for i in range(40)]
    for a, b in pairs:
        client.mset({a: 0, b: 0})
    for i in range(6000, 12000):
        client.set(f"fill:{i}", "y" * 1000)
    stop = threading.Event()
    torn = []
    reads = [0]

    def reader():
        r = node.client()
        while not stop.is_set():
            for a, b in pairs[:8]:
                x, y = r.mget(a, b)
                reads[0] += 1
                if x != y:
                    torn.append((a, x, y))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    writer = node.client()
    for round in range(1, 60):
        for a, b in pairs[round % 5::5]:
            pipe = writer.pipeline(transaction=True)
            pipe.incr(a)
            pipe.incr(b)
            first, second = pipe.execute()
            assert first == second
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert reads[0] > 100
    assert torn == []
    for a, b in pairs:
        assert client.get(a) == client.get(b)


def test_an_answered_exec_survives_kill_9_under_fsync_always(make_node):
    node = make_node("--fsync", "always", "--memory", "32MiB")
    client = node.client()
    pipe = client.pipeline(transaction=True)
    for i in range(50):
        pipe.set(f"tx:{i}", i)
    pipe.incrby("tx:sum", 1225)
    assert len(pipe.execute()) == 51
    node.kill()
    node.restart()
    client = node.client()
    assert [int(v) for v in client.mget([f"tx:{i}" for i in range(50)])] == list(range(50))
    assert int(client.get("tx:sum")) == 1225


# ---------------------------------------------------------------------------------------------
# Clients as applications use them


def test_redis_py_pipelines_with_and_without_transaction(strata):
    client = strata.client()
    client.flushall()
    with client.pipeline(transaction=True) as pipe:
        pipe.set("p1", "a").incr("p2").get("p1").mget("p1", "p2").delete("p1")
        assert pipe.execute() == [True, 1, b"a", [b"a", b"1"], 1]
    with client.pipeline(transaction=False) as pipe:
        pipe.set("p3", "b").incr("p2").get("p3")
        assert pipe.execute() == [True, 2, b"b"]
    # A queued command that fails at run time raises its error from execute().
    client.set("p4", "text")
    with client.pipeline(transaction=True) as pipe:
        pipe.incr("p4").set("p5", "ok")
        with pytest.raises(redis.ResponseError):
            pipe.execute()
    assert client.get("p5") == b"ok"
    # transaction() runs the watched check-and-set loop.
    client.set("p6", "10")

    def double(pipe):
        value = int(pipe.get("p6"))
        pipe.multi()
        pipe.set("p6", value * 2)

    client.transaction(double, "p6")
    assert client.get("p6") == b"20"


def django_redis_cache(location, **options):
    """Django's own Redis cache backend, as a site configures it."""
    import django
    from django.conf import settings
    if not settings.configured:
        settings.configure()
        django.setup()
    from django.core.cache.backends.redis import RedisCache
    return RedisCache(location, options)


def exercise_django_cache(cache):
    cache.clear()
    cache.set("k", {"a": 1})
    assert cache.get("k") == {"a": 1}
    assert cache.add("k", 2) is False
    assert cache.add("k2", 2) is True
    assert cache.get_many(["k", "k2", "none"]) == {"k": {"a": 1}, "k2": 2}
    assert cache.set_many({"m1": 1, "m2": "two", "m3": [3]}) == []
    assert cache.get_many(["m1", "m2", "m3"]) == {"m1": 1, "m2": "two", "m3": [3]}
    cache.delete_many(["m1", "m2"])
    assert cache.get("m1") is None and cache.get("m3") == [3]
    cache.set("n", 1)
    assert cache.incr("n", 5) == 6
    assert cache.decr("n", 2) == 4
    assert cache.touch("n", 100) is True
    assert cache.has_key("n")
    assert cache.get_or_set("gos", lambda: "made") == "made"
    cache.set("short", 1, timeout=1)
    time.sleep(1.5)
    assert cache.get("short") is None
    assert cache.delete("n") is True
    cache.set_many({"x1": 1, "x2": 2}, timeout=100)
    assert cache.get_many(["x1", "x2"]) == {"x1": 1, "x2": 2}
    cache.clear()
    assert cache.get("k") is None


def test_django_redis_cache_runs_unchanged(strata):
    exercise_django_cache(django_redis_cache(f"redis://127.0.0.1:{strata.port}"))


# ---------------------------------------------------------------------------------------------
# Cluster


@pytest.fixture(scope="module")
def cluster_nodes(tmp_path_factory):
    base = tmp_path_factory.mktemp("cluster")
    ports = {f"n{i}": free_port() for i in (1, 2, 3)}
    peers = ",".join(f"{name}=127.0.0.1:{port}" for name, port in ports.items())
    nodes = {}
    for name, port in ports.items():
        nodes[name] = Node(base / name, "--node-id", name, "--peers", peers, "--replicas", "2",
                           "--memory", "32MiB", "--disk", "128MiB", port=port).start()
    for name, node in nodes.items():
        for other in nodes:
            if other != name:
                assert wait_for_state(node, other, "up")
    yield nodes
    for node in nodes.values():
        node.stop(timeout=15)


def keys_on_different_coordinators(node):
    seen = {}
    for i in range(200):
        key = f"spread:{i}"
        first = owners(node, key)[0]
        seen.setdefault(first, key)
        if len(seen) >= 2:
            return list(seen.values())
    raise AssertionError("every key had the same coordinator")


def test_cluster_transactions_through_every_node(cluster_nodes):
    for name, node in cluster_nodes.items():
        client = node.client()
        with client.pipeline(transaction=True) as pipe:
            pipe.set(f"{{user:{name}}}:a", 1).incr(f"{{user:{name}}}:b").mget(f"{{user:{name}}}:a", f"{{user:{name}}}:b")
            assert pipe.execute() == [True, 1, [b"1", b"1"]]
        for other in cluster_nodes.values():
            assert other.client().get(f"{{user:{name}}}:a") == b"1"


def test_cluster_watch_through_any_node(cluster_nodes):
    nodes = list(cluster_nodes.values())
    a, b = nodes[0].client(), nodes[1].client()
    a.set("{w}k", "1")
    pipe = a.pipeline()
    pipe.watch("{w}k")
    b.set("{w}k", "2")
    pipe.multi()
    pipe.set("{w}k", "3")
    with pytest.raises(redis.WatchError):
        pipe.execute()
    pipe = a.pipeline()
    pipe.watch("{w}k")
    pipe.multi()
    pipe.set("{w}other", "3")
    assert pipe.execute() == [True]
    assert nodes[2].client().get("{w}other") == b"3"


def test_wait_counts_the_other_owners_that_acknowledged(cluster_nodes):
    # Replicas 2: one other owner per key, whether this node coordinates the write or
    # forwards it.
    for node in cluster_nodes.values():
        client = node.client()
        for i in range(5):
            client.set(f"wait:{node.port}:{i}", i)
            assert client.wait(1, 5000) == 1
    assert cluster_nodes["n1"].client().wait(1, 100) == 1  # a new client with no writes


def test_cluster_crossslot(cluster_nodes):
    node = cluster_nodes["n1"]
    k1, k2 = keys_on_different_coordinators(node)
    client = node.client()
    replies = raw_exchange(node.port, [["MULTI"], ["SET", k1, "1"], ["SET", k2, "2"], ["EXEC"], ["EXISTS", k1, k2]])
    assert replies == [b"+OK\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n",
                       b"-CROSSSLOT Keys in request don't hash to the same slot\r\n", b":0\r\n"]
    # A watched key counts too.
    replies = raw_exchange(node.port, [["WATCH", k1], ["MULTI"], ["SET", k2, "2"], ["EXEC"]])
    assert replies[-1].startswith(b"-CROSSSLOT")
    assert client.exists(k2) == 0


def test_cluster_transaction_through_a_coordinator_failover(make_node):
    nodes = start_cluster(make_node)
    key = "{fo}a"
    coordinator = owners(nodes["n1"], key)[0]
    survivor = next(n for name, n in nodes.items() if name != coordinator)
    client = survivor.client()
    with client.pipeline(transaction=True) as pipe:
        pipe.set(key, 1).set("{fo}b", 1)
        pipe.execute()
    # Replication is asynchronous (write quorum 1): wait until every owner has both keys.
    deadline = time.time() + 20
    while time.time() < deadline:
        if all(tier(nodes[o].client(), k) != "none" for o in owners(survivor, key) for k in (key, "{fo}b")):
            break
        time.sleep(0.1)
    nodes[coordinator].kill()
    assert wait_for_state(survivor, coordinator, "down", seconds=20)
    with client.pipeline(transaction=True) as pipe:
        pipe.incr(key).incr("{fo}b")
        assert pipe.execute() == [2, 2]
    nodes[coordinator].restart()
    assert wait_for_state(survivor, coordinator, "up", seconds=20)
    deadline = time.time() + 20
    while time.time() < deadline:
        if nodes[coordinator].client().mget(key, "{fo}b") == [b"2", b"2"]:
            break
        time.sleep(0.2)
    assert nodes[coordinator].client().mget(key, "{fo}b") == [b"2", b"2"]


def test_django_redis_cache_through_a_cluster_node(cluster_nodes):
    # Django's set_many/delete_many run as MULTI pipelines of keys on different nodes: they
    # need hash tags in a cluster, which Django's KEY_PREFIX/KEY_FUNCTION give.
    node = cluster_nodes["n2"]
    cache = django_redis_cache(f"redis://127.0.0.1:{node.port}",
                               KEY_FUNCTION=lambda key, prefix, version: f"{{site}}:{version}:{key}")
    exercise_django_cache(cache)


def test_redis_py_lock_through_every_node_of_a_cluster(cluster_nodes):
    # Lock's release and extend are EVALSHA scripts: they run on the lock key's coordinator
    # whichever node the client uses (the script goes there as EVAL).
    clients = [node.client() for node in cluster_nodes.values()]
    for i, client in enumerate(clients):
        lock = client.lock(f"lock:{i}", timeout=10)
        assert lock.acquire(blocking=False)
        for other in clients:
            assert not other.lock(f"lock:{i}", timeout=10).acquire(blocking=False)
        assert lock.extend(10)
        assert 10_000 < clients[(i + 1) % 3].pttl(f"lock:{i}") <= 20_000
        lock.release()
        competing = clients[(i + 2) % 3].lock(f"lock:{i}", timeout=10)
        assert competing.acquire(blocking=False)
        assert clients[i].get(f"lock:{i}") == competing.local.token
        competing.release()
        assert all(c.exists(f"lock:{i}") == 0 for c in clients)
