#!/usr/bin/env python3
"""Collections: Strata against redis-server, side by side in one run.

    python3 Benchmarks/bench_collections.py [--rounds 3] [--quick] [--strata PATH]

1. Throughput: redis-benchmark (50 clients, pipeline 1 and 16) on HSET, HGET, LPUSH, LPOP, SADD,
   ZADD and ZRANGE, each server in turn, interleaved, for several rounds; median ops/s and the
   Strata/Redis ratio. Writes spread over 1,000 keys of each type (`__rand_int__`), so each
   collection stays small (Redis' listpack range), as a cache's sessions and tags are; reads hit
   collections written first.
2. Memory per member: 1,000,000 small hashes (two fields each), then one hash of 1,000,000 fields,
   on each server alone: anonymous resident memory (RssAnon) after the load, less the idle
   server's, divided by the members.
3. One HSET on a large hash (200,000 fields) that lives only on Strata's disk tier: the node is
   restarted with a memory tier smaller than the hash, and single HSETs are timed.

Strata runs the release build with --fsync everysec; Redis without persistence. Results go to
stdout and Benchmarks/results/. Client and servers share the machine's cores: read the ratios.
"""
import argparse
import csv
import datetime
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from compare_redis import ROOT, Server, free_port

LOADS = [
    ("HSET", ["HSET", "h:__rand_int__", "f:__rand_int__", "xxxxxxxxxxxxxxxx"]),
    ("HGET", ["HGET", "h:__rand_int__", "f:__rand_int__"]),
    ("LPUSH", ["LPUSH", "l:__rand_int__", "xxxxxxxxxxxxxxxx"]),
    ("LPOP", ["LPOP", "l:__rand_int__"]),
    ("SADD", ["SADD", "s:__rand_int__", "m:__rand_int__"]),
    ("ZADD", ["ZADD", "z:__rand_int__", "__rand_int__", "m:__rand_int__"]),
    ("ZRANGE 0 9", ["ZRANGE", "z:__rand_int__", "0", "9"]),
]
KEYS = 1000  # -r: __rand_int__ takes values below this


def bench(port, command, pipeline, requests):
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-P", str(pipeline), "-c", "50", "-n", str(requests),
         "-r", str(KEYS), "--csv", *command],
        capture_output=True, text=True, timeout=900, check=True).stdout
    rows = [row for row in csv.reader(io.StringIO(out)) if len(row) > 1]
    return float(rows[-1][1])


def rss_anon(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon")


def start_strata(binary, work, memory="4GiB"):
    port, http = free_port(), free_port()
    return Server("Strata", [binary, "serve", "--data-dir", os.path.join(work, "strata"), "--port", str(port),
                             "--http-port", str(http), "--memory", memory, "--disk", "16GiB", "--fsync", "everysec",
                             "--log-level", "warning"], port)


def start_redis(work):
    port = free_port()
    return Server("Redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--dir", work], port)


def throughput(binary, work, rounds, quick):
    servers = [start_strata(binary, work), start_redis(work)]
    results = {}
    try:
        for s in servers:  # the collections the reads and pops find
            for command in (["HSET"], ["LPUSH"], ["ZADD"]):
                load = next(c for name, c in LOADS if name == command[0])
                bench(s.port, load, 16, 200_000)
        for name, command in LOADS:
            for pipeline in (1, 16):
                requests = (40_000 if pipeline == 1 else 300_000) // (5 if quick else 1)
                samples = {s.name: [] for s in servers}
                for _ in range(rounds):
                    for s in servers:
                        samples[s.name].append(bench(s.port, command, pipeline, requests))
                results[(name, pipeline)] = {k: statistics.median(v) for k, v in samples.items()}
                r = results[(name, pipeline)]
                print(f"{name} P{pipeline}: Strata {r['Strata']:,.0f}, Redis {r['Redis']:,.0f}, "
                      f"ratio {r['Strata'] / r['Redis']:.2f}", flush=True)
    finally:
        for s in servers:
            s.stop()
    return results


def fill_small_hashes(client, count):
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.hset(f"user:{i}", mapping={"name": f"name-{i}", "visits": i})
        if i % 2000 == 1999:
            pipe.execute()
    pipe.execute()


def fill_big_hash(client, key, fields, batch):
    for start in range(0, fields, batch):
        client.hset(key, mapping={f"field:{i}": f"value:{i}" for i in range(start, min(fields, start + batch))})


