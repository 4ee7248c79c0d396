"""Real Redis tools against Strata: redis-cli (one-shot, interactive, --scan, --pipe, --bigkeys)
and redis-benchmark. These tools probe the server on their own (COMMAND DOCS, CONFIG GET, INFO,
ECHO as an end marker...), so they catch gaps the command-level tests do not.

Every subprocess and every pexpect wait is bounded; processes are ended by their handle.
"""
import re
import subprocess

import pexpect
import pytest

from conftest import require_tool


def cli(port, *args, input=None, timeout=30):
    """Runs redis-cli against 127.0.0.1:port; returns the completed process (bytes output).
    Output goes to a pipe, so redis-cli prints raw replies unless --no-raw is given."""
    return subprocess.run([require_tool("redis-cli"), "-h", "127.0.0.1", "-p", str(port), *args],
                          input=input, capture_output=True, timeout=timeout)


def out(port, *args, **kwargs):
    result = cli(port, *args, **kwargs)
    assert result.returncode == 0, result
    return result.stdout.decode()


# ---------------------------------------------------------------------------------------------
# redis-cli, one command per run


def test_one_shot_commands(node):
    port = node.port
    assert out(port, "SET", "k", "v") == "OK\n"
    assert out(port, "GET", "k") == "v\n"
    assert out(port, "INCR", "n") == "1\n"
    assert out(port, "INCRBY", "n", "41") == "42\n"
    assert out(port, "--no-raw", "GET", "k") == '"v"\n'
    assert out(port, "--no-raw", "INCR", "n") == "(integer) 43\n"
    assert out(port, "--no-raw", "GET", "missing") == "(nil)\n"
    assert out(port, "--raw", "MGET", "k", "missing", "n") == "v\n\n43\n"
    assert out(port, "--no-raw", "MGET", "k", "missing") == '1) "v"\n2) (nil)\n'
    assert out(port, "--no-raw", "TYPE", "k") == "string\n"  # a status reply: no quotes
    assert out(port, "--no-raw", "EXISTS", "k", "n", "missing") == "(integer) 2\n"
    assert out(port, "--no-raw", "GET", "n", "extra").startswith(
        "(error) ERR wrong number of arguments for 'get' command")
    assert out(port, "--raw", "PING") == "PONG\n"
    # -r repeats the command; -x reads the last argument from stdin.
    assert out(port, "-r", "3", "INCR", "counter") == "1\n2\n3\n"
    assert out(port, "-x", "SET", "fromstdin", input=b"line1\nline2") == "OK\n"
    assert out(port, "GET", "fromstdin") == "line1\nline2\n"


# The same invocations on Redis and on Strata must print the same thing. Every entry runs on a
# flushed server, in order.
CLI_SCRIPT = [
    ("SET", "k", "v"), ("--no-raw", "GET", "k"), ("--no-raw", "GET", "missing"), ("GET", "missing"),
    ("--no-raw", "SET", "k", "v", "NX"), ("--no-raw", "SET", "k", "v", "GET"), ("INCR", "k"),
    ("--no-raw", "INCR", "k"), ("--no-raw", "NOSUCHCOMMAND", "a"), ("--no-raw", "EXPIRE", "k", "100"),
    ("--no-raw", "TTL", "k"), ("--no-raw", "PERSIST", "k"), ("--no-raw", "MSET", "a", "1", "b", "2"),
    ("--no-raw", "MGET", "a", "b", "c"), ("--no-raw", "DEL", "a", "b", "c"), ("--no-raw", "DBSIZE"),
    ("--no-raw", "SET", "bin", "a\tb\"c\\"), ("--no-raw", "GET", "bin"), ("--raw", "GET", "bin"),
    ("--no-raw", "ECHO", "héllo"), ("--no-raw", "SELECT", "x"), ("--no-raw", "PING"),
    ("--no-raw", "KEYS", "nothing*"), ("-3", "--no-raw", "GET", "k"), ("-3", "--no-raw", "GET", "missing"),
]


def test_one_shot_output_matches_redis(node, redis_server):
    redis_client, redis_port = redis_server
    redis_client.flushall()
    differences = []
    for args in CLI_SCRIPT:
        expected, actual = cli(redis_port, *args), cli(node.port, *args)
        if (expected.returncode, expected.stdout) != (actual.returncode, actual.stdout):
            differences.append(f"redis-cli {' '.join(args)}:\n    redis:  {expected.returncode} {expected.stdout!r}"
                               f"\n    strata: {actual.returncode} {actual.stdout!r}")
    assert not differences, "\n".join(differences)


