"""Authentication (--requirepass, AUTH, HELLO ... AUTH), RESP3 and the CLIENT command, compared
with a real redis-server where Redis 7.0 has the same feature.

The password-protected Redis is conftest's `redis_server` with `CONFIG SET requirepass`: the
fixture's own connection stays authenticated, new connections must AUTH.
"""
import socket

import pytest
import redis

PASSWORD = "s3cret"


# ---------------------------------------------------------------------------------------------
# A raw RESP connection: exact reply bytes, no client library between the test and the server
# (redis-py would reconnect or re-authenticate on its own after an auth error).


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class Wire:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def call(self, *args):
        """Sends one command and returns its whole reply, as bytes."""
        self.sock.sendall(encode(*args))
        return self.read_reply()

    def read_reply(self):
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"connection closed mid-reply: {line!r}")
        kind, rest = line[:1], line[1:-2]
        if kind in b"$!=" and rest != b"-1":
            return line + self.file.read(int(rest) + 2)
        if kind in b"*~>" and rest != b"-1":
            return line + b"".join(self.read_reply() for _ in range(int(rest)))
        if kind in b"%|":
            return line + b"".join(self.read_reply() for _ in range(2 * int(rest)))
        return line  # + - : _ , # ( and the RESP2 nulls

    def close(self):
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def compare(strata_port, redis_port, commands):
    """Runs `commands` on a fresh connection to each server; returns the differing replies."""
    differences = []
    with Wire(redis_port) as theirs, Wire(strata_port) as ours:
        for command in commands:
            expected, actual = theirs.call(*command), ours.call(*command)
            if expected != actual:
                differences.append(f"{command!r}:\n    redis:  {expected!r}\n    strata: {actual!r}")
    return differences


@pytest.fixture
def secure(make_node):
    return make_node("--requirepass", PASSWORD, name="secure")


@pytest.fixture
def secure_redis(redis_server):
    client, port = redis_server
    client.config_set("requirepass", PASSWORD)
    return port


# ---------------------------------------------------------------------------------------------
# AUTH


def test_commands_before_auth_are_refused(secure):
    with Wire(secure.port) as wire:
        for command in (["GET", "k"], ["SET", "k", "v"], ["PING"], ["DBSIZE"], ["KEYS", "*"],
                        ["CLIENT", "ID"], ["INFO"], ["SELECT", "0"], ["FLUSHALL"], ["EXPIRE", "k", "1"]):
            assert wire.call(*command).startswith(b"-NOAUTH Authentication required."), command
        assert wire.call("AUTH", PASSWORD) == b"+OK\r\n"
        assert wire.call("SET", "k", "v") == b"+OK\r\n"
        assert wire.call("GET", "k") == b"$1\r\nv\r\n"


def test_auth_matches_redis(secure, secure_redis):
    """Error texts and their precedence: Redis rejects unknown commands and wrong arities before
    it checks authentication, and AUTH/HELLO/QUIT/RESET are allowed before AUTH."""
    differences = compare(secure.port, secure_redis, [
        ["GET", "k"], ["SET", "k", "v"], ["PING"], ["ECHO", "hi"], ["DBSIZE"], ["CLIENT", "GETNAME"],
        ["NOSUCHCOMMAND", "x"], ["GET"], ["SET", "k"], ["AUTH"],
        ["AUTH", "wrong"], ["AUTH", "default", "wrong"], ["AUTH", "nobody", PASSWORD],
        ["AUTH", "a", "b", "c"], ["AUTH", ""],
        ["HELLO", "3"], ["HELLO", "2"], ["HELLO"], ["HELLO", "3", "AUTH", "default", "wrong"],
        ["HELLO", "3", "AUTH", "nobody", PASSWORD], ["HELLO", "3", "AUTH", "default"],
        ["HELLO", "4"], ["HELLO", "x"], ["HELLO", "3", "SETNAME", "app"],
        ["GET", "k"],  # still refused after all the failures
        ["AUTH", PASSWORD], ["GET", "k"], ["SET", "k", "v"], ["GET", "k"], ["AUTH", PASSWORD],
        ["AUTH", "wrong"], ["GET", "k"],  # a failed AUTH does not log an authenticated client out
        ["RESET"], ["GET", "k"],  # RESET does
        ["AUTH", "default", PASSWORD], ["GET", "k"], ["DEL", "k"],
    ])
    assert not differences, "\n".join(differences)


