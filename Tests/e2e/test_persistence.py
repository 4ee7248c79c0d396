"""Persistence end to end: what survives a restart, a crash, a full disk tier, and what a node
refuses at startup. Every test drives a real `strata` process over loopback.

A graceful stop must exit 0. Where a test also checks data after a restart, the exit code is
asserted last, so that a bad exit code and lost data show up as separate findings.
"""
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
import redis

from conftest import Node, strata_binary

MiB = 1 << 20


# ---------------------------------------------------------------------------------------------
# Helpers


def tier(client, key):
    """STRATA.TIER as a dict of str -> str|int, whatever shape the client library returns
    (a flat RESP2 list, or a map if the connection negotiated RESP3)."""
    reply = client.execute_command("STRATA.TIER", key)
    if isinstance(reply, dict):
        items = list(reply.items())
    else:
        items = list(zip(reply[0::2], reply[1::2]))
    decode = lambda v: v.decode() if isinstance(v, bytes) else v
    return {decode(k): decode(v) for k, v in items}


def info_strata(client):
    return client.info("strata")


def stop_code(node, sig=signal.SIGTERM, timeout=15):
    """Stops the node and returns (exit code, the last log lines) for a later assertion; the
    code is "hung" if the node had to be killed after `timeout` seconds."""
    try:
        code = node.stop(sig, timeout=timeout)
    except subprocess.TimeoutExpired:  # Node.stop has killed it
        code = "hung"
    return code, "".join(node.log_lines[-8:])


def wait_ready(node, timeout=30):
    """Polls /ready until 200; returns the parsed JSON body. Fails after `timeout` seconds."""
    deadline = time.time() + timeout
    status, body = node.http("/ready")
    while status != 200 and time.time() < deadline:
        time.sleep(0.05)
        status, body = node.http("/ready")
    assert status == 200, f"/ready still {status} after {timeout}s: {body}"
    return json.loads(body)


def pipelined(client, commands, batch=500):
    """Runs (name, *args) commands pipelined in batches; returns every reply (errors included)."""
    replies = []
    for start in range(0, len(commands), batch):
        pipe = client.pipeline(transaction=False)
        for command in commands[start:start + batch]:
            pipe.execute_command(*command)
        replies.extend(pipe.execute(raise_on_error=False))
    return replies


