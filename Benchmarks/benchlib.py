"""Shared helpers for the comparison scripts in Benchmarks/ (bench_*.py).

Standard library only. What it does for every script:
  - finds or builds the binaries (Strata from the repo root, strata-load from Benchmarks/),
  - installs redis-server / memcached / a plotting tool when missing (apt-get, pip),
  - starts servers on free loopback ports with data in temporary directories, waits (bounded) until
    they answer, and stops every one by its PID (SIGTERM, then SIGKILL), also on errors and Ctrl-C,
  - runs strata-load with --json and returns the parsed report,
  - describes the machine and the versions for the markdown, names the result files
    (YYYY-MM-DD-<cores>cores-<mem>GiB-<name>.md/.png) and draws charts (matplotlib, else gnuplot).
"""
import atexit
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
RESULTS_DIR = os.path.join(BENCH_DIR, "results")


class BenchError(Exception):
    """A failure with a message meant for the person running the benchmark."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# processes: every child is registered and stopped by PID at exit


_children = []  # Popen objects still possibly running
_children_lock = threading.Lock()


def _register(proc):
    with _children_lock:
        _children.append(proc)


def _unregister(proc):
    with _children_lock:
        if proc in _children:
            _children.remove(proc)


def stop_pid_process(proc, sig=signal.SIGTERM, timeout=60.0, name="process"):
    """Sends `sig` to the process (by its PID) and waits up to `timeout` s; then SIGKILL.
    Returns the seconds it took to exit."""
    start = time.time()
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{name} (pid {proc.pid}) did not exit within {timeout:.0f} s of {signal.Signals(sig).name}: SIGKILL")
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)
    _unregister(proc)
    return time.time() - start


def _cleanup_children():
    with _children_lock:
        procs = list(_children)
    for proc in procs:
        if proc.poll() is None:
            log(f"cleanup: stopping pid {proc.pid}")
            stop_pid_process(proc, signal.SIGTERM, timeout=20)


atexit.register(_cleanup_children)


def _on_signal(signum, _frame):
    # turn SIGTERM/SIGHUP into an exception so that `finally` blocks stop the servers
    raise KeyboardInterrupt(f"signal {signum}")


for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_signal)
signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background by a shell


def spawn(args, log_path=None, cwd=None, env=None):
    """Starts a child in its own session (Ctrl-C in the terminal reaches only this script, which
    then stops the child by PID), output to `log_path`."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd, env=env, start_new_session=True)
    finally:
        if log_path:
            out.close()
    _register(proc)
    return proc


