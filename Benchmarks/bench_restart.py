#!/usr/bin/env python3
"""Restart: how fast each server serves again, and how warm, after a restart under load.

    python3 Benchmarks/bench_restart.py                                # full size: 1,000,000 x 1 KiB
    python3 Benchmarks/bench_restart.py --keys 20000 --steady 3 --after 5    # smoke

For each variant, one after another:
  1. start the server (fresh data), fill --keys keys of --value-size bytes,
  2. steady state: a Zipfian 90/10 load for --steady seconds (the baseline),
  3. stop it the way its persistence wants, and start it again on the same data,
  4. run the same load again, started just before the server is (it keeps knocking until the
     server accepts), with per-second samples, for --after seconds.
Reported: shutdown time; time from the restart until the first reply (any reply, also Redis'
-LOADING error), until the first value is served (first non-error reply), and until ready
(Strata: its HTTP /ready answers 200, i.e. the warm start finished; others: first value served);
then for each of the first ten seconds the hit ratio (over all keys written, so an emptied cache
shows as misses) and the p99, against the steady state before the restart. For Strata also the
share of GETs its memory tier answered in each second (from /metrics: strata_tier_hits_total
{tier="memory"} over strata_commands_total{command="get"}).

Variants: Strata (SIGTERM: it snapshots the hot keys, and warms its memory tier from disk on
start), Redis with RDB (save points set, so SIGTERM saves dump.rdb), Redis with AOF (appendonly,
everysec), memcached (SIGTERM: comes back empty), memcached warm restart (`-e` memory file in
/dev/shm, stopped with SIGUSR1, restores its items on start).
Every server gets the same memory budget (--memory-mib, default 2048: the whole data set fits).
Writes Benchmarks/results/<date>-<cores>cores-<mem>GiB-restart.md and .png.
"""
import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid

import benchlib as b

VARIANTS = {
    "strata": "Strata",
    "strata-kill9": "Strata kill -9",
    "strata-old": "Strata (--strata-old-bin)",
    "redis-rdb": "Redis RDB",
    "redis-aof": "Redis AOF",
    "memcached": "memcached",
    "memcached-warm": "memcached warm (-e)",
}


class StrataWatcher(threading.Thread):
    """After a restart: polls /ready (every 10 ms until 200) and scrapes /metrics once a second."""

    def __init__(self, server, t0, seconds):
        super().__init__(daemon=True)
        self.server, self.t0, self.seconds = server, t0, seconds
        self.ready_at = None
        self.samples = []  # (t since t0, metrics dict or None)
        self.stop_flag = threading.Event()

    def run(self):
        next_scrape = self.t0 + 1.0  # the process is new: its counters were all 0 at t0
        end = self.t0 + self.seconds + 0.5
        while not self.stop_flag.is_set() and time.time() < end:
            now = time.time()
            if self.ready_at is None and self.server.http_port:
                status, _ = b.http_get(f"http://127.0.0.1:{self.server.http_port}/ready", timeout=0.5)
                if status == 200:
                    self.ready_at = time.time() - self.t0
            if now >= next_scrape:
                try:
                    m = self.server.metrics()
                except b.BenchError:
                    m = None
                self.samples.append((now - self.t0, m))
                next_scrape += 1.0
            time.sleep(0.01 if self.ready_at is None else 0.05)


def memory_tier_share(before, after):
    """Share of GETs answered by the memory tier between two /metrics scrapes."""
    if before is None or not after:
        return None
    gets = b.metric(after, "strata_commands_total", command="get") - b.metric(before, "strata_commands_total", command="get")
    mem = b.metric(after, "strata_tier_hits_total", tier="memory") - b.metric(before, "strata_tier_hits_total", tier="memory")
    return min(1.0, mem / gets) if gets > 0 else None  # scrapes are not atomic: clamp jitter


