"""The README's walkthroughs, run the way a new user pastes them: block by block, into one shell.

A walkthrough block is a fenced code block preceded by `<!-- walkthrough: NAME -->` in README.md.
The blocks run in order in one bash process (so variables and functions carry over from block to
block, as in a terminal), each block sourced from a file with stdin from /dev/null (so no command
can swallow the next block), in a scratch directory laid out like the repository:
run-local.sh, scripts/ and grafana/ are copied, `.build/release/strata` links to $STRATA_BIN, and
a stand-in `swift` on PATH answers run-local.sh's `swift build ... --show-bin-path` with that
directory and does nothing else, so run-local.sh runs as written minus the build.

The README's ports (7379-7382, 9379-9382) are replaced, as whole numbers, by free ones in the same
order, and run-local.sh gets the same through STRATA_PORT / STRATA_HTTP_PORT (PROMETHEUS_PORT for
its Prometheus). The first terminal of the README (`./run-local.sh`) is started by the test; its
Ctrl-C is played by SIGTERM, which run-local.sh traps the same way (a background job ignores
SIGINT). Every process the walkthroughs start stays in the shell's process group; teardown ends
them one by one, by PID.
"""
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import ROOT, require_tool, strata_binary

README_PORTS = [7379, 7380, 7381, 7382, 9379, 9380, 9381, 9382]
MARKER = re.compile(r"<!-- walkthrough: ([a-z0-9-]+) -->\s*\n```(?:sh|bash)?\n(.*?)\n```", re.S)
BLOCK_TIMEOUT = 240


def walkthrough_blocks(text):
    """[(name, code)] in README order."""
    return [(m.group(1), m.group(2)) for m in MARKER.finditer(text)]


def free_port_run(count):
    """`count` consecutive free loopback ports, outside the kernel's ephemeral range (where
    port-0 binds of other tests land)."""
    rng = random.SystemRandom()
    for _ in range(200):
        base = rng.randrange(20000, 30000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port range")


class Shell:
    """One bash process fed block after block; output is collected per block."""

    def __init__(self, cwd, env):
        self.cwd = cwd
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=cwd, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.lines = queue.Queue()
        self.count = 0
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for raw in self.process.stdout:
            self.lines.put(raw.decode(errors="replace"))
        self.lines.put(None)

    def run(self, code, timeout=BLOCK_TIMEOUT):
        """Runs `code` in the shell; returns (exit status of its last command, output)."""
        self.count += 1
        path = os.path.join(self.cwd, f".block-{self.count}.sh")
        with open(path, "w") as f:
            f.write(code + "\n")
        sentinel = f"__block_{self.count}_done__"
        self.process.stdin.write(f'source {path} < /dev/null; echo "{sentinel} $?"\n'.encode())
        self.process.stdin.flush()
        output = []
        deadline = time.time() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                raise AssertionError(f"block did not finish in {timeout} s:\n{code}\n--- output:\n{''.join(output)}")
            if line is None:
                raise AssertionError(f"the shell exited during:\n{code}\n--- output:\n{''.join(output)}")
            if line.startswith(sentinel):
                return int(line.split()[1]), "".join(output)
            output.append(line)

    def group_pids(self):
        """Live processes in the shell's process group (everything the walkthroughs started)."""
        pgid = self.process.pid
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry))
        return pids

    def close(self):
        """Ends what is left: SIGTERM to each process of the group by PID, then SIGKILL."""
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            pids = [p for p in self.group_pids() if p != self.process.pid]
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + grace
            while time.time() < deadline and [p for p in self.group_pids() if p != self.process.pid]:
                time.sleep(0.2)
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def nodes_lines(output):
    """The `nodes` function's lines: {id: line}."""
    return {m.group(1): line for line in output.splitlines() if (m := re.match(r"^id (\S+) ", line))}


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def workspace(tmp_path):
    """A scratch copy of what the walkthroughs touch, and the environment of the user's shell."""
    for tool in ("redis-cli", "curl", "paste", "awk"):
        require_tool(tool)
    for name in ("run-local.sh", "README.md"):
        shutil.copy2(os.path.join(ROOT, name), tmp_path / name)
    for name in ("scripts", "grafana"):
        shutil.copytree(os.path.join(ROOT, name), tmp_path / name)
    release = tmp_path / ".build" / "release"
    release.mkdir(parents=True)
    os.symlink(strata_binary(), release / "strata")
    stub = tmp_path / "stub-bin"
    stub.mkdir()
    (stub / "swift").write_text(
        "#!/bin/sh\n# Stands in for the toolchain: the binary is built already.\n"
        f'case " $* " in *" --show-bin-path "*) echo "{release}";; esac\n')
    (stub / "swift").chmod(0o755)
    base = free_port_run(9)  # four client ports, four HTTP ports, Prometheus
    http, prometheus = base + 4, base + 8
    mapping = {str(p): str(base + i) for i, p in enumerate(README_PORTS[:4])}
    mapping.update({str(p): str(http + i) for i, p in enumerate(README_PORTS[4:])})
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    env.update(PATH=f"{stub}:{env.get('PATH', '/usr/bin:/bin')}", STRATA_PORT=mapping["7379"],
               STRATA_HTTP_PORT=mapping["9379"], PROMETHEUS_PORT=str(prometheus), LC_ALL="C")
    return tmp_path, env, mapping


