#!/usr/bin/env python3
"""Plain GET/SET throughput on a key space that fits in memory: Strata vs redis-server, with strata-load.

    python3 Benchmarks/bench_hot_keys.py                              # full: 3 rounds x 5 s per load
    python3 Benchmarks/bench_hot_keys.py --duration 2 --rounds 1 --keys 20000     # smoke

The table compare_redis.py makes with redis-benchmark (kept as it is), made with strata-load
instead, which also gives latency percentiles: GET and SET, pipeline 1 and 16, 100 B and 4 KiB
values, 50 connections, --keys keys (default 100,000) chosen uniformly (as redis-benchmark -r), on
  - Strata (--memory 2GiB: every key in the memory tier; --fsync everysec),
  - the same Strata with --io-threads 1 (one event loop: where the load generator shares the
    machine's cores, fewer busy threads than cores; --no-one-loop leaves it out),
  - redis-server without persistence,
  - redis-server with appendonly yes, appendfsync everysec.
All servers run at once; every load runs on each server in turn, interleaved, for --rounds rounds
of --duration seconds, and the median is reported. Before the loads of a value size every server is
filled with every key at that size, so GETs are hits (the hit ratio is checked).
Writes Benchmarks/results/<date>-<cores>cores-<mem>GiB-hot-keys.md and .png.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

import benchlib as b


ONE_LOOP = b.ONE_LOOP


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000, help="key space (default 100,000)")
    ap.add_argument("--duration", type=float, default=5, help="seconds per load per server per round (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--sizes", default="100,4096", help="value sizes (default 100,4096)")
    ap.add_argument("--pipelines", default="1,16", help="pipeline depths (default 1,16)")
    ap.add_argument("--distribution", default="uniform", choices=["uniform", "zipf"])
    ap.add_argument("--no-aof", action="store_true", help="leave out Redis with AOF")
    ap.add_argument("--no-one-loop", action="store_true", help="leave out Strata with --io-threads 1")
    b.add_common_args(ap)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    pipelines = [int(x) for x in args.pipelines.split(",")]
    started_load = b.loadavg()

    b.ensure_servers(redis=True)
    strata_bin, load_bin = b.find_binaries(args)
    b.plotter()

    work = tempfile.mkdtemp(prefix="strata-hot-")
    servers = []
    try:
        servers.append(b.StrataServer("Strata", work, strata_bin, memory="2GiB", disk="8GiB", extra=["--fsync", "everysec"]))
        if not args.no_one_loop:
            servers.append(b.one_loop_strata(work, strata_bin, memory="2GiB", disk="8GiB", extra=["--fsync", "everysec"]))
        servers.append(b.RedisServer("Redis", work, options=["--save", "", "--appendonly", "no"]))
        if not args.no_aof:
            servers.append(b.RedisServer("Redis AOF", work, options=["--save", "", "--appendonly", "yes",
                                                                     "--appendfsync", "everysec"]))
        for s in servers:
            s.start(timeout=60)
            b.log(f"{s.label} up on port {s.port} (pid {s.proc.pid})")

        results = {}  # (test, pipeline, size) -> label -> [load reports]
        for size in sizes:
            for s in servers:
                r = b.run_load(load_bin, [s.target()], s.proto, timeout=max(600, args.keys / 500),
                               extra=["--keys", args.keys, "--value-size", size, "--fill", "--fill-pipeline", 32],
                               connections=args.connections, threads=args.load_threads, label=f"fill {s.label}")
                b.log(f"filled {s.label} with {args.keys:,} x {size} B at {r['fill']['ops_per_sec']:,.0f}/s")
            for pipeline in pipelines:
                for test in ("SET", "GET"):
                    key = (test, pipeline, size)
                    results[key] = {s.label: [] for s in servers}
                    extra = ["--keys", args.keys, "--value-size", size, "--duration", args.duration,
                             "--pipeline", pipeline, "--distribution", args.distribution,
                             "--read-ratio", 1.0 if test == "GET" else 0.0]
                    if test == "GET":
                        extra.append("--hit-check")
                    for _ in range(args.rounds):
                        for s in servers:  # interleaved: every server sees the same machine state
                            r = b.run_load(load_bin, [s.target()], s.proto, timeout=args.duration + 120, extra=extra,
                                           connections=args.connections, threads=args.load_threads,
                                           label=f"{test} P{pipeline} {size} B {s.label}")
                            results[key][s.label].append(r["load"])
                            if not s.alive():
                                raise b.BenchError(f"{s.label} died; log {s.log_path}:\n{s.log_tail()}")
                    med = {l: statistics.median(x["ops_per_sec"] for x in v) for l, v in results[key].items()}
                    b.log(f"{test} P{pipeline} {size} B: " + ", ".join(f"{l} {v:,.0f}" for l, v in med.items()))
        for s in servers:
            s.stop()
    finally:
        for s in servers:
            s.stop(timeout=60)
        if args.keep_data:
            b.log(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        b.leftover_check()

    labels = [s.label for s in servers]
    stratas = [l for l in labels if l.startswith("Strata")]
    others = [l for l in labels if not l.startswith("Strata")]

    def med(key, label, f):
        return statistics.median(f(x) for x in results[key][label])

    md_path, png_path = b.result_paths(args.out_dir, "hot-keys")
    lines = b.header_lines("Hot keys: Strata vs Redis, GET/SET with strata-load", sys.argv, strata_bin, redis=True,
                           started=started_load)
    lines += [
        f"- {args.connections} connections, {args.keys:,} keys ({args.distribution}), written before the loads of "
        f"each value size (GETs are hits); random (incompressible) values; median of {args.rounds} interleaved "
        f"round(s) of {args.duration:g} s; strata-load threads {args.load_threads}",
        "- servers: Strata `--memory 2GiB --disk 8GiB --fsync everysec`; Redis `--save '' --appendonly no`"
        + ("" if args.no_aof else "; Redis AOF `--appendonly yes --appendfsync everysec`")
        + ("" if args.no_one_loop else f"; {ONE_LOOP}: the same with `--io-threads 1`"),
        "- ratio = that Strata / that server; latency = median of the rounds' percentiles",
        "",
    ]
    headers = ["load"] + [f"{l} ops/s" for l in labels]
    headers += [f"{st} / {o}" for st in stratas for o in others]
    headers += [f"{l} p50 / p99 ms" for l in labels] + ["GET hit ratio (all)"]
    rows = []
    for key in results:
        test, pipeline, size = key
        ops = {l: med(key, l, lambda x: x["ops_per_sec"]) for l in labels}
        row = [f"{test} P{pipeline} {size} B"] + [b.fmt_int(ops[l]) for l in labels]
        row += [f"{ops[st] / ops[o]:.2f}" if ops[o] else "-" for st in stratas for o in others]
        for l in labels:
            row.append(f"{b.fmt_ms(med(key, l, lambda x: x['latency_us']['p50']))} / "
                       f"{b.fmt_ms(med(key, l, lambda x: x['latency_us']['p99']))}")
        if test == "GET":
            gets = sum(x["gets"] for l in labels for x in results[key][l])
            hits = sum(x["hits"] for l in labels for x in results[key][l])
            row.append(b.fmt_ratio(hits / gets if gets else None))
        else:
            row.append("")
        rows.append(row)
        errors = sum(x["errors"] + x["timeouts"] + x["lost_in_flight"] for l in labels for x in results[key][l])
        if errors:
            row[0] += f" ({errors:,} errors)"
    lines += b.md_table(headers, rows)
    lines += ["", "Client and servers share the machine's cores: read the ratios, taken in one run, "
              "not the absolute numbers."]

    groups = [f"{t} P{p}\n{s} B" for (t, p, s) in results]
    panels = [
        {"kind": "bar", "title": "throughput (ops/s, higher is better)", "ylabel": "ops/s", "groups": groups,
         "series": {l: [med(k, l, lambda x: x["ops_per_sec"]) for k in results] for l in labels}},
        {"kind": "bar", "title": "p99 latency (ms, log scale, lower is better)", "ylabel": "ms", "log": True,
         "groups": groups, "fmt": "{:.2f}",
         "series": {l: [med(k, l, lambda x: x["latency_us"]["p99"]) / 1000 for k in results] for l in labels}},
    ]
    if b.chart(png_path, f"GET/SET, {args.connections} connections, {args.keys:,} keys", panels, width=13,
               panel_height=4.2):
        lines += ["", f"![chart]({os.path.basename(png_path)})"]
    b.write_markdown(md_path, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    b.main_wrapper(main)
