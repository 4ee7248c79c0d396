"""The HTTP side end to end: /metrics (Prometheus text format) counts what clients did, every
family is documented and well-formed, and /health and /ready tell the truth."""
import json
import math
import re
import socket
import subprocess
import time

import pytest

from conftest import require_tool

MiB = 1 << 20

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """A parsed /metrics body: samples keyed by (name, frozenset of labels), plus HELP and TYPE."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        self.help = {}
        self.types = {}
        for line in text.splitlines():
            if line.startswith("# HELP "):
                name, _, help_text = line[7:].partition(" ")
                self.help[name] = help_text
            elif line.startswith("# TYPE "):
                name, _, kind = line[7:].partition(" ")
                self.types[name] = kind
            elif line and not line.startswith("#"):
                match = SAMPLE.match(line)
                assert match, f"malformed sample line: {line!r}"
                name, labels, value = match.groups()
                key = (name, frozenset(LABEL.findall(labels or "")))
                assert key not in self.samples, f"duplicate sample: {line!r}"
                self.samples[key] = float(value)

    def get(self, name, **labels):
        """The sample's value; fails if it is not exported."""
        key = (name, frozenset(labels.items()))
        assert key in self.samples, f"{name}{labels} is not in /metrics"
        return self.samples[key]

    def family(self, sample_name):
        """The family a sample belongs to (a histogram's _bucket/_sum/_count are its parts)."""
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample_name[: -len(suffix)]
            if sample_name.endswith(suffix) and self.types.get(base) == "histogram":
                return base
        return sample_name

    def buckets(self, name, **labels):
        """[(le, cumulative count)] of a histogram's series, by increasing le."""
        out = []
        for (sample, sample_labels), value in self.samples.items():
            d = dict(sample_labels)
            if sample == name + "_bucket" and all(d.get(k) == v for k, v in labels.items()) and len(d) == len(labels) + 1:
                out.append((float(d["le"]), value))
        return sorted(out)


def scrape(node):
    status, body = node.http("/metrics")
    assert status == 200, (status, body[:200])
    return Metrics(body)


