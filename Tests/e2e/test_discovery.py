"""Prometheus follows the cluster through the nodes' own service discovery (GET /sd, read by
`http_sd_configs` in grafana/prometheus.yml): a node that joins is scraped, a node that leaves
gracefully is dropped without StrataNodeDown firing, and a node that crashes still raises it.

A real three-node cluster, a fourth node joining, and a real Prometheus with the shipped scrape
config (1 s scrapes and discovery refreshes; every alert's `for` cut to 10 s, still well above
the refresh interval as 30 s is above 5 s in the shipped files).
"""
import json
import os
import re
import time

import pytest

from conftest import free_port, require_tool
from test_prometheus import GRAFANA, Prometheus, read, wait_until, write_config

FOR_SECONDS = 10


def sd(node):
    status, body = node.http("/sd")
    assert status == 200, body
    return json.loads(body)


def listed(node):
    """{node id: target} in the node's /sd answer."""
    return {group["labels"]["node"]: group["targets"][0] for group in sd(node)}


def test_sd_lists_every_member_and_a_lone_node_itself(make_node):
    lone = make_node("--memory", "16MiB", name="lone")
    assert sd(lone) == [{"targets": [f"127.0.0.1:{lone.http_port}"], "labels": {}}]

    ports = {f"n{i}": free_port() for i in (1, 2)}
    peers = ",".join(f"{name}=127.0.0.1:{port}" for name, port in ports.items())
    nodes = {name: make_node("--node-id", name, "--peers", peers, "--memory", "16MiB", name=name, port=port)
             for name, port in ports.items()}
    expected = {name: f"127.0.0.1:{node.http_port}" for name, node in nodes.items()}
    # Peers started from --peers learn each other's HTTP port with their first heartbeats.
    wait_until("both nodes listed by n1", lambda: listed(nodes["n1"]) == expected, 10, interval=0.2)
    groups = sd(nodes["n1"])
    assert {g["labels"]["node"]: g["labels"]["__meta_strata_self"] for g in groups} == {"n1": "true", "n2": "false"}
    assert {g["labels"]["__meta_strata_state"] for g in groups} == {"normal"}


def test_prometheus_follows_a_join_and_a_leave_without_a_false_alert(make_node, tmp_path):
    binary = require_tool("prometheus")
    ports = {f"n{i}": free_port() for i in (1, 2, 3)}
    peers = ",".join(f"{name}=127.0.0.1:{port}" for name, port in ports.items())
    flags = ("--replicas", "2", "--memory", "16MiB", "--disk", "64MiB")
    nodes = {name: make_node("--node-id", name, "--peers", peers, *flags, name=name, port=port)
             for name, port in ports.items()}
    for node in nodes.values():
        wait_until("every member's HTTP port learned", lambda: len(listed(node)) == 3, 10, interval=0.2)

    config = write_config(tmp_path, [node.http_port for node in nodes.values()])
    rules = re.sub(r"^(\s*)for: \d+[smh]$", rf"\1for: {FOR_SECONDS}s", read(os.path.join(GRAFANA, "alerts.yml")),
                   flags=re.M)
    (tmp_path / "alerts.yml").write_text(rules)
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    prometheus = Prometheus(binary, str(config), str(workdir))
    try:
        prometheus.wait_ready()

        def targets():
            active = prometheus.api("/api/v1/targets")["data"]["activeTargets"]
            return {t["labels"].get("node"): (t["labels"]["instance"], t["health"]) for t in active}

        def instance(node):
            return f"127.0.0.1:{node.http_port}"

        wait_until("the three nodes scraped", lambda: targets() == {
            name: (instance(node), "up") for name, node in nodes.items()}, 30)

        # A fourth node joins through n1: Prometheus scrapes it without a change to its config.
        n4 = make_node("--node-id", "n4", "--join", f"127.0.0.1:{ports['n1']}", *flags, name="n4", port=free_port())
        nodes["n4"] = n4
        wait_until("the joined node scraped", lambda: targets().get("n4") == (instance(n4), "up"), 30)

        # n2 leaves gracefully and exits: Prometheus drops it, and StrataNodeDown never fires.
        n2 = nodes.pop("n2")
        left_at = time.time()
        assert nodes["n1"].client().execute_command("STRATA.CLUSTER", "LEAVE", "n2") == b"OK"
        assert n2.process.wait(timeout=60) == 0, "".join(n2.log_lines[-20:])
        wait_until("the node that left dropped", lambda: "n2" not in targets(), 20)
        time.sleep(FOR_SECONDS + 5)  # past the alert's `for`, with evaluations every second
        assert targets() == {name: (instance(node), "up") for name, node in nodes.items()}
        window = int(time.time() - left_at) + 5
        # (It may have been pending for a scrape or two: between the exit and the next refresh.)
        fired = prometheus.query(
            f'max_over_time(ALERTS{{alertname="StrataNodeDown", alertstate="firing"}}[{window}s])')["data"]["result"]
        assert not fired, f"StrataNodeDown after a graceful leave: {fired}"

        # A crash is not a leave: the SIGKILLed n3 stays listed by its peers and raises the alert.
        n3 = nodes["n3"]
        n3.kill()

        def node_down_firing():
            alerts = prometheus.api("/api/v1/alerts")["data"]["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "StrataNodeDown"
                    and a["labels"].get("instance") == instance(n3) and a["state"] == "firing"]
        wait_until("StrataNodeDown for the killed node", node_down_firing, FOR_SECONDS + 20)
    except BaseException:
        print(prometheus.log_tail())
        raise
    finally:
        prometheus.stop()
