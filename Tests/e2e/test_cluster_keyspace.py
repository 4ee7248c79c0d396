"""One cache through any node (issue 16): the keyspace commands of a three-node cluster
(replicas 2) answer for the whole cluster, and a flush is final.

What this file proves, on real processes on loopback:
- FLUSHALL and FLUSHDB (plain, ASYNC, SYNC) through any node empty every node: once the reply
  arrives no key written before is readable through any node and DBSIZE is 0 everywhere; bad
  arguments are errors; writes made right after the flush are kept and readable everywhere.
- A flush is final: nothing flushed comes back after a kill -9 and restart of another node, after
  restarting every node, when a node that was down during the flush returns (it knows of the flush
  before it serves its first command), when anti-entropy (STRATA.CLUSTER REPAIR) runs, when hints
  kept for a down owner before the flush are handed off, or when a node joins afterwards.
- A key deleted while one of its owners was down stays deleted, whether hinted handoff or
  anti-entropy brings the owner up to date.
- DBSIZE, INFO keyspace, KEYS, SCAN (MATCH, COUNT, TYPE; a cursor continued through another node)
  and RANDOMKEY answer for the whole cluster through each node, each key once; INFO's strata
  section gives the node's own count (node_keys) and the flush (flush_floor, last_flush_time), and
  /metrics the flush (strata_flushes_total, strata_flush_floor_timestamp_seconds).
- While a node joins and while one leaves, a SCAN that runs across the change returns every key at
  least once; afterwards DBSIZE and KEYS through every member agree with the keys written.
- A single node keeps Redis' behaviour for DBSIZE, KEYS, SCAN, RANDOMKEY and FLUSHALL.
"""
import random
import shutil
import threading
import time

import pytest
import redis

from conftest import Node, free_port
from test_cluster import REPLICAS, owners, start_cluster, tier_info, wait_for_state
from test_membership import settled

KEYSPACE_KEYS = 3000
TTL_EVERY = 6  # every sixth key of the shared cluster has a TTL


# ---------------------------------------------------------------------------------------------
# Helpers


def until(condition, timeout=10, what="the condition"):
    """Polls `condition` until it returns something truthy (returned) or `timeout` seconds pass
    (an AssertionError naming `what` and the last value)."""
    deadline = time.time() + timeout
    value = condition()
    while not value and time.time() < deadline:
        time.sleep(0.1)
        value = condition()
    assert value, f"timed out after {timeout} s waiting for {what} (last: {value!r})"
    return value


def write(client, keys, value=lambda key: key, ex=None):
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, value(key), ex=ex)
    assert all(pipe.execute())


def get_all(client, keys):
    """GET of every key (pipelined, one GET per key): {key: value}."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    return dict(zip(keys, pipe.execute()))


def readable(client, keys):
    """The keys of `keys` that GET still finds through `client`."""
    return sorted(k for k, v in get_all(client, keys).items() if v is not None)


def metric(node, name):
    """The value of the unlabelled sample `name` on the node's /metrics, or None if absent."""
    status, body = node.http("/metrics")
    assert status == 200
    for line in body.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return float(parts[1])
    return None


def replication_idle(nodes):
    return all(metric(node, "strata_replication_in_flight") == 0 for node in nodes)


def copies_in_place(cluster, keys):
    """Every key in `keys` is stored on each of its owners (the second copy is written behind
    the acknowledgement)."""
    clients = {name: node.client() for name, node in cluster.items()}
    for key in keys:
        for name in owners(cluster["n1"], key):
            if name in clients and tier_info(clients[name], key)[0] == "none":
                return False
    return True


def coordinators(node, keys):
    """{key: the node that coordinates it (its first owner)}, asked of `node`."""
    pipe = node.client().pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("STRATA.CLUSTER", "OWNERS", key)
    return {key: reply[0].decode() for key, reply in zip(keys, pipe.execute())}


def scan_list(clients, *options, limit=100_000):
    """A full SCAN iteration, every call through the next client of `clients` in turn (the cursor
    continued through another node); the keys in the order returned, duplicates kept."""
    found, cursor, calls = [], 0, 0
    while True:
        client = clients[calls % len(clients)]
        cursor, batch = client.execute_command("SCAN", cursor, *options)
        cursor = int(cursor)  # an integer, as Redis clients expect
        found.extend(k.decode() for k in batch)
        calls += 1
        if cursor == 0:
            return found
        assert calls < limit, "SCAN does not terminate"


def strata_info(client):
    return client.info("strata")


def keyspace_line(client):
    return client.info("keyspace").get("db0", {"keys": 0, "expires": 0})


