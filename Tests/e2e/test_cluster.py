"""A three-node cluster with two replicas per key, on loopback: replication, routing through any
node, and a node that dies (SIGKILL) or hangs (SIGSTOP) while clients keep working.

Nodes joining and leaving are in test_membership.py, anti-entropy by range digests in
test_antientropy.py.
"""
import signal
import threading
import time

import pytest
import redis

from conftest import free_port

REPLICAS = 2


@pytest.fixture
def cluster(make_node):
    return start_cluster(make_node)


def start_cluster(make_node, *extra):
    ports = {f"n{i}": free_port() for i in (1, 2, 3)}
    peers = ",".join(f"{name}=127.0.0.1:{port}" for name, port in ports.items())
    nodes = {}
    for name, port in ports.items():
        nodes[name] = make_node("--node-id", name, "--peers", peers, "--replicas", str(REPLICAS),
                                "--memory", "32MiB", "--disk", "128MiB", *extra, name=name, port=port)
    # Nodes started earlier saw the later ones refuse connections: wait until all agree.
    for name, node in nodes.items():
        for other in nodes:
            if other != name:
                assert wait_for_state(node, other, "up")
    return nodes


def owners(node, key):
    return [o.decode() for o in node.client().execute_command("STRATA.CLUSTER", "OWNERS", key)]


def keys_with_different_coordinators(node):
    """Two untagged keys whose coordinators differ (multi-key commands on them get CROSSSLOT)."""
    keys = [f"key:{i}" for i in range(50)]
    coordinator = {key: owners(node, key)[0] for key in keys}
    return keys[0], next(key for key in keys if coordinator[key] != coordinator[keys[0]])


def tier(client, key):
    reply = client.execute_command("STRATA.TIER", key)
    if isinstance(reply, dict):
        return reply[b"tier"].decode()
    return dict(zip(reply[::2], reply[1::2]))[b"tier"].decode()


def wait_for_state(node, peer, state, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        for entry in node.client().execute_command("STRATA.CLUSTER", "NODES"):
            fields = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2]))
            if fields[b"id"] == peer.encode() and fields[b"state"] == state.encode():
                return True
        time.sleep(0.1)
    return False


def test_writes_through_one_node_read_through_every_node_and_live_on_their_owners(cluster):
    """The issue's bar: 10,000 keys written through one node read back through every node."""
    keys = [f"user:{i}" for i in range(10_000)]
    writer = cluster["n1"].client()
    pipe = writer.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, f"value-of-{key}")
    assert all(pipe.execute())
    time.sleep(0.5)  # replication to the second owner runs behind the acknowledgement (quorum 1)
    for name, node in cluster.items():
        client = node.client()
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            assert client.mget(chunk) == [f"value-of-{k}".encode() for k in chunk], f"read through {name}"
    # Each key is stored on exactly its two owners: STRATA.TIER reports only the node's own copy.
    clients = {name: node.client() for name, node in cluster.items()}
    sample = keys[::10]
    for key in sample:
        expected = set(owners(cluster["n1"], key))
        assert len(expected) == REPLICAS
        holders = {name for name, client in clients.items() if tier(client, key) != "none"}
        assert holders == expected, key
    # Every node agrees on the owners.
    for key in sample[:50]:
        assert owners(cluster["n2"], key) == owners(cluster["n3"], key) == owners(cluster["n1"], key)


def test_deletes_and_expiry_replicate(cluster):
    c1, c2, c3 = (cluster[n].client() for n in ("n1", "n2", "n3"))
    for i in range(200):
        c1.set(f"k{i}", "v", ex=1000)
    time.sleep(0.3)
    assert c2.delete(*[f"k{i}" for i in range(100)]) == 100
    time.sleep(0.3)
    for client in (c1, c2, c3):
        assert client.exists(*[f"k{i}" for i in range(100)]) == 0
        assert client.exists(*[f"k{i}" for i in range(100, 200)]) == 100
        assert 990 <= client.ttl("k150") <= 1000
    # Each owner's own copy has the TTL too.
    key = "k150"
    for name in owners(cluster["n1"], key):
        assert 990 <= cluster[name].client().ttl(key) <= 1000


def run_load(clients, seconds, errors, stop):
    """Writes and reads through the given clients until `stop` or `seconds`; records failures."""
    deadline = time.time() + seconds
    i = 0
    written = {}
    while time.time() < deadline and not stop.is_set():
        client = clients[i % len(clients)]
        key = f"load:{i % 500}"
        try:
            client.set(key, f"v{i}")
            written[key] = f"v{i}".encode()
            got = clients[(i + 1) % len(clients)].get(key)
            if got is None:
                errors.append(f"read of {key} returned nothing")
        except redis.RedisError as error:
            errors.append(f"{key}: {error}")
        i += 1
    return written