def test_auth_with_username(secure):
    with Wire(secure.port) as wire:
        assert wire.call("AUTH", "default", PASSWORD) == b"+OK\r\n"
        assert wire.call("PING") == b"+PONG\r\n"


def test_hello_auth(secure):
    with Wire(secure.port) as wire:
        hello = wire.call("HELLO", "3", "AUTH", "default", PASSWORD, "SETNAME", "app")
        assert hello.startswith(b"%7\r\n") and b"$5\r\nproto\r\n:3\r\n" in hello
        assert wire.call("SET", "k", "v") == b"+OK\r\n"
        assert wire.call("GET", "missing") == b"_\r\n"  # RESP3's null
        assert wire.call("CLIENT", "GETNAME") == b"$3\r\napp\r\n"
    with Wire(secure.port) as wire:
        hello = wire.call("HELLO", "2", "AUTH", "default", PASSWORD)
        assert hello.startswith(b"*14\r\n") and b"$5\r\nproto\r\n:2\r\n" in hello
        assert wire.call("GET", "missing") == b"$-1\r\n"


def test_redis_py_with_password(secure):
    """redis-py authenticates with AUTH under RESP2 and with HELLO 3 AUTH under RESP3."""
    for protocol in (2, 3):
        with secure.client(password=PASSWORD, protocol=protocol) as client:
            assert client.set("k", "v") and client.get("k") == b"v"
        with secure.client(username="default", password=PASSWORD, protocol=protocol) as client:
            assert client.ping()
        # redis-py moves an error's first word (its code) into status_code.
        with secure.client(password="wrong", protocol=protocol, retry=None) as client:
            with pytest.raises(redis.AuthenticationError, match="^invalid username-password pair") as error:
                client.ping()
            assert error.value.status_code == "WRONGPASS"
        # Without a password, RESP2 fails at the first command and RESP3 at the HELLO 3 that
        # redis-py sends on connect: both with NOAUTH.
        with secure.client(protocol=protocol, retry=None) as client:
            with pytest.raises(redis.AuthenticationError) as error:
                client.get("k")
            assert error.value.status_code == "NOAUTH"


def test_auth_without_a_password_configured(node, redis_server):
    """Redis' default user has no password: AUTH <password> is an error, while AUTH default <any>
    and HELLO ... AUTH default <any> succeed (the user is `nopass`)."""
    _, redis_port = redis_server
    differences = compare(node.port, redis_port, [
        ["AUTH", "x"], ["AUTH", PASSWORD], ["AUTH", "nobody", "x"], ["AUTH", "default", "anything"],
        ["PING"],
    ])
    assert not differences, "\n".join(differences)
    with Wire(node.port) as wire:
        hello = wire.call("HELLO", "3", "AUTH", "default", "anything")
        assert hello.startswith(b"%7\r\n"), hello


# ---------------------------------------------------------------------------------------------
# HELLO and RESP3


def hello_without_id(reply):
    """HELLO's reply as a dict, minus the connection id (it differs between servers)."""
    if isinstance(reply, list):  # RESP2: a flat list of alternating names and values
        reply = dict(zip(reply[::2], reply[1::2]))
    return {key: value for key, value in reply.items() if key != b"id"}


@pytest.mark.parametrize("protocol", [2, 3])
def test_hello_reply_matches_redis(node, redis_server, protocol):
    _, redis_port = redis_server
    replies = []
    for port in (redis_port, node.port):
        with redis.Redis(host="127.0.0.1", port=port, protocol=protocol, socket_timeout=10) as client:
            client.response_callbacks.clear()
            replies.append(client.execute_command("HELLO"))
    expected, actual = replies
    assert type(actual) is type(expected)
    if protocol == 2:
        assert actual[::2] == expected[::2]  # the same field names, in the same order
    assert hello_without_id(actual) == hello_without_id(expected)


