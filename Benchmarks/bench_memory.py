#!/usr/bin/env python3
"""Process memory side by side: Strata against redis-server on the same data, anonymous RSS at
rest and at peak.

    python3 Benchmarks/bench_memory.py                    # the four loads of issue 17, full size
    python3 Benchmarks/bench_memory.py --scale 0.05 --quiet 3   # smoke (a few seconds per load)

Loads (each server fresh, one at a time, the same bytes sent to each):
  small-100    1,000,000 keys x 100 B,  Strata --memory 4GiB, Redis without a limit (budget not reached)
  small-16     1,000,000 keys x 16 B,   the same
  budget-128   2,000,000 keys x 100 B,  Strata --memory 128MiB, Redis --maxmemory 128mb allkeys-lru
  burst-4k     300,000 keys x 4 KiB written as fast as the server takes them (sustained write burst),
               Strata --memory 256MiB, Redis --maxmemory 256mb allkeys-lru
  bigger       2,000,000 keys x 1 KiB (2 GiB) at 256 MiB, then 500,000 random GETs over all keys
               (redis-benchmark, 50 connections), as in bench_bigger_than_ram.py
Values are random bytes (incompressible: Strata compresses values of 1 KiB and more when that
pays). Keys are `key:%012d`, redis-benchmark's `__rand_int__` format, so its GETs hit them.
Writes go through `redis-cli --pipe` (one connection, as fast as the server reads).

Reported per server: RssAnon (from /proc/PID/status) sampled every 0.2 s while loading (peak),
and after --quiet seconds without traffic (at rest); Strata's memory tier bytes and heap
(strata_heap_bytes) and Redis' used_memory and used_memory_rss at rest. Redis runs without
persistence. Writes Benchmarks/results/<date>-<cores>cores-<mem>GiB-memory.md.
No speed is measured here; the machine's other load does not change the figures much.
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import benchlib as b

LOADS = {
    # name: (keys, value size, Strata --memory, Redis options, writes are a burst, GETs after)
    "small-100": (1_000_000, 100, "4GiB", [], False, 0),
    "small-16": (1_000_000, 16, "4GiB", [], False, 0),
    "budget-128": (2_000_000, 100, "128MiB", ["--maxmemory", "128mb", "--maxmemory-policy", "allkeys-lru"], False, 0),
    "burst-4k": (300_000, 4096, "256MiB", ["--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"], True, 0),
    "bigger": (2_000_000, 1024, "256MiB", ["--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"], False, 500_000),
}


def resp_sets(keys, size, seed):
    """SET commands in RESP for keys [0, keys), random values, in chunks of bytes."""
    rng = random.Random(seed)
    pool = rng.randbytes(1 << 20)
    chunk = []
    for i in range(keys):
        key = b"key:%012d" % i
        offset = rng.randrange(0, len(pool) - size)
        chunk.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, size, pool[offset:offset + size]))
        if len(chunk) == 2000:
            yield b"".join(chunk)
            chunk = []
    if chunk:
        yield b"".join(chunk)


def pipe_sets(port, keys, size, seed, timeout):
    """Streams the SETs to the server through redis-cli --pipe; returns its summary line."""
    proc = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe", "--pipe-timeout", "120"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    b._register(proc)
    try:
        for data in resp_sets(keys, size, seed):
            proc.stdin.write(data)
        proc.stdin.close()
        out = proc.stdout.read().decode(errors="replace")
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            b.stop_pid_process(proc, timeout=10, name="redis-cli")
        b._unregister(proc)
    summary = [line for line in out.splitlines() if "replies" in line]
    if proc.returncode != 0 or not summary or not re.search(r"errors: 0,", summary[-1]):
        raise b.BenchError(f"redis-cli --pipe failed (exit {proc.returncode}): {out[-2000:]}")
    return summary[-1]


def random_gets(port, keys, count, timeout):
    b.run(["redis-benchmark", "-p", str(port), "-t", "get", "-n", str(count), "-r", str(keys),
           "-c", "50", "-q"], timeout=timeout)


class Sampler:
    """Samples a process's RssAnon every 0.2 s in a thread; `peak` in MiB."""

    def __init__(self, server):
        self.server = server
        self.peak = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.server.process_memory().get("anon", 0.0))
            self.stop.wait(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join()


def redis_info(port):
    text = b.resp_command(port, "INFO", "memory", timeout=5).decode(errors="replace")
    return {k: int(v) for k, v in re.findall(r"^(used_memory|used_memory_rss):(\d+)", text, re.M)}


def measure(kind, load, args, strata_bin, work):
    keys, size, memory, redis_options, burst, gets = LOADS[load]
    keys = max(1000, int(keys * args.scale))
    gets = int(gets * args.scale)
    if kind == "strata":
        server = b.StrataServer("Strata", work, strata_bin, memory=memory, disk=args.strata_disk)
    else:
        server = b.RedisServer("Redis", work, options=["--save", "", "--appendonly", "no"] + redis_options)
    server.start()
    try:
        row = {"server": server.name, "start": server.process_memory().get("anon", 0.0)}
        with Sampler(server) as sampler:
            started = time.time()
            pipe_sets(server.port, keys, size, seed=args.seed, timeout=3600)
            row["write_s"] = time.time() - started
            if gets:
                random_gets(server.port, keys, gets, timeout=3600)
            time.sleep(1)
        row["peak"] = sampler.peak
        time.sleep(args.quiet)
        mem = server.process_memory()
        row["rest"] = mem.get("anon", 0.0)
        row["peak"] = max(row["peak"], row["rest"])
        if kind == "strata":
            metrics = server.metrics()
            row["tier"] = b.metric(metrics, "strata_tier_bytes", tier="memory") / 2**20
            row["items"] = b.metric(metrics, "strata_tier_items", tier="memory")
            row["heap_in_use"] = b.metric(metrics, "strata_heap_bytes", state="in_use") / 2**20
            row["heap_free"] = b.metric(metrics, "strata_heap_bytes", state="free") / 2**20
            row["limit"] = b.metric(metrics, "strata_process_memory_limit_bytes") / 2**20
        else:
            info = redis_info(server.port)
            row["used_memory"] = info.get("used_memory", 0) / 2**20
            row["used_memory_rss"] = info.get("used_memory_rss", 0) / 2**20
        row.update(keys=keys, size=size, memory=memory)
        b.log(f"{load} {server.name}: {row}")
        return row
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loads", default=",".join(LOADS), help=f"subset of {','.join(LOADS)}")
    ap.add_argument("--servers", default="strata,redis", help="subset of strata,redis")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply key and GET counts (smoke: 0.05)")
    ap.add_argument("--quiet", type=float, default=20, help="seconds without traffic before 'at rest' (default 20)")
    ap.add_argument("--seed", type=int, default=17, help="random seed of the values")
    ap.add_argument("--strata", help="strata binary (default: build it with swift build -c release)")
    ap.add_argument("--no-build", action="store_true", help="use the existing release build")
    ap.add_argument("--strata-disk", default="8GiB", help="Strata --disk (default 8GiB)")
    ap.add_argument("--out-dir", default=b.RESULTS_DIR, help="where the .md goes (default: Benchmarks/results)")
    ap.add_argument("--keep-data", action="store_true", help="keep the temporary data directories")
    args = ap.parse_args()
    loads = [x.strip() for x in args.loads.split(",") if x.strip()]
    servers = [x.strip() for x in args.servers.split(",") if x.strip()]
    for load in loads:
        if load not in LOADS:
            ap.error(f"unknown load {load}")
    started_load = b.loadavg()
    b.ensure_servers(redis=True)  # redis-cli and redis-benchmark drive both servers
    strata_bin = args.strata
    if strata_bin is None:
        strata_bin = (os.path.join(b.bin_path(b.ROOT), "strata") if args.no_build else b.build_product(b.ROOT, "strata"))
    strata_bin = os.path.abspath(strata_bin)

    rows = {}
    for load in loads:
        for kind in servers:
            work = tempfile.mkdtemp(prefix=f"strata-mem-{load}-{kind}-")
            try:
                rows[(load, kind)] = measure(kind, load, args, strata_bin, work)
            finally:
                if not args.keep_data:
                    shutil.rmtree(work, ignore_errors=True)

    def mib(v):
        return f"{v:,.0f}"

    table = []
    for load in loads:
        strata, redis = rows.get((load, "strata")), rows.get((load, "redis"))
        keys, size, memory = LOADS[load][0], LOADS[load][1], LOADS[load][2]
        first = (strata or redis)
        what = f"{load}: {first['keys']:,} x {first['size']} B, {memory}"
        cells = [what]
        if strata:
            cells += [mib(strata["rest"]), mib(strata["peak"]), mib(strata["limit"]), mib(strata["tier"]),
                      f"{mib(strata['heap_in_use'])} / {mib(strata['heap_free'])}"]
        else:
            cells += ["", "", "", "", ""]
        if redis:
            cells += [mib(redis["rest"]), mib(redis["peak"]), mib(redis["used_memory_rss"]), mib(redis["used_memory"])]
        else:
            cells += ["", "", "", ""]
        if strata and redis and redis["used_memory_rss"]:
            cells.append(f"{strata['rest'] / redis['used_memory_rss']:.2f}")
        else:
            cells.append("")
        table.append(cells)

    headers = ["load", "Strata anon at rest", "Strata anon peak", "Strata limit", "Strata memory tier",
               "Strata heap in use / free", "Redis anon at rest", "Redis anon peak", "Redis used_memory_rss",
               "Redis used_memory", "Strata at rest / Redis RSS"]
    lines = b.header_lines("Process memory: Strata vs Redis (MiB)", sys.argv, strata_bin=strata_bin, redis=True,
                           started=started_load)
    lines = [line for line in lines if not line.startswith("- load generator")]
    lines.append("- load generator: redis-cli --pipe (writes, one connection), redis-benchmark (GETs, 50 connections)")
    lines += ["", "All figures MiB. anon = RssAnon of /proc/PID/status; at rest = after "
              f"{args.quiet:.0f} s without traffic; peak = highest 0.2 s sample while loading. Strata limit = "
              "--memory + min(--memory, 64 MiB), `strata_process_memory_limit_bytes`.", ""]
    lines += b.md_table(headers, table)
    os.makedirs(args.out_dir, exist_ok=True)
    md, _ = b.result_paths(args.out_dir, "memory")
    b.write_markdown(md, lines)
    print("\n".join(lines))
    b.leftover_check()


if __name__ == "__main__":
    try:
        main()
    except b.BenchError as e:
        b.log(f"error: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        b.log("interrupted")
        sys.exit(130)
