"""SLOWLOG as Redis keeps it, side by side with redis-server 7.0: what is logged at each
threshold, the entry's shape and trimming (32 arguments, 128 bytes each), GET's count, LEN,
RESET, slowlog-max-len, and the errors."""
import pytest
import redis

from test_commands import pair, redis_port, run_script, strata  # noqa: F401 (module fixtures)

BUSY_LOOP = "local t = redis.call('TIME'); local start = t[1] * 1e6 + t[2]; " \
            "repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - start > tonumber(ARGV[1])"


@pytest.fixture
def clients(strata, redis_port):
    both = [redis.Redis(port=redis_port), redis.Redis(port=strata.port)]
    yield both
    for client in both:
        client.config_set("slowlog-log-slower-than", 10000)
        client.config_set("slowlog-max-len", 128)
        client.slowlog_reset()


def commands(client, count=-1):
    return [entry["command"] for entry in client.slowlog_get(count)]


def test_every_command_is_logged_at_threshold_zero_and_entries_match(clients):
    logs = []
    for client in clients:
        client.config_set("slowlog-log-slower-than", 0)
        client.slowlog_reset()
        client.client_setname("slow-client")
        client.set("sl:k", "v")
        client.execute_command("DEL", *[f"a{i}" for i in range(40)])
        client.execute_command("ECHO", "x" * 300)
        entries = client.slowlog_get(-1)
        assert client.slowlog_len() == len(entries) + 1  # SLOWLOG GET itself, logged after it ran
        assert next(e for e in entries if e["command"] == b"SET sl:k v")["client_name"] == b"slow-client"
        assert all(e["client_address"].startswith(b"127.0.0.1:") for e in entries)
        assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
        logs.append([(e["command"], e["client_name"]) for e in entries])
    assert logs[0] == logs[1], logs
    assert logs[0][0][0] == b"ECHO " + b"x" * 128 + b"... (172 more bytes)"
    assert logs[0][1][0].endswith(b"a29 ... (10 more arguments)")


def test_get_count_len_reset_and_max_len(clients):
    for client in clients:
        client.config_set("slowlog-log-slower-than", 0)
        client.slowlog_reset()
        for i in range(6):
            client.set(f"sl:{i}", i)
        assert len(client.slowlog_get(3)) == 3
        assert len(client.slowlog_get()) >= 7  # the default count is 10
        client.config_set("slowlog-max-len", 4)
        assert client.slowlog_len() == 4
        client.slowlog_reset()
        assert commands(client) == [b"SLOWLOG RESET"]


def test_only_slow_commands_at_the_default_threshold_and_none_when_negative(clients):
    for client in clients:
        client.slowlog_reset()
        client.get("sl:fast")
        client.eval(BUSY_LOOP, 0, 30_000)
        logged = client.slowlog_get(-1)
        assert [e["command"].split()[0] for e in logged] == [b"EVAL"], logged
        assert logged[0]["duration"] >= 30_000
        client.config_set("slowlog-log-slower-than", -1)
        client.slowlog_reset()
        client.eval(BUSY_LOOP, 0, 20_000)
        assert client.slowlog_len() == 0


SCRIPT = [
    ["SLOWLOG", "GET", "-2"], ["SLOWLOG", "GET", "x"], ["SLOWLOG", "GET", "1", "2"], ["SLOWLOG", "LEN", "x"],
    ["SLOWLOG", "RESET", "x"], ["SLOWLOG", "NOPE"], ["SLOWLOG"],
    ["CONFIG", "SET", "slowlog-log-slower-than", "-2"], ["CONFIG", "SET", "slowlog-log-slower-than", "x"],
    ["CONFIG", "SET", "slowlog-max-len", "-1"], ["CONFIG", "GET", "slowlog-max-len"],
]


def test_errors_match_redis(pair):
    theirs, ours = pair
    differences = run_script(theirs, ours, SCRIPT)
    assert not differences, f"{len(differences)} replies differ from Redis:\n" + "\n".join(differences)
