"""The monitoring kit in grafana/ against the real thing: promtool accepts and unit-tests the alert
rules; a real Prometheus scrapes a loaded three-node cluster with the shipped scrape config and
rules, every PromQL expression of the Grafana dashboard returns data, no alert fires while the
cluster is healthy, and a SIGKILLed node raises StrataNodeDown (and its peers StrataPeerDown); a
node whose --memory is below its own fixed overhead raises StrataMemoryOverBudget.

Fails, not skips, when prometheus or promtool is missing (scripts/ensure-deps.sh installs them).
"""
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import redis

from conftest import ROOT, free_port, require_tool

GRAFANA = os.path.join(ROOT, "grafana")
DASHBOARD = os.path.join(GRAFANA, "dashboards", "strata.json")
METRIC_NAME = re.compile(r"\b((?:strata|process)_[a-z0-9_]*[a-z0-9])\b")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def dashboard_panels(panels):
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def dashboard_expressions():
    """[(panel title, PromQL expression)] of every target in the dashboard."""
    dashboard = json.loads(read(DASHBOARD))
    return [(panel["title"], target["expr"])
            for panel in dashboard_panels(dashboard["panels"])
            for target in panel.get("targets", []) if target.get("expr")]


def documented_metrics():
    """Metric names in the README's "## Metrics" catalogue (first column of its tables)."""
    readme = read(os.path.join(ROOT, "README.md"))
    section = readme.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_:]+)`", section, re.M))


def base_name(name):
    """A histogram's series name without _bucket/_sum/_count."""
    return re.sub(r"_(bucket|sum|count)$", "", name)


# --- Static checks ------------------------------------------------------------------------------


def test_promtool_checks_and_unit_tests_the_rules_and_config():
    promtool = require_tool("promtool")
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"],
                 ["check", "config", "prometheus.yml"]):
        result = subprocess.run([promtool, *args], cwd=GRAFANA, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    # Every alert has unit tests.
    alerts = set(re.findall(r"^\s*- alert: (\w+)", read(os.path.join(GRAFANA, "alerts.yml")), re.M))
    tested = set(re.findall(r"^\s*alertname: (\w+)", read(os.path.join(GRAFANA, "alerts.test.yml")), re.M))
    assert alerts, "no alerts found in grafana/alerts.yml"
    assert alerts <= tested, f"alerts without a promtool test: {sorted(alerts - tested)}"


def test_dashboard_is_importable_and_documented():
    dashboard = json.loads(read(DASHBOARD))
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] and dashboard["id"] is None
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    node = variables["node"]
    assert node["multi"] and node["includeAll"]
    assert "label_values(strata_tier_items, instance)" in (node["definition"], node["query"]["query"])
    panels = list(dashboard_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        if panel["type"] == "row":
            continue
        # Every query goes to the data source chosen by the variable (so a hand import works).
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'instance=~"$node"' in target["expr"], f"{panel['title']}: ignores $node: {target['expr']}"
    # Every metric the dashboard or the alerts use is in the README's catalogue.
    documented = documented_metrics()
    used = {base_name(n) for _, expr in dashboard_expressions() for n in METRIC_NAME.findall(expr)}
    used |= {base_name(n) for n in METRIC_NAME.findall(read(os.path.join(GRAFANA, "alerts.yml")))}
    assert used - documented == set(), f"used but not in the README's metric catalogue: {sorted(used - documented)}"
    # The provisioning points at the dashboards folder the README's docker command mounts.
    provider = read(os.path.join(GRAFANA, "provisioning", "dashboards", "strata.yml"))
    assert "path: /var/lib/grafana/dashboards" in provider
    datasource = read(os.path.join(GRAFANA, "provisioning", "datasources", "prometheus.yml"))
    assert re.search(r"^\s*uid: \S+", datasource, re.M) and "url: http://localhost:9090" in datasource


# --- A live cluster under Prometheus ------------------------------------------------------------


def start_cluster(make_node):
    ports = {f"n{i}": free_port() for i in (1, 2, 3)}
    peers = ",".join(f"{name}=127.0.0.1:{port}" for name, port in ports.items())
    nodes = {name: make_node("--node-id", name, "--peers", peers, "--replicas", "2", "--memory", "64MiB",
                             "--disk", "128MiB", name=name, port=port)
             for name, port in ports.items()}
    # Nodes started first saw the later ones refuse connections: wait until every node sees every peer up.
    deadline = time.time() + 15
    for name, node in nodes.items():
        while True:
            metrics = node.http("/metrics")[1]
            down = re.findall(r'^strata_peer_up\{peer="(\w+)"\} 0', metrics, re.M)
            if not down:
                break
            assert time.time() < deadline, f"{name} still sees {down} down"
            time.sleep(0.1)
    return nodes


def run_load(nodes, stop, seconds=120):
    """Sets (some compressible and large), hits, misses, deletes and a few errors, through every
    node, until `stop` or `seconds`."""
    clients = [node.client() for node in nodes]
    compressible = b'{"field": "value", "n": 1}' * 200
    deadline = time.time() + seconds
    i = 0
    while not stop.is_set() and time.time() < deadline:
        client = clients[i % len(clients)]
        try:
            pipe = client.pipeline(transaction=False)
            for j in range(20):
                key = f"prom:{(i * 20 + j) % 3000}"
                pipe.set(key, compressible if j % 4 == 0 else f"value-{i}-{j}")
                pipe.get(key)
                pipe.get(f"prom:missing:{i}:{j}")
            pipe.delete(f"prom:{(i * 20 + 7) % 3000}")
            pipe.execute()
            for bad in (lambda: client.incrby(f"prom:{i * 20 % 3000}", 1),  # not an integer
                        lambda: client.execute_command("NOSUCHCOMMAND")):
                try:
                    bad()
                except redis.ResponseError:
                    pass
        except redis.ConnectionError:
            pass  # a node was killed on purpose
        i += 1
        stop.wait(0.02)


class Prometheus:
    """A real prometheus process on a free loopback port, ended by its PID."""

    def __init__(self, binary, config, workdir):
        self.port = free_port()
        self.log_path = os.path.join(workdir, "prometheus.log")
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def log_tail(self):
        self.log.flush()
        return read(self.log_path)[-3000:]

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())

    def query(self, expr):
        return self.api("/api/v1/query", query=expr)

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.process.poll() is None, f"prometheus exited:\n{self.log_tail()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        pytest.fail(f"prometheus was not ready in {timeout} s:\n{self.log_tail()}")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def substitute(text, pattern, replacement):
    """text with the one match of pattern (a multi-line regex) replaced; fails if there is not exactly one."""
    out, count = re.subn(pattern, replacement, text, flags=re.M)
    assert count == 1, f"expected one match of {pattern!r} in the file, found {count}: update this test"
    return out


def write_config(tmp_path, http_ports):
    """grafana/prometheus.yml and grafana/alerts.yml, with the test's ports, 1 s intervals, and the
    alerts' `for` durations cut to 1 s so that an alert fires within the test."""
    rules = re.sub(r"^(\s*)for: \d+[smh]$", r"\1for: 1s", read(os.path.join(GRAFANA, "alerts.yml")), flags=re.M)
    rules_path = tmp_path / "alerts.yml"
    rules_path.write_text(rules)
    config = read(os.path.join(GRAFANA, "prometheus.yml"))
    config = substitute(config, r"^(\s*)scrape_interval: 5s$", r"\1scrape_interval: 1s")
    config = substitute(config, r"^(\s*)scrape_timeout: 4s$", r"\1scrape_timeout: 1s")
    config = substitute(config, r"^(\s*)evaluation_interval: 5s$", r"\1evaluation_interval: 1s")
    config = substitute(config, r"^(\s*)- alerts\.yml$", r"\1- " + str(rules_path))
    # The nodes' service discovery URLs, polled every second.
    sd = re.compile(r"^(\s*)- url: http://127\.0\.0\.1:\d+/sd\n\s*refresh_interval: 5s\n", re.M)
    found = sd.findall(config)
    assert len(found) == 3, f"expected three /sd URLs in prometheus.yml, found {len(found)}: update this test"
    indent = found[0]
    urls = "".join(f"{indent}- url: http://127.0.0.1:{port}/sd\n{indent}  refresh_interval: 1s\n" for port in http_ports)
    config = sd.sub(lambda m: "", config, count=2)
    config = sd.sub(lambda m: urls, config)
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(config)
    return config_path


def grafana_expression(expr, instances):
    """expr with Grafana's template variables as Grafana fills them in: $node as the regex of every
    node (its "All"), $__rate_interval and friends as durations."""
    escaped = "|".join(re.escape(instance).replace("\\", "\\\\") for instance in instances)
    out = expr.replace("$node", f"({escaped})")
    for name, value in (("$__rate_interval", "20s"), ("$__interval", "2s"), ("$__range", "1m")):
        out = out.replace(name, value)
    assert "$" not in out, f"unknown template variable left in {expr!r}"
    return out


def wait_until(what, predicate, timeout, interval=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def prometheus_for(tmp_path):
    started = []

    def start(http_ports):
        binary = require_tool("prometheus")
        config = write_config(tmp_path, http_ports)
        workdir = tmp_path / "prometheus"
        workdir.mkdir()
        prometheus = Prometheus(binary, config, str(workdir))
        started.append(prometheus)
        prometheus.wait_ready()
        return prometheus

    yield start
    for prometheus in started:
        prometheus.stop()


def test_dashboard_queries_and_alerts_on_a_live_loaded_cluster(make_node, prometheus_for):
    require_tool("prometheus")
    nodes = start_cluster(make_node)
    instances = [f"127.0.0.1:{node.http_port}" for node in nodes.values()]
    stop = threading.Event()
    load = threading.Thread(target=run_load, args=(list(nodes.values()), stop), daemon=True)
    load.start()
    try:
        prometheus = prometheus_for([node.http_port for node in nodes.values()])

        # Every target scraped and healthy.
        def targets_up():
            active = prometheus.api("/api/v1/targets")["data"]["activeTargets"]
            return len(active) == 3 and all(t["health"] == "up" for t in active)
        wait_until("every node scraped", targets_up, 30)
        # The dashboard's node variable finds the three nodes.
        values = prometheus.api("/api/v1/label/instance/values", **{"match[]": "strata_tier_items"})["data"]
        assert sorted(values) == sorted(instances), values
        # Enough samples for rates over the dashboard's interval.
        wait_until("request rates", lambda: prometheus.query('sum(rate(strata_commands_total[20s])) > 0')["data"]["result"], 30)
        time.sleep(3)

        failures = []
        expressions = dashboard_expressions()
        assert len(expressions) >= 40, f"only {len(expressions)} expressions in the dashboard"
        for title, expr in expressions:
            query = grafana_expression(expr, instances)
            reply = prometheus.query(query)
            if reply.get("status") != "success":
                failures.append(f"[{title}] {query}\n    error: {reply.get('error')}")
            elif not reply["data"]["result"]:
                failures.append(f"[{title}] {query}\n    returned no data")
        assert not failures, f"{len(failures)} of {len(expressions)} dashboard expressions failed:\n" + "\n".join(failures)

        # Every metric the node exports is in the README's catalogue.
        families = set(re.findall(r"^# TYPE (\S+)", next(iter(nodes.values())).http("/metrics")[1], re.M))
        undocumented = families - documented_metrics()
        assert not undocumented, f"exported but not in the README's metric catalogue: {sorted(undocumented)}"

        # The rules load and evaluate without errors, carry a severity, a summary and a runbook, and
        # none fires on a healthy cluster under load.
        def rules_evaluated():
            groups = prometheus.api("/api/v1/rules")["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            return rules if rules and all(rule["health"] != "unknown" for rule in rules) else None
        rules = wait_until("the rules to be evaluated", rules_evaluated, 20)
        broken = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]
        assert not broken, f"rules that fail to evaluate: {broken}"
        for rule in rules:
            if rule["type"] == "alerting":
                assert rule["labels"].get("severity") in ("critical", "warning"), rule["name"]
                assert rule["annotations"].get("summary") and rule["annotations"].get("runbook"), rule["name"]
        time.sleep(3)  # several evaluations with the 1 s `for`
        active = [(a["labels"]["alertname"], a["labels"].get("instance"), a["state"])
                  for a in prometheus.api("/api/v1/alerts")["data"]["alerts"]]
        assert not active, f"alerts on a healthy cluster: {active}"

        # SIGKILL n3 (the test started it): StrataNodeDown for it, StrataPeerDown on its peers.
        victim = nodes["n3"]
        victim_instance = f"127.0.0.1:{victim.http_port}"
        victim.kill()

        def node_down_alerts():
            alerts = prometheus.api("/api/v1/alerts")["data"]["alerts"]
            down = [a for a in alerts if a["labels"]["alertname"] == "StrataNodeDown"
                    and a["labels"].get("instance") == victim_instance and a["state"] in ("pending", "firing")]
            peer = [a for a in alerts if a["labels"]["alertname"] == "StrataPeerDown"
                    and a["labels"].get("peer") == "n3" and a["state"] in ("pending", "firing")]
            return (down, peer) if down and peer else None
        down, peer = wait_until("StrataNodeDown and StrataPeerDown for the killed node", node_down_alerts, 30)
        assert down[0]["labels"]["severity"] == "critical"
        assert {a["labels"]["instance"] for a in peer} <= set(instances) - {victim_instance}
    finally:
        stop.set()
        load.join(timeout=30)


def test_memory_over_budget_alert_fires_for_a_node_below_its_fixed_overhead(make_node, prometheus_for):
    """--memory 1MiB is below what any node needs to run (its code's heap, threads and buffers):
    strata_process_anonymous_memory_bytes stays over strata_process_memory_limit_bytes, and the
    shipped rule (its `for` cut to 1 s, as for every rule here) fires for that node."""
    require_tool("prometheus")
    node = make_node("--memory", "1MiB", "--disk", "64MiB", name="small")
    client = node.client()
    for i in range(200):
        client.set(f"over:{i}", b"x" * 1000)
    metrics = node.http("/metrics")[1]
    assert re.search(r"^strata_process_memory_limit_bytes \S+", metrics, re.M), metrics[:2000]
    assert re.search(r"^strata_process_anonymous_memory_bytes [1-9]", metrics, re.M), "no anonymous memory reported"
    instance = f"127.0.0.1:{node.http_port}"
    prometheus = prometheus_for([node.http_port])

    def over_budget():
        alerts = prometheus.api("/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "StrataMemoryOverBudget"
                and a["labels"].get("instance") == instance and a["state"] == "firing"]
    firing = wait_until("StrataMemoryOverBudget to fire for the 1 MiB node", over_budget, 60)
    assert firing[0]["labels"]["severity"] == "critical"
    assert "over the limit its --memory sets" in firing[0]["annotations"]["summary"]
    # The other rules stay quiet on this single healthy node.
    others = [a["labels"]["alertname"] for a in prometheus.api("/api/v1/alerts")["data"]["alerts"]
              if a["labels"]["alertname"] != "StrataMemoryOverBudget"]
    assert not others, others