def test_hello_switches_protocol(node):
    with Wire(node.port) as wire:
        assert wire.call("GET", "missing") == b"$-1\r\n"
        hello = wire.call("HELLO", "3")
        assert hello.startswith(b"%7\r\n") and b"$5\r\nproto\r\n:3\r\n" in hello
        assert b"$6\r\nserver\r\n$5\r\nredis\r\n" in hello
        assert wire.call("GET", "missing") == b"_\r\n"
        assert wire.call("MGET", "a", "b") == b"*2\r\n_\r\n_\r\n"
        assert wire.call("HELLO", "2").startswith(b"*14\r\n")
        assert wire.call("GET", "missing") == b"$-1\r\n"
        assert wire.call("HELLO", "4").startswith(b"-NOPROTO")
        assert wire.call("HELLO").startswith(b"*14\r\n")  # a refused version leaves RESP2 in place


def test_hello_errors_match_redis(node, redis_server):
    _, redis_port = redis_server
    differences = compare(node.port, redis_port, [
        ["HELLO", "4"], ["HELLO", "1"], ["HELLO", "0"], ["HELLO", "-3"], ["HELLO", "x"], ["HELLO", "3.0"],
        ["HELLO", "3", "FOO"], ["HELLO", "3", "AUTH", "default"], ["HELLO", "3", "SETNAME"],
        ["HELLO", "3", "SETNAME", "has space"], ["GET", "missing"],  # still RESP2 after the errors
    ])
    assert not differences, "\n".join(differences)


def test_resp3_client(node):
    with node.client(protocol=3) as client:
        assert client.set("k", "v") is True
        assert client.get("k") == b"v"
        assert client.get("missing") is None
        assert client.mget("k", "missing", "k") == [b"v", None, b"v"]
        assert client.set("k", "w", nx=True) is None
        assert client.set("k", "w", get=True) == b"v"
        hello = client.execute_command("HELLO", 3)
        assert isinstance(hello, dict) and hello[b"proto"] == 3 and hello[b"server"] == b"redis"
        with pytest.raises(redis.ResponseError, match="^NOPROTO unsupported protocol version"):
            client.execute_command("HELLO", 4)
        assert client.ping()


def test_resp2_client_gets_hello_as_a_flat_list(node):
    with node.client(protocol=2) as client:
        client.response_callbacks.clear()
        hello = client.execute_command("HELLO")
        assert isinstance(hello, list) and len(hello) == 14
        fields = dict(zip(hello[::2], hello[1::2]))
        assert fields[b"proto"] == 2 and fields[b"server"] == b"redis" and fields[b"modules"] == []


def test_resp3_replies_match_redis(node, redis_server):
    """Reply types in RESP3: nulls, maps (CONFIG GET), arrays (MGET, KEYS)."""
    _, redis_port = redis_server
    differences = []
    with Wire(redis_port) as theirs, Wire(node.port) as ours:
        theirs.call("HELLO", "3")
        ours.call("HELLO", "3")
        for command in (["GET", "missing"], ["SET", "k", "v"], ["GET", "k"], ["MGET", "k", "missing"],
                        ["SET", "k", "w", "GET"], ["SET", "k", "w", "NX"], ["GETDEL", "missing"],
                        ["CONFIG", "GET", "nonexistent-parameter"], ["KEYS", "k"], ["TTL", "k"],
                        ["CLIENT", "GETNAME"], ["DEL", "k"], ["PING"]):
            expected, actual = theirs.call(*command), ours.call(*command)
            if expected != actual:
                differences.append(f"{command!r}:\n    redis:  {expected!r}\n    strata: {actual!r}")
    assert not differences, "\n".join(differences)


# ---------------------------------------------------------------------------------------------
# CLIENT


def client_fields(line):
    return dict(part.split("=", 1) for part in line.strip().split(" "))


def test_plain_redis_py_connection(node):
    """redis-py sends CLIENT SETINFO on connect (and ignores an error); a default client must
    just work and its library must show up in CLIENT INFO."""
    with node.client() as client:
        assert client.ping()
        assert client.set("k", "v") and client.get("k") == b"v"
        info = client_fields(client.execute_command("CLIENT", "INFO").decode())
        assert info["lib-name"].startswith("redis-py")
        assert info["lib-ver"] == redis.__version__