def test_one_shot_with_password(make_node):
    node = make_node("--requirepass", "s3cret", name="secure")
    assert out(node.port, "GET", "k").startswith("NOAUTH Authentication required.")
    assert out(node.port, "-a", "s3cret", "--no-auth-warning", "SET", "k", "v") == "OK\n"
    assert out(node.port, "--user", "default", "--pass", "s3cret", "--no-auth-warning", "GET", "k") == "v\n"
    assert out(node.port, "-3", "-a", "s3cret", "--no-auth-warning", "GET", "k") == "v\n"
    refused = cli(node.port, "-a", "wrong", "--no-auth-warning", "GET", "k")
    # redis-cli reports the failed AUTH on stderr, then runs the command unauthenticated.
    assert "WRONGPASS" in refused.stderr.decode() + refused.stdout.decode(), refused
    assert "NOAUTH" in refused.stdout.decode(), refused


def test_info_server(node):
    text = out(node.port, "info", "server")
    assert text.startswith("# Server")
    assert re.search(r"^redis_version:\d+\.\d+\.\d+\r?$", text, re.M), text
    assert f"tcp_port:{node.port}" in text
    # Sections that were not asked for are left out, as Redis does.
    assert "# Keyspace" not in text and "# Clients" not in text
    everything = out(node.port, "info")
    assert "# Server" in everything and "# Clients" in everything and "connected_clients:" in everything


# ---------------------------------------------------------------------------------------------
# redis-cli, interactive (a terminal, so the formatted output and the prompt)


def spawn_cli(port):
    session = pexpect.spawn(require_tool("redis-cli"), ["-h", "127.0.0.1", "-p", str(port)],
                            encoding="utf-8", timeout=10, dimensions=(40, 200))
    # redis-cli's line editor reads the terminal in raw mode, where Enter is a carriage return.
    session.linesep = "\r"
    return session


def test_interactive(node):
    prompt = f"127.0.0.1:{node.port}> "
    session = spawn_cli(node.port)
    try:
        session.expect_exact(prompt, timeout=10)
        for line, reply in [
            ("SET greeting hello", "OK"), ("GET greeting", '"hello"'), ("PING", "PONG"),
            ("PING hi", '"hi"'), ("INCR visits", "(integer) 1"), ("GET missing", "(nil)"),
            ("MGET greeting missing", '1) "hello"\r\n2) (nil)'), ("TTL greeting", "(integer) -1"),
            ("NOSUCHCOMMAND x", "(error) ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x'"),
            ("GET", "(error) ERR wrong number of arguments for 'get' command"),
            ("HELLO 3", '1# "server" => "redis"'), ("GET missing", "(nil)"), ("GET greeting", '"hello"'),
            ("DBSIZE", "(integer) 2"),
        ]:
            session.sendline(line)
            session.expect_exact(reply, timeout=10)
            session.expect_exact(prompt, timeout=10)
        session.sendline("QUIT")
        session.expect(pexpect.EOF, timeout=10)
    finally:
        session.close(force=True)
    assert session.exitstatus == 0


def test_interactive_with_auth(make_node):
    node = make_node("--requirepass", "s3cret", name="secure")
    prompt = f"127.0.0.1:{node.port}> "
    session = spawn_cli(node.port)
    try:
        session.expect_exact(prompt, timeout=10)
        session.sendline("GET k")
        session.expect_exact("(error) NOAUTH Authentication required.", timeout=10)
        session.sendline("AUTH s3cret")
        session.expect_exact("OK", timeout=10)
        session.sendline("SET k v")
        session.expect_exact("OK", timeout=10)
        session.sendline("GET k")
        session.expect_exact('"v"', timeout=10)
        session.sendline("QUIT")
        session.expect(pexpect.EOF, timeout=10)
    finally:
        session.close(force=True)


# ---------------------------------------------------------------------------------------------
# redis-cli --scan, --bigkeys, --pipe