def make_server(variant, work, strata_bin, memory_mib, shm_file, old_bin=None):
    label = VARIANTS[variant]
    if variant == "strata":
        return b.StrataServer(label, work, strata_bin, memory=f"{memory_mib}MiB", disk="8GiB",
                              extra=["--fsync", "everysec"]), signal.SIGTERM
    if variant == "strata-kill9":
        # No snapshot at shutdown: the warm start has the last periodic one (every 5 s) and the
        # write-ahead log's tail.
        return b.StrataServer(label, work, strata_bin, memory=f"{memory_mib}MiB", disk="8GiB",
                              extra=["--fsync", "everysec", "--snapshot-interval", "5"]), signal.SIGKILL
    if variant == "strata-old":
        if not old_bin:
            raise b.BenchError("the strata-old variant needs --strata-old-bin")
        return b.StrataServer(label, work, old_bin, memory=f"{memory_mib}MiB", disk="8GiB",
                              extra=["--fsync", "everysec"]), signal.SIGTERM
    if variant == "redis-rdb":
        # save points exist (so a SIGTERM shutdown saves), but none fires during the run
        return b.RedisServer(label, work, options=["--save", "3600 1", "--appendonly", "no",
                                                   "--maxmemory", f"{memory_mib}mb", "--maxmemory-policy", "allkeys-lru"]), signal.SIGTERM
    if variant == "redis-aof":
        return b.RedisServer(label, work, options=["--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                                                   "--maxmemory", f"{memory_mib}mb", "--maxmemory-policy", "allkeys-lru"]), signal.SIGTERM
    if variant == "memcached":
        return b.MemcachedServer(label, work, memory_mib=memory_mib), signal.SIGTERM
    if variant == "memcached-warm":
        return b.MemcachedServer(label, work, memory_mib=memory_mib, options=["-e", shm_file]), signal.SIGUSR1
    raise ValueError(variant)


def run_variant(variant, args, work, strata_bin, load_bin):
    shm_file = f"/dev/shm/strata-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    server, stop_signal = make_server(variant, os.path.join(work, variant), strata_bin, args.memory_mib, shm_file,
                                      args.strata_old_bin)
    os.makedirs(server.work_dir, exist_ok=True)
    label = server.label
    res = {"label": label, "variant": variant, "stop_signal": signal.Signals(stop_signal).name}
    common = ["--keys", args.keys, "--value-size", args.value_size]
    load_args = common + ["--read-ratio", args.read_ratio, "--distribution", args.distribution, "--zipf-skew", args.zipf_skew,
                          "--pipeline", args.pipeline, "--hit-check", "--interval", 1]
    try:
        server.start(timeout=60)
        b.log(f"{label}: up on port {server.port} (pid {server.proc.pid}); filling {args.keys:,} keys ...")
        r = b.run_load(load_bin, [server.target()], server.proto, timeout=max(900, args.keys / 1000),
                       extra=common + ["--fill", "--fill-pipeline", args.fill_pipeline],
                       connections=args.connections, threads=args.load_threads, label=f"fill {label}")
        res["fill"] = r["fill"]
        b.log(f"{label}: filled at {r['fill']['ops_per_sec']:,.0f} SETs/s; steady state for {args.steady:g} s ...")

        before = server.metrics() if isinstance(server, b.StrataServer) else None
        r = b.run_load(load_bin, [server.target()], server.proto, timeout=args.steady + 180,
                       extra=load_args + ["--duration", args.steady, "--seed", STEADY_SEED],
                       connections=args.connections, threads=args.load_threads, label=f"steady {label}")
        res["steady"] = r["load"]
        if before is not None:
            res["steady_memory_share"] = memory_tier_share(before, server.metrics())
        res["memory_before"] = server.process_memory()
        S = r["load"]
        b.log(f"{label}: steady {S['ops_per_sec']:,.0f} ops/s, hit ratio {b.fmt_ratio(S['hit_ratio'])}, "
              f"p99 {b.fmt_ms(S['latency_us']['p99'])} ms; stopping with {res['stop_signal']} ...")

        res["shutdown_s"] = server.stop(stop_signal, timeout=600)
        res["exit_code"] = server.proc.returncode
        if variant == "redis-rdb" and not os.path.exists(os.path.join(server.data_dir, "dump.rdb")):
            res["note"] = "no dump.rdb after SIGTERM"
        if variant == "memcached-warm":
            if not os.path.exists(shm_file + ".meta"):
                res["note"] = "no .meta file after SIGUSR1: memcached will start cold"
            # memcached 1.6 refuses to restore when restarted within the wall-clock second it stopped in
            # ("restart incompatible due to setting for [stop_time]"): start it in the next second
            time.sleep(max(0.0, int(time.time()) + 1.02 - time.time()))

        # the load first (knocking), then the server
        load = b.LoadProcess(load_bin, [server.target()], server.proto,
                             load_args + ["--duration", args.after, "--until-ready", "--connect-timeout", args.max_wait,
                                          "--seed", AFTER_SEED],
                             connections=args.connections, threads=args.load_threads, work_dir=work)
        try:
            load.wait_started()
            watcher = None
            server.start(wait=False)
            t0 = server.spawned_at
            if isinstance(server, b.StrataServer):
                watcher = StrataWatcher(server, t0, args.after + 2)
                watcher.start()
            R = load.result(timeout=args.after + args.max_wait + 120)["load"]
        finally:
            load.kill()
        if watcher is not None:
            watcher.stop_flag.set()
            watcher.join(timeout=10)
        if not server.alive():
            raise b.BenchError(f"{label} exited after the restart; log {server.log_path}:\n{server.log_tail()}")
        res["after"] = R
        res["load_offset_s"] = R["start_unix"] - t0  # the load's second 0 begins this long after the spawn
        res["first_reply_s"] = R["first_reply_unix"] - t0 if R["first_reply_unix"] else None
        res["serving_s"] = R["first_ok_reply_unix"] - t0 if R["first_ok_reply_unix"] else None
        if watcher is not None:
            res["ready_s"] = watcher.ready_at
            shares = []
            prev = {}  # a new process: every counter starts at 0
            for t, m in watcher.samples:  # t ~ 1, 2, 3, ... s after the spawn
                shares.append({"t": t, "share": memory_tier_share(prev, m) if m is not None else None,
                               "loaded": b.metric(m, "strata_warmup_loaded_keys") if m else None})
                prev = m if m is not None else prev
            res["memory_share"] = shares
        else:
            res["ready_s"] = res["serving_s"]
        res["memory_after"] = server.process_memory()
        b.log(f"{label}: shutdown {res['shutdown_s']:.2f} s, first reply {fmt_s(res['first_reply_s'])} s, "
              f"serving {fmt_s(res['serving_s'])} s, ready {fmt_s(res['ready_s'])} s after the restart")
        return res
    finally:
        server.stop(timeout=120)
        for f in (shm_file, shm_file + ".meta"):
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass


def fmt_s(v):
    return "-" if v is None else f"{v:.3f}"


# The load after the restart draws other keys (from the same Zipfian distribution) than the load
# before it: with one seed, it replayed the same sequence, and the warm start's snapshot of the hot
# keys held exactly the keys about to be read.
STEADY_SEED = 1
AFTER_SEED = 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1_000_000, help="keys written (default 1,000,000)")
    ap.add_argument("--value-size", type=int, default=1024, help="bytes per value (default 1024)")
    ap.add_argument("--memory-mib", type=int, default=2048, help="memory budget of every server, MiB (default 2048)")
    ap.add_argument("--steady", type=float, default=20, help="seconds of load before the restart (default 20)")
    ap.add_argument("--after", type=float, default=15, help="seconds of load from the restart (default 15)")
    ap.add_argument("--report-seconds", type=int, default=10, help="seconds after the restart in the tables (default 10)")
    ap.add_argument("--max-wait", type=float, default=300, help="longest wait for a restarted server (default 300 s)")
    ap.add_argument("--pipeline", type=int, default=1)
    ap.add_argument("--fill-pipeline", type=int, default=32)
    ap.add_argument("--read-ratio", type=float, default=0.9)
    ap.add_argument("--zipf-skew", type=float, default=0.99)
    ap.add_argument("--distribution", choices=["zipf", "uniform"], default="zipf",
                    help="key distribution of the load (default zipf: the hottest keys come first either way)")
    ap.add_argument("--strata-old-bin", help="another strata binary, for the strata-old variant (before/after)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="subset of " + ",".join(VARIANTS))
    b.add_common_args(ap)
    args = ap.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v}")
    started_load = b.loadavg()
    b.ensure_servers(redis=any(v.startswith("redis") for v in variants),
                     memcached=any(v.startswith("memcached") for v in variants))
    strata_bin, load_bin = b.find_binaries(args)
    b.plotter()
    if "memcached-warm" in variants and not os.path.isdir("/dev/shm"):
        raise b.BenchError("/dev/shm is missing: memcached's warm restart needs a memory file there")

    work = tempfile.mkdtemp(prefix="strata-restart-")
    results = []
    try:
        for v in variants:
            results.append(run_variant(v, args, work, strata_bin, load_bin))
    finally:
        if args.keep_data:
            b.log(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    b.leftover_check()

    # ---- report
    n = args.report_seconds
    md_path, png_path = b.result_paths(args.out_dir, "restart" if args.distribution == "zipf" else "restart-uniform")
    lines = b.header_lines("Restart under load: Strata vs Redis (RDB, AOF) vs memcached (cold, warm)", sys.argv,
                           strata_bin, redis=any(v.startswith("redis") for v in variants),
                           memcached=any(v.startswith("memcached") for v in variants), started=started_load)
    lines += [
        f"- data: {args.keys:,} keys x {args.value_size} B random values ({args.keys * args.value_size / 2**30:.2f} GiB); "
        f"memory budget {args.memory_mib} MiB for every server",
        f"- servers: Strata `--memory {args.memory_mib}MiB --disk 8GiB --fsync everysec`, stopped with SIGTERM; "
        f"Redis RDB `--save '3600 1' --appendonly no` (SIGTERM saves dump.rdb); Redis AOF `--appendonly yes "
        f"--appendfsync everysec --save ''`; both `--maxmemory {args.memory_mib}mb`; memcached `-m {args.memory_mib} -t 2` "
        f"(SIGTERM); memcached warm `-e /dev/shm/<file>` stopped with SIGUSR1 (and restarted in the next "
        f"wall-clock second: memcached 1.6 refuses to restore its items within the second it stopped in)",
        f"- load: {args.read_ratio:.0%} GET / {1 - args.read_ratio:.0%} SET, "
        f"{'Zipfian skew ' + str(args.zipf_skew) if args.distribution == 'zipf' else 'uniform keys'}, "
        f"{args.connections} connections, pipeline {args.pipeline}; {args.steady:g} s before the restart, "
        f"{args.after:g} s from the restart (strata-load started first, retrying its connections every 20-60 ms); "
        f"the two loads draw different key sequences (seeds {STEADY_SEED} and {AFTER_SEED}) from the same distribution",
        "- first reply: any reply (Redis answers -LOADING while it loads); serving: first value served "
        "(non-error reply); ready: Strata's /ready is 200 (warm start done), others = serving",
        "- hit ratio: GET hits / GETs answered, over keys that were all written; second k = "
        "[k-1, k) s after the server was started",
        "",
    ]
    rows = []
    for r in results:
        S, A = r["steady"], r["after"]
        first = [iv for iv in (A["intervals"] or [])[:n]]
        gets = sum(iv["gets"] for iv in first)
        hits = sum(iv["hits"] for iv in first)
        worst_p99 = max((iv["p99_us"] for iv in first if iv["ops"]), default=None)
        rows.append([r["label"], f"{r['shutdown_s']:.2f}", fmt_s(r["first_reply_s"]), fmt_s(r["serving_s"]),
                     fmt_s(r["ready_s"]), b.fmt_int(S["ops_per_sec"]), b.fmt_ratio(S["hit_ratio"]),
                     b.fmt_ms(S["latency_us"]["p99"]), b.fmt_int(sum(iv["ops"] for iv in first) / max(n, 1)),
                     b.fmt_ratio(hits / gets if gets else None), b.fmt_ms(worst_p99)])
    lines += b.md_table(["variant", "shutdown s", "first reply s", "serving s", "ready s", "steady ops/s",
                         "steady hit ratio", "steady p99 ms", f"first {n} s ops/s", f"first {n} s hit ratio",
                         f"first {n} s worst p99 ms"], rows)
    notes = [f"- {r['label']}: {r['note']}" for r in results if r.get("note")]
    if notes:
        lines += [""] + notes
    lines.append("")

    def per_second(title, key, fmt, steady_value):
        lines.append(f"{title}:")
        lines.append("")
        hdr = ["second"] + [r["label"] for r in results]
        body = [["steady"] + [fmt(steady_value(r)) for r in results]]
        for k in range(n):
            row = [str(k + 1)]
            for r in results:
                ivs = r["after"]["intervals"] or []
                row.append(fmt(key(ivs[k])) if k < len(ivs) and ivs[k]["ops"] else "no reply")
            body.append(row)
        lines.extend(b.md_table(hdr, body))
        lines.append("")

    per_second("Hit ratio per second after the restart", lambda iv: iv["hit_ratio"],
               lambda v: b.fmt_ratio(v, 3), lambda r: r["steady"]["hit_ratio"])
    per_second("p99 latency (ms) per second after the restart", lambda iv: iv["p99_us"], b.fmt_ms,
               lambda r: r["steady"]["latency_us"]["p99"])
    per_second("Replies per second after the restart (errors included)", lambda iv: iv["ops"], b.fmt_int,
               lambda r: r["steady"]["ops_per_sec"])
    errs = [r for r in results if any(iv["errors"] for iv in (r["after"]["intervals"] or [])[:n])]
    if errs:
        per_second("Error replies per second (e.g. -LOADING)", lambda iv: iv["errors"], b.fmt_int, lambda r: r["steady"]["errors"])

    for strata in (r for r in results if r["variant"].startswith("strata")):
        if strata.get("memory_share") is None:
            continue
        lines.append(f"{strata['label']}: share of GETs answered from its memory tier, and keys its warm start had loaded:")
        lines.append("")
        body = [["steady", b.fmt_ratio(strata.get("steady_memory_share"), 3), "-"]]
        for k, s in enumerate(strata["memory_share"][:n]):
            body.append([str(k + 1), b.fmt_ratio(s["share"], 3), b.fmt_int(s["loaded"])])
        lines += b.md_table(["second", "memory-tier share of GETs", "warm-start keys loaded"], body)
        lines.append("")
    lines.append("Client and servers share the machine's cores: read the ratios between servers in one run, "
                 "not the absolute numbers.")

    # the chart: the last seconds of the steady state (x <= 0), then the seconds after the restart
    pre = max(0, min(5, int(args.steady)))
    xs = list(range(-pre + 1, 1)) + [0.5] + list(range(1, n + 1))  # 0.5: a gap (the restart) breaks the lines

    def series(key):
        out = {}
        for r in results:
            before = (r["steady"]["intervals"] or [])[-pre:] if pre else []
            before = [None] * (pre - len(before)) + before
            ivs = r["after"]["intervals"] or []
            after = [ivs[k] if k < len(ivs) else None for k in range(n)]
            out[r["label"]] = [key(iv) if iv and iv["ops"] else None for iv in before + [None] + after]
        return out

    hit = series(lambda iv: iv["hit_ratio"])
    if strata and strata.get("memory_share"):
        shares = [s["share"] for s in strata["memory_share"][:n]]
        hit["Strata: memory-tier share"] = [None] * (pre + 1) + shares + [None] * (n - len(shares))
    xlabel = "seconds after the restart (<= 0: before it)"
    panels = [
        {"kind": "line", "title": "hit ratio per second (over all keys written)", "ylabel": "hit ratio",
         "xlabel": xlabel, "x": xs, "series": hit, "ylim": (0, 1.05), "vline": 0.5},
        {"kind": "line", "title": "p99 latency per second (ms, log scale)", "ylabel": "ms", "log": True,
         "xlabel": xlabel, "x": xs, "series": series(lambda iv: iv["p99_us"] / 1000), "vline": 0.5},
        {"kind": "line", "title": "replies per second", "ylabel": "ops/s", "xlabel": xlabel, "x": xs,
         "series": series(lambda iv: iv["ops"]), "vline": 0.5},
    ]
    if b.chart(png_path, f"Restart under load: {args.keys:,} x {args.value_size} B, Zipf {args.zipf_skew}", panels,
               width=12, panel_height=3.4):
        lines += ["", f"![chart]({os.path.basename(png_path)})"]
    b.write_markdown(md_path, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    b.main_wrapper(main)
