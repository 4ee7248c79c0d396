"""End-to-end test fixtures: real `strata` processes on loopback, real clients.

Every node binds port 0 (the kernel picks a free port) and the fixture reads the ports it got
from the node's log, so tests can run in parallel without colliding. Each node gets a fresh
data directory under pytest's tmp_path. Teardown ends only processes the test started, by PID.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def strata_binary():
    path = os.environ.get("STRATA_BIN") or os.path.join(ROOT, ".build", "debug", "strata")
    if not os.access(path, os.X_OK):
        pytest.fail(f"strata binary not found at {path}: build it first (swift build)", pytrace=False)
    return path


def require_tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is required for this test and is not installed", pytrace=False)
    return path


class Node:
    """A running `strata serve` process."""

    ADDRESS = re.compile(r"address=(?:http://)?127\.0\.0\.1:(\d+)")

    def __init__(self, data_dir, *extra, env=None, port=0, http_port=0, cpus=None):
        self.cpus = cpus  # CPU affinity of the process (like taskset), or None
        self.fixed_port = port
        self.fixed_http_port = http_port
        self.data_dir = str(data_dir)
        self.extra = list(extra)
        self.env = env
        self.process = None
        self.port = None
        self.http_port = None
        self.log_lines = []

    def start(self, timeout=30):
        args = [strata_binary(), "serve", "--data-dir", self.data_dir, "--bind", "127.0.0.1",
                "--port", str(self.fixed_port), "--http-port", str(self.fixed_http_port),
                "--log-level", "info"] + self.extra
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        pin = (lambda: os.sched_setaffinity(0, self.cpus)) if self.cpus else None
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                                        preexec_fn=pin)
        self.port = self.http_port = None
        ready = threading.Event()

        def pump():
            for raw in self.process.stderr:
                line = raw.decode(errors="replace")
                self.log_lines.append(line)
                match = self.ADDRESS.search(line)
                if match and "accepting RESP clients" in line:
                    self.port = int(match.group(1))
                elif match and "/metrics" in line:
                    self.http_port = int(match.group(1))
                if self.port and self.http_port:
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.time() + timeout
        while time.time() < deadline and not ready.is_set():
            if self.process.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError(f"strata exited with {self.process.returncode}: {''.join(self.log_lines)}")
            ready.wait(0.05)
        if not ready.is_set():
            self.kill()
            raise RuntimeError("strata did not start in time:\n" + "".join(self.log_lines))
        return self

    def client(self, **kwargs):
        kwargs.setdefault("socket_timeout", 10)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def http(self, path, timeout=5):
        """(status, body) of GET path on the node's HTTP port."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def raw(self, payload, read_timeout=2.0):
        """Sends raw bytes on a new connection; returns what comes back until the server closes
        or goes quiet for read_timeout seconds."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=read_timeout) as s:
            s.sendall(payload)
            chunks = []
            try:
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
            except socket.timeout:
                pass
            return b"".join(chunks)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the node and waits for it to exit; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self, *extra):
        self.stop()
        if extra:
            self.extra = list(extra)
        return self.start()

    @property
    def pid(self):
        return self.process.pid


@pytest.fixture
def make_node(tmp_path):
    """Factory: make_node(*flags, name='node') starts a node; all are stopped at teardown."""
    nodes = []

    def factory(*extra, name="node", env=None, port=0, http_port=0, cpus=None):
        node = Node(tmp_path / name, *extra, env=env, port=port, http_port=http_port, cpus=cpus)
        node.start()
        nodes.append(node)
        return node

    yield factory
    for node in nodes:
        try:
            node.stop(timeout=15)
        except Exception:
            pass


@pytest.fixture
def node(make_node):
    return make_node("--memory", "64MiB", "--disk", "256MiB")


@pytest.fixture
def r(node):
    client = node.client()
    yield client
    client.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server (Debian's) on a free loopback port, without persistence, for
    comparing replies side by side."""
    binary = require_tool("redis-server")
    port = free_port()
    workdir = tmp_path / "redis"
    workdir.mkdir()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    deadline = time.time() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.time() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    yield client, port
    client.close()
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
