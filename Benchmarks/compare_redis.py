#!/usr/bin/env python3
"""Strata against redis-server, side by side in one run, on the same redis-benchmark loads.

    python3 Benchmarks/compare_redis.py [--rounds 3] [--quick]

Starts, on loopback ports of its own:
  - Strata (release build; --fsync everysec, memory large enough for the whole key space),
  - redis-server without persistence,
  - redis-server with appendonly yes, appendfsync everysec,
then for each load (GET and SET; 50 clients; pipeline 1 and 16; 100 B and 4 KiB values) runs
redis-benchmark against each server in turn, interleaved, for several rounds, and reports the
median ops/s and the Strata/Redis ratios. The key space (100,000 keys) is written first, so GETs
are hits on every server. Results go to stdout and to Benchmarks/results/.
Client and servers share the machine's cores, so absolute figures are noisy; the ratios, taken in
one run, are what to read.
"""
import argparse
import csv
import datetime
import io
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYSPACE = 100_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, timeout=30):
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            client.ping()
            return client
        except redis.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


class Server:
    def __init__(self, name, args, port, cwd=None):
        self.name, self.port = name, port
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
        self.client = wait_for(port)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def populate(client, size):
    value = b"x" * size
    pipe = client.pipeline(transaction=False)
    for i in range(KEYSPACE):
        pipe.set(b"key:%012d" % i, value)
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def bench(port, test, pipeline, size, requests):
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test, "-P", str(pipeline), "-d", str(size),
         "-c", "50", "-n", str(requests), "-r", str(KEYSPACE), "--csv"],
        capture_output=True, text=True, timeout=600, check=True).stdout
    rows = list(csv.reader(io.StringIO(out)))
    for row in rows:
        if row and row[0].upper().startswith(test.upper()):
            return float(row[1])
    raise RuntimeError(f"no result for {test} in: {out}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--strata", default=os.path.join(ROOT, ".build", "release", "strata"))
    args = parser.parse_args()
    for tool in ["redis-server", "redis-benchmark"]:
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is required (apt-get install redis-server redis-tools)")
    if not os.access(args.strata, os.X_OK):
        sys.exit(f"{args.strata} not found: run `swift build -c release` first")

    work = tempfile.mkdtemp(prefix="strata-compare-")
    servers = []
    try:
        strata_port, strata_http = free_port(), free_port()
        servers.append(Server("Strata", [args.strata, "serve", "--data-dir", os.path.join(work, "strata"),
                                         "--port", str(strata_port), "--http-port", str(strata_http),
                                         "--memory", "2GiB", "--disk", "8GiB", "--fsync", "everysec",
                                         "--log-level", "warning"], strata_port))
        redis_port = free_port()
        servers.append(Server("Redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                        "--save", "", "--appendonly", "no", "--dir", work], redis_port))
        aof_port = free_port()
        aof_dir = os.path.join(work, "aof")
        os.makedirs(aof_dir)
        servers.append(Server("Redis AOF", ["redis-server", "--port", str(aof_port), "--bind", "127.0.0.1",
                                            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                                            "--dir", aof_dir], aof_port))

        loads = [(test, pipeline, size) for size in (100, 4096) for pipeline in (1, 16) for test in ("set", "get")]
        results = {}
        for test, pipeline, size in loads:
            if test == "set":
                for s in servers:
                    s.client.flushall()
            else:
                for s in servers:
                    populate(s.client, size)
            requests = (50_000 if pipeline == 1 else 400_000) // (4 if args.quick else 1)
            samples = {s.name: [] for s in servers}
            for _ in range(args.rounds):
                for s in servers:  # interleaved: every server sees the same machine state
                    samples[s.name].append(bench(s.port, test, pipeline, size, requests))
            results[(test, pipeline, size)] = {name: statistics.median(v) for name, v in samples.items()}
            r = results[(test, pipeline, size)]
            print(f"{test.upper()} P{pipeline} {size}B: " + ", ".join(f"{k} {v:,.0f}" for k, v in r.items()), flush=True)

        cores = os.cpu_count()
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
        lines = [
            f"# Strata vs Redis, redis-benchmark, {datetime.date.today()} ({cores} cores, {memory_gib} GiB, {platform.machine()})",
            "",
            f"50 clients, {KEYSPACE:,} keys (written before GETs), median of {args.rounds} interleaved rounds; "
            "Strata with --fsync everysec; ratio = Strata / Redis.",
            "",
            "| load | Strata ops/s | Redis (no persistence) | ratio | Redis AOF everysec | ratio |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for (test, pipeline, size), r in results.items():
            lines.append(
                f"| {test.upper()} P{pipeline} {size} B | {r['Strata']:,.0f} | {r['Redis']:,.0f} | "
                f"{r['Strata'] / r['Redis']:.2f} | {r['Redis AOF']:,.0f} | {r['Strata'] / r['Redis AOF']:.2f} |")
        table = "\n".join(lines) + "\n"
        print()
        print(table)
        os.makedirs(os.path.join(ROOT, "Benchmarks", "results"), exist_ok=True)
        name = f"{datetime.date.today()}-{cores}cores-{memory_gib}GiB-redis-compare.md"
        with open(os.path.join(ROOT, "Benchmarks", "results", name), "w") as f:
            f.write(table)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
