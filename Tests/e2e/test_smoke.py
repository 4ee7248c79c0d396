import os


def test_ping_set_get(r):
    assert r.ping()
    assert r.set("k", "v")
    assert r.get("k") == b"v"


def test_health_and_ready(node):
    assert node.http("/health") == (200, "ok\n")
    status, body = node.http("/ready")
    assert status == 200 and '"ready":true' in body


def test_event_loops_default_to_the_cores_the_process_may_use(make_node):
    """A node pinned to one core (taskset, numactl) runs one event loop, not one per machine core."""
    cores = len(os.sched_getaffinity(0))
    pinned = make_node("--memory", "16MiB", "--disk", "64MiB", name="pinned", cpus={min(os.sched_getaffinity(0))})
    assert pinned.client().info("server")["io_threads"] == 1
    free = make_node("--memory", "16MiB", "--disk", "64MiB", name="free")
    assert free.client().info("server")["io_threads"] == cores
    threads = [open(f"/proc/{pinned.pid}/task/{t}/comm").read().strip() for t in os.listdir(f"/proc/{pinned.pid}/task")]
    assert sum(1 for t in threads if t.startswith("NIO-ELT")) == 1, threads