def test_sigkill_of_a_node_loses_no_key_and_stops_no_client(cluster):
    keys = [f"durable:{i}" for i in range(1000)]
    c1 = cluster["n1"].client()
    pipe = c1.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, key)
    pipe.execute()
    time.sleep(0.5)

    errors = []
    stop = threading.Event()
    survivors = [cluster["n1"].client(), cluster["n2"].client()]
    result = {}
    thread = threading.Thread(target=lambda: result.update(run_load(survivors, 4, errors, stop)))
    thread.start()
    time.sleep(1)
    cluster["n3"].kill()
    thread.join(timeout=30)
    assert errors == [], errors[:5]

    # Every key written before the kill is still readable through either survivor.
    for client in survivors:
        for start in range(0, len(keys), 250):
            chunk = keys[start:start + 250]
            assert client.mget(chunk) == [k.encode() for k in chunk]
    assert wait_for_state(cluster["n1"], "n3", "down")
    # And the load's last writes read back.
    for key, value in list(result.items())[:100]:
        assert survivors[0].get(key) == value


def test_a_hung_peer_is_treated_as_down_and_comes_back(cluster):
    c1 = cluster["n1"].client()
    keys = [f"hang:{i}" for i in range(200)]
    for key in keys:
        c1.set(key, key)
    time.sleep(0.3)
    hung = cluster["n3"]
    hung.process.send_signal(signal.SIGSTOP)
    try:
        started = time.time()
        # Reads of keys n3 owns first fall over to their other owner; none waits long.
        for key in keys:
            t = time.time()
            assert c1.get(key) == key.encode()
            assert time.time() - t < 3, f"{key} took {time.time() - t:.1f}s"
        assert wait_for_state(cluster["n1"], "n3", "down", seconds=10)
        assert time.time() - started < 15
        # Writes keep working while it hangs.
        for i in range(50):
            assert c1.set(f"during-hang:{i}", "x")
    finally:
        hung.process.send_signal(signal.SIGCONT)
    assert wait_for_state(cluster["n1"], "n3", "up", seconds=10)
    assert c1.get("hang:1") == b"hang:1"


def test_cluster_flags_are_validated(tmp_path):
    import subprocess
    from conftest import strata_binary
    cases = [
        ["--peers", "n2=127.0.0.1:1"],  # no --node-id
        ["--node-id", "n1", "--peers", "garbage"],
        ["--node-id", "n1", "--peers", "n2=127.0.0.1:7000", "--replicas", "5"],
        # --peers lists every node, this one included: two nodes cannot hold three copies.
        ["--node-id", "n1", "--peers", "n1=127.0.0.1:7001,n2=127.0.0.1:7000", "--replicas", "3"],
        ["--node-id", "n1", "--peers", "n2=127.0.0.1:7000", "--write-quorum", "3"],
    ]
    for extra in cases:
        result = subprocess.run([strata_binary(), "serve", "--data-dir", str(tmp_path / "x"), "--port", "0",
                                 "--http-port", "0"] + extra, capture_output=True, text=True, timeout=30)
        assert result.returncode != 0, extra
        assert result.stderr.strip().startswith("strata:"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def tier_info(client, key):
    reply = client.execute_command("STRATA.TIER", key)
    fields = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))
    return fields[b"tier"].decode(), int(fields[b"value_bytes"])


def test_a_restarted_node_catches_up_by_handoff_and_repair(cluster):
    keys = [f"item:{i}" for i in range(600)]
    c1 = cluster["n1"].client()
    pipe = c1.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, "old")
    pipe.execute()
    time.sleep(0.5)

    n3 = cluster["n3"]
    n3.kill()
    assert wait_for_state(cluster["n1"], "n3", "down")
    # While n3 is down: overwrite half the keys, delete some, add new ones.
    pipe = c1.pipeline(transaction=False)
    for key in keys[:300]:
        pipe.set(key, "new-value")
    for key in keys[300:350]:
        pipe.delete(key)
    new_keys = [f"fresh:{i}" for i in range(200)]
    for key in new_keys:
        pipe.set(key, "fresh-value")
    pipe.execute()

    n3.start()
    assert wait_for_state(cluster["n1"], "n3", "up")
    expected = {k: len("new-value") for k in keys[:300]}
    expected.update({k: len("old") for k in keys[350:]})
    expected.update({k: len("fresh-value") for k in new_keys})
    deleted = keys[300:350]
    clients = {name: node.client() for name, node in cluster.items()}

    def consistent():
        for key, length in expected.items():
            owners_of_key = set(owners(cluster["n1"], key))
            for name, client in clients.items():
                where, size = tier_info(client, key)
                if (name in owners_of_key) != (where != "none"):
                    return f"{key} on {name}: {where}"
                if where != "none" and size != length:
                    return f"{key} on {name}: {size} bytes, expected {length}"
        for key in deleted:
            for name, client in clients.items():
                if tier_info(client, key)[0] != "none":
                    return f"deleted {key} still on {name}"
        return None

    deadline = time.time() + 30
    problem = consistent()
    while problem and time.time() < deadline:
        time.sleep(0.5)
        problem = consistent()
    assert problem is None, problem
    # And the restarted node serves the latest values itself.
    c3 = n3.client(socket_timeout=20)
    assert c3.get(keys[0]) == b"new-value"
    assert c3.get(keys[310]) is None
    assert c3.get(new_keys[5]) == b"fresh-value"


