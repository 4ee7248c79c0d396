#!/usr/bin/env python3
"""The cost of replication: a three-node Strata cluster (write quorum 1 and 2) against one node.

    python3 Benchmarks/bench_cluster.py                                   # full: 3 rounds x 5 s per load
    python3 Benchmarks/bench_cluster.py --keys 20000 --duration 2 --rounds 1     # smoke

Configurations, all running at once, each node with its own --data-dir, --port and --http-port:
  - 1 node (no --peers),
  - 3 nodes, --replicas 2 --write-quorum 1 (a write is acknowledged once one owner has it),
  - 3 nodes, --replicas 2 --write-quorum 2 (both owners must have it).
The same strata-load runs against each configuration; for a cluster its connections go to the
nodes round-robin (any node accepts any key: it forwards to the key's coordinator, which sends
writes on to the other owner). Loads: SET, GET (uniform keys) and 90/10 GET/SET (Zipfian 0.99),
at pipeline 1 and 16, interleaved over --rounds rounds of --duration seconds; median reported.
The key space is written first, so GETs are hits (checked).
On one machine the three nodes share its cores with each other and with the client: this
measures what replication costs in CPU and round trips, not how a cluster scales out.
Writes Benchmarks/results/<date>-<cores>cores-<mem>GiB-cluster.md and .png.
"""
import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

import benchlib as b

LOADS = [("SET", 0.0, "uniform"), ("GET", 1.0, "uniform"), ("90/10", 0.9, "zipf")]


def ok_ops(report):
    """Successful replies per second (a write that missed its quorum is an error reply)."""
    return (report["replies"] - report["errors"]) / report["elapsed_s"] if report["elapsed_s"] else 0.0


class Config:
    def __init__(self, label, nodes):
        self.label, self.nodes = label, nodes

    def targets(self):
        return [n.target() for n in self.nodes]


def start_cluster(label, work, strata_bin, quorum, memory):
    ports = b.free_ports(6)
    peers = ",".join(f"n{i + 1}=127.0.0.1:{ports[i]}" for i in range(3))
    nodes = []
    for i in range(3):
        n = b.StrataServer(f"{label} n{i + 1}", work, strata_bin, data_dir=os.path.join(work, f"{label}-n{i + 1}"),
                           memory=memory, disk="8GiB",
                           extra=["--fsync", "everysec", "--node-id", f"n{i + 1}", "--peers", peers, "--replicas", "2",
                                  "--write-quorum", str(quorum)])
        n.port, n.http_port = ports[i], ports[3 + i]
        nodes.append(n)
    for n in nodes:
        n.start(wait=False)
    for n in nodes:
        n.wait_ready(60)
    # every node sees all three up
    deadline = time.time() + 30
    while True:
        states = []
        for n in nodes:
            try:
                reply = b.resp_command(n.port, "STRATA.CLUSTER", "NODES", timeout=2)
            except OSError as e:
                reply = str(e).encode()
            states.append(len(re.findall(rb"\$5\r\nstate\r\n\$2\r\nup\r\n", reply)))
        if all(s == 3 for s in states):
            break
        if time.time() > deadline:
            raise b.BenchError(f"cluster {label}: nodes do not all see each other up within 30 s "
                               f"(up counts per node: {states}); logs in {work}")
        time.sleep(0.2)
    return Config(label, nodes)