def value_for(i, size=64):
    """A deterministic value per key index, so a read-back can be checked without keeping it."""
    seed = f"value-{i}-".encode()
    return (seed * (size // len(seed) + 1))[:size]


# ---------------------------------------------------------------------------------------------
# Graceful stop


def test_sigterm_exits_zero_promptly_every_time(make_node):
    # A shutdown race shows up only some of the time (more often the longer the node has been
    # up), so stop the node several times, each after a short while up and some HTTP traffic.
    node = make_node("--memory", "8MiB", "--disk", "32MiB")
    outcomes = []
    for attempt in range(6):
        if attempt:
            node.start()
        client = node.client()
        client.set("k", attempt)
        client.close()
        if attempt % 2:
            assert node.http("/health")[0] == 200
        time.sleep(0.6)
        started = time.time()
        code, log = stop_code(node, timeout=10)
        last_line = (log.strip().splitlines() or [""])[-1]
        outcomes.append((code, round(time.time() - started, 2), last_line))
    bad = [o for o in outcomes if o[0] != 0]
    assert not bad, f"{len(bad)} of 6 SIGTERM stops did not exit 0 (code, seconds, last log line): {bad}"


# ---------------------------------------------------------------------------------------------
# Restart keeps data and TTLs


def test_restart_keeps_every_key_and_its_ttl(make_node):
    node = make_node("--memory", "16MiB", "--disk", "64MiB")
    r = node.client()
    count = 2000
    commands = []
    for i in range(count):
        if i % 3 == 0:
            commands.append(("SET", f"key:{i}", value_for(i), "EX", 1000))
        elif i % 3 == 1:
            commands.append(("SET", f"key:{i}", value_for(i), "PX", 500_000))
        else:
            commands.append(("SET", f"key:{i}", value_for(i)))
    written_at = time.time()
    assert all(reply is True for reply in pipelined(r, commands))
    r.close()
    code, log = stop_code(node)

    node.start()
    r = node.client()
    values = pipelined(r, [("GET", f"key:{i}") for i in range(count)])
    ttls = pipelined(r, [("PTTL", f"key:{i}") for i in range(count)])
    elapsed_ms = (time.time() - written_at) * 1000

    wrong_values = [i for i in range(count) if values[i] != value_for(i)]
    assert not wrong_values, f"{len(wrong_values)} keys lost or changed, e.g. key:{wrong_values[0]} = {values[wrong_values[0]]!r}"
    for i in range(count):
        if i % 3 == 2:
            assert ttls[i] == -1, f"key:{i} had no TTL, PTTL after restart = {ttls[i]}"
        else:
            full = 1_000_000 if i % 3 == 0 else 500_000
            # The TTL is an absolute deadline: it keeps running across the restart, so it is
            # the original minus the time since the write (plus some slack for clocks).
            assert full - elapsed_ms - 5000 <= ttls[i] <= full, f"key:{i}: PTTL {ttls[i]}, expected about {full - elapsed_ms:.0f}"
    assert r.dbsize() == count
    assert code == 0, f"SIGTERM exit code {code}, expected 0; log tail:\n{log}"


def test_expired_keys_stay_expired_after_restart(make_node):
    node = make_node("--memory", "16MiB", "--disk", "64MiB")
    r = node.client()
    # Expired before the stop: must not come back from disk.
    assert all(pipelined(r, [("SET", f"short:{i}", "x", "PX", 300) for i in range(100)]))
    # Still alive at the stop, expired by the time the node is back: the deadline is absolute.
    late_set = time.time()
    assert all(pipelined(r, [("SET", f"late:{i}", "y", "PX", 2500) for i in range(100)]))
    r.set("keeper", "stays")
    time.sleep(0.5)
    assert r.get("short:0") is None
    r.close()
    code, log = stop_code(node)
    time.sleep(max(0, late_set + 2.8 - time.time()))

    node.start()
    r = node.client()
    assert r.get("keeper") == b"stays"
    for prefix in ("short", "late"):
        values = pipelined(r, [("GET", f"{prefix}:{i}") for i in range(100)])
        assert values == [None] * 100, f"{prefix}: {sum(v is not None for v in values)} expired keys came back"
        ttls = pipelined(r, [("PTTL", f"{prefix}:{i}") for i in range(100)])
        assert ttls == [-2] * 100
    assert r.exists("late:0", "short:0") == 0
    assert tier(r, "late:1")["tier"] == "none"
    assert code == 0, f"SIGTERM exit code {code}, expected 0; log tail:\n{log}"


# ---------------------------------------------------------------------------------------------
# Warm restart


def test_warm_restart_reloads_the_hot_keys(make_node):
    node = make_node("--memory", "4MiB", "--disk", "128MiB", "--snapshot-interval", "0")
    r = node.client()
    size = 600  # below the 1 KiB compression threshold: sizes stay predictable
    cold, hot = 12_000, 800  # ~7 MB of cold keys do not fit in 4 MiB; the hot set (~0.5 MB) does
    assert all(pipelined(r, [("SET", f"cold:{i}", value_for(i, size)) for i in range(cold)]))
    for round_ in range(3):
        assert all(pipelined(r, [("SET", f"hot:{i}", value_for(i + round_, size)) for i in range(hot)]))
        values = pipelined(r, [("GET", f"hot:{i}") for i in range(hot)])
        assert values == [value_for(i + round_, size) for i in range(hot)]
    hot_version = 2  # the last round's values
    stats = info_strata(r)
    assert stats["memory_items"] < cold + hot, "the memory budget is meant to be too small for every key"
    assert stats["memory_evictions"] > 0
    r.close()
    code, log = stop_code(node)

    node.start()
    r = node.client()
    # Served at once, whether or not the warm start has finished: a miss just reads disk.
    # (cold:6000 is neither hot nor among the oldest keys checked below, so promoting it is harmless.)
    assert r.get("hot:5") == value_for(5 + hot_version, size)
    assert r.get("cold:6000") == value_for(6000, size)
    ready = wait_ready(node)
    assert ready["loaded_keys"] > 0, ready
    assert ready["snapshot_keys"] >= ready["loaded_keys"], ready

    hot_tiers = [tier(r, f"hot:{i}")["tier"] for i in range(hot)]
    in_memory = hot_tiers.count("memory")
    assert in_memory >= hot * 0.98, f"only {in_memory}/{hot} hot keys in memory after the warm start ({hot_tiers.count('disk')} on disk)"
    oldest = [tier(r, f"cold:{i}")["tier"] for i in range(200)]
    assert oldest.count("disk") >= 195, f"oldest cold keys: {oldest.count('memory')} in memory, {oldest.count('none')} missing"

    # The warm-loaded keys keep their recency order: new writes now evict the keys that were
    # coldest before the restart (the recent cold keys), not the hot set.
    assert all(pipelined(r, [("SET", f"fresh:{i}", value_for(i, size)) for i in range(2000)]))
    assert info_strata(r)["memory_evictions"] > 0
    hot_tiers = [tier(r, f"hot:{i}")["tier"] for i in range(hot)]
    assert hot_tiers.count("memory") >= hot * 0.98, (
        f"after ~1.2 MB of new writes only {hot_tiers.count('memory')}/{hot} hot keys are still in memory: "
        "the warm start seems to have loaded them in reverse recency order")

    # Every key still reads back (cold ones from disk).
    assert pipelined(r, [("GET", f"cold:{i}") for i in range(0, cold, 97)]) == [value_for(i, size) for i in range(0, cold, 97)]
    assert code == 0, f"SIGTERM exit code {code}, expected 0; log tail:\n{log}"


def test_after_kill9_the_node_comes_back_warm_and_nothing_newer_is_overwritten(make_node):
    """No snapshot at shutdown: the last periodic one, and the journal of what was written since."""
    node = make_node("--memory", "64MiB", "--disk", "256MiB", "--snapshot-interval", "2")
    r = node.client()
    size, keys = 300, 3000
    assert all(pipelined(r, [("SET", f"k:{i}", value_for(i, size)) for i in range(keys)]))
    manifest = os.path.join(node.data_dir, "snapshot", "MANIFEST")
    deadline = time.time() + 20
    while not os.path.exists(manifest) and time.time() < deadline:
        time.sleep(0.1)
    assert os.path.exists(manifest), "no periodic snapshot was written"
    time.sleep(2.5)  # one more periodic snapshot holds every key
    # Written after the snapshot: a third changed, a third deleted (applied to LMDB within a second).
    assert all(pipelined(r, [("SET", f"k:{i}", b"new") for i in range(0, keys, 3)]))
    assert all(pipelined(r, [("DEL", f"k:{i}") for i in range(1, keys, 3)]))
    time.sleep(1.3)
    r.close()
    node.kill()

    node.start()
    r = node.client()
    ready = wait_ready(node)
    assert ready["loaded_keys"] >= keys // 3, ready
    got = pipelined(r, [("GET", f"k:{i}") for i in range(keys)])
    for i in range(keys):
        expected = b"new" if i % 3 == 0 else None if i % 3 == 1 else value_for(i, size)
        assert got[i] == expected, f"k:{i} after kill -9: {got[i]!r:.40}, expected {expected!r:.40}"
    untouched = [tier(r, f"k:{i}")["tier"] for i in range(2, keys, 3)]
    assert untouched.count("memory") >= len(untouched) * 0.98, f"{untouched.count('disk')} untouched keys came back cold"


def test_a_damaged_snapshot_is_skipped_and_every_key_served_from_disk(make_node):
    node = make_node("--memory", "64MiB", "--disk", "256MiB", "--snapshot-interval", "0")
    r = node.client()
    keys = 4000
    assert all(pipelined(r, [("SET", f"k:{i}", value_for(i, 200)) for i in range(keys)]))
    r.close()
    assert stop_code(node)[0] == 0
    directory = os.path.join(node.data_dir, "snapshot")
    segments = sorted(name for name in os.listdir(directory) if name.endswith(".seg"))
    assert len(segments) == 64
    for name in segments[:8]:  # torn
        path = os.path.join(directory, name)
        os.truncate(path, os.path.getsize(path) // 2)
    for name in segments[8:16]:  # flipped bits
        path = os.path.join(directory, name)
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0x55]))
    node.start()
    r = node.client()
    ready = wait_ready(node)
    assert 0 < ready["loaded_keys"] < keys, ready
    assert pipelined(r, [("GET", f"k:{i}") for i in range(keys)]) == [value_for(i, 200) for i in range(keys)]
    time.sleep(0.2)  # the log pump is a thread
    assert "snapshot segment skipped" in "".join(node.log_lines)