@pytest.mark.parametrize("protocol", [2, 3])
def test_forwarded_replies_speak_the_clients_protocol(cluster, protocol):
    """A reply relayed from another node must be in the client's RESP version (a RESP3 client
    waits forever on a RESP2-only shape it does not expect)."""
    writer = cluster["n1"].client()
    for i in range(60):
        writer.set(f"p:{i}", f"v{i}")
    for name, node in cluster.items():
        client = node.client(protocol=protocol, socket_timeout=5)
        for i in range(60):
            assert client.get(f"p:{i}") == f"v{i}".encode()
            assert client.get(f"p:missing:{i}") is None
        assert client.mget([f"p:{i}" for i in range(10)] + ["p:none"])[-1] is None


def hints_pending(node):
    _, body = node.http("/metrics")
    for line in body.splitlines():
        if line.startswith("strata_hints_pending "):
            return float(line.split()[1])
    return None


def test_hints_survive_a_coordinator_restart(cluster):
    n1, n3 = cluster["n1"], cluster["n3"]
    n3.kill()
    assert wait_for_state(n1, "n3", "down")
    c1 = n1.client()
    # Keys n1 coordinates and n3 also owns: n1 keeps a hint for each.
    mine = [k for k in (f"hinted:{i}" for i in range(400)) if owners(n1, k) == ["n1", "n3"]][:40]
    assert mine, "no key with owners n1, n3 among 400"
    for key in mine:
        c1.set(key, "while-n3-was-down")
    assert hints_pending(n1) >= len(mine)
    assert n1.stop() == 0
    n1.start()
    assert hints_pending(n1) >= len(mine)  # reloaded from disk
    n3.start()
    deadline = time.time() + 20
    while time.time() < deadline and hints_pending(n1) != 0:
        time.sleep(0.2)
    assert hints_pending(n1) == 0
    for key in mine:
        assert tier_info(n3.client(), key)[1] == len("while-n3-was-down")


def test_write_quorum_of_two_waits_for_the_second_owner(make_node):
    cluster = start_cluster(make_node, "--write-quorum", "2")
    n1 = cluster["n1"]
    c1 = n1.client()
    keys = [f"q:{i}" for i in range(300)]
    for key in keys:
        assert c1.set(key, "v")
    # With quorum 2 the second owner has every acknowledged write the moment the reply arrives.
    for key in keys[:100]:
        for name in owners(n1, key):
            assert tier_info(cluster[name].client(), key)[0] != "none", (key, name)
    cluster["n3"].kill()
    assert wait_for_state(n1, "n3", "down")
    with_n3 = [k for k in keys if "n3" in owners(n1, k)]
    without_n3 = [k for k in keys if "n3" not in owners(n1, k)]
    assert with_n3 and without_n3
    # Keys whose other owner is down cannot reach a quorum of two: a clear error, not a hang.
    with pytest.raises(redis.ResponseError, match="write quorum of 2 not reached"):
        c1.set(with_n3[0], "x")
    for key in without_n3[:50]:
        assert c1.set(key, "still-fine")


def test_malformed_multi_key_commands_get_errors_not_crashes(cluster):
    c2 = cluster["n2"].client()
    for command in (["MSET", "a", "1", "b"], ["MSETNX", "a", "1", "b"], ["MSET", "a"]):
        with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
            c2.execute_command(*command)
    # Spread over nodes: split and combined.
    assert c2.execute_command("MSET", *[x for i in range(30) for x in (f"m:{i}", str(i))])
    assert c2.mget([f"m:{i}" for i in range(30)]) == [str(i).encode() for i in range(30)]
    assert c2.exists(*[f"m:{i}" for i in range(30)], "m:none") == 30
    assert c2.delete(*[f"m:{i}" for i in range(10)]) == 10
    with pytest.raises(redis.ResponseError, match="one node of the cluster"):
        c2.execute_command("MSETNX", *[x for i in range(30) for x in (f"nx:{i}", "v")])
    for node in cluster.values():
        assert node.client().ping()