def localise(code, mapping):
    """The block with the README's ports replaced by the test's."""
    return re.sub(r"\b(7379|7380|7381|7382|9379|9380|9381|9382)\b", lambda m: mapping[m.group(1)], code)


def test_walkthroughs_work_when_pasted_block_by_block(workspace):
    directory, env, mapping = workspace
    blocks = walkthrough_blocks(open(os.path.join(ROOT, "README.md")).read())
    names = [name for name, _ in blocks]
    assert names == ["first-steps", "kill-a-node", "kill-a-node", "kill-a-node", "grow-and-shrink", "stop",
                     "restart", "restart"], names
    code = [localise(c, mapping) for _, c in blocks]
    shell = Shell(str(directory), env)
    try:
        # Terminal 1: ./run-local.sh, as the README says.
        status, out = shell.run("./run-local.sh > run-local.out 2>&1 & run_local=$!; echo started")
        assert status == 0, out

        # first-steps
        status, out = shell.run(code[0], timeout=120)
        assert status == 0, out
        lines = out.splitlines()
        assert lines[0] == "OK" and lines[1] == "hello", out
        owners = lines[2:4]
        assert len(set(owners)) == 2 and set(owners) <= {"n1", "n2", "n3"}, out
        assert re.search(r'^strata_tier_items\{tier="memory"\} \d', out, re.M), out
        assert '"ready":true' in out, out
        members = nodes_lines(out)
        assert set(members) == {"n1", "n2", "n3"}, out
        assert all(" state up " in line for line in members.values()), out

        # kill-a-node 1: a key whose coordinator is n3
        status, out = shell.run(code[1])
        assert status == 0, out
        key, first, second = out.split()[:3]
        number = re.fullmatch(r"key:(\d+)", key).group(1)
        assert first == "n3" and second in ("n1", "n2"), out

        # kill-a-node 2: n3 dies; its key is served by the other owner; a write while it is down
        status, out = shell.run(code[2])
        assert status == 0, out
        assert " state down " in nodes_lines(out)["n3"], out
        assert f"value-{number}\n" in out, out
        assert out.rstrip().endswith("OK"), out

        # kill-a-node 3: n3 back by hand; the missed write reached it
        status, out = shell.run(code[3])
        assert status == 0, out
        assert " state up " in nodes_lines(out)["n3"], out
        assert re.search(r"^tier memory .* version \d", out, re.M), out
        assert out.rstrip().splitlines()[-1] == "written-while-n3-was-down", out

        # grow-and-shrink: n4 joins (epoch 2), n2 leaves (epoch 4), every key still readable
        status, out = shell.run(code[4])
        assert status == 0, out
        parts = out.split("OK\n")
        assert len(parts) == 2, out
        grown, shrunk = nodes_lines(parts[0]), nodes_lines(parts[1])
        assert set(grown) == {"n1", "n2", "n3", "n4"}, out
        assert all(" state up " in line and line.endswith(" epoch 2") for line in grown.values()), out
        assert set(shrunk) == {"n1", "n3", "n4"}, out
        assert all(line.endswith(" epoch 4") for line in shrunk.values()), out
        assert parts[1].rstrip().splitlines()[-1] == "1000", out

        # Ctrl-C in terminal 1: run-local.sh stops; the nodes started by hand outlive it.
        status, out = shell.run('echo "$n3 $n4"')
        n3, n4 = (int(p) for p in out.split())
        status, out = shell.run('kill -TERM "$run_local"; wait "$run_local"; echo "run-local exited"', timeout=60)
        assert "run-local exited" in out, out
        assert alive(n3) and alive(n4), "the nodes started by hand should outlive run-local.sh"

        # stop: by PID, gracefully
        status, out = shell.run(code[5], timeout=60)
        assert status == 0 and "exit status 0" in out, out
        assert not alive(n3) and not alive(n4)

        # restart 1: fill, read, stop
        status, out = shell.run(code[6])
        assert status == 0, out
        assert "errors: 0, replies: 100000" in out, out
        assert re.search(r"^tier memory ", out, re.M), out
        assert "exit status 0" in out, out

        # restart 2: warm again before anyone reads
        status, out = shell.run(code[7])
        assert status == 0, out
        assert '"ready":true' in out, out
        assert re.search(r"^tier memory ", out, re.M), out
        loaded = re.search(r"^warmup_loaded_keys:(\d+)", out, re.M)
        assert loaded and int(loaded.group(1)) >= 1000, out
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n--- logs:\n{logs(directory)}") from None
    finally:
        shell.close()


def logs(directory):
    """The tails of run-local.sh's output and of the nodes' logs, for a failure message."""
    parts = []
    for path in sorted([directory / "run-local.out"] + list((directory / "data").glob("*.log"))):
        if path.exists():
            lines = path.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"== {path.name}\n" + "\n".join(lines))
    return "\n".join(parts)
