#!/usr/bin/env python3
"""Transactions and scripts: Strata vs redis-server, with strata-load, side by side in one run.

    python3 Benchmarks/bench_atomic.py                                   # full: 3 rounds x 5 s per load
    python3 Benchmarks/bench_atomic.py --duration 2 --rounds 1 --keys 20000   # smoke
    python3 Benchmarks/bench_atomic.py --strata-old-bin OLD              # also a build before the gate

Loads (50 connections, --keys keys chosen uniformly, 100 B incompressible values, pipeline 1 and 16):
  - MULTI3: MULTI, SET {k}:a v, SET {k}:b v, SET {k}:c v, EXEC (one request = one transaction),
  - EVALSHA: `EVALSHA <sha of "return redis.call('SET', KEYS[1], ARGV[1])"> 1 k v`,
  - SET and GET: plain, for the cost the atomic gate adds to every other command (compare with
    --strata-old-bin, a build from before the gate).
Servers: Strata (--memory 2GiB, --fsync everysec) [and the old build], redis-server without
persistence. Every load runs on each server in turn, interleaved, for --rounds rounds; medians.
Writes Benchmarks/results/<date>-<cores>cores-<mem>GiB-atomic.md.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

import benchlib as b

SCRIPT = "return redis.call('SET', KEYS[1], ARGV[1])"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000, help="key space (default 100,000)")
    ap.add_argument("--duration", type=float, default=5, help="seconds per load per server per round (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--pipelines", default="1,16", help="pipeline depths (default 1,16)")
    ap.add_argument("--loads", default="MULTI3,EVALSHA,SET,GET", help="loads (default MULTI3,EVALSHA,SET,GET)")
    ap.add_argument("--strata-old-bin", help="a second Strata build to run beside (e.g. before the gate)")
    b.add_common_args(ap)
    args = ap.parse_args()
    pipelines = [int(x) for x in args.pipelines.split(",")]
    loads = args.loads.split(",")
    started_load = b.loadavg()

    b.ensure_servers(redis=True)
    strata_bin, load_bin = b.find_binaries(args)

    work = tempfile.mkdtemp(prefix="strata-atomic-")
    servers = []
    try:
        servers.append(b.StrataServer("Strata", work, strata_bin, memory="2GiB", disk="8GiB", extra=["--fsync", "everysec"]))
        if args.strata_old_bin:
            servers.append(b.StrataServer("Strata old", work, args.strata_old_bin, data_dir=os.path.join(work, "old-data"), memory="2GiB", disk="8GiB",
                                          extra=["--fsync", "everysec"]))
        servers.append(b.RedisServer("Redis", work, options=["--save", "", "--appendonly", "no"]))
        for s in servers:
            s.start(timeout=60)
            b.log(f"{s.label} up on port {s.port} (pid {s.proc.pid})")
        shas = {}
        for s in servers:
            reply = b.resp_command(s.port, "SCRIPT", "LOAD", SCRIPT)
            if reply.startswith(b"$40\r\n"):
                shas[s.label] = reply[5:45].decode()
            else:  # a build without scripting
                b.log(f"{s.label}: SCRIPT LOAD answered {reply[:80]!r}; no EVALSHA load there")
        has_multi = {s.label for s in servers if b.resp_command(s.port, "MULTI").startswith(b"+OK")}
        for s in servers:
            b.run_load(load_bin, [s.target()], s.proto, timeout=max(600, args.keys / 500),
                       extra=["--keys", args.keys, "--value-size", 100, "--fill", "--fill-pipeline", 32],
                       connections=args.connections, threads=args.load_threads, label=f"fill {s.label}")

        results = {}  # (load, pipeline) -> label -> [reports]
        for pipeline in pipelines:
            for load in loads:
                key = (load, pipeline)
                results[key] = {}
                for _ in range(args.rounds):
                    for s in servers:
                        extra = ["--keys", args.keys, "--value-size", 100, "--duration", args.duration,
                                 "--pipeline", pipeline, "--distribution", "uniform",
                                 "--read-ratio", 1.0 if load == "GET" else 0.0]
                        if load == "MULTI3":
                            if s.label not in has_multi:
                                continue
                            extra += ["--write-as", "multi3"]
                        elif load == "EVALSHA":
                            if s.label not in shas:
                                continue
                            extra += ["--write-as", f"evalsha:{shas[s.label]}"]
                        r = b.run_load(load_bin, [s.target()], s.proto, timeout=args.duration + 120, extra=extra,
                                       connections=args.connections, threads=args.load_threads,
                                       label=f"{load} P{pipeline} {s.label}")
                        results[key].setdefault(s.label, []).append(r["load"])
                        if not s.alive():
                            raise b.BenchError(f"{s.label} died; log {s.log_path}:\n{s.log_tail()}")
                med = {l: statistics.median(x["ops_per_sec"] for x in v) for l, v in results[key].items()}
                b.log(f"{load} P{pipeline}: " + ", ".join(f"{l} {v:,.0f}" for l, v in med.items()))
        for s in servers:
            s.stop()
    finally:
        for s in servers:
            s.stop(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
        b.leftover_check()

    labels = [s.label for s in servers]

    def med(key, label, f):
        values = results[key].get(label)
        return statistics.median(f(x) for x in values) if values else None

    md_path, _ = b.result_paths(args.out_dir, "atomic")
    lines = b.header_lines("Transactions and scripts: Strata vs Redis with strata-load", sys.argv, strata_bin,
                           redis=True, started=started_load)
    lines += [
        f"- {args.connections} connections, {args.keys:,} keys (uniform), 100 B random values; median of "
        f"{args.rounds} interleaved round(s) of {args.duration:g} s; strata-load threads {args.load_threads}",
        "- MULTI3 = MULTI, three SETs of hash-tagged keys, EXEC (ops/s = transactions/s); EVALSHA = a script "
        "that SETs its key; SET/GET plain",
        "- servers: Strata `--memory 2GiB --disk 8GiB --fsync everysec`"
        + (f"; Strata old: `{args.strata_old_bin}`, same flags" if args.strata_old_bin else "")
        + "; Redis `--save '' --appendonly no`",
        "",
    ]
    headers = ["load"] + [f"{l} ops/s" for l in labels] + ["Strata / Redis"]
    if args.strata_old_bin:
        headers.append("Strata / Strata old")
    headers += [f"{l} p50 / p99 ms" for l in labels]
    rows = []
    for key in results:
        load, pipeline = key
        ops = {l: med(key, l, lambda x: x["ops_per_sec"]) for l in labels}
        row = [f"{load} P{pipeline}"] + [b.fmt_int(ops[l]) if ops[l] else "-" for l in labels]
        row.append(f"{ops['Strata'] / ops['Redis']:.2f}" if ops["Strata"] and ops["Redis"] else "-")
        if args.strata_old_bin:
            row.append(f"{ops['Strata'] / ops['Strata old']:.2f}" if ops["Strata"] and ops["Strata old"] else "-")
        for l in labels:
            p50, p99 = med(key, l, lambda x: x["latency_us"]["p50"]), med(key, l, lambda x: x["latency_us"]["p99"])
            row.append(f"{b.fmt_ms(p50)} / {b.fmt_ms(p99)}" if p50 is not None else "-")
        errors = sum(x["errors"] + x["timeouts"] + x["lost_in_flight"] for v in results[key].values() for x in v)
        if errors:
            row[0] += f" ({errors:,} errors)"
        rows.append(row)
    lines += b.md_table(headers, rows)
    lines += ["", "Client and servers share the machine's cores: read the ratios, taken in one run, "
              "not the absolute numbers."]
    b.write_markdown(md_path, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    b.main_wrapper(main)
