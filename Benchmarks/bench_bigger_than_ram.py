#!/usr/bin/env python3
"""A data set bigger than the memory budget: Strata vs Redis vs memcached, side by side in one run.

    python3 Benchmarks/bench_bigger_than_ram.py                      # full size: 2,000,000 x 1 KiB, 256 MiB
    python3 Benchmarks/bench_bigger_than_ram.py --keys 20000 --duration 3 --rounds 1 --memory-mib 8   # smoke

Every server gets the same memory budget (default 256 MiB): Strata `--memory 256MiB --disk 8GiB`
(the rest of the data lives in its LMDB disk tier), Redis `--maxmemory 256mb --maxmemory-policy
allkeys-lru` without persistence, memcached `-m 256`; and the same Strata with `--io-threads 1`
("Strata 1 loop": where the load generator shares the machine's cores, one loop per core leaves
more busy threads than cores, and the latency tail is scheduler ticks). Each is filled with --keys keys of
--value-size bytes (2 GiB by default: eight times the budget), then strata-load runs a Zipfian
(skew 0.99) 90% GET / 10% SET load with --hit-check against each server in turn, interleaved, for
--rounds rounds of --duration seconds. Every key was written, so a GET that returns nothing is a
lost key: the hit ratio is over all keys ever written.

Reported per server: ops/s (median of the rounds), hit ratio, distinct keys missed, p50/p99/p99.9
latency (median of the rounds), memory use of the process. Goals for Strata: 100% of reads
answered for live keys, at least half of Redis' ops/s, p99 under 1 ms.
Writes Benchmarks/results/<date>-<cores>cores-<mem>GiB-bigger-than-ram.md and .png.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import benchlib as b


ONE_LOOP = b.ONE_LOOP


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=2_000_000, help="keys written (default 2,000,000)")
    ap.add_argument("--value-size", type=int, default=1024, help="bytes per value (default 1024)")
    ap.add_argument("--memory-mib", type=int, default=256, help="memory budget of every server, MiB (default 256)")
    ap.add_argument("--strata-disk", default="8GiB", help="Strata --disk (default 8GiB)")
    ap.add_argument("--duration", type=float, default=30, help="seconds per round per server (default 30)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--pipeline", type=int, default=1, help="requests in flight per connection (default 1)")
    ap.add_argument("--fill-pipeline", type=int, default=32, help="pipeline depth of the fill (default 32)")
    ap.add_argument("--read-ratio", type=float, default=0.9, help="fraction of GETs (default 0.9)")
    ap.add_argument("--zipf-skew", type=float, default=0.99, help="Zipf skew (default 0.99)")
    ap.add_argument("--servers", default="strata,strata1,redis,memcached",
                    help="subset of strata,strata1,redis,memcached (strata1: Strata with --io-threads 1)")
    b.add_common_args(ap)
    args = ap.parse_args()
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in wanted:
        if s not in ("strata", "strata1", "redis", "memcached"):
            ap.error(f"unknown server {s}")
    started_load = b.loadavg()

    b.ensure_servers(redis="redis" in wanted, memcached="memcached" in wanted)
    strata_bin, load_bin = b.find_binaries(args)
    b.plotter()  # install the plotting tool up front, not after a long run

    work = tempfile.mkdtemp(prefix="strata-btr-")
    servers = []
    try:
        m = args.memory_mib
        if "strata" in wanted:
            servers.append(b.StrataServer("Strata", work, strata_bin, memory=f"{m}MiB", disk=args.strata_disk,
                                          extra=["--fsync", "everysec"]))
        if "strata1" in wanted:
            servers.append(b.one_loop_strata(work, strata_bin, memory=f"{m}MiB", disk=args.strata_disk,
                                             extra=["--fsync", "everysec"]))
        if "redis" in wanted:
            servers.append(b.RedisServer("Redis", work, options=[
                "--maxmemory", f"{m}mb", "--maxmemory-policy", "allkeys-lru", "--save", "", "--appendonly", "no"]))
        if "memcached" in wanted:
            servers.append(b.MemcachedServer("memcached", work, memory_mib=m))
        for s in servers:
            s.start(timeout=60)
            b.log(f"{s.label} up on port {s.port} (pid {s.proc.pid})")

        common = ["--keys", args.keys, "--value-size", args.value_size]
        fills = {}
        for s in servers:
            b.log(f"filling {s.label}: {args.keys:,} keys of {args.value_size} B ...")
            t = time.time()
            r = b.run_load(load_bin, [s.target()], s.proto, timeout=max(900, args.keys / 1000),
                           extra=common + ["--fill", "--fill-pipeline", args.fill_pipeline],
                           connections=args.connections, threads=args.load_threads, label=f"fill {s.label}",
                           # A cache that evicts may refuse a few SETs under memory pressure
                           # (memcached: "out of memory storing object"); they are reported, and
                           # the hit ratio counts those keys as misses.
                           accept_incomplete_fill=not isinstance(s, b.StrataServer))
            fills[s.label] = r["fill"]
            b.log(f"  {r['fill']['replies']:,} SETs in {time.time() - t:.1f} s ({r['fill']['ops_per_sec']:,.0f}/s), "
                  f"errors {r['fill']['errors']}" + (f" (first: {r['fill']['first_error']})" if r['fill']['first_error'] else ""))

        runs = {s.label: [] for s in servers}
        load_args = common + ["--duration", args.duration, "--read-ratio", args.read_ratio, "--distribution", "zipf",
                              "--zipf-skew", args.zipf_skew, "--pipeline", args.pipeline, "--hit-check"]
        for rnd in range(args.rounds):
            for s in servers:
                # A new key sequence each round (the same for every server within a round): with one
                # seed, every round replayed the first one's keys, which the caches then held.
                r = b.run_load(load_bin, [s.target()], s.proto, timeout=args.duration + 180,
                               extra=load_args + ["--seed", 100 + rnd],
                               connections=args.connections, threads=args.load_threads, label=f"load {s.label}")
                runs[s.label].append(r["load"])
                L = r["load"]
                b.log(f"round {rnd + 1}/{args.rounds} {s.label}: {L['ops_per_sec']:,.0f} ops/s, hit ratio "
                      f"{b.fmt_ratio(L['hit_ratio'])}, p99 {b.fmt_ms(L['latency_us']['p99'])} ms, errors {L['errors']}")
                if not s.alive():
                    raise b.BenchError(f"{s.label} died during the load; log {s.log_path}:\n{s.log_tail()}")

        memory = {s.label: s.process_memory() for s in servers}
        strata_metrics = None
        for s in servers:
            if s.label == "Strata":
                try:
                    strata_metrics = s.metrics()
                except b.BenchError as e:
                    b.log(f"warning: {e}")
        for s in servers:
            s.stop()

        # ---- summarise
        summary = {}
        for label, rs in runs.items():
            gets = sum(r["gets"] for r in rs)
            hits = sum(r["hits"] for r in rs)
            summary[label] = {
                "ops": statistics.median(r["ops_per_sec"] for r in rs),
                "hit_ratio": hits / gets if gets else None,
                "misses": sum(r["misses"] for r in rs),
                "lost_keys": max(r.get("distinct_lost_keys") or 0 for r in rs),
                "errors": sum(r["errors"] + r["timeouts"] + r["lost_in_flight"] for r in rs),
                "wrong": sum(r.get("wrong_length") or 0 for r in rs),
                "p50": statistics.median(r["latency_us"]["p50"] for r in rs),
                "p99": statistics.median(r["latency_us"]["p99"] for r in rs),
                "p999": statistics.median(r["latency_us"]["p999"] for r in rs),
                "max": max(r["latency_us"]["max"] for r in rs),
            }

        md_path, png_path = b.result_paths(args.out_dir, "bigger-than-ram")
        data_gib = args.keys * args.value_size / 2**30
        lines = b.header_lines("Bigger than RAM: Strata vs Redis vs memcached", sys.argv, strata_bin,
                               redis="redis" in wanted, memcached="memcached" in wanted, started=started_load)
        lines += [
            f"- data: {args.keys:,} keys (`key:%010d`) x {args.value_size} B random (incompressible) values = "
            f"{data_gib:.2f} GiB, {data_gib * 1024 / m:.1f}x the memory budget of {m} MiB",
            f"- servers: Strata `--memory {m}MiB --disk {args.strata_disk} --fsync everysec`"
            + (f" ({ONE_LOOP}: the same with `--io-threads 1`)" if "strata1" in wanted else "") + "; Redis "
            f"`--maxmemory {m}mb --maxmemory-policy allkeys-lru --save '' --appendonly no`; memcached `-m {m} -t 2`",
            f"- load: fill (every key once, pipeline {args.fill_pipeline}), then {args.read_ratio:.0%} GET / "
            f"{1 - args.read_ratio:.0%} SET, Zipfian skew {args.zipf_skew} (hot keys scattered over the key space), "
            f"{args.connections} connections, pipeline {args.pipeline}, {args.rounds} interleaved round(s) of "
            f"{args.duration:g} s per server, each round a new key sequence (seed 100 + round), the same for every "
            f"server; strata-load threads {args.load_threads}",
            "- hit ratio: GET hits / GETs, over keys that were all written (a miss is a key the server lost); "
            "ops/s and latencies: median of the rounds; max: worst round",
            "",
        ]
        headers = ["server", "ops/s", "hit ratio", "distinct keys missed", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
                   "errors", "RSS MiB (anon + file)", "fill ops/s"]
        rows = []
        for s in servers:
            v = summary[s.label]
            mem = memory.get(s.label) or {}
            rss = f"{mem.get('rss', 0):,.0f} ({mem.get('anon', 0):,.0f} + {mem.get('file', 0) + mem.get('shmem', 0):,.0f})" if mem else "-"
            rows.append([s.label, b.fmt_int(v["ops"]), b.fmt_ratio(v["hit_ratio"]), f"{v['lost_keys']:,}",
                         b.fmt_ms(v["p50"]), b.fmt_ms(v["p99"]), b.fmt_ms(v["p999"]), b.fmt_ms(v["max"]),
                         f"{v['errors']:,}", rss, b.fmt_int(fills[s.label]["ops_per_sec"])])
        lines += b.md_table(headers, rows)
        lines.append("")
        refused = [(label, f) for label, f in fills.items() if f.get("errors")]
        for label, f in refused:
            lines.append(f"- {label} refused {f['errors']:,} SETs of the fill (first: `{f.get('first_error') or '?'}`)")
        if refused:
            lines.append("")
        if args.rounds > 1:
            lines.append("Per round ops/s: " + "; ".join(
                f"{label} " + ", ".join(f"{r['ops_per_sec']:,.0f}" for r in rs) for label, rs in runs.items()))
            lines.append("")

        goals = []
        if "Strata" in summary:
            st = summary["Strata"]
            full = st["hit_ratio"] is not None and st["lost_keys"] == 0 and st["misses"] == 0
            goals.append(f"- Strata answers 100% of reads for live keys: **{'yes' if full else 'NO'}** "
                         f"(hit ratio {b.fmt_ratio(st['hit_ratio'], 6)}, {st['lost_keys']:,} distinct keys missed, "
                         f"{st['wrong']:,} wrong-length values)")
            if "Redis" in summary and summary["Redis"]["ops"]:
                ratio = st["ops"] / summary["Redis"]["ops"]
                goals.append(f"- Strata at least half of Redis' ops/s: **{'yes' if ratio >= 0.5 else 'NO'}** ({ratio:.2f}x)")
            goals.append(f"- Strata p99 under 1 ms: **{'yes' if st['p99'] < 1000 else 'NO'}** (p99 {b.fmt_ms(st['p99'])} ms)")
            if ONE_LOOP in summary:
                one = summary[ONE_LOOP]
                vs = (f", {one['ops'] / summary['Redis']['ops']:.2f}x Redis' ops/s"
                      if "Redis" in summary and summary["Redis"]["ops"] else "")
                goals.append(f"- {ONE_LOOP}: p99 {b.fmt_ms(one['p99'])} ms{vs}, hit ratio {b.fmt_ratio(one['hit_ratio'])}")
            if strata_metrics:
                mh = b.metric(strata_metrics, "strata_tier_hits_total", tier="memory")
                dh = b.metric(strata_metrics, "strata_tier_hits_total", tier="disk")
                if mh + dh:
                    goals.append(f"- Strata reads served from memory / disk since start (fill and all rounds): "
                                 f"{mh / (mh + dh):.1%} / {dh / (mh + dh):.1%} "
                                 f"(strata_tier_hits_total), promotions {b.metric(strata_metrics, 'strata_promotions_total'):,.0f}")
        if goals:
            lines += ["Goals:", ""] + goals + [""]
        lines.append("Client and servers share the machine's cores: read the ratios between servers in one run, "
                     "not the absolute numbers.")

        labels = [s.label for s in servers]
        panels = [
            {"kind": "bar", "title": "throughput (ops/s, higher is better)", "ylabel": "ops/s", "groups": ["ops/s"],
             "series": {l: [summary[l]["ops"]] for l in labels}},
            {"kind": "bar", "title": "hit ratio over all keys written", "ylabel": "hit ratio", "groups": ["hit ratio"],
             "series": {l: [summary[l]["hit_ratio"]] for l in labels}, "fmt": "{:.4f}", "ylim": (0, 1.15)},
            {"kind": "bar", "title": "latency (ms, log scale)", "ylabel": "ms", "log": True,
             "groups": ["p50", "p99", "p99.9"], "fmt": "{:.3f}",
             "series": {l: [summary[l][k] / 1000 for k in ("p50", "p99", "p999")] for l in labels}},
        ]
        if b.chart(png_path, f"{args.keys:,} x {args.value_size} B keys, {m} MiB memory budget, "
                   f"Zipf {args.zipf_skew}, {args.read_ratio:.0%} GET", panels, width=14, panel_height=4.5, cols=3):
            lines += ["", f"![chart]({os.path.basename(png_path)})"]
        b.write_markdown(md_path, lines)
        print("\n".join(lines))
    finally:
        for s in servers:
            s.stop(timeout=60)
        if args.keep_data:
            b.log(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        b.leftover_check()


if __name__ == "__main__":
    b.main_wrapper(main)