def repair(node):
    reply = node.client(socket_timeout=60).execute_command("STRATA.CLUSTER", "REPAIR")
    assert isinstance(reply, int) and reply >= 0, reply
    return reply


def assert_nothing_readable(cluster, keys, when):
    for name, node in cluster.items():
        client = node.client()
        back = readable(client, keys)
        assert back == [], f"{when}: {len(back)} flushed/deleted keys readable through {name}, e.g. {back[:5]}"


def assert_empty_cluster(cluster, keys, when):
    assert_nothing_readable(cluster, keys, when)
    for name, node in cluster.items():
        assert node.client().dbsize() == 0, f"{when}: DBSIZE through {name}"


# ---------------------------------------------------------------------------------------------
# A shared cluster of 3,000 keys for the read-only checks (DBSIZE, INFO, KEYS, SCAN, RANDOMKEY)


@pytest.fixture(scope="module")
def keyspace(tmp_path_factory):
    """(cluster, keys, keys with a TTL): a three-node cluster with 3,000 keys written through n1,
    every sixth with a TTL of an hour. Nothing may change it."""
    base = tmp_path_factory.mktemp("keyspace")
    started = []

    def factory(*extra, name="node", env=None, port=0, http_port=0, cpus=None):
        node = Node(base / name, *extra, env=env, port=port, http_port=http_port, cpus=cpus)
        started.append(node)
        return node.start()

    try:
        cluster = start_cluster(factory)
        keys = [f"key:{i}" for i in range(KEYSPACE_KEYS)]
        with_ttl = keys[::TTL_EVERY]
        without = [k for k in keys if k not in set(with_ttl)]
        c1 = cluster["n1"].client()
        write(c1, without)
        write(c1, with_ttl, ex=3600)
        until(lambda: replication_idle(cluster.values()), 15, "replication to finish")
        yield cluster, keys, with_ttl
    finally:
        for node in started:
            try:
                node.stop(timeout=15)
            except Exception:
                pass


def test_dbsize_counts_every_key_once_through_every_node(keyspace):
    cluster, keys, _ = keyspace
    for name, node in cluster.items():
        assert node.client().dbsize() == len(keys), f"DBSIZE through {name}"


def test_info_keyspace_reports_the_cluster_and_the_strata_section_the_node(keyspace):
    cluster, keys, with_ttl = keyspace
    for name, node in cluster.items():
        client = node.client()
        line = client.info("keyspace").get("db0")
        assert line is not None, f"no db0 line in INFO keyspace through {name}"
        assert line["keys"] == len(keys), f"INFO keyspace keys through {name}: {line}"
        assert line["expires"] == len(with_ttl), f"INFO keyspace expires through {name}: {line}"
    # Each node's own count is the keys it coordinates; together they are every key once.
    coordinator = coordinators(cluster["n1"], keys)
    own = {}
    for name, node in cluster.items():
        info = strata_info(node.client())
        for field in ("node_keys", "flush_floor", "last_flush_time"):
            assert field in info, f"INFO strata through {name} has no {field}"
        own[name] = info["node_keys"]
        assert info["flush_floor"] in (0, "0"), f"{name}: flush_floor before any flush: {info['flush_floor']!r}"
        assert info["last_flush_time"] == 0, f"{name}: last_flush_time before any flush"
    assert sum(own.values()) == len(keys), own
    expected = {name: sum(1 for c in coordinator.values() if c == name) for name in cluster}
    assert own == expected, f"node_keys {own}, keys each node coordinates {expected}"


def test_keys_returns_every_key_once_through_every_node(keyspace):
    cluster, keys, _ = keyspace
    ones = sorted(k for k in keys if k.startswith("key:1"))
    assert len(ones) == 1111
    for name, node in cluster.items():
        client = node.client(socket_timeout=30)
        found = sorted(k.decode() for k in client.keys("*"))
        assert len(found) == len(set(found)), f"KEYS * through {name} has duplicates"
        assert found == sorted(keys), f"KEYS * through {name}: {len(found)} keys"
        filtered = sorted(k.decode() for k in client.keys("key:1*"))
        assert filtered == ones, f"KEYS key:1* through {name}: {len(filtered)} keys"
        assert client.keys("nothing:*") == []


@pytest.mark.parametrize("options", [("COUNT", "100"), ()], ids=["count100", "default"])
def test_a_full_scan_through_every_node_returns_every_key_once(keyspace, options):
    cluster, keys, _ = keyspace
    for name, node in cluster.items():
        found = scan_list([node.client()], *options)
        duplicates = len(found) - len(set(found))
        assert duplicates == 0, f"SCAN {' '.join(options)} through {name}: {duplicates} duplicates"
        assert sorted(found) == sorted(keys), (
            f"SCAN through {name}: {len(found)} keys, missing {sorted(set(keys) - set(found))[:5]}, "
            f"extra {sorted(set(found) - set(keys))[:5]}")


