"""Pub/sub side by side with redis-server 7.0: the exact bytes of subscribe, unsubscribe and
message replies in RESP2 and RESP3, what a subscribed RESP2 connection may send, PUBLISH's
counts and PUBSUB's introspection; then what only Strata does: a subscriber that does not read
is closed at client-output-buffer-limit pubsub (and counted), and in a cluster a PUBLISH
through any node reaches every node's subscribers once each, in the order it was sent."""
import socket
import threading
import time
import urllib.request

import pytest
import redis

from test_cluster import start_cluster
from test_commands import pair, redis_port, run_script, strata  # noqa: F401 (module fixtures)


def encode(*args):
    parts = [f"*{len(args)}\r\n".encode()]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


class Raw:
    """A plain connection that sends commands and reads whatever arrives."""

    def __init__(self, port, protocol=2):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if protocol == 3:
            self.send("HELLO", "3")
            self.read_until(b"\r\n", settle=0.3)

    def send(self, *args):
        self.sock.sendall(encode(*args))

    def read_until(self, marker, settle=0.0, limit=5):
        data, deadline = b"", time.monotonic() + limit
        while marker not in data and time.monotonic() < deadline:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        if settle:
            self.sock.settimeout(settle)
            try:
                while True:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except socket.timeout:
                pass
            self.sock.settimeout(5)
        return data

    def close(self):
        self.sock.close()


def conversation(port, protocol, steps):
    """Runs `steps` (each: 'sub' or 'pub' side, command) on a subscriber and a publisher
    connection, returning every byte each step brought to the subscriber and publisher."""
    sub, pub = Raw(port, protocol), Raw(port, protocol)
    transcript = []
    try:
        for side, command in steps:
            (sub if side == "sub" else pub).send(*command)
            time.sleep(0.05)
            got_sub = sub.read_until(b"", settle=0.15)
            got_pub = pub.read_until(b"", settle=0.05) if side == "pub" else b""
            transcript.append((side, command, got_sub, got_pub))
    finally:
        sub.close()
        pub.close()
    return transcript


STEPS = [
    ("sub", ["SUBSCRIBE", "news", "sport"]),
    ("sub", ["SUBSCRIBE", "news"]),
    ("sub", ["PSUBSCRIBE", "n*", "s?ort"]),
    ("sub", ["SSUBSCRIBE", "shard-a"]),
    ("pub", ["PUBLISH", "news", "hello"]),
    ("pub", ["PUBLISH", "sport", "goal"]),
    ("pub", ["PUBLISH", "nothing", "x"]),
    ("pub", ["PUBLISH", "weather", "rain"]),
    ("pub", ["SPUBLISH", "shard-a", "s-msg"]),
    ("pub", ["SPUBLISH", "news", "not-for-plain"]),
    ("pub", ["PUBSUB", "NUMSUB", "news", "sport", "none"]),
    ("pub", ["PUBSUB", "NUMPAT"]),
    ("pub", ["PUBSUB", "SHARDNUMSUB", "shard-a", "news"]),
    ("pub", ["PUBSUB", "SHARDCHANNELS"]),
    ("pub", ["PUBSUB", "CHANNELS", "sp*"]),
    ("sub", ["PING"]),
    ("sub", ["PING", "hi"]),
    ("sub", ["GET", "k"]),
    ("sub", ["UNSUBSCRIBE", "sport", "never"]),
    ("sub", ["PUNSUBSCRIBE"]),
    ("sub", ["PUNSUBSCRIBE"]),
    ("sub", ["SUNSUBSCRIBE", "shard-a"]),
    ("sub", ["UNSUBSCRIBE"]),
    ("sub", ["UNSUBSCRIBE"]),
    ("sub", ["PING"]),
    ("sub", ["SUBSCRIBE", "again"]),
    ("sub", ["RESET"]),
    ("pub", ["PUBLISH", "again", "after-reset"]),
    ("pub", ["PUBSUB", "NUMSUB", "again"]),
    ("pub", ["PUBSUB", "HELP", "x"]),
    ("pub", ["PUBSUB", "NOPE"]),
    ("pub", ["PUBLISH", "only-one-arg"]),
    ("sub", ["SUBSCRIBE"]),
]


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_conversation_bytes_match_redis(strata, redis_port, protocol):
    theirs = conversation(redis_port, protocol, STEPS)
    ours = conversation(strata.port, protocol, STEPS)
    differences = [
        f"{step[0]} {step[1]}:\n    redis:  {t[2:]!r}\n    strata: {o[2:]!r}"
        for step, t, o in zip(STEPS, theirs, ours) if t[2:] != o[2:]
    ]
    assert not differences, f"{len(differences)} steps differ from Redis:\n" + "\n".join(differences)


