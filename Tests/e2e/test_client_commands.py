"""CLIENT KILL, CLIENT REPLY, CLIENT UNBLOCK, CLIENT LIST's filters, COMMAND GETKEYS and ROLE:
errors side by side with redis-server 7.0 (RESP2 and RESP3), and what each does to real
connections (a killed client's next command fails, a silenced reply never reaches the wire, an
unblocked BLPOP answers at once)."""
import socket
import threading
import time

import pytest
import redis

from test_commands import pair, redis_port, run_script, strata  # noqa: F401 (module fixtures)

# Errors and replies that do not depend on the connection's id or address.
SCRIPT = [
    ["CLIENT", "KILL", "1.2.3.4:5"],
    ["CLIENT", "KILL", "ID", "0"],
    ["CLIENT", "KILL", "ID", "abc"],
    ["CLIENT", "KILL", "TYPE", "foo"],
    ["CLIENT", "KILL", "TYPE", "pubsub"],
    ["CLIENT", "KILL", "USER", "nobody"],
    ["CLIENT", "KILL", "ADDR", "1.2.3.4:5"],
    ["CLIENT", "KILL", "LADDR", "1.2.3.4:5"],
    ["CLIENT", "KILL", "SKIPME", "maybe"],
    ["CLIENT", "KILL", "ID"],
    ["CLIENT", "KILL", "NOSUCHFILTER", "1"],
    ["CLIENT", "KILL", "ID", "999999", "SKIPME", "yes"],
    ["CLIENT", "UNBLOCK", "999999"],
    ["CLIENT", "UNBLOCK", "999999", "ERROR"],
    ["CLIENT", "UNBLOCK", "1", "LATER"],
    ["CLIENT", "UNBLOCK", "abc"],
    ["CLIENT", "REPLY", "sometimes"],
    ["CLIENT", "REPLY"],
    ["CLIENT", "NO-EVICT", "on"],
    ["CLIENT", "NO-EVICT", "maybe"],
    ["CLIENT", "LIST", "TYPE", "foo"],
    ["CLIENT", "LIST", "TYPE", "pubsub"],
    ["CLIENT", "LIST", "ID", "1", "abc"],
    ["CLIENT", "LIST", "ID"],
    ["CLIENT", "LIST", "NOSUCH"],
    ["CLIENT", "LIST", "ID", "999999"],
    ["COMMAND", "GETKEYS", "SET", "a", "b"],
    ["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
    ["COMMAND", "GETKEYS", "GET", "a", "b"],
    ["COMMAND", "GETKEYS", "PING", "x"],
    ["COMMAND", "GETKEYS", "NOSUCHCOMMAND", "x"],
    ["COMMAND", "GETKEYS", "GET"],
    ["COMMAND", "GETKEYS", "EVAL", "return 1", "0"],
    ["COMMAND", "GETKEYS", "EVAL", "return 1", "2", "k1", "k2", "arg"],
    ["COMMAND", "GETKEYS", "FCALL", "f", "1", "k1", "arg"],
    ["COMMAND", "GETKEYS", "SINTERCARD", "2", "a", "b", "LIMIT", "1"],
    ["ROLE"],
    ["CLIENT", "PAUSE"],
    ["CLIENT", "PAUSE", "x"],
    ["CLIENT", "PAUSE", "-1"],
    ["CLIENT", "PAUSE", "10", "foo"],
    ["CLIENT", "UNPAUSE", "x"],
    ["CLIENT", "PAUSE", "1", "WRITE"],
    ["CLIENT", "UNPAUSE"],
    ["LASTSAVE", "x"],
]


def test_errors_and_replies_match_redis(pair):
    theirs, ours = pair
    differences = run_script(theirs, ours, SCRIPT)
    assert not differences, f"{len(differences)} replies differ from Redis:\n" + "\n".join(differences)


def exchange_raw(port, commands, settle=0.5):
    """Sends `commands` on one raw connection and returns every byte that came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for command in commands:
            sock.sendall(f"*{len(command)}\r\n".encode() + b"".join(
                f"${len(str(a).encode())}\r\n".encode() + str(a).encode() + b"\r\n" for a in command))
        sock.sendall(b"*2\r\n$4\r\nECHO\r\n$3\r\nend\r\n")
        received = b""
        deadline = time.monotonic() + 5
        while not received.endswith(b"$3\r\nend\r\n") and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


@pytest.mark.parametrize("server", ["redis", "strata"])
def test_client_reply_off_skip_and_on(server, strata, redis_port):
    port = redis_port if server == "redis" else strata.port
    received = exchange_raw(port, [
        ["CLIENT", "REPLY", "OFF"], ["SET", "reply:k", "1"], ["GET", "reply:k"], ["PING"],
        ["CLIENT", "REPLY", "sometimes"],  # an error while OFF is silenced too
        ["CLIENT", "REPLY", "ON"], ["GET", "reply:k"],
        ["CLIENT", "REPLY", "SKIP"], ["ECHO", "skipped"], ["ECHO", "seen"],
        ["CLIENT", "REPLY", "SKIP"], ["CLIENT", "REPLY", "ON"], ["ECHO", "after"],
        ["DEL", "reply:k"],
    ])
    assert received == b"+OK\r\n$1\r\n1\r\n$4\r\nseen\r\n+OK\r\n$5\r\nafter\r\n:1\r\n$3\r\nend\r\n", received


def test_client_reply_off_silences_replies_that_come_from_the_disk_pool(strata):
    # INFO and SAVE answer later, from another thread: their replies must be dropped as well.
    received = exchange_raw(strata.port, [
        ["CLIENT", "REPLY", "OFF"], ["INFO", "server"], ["SAVE"], ["CLIENT", "REPLY", "ON"], ["PING"],
    ])
    assert received == b"+OK\r\n+PONG\r\n$3\r\nend\r\n", received


def raw_connection(port):
    """A plain socket and the id its server gave it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n")
    return sock, int(sock.recv(100).strip()[1:])


def closed_by_server(sock):
    """Whether the server closed `sock` (EOF or reset within 5 s)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_client_kill_closes_the_named_connections_only(strata):
    admin = redis.Redis(port=strata.port)
    victims = [raw_connection(strata.port) for _ in range(3)]
    bystander, _ = raw_connection(strata.port)
    ids = [i for _, i in victims]
    # By ID, by the old address form, and by ADDR together with a matching ID.
    assert admin.execute_command("CLIENT", "KILL", "ID", ids[0]) == 1
    address = next(c["addr"] for c in admin.client_list() if int(c["id"]) == ids[1])
    assert admin.execute_command("CLIENT", "KILL", address) in (True, b"OK")
    address2 = next(c["addr"] for c in admin.client_list() if int(c["id"]) == ids[2])
    assert admin.execute_command("CLIENT", "KILL", "ID", ids[2], "ADDR", address2) == 1
    for sock, _ in victims:
        assert closed_by_server(sock)
        sock.close()
    listed = {int(c["id"]) for c in admin.client_list()}
    assert not listed & set(ids), listed
    bystander.sendall(b"*1\r\n$4\r\nPING\r\n")
    assert bystander.recv(100) == b"+PONG\r\n"
    bystander.close()
    # SKIPME yes (the default) spares the caller; no matching client is 0.
    me = admin.client_id()
    assert admin.execute_command("CLIENT", "KILL", "ID", me) == 0
    assert admin.execute_command("CLIENT", "KILL", "ID", 999_999_999) == 0
    assert admin.ping()


def test_client_kill_skipme_no_closes_the_caller_after_its_reply(strata):
    with socket.create_connection(("127.0.0.1", strata.port), timeout=5) as sock:
        sock.sendall(b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n")
        my_id = sock.recv(100).strip()[1:].decode()
        command = ["CLIENT", "KILL", "ID", my_id, "SKIPME", "no"]
        sock.sendall(f"*{len(command)}\r\n".encode() + b"".join(
            f"${len(a)}\r\n{a}\r\n".encode() for a in command))
        received = b""
        while True:
            chunk = sock.recv(100)
            if not chunk:
                break
            received += chunk
        assert received == b":1\r\n", received


def test_client_list_filters_by_id_and_type(strata):
    admin = redis.Redis(port=strata.port)
    others = [redis.Redis(port=strata.port) for _ in range(3)]
    ids = [str(o.client_id()) for o in others]
    listed = admin.client_list(client_id=ids)
    assert sorted(c["id"] for c in listed) == sorted(ids)
    assert len(admin.client_list(_type="normal")) >= 4
    assert admin.client_list(_type="pubsub") == []


@pytest.mark.parametrize("reason", ["TIMEOUT", "ERROR"])
def test_client_unblock_answers_a_blocked_pop_at_once(strata, reason):
    admin = redis.Redis(port=strata.port)
    blocked = redis.Redis(port=strata.port, socket_timeout=20)
    blocked_id = blocked.client_id()
    outcome = {}

    def wait():
        start = time.monotonic()
        try:
            outcome["reply"] = blocked.blpop(["unblock:empty"], timeout=15)
        except redis.ResponseError as error:
            outcome["error"] = str(error)
        outcome["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=wait)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and int(admin.info("clients")["blocked_clients"]) == 0:
        time.sleep(0.02)
    assert admin.execute_command("CLIENT", "UNBLOCK", blocked_id, reason) == 1
    thread.join(timeout=10)
    assert outcome["seconds"] < 10, outcome
    if reason == "TIMEOUT":
        assert outcome.get("reply") is None and "error" not in outcome, outcome
    else:
        assert outcome.get("error") == "UNBLOCKED client unblocked via CLIENT UNBLOCK", outcome  # as redis-server 7.0 answers
    # Not blocked any more: nothing to unblock, and the connection still works.
    assert admin.execute_command("CLIENT", "UNBLOCK", blocked_id) == 0
    assert blocked.ping()


def test_config_set_timeout_closes_idle_clients_only(strata):
    admin = redis.Redis(port=strata.port)
    assert admin.config_get("timeout") == {"timeout": "0"}
    with pytest.raises(redis.ResponseError, match="argument couldn't be parsed into an integer"):
        admin.config_set("timeout", "soon")
    with pytest.raises(redis.ResponseError, match="must be between 0 and 2147483647"):
        admin.config_set("timeout", "-1")
    idle, _ = raw_connection(strata.port)
    busy, _ = raw_connection(strata.port)
    try:
        assert admin.config_set("timeout", "1")
        assert admin.config_get("timeout") == {"timeout": "1"}
        idle.settimeout(0.2)
        closed = False
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not closed:
            busy.sendall(b"*1\r\n$4\r\nPING\r\n")
            assert busy.recv(100) == b"+PONG\r\n"
            try:
                closed = idle.recv(100) == b""
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
        assert closed, "an idle client outlived timeout 1 by 8 s"
        busy.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert busy.recv(100) == b"+PONG\r\n"
    finally:
        redis.Redis(port=strata.port).config_set("timeout", "0")
        idle.close()
        busy.close()


def timed(function):
    start = time.monotonic()
    result = function()
    return result, time.monotonic() - start


def test_client_pause_write_holds_writes_until_unpause_and_lets_reads_run(strata):
    admin = redis.Redis(port=strata.port)
    other = redis.Redis(port=strata.port, socket_timeout=20)
    admin.set("pause:k", "before")
    assert admin.client_pause(10_000, all=False)
    outcome = {}
    writer = threading.Thread(target=lambda: outcome.update(write=timed(lambda: other.set("pause:k", "after"))))
    try:
        writer.start()
        time.sleep(0.3)
        # Reads run through a WRITE pause; the write has not happened.
        reader = redis.Redis(port=strata.port)
        assert reader.get("pause:k") == b"before"
        assert writer.is_alive()
    finally:
        assert admin.client_unpause()
    writer.join(timeout=10)
    assert outcome["write"][0] is True and 0.25 < outcome["write"][1] < 9, outcome
    assert admin.get("pause:k") == b"after"


def test_client_pause_all_holds_every_command_until_its_deadline(strata):
    admin = redis.Redis(port=strata.port)
    other = redis.Redis(port=strata.port, socket_timeout=20)
    admin.set("pause:all", "v")
    assert admin.client_pause(700)
    value, seconds = timed(lambda: other.get("pause:all"))
    assert value == b"v" and 0.4 < seconds < 5, seconds
    # Over: commands run at once again.
    _, seconds = timed(lambda: other.get("pause:all"))
    assert seconds < 0.4