def test_scan(node, r):
    keys = {f"user:{i}" for i in range(250)} | {f"item:{i}" for i in range(50)} | {"https://x/" + "p" * 1000}
    for key in keys:
        r.set(key, "v")
    assert set(out(node.port, "--scan").splitlines()) == keys
    assert set(out(node.port, "--scan", "--pattern", "user:*").splitlines()) == {k for k in keys if k.startswith("user:")}
    assert set(out(node.port, "--scan", "--pattern", "item:?").splitlines()) == {f"item:{i}" for i in range(10)}
    assert set(out(node.port, "--scan", "--pattern", "https://*").splitlines()) == {"https://x/" + "p" * 1000}
    assert out(node.port, "--scan", "--pattern", "nothing*") == ""


def test_bigkeys(node, r):
    r.mset({"small": "x", "medium": "x" * 100, "big": "x" * 10_000})
    text = out(node.port, "--bigkeys", timeout=60)
    assert "Biggest string found '\"big\"' has 10000 bytes" in text, text
    assert "3 strings with 10101 bytes" in text, text


def resp_command(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in map(str.encode, args))


def test_pipe_mass_insertion(node, r):
    commands = [resp_command("SET", f"key:{i}", f"value-{i}") for i in range(2000)]
    commands += [resp_command("INCR", "counter") for _ in range(500)]
    commands += [resp_command("SET", "ttl", "v", "EX", "1000"), resp_command("GET", "key:7")]
    result = cli(node.port, "--pipe", input=b"".join(commands), timeout=60)
    text = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, text
    assert "All data transferred" in text and f"errors: 0, replies: {len(commands)}" in text, text
    assert r.dbsize() == 2002
    assert r.get("key:1999") == b"value-1999" and r.get("counter") == b"500" and r.ttl("ttl") > 990


def test_pipe_reports_errors(node, r):
    payload = resp_command("SET", "a", "1") + resp_command("INCR", "a", "extra") + resp_command("NOPE")
    result = cli(node.port, "--pipe", input=payload, timeout=60)
    text = result.stdout.decode() + result.stderr.decode()
    assert "errors: 2, replies: 3" in text, text
    assert result.returncode == 1
    assert r.get("a") == b"1"


# ---------------------------------------------------------------------------------------------
# redis-benchmark

RPS = re.compile(r"^\s*([A-Z_]+(?: \([^)]*\))?): ([\d.]+) requests per second", re.M)


@pytest.mark.parametrize("extra", [(), ("-P", "16")], ids=["plain", "pipelined"])
def test_benchmark_set_get(node, r, extra):
    result = subprocess.run(
        [require_tool("redis-benchmark"), "-h", "127.0.0.1", "-p", str(node.port), "-t", "set,get",
         "-n", "5000", "-c", "10", "-q", *extra], capture_output=True, timeout=120)
    text = result.stdout.decode().replace("\r", "\n")
    assert result.returncode == 0, text + result.stderr.decode()
    rates = {name: float(rate) for name, rate in RPS.findall(text)}
    assert set(rates) == {"SET", "GET"}, text
    assert all(rate > 0 for rate in rates.values()), rates
    # Without -r the benchmark's SET writes its 3-byte value (-d 3) to one literal key.
    assert r.keys("*") == [b"key:__rand_int__"] and r.strlen("key:__rand_int__") == 3


def test_benchmark_random_keys_and_other_commands(node, r):
    result = subprocess.run(
        [require_tool("redis-benchmark"), "-h", "127.0.0.1", "-p", str(node.port), "-t", "set,incr,mset,ping",
         "-n", "3000", "-c", "8", "-r", "1000", "-d", "64", "-q"], capture_output=True, timeout=120)
    text = result.stdout.decode().replace("\r", "\n")
    assert result.returncode == 0, text + result.stderr.decode()
    names = {name for name, _ in RPS.findall(text)}
    assert {"SET", "INCR", "PING_INLINE", "PING_MBULK"} <= names and any(n.startswith("MSET") for n in names), text
    # -r 1000: SET and MSET write key:<12 digits>, INCR counter:<12 digits>, 1000 values each.
    keys = set(r.scan_iter(count=500))
    assert all(re.fullmatch(rb"(key|counter):\d{12}", key) for key in keys), sorted(keys)[:10]
    assert 100 < len(keys) <= 2000 and r.dbsize() == len(keys)
    assert all(len(r.get(key)) == 64 for key in keys if key.startswith(b"key:"))
    assert all(int(r.get(key)) > 0 for key in keys if key.startswith(b"counter:"))