def run(args, timeout, cwd=None, check=True, capture=True):
    """Runs a command to completion with a bounded wait; on timeout the child is killed by PID."""
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.PIPE if capture else None, text=True, start_new_session=True)
    _register(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_pid_process(proc, signal.SIGKILL, timeout=10)
        raise BenchError(f"timed out after {timeout:.0f} s: {shlex.join(args)}")
    except BaseException:
        stop_pid_process(proc, signal.SIGKILL, timeout=10)
        raise
    _unregister(proc)
    if check and proc.returncode != 0:
        raise BenchError(f"exit code {proc.returncode}: {shlex.join(args)}\n{(err or '').strip()[-3000:]}")
    return proc.returncode, out, err


def leftover_check(names=("redis-server", "memcached", "strata", "strata-load")):
    """Warns about our own children still alive (there should be none)."""
    with _children_lock:
        alive = [p for p in _children if p.poll() is None]
    for p in alive:
        log(f"warning: child pid {p.pid} ({p.args[0] if isinstance(p.args, list) else p.args}) still running")
    return alive


# --------------------------------------------------------------------------------------------
# tools and builds


def ensure_apt(binary, package):
    if shutil.which(binary):
        return
    log(f"{binary} not found: apt-get install -y {package}")
    if os.geteuid() != 0:
        raise BenchError(f"{binary} is required: apt-get install -y {package} (as root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "install", "-y", package], ["apt-get", "update"], ["apt-get", "install", "-y", package]):
        r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900)
        if cmd[1] == "install" and r.returncode == 0:
            break
    if not shutil.which(binary):
        raise BenchError(f"could not install {package} (for {binary}); install it by hand")


def ensure_servers(redis=False, memcached=False):
    if redis:
        ensure_apt("redis-server", "redis-server")
    if memcached:
        ensure_apt("memcached", "memcached")


def bin_path(package_dir):
    _, out, _ = run(["swift", "build", "-c", "release", "--show-bin-path"], timeout=300, cwd=package_dir)
    return out.strip().splitlines()[-1]


def build_product(package_dir, product):
    log(f"building {product} (swift build -c release --product {product} in {package_dir}) ...")
    start = time.time()
    code, out, err = run(["swift", "build", "-c", "release", "--product", product], timeout=3600,
                         cwd=package_dir, check=False)
    if code != 0:
        tail = "\n".join(((out or "") + (err or "")).strip().splitlines()[-40:])
        raise BenchError(f"building {product} failed:\n{tail}")
    path = os.path.join(bin_path(package_dir), product)
    log(f"built {path} in {time.time() - start:.0f} s")
    return path


def find_binaries(args):
    """Resolves args.strata / args.load: given paths, or built (unless --no-build, then the
    release build output is used as it is)."""
    strata = args.strata
    load = args.load
    if strata is None:
        strata = (os.path.join(bin_path(ROOT), "strata") if args.no_build else build_product(ROOT, "strata"))
    if load is None:
        load = (os.path.join(bin_path(BENCH_DIR), "strata-load") if args.no_build
                else build_product(BENCH_DIR, "strata-load"))
    for path, what in ((strata, "strata"), (load, "strata-load")):
        if not os.access(path, os.X_OK):
            raise BenchError(f"{what} binary not found at {path} (build it, or pass --strata/--load)")
    return os.path.abspath(strata), os.path.abspath(load)


def add_common_args(parser):
    parser.add_argument("--strata", help="strata binary (default: build it with swift build -c release)")
    parser.add_argument("--load", help="strata-load binary (default: build it in Benchmarks/)")
    parser.add_argument("--no-build", action="store_true", help="use the existing release builds, do not run swift build")
    parser.add_argument("--out-dir", default=RESULTS_DIR, help="where the .md and .png go (default: Benchmarks/results)")
    parser.add_argument("--connections", type=int, default=50, help="client connections (default 50)")
    parser.add_argument("--load-threads", type=int, default=1,
                        help="strata-load event loop threads (default 1: on 2 cores the server needs the other)")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary data directories")


# --------------------------------------------------------------------------------------------
# ports and probes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n):
    """n distinct free ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_is_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT does not count
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def resp_command(port, *args, timeout=2.0):
    """Sends one RESP command; returns the raw reply bytes (first read). Raises OSError."""
    payload = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() if isinstance(x, str) else x for x in args))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        # a bulk reply may need more reads
        m = re.match(rb"\$(\d+)\r\n", data)
        while m and len(data) < m.end() + int(m.group(1)) + 2:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def memcached_command(port, line, timeout=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(line.encode() + b"\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def http_get(url, timeout=2.0):
    """(status, body) or (None, error text)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels.items())): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


def metric(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())), 0.0)


# --------------------------------------------------------------------------------------------
# servers


class Server:
    """A server process we started. Subclasses give the command line and the readiness probe."""
    name = "server"
    proto = "resp"

    def __init__(self, label, work_dir):
        self.label = label
        self.work_dir = work_dir
        self.port = None
        self.proc = None
        self.spawned_at = None
        self.log_path = os.path.join(work_dir, f"{re.sub(r'[^A-Za-z0-9]+', '-', label).strip('-').lower()}.log")

    def command(self):
        raise NotImplementedError

    def probe(self):
        """True once the server answers a trivial request (any reply counts)."""
        raise NotImplementedError

    def start(self, timeout=120.0, wait=True):
        if self.port is None:
            self.port = free_port()
        if not port_is_free(self.port):
            raise BenchError(f"{self.label}: port {self.port} is taken by another process")
        args = self.command()
        with open(self.log_path, "a") as f:
            f.write(f"\n=== {datetime.datetime.now().isoformat()} {shlex.join(args)}\n")
        self.spawned_at = time.time()
        self.proc = spawn(args, log_path=self.log_path, cwd=self.work_dir)
        if wait:
            self.wait_ready(timeout)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout=120.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.alive():
                raise BenchError(f"{self.label} exited (code {self.proc.returncode}) while starting; "
                                 f"log {self.log_path}:\n{self.log_tail()}")
            try:
                if self.probe():
                    return time.time() - self.spawned_at
            except OSError:
                pass
            time.sleep(0.02)
        raise BenchError(f"{self.label} did not answer on port {self.port} within {timeout:.0f} s; "
                         f"log {self.log_path}:\n{self.log_tail()}")

    def stop(self, sig=signal.SIGTERM, timeout=180.0):
        if self.proc is None:
            return 0.0
        took = stop_pid_process(self.proc, sig, timeout=timeout, name=self.label)
        return took

    def process_memory(self):
        """{"rss": MiB, "anon": MiB, "file": MiB} of the process (file: mapped files such as LMDB's)."""
        out = {}
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    for key, name in (("VmRSS:", "rss"), ("RssAnon:", "anon"), ("RssFile:", "file"), ("RssShmem:", "shmem")):
                        if line.startswith(key):
                            out[name] = int(line.split()[1]) / 1024
        except (OSError, AttributeError):
            pass
        return out

    def target(self):
        return f"127.0.0.1:{self.port}"