def memory_per_member(binary, work, small, big):
    rows = []
    for load, members in (("small hashes", small * 2), ("one big hash", big)):
        for make in (lambda: start_strata(binary, work), lambda: start_redis(work)):
            server = make()
            try:
                time.sleep(1)
                idle = rss_anon(server.process.pid)
                started = time.time()
                if load == "small hashes":
                    fill_small_hashes(server.client, small)
                else:
                    fill_big_hash(server.client, "big", big, 20_000)
                seconds = time.time() - started
                time.sleep(3)  # let a write burst settle (Strata's writer applies each second)
                used = rss_anon(server.process.pid) - idle
                rows.append((load, server.name, members, used, used / members, seconds))
                print(f"{load} on {server.name}: {used / members:.1f} B per member ({used / 2**20:.0f} MiB, "
                      f"filled in {seconds:.1f} s)", flush=True)
                server.client.flushall()
            finally:
                server.stop()
                shutil.rmtree(os.path.join(work, "strata"), ignore_errors=True)
    return rows


def hset_on_disk(binary, work, fields, samples):
    server = start_strata(binary, work)
    try:
        fill_big_hash(server.client, "big", fields, 20_000)
    finally:
        server.stop()
    server = start_strata(binary, work, memory="2MiB")  # smaller than the hash: it stays on disk
    try:
        tier = server.client.execute_command("STRATA.TIER", "big")
        times = []
        for i in range(samples):
            started = time.perf_counter()
            server.client.hset("big", f"field:{i}", "changed")
            times.append(time.perf_counter() - started)
        return tier, times
    finally:
        server.stop()
        shutil.rmtree(os.path.join(work, "strata"), ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller loads (a smoke run)")
    parser.add_argument("--strata", default=os.path.join(ROOT, ".build", "release", "strata"))
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: throughput,memory,disk")
    args = parser.parse_args()
    for tool in ["redis-server", "redis-benchmark"]:
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is required (apt-get install redis-server redis-tools)")
    if not os.access(args.strata, os.X_OK):
        sys.exit(f"{args.strata} not found: run `swift build -c release` first")
    skip = set(filter(None, args.skip.split(",")))
    small, big, disk_fields = (100_000, 100_000, 50_000) if args.quick else (1_000_000, 1_000_000, 200_000)
    work = tempfile.mkdtemp(prefix="strata-collections-")
    cores = os.cpu_count()
    memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    lines = [f"# Collections: Strata vs Redis, {datetime.date.today()} ({cores} cores, {memory_gib} GiB, {platform.machine()})",
             "", f"`python3 Benchmarks/bench_collections.py {' '.join(sys.argv[1:])}`", ""]
    try:
        if "throughput" not in skip:
            results = throughput(args.strata, work, args.rounds, args.quick)
            lines += ["## Throughput (redis-benchmark, 50 clients, 1,000 keys per type, median of "
                      f"{args.rounds} interleaved rounds)", "",
                      "| command | pipeline | Strata ops/s | Redis ops/s | Strata / Redis |", "|---|---:|---:|---:|---:|"]
            for (name, pipeline), r in results.items():
                lines.append(f"| {name} | {pipeline} | {r['Strata']:,.0f} | {r['Redis']:,.0f} | {r['Strata'] / r['Redis']:.2f} |")
            lines.append("")
        if "memory" not in skip:
            rows = memory_per_member(args.strata, work, small, big)
            lines += ["## Memory per member (RssAnon after the load less the idle server's)", "",
                      "| load | server | members | bytes | bytes per member | fill seconds |", "|---|---|---:|---:|---:|---:|"]
            for load, name, members, used, per, seconds in rows:
                lines.append(f"| {load} | {name} | {members:,} | {used:,} | {per:.1f} | {seconds:.1f} |")
            lines.append("")
        if "disk" not in skip:
            tier, times = hset_on_disk(args.strata, work, disk_fields, 5)
            lines += [f"## One HSET on a {disk_fields:,}-field hash on Strata's disk tier (memory tier 2 MiB)", "",
                      f"STRATA.TIER before: `{tier}`", "",
                      "HSET latencies (s): " + ", ".join(f"{t:.3f}" for t in times), ""]
            print(lines[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.join(ROOT, "Benchmarks", "results"), exist_ok=True)
    name = f"{datetime.date.today()}-{cores}cores-{memory_gib}GiB-collections.md"
    with open(os.path.join(ROOT, "Benchmarks", "results", name), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