def tier_version(client, key):
    reply = client.execute_command("STRATA.TIER", key)
    fields = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))
    return fields[b"tier"].decode(), int(fields[b"value_bytes"]), fields[b"version"].decode()


def test_concurrent_writes_through_different_nodes_converge_on_every_replica(cluster):
    """Writers on all three nodes race on the same keys while one node hangs and comes back:
    afterwards both owners of each key hold the same version and value (last writer wins)."""
    keys = [f"race:{i}" for i in range(20)]
    errors, stop = [], threading.Event()

    def writer(name):
        client = cluster[name].client(socket_timeout=5)
        i = 0
        while not stop.is_set() and i < 5000:
            key = keys[i % len(keys)]
            try:
                client.set(key, f"{name}-{i}-" + "x" * (i % 17))
            except redis.RedisError as error:
                errors.append(f"{name} {key}: {error}")
            i += 1

    threads = [threading.Thread(target=writer, args=(name,)) for name in cluster]
    for thread in threads:
        thread.start()
    time.sleep(1)
    cluster["n2"].process.send_signal(signal.SIGSTOP)
    time.sleep(3)
    cluster["n2"].process.send_signal(signal.SIGCONT)
    time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    # Writes through the hung node itself fail while it hangs; the others carry on.
    assert not any(e.startswith(("n1", "n3")) and "Timeout" not in e for e in errors), errors[:5]
    clients = {name: node.client() for name, node in cluster.items()}
    assert wait_for_state(cluster["n1"], "n2", "up")

    def converged():
        for key in keys:
            copies = {tier_version(clients[name], key) for name in owners(cluster["n1"], key)}
            if len(copies) != 1 or next(iter(copies))[0] == "none":
                return False
        return True

    deadline = time.time() + 20
    while time.time() < deadline and not converged():
        time.sleep(0.3)
    assert converged(), {k: [tier_version(clients[n], k) for n in owners(cluster["n1"], k)] for k in keys[:3]}
    # And every node reads the same value.
    for key in keys:
        assert len({clients[name].get(key) for name in clients}) == 1


def test_write_quorum_two_under_concurrent_writes_through_every_node(make_node):
    """Every node forwards writes to the others while each waits for replicas' acknowledgements:
    no write may wait on another's reply (a cycle of nodes each forwarding to the next used to
    stall until the peer timeout and fail the quorum)."""
    cluster = start_cluster(make_node, "--write-quorum", "2")
    errors, stop, done = [], threading.Event(), []

    def writer(name, index):
        client = cluster[name].client(socket_timeout=10)
        i = 0
        while not stop.is_set():
            pipe = client.pipeline(transaction=False)
            for j in range(20):
                pipe.set(f"wq:{(i * 20 + j) % 300}", f"{name}-{index}-{i}")
            try:
                replies = pipe.execute(raise_on_error=False)
                errors.extend(str(r) for r in replies if isinstance(r, Exception))
            except redis.RedisError as error:
                errors.append(str(error))
            i += 1
        done.append(i)

    threads = [threading.Thread(target=writer, args=(name, k)) for name in cluster for k in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(4)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [], errors[:5]
    assert sum(done) > 12, "the writers barely ran"
    for name in cluster:
        for other in cluster:
            if other != name:
                assert wait_for_state(cluster[name], other, "up", seconds=1), f"{name} sees {other} down"


def test_a_write_carries_its_coordinators_node_id_in_its_version(cluster):
    """Versions are (clock, node): two nodes' writes of one key in the same clock tick are
    ordered by node id, so each node must stamp its own (a version's node was 0 everywhere)."""
    stamps = {}
    for i in range(60):
        key = f"stamp:{i}"
        cluster["n1"].client().set(key, "v")
        coordinator = owners(cluster["n1"], key)[0]
        _, _, version = tier_version(cluster[coordinator].client(), key)
        stamps.setdefault(coordinator, set()).add(version.rsplit("@", 1)[1])
    assert len(stamps) == 3, f"60 keys should have every node as a coordinator: {stamps}"
    node_ids = [ids.pop() for ids in stamps.values() if len(ids) == 1]
    assert len(node_ids) == 3, f"each coordinator stamps one node id: {stamps}"
    assert len(set(node_ids)) == 3 and "0" not in node_ids, f"distinct, non-zero node ids: {stamps}"
