"""A client's pipelined commands take effect in the order it sent them, even when some run
elsewhere: reads that go to the disk tier or to another node run concurrently with the reads
after them, but a write waits for every earlier reply."""
import time

from test_cluster import owners, start_cluster, tier


def test_pipelined_reads_of_cold_keys_and_writes_keep_their_order(make_node):
    node = make_node("--memory", "1MiB", "--disk", "256MiB")
    client = node.client()
    keys = [f"cold:{i}" for i in range(3000)]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, key + ":" + "x" * 400)  # ~1.3 MiB: most keys end up on disk only
    pipe.execute()
    time.sleep(1.5)
    assert all(tier(client, key) == "disk" for key in keys[:200])
    pipe = client.pipeline(transaction=False)
    for key in keys[:200]:
        pipe.mget([key])       # a key only on disk: MGET reads it on a disk thread
        pipe.append(key, "+a")  # waits for the read before it
        pipe.get(key)
        pipe.append(key, "+b")
        pipe.strlen(key)
    replies = pipe.execute()
    for i, key in enumerate(keys[:200]):
        old = (key + ":" + "x" * 400).encode()
        got = replies[i * 5:(i + 1) * 5]
        assert got == [[old], len(old) + 2, old + b"+a", len(old) + 4, len(old) + 4], key
    for key in keys[:200]:
        assert client.get(key).endswith(b"+a+b")


def test_pipelined_reads_and_writes_through_a_non_owner_keep_their_order(make_node):
    cluster = start_cluster(make_node)
    n1 = cluster["n1"]
    keys = [k for k in (f"fw:{i}" for i in range(400)) if "n1" not in owners(n1, k)][:100]
    client = n1.client()
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, "v1")
    pipe.execute()
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)          # forwarded, concurrently with the next reads
        pipe.get(key)
        pipe.set(key, "v2")    # waits for both
        pipe.get(key)
        pipe.append(key, "!")
        pipe.get(key)
    replies = pipe.execute()
    for i, key in enumerate(keys):
        assert replies[i * 6:(i + 1) * 6] == [b"v1", b"v1", True, b"v2", 3, b"v2!"], key