class StrataServer(Server):
    name = "Strata"

    def __init__(self, label, work_dir, binary, data_dir=None, memory="256MiB", disk="8GiB", extra=()):
        super().__init__(label, work_dir)
        self.binary = binary
        self.data_dir = data_dir or os.path.join(work_dir, "strata-data")
        self.memory, self.disk = memory, disk
        self.extra = list(extra)
        self.http_port = None

    def command(self):
        if self.http_port is None:
            self.http_port = free_port()
        return [self.binary, "serve", "--data-dir", self.data_dir, "--port", str(self.port),
                "--http-port", str(self.http_port), "--memory", self.memory, "--disk", self.disk,
                "--log-level", "notice"] + self.extra

    def probe(self):
        return resp_command(self.port, "PING", timeout=1).startswith(b"+PONG")

    def ready(self):
        status, _ = http_get(f"http://127.0.0.1:{self.http_port}/ready", timeout=1)
        return status == 200

    def metrics(self):
        status, body = http_get(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5)
        if status != 200:
            raise BenchError(f"{self.label}: /metrics answered {status}: {body[:200]}")
        return parse_metrics(body)



ONE_LOOP = "Strata 1 loop"


def one_loop_strata(work_dir, binary, memory, disk, extra=()):
    """The same node with one event loop (`--io-threads 1`): where the load generator shares the
    machine's cores, one loop per core leaves more busy threads than cores, and the latency tail
    is scheduler ticks."""
    return StrataServer(ONE_LOOP, work_dir, binary, data_dir=os.path.join(work_dir, "strata-1-loop"),
                        memory=memory, disk=disk, extra=list(extra) + ["--io-threads", "1"])

class RedisServer(Server):
    name = "Redis"

    def __init__(self, label, work_dir, options=()):
        super().__init__(label, work_dir)
        self.options = list(options)
        self.data_dir = os.path.join(work_dir, re.sub(r"[^A-Za-z0-9]+", "-", label).lower())
        os.makedirs(self.data_dir, exist_ok=True)

    def command(self):
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.data_dir,
                "--daemonize", "no", "--protected-mode", "no"] + self.options

    def probe(self):
        # -LOADING is a reply too: the server is up, not yet serving data
        return resp_command(self.port, "PING", timeout=1)[:1] in (b"+", b"-")


class MemcachedServer(Server):
    name = "memcached"
    proto = "memcached"

    def __init__(self, label, work_dir, memory_mib=256, options=()):
        super().__init__(label, work_dir)
        self.memory_mib = memory_mib
        self.options = list(options)

    def command(self):
        args = ["memcached", "-p", str(self.port), "-l", "127.0.0.1", "-U", "0", "-m", str(self.memory_mib),
                "-c", "4096", "-t", "2"] + self.options
        if os.geteuid() == 0:
            args += ["-u", "root"]
        return args

    def probe(self):
        return memcached_command(self.port, "version", timeout=1).startswith(b"VERSION")


# --------------------------------------------------------------------------------------------
# the load generator

_OPTIONAL = ("hit_ratio", "first_error", "distinct_lost_keys", "wrong_length", "first_connection_error",
             "first_reply_s", "first_reply_unix", "first_ok_reply_s", "first_ok_reply_unix", "intervals")


def _normalise(report):
    """strata-load leaves out fields that have no value; give them None."""
    for phase in ("fill", "load"):
        p = report.get(phase)
        if p is None:
            report[phase] = None
            continue
        for k in _OPTIONAL:
            p.setdefault(k, None)
        for iv in p["intervals"] or []:
            iv.setdefault("hit_ratio", None)
    return report