def replication_counters(config):
    out = {"forwarded": 0.0, "repl_ok": 0.0, "repl_failed": 0.0}
    for n in config.nodes:
        try:
            m = n.metrics()
        except b.BenchError:
            continue
        out["forwarded"] += b.metric(m, "strata_forwarded_requests_total")
        out["repl_ok"] += b.metric(m, "strata_replication_writes_total", result="ok")
        out["repl_failed"] += b.metric(m, "strata_replication_writes_total", result="failed")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000, help="key space (default 100,000)")
    ap.add_argument("--value-size", type=int, default=100, help="bytes per value (default 100)")
    ap.add_argument("--duration", type=float, default=5, help="seconds per load per configuration per round (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--pipelines", default="1,16", help="pipeline depths (default 1,16)")
    ap.add_argument("--memory", default="1GiB", help="--memory of every node (default 1GiB)")
    b.add_common_args(ap)
    args = ap.parse_args()
    pipelines = [int(x) for x in args.pipelines.split(",")]
    started_load = b.loadavg()
    strata_bin, load_bin = b.find_binaries(args)
    b.plotter()

    work = tempfile.mkdtemp(prefix="strata-cluster-")
    configs = []
    try:
        single = b.StrataServer("1 node", work, strata_bin, data_dir=os.path.join(work, "single"), memory=args.memory,
                                disk="8GiB", extra=["--fsync", "everysec"])
        single.start(timeout=60)
        configs.append(Config("1 node", [single]))
        configs.append(start_cluster("3 nodes wq1", work, strata_bin, 1, args.memory))
        configs.append(start_cluster("3 nodes wq2", work, strata_bin, 2, args.memory))
        for c in configs:
            b.log(f"{c.label}: ports {', '.join(str(n.port) for n in c.nodes)}")

        fills = {}
        for c in configs:
            r = b.run_load(load_bin, c.targets(), "resp", timeout=max(600, args.keys / 500),
                           extra=["--keys", args.keys, "--value-size", args.value_size, "--fill", "--fill-pipeline", 32],
                           connections=args.connections, threads=args.load_threads, label=f"fill {c.label}",
                           accept_incomplete_fill=True)
            fills[c.label] = r["fill"]
            b.log(f"filled {c.label}: {r['fill']['ops_per_sec']:,.0f} SETs/s, errors {r['fill']['errors']}")

        before = {c.label: replication_counters(c) for c in configs if len(c.nodes) > 1}
        results = {}
        for pipeline in pipelines:
            for name, ratio, dist in LOADS:
                key = (name, pipeline)
                results[key] = {c.label: [] for c in configs}
                extra = ["--keys", args.keys, "--value-size", args.value_size, "--duration", args.duration,
                         "--pipeline", pipeline, "--read-ratio", ratio, "--distribution", dist, "--hit-check"]
                for _ in range(args.rounds):
                    for c in configs:
                        r = b.run_load(load_bin, c.targets(), "resp", timeout=args.duration + 120, extra=extra,
                                       connections=args.connections, threads=args.load_threads,
                                       label=f"{name} P{pipeline} {c.label}")
                        results[key][c.label].append(r["load"])
                        for n in c.nodes:
                            if not n.alive():
                                raise b.BenchError(f"{n.label} died; log {n.log_path}:\n{n.log_tail()}")
                med = {l: statistics.median(ok_ops(x) for x in v) for l, v in results[key].items()}
                b.log(f"{name} P{pipeline} (successful ops/s): " + ", ".join(f"{l} {v:,.0f}" for l, v in med.items()))
        after = {c.label: replication_counters(c) for c in configs if len(c.nodes) > 1}
        for c in configs:
            for n in c.nodes:
                n.stop()
    finally:
        for c in configs:
            for n in c.nodes:
                n.stop(timeout=60)
        # a cluster that failed to start is not in `configs`: stop anything left
        b._cleanup_children()
        if args.keep_data:
            b.log(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        b.leftover_check()

    labels = [c.label for c in configs]

    def med(key, label, f):
        return statistics.median(f(x) for x in results[key][label])

    md_path, png_path = b.result_paths(args.out_dir, "cluster")
    lines = b.header_lines("Cluster: three Strata nodes (write quorum 1 and 2) vs one node", sys.argv, strata_bin,
                           started=started_load)
    lines += [
        f"- {args.connections} connections (round-robin over a cluster's nodes), {args.keys:,} keys x "
        f"{args.value_size} B, written first; median of {args.rounds} interleaved round(s) of {args.duration:g} s; "
        f"strata-load threads {args.load_threads}",
        f"- every node: `--memory {args.memory} --disk 8GiB --fsync everysec`; cluster nodes `--replicas 2 "
        f"--write-quorum 1|2 --peers n1=...,n2=...,n3=...`",
        "- all the nodes run on this one machine, sharing its cores with each other and the client: the cluster "
        "columns show the cost of forwarding and replication, not scale-out",
        "- ops/s: successful replies per second (error replies, e.g. a write that missed its quorum, not counted); "
        "ratio = cluster / 1 node",
        "",
    ]
    headers = ["load", "1 node ops/s"]
    for l in labels[1:]:
        headers += [f"{l} ops/s", "ratio"]
    headers += [f"{l} p50 / p99 ms" for l in labels] + ["errors"]
    rows = []
    for key in results:
        name, pipeline = key
        base = med(key, labels[0], ok_ops)
        row = [f"{name} P{pipeline}", b.fmt_int(base)]
        for l in labels[1:]:
            o = med(key, l, ok_ops)
            row += [b.fmt_int(o), f"{o / base:.2f}" if base else "-"]
        for l in labels:
            row.append(f"{b.fmt_ms(med(key, l, lambda x: x['latency_us']['p50']))} / "
                       f"{b.fmt_ms(med(key, l, lambda x: x['latency_us']['p99']))}")
        errs = {l: sum(x["errors"] + x["timeouts"] + x["lost_in_flight"] + (x["misses"] or 0) for x in results[key][l])
                for l in labels}
        row.append(", ".join(f"{l}: {v:,}" for l, v in errs.items() if v) or "0")
        rows.append(row)
    lines += b.md_table(headers, rows)
    lines.append("")
    bad = {l: f for l, f in fills.items() if f["errors"]}
    for l, f in bad.items():
        lines.append(f"- **{l}: the fill got {f['errors']:,} error replies out of {f['replies']:,} SETs** "
                     f"(first: `{f['first_error']}`); keys it could not write count as misses below.")
    if bad:
        lines.append("")
    lines.append("errors: error replies, timeouts, requests lost with a connection, and GET misses (every key was "
                 "written, so a miss is a lost key).")
    lines.append("")
    if after:
        lines.append("Replication during the loads (sum over the nodes, from /metrics):")
        lines.append("")
        rrows = []
        for l in after:
            d = {k: after[l][k] - before[l][k] for k in after[l]}
            rrows.append([l, b.fmt_int(d["forwarded"]), b.fmt_int(d["repl_ok"]), b.fmt_int(d["repl_failed"])])
        lines += b.md_table(["cluster", "forwarded to the coordinator", "replication writes ok", "failed"], rrows)
        lines.append("")
    lines.append("Client and servers share the machine's cores: read the ratios, taken in one run, "
                 "not the absolute numbers.")

    groups = [f"{n} P{p}" for (n, p) in results]
    panels = [
        {"kind": "bar", "title": "successful ops/s (higher is better)", "ylabel": "ops/s", "groups": groups,
         "series": {l: [med(k, l, ok_ops) for k in results] for l in labels}},
        {"kind": "bar", "title": "p99 latency (ms, log scale, lower is better)", "ylabel": "ms", "log": True,
         "groups": groups, "fmt": "{:.2f}",
         "series": {l: [med(k, l, lambda x: x["latency_us"]["p99"]) / 1000 for k in results] for l in labels}},
    ]
    if b.chart(png_path, f"Strata: 1 node vs 3 nodes (replicas 2), {args.keys:,} x {args.value_size} B", panels,
               width=12, panel_height=4):
        lines += ["", f"![chart]({os.path.basename(png_path)})"]
    b.write_markdown(md_path, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    b.main_wrapper(main)