def test_client_setname_getname(node, redis_server):
    _, redis_port = redis_server
    differences = compare(node.port, redis_port, [
        ["CLIENT", "GETNAME"], ["CLIENT", "SETNAME", "app-1"], ["CLIENT", "GETNAME"],
        ["CLIENT", "SETNAME", "has space"], ["CLIENT", "SETNAME", "new\nline"], ["CLIENT", "GETNAME"],
        ["CLIENT", "SETNAME", ""], ["CLIENT", "GETNAME"], ["CLIENT", "SETNAME", "x", "y"],
        ["CLIENT", "NOSUCH"], ["CLIENT", "setname", "lower"], ["CLIENT", "getname"],
        ["CLIENT", "ID", "extra"], ["CLIENT", "INFO", "extra"], ["CLIENT", "GETNAME", "extra"],
        ["CLIENT", "REPLY", "ON"], ["CLIENT", "NO-EVICT", "on"],
    ])
    assert not differences, "\n".join(differences)


def test_client_id_info_list(node, redis_server):
    _, redis_port = redis_server
    with redis.Redis(host="127.0.0.1", port=redis_port, protocol=2, socket_timeout=10) as reference:
        reference_info = client_fields(reference.execute_command("CLIENT", "INFO").decode())
    with node.client(protocol=2) as first, node.client(protocol=3) as second:
        first.client_setname("first")
        second.client_setname("second")
        first_id, second_id = first.client_id(), second.client_id()
        assert isinstance(first_id, int) and first_id != second_id
        # HELLO reports the same id as CLIENT ID.
        assert dict(zip(*[iter(first.execute_command("HELLO"))] * 2))[b"id"] == first_id

        info = client_fields(first.execute_command("CLIENT", "INFO").decode())
        # Redis' fields, in Redis' order (Strata may add Redis 7.2's lib-name and lib-ver).
        assert [name for name in info if name in reference_info] == list(reference_info)
        assert info["id"] == str(first_id) and info["name"] == "first" and info["resp"] == "2"
        assert info["addr"].startswith("127.0.0.1:") and info["laddr"] == f"127.0.0.1:{node.port}"
        assert info["cmd"] == reference_info["cmd"] == "client|info"
        assert client_fields(second.execute_command("CLIENT", "INFO").decode())["resp"] == "3"

        listing = first.execute_command("CLIENT", "LIST").decode()
        assert listing.endswith("\n")
        rows = {row["id"]: row for row in map(client_fields, listing.strip().split("\n"))}
        assert rows[str(first_id)]["name"] == "first" and rows[str(second_id)]["name"] == "second"
        # redis-py parses CLIENT LIST into dicts: every field must be name=value.
        parsed = first.client_list()
        assert {entry["name"] for entry in parsed} >= {"first", "second"}

    # Closed connections leave the list.
    with node.client(protocol=2) as client:
        ids = {row["id"] for row in client.client_list()}
        assert str(first_id) not in ids and str(second_id) not in ids


def test_client_setinfo(node):
    """CLIENT SETINFO is Redis 7.2's (not in the 7.0 reference server); texts follow 7.2."""
    with Wire(node.port) as wire:
        assert wire.call("CLIENT", "SETINFO", "LIB-NAME", "mylib") == b"+OK\r\n"
        assert wire.call("CLIENT", "SETINFO", "lib-ver", "1.2.3") == b"+OK\r\n"
        info = client_fields(wire.call("CLIENT", "INFO").split(b"\r\n")[1].decode())
        assert info["lib-name"] == "mylib" and info["lib-ver"] == "1.2.3"
        assert wire.call("CLIENT", "SETINFO", "LIB-NAME", "has space") == (
            b"-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n")
        assert wire.call("CLIENT", "SETINFO", "FOO", "x") == b"-ERR Unrecognized option 'FOO'\r\n"
        assert wire.call("CLIENT", "SETINFO", "LIB-NAME") == (
            b"-ERR wrong number of arguments for 'client|setinfo' command\r\n")