def run_load(load_bin, servers, proto, timeout, extra, connections=50, threads=1, label="", accept_incomplete_fill=False):
    """Runs strata-load --json against `servers` (a list of "host:port"); returns the parsed JSON.
    strata-load exits 2 when nothing answered and 3 when a fill was incomplete (some SETs got
    errors): both raise, unless accept_incomplete_fill (then exit 3 returns the report)."""
    args = [load_bin, "--servers", ",".join(servers), "--protocol", proto, "--connections", str(connections),
            "--threads", str(threads), "--json"] + [str(a) for a in extra]
    code, out, err = run(args, timeout=timeout, check=False)
    if code == 3 and accept_incomplete_fill and out.strip():
        log(f"warning: {label}: {(err or '').strip()[-500:]}")
    elif code != 0:
        raise BenchError(f"strata-load failed ({label}, exit {code}): {shlex.join(args)}\n{(err or '').strip()[-2000:]}")
    try:
        return _normalise(json.loads(out))
    except json.JSONDecodeError as e:
        raise BenchError(f"strata-load printed no JSON ({e}): {out[:500]}")


class LoadProcess:
    """strata-load in the background (for timelines: started around a server restart)."""

    def __init__(self, load_bin, servers, proto, extra, connections=50, threads=1, work_dir=None):
        self.args = [load_bin, "--servers", ",".join(servers), "--protocol", proto, "--connections",
                     str(connections), "--threads", str(threads), "--json"] + [str(a) for a in extra]
        fd, self.out_path = tempfile.mkstemp(prefix="strata-load-", suffix=".json", dir=work_dir)
        os.close(fd)
        self.err_path = self.out_path + ".err"
        self.started_at = time.time()
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        _register(self.proc)

    def wait_started(self, timeout=60.0):
        """With --until-ready, strata-load says on stderr when its phase starts (and it is knocking)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.err_path, errors="replace") as f:
                if "phase started" in f.read():
                    return
            if self.proc.poll() is not None:
                raise BenchError(f"strata-load exited (code {self.proc.returncode}) before starting: "
                                 f"{open(self.err_path, errors='replace').read()[-1000:]}")
            time.sleep(0.005)
        raise BenchError(f"strata-load did not start within {timeout:.0f} s")

    def result(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_pid_process(self.proc, signal.SIGKILL, timeout=10)
            raise BenchError(f"strata-load did not finish within {timeout:.0f} s: {shlex.join(self.args)}")
        _unregister(self.proc)
        with open(self.out_path) as f:
            out = f.read()
        with open(self.err_path) as f:
            err = f.read()
        if self.proc.returncode != 0 and not out.strip():
            raise BenchError(f"strata-load failed (exit {self.proc.returncode}): {shlex.join(self.args)}\n{err[-2000:]}")
        try:
            return _normalise(json.loads(out))
        except json.JSONDecodeError as e:
            raise BenchError(f"strata-load printed no JSON ({e}): {out[:500]} {err[-1000:]}")

    def kill(self):
        if self.proc.poll() is None:
            stop_pid_process(self.proc, signal.SIGKILL, timeout=10)


# --------------------------------------------------------------------------------------------
# machine description, result files


def machine():
    cores = os.cpu_count()
    mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cores": cores, "mem_gib": mem_gib, "kernel": platform.release(), "arch": platform.machine(),
            "cpu": model, "python": platform.python_version()}


def version_of(args):
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def git_revision():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=30).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def header_lines(title, argv, strata_bin=None, redis=False, memcached=False, started=None):
    m = machine()
    lines = [f"# {title}", "",
             f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
             f"- command: `{shlex.join(['python3', os.path.relpath(os.path.abspath(argv[0]), ROOT)] + argv[1:])}`",
             f"- machine: {m['cores']} cores ({m['cpu'] or m['arch']}), {m['mem_gib']} GiB, Linux {m['kernel']}; "
             f"client and servers share the cores",
             f"- load average at start: {started or loadavg()}, at end: {loadavg()}",
             f"- commit: {git_revision()}"]
    versions = []
    if strata_bin:
        versions.append(f"strata {version_of([strata_bin, '--version'])}")
    if redis:
        versions.append(version_of(["redis-server", "--version"]))
    if memcached:
        versions.append(version_of(["memcached", "-V"]))
    if versions:
        lines.append(f"- versions: {'; '.join(versions)}")
    lines.append("- load generator: strata-load (Benchmarks/Sources/strata-load), closed loop, latency per request "
                 "from send to reply (HDR histogram)")
    return lines


def result_paths(out_dir, name):
    m = machine()
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, f"{datetime.date.today()}-{m['cores']}cores-{m['mem_gib']}GiB-{name}")
    return base + ".md", base + ".png"


def md_table(headers, rows, align=None):
    align = align or ["---"] + ["---:"] * (len(headers) - 1)
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return out


def fmt_int(v):
    return "-" if v is None else f"{v:,.0f}"


def fmt_ms(us):
    if us is None:
        return "-"
    ms = us / 1000
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def fmt_ratio(v, digits=4):
    return "-" if v is None else f"{v:.{digits}f}"


def write_markdown(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    log(f"wrote {path}")


# --------------------------------------------------------------------------------------------
# charts: matplotlib (installed with pip when missing), else gnuplot (apt-get gnuplot-nox)

_plotter = None


def plotter():
    """'matplotlib', 'gnuplot' or None (no chart; the markdown is still written)."""
    global _plotter
    if _plotter is not None:
        return _plotter or None
    forced = os.environ.get("BENCH_PLOTTER")
    if forced != "gnuplot":
        try:
            import matplotlib  # noqa: F401
            _plotter = "matplotlib"
        except ImportError:
            log("matplotlib missing: pip install matplotlib")
            r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"],
                               capture_output=True, text=True, timeout=900)
            if r.returncode == 0:
                import importlib
                importlib.invalidate_caches()
                try:
                    import matplotlib  # noqa: F401,F811
                    _plotter = "matplotlib"
                except ImportError:
                    pass
            else:
                log(f"pip install matplotlib failed: {r.stderr.strip()[-300:]}")
    if not _plotter:
        try:
            ensure_apt("gnuplot", "gnuplot-nox")
            _plotter = "gnuplot"
        except (BenchError, OSError, subprocess.TimeoutExpired) as e:
            log(f"no plotting tool ({e}); skipping charts")
            _plotter = ""
    return _plotter or None


COLORS = ["#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def chart(path, title, panels, width=12.0, panel_height=3.6, cols=1):
    """Draws panels one above another into a PNG. Each panel is a dict:
      kind: "bar" (groups x series) or "line" (x values, series)
      title, ylabel, log (bool), ylim (tuple or None)
      bar:  groups: [str], series: {name: [value or None per group]}
      line: x: [float], series: {name: [value or None per x]}, xlabel, hlines: {name: y} (dashed)
    cols: panels per row.
    Returns the path or None when no plotting tool is available."""
    tool = plotter()
    if tool == "matplotlib":
        _chart_matplotlib(path, title, panels, width, panel_height, cols)
    elif tool == "gnuplot":
        _chart_gnuplot(path, title, panels, width, panel_height, cols)
    else:
        return None
    log(f"wrote {path}")
    return path


def _chart_matplotlib(path, title, panels, width, panel_height, cols):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(width, panel_height * rows + 0.6), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    for ax, p in zip(flat, panels):
        names = list(p["series"].keys())
        if p["kind"] == "bar":
            groups = p["groups"]
            n = max(len(names), 1)
            w = 0.8 / n
            for i, name in enumerate(names):
                vals = [v if v is not None else 0 for v in p["series"][name]]
                xs = [g + (i - (n - 1) / 2) * w for g in range(len(groups))]
                bars = ax.bar(xs, vals, w, label=name, color=COLORS[i % len(COLORS)])
                if p.get("labels", True) and len(groups) * n <= 40:
                    ax.bar_label(bars, labels=[p.get("fmt", "{:,.0f}").format(v) if v else "" for v in vals],
                                 fontsize=7, rotation=90 if len(groups) * n > 12 else 0, padding=2)
            ax.set_xticks(range(len(groups)))
            ax.set_xticklabels(groups, fontsize=8)
            ax.margins(y=0.25)
        else:
            for i, name in enumerate(names):
                ys = [float("nan") if y is None else y for y in p["series"][name]]  # gaps break the line
                ax.plot(p["x"], ys, marker="o", markersize=3, label=name, color=COLORS[i % len(COLORS)])
            for j, (name, y) in enumerate((p.get("hlines") or {}).items()):
                idx = names.index(name) if name in names else j
                ax.axhline(y, linestyle="--", linewidth=0.8, color=COLORS[idx % len(COLORS)], alpha=0.7)
            if p.get("vline") is not None:
                ax.axvline(p["vline"], linestyle=":", linewidth=1, color="black", alpha=0.6)
            ax.set_xlabel(p.get("xlabel", ""))
        if p.get("log"):
            ax.set_yscale("log")
            from matplotlib.ticker import FuncFormatter, LogLocator
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        if p.get("ylim"):
            ax.set_ylim(*p["ylim"])
        ax.set_title(p.get("title", ""), fontsize=10)
        ax.set_ylabel(p.get("ylabel", ""))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc=p.get("legend", "best"))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _gp_quote(s):
    return '"' + str(s).replace('"', "'") + '"'


def _chart_gnuplot(path, title, panels, width, panel_height, cols):
    tmp = tempfile.mkdtemp(prefix="bench-gnuplot-")
    rows = (len(panels) + cols - 1) // cols
    try:
        px_w, px_h = int(width * 90), int((panel_height * rows + 0.6) * 90)
        script = [f"set terminal pngcairo size {px_w},{px_h} font 'sans,9'" if _gnuplot_has_cairo()
                  else f"set terminal png size {px_w},{px_h}",
                  f"set output {_gp_quote(path)}",
                  f"set multiplot layout {rows},{cols} title {_gp_quote(title)}",
                  "set grid ytics", "set key outside right top"]
        for k, p in enumerate(panels):
            names = list(p["series"].keys())
            data = os.path.join(tmp, f"p{k}.dat")
            script += [f"set title {_gp_quote(p.get('title', ''))}", f"set ylabel {_gp_quote(p.get('ylabel', ''))}",
                       "set logscale y" if p.get("log") else "unset logscale y"]
            if p.get("ylim"):
                script.append(f"set yrange [{p['ylim'][0]}:{p['ylim'][1]}]")
            elif p["kind"] == "bar" and not p.get("log"):
                script.append("set yrange [0:*]")
            else:
                script.append("set yrange [*:*]")
            with open(data, "w") as f:
                if p["kind"] == "bar":
                    for gi, g in enumerate(p["groups"]):
                        vals = [p["series"][n][gi] for n in names]
                        f.write(_gp_quote(g) + " " + " ".join("NaN" if v is None else str(v) for v in vals) + "\n")
                else:
                    for xi, x in enumerate(p["x"]):
                        vals = [p["series"][n][xi] for n in names]
                        f.write(f"{x} " + " ".join("NaN" if v is None else str(v) for v in vals) + "\n")
            if p["kind"] == "bar":
                script += ["unset arrow 1", "set style data histograms", "set style histogram clustered gap 1",
                           "set style fill solid 0.9 border -1", "set boxwidth 0.9", "set xtics nomirror",
                           "unset xlabel", "set xrange [*:*]"]
                plots = [f"{_gp_quote(data)} using {i + 2}:xtic(1) title {_gp_quote(n)} lc rgb {_gp_quote(COLORS[i % len(COLORS)])}"
                         for i, n in enumerate(names)]
            else:
                script += ["set style data linespoints", f"set xlabel {_gp_quote(p.get('xlabel', ''))}", "set xtics auto",
                           "set xrange [*:*]"]
                plots = [f"{_gp_quote(data)} using 1:{i + 2} title {_gp_quote(n)} lc rgb {_gp_quote(COLORS[i % len(COLORS)])} pt 7 ps 0.5"
                         for i, n in enumerate(names)]
                for j, (name, y) in enumerate((p.get("hlines") or {}).items()):
                    idx = names.index(name) if name in names else j
                    plots.append(f"{y} notitle dt 2 lc rgb {_gp_quote(COLORS[idx % len(COLORS)])}")
                if p.get("vline") is not None:
                    script.append(f"set arrow 1 from {p['vline']}, graph 0 to {p['vline']}, graph 1 nohead dt 3")
                else:
                    script.append("unset arrow 1")
            script.append("plot " + ", ".join(plots))
        script.append("unset multiplot")
        gp = os.path.join(tmp, "chart.gp")
        with open(gp, "w") as f:
            f.write("\n".join(script) + "\n")
        r = subprocess.run(["gnuplot", gp], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise BenchError(f"gnuplot failed: {r.stderr[-1000:]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _gnuplot_has_cairo():
    try:
        r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True, timeout=30)
        return "pngcairo" in (r.stdout + r.stderr)
    except (OSError, subprocess.TimeoutExpired):
        return False


def main_wrapper(main):
    """Runs main(); prints BenchError messages plainly; exit code 1 on failure, 130 on interrupt."""
    try:
        main()
    except BenchError as e:
        log(f"error: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        sys.exit(130)
    finally:
        _cleanup_children()