def test_closing_a_connection_drops_its_subscriptions(strata):
    client = redis.Redis(port=strata.port)
    sub = Raw(strata.port)
    sub.send("SUBSCRIBE", "gone")
    sub.read_until(b":1\r\n")
    assert client.pubsub_numsub("gone") == [(b"gone", 1)]
    listed = [c for c in client.client_list() if c["sub"] == "1"]
    assert listed and listed[0]["flags"] == "P"
    sub.close()
    deadline = time.monotonic() + 5
    while client.pubsub_numsub("gone") != [(b"gone", 0)] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.pubsub_numsub("gone") == [(b"gone", 0)]
    assert client.publish("gone", "x") == 0


def test_redis_py_pubsub_and_a_message_per_publish(strata):
    client = redis.Redis(port=strata.port)
    p = client.pubsub()
    p.subscribe("orders")
    p.psubscribe("ord*")
    for message in ("m1", "m2", "m3"):
        assert client.publish("orders", message) == 2
    received = []
    deadline = time.monotonic() + 5
    while len(received) < 8 and time.monotonic() < deadline:
        m = p.get_message(timeout=0.5)
        if m:
            received.append((m["type"], m["data"]))
    assert received[:2] == [("subscribe", 1), ("psubscribe", 2)]
    assert [d for t, d in received[2:] if t == "message"] == [b"m1", b"m2", b"m3"]
    assert [d for t, d in received[2:] if t == "pmessage"] == [b"m1", b"m2", b"m3"]
    p.close()


def metric(node, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/metrics", timeout=5).read().decode()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{")]
    return sum(values)


def test_a_subscriber_that_does_not_read_is_closed_at_the_output_limit(make_node):
    node = make_node()
    client = node.client()
    assert client.config_set("client-output-buffer-limit", "pubsub 256kb 0 0")
    sub = Raw(node.port)
    sub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sub.send("SUBSCRIBE", "firehose")
    sub.read_until(b":1\r\n")
    payload = "x" * 16384
    closed = False
    for _ in range(2000):  # up to 32 MB, far past the limit; stops once the subscriber is gone
        if client.publish("firehose", payload) == 0:
            closed = True
            break
    assert closed, "a subscriber that never reads was never closed"
    assert metric(node, "strata_pubsub_output_limit_disconnections_total") == 1
    assert client.pubsub_numsub("firehose") == [(b"firehose", 0)]
    # The node and its other clients carry on.
    assert client.set("after", "ok") and client.get("after") == b"ok"
    sub.close()


def test_config_client_output_buffer_limit_matches_redis(pair):
    theirs, ours = pair
    script = [
        ["CONFIG", "GET", "client-output-buffer-limit"],
        ["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 100kb 10"],
        ["CONFIG", "GET", "client-output-buffer-limit"],
        ["CONFIG", "SET", "client-output-buffer-limit", "foo 1 1 1"],
        ["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1 1"],
        ["CONFIG", "SET", "client-output-buffer-limit", "pubsub x 1 1"],
        ["CONFIG", "SET", "client-output-buffer-limit", "pubsub 33554432 8388608 60"],
        ["CONFIG", "GET", "client-output-buffer-limit"],
    ]
    differences = run_script(theirs, ours, script)
    assert not differences, "\n".join(differences)


def test_publish_through_any_node_reaches_every_nodes_subscribers_in_order(make_node):
    cluster = start_cluster(make_node)
    nodes = [cluster["n1"], cluster["n2"], cluster["n3"]]
    subscribers = []
    for node in nodes:
        sub = Raw(node.port)
        sub.send("SUBSCRIBE", "events")
        sub.read_until(b":1\r\n")
        subscribers.append(sub)
    publisher = nodes[0].client()
    # Each PUBLISH counts every node's receivers.
    assert publisher.publish("events", "first") == 3
    count = 300
    pipe = publisher.pipeline(transaction=False)
    for i in range(count):
        pipe.publish("events", f"m{i}")
    assert pipe.execute() == [3] * count
    expected = [b"first"] + [f"m{i}".encode() for i in range(count)]
    for node, sub in zip(nodes, subscribers):
        data = sub.read_until(f"m{count - 1}\r\n".encode(), settle=0.3, limit=20)
        messages = data.split(b"\r\n")[6::7]
        assert messages == expected, (node.port, messages[:5], len(messages))
    # Introspection answers for the cluster.
    assert nodes[1].client().pubsub_numsub("events") == [(b"events", 3)]
    assert nodes[2].client().pubsub_channels() == [b"events"]
    for sub in subscribers:
        sub.close()