def test_scan_match_and_type_filter_the_whole_cluster(keyspace):
    cluster, keys, _ = keyspace
    ones = sorted(k for k in keys if k.startswith("key:1"))
    for name, node in cluster.items():
        client = node.client()
        found = scan_list([client], "MATCH", "key:1*", "COUNT", "100")
        assert sorted(found) == ones, f"SCAN MATCH key:1* through {name}: {len(found)} keys"
        strings = scan_list([client], "TYPE", "string", "COUNT", "100")
        assert sorted(strings) == sorted(keys), f"SCAN TYPE string through {name}: {len(strings)} keys"
        assert scan_list([client], "TYPE", "hash", "COUNT", "100") == [], f"SCAN TYPE hash through {name}"
        assert scan_list([client], "MATCH", "nothing:*", "COUNT", "500") == []
        assert sorted(k.decode() for k in client.scan_iter(count=100)) == sorted(keys), f"scan_iter through {name}"
        assert sorted(k.decode() for k in client.scan_iter(match="key:1*", count=100)) == ones


def test_a_scan_cursor_continues_through_another_node(keyspace):
    cluster, keys, _ = keyspace
    clients = [cluster[name].client() for name in ("n1", "n2", "n3")]
    for options in (("COUNT", "100"), ("COUNT", "7")):
        found = scan_list(clients, *options)
        assert set(found) == set(keys), (
            f"SCAN {options} through n1, n2, n3 in turn: missing {len(set(keys) - set(found))}, "
            f"extra {sorted(set(found) - set(keys))[:5]}")
        assert len(found) == len(set(found)), f"SCAN {options} through n1, n2, n3 in turn returned duplicates"
    # Started on n3, continued on n2 then n1.
    assert set(scan_list(clients[::-1], "COUNT", "100")) == set(keys)


def test_an_unknown_scan_cursor_is_refused_or_ends_and_never_crashes(keyspace):
    cluster, keys, _ = keyspace
    for name, node in cluster.items():
        client = node.client()
        for cursor in ("12345", "18446744073709551615", "9223372036854775807"):
            try:
                next_cursor, batch = client.execute_command("SCAN", cursor, "COUNT", "100")
            except redis.ResponseError:
                pass
            else:
                # Not refused: an integer cursor, only existing keys, and an iteration that ends.
                seen = {k.decode() for k in batch}
                calls, next_cursor = 0, int(next_cursor)
                while next_cursor != 0:
                    next_cursor, batch = client.execute_command("SCAN", next_cursor, "COUNT", "100")
                    next_cursor = int(next_cursor)
                    seen.update(k.decode() for k in batch)
                    calls += 1
                    assert calls < 10_000, f"SCAN from cursor {cursor} through {name} does not end"
                assert seen <= set(keys), f"SCAN {cursor} through {name} returned keys never written"
            assert client.ping(), f"{name} after SCAN {cursor}"
        with pytest.raises(redis.ResponseError):
            client.execute_command("SCAN", "abc")
        assert client.ping()


def test_randomkey_picks_from_the_whole_cluster(keyspace):
    cluster, keys, _ = keyspace
    every = set(keys)
    for name, node in cluster.items():
        client = node.client()
        for _ in range(20):
            key = client.randomkey()
            assert key is not None and key.decode() in every, f"RANDOMKEY through {name}: {key!r}"
    c1 = cluster["n1"].client()
    pipe = c1.pipeline(transaction=False)
    for _ in range(200):
        pipe.randomkey()
    picked = {k.decode() for k in pipe.execute()}
    assert picked <= every
    coordinating = set(coordinators(cluster["n1"], sorted(picked)).values())
    assert len(coordinating) >= 2, f"200 RANDOMKEY calls through n1 gave only keys coordinated by {coordinating}"


# ---------------------------------------------------------------------------------------------
# Flushes


@pytest.fixture
def cluster(make_node):
    return start_cluster(make_node)


FLUSHES = [("n1", ["FLUSHALL"]), ("n2", ["FLUSHALL", "ASYNC"]), ("n3", ["FLUSHDB"]),
           ("n1", ["FLUSHDB", "SYNC"]), ("n2", ["FLUSHALL", "sync"]), ("n3", ["FLUSHDB", "async"])]