def exchange(port, payload, quiet=1.0):
    """Sends payload on a new connection; returns what came back until close or quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=quiet) as s:
        s.sendall(payload)
        chunks = []
        try:
            while data := s.recv(65536):
                chunks.append(data)
        except socket.timeout:
            pass
        return b"".join(chunks)


def command(*args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def wait_for(predicate, timeout=10, interval=0.05):
    deadline = time.time() + timeout
    while not predicate() and time.time() < deadline:
        time.sleep(interval)
    return predicate()


# ---------------------------------------------------------------------------------------------


def test_metrics_count_commands_tiers_and_clients(make_node):
    node = make_node("--memory", "16MiB", "--disk", "64MiB")
    r = node.client()
    r.ping()  # connect before the baseline, so only the commands below count
    before = scrape(node)

    sets, hits, misses, bad_incrby, unknown = 40, 60, 25, 3, 2
    for i in range(sets):
        assert r.set(f"m:{i}", f"value-{i}")
    for i in range(hits):
        assert r.get(f"m:{i % sets}") == f"value-{i % sets}".encode()
    for i in range(misses):
        assert r.get(f"absent:{i}") is None
    for _ in range(bad_incrby):
        with pytest.raises(Exception):
            r.incrby("m:0", "not-a-number")
    for _ in range(unknown):
        with pytest.raises(Exception):
            r.execute_command("NOSUCHCOMMAND")
    after = scrape(node)

    def delta(name, **labels):
        return after.get(name, **labels) - before.get(name, **labels)

    assert delta("strata_commands_total", command="get") == hits + misses
    assert delta("strata_commands_total", command="set") == sets
    assert delta("strata_command_errors_total", command="get") == 0
    assert delta("strata_command_errors_total", command="incrby") == bad_incrby
    assert delta("strata_commands_total", command="unknown") == unknown
    assert delta("strata_command_errors_total", command="unknown") == unknown

    # The GET latency histogram: cumulative, ending in +Inf == _count.
    buckets = after.buckets("strata_command_duration_seconds", command="get")
    assert len(buckets) >= 10, buckets
    assert buckets[-1][0] == math.inf
    counts = [count for _, count in buckets]
    assert counts == sorted(counts), f"bucket counts are not cumulative: {buckets}"
    assert counts[-1] == after.get("strata_command_duration_seconds_count", command="get")
    assert delta("strata_command_duration_seconds_count", command="get") == hits + misses
    assert after.get("strata_command_duration_seconds_sum", command="get") > 0

    assert delta("strata_tier_hits_total", tier="memory") >= hits
    assert delta("strata_tier_misses_total", tier="memory") >= misses
    assert after.get("strata_tier_items", tier="memory") == sets
    # Disk items follow the group commit, a moment behind the writes.
    assert wait_for(lambda: scrape(node).get("strata_tier_items", tier="disk") == sets), "disk items never reached the key count"
    assert after.get("strata_tier_budget_bytes", tier="memory") == 16 * MiB
    assert after.get("strata_tier_budget_bytes", tier="disk") == 64 * MiB
    assert 0 < after.get("strata_tier_bytes", tier="memory") <= 16 * MiB

    # Connected clients: the redis-py connection plus three raw sockets.
    extra = [socket.create_connection(("127.0.0.1", node.port), timeout=5) for _ in range(3)]
    try:
        for s in extra:
            s.sendall(b"PING\r\n")
            assert s.recv(16) == b"+PONG\r\n"
        assert scrape(node).get("strata_connected_clients") == 4
    finally:
        for s in extra:
            s.close()
    assert wait_for(lambda: scrape(node).get("strata_connected_clients") == 1), "closed clients still counted"


def test_network_bytes_count_what_clients_send_and_receive(node):
    big = b"n" * 200_000
    cases = {
        "set-and-get": command("SET", "big", big) + command("GET", "big"),
        # Replies written just before the server closes the connection count too.
        "ending-in-protocol-error": command("GET", "big") + b"*1\r\n$-5\r\n",
        "ending-in-quit": command("GET", "big") + command("QUIT"),
    }
    wrong = []
    for name, payload in cases.items():
        before = scrape(node)
        received = exchange(node.port, payload)
        assert len(received) > 200_000, (name, received[:100])
        after = scrape(node)
        counted_in, counted_out = (
            after.get("strata_network_bytes_total", direction=d) - before.get("strata_network_bytes_total", direction=d)
            for d in ("in", "out"))
        if (counted_in, counted_out) != (len(payload), len(received)):
            wrong.append(f"{name}: counted in/out {counted_in:.0f}/{counted_out:.0f}, sent/received {len(payload)}/{len(received)}")
    assert not wrong, "; ".join(wrong)


def test_protocol_errors_and_compression_are_counted(node):
    before = scrape(node)
    exchange(node.port, b"*1\r\n$-5\r\n")
    exchange(node.port, b"*abc\r\n")
    text = (b'{"field": "value", "n": 1}' * 4000)
    node.client().set("json", text)
    after = scrape(node)
    assert after.get("strata_protocol_errors_total") - before.get("strata_protocol_errors_total") == 2
    compressed_in = after.get("strata_compression_input_bytes_total") - before.get("strata_compression_input_bytes_total")
    compressed_out = after.get("strata_compression_output_bytes_total") - before.get("strata_compression_output_bytes_total")
    assert compressed_in == len(text)
    assert 0 < compressed_out < len(text) // 10


def test_every_family_is_documented_and_promtool_accepts_it(node):
    r = node.client()
    r.set("a", "1")
    r.get("a")
    r.get("missing")
    metrics = scrape(node)
    assert metrics.samples, "no samples"
    for name, _ in metrics.samples:
        family = metrics.family(name)
        assert family in metrics.help, f"{name}: no # HELP line for {family}"
        assert metrics.help[family].strip(), f"{family}: empty help"
        assert family in metrics.types, f"{name}: no # TYPE line for {family}"
    for family, kind in metrics.types.items():
        assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), (family, kind)
        # Strata's own metrics carry the prefix; process metrics use the standard client names.
        assert family.startswith("strata_") or family.startswith("process_"), family
        if kind == "counter":
            assert family.endswith("_total"), f"counter {family} does not end in _total"
    # Each # HELP and # TYPE appears once per family.
    assert len(re.findall(r"^# TYPE ", metrics.text, re.M)) == len(metrics.types)
    assert len(re.findall(r"^# HELP ", metrics.text, re.M)) == len(metrics.help)

    promtool = require_tool("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=metrics.text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"promtool check metrics failed:\n{result.stdout}{result.stderr}"


def test_health_and_unknown_paths(node):
    assert node.http("/health") == (200, "ok\n")
    status, _ = node.http("/no-such-path")
    assert status == 404


def test_ready_is_503_during_warm_start_and_200_after(make_node):
    node = make_node("--memory", "32MiB", "--disk", "128MiB", "--snapshot-interval", "0")
    r = node.client()
    keys = 80_000  # small values, so the warm start's per-key work dominates
    for start in range(0, keys, 2000):
        r.mset({f"w:{i}": b"v" * 64 for i in range(start, start + 2000)})
    r.close()
    node.stop()  # its exit code is test_persistence's business

    node.start()
    polls = []
    deadline = time.time() + 30
    while time.time() < deadline:
        status, body = node.http("/ready")
        polls.append((status, json.loads(body)))
        if status == 200:
            break
        time.sleep(0.01)
    for status, body in polls:
        assert body["ready"] == (status == 200), f"status {status} disagrees with body {body}"
        assert body["loaded_keys"] <= body["snapshot_keys"], body
        if status == 503:
            # Loading may have just finished while the loader has not yet marked itself done.
            assert body["loaded_keys"] <= keys, body
    status, final = polls[-1]
    assert status == 200, f"not ready after 30 s: {final}"
    assert final["snapshot_keys"] == keys and final["loaded_keys"] == keys, final
    metrics = scrape(node)
    assert metrics.get("strata_warmup_done") == 1
    assert metrics.get("strata_warmup_loaded_keys") == keys
    assert metrics.get("strata_warmup_snapshot_keys") == keys
    # If the warm start finished before the first poll, 503 was not observed; everything above
    # still held (a skip here would hide the run's other checks in CI).
