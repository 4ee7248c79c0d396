"""Nodes joining and leaving a running cluster (replicas 2), under a steady client load.

The bar (issue 4): a fourth node joins, then one of the first three leaves, while clients keep
reading and writing through the other nodes: zero client errors, zero missing keys, and
afterwards every key lives on exactly its owners on the new ring. A node that restarts knows
about the changes it saw; a node that left will not start again as a member.
"""
import threading
import time

import redis

from conftest import Node, free_port
from test_cluster import REPLICAS, owners, start_cluster, tier

PRELOADED = 3000


def nodes_view(node):
    """{id: (state, membership)} as `node` sees the cluster, and the epoch."""
    view, epoch = {}, None
    for entry in node.client().execute_command("STRATA.CLUSTER", "NODES"):
        fields = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2]))
        view[fields[b"id"].decode()] = (fields[b"state"].decode(), fields[b"membership"].decode())
        epoch = int(fields[b"epoch"])
    return view, epoch


def wait_until(condition, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def steady_load(clients, errors, stop, written):
    """Writes then reads back through alternating nodes until `stop` (bounded by 120 s), and reads
    preloaded keys; every error or missing value is recorded."""
    deadline = time.time() + 120
    i = 0
    while not stop.is_set() and time.time() < deadline:
        key = f"live:{i % 400}"
        value = f"v{i}".encode()
        try:
            clients[i % len(clients)].set(key, value)
            written[key] = value
            got = clients[(i + 1) % len(clients)].get(key)
            if got is None:
                errors.append(f"read of {key} just written returned nothing")
            old = f"pre:{(i * 7) % PRELOADED}"
            if clients[i % len(clients)].get(old) != old.encode():
                errors.append(f"preloaded {old} missing")
        except redis.RedisError as error:
            errors.append(f"{key}: {error!r}")
        i += 1
    return i


def rebalanced(node):
    status, body = node.http("/metrics")
    assert status == 200
    for line in body.splitlines():
        if line.startswith("strata_rebalance_keys_total"):
            return float(line.split()[-1])
    raise AssertionError("strata_rebalance_keys_total is not exported")


def settled(nodes, members):
    """Every node in `nodes` sees exactly `members`, all normal and up, at one epoch."""
    epochs = set()
    for node in nodes:
        try:
            view, epoch = nodes_view(node)
        except redis.RedisError:
            return False
        if set(view) != set(members) or any(v != ("up", "normal") for v in view.values()):
            return False
        epochs.add(epoch)
    return len(epochs) == 1


def test_a_node_joins_and_another_leaves_under_load_without_errors_or_missing_keys(make_node, tmp_path):
    cluster = start_cluster(make_node)
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
    c1 = n1.client()
    pipe = c1.pipeline(transaction=False)
    for i in range(PRELOADED):
        pipe.set(f"pre:{i}", f"pre:{i}")
    assert all(pipe.execute())
    _, epoch_before = nodes_view(n1)

    errors, written, stop = [], {}, threading.Event()
    load_clients = [n1.client(), n3.client()]
    count = {}
    thread = threading.Thread(target=lambda: count.update(n=steady_load(load_clients, errors, stop, written)))
    thread.start()
    try:
        time.sleep(1)
        # A fourth node joins through n1.
        p4 = free_port()
        n4 = make_node("--node-id", "n4", "--join", f"127.0.0.1:{n1.port}", "--replicas", str(REPLICAS),
                       "--memory", "32MiB", "--disk", "128MiB", name="n4", port=p4)
        wait_until(lambda: settled([n1, n2, n3, n4], ["n1", "n2", "n3", "n4"]), 60, "n4 to join")
        _, epoch_joined = nodes_view(n4)
        assert epoch_joined >= epoch_before + 2  # admitted as joining, then normal
        assert rebalanced(n4) > 0, "n4 joined without receiving any record"
        time.sleep(1)

        # n2 leaves (asked through n1); its ranges go to their new owners, then it exits.
        assert n1.client().execute_command("STRATA.CLUSTER", "LEAVE", "n2") == b"OK"
        n2.process.wait(timeout=60)
        assert n2.process.returncode == 0, "".join(n2.log_lines[-20:])
        wait_until(lambda: settled([n1, n3, n4], ["n1", "n3", "n4"]), 30, "n2 to be gone everywhere")
        time.sleep(1)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert count.get("n", 0) > 100, "the load barely ran"
    print(f"load: {count['n']} rounds; n4 received {rebalanced(n4):.0f} records on joining")
    assert errors == [], errors[:10]

    remaining = {"n1": n1, "n3": n3, "n4": n4}
    # Every key, preloaded or written under load, reads back through every remaining node.
    preloaded = [f"pre:{i}" for i in range(PRELOADED)]
    for name, node in remaining.items():
        client = node.client()
        for start in range(0, PRELOADED, 500):
            chunk = preloaded[start:start + 500]
            assert client.mget(chunk) == [k.encode() for k in chunk], f"read through {name}"
        live = sorted(written)
        assert client.mget(live) == [written[k] for k in live], f"live keys through {name}"

    # Once the clean-up after the change ran, each key is on exactly its owners on the new ring.
    clients = {name: node.client() for name, node in remaining.items()}
    sample = preloaded[::15] + sorted(written)[::10]

    def on_exactly_owners():
        for key in sample:
            expected = set(owners(n1, key))
            holders = {name for name, client in clients.items() if tier(client, key) != "none"}
            if len(expected) != REPLICAS or holders != expected:
                return False
        return True

    wait_until(on_exactly_owners, 30, "every key to be on exactly its owners")
    assert any("n4" in owners(n1, key) for key in sample), "the new node owns nothing"

    # A restarted node remembers the changes (the membership is saved in its data directory),
    # even though its --peers still lists n2 and not n4.
    n3.restart()
    wait_until(lambda: settled([n1, n3, n4], ["n1", "n3", "n4"]), 30, "restarted n3 to agree")
    assert n3.client().get("pre:1") == b"pre:1"

    # A member restarted with only its id comes back from its saved membership.
    n4.stop()
    n4.extra = ["--node-id", "n4", "--replicas", str(REPLICAS), "--memory", "32MiB", "--disk", "128MiB"]
    n4.start()
    wait_until(lambda: settled([n1, n3, n4], ["n1", "n3", "n4"]), 30, "n4 restarted with only --node-id to rejoin")
    assert n4.client().get("pre:2") == b"pre:2"

    # The node that left does not come back as a member by mistake.
    again = Node(tmp_path / "n2", *n2.extra, port=n2.fixed_port)
    try:
        again.start(timeout=20)
        raise AssertionError("a node that left started again without --join")
    except RuntimeError as error:
        assert "left the cluster" in str(error)


def test_membership_changes_are_validated(make_node):
    cluster = start_cluster(make_node)
    c1 = cluster["n1"].client()
    for args, message in [
        (("LEAVE", "nobody"), "not a member"),
        (("JOIN", "n9", "nowhere"), "not host:port"),
        (("JOIN", "bad id", "127.0.0.1:1"), "not a node id"),
        (("JOIN", "n2", "127.0.0.1:1"), "already exists"),
    ]:
        try:
            c1.execute_command("STRATA.CLUSTER", *args)
            raise AssertionError(f"{args} was accepted")
        except redis.ResponseError as error:
            assert message in str(error), (args, str(error))
    # Three nodes with two replicas: one may leave; a second would leave fewer than --replicas.
    assert c1.execute_command("STRATA.CLUSTER", "EPOCH") == 0
    cluster["n3"].client().execute_command("STRATA.CLUSTER", "LEAVE")
    cluster["n3"].process.wait(timeout=60)
    wait_until(lambda: settled([cluster["n1"], cluster["n2"]], ["n1", "n2"]), 30, "n3 to be gone")
    try:
        c1.execute_command("STRATA.CLUSTER", "LEAVE", "n2")
        raise AssertionError("a leave below --replicas nodes was accepted")
    except redis.ResponseError as error:
        assert "would remain" in str(error)


def test_a_dead_node_is_forgotten_and_its_keys_are_copied_again(make_node):
    cluster = start_cluster(make_node)
    n1, n2, n3 = cluster["n1"], cluster["n2"], cluster["n3"]
    c1 = n1.client()
    keys = [f"fg:{i}" for i in range(600)]
    pipe = c1.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, key)
    pipe.execute()
    time.sleep(0.5)
    n3.kill()
    wait_until(lambda: nodes_view(n1)[0]["n3"][0] == "down", 10, "n3 to be down")
    try:
        c1.execute_command("STRATA.CLUSTER", "LEAVE", "n3")
        raise AssertionError("a dead node was asked to leave")
    except redis.ResponseError as error:
        assert "FORGET" in str(error)
    try:
        c1.execute_command("STRATA.CLUSTER", "FORGET", "n2")
        raise AssertionError("a live node was forgotten")
    except redis.ResponseError as error:
        assert "is up" in str(error)
    assert c1.execute_command("STRATA.CLUSTER", "FORGET", "n3") == b"OK"
    wait_until(lambda: settled([n1, n2], ["n1", "n2"]), 20, "n3 to be forgotten everywhere")
    # Two nodes, two replicas: every key ends up on both, copied from whichever node had it.
    clients = {"n1": n1.client(), "n2": n2.client()}
    wait_until(lambda: all(tier(c, k) != "none" for c in clients.values() for k in keys), 30,
               "every key to be on both remaining nodes")
    for client in clients.values():
        assert client.mget(keys) == [k.encode() for k in keys]