def test_flushall_and_flushdb_through_any_node_empty_the_whole_cluster(cluster):
    names = list(cluster)
    for name, node in cluster.items():
        assert node.client().randomkey() is None, f"RANDOMKEY on an empty cluster through {name}"
    for round_, (through, command) in enumerate(FLUSHES):
        keys = [f"f{round_}:{i}" for i in range(600)]
        # Written through every node, with and without a TTL.
        for index, name in enumerate(names):
            part = keys[index::3]
            write(cluster[name].client(), part[: len(part) // 2])
            write(cluster[name].client(), part[len(part) // 2:], ex=3600)
        until(lambda: replication_idle(cluster.values()), 10, "replication to finish")
        assert readable(cluster["n2"].client(), keys) == sorted(keys)
        reply = cluster[through].client().execute_command(*command)
        assert reply in (True, b"OK", "OK"), f"{' '.join(command)} through {through}: {reply!r}"
        # Once the reply is there, no node serves a key written before.
        when = f"after {' '.join(command)} through {through}"
        assert_empty_cluster(cluster, keys, when)
        for name, node in cluster.items():
            client = node.client()
            assert client.randomkey() is None, f"{when}: RANDOMKEY through {name}"
            assert client.keys("*") == [], f"{when}: KEYS * through {name}"
            assert scan_list([client], "COUNT", "100") == [], f"{when}: SCAN through {name}"
            assert keyspace_line(client)["keys"] == 0, f"{when}: INFO keyspace through {name}"
            assert strata_info(client)["node_keys"] == 0, f"{when}: node_keys of {name}"

    # Bad arguments are errors and flush nothing.
    c2 = cluster["n2"].client()
    write(c2, ["kept:a", "kept:b"])
    for command in (["FLUSHALL", "FOO"], ["FLUSHALL", "ASYNC", "SYNC"], ["FLUSHDB", "FOO"], ["FLUSHDB", "SYNC", "x"]):
        with pytest.raises(redis.ResponseError):
            cluster["n1"].client().execute_command(*command)
    assert c2.dbsize() == 2

    # Writes right after a flush are kept: through every node, read back through every node.
    assert cluster["n3"].client().flushall()
    after = [f"after:{i}" for i in range(300)]
    for index, name in enumerate(names):
        write(cluster[name].client(), after[index::3], value=lambda key: f"new-{key}")
    for name, node in cluster.items():
        values = get_all(node.client(), after)
        missing = [k for k, v in values.items() if v != f"new-{k}".encode()]
        assert missing == [], f"writes after the flush, read through {name}: {len(missing)} wrong, e.g. {missing[:5]}"
        assert node.client().dbsize() == len(after), f"DBSIZE through {name} after writing again"


def test_a_flush_shows_in_info_and_metrics_on_every_node(cluster):
    for name, node in cluster.items():
        assert metric(node, "strata_flushes_total") == 0, f"strata_flushes_total of {name} before any flush"
        assert metric(node, "strata_flush_floor_timestamp_seconds") == 0, f"flush floor metric of {name}"
    write(cluster["n1"].client(), [f"m:{i}" for i in range(100)])
    before = time.time()
    assert cluster["n1"].client().flushall()
    after = time.time()
    floors = {}
    for name, node in cluster.items():
        until(lambda: (metric(node, "strata_flushes_total") or 0) >= 1, 5, f"strata_flushes_total of {name} to advance")
        stamp = metric(node, "strata_flush_floor_timestamp_seconds")
        assert before - 2 <= stamp <= after + 2, f"strata_flush_floor_timestamp_seconds of {name}: {stamp}, flushed at {before}"
        info = strata_info(node.client())
        assert before - 2 <= info["last_flush_time"] <= after + 2, f"last_flush_time of {name}: {info['last_flush_time']}"
        assert info["flush_floor"] not in (0, "0", ""), f"flush_floor of {name}: {info['flush_floor']!r}"
        floors[name] = info["flush_floor"]
    # One cluster-wide flush: one floor.
    assert len(set(floors.values())) == 1, floors

    # A second flush, through another node, advances them again everywhere.
    counts = {name: metric(node, "strata_flushes_total") for name, node in cluster.items()}
    time.sleep(1.1)  # so that the newest flush's second differs
    assert cluster["n3"].client().execute_command("FLUSHDB", "ASYNC")
    for name, node in cluster.items():
        until(lambda: (metric(node, "strata_flushes_total") or 0) >= counts[name] + 1, 5,
              f"strata_flushes_total of {name} to advance after the second flush")
        assert metric(node, "strata_flush_floor_timestamp_seconds") > after, name
        info = strata_info(node.client())
        assert info["last_flush_time"] > after, f"last_flush_time of {name} after the second flush"
        assert info["flush_floor"] != floors[name], f"flush_floor of {name} did not change"


def preload(cluster, keys):
    write(cluster["n1"].client(), keys, value=lambda key: f"old-{key}")
    until(lambda: copies_in_place(cluster, keys[::20]), 10, "both copies of the keys")


def test_a_flush_is_final_after_a_kill_and_a_restart_of_every_node(cluster):
    keys = [f"gone:{i}" for i in range(1500)]
    preload(cluster, keys)
    assert cluster["n1"].client().flushall()
    # n2 dies (SIGKILL) right after the flush and comes back.
    n2 = cluster["n2"]
    n2.kill()
    n2.start()
    assert_empty_cluster(cluster, keys, "after kill -9 and restart of n2")
    for name in ("n1", "n3"):
        assert wait_for_state(cluster[name], "n2", "up")
    assert_empty_cluster(cluster, keys, "after n2 is up again")

    # Keys written after the flush survive what follows; the flushed ones stay gone.
    fresh = [f"fresh:{i}" for i in range(300)]
    write(cluster["n2"].client(), fresh)
    for name, node in cluster.items():
        assert node.stop() == 0, f"{name} did not stop cleanly"
    for node in cluster.values():
        node.start()
    for name, node in cluster.items():
        for other in cluster:
            if other != name:
                assert wait_for_state(node, other, "up"), f"{name} does not see {other} up"
    assert_nothing_readable(cluster, keys, "after restarting every node")
    for name, node in cluster.items():
        client = node.client()
        assert client.dbsize() == len(fresh), f"DBSIZE through {name} after restarting every node"
        assert readable(client, fresh) == sorted(fresh), f"fresh keys through {name}"
        assert strata_info(client)["last_flush_time"] > 0, f"{name} forgot the flush"
    for node in cluster.values():
        repair(node)
    assert_nothing_readable(cluster, keys, "after REPAIR on every node, all restarted")


def test_a_node_down_during_the_flush_knows_of_it_before_serving_and_repair_brings_nothing_back(cluster):
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
    keys = [f"stale:{i}" for i in range(1500)]
    preload(cluster, keys)
    mine = [k for k in keys if "n3" in owners(n1, k)]
    assert len(mine) > 500
    n3.kill()
    assert wait_for_state(n1, "n3", "down") and wait_for_state(n2, "n3", "down")
    assert n1.client().flushall()
    assert_empty_cluster({"n1": n1, "n2": n2}, keys, "after FLUSHALL with n3 down")

    # n3 still holds its copies on disk; the first commands it serves know of the flush. A client
    # connects the moment n3 accepts connections and reads keys n3 coordinates (read from its own
    # copies), while n3 is still starting.
    coordinated = [k for k, c in coordinators(n1, keys).items() if c == "n3"][:200]
    assert len(coordinated) > 100
    first = {}

    def first_reads():
        deadline = time.time() + 30
        while time.time() < deadline and not first:
            try:
                early = redis.Redis(host="127.0.0.1", port=n3.fixed_port, socket_timeout=20,
                                    socket_connect_timeout=0.2)
                first.update(get_all(early, coordinated))
                early.close()
            except redis.ConnectionError:
                time.sleep(0.005)

    reader = threading.Thread(target=first_reads, daemon=True)
    reader.start()
    n3.start()
    reader.join(timeout=40)
    back = sorted(k for k, v in first.items() if v is not None)
    assert first, "no read through n3 as it came back"
    assert back == [], f"{len(back)} flushed keys read through n3 as it came back, e.g. {back[:5]}"
    c3 = n3.client(socket_timeout=20)
    assert c3.dbsize() == 0, "DBSIZE through n3 as soon as it is back"
    back = readable(c3, keys)
    assert back == [], f"{len(back)} flushed keys readable through n3 as soon as it is back, e.g. {back[:5]}"
    assert wait_for_state(n1, "n3", "up") and wait_for_state(n2, "n3", "up")
    assert_empty_cluster(cluster, keys, "after n3 is back")
    # Its own copies are gone too, not merely hidden by the coordinator.
    for key in mine[:100]:
        assert tier_info(c3, key)[0] == "none", f"{key} still stored on n3"

    # Anti-entropy with every live peer, run through each node, brings nothing back.
    for node in cluster.values():
        repair(node)
    assert_empty_cluster(cluster, keys, "after STRATA.CLUSTER REPAIR on every node")
    # And writes after it work through the node that was down.
    write(c3, [f"new:{i}" for i in range(100)])
    for name, node in cluster.items():
        assert node.client().dbsize() == 100, f"DBSIZE through {name}"


def test_hinted_handoff_and_rebalancing_bring_nothing_flushed_back(make_node):
    """Writes a down owner missed are held as hints; a flush that comes after them wins: handing
    them off when the owner returns, and streaming records to a node that joins, bring none back."""
    cluster = start_cluster(make_node)
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
    n3.kill()
    assert wait_for_state(n1, "n3", "down") and wait_for_state(n2, "n3", "down")
    keys = [f"hinted:{i}" for i in range(1000)]
    write(n1.client(), keys)
    assert (metric(n1, "strata_hints_pending") or 0) + (metric(n2, "strata_hints_pending") or 0) > 0, \
        "no hints kept for n3"
    assert n1.client().flushall()
    n3.start()
    for node in (n1, n2):
        assert wait_for_state(node, "n3", "up")
    until(lambda: metric(n1, "strata_hints_pending") == 0 and metric(n2, "strata_hints_pending") == 0, 20,
          "the hints to be handed off")
    for node in cluster.values():
        repair(node)
    assert_empty_cluster(cluster, keys, "after the hints for n3 were handed off")

    kept = [f"kept:{i}" for i in range(200)]
    write(n2.client(), kept)
    n4 = make_node("--node-id", "n4", "--join", f"127.0.0.1:{n1.port}", "--replicas", str(REPLICAS),
                   "--memory", "32MiB", "--disk", "128MiB", name="n4", port=free_port())
    until(lambda: settled([n1, n2, n3, n4], ["n1", "n2", "n3", "n4"]), 60, "n4 to join")
    members = dict(cluster, n4=n4)
    for node in members.values():
        repair(node)
    assert_nothing_readable(members, keys, "after n4 joined")
    for name, node in members.items():
        client = node.client()
        assert client.dbsize() == len(kept), f"DBSIZE through {name} after n4 joined"
        assert readable(client, kept) == sorted(kept), f"keys written after the flush, through {name}"
        assert strata_info(client)["last_flush_time"] > 0, f"{name} does not know of the flush"


# ---------------------------------------------------------------------------------------------
# Deletes while an owner is down


def delete_while_down(cluster, lose_hints):
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
    keys = [f"del:{i}" for i in range(800)]
    preload(cluster, keys)
    doomed = [k for k in keys if "n3" in owners(n1, k)][:250]
    kept = [k for k in keys if k not in set(doomed)]
    n3.kill()
    assert wait_for_state(n1, "n3", "down") and wait_for_state(n2, "n3", "down")
    for client, part in ((n1.client(), doomed[::2]), (n2.client(), doomed[1::2])):
        assert client.delete(*part) == len(part)
    if lose_hints:
        # The hints for n3 are lost: only anti-entropy can tell n3 of the deletes.
        for node in (n1, n2):
            assert node.stop() == 0
            shutil.rmtree(f"{node.data_dir}/hints", ignore_errors=True)
        for node in (n1, n2):
            node.start()
        assert wait_for_state(n1, "n2", "up") and wait_for_state(n2, "n1", "up")
    n3.start()
    for node in (n1, n2):
        assert wait_for_state(node, "n3", "up")
    until(lambda: replication_idle(cluster.values()) and (lose_hints or metric(n1, "strata_hints_pending") == 0
                                                          and metric(n2, "strata_hints_pending") == 0),
          20, "hints to be handed off")
    for node in cluster.values():
        repair(node)
    assert_nothing_readable(cluster, doomed, "deleted while n3 was down, after REPAIR")
    clients = {name: node.client() for name, node in cluster.items()}
    for key in doomed[:100]:
        for name in owners(n1, key):
            assert tier_info(clients[name], key)[0] == "none", f"deleted {key} still stored on {name}"
    for name, client in clients.items():
        assert readable(client, kept) == sorted(kept), f"keys not deleted, through {name}"
        assert client.dbsize() == len(kept), f"DBSIZE through {name}"
    # Still deleted after every node restarts and repairs again.
    for node in cluster.values():
        node.restart()
    for name, node in cluster.items():
        for other in cluster:
            if other != name:
                assert wait_for_state(node, other, "up")
    for node in cluster.values():
        repair(node)
    assert_nothing_readable(cluster, doomed, "deleted while n3 was down, after restarts and REPAIR")


def test_a_key_deleted_while_an_owner_was_down_stays_deleted(cluster):
    delete_while_down(cluster, lose_hints=False)


def test_a_key_deleted_while_an_owner_was_down_stays_deleted_when_its_hints_are_lost(cluster):
    delete_while_down(cluster, lose_hints=True)


# ---------------------------------------------------------------------------------------------
# Join and leave


class Scanner:
    """Full SCANs (COUNT 50) one after another through the given nodes in turn, with a short pause
    between calls, until stopped; records each completed scan's keys and every error."""

    def __init__(self, nodes):
        self.clients = [node.client(socket_timeout=20) for node in nodes]
        self.stop = threading.Event()
        self.scans, self.errors = [], []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        deadline = time.time() + 120
        while not self.stop.is_set() and time.time() < deadline:
            found, cursor, calls = set(), 0, 0
            try:
                while True:
                    cursor, batch = self.clients[calls % len(self.clients)].execute_command(
                        "SCAN", cursor, "COUNT", "50")
                    cursor = int(cursor)
                    found.update(k.decode() for k in batch)
                    calls += 1
                    if cursor == 0 or calls > 10_000:
                        break
                    time.sleep(0.01)
                self.scans.append(found)
            except (redis.RedisError, ValueError) as error:
                self.errors.append(repr(error))
                time.sleep(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=60)


class SpanningScan:
    """One SCAN (COUNT 50), advanced a step at a time by the test, through `nodes` in turn."""

    def __init__(self, nodes):
        self.clients = [node.client(socket_timeout=20) for node in nodes]
        self.cursor, self.calls, self.found, self.done = 0, 0, set(), False

    def step(self, calls=1):
        for _ in range(calls):
            if self.done:
                return
            cursor, batch = self.clients[self.calls % len(self.clients)].execute_command(
                "SCAN", self.cursor, "COUNT", "50")
            self.cursor = int(cursor)
            self.found.update(k.decode() for k in batch)
            self.calls += 1
            self.done = self.cursor == 0

    def finish(self):
        while not self.done:
            self.step()
            assert self.calls < 10_000, "SCAN does not terminate"
        return self.found


def check_scans(scanner, spanning, keys, change):
    every = set(keys)
    assert scanner.errors == [], f"SCAN errors during the {change}: {scanner.errors[:5]}"
    assert scanner.scans, f"no SCAN completed during the {change}"
    for found in scanner.scans:
        assert every <= found, f"a SCAN during the {change} missed {len(every - found)} keys, e.g. {sorted(every - found)[:5]}"
        assert found <= every, f"a SCAN during the {change} returned keys never written: {sorted(found - every)[:5]}"
    assert every <= spanning, f"the SCAN across the {change} missed {len(every - spanning)} keys"
    assert spanning <= every


def check_counts(nodes, keys, change):
    for name, node in nodes.items():
        client = node.client(socket_timeout=30)
        until(lambda: client.dbsize() == len(keys), 10, f"DBSIZE through {name} after the {change} to be {len(keys)}")
        found = sorted(k.decode() for k in client.keys("*"))
        assert len(found) == len(set(found)), f"KEYS through {name} after the {change} has duplicates"
        assert found == sorted(keys), f"KEYS through {name} after the {change}: {len(found)} keys"


def test_scan_dbsize_and_keys_hold_while_a_node_joins_and_another_leaves(make_node):
    cluster = start_cluster(make_node)
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
    keys = [f"move:{i}" for i in range(2000)]
    write(n1.client(), keys)
    until(lambda: replication_idle(cluster.values()), 10, "replication to finish")

    # A fourth node joins while SCANs run: one started before and finished after, and others
    # one after another throughout.
    spanning = SpanningScan([n1, n2, n3])
    with Scanner([n2, n3, n1]) as scanner:
        spanning.step(3)
        assert not spanning.done
        n4 = make_node("--node-id", "n4", "--join", f"127.0.0.1:{n1.port}", "--replicas", str(REPLICAS),
                       "--memory", "32MiB", "--disk", "128MiB", name="n4", port=free_port())
        spanning.step(3)
        until(lambda: settled([n1, n2, n3, n4], ["n1", "n2", "n3", "n4"]), 60, "n4 to join")
        time.sleep(0.5)
        found = spanning.finish()
    check_scans(scanner, found, keys, "join")
    members = {"n1": n1, "n2": n2, "n3": n3, "n4": n4}
    check_counts(members, keys, "join")
    assert set(scan_list([n4.client()], "COUNT", "100")) == set(keys), "a full SCAN through n4"

    # n2 leaves (asked through n1) while SCANs run through the others.
    spanning = SpanningScan([n3, n4, n1])
    with Scanner([n1, n4, n3]) as scanner:
        spanning.step(3)
        assert not spanning.done
        assert n1.client().execute_command("STRATA.CLUSTER", "LEAVE", "n2") == b"OK"
        spanning.step(3)
        n2.process.wait(timeout=60)
        until(lambda: settled([n1, n3, n4], ["n1", "n3", "n4"]), 30, "n2 to be gone everywhere")
        time.sleep(0.5)
        found = spanning.finish()
    check_scans(scanner, found, keys, "leave")
    check_counts({"n1": n1, "n3": n3, "n4": n4}, keys, "leave")


# ---------------------------------------------------------------------------------------------
# A single node keeps Redis' behaviour


def test_a_single_node_keeps_redis_keyspace_behaviour(r):
    assert r.dbsize() == 0
    assert r.randomkey() is None
    assert r.keys("*") == []
    assert r.scan(0) in ((0, []), (b"0", []))
    keys = [f"solo:{i}" for i in range(500)]
    write(r, keys[:400])
    write(r, keys[400:], ex=3600)
    assert r.dbsize() == 500
    assert sorted(k.decode() for k in r.keys("*")) == sorted(keys)
    assert sorted(k.decode() for k in r.keys("solo:1?")) == sorted(f"solo:{i}" for i in range(10, 20))
    found = scan_list([r], "COUNT", "100")
    assert sorted(found) == sorted(keys) and len(found) == len(set(found))
    assert sorted(scan_list([r], "MATCH", "solo:4*")) == sorted(k for k in keys if k.startswith("solo:4"))
    assert scan_list([r], "TYPE", "hash") == []
    line = r.info("keyspace")["db0"]
    assert line["keys"] == 500 and line["expires"] == 100, line
    for _ in range(50):
        assert r.randomkey().decode() in set(keys)
    assert r.flushall()
    assert r.dbsize() == 0
    assert r.randomkey() is None
    assert r.get(keys[0]) is None
    assert r.keys("*") == []
    with pytest.raises(redis.ResponseError):
        r.execute_command("FLUSHALL", "FOO")
    r.set("one", "1")
    assert r.randomkey() == b"one"
    assert r.execute_command("FLUSHDB", "ASYNC")
    assert r.dbsize() == 0


def test_glob_patterns_match_as_redis_does_and_stay_fast(r, redis_server):
    """KEYS and SCAN MATCH against redis-server's own matcher, on random keys and patterns of
    stars, ?, classes, ranges, negation and escapes; then a pattern whose stars a recursive
    matcher takes exponential time on (Redis' own regression test)."""
    ours, (theirs, _) = r, redis_server
    rng = random.Random(16)
    keys = {"".join(rng.choice("ab-]^\\[*?") for _ in range(rng.randint(0, 7))) for _ in range(300)}
    keys.discard("")
    for client in (ours, theirs):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, "1")
        pipe.execute()
    tokens = ["a", "b", "*", "?", "[ab]", "[^a]", "[a-b]", "[b-a]", "\\*", "\\[", "[", "]", "-", "^", "[\\]]", "[a-]", "\\"]
    for _ in range(400):
        pattern = "".join(rng.choice(tokens) for _ in range(rng.randint(1, 6)))
        assert sorted(ours.keys(pattern)) == sorted(theirs.keys(pattern)), f"KEYS {pattern!r}"
    for _ in range(50):
        pattern = "".join(rng.choice(tokens) for _ in range(rng.randint(1, 5)))
        assert sorted(set(ours.scan_iter(match=pattern))) == sorted(set(theirs.scan_iter(match=pattern))), f"MATCH {pattern!r}"
    long_key = "a" * 40
    for client in (ours, theirs):
        client.set(long_key, "1")
    # A matcher that backtracks on every star never answers this (the client's 10 s socket
    # timeout then fails the test).
    nested = "a*" * 20 + "b"
    assert ours.keys(nested) == theirs.keys(nested) == []
    assert ours.ping()


def test_hash_tags_keep_a_multi_key_command_on_one_node(cluster):
    """`{t}` keys share their owners, so MSETNX (all keys on one coordinator) works on them, as
    Redis' own string tests run through a cluster node expect."""
    nodes = list(cluster.values())
    owners_of = {tuple(owners(nodes[0], f"{{t}}key:{i}")) for i in range(50)}
    assert len(owners_of) == 1, owners_of
    assert len({tuple(owners(nodes[0], f"key:{i}")) for i in range(50)}) > 1  # untagged keys spread
    c = nodes[0].client()
    assert c.msetnx({"{t}x1": "a", "{t}y2": "b"}) is True
    assert c.msetnx({"{t}x1": "c", "{t}z3": "d"}) is False
    for node in nodes:
        assert node.client().mget("{t}x1", "{t}y2", "{t}z3") == [b"a", b"b", None]