# ---------------------------------------------------------------------------------------------
# Compression


def test_large_values_are_compressed_only_when_it_pays(make_node):
    node = make_node("--memory", "16MiB", "--disk", "64MiB")
    r = node.client()
    record = json.dumps({"user": 12345, "name": "alpha", "tags": ["a", "b", "c"], "active": True})
    compressible = (record * (100_000 // len(record) + 1)).encode()[:100_000]
    incompressible = random.Random(7).randbytes(100_000)
    r.set("json", compressible)
    r.set("noise", incompressible)

    def check():
        assert r.get("json") == compressible
        assert r.get("noise") == incompressible
        j, n = tier(r, "json"), tier(r, "noise")
        assert j["value_bytes"] == 100_000 and n["value_bytes"] == 100_000, (j, n)
        assert j["compressed"] == 1, j
        assert j["stored_bytes"] < 100_000 // 10, j
        assert n["compressed"] == 0, n
        assert n["stored_bytes"] >= 100_000, n

    check()
    stats = info_strata(r)
    assert 0 < stats["compression_bytes_out"] < stats["compression_bytes_in"] // 10, stats
    r.close()
    code, log = stop_code(node)
    node.start()
    r = node.client()
    check()
    assert code == 0, f"SIGTERM exit code {code}, expected 0; log tail:\n{log}"


def test_strata_tier_reply_is_a_flat_resp2_list(node):
    node.client().set("k", "v")
    reply = node.raw(b"*2\r\n$11\r\nSTRATA.TIER\r\n$1\r\nk\r\n", read_timeout=0.5)
    assert reply.startswith(b"*12\r\n$4\r\ntier\r\n$6\r\nmemory\r\n$4\r\ntype\r\n$6\r\nstring\r\n"
                            b"$11\r\nvalue_bytes\r\n:1\r\n"), reply
    assert b"$10\r\ncompressed\r\n:0\r\n" in reply, reply


# ---------------------------------------------------------------------------------------------
# A full disk tier


def test_full_disk_tier_evicts_oldest_and_refuses_oversized_values(make_node):
    budget = 16 * MiB
    node = make_node("--memory", "2MiB", "--disk", "16MiB", "--max-value-size", "64MiB")
    count, size, batch = 15_000, 4096, 500  # ~60 MB of incompressible values through a 16 MiB tier
    values = {}
    written = []  # keys in the order their batch was acknowledged: two writers interleave, so
    order_lock = threading.Lock()  # the newest keys by time are not simply the highest numbers
    errors = []

    def fill(part):
        # Two connections, each pipelining every other batch: writes arrive faster than one
        # client alone would send them, as they would from a busy application.
        client = node.client(socket_timeout=30)
        rng = random.Random(part)
        for start in range(part * batch, count, 2 * batch):
            pairs = [(f"fill:{i}", rng.randbytes(size)) for i in range(start, min(count, start + batch))]
            replies = pipelined(client, [("SET", k, v) for k, v in pairs])
            errors.extend((k, str(e)) for (k, _), e in zip(pairs, replies) if e is not True)
            with order_lock:
                values.update(pairs)
                written.extend(k for k, _ in pairs)
        client.close()

    writers = [threading.Thread(target=fill, args=(part,), daemon=True) for part in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=60)
        assert not w.is_alive(), "the writes did not finish in 60 s"
    r = node.client()
    assert r.ping()
    assert not errors, f"{len(errors)} of {count} SETs refused while the disk tier should evict, first: {errors[0]}"

    # The queued writes reach LMDB soon after the burst: the writer keeps up and does not stall.
    deadline = time.time() + 10
    while time.time() < deadline and r.info("persistence")["strata_pending_writes"] > 0:
        time.sleep(0.2)
    persistence = r.info("persistence")
    if persistence["strata_pending_writes"]:
        node.kill()  # a stalled writer would also stall the graceful stop at teardown
        pytest.fail(f"writes still queued 10 s after the burst (the writer stalled): {persistence}")
    assert persistence["strata_disk_writes_failing"] == 0, persistence

    early = pipelined(r, [("GET", f"fill:{i}") for i in range(500)])
    assert early.count(None) == 500, f"{500 - early.count(None)} of the 500 oldest keys still present"
    recent = written[-300:]
    got = pipelined(r, [("GET", k) for k in recent])
    assert got == [values[k] for k in recent], f"{sum(g != values[k] for g, k in zip(got, recent))} of the 300 newest keys lost"

    stats = info_strata(r)
    assert stats["disk_budget"] == budget
    assert stats["disk_bytes"] <= budget, stats
    assert stats["disk_evictions"] > 0, stats

    with pytest.raises(redis.ResponseError):
        r.set("huge", os.urandom(20 * MiB))
    fresh = node.client()
    assert fresh.ping()
    assert r.ping()
    assert r.get("huge") is None
    last = written[-50:]
    assert fresh.mget(last) == [values[k] for k in last]
    assert fresh.set("after", "ok") and fresh.get("after") == b"ok"


# ---------------------------------------------------------------------------------------------
# Signals in the middle of a load


class Loader(threading.Thread):
    """Sets keys one at a time (no pipelining, so every OK is one acknowledged write) until the
    connection breaks or its deadline passes; `acked` lists the acknowledged indexes in order."""

    def __init__(self, node, prefix, deadline_seconds=15):
        super().__init__(daemon=True)
        self.client = node.client(socket_timeout=5)
        self.prefix = prefix
        self.deadline = time.time() + deadline_seconds
        self.acked = []
        self.acked_at = []  # time.time() of each acknowledgement
        self.failure = None

    def run(self):
        i = 0
        try:
            while time.time() < self.deadline:
                if self.client.set(f"{self.prefix}:{i}", value_for(i, 200)) is not True:
                    self.failure = f"SET {i} did not reply OK"
                    return
                self.acked.append(i)
                self.acked_at.append(time.time())
                i += 1
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError) as error:
            self.failure = error  # expected: the node went away
        except redis.ResponseError as error:
            self.failure = error  # an error reply: not acknowledged, stop here


def missing_acked(client, loader):
    keys = [f"{loader.prefix}:{i}" for i in loader.acked]
    got = []
    for start in range(0, len(keys), 1000):
        got += client.mget(keys[start:start + 1000])
    return [i for i, v in zip(loader.acked, got) if v != value_for(i, 200)]


def test_sigterm_mid_load_keeps_every_acknowledged_write(make_node):
    node = make_node("--memory", "16MiB", "--disk", "64MiB")
    loaders = [Loader(node, f"term{n}") for n in range(2)]
    for loader in loaders:
        loader.start()
    time.sleep(1.5)
    code, log = stop_code(node)
    for loader in loaders:
        loader.join(timeout=20)
        assert not loader.is_alive()
        assert len(loader.acked) > 50, f"the load barely ran: {loader.failure}"

    node.start()
    r = node.client()
    for loader in loaders:
        missing = missing_acked(r, loader)
        assert not missing, f"{len(missing)} of {len(loader.acked)} acknowledged writes lost, first {missing[:5]}"
    assert code == 0, f"SIGTERM exit code {code}, expected 0; log tail:\n{log}"


def test_sigkill_under_fsync_always_loses_no_acknowledged_write(make_node):
    node = make_node("--memory", "16MiB", "--disk", "64MiB", "--fsync", "always")
    loader = Loader(node, "always")
    loader.start()
    time.sleep(1.0)
    node.kill()
    loader.join(timeout=20)
    assert not loader.is_alive()
    assert len(loader.acked) > 20, f"the load barely ran: {loader.failure}"

    node.start()
    r = node.client()
    missing = missing_acked(r, loader)
    assert not missing, f"{len(missing)} of {len(loader.acked)} acknowledged writes lost under --fsync always, first {missing[:5]}"


def test_sigkill_under_fsync_everysec_keeps_a_prefix_of_the_writes(make_node):
    node = make_node("--memory", "16MiB", "--disk", "64MiB", "--fsync", "everysec")
    loader = Loader(node, "everysec")
    loader.start()
    time.sleep(1.0)
    killed_at = time.time()
    node.kill()
    loader.join(timeout=20)
    assert not loader.is_alive()
    assert len(loader.acked) > 100, f"the load barely ran: {loader.failure}"

    node.start()  # the directory reopens after a crash (no stale lock, LMDB consistent)
    r = node.client()
    missing = missing_acked(r, loader)
    # kill -9 keeps what reached the write-ahead log (the OS has it). The log takes writes
    # within milliseconds, but on a loaded machine its thread can lag; everysec's promise is at
    # most about a second of acknowledged writes...
    recent = sum(1 for t in loader.acked_at if t >= killed_at - 1.0)
    assert len(missing) <= recent, f"{len(missing)} of {len(loader.acked)} acknowledged writes lost ({recent} in the last second)"
    # ...and commits apply writes in order, so what survives is a prefix: no holes.
    if missing:
        assert missing == loader.acked[-len(missing):], f"lost writes are not the most recent ones: {missing[:10]}"


# ---------------------------------------------------------------------------------------------
# Refusing to start


def test_second_node_on_the_same_data_dir_is_refused(make_node):
    first = make_node("--memory", "8MiB", "--disk", "32MiB")
    first.client().set("mine", "1")
    second = Node(first.data_dir, "--memory", "8MiB", "--disk", "32MiB")
    with pytest.raises(RuntimeError):
        second.start(timeout=15)
    assert second.process.returncode not in (0, None)
    lines = [line for line in second.log_lines if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{''.join(lines)}"
    line = lines[0]
    assert line.startswith("strata:"), line
    assert "in use" in line and first.data_dir in line, line
    assert str(first.pid) in line, f"the error should name the owner's pid {first.pid}: {line}"
    # The first node is unaffected.
    assert first.client().get("mine") == b"1"


LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\dT\S+ (trace|debug|info|notice|warning|error|critical) ")


def run_strata(*args, timeout=15):
    return subprocess.run([strata_binary(), *args], capture_output=True, timeout=timeout, text=True)


@pytest.mark.parametrize(
    "flags, mentions",
    [
        (["--memory", "12parsecs"], "--memory"),
        (["--disk", "lots"], "--disk"),
        (["--port", "99999"], "--port"),
        (["--http-port", "-1"], "--http-port"),
        (["--fsync", "sometimes"], "sometimes"),
        (["--max-clients", "0"], "--max-clients"),
        (["--log-level", "loud"], "--log-level"),
        (["--snapshot-interval", "-5"], "--snapshot-interval"),
        (["--disk", "100"], "1MiB"),
        (["--memory", "10"], "at least 1MiB"),  # 10 bytes: surely 10MiB was meant
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_bad_flag_exits_with_one_line(tmp_path, flags, mentions):
    result = run_strata("serve", "--data-dir", str(tmp_path / "d"), "--port", "0", "--http-port", "0", *flags)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith(("strata:", "Error:")), lines[0]
    assert mentions in lines[0], lines[0]


def test_a_memory_tier_below_the_minimum_is_refused_naming_the_unit(tmp_path):
    result = run_strata("serve", "--data-dir", str(tmp_path / "d"), "--port", "0", "--http-port", "0",
                        "--memory", "10")
    assert result.returncode != 0
    assert "--memory: '10' is 10 bytes" in result.stderr and "1MiB" in result.stderr, result.stderr
    assert not os.path.exists(tmp_path / "d"), "a refused configuration should not create the data directory"


@pytest.mark.parametrize(
    "variables, flags, names, not_names",
    [
        ({"STRATA_FSYNC": "sometimes"}, [], "STRATA_FSYNC", "--fsync"),
        ({"STRATA_MEMORY": "10"}, [], "STRATA_MEMORY: '10' is 10 bytes", "--memory"),
        ({"STRATA_DISK": "lots"}, [], "STRATA_DISK", "--disk"),
        ({"STRATA_MAX_CLIENTS": "0"}, [], "STRATA_MAX_CLIENTS", "--max-clients"),
        # A bad flag is still named as the flag, beside a variable whose name is inside it.
        ({"STRATA_PORT": "0"}, ["--http-port", "-1"], "--http-port", "STRATA_HTTP_PORT"),
    ],
)
def test_a_bad_environment_variable_is_named_in_the_error(tmp_path, variables, flags, names, not_names):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_") or k == "STRATA_BIN"}
    env.update(variables)
    args = ["serve", "--data-dir", str(tmp_path / "d"), "--http-port", "0", *flags]
    if "STRATA_PORT" not in variables:
        args += ["--port", "0"]
    result = subprocess.run([strata_binary(), *args], capture_output=True, timeout=15, text=True, env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("strata:"), result.stderr
    assert names in lines[0] and not_names not in lines[0], lines[0]


def test_missing_data_dir_and_port_in_use_exit_with_one_line(tmp_path):
    result = run_strata("serve", "--port", "0", "--http-port", "0")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "--data-dir" in result.stderr, result.stderr

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_strata("serve", "--data-dir", str(tmp_path / "d"), "--bind", "127.0.0.1",
                            "--port", str(port), "--http-port", "0", "--log-level", "error")
    assert result.returncode != 0
    # Log records (timestamped, at --log-level error) may precede it; the failure itself is
    # one line.
    lines = [line for line in result.stderr.strip().splitlines() if not LOG_RECORD.match(line)]
    assert len(lines) == 1 and lines[0].startswith("strata:"), result.stderr
    assert "in use" in lines[0].lower(), lines[0]
