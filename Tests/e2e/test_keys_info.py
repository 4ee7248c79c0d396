"""Key commands (RENAME, RENAMENX, COPY, TOUCH, OBJECT, MEMORY), INFO and CONFIG as clients and
exporters read them: differential against a real redis-server where the replies can match, then
Strata-only checks where Strata's answers are its own (memory figures, CONFIG SET maxmemory,
keys only on disk, a cluster).
"""
import subprocess
import time
import urllib.request

import pytest
import redis

from conftest import require_tool, strata_binary
from test_cluster import owners, start_cluster, tier
from test_commands import Approx, Err, pair, raw_client, redis_port, reply, run_script, strata  # noqa: F401

# ---------------------------------------------------------------------------------------------
# Differential scripts: each runs on an empty keyspace on both servers, every reply compared.

SCRIPTS = {
    "rename": [
        ["SET", "a", "1"], ["EXPIRE", "a", "100"], ["RENAME", "a", "b"], Approx(["TTL", "b"], 1),
        ["EXISTS", "a"], ["GET", "b"], ["RENAME", "missing", "x"], ["RENAME", "b", "b"],
        ["RENAME", "missing", "missing"], ["SET", "c", "2"], ["RENAME", "c", "b"], ["GET", "b"],
        ["TTL", "b"], ["EXISTS", "c"], ["RENAME", "a"], ["RENAME", "a", "b", "c"], ["rename", "b", "B"],
        ["GET", "B"],
    ],
    "renamenx": [
        ["SET", "a", "1"], ["SET", "b", "2"], ["RENAMENX", "a", "b"], ["GET", "a"], ["GET", "b"],
        ["RENAMENX", "a", "a"], ["RENAMENX", "missing", "a"], ["RENAMENX", "missing", "missing"],
        ["PEXPIRE", "a", "100000"], ["RENAMENX", "a", "c"], ["EXISTS", "a"], ["GET", "c"],
        Approx(["PTTL", "c"], 1000), ["RENAMENX", "a"],
    ],
    "copy": [
        ["SET", "s", "v"], ["EXPIRE", "s", "100"], ["COPY", "s", "d"], Approx(["TTL", "d"], 1), ["GET", "d"],
        ["GET", "s"], ["SET", "s", "w"], ["COPY", "s", "d"], ["GET", "d"], ["COPY", "s", "d", "REPLACE"],
        ["GET", "d"], ["TTL", "d"], ["COPY", "s", "s"], ["COPY", "s", "s", "REPLACE"], ["COPY", "s", "d", "DB", "0"],
        ["COPY", "s", "e", "db", "0", "replace"], ["GET", "e"], ["COPY", "s", "d", "DB", "16"],
        ["COPY", "s", "d", "DB", "-1"], ["COPY", "s", "d", "DB", "x"], ["COPY", "s", "d", "DB"],
        ["COPY", "s", "d", "FOO"], ["COPY", "missing", "d"], ["COPY", "missing", "d", "REPLACE"], ["COPY", "s"],
        ["COPY", "s", "s", "FOO"],
    ],
    "touch": [
        ["SET", "a", "1"], ["SET", "c", "3"], ["TOUCH", "a", "b", "c"], ["TOUCH", "a", "a"], ["TOUCH", "b"],
        ["TOUCH"],
    ],
    "object": [
        ["SET", "i", "5"], ["SET", "big", "10000"], ["SET", "neg", "-5"], ["SET", "zeros", "007"],
        ["SET", "plus", "+5"], ["SET", "max", "9223372036854775807"], ["SET", "min", "-9223372036854775808"],
        ["SET", "over", "12345678901234567890"], ["SET", "float", "1.5"], ["SET", "space", " 5"],
        ["SET", "empty", ""], ["SET", "e44", "x" * 44], ["SET", "r45", "x" * 45], ["SET", "minus0", "-0"],
        *[["OBJECT", "ENCODING", key] for key in
          ("i", "big", "neg", "zeros", "plus", "max", "min", "over", "float", "space", "empty", "e44", "r45",
           "minus0", "missing")],
        ["object", "encoding", "i"],
        *[["OBJECT", "REFCOUNT", key] for key in ("i", "big", "neg", "e44", "r45", "missing")],
        ["OBJECT", "FREQ", "i"], ["OBJECT", "FREQ", "missing"], ["OBJECT", "IDLETIME", "missing"],
        Approx(["OBJECT", "IDLETIME", "i"], 1), ["OBJECT", "HELP"], ["OBJECT", "help", "x"], ["OBJECT", "FOO"],
        ["OBJECT", "FOO", "i"], ["OBJECT", "ENCODING"], ["OBJECT", "ENCODING", "i", "j"], ["OBJECT"],
    ],
    "memory_errors": [
        ["SET", "k", "v"], ["MEMORY", "USAGE", "missing"], ["MEMORY", "USAGE", "k", "SAMPLES", "x"],
        ["MEMORY", "USAGE", "k", "FOO", "1"], ["MEMORY", "USAGE", "k", "SAMPLES"],
        ["MEMORY", "USAGE", "k", "SAMPLES", "-1"], ["MEMORY", "USAGE", "missing", "SAMPLES", "0"],
        ["MEMORY", "USAGE"], ["MEMORY", "STATS", "x"], ["MEMORY", "DOCTOR", "x"], ["MEMORY", "HELP"],
        ["MEMORY", "FOO"], ["MEMORY"], ["MEMORY", "PURGE"],
    ],
    "config_errors": [
        ["CONFIG", "SET"], ["CONFIG", "SET", "maxmemory"], ["CONFIG", "SET", "maxmemory", "1", "b"],
        ["CONFIG", "SET", "foo", "1"], ["CONFIG", "SET", "loglevel", "notice", "foo", "1"],
        ["CONFIG", "SET", "maxmemory", "100mb", "maxmemory", "200mb"], ["CONFIG", "SET", "maxmemory", "abc"],
        ["CONFIG", "SET", "maxmemory", "1.5gb"], ["CONFIG", "SET", "maxmemory", "-1"],
        ["CONFIG", "SET", "loglevel", "xx"], ["CONFIG", "SET", "LOGLEVEL", "xx"], ["CONFIG", "SET", "databases", "3"],
        ["CONFIG", "SET", "proto-max-bulk-len", "10"], ["CONFIG", "SET", "proto-max-bulk-len", "abc"],
        ["CONFIG", "SET", "busy-reply-threshold", "-1"], ["CONFIG", "SET", "lua-time-limit", "abc"],
        ["CONFIG", "REWRITE"], ["CONFIG", "REWRITE", "x"], ["CONFIG", "RESETSTAT"], ["CONFIG", "FOO"],
        ["CONFIG", "HELP"], ["CONFIG", "GET"], ["CONFIG"],
    ],
    "config_set_live": [
        # Settable on both; each change is read back, then the default restored.
        ["CONFIG", "SET", "loglevel", "WARNING"], ["CONFIG", "GET", "loglevel"],
        # All or nothing: the second pair fails, so the first is not applied either.
        ["CONFIG", "SET", "loglevel", "verbose", "busy-reply-threshold", "x"], ["CONFIG", "GET", "loglevel"],
        ["CONFIG", "SET", "loglevel", "verbose", "nosuch", "1"], ["CONFIG", "GET", "loglevel"],
        ["CONFIG", "SET", "loglevel", "notice"], ["CONFIG", "GET", "loglevel"],
        ["CONFIG", "SET", "busy-reply-threshold", "300"], ["CONFIG", "GET", "busy-reply-threshold"],
        ["CONFIG", "GET", "lua-time-limit"], ["CONFIG", "SET", "lua-time-limit", "5000"],
        ["CONFIG", "GET", "busy-reply-threshold"],
        ["CONFIG", "SET", "proto-max-bulk-len", "2mb"], ["CONFIG", "GET", "proto-max-bulk-len"],
        ["CONFIG", "SET", "proto-max-bulk-len", "512mb"], ["CONFIG", "GET", "proto-max-bulk-len"],
    ],
    "config_get_values": [
        ["CONFIG", "GET", "save"], ["CONFIG", "GET", "appendonly"], ["CONFIG", "GET", "timeout"],
        ["CONFIG", "GET", "nonexistent-parameter"], ["CONFIG", "GET", "nonexistent*"],
        ["CONFIG", "GET", "save", "save"], ["CONFIG", "GET", "TIMEOUT"],
        ["CONFIG", "GET", "proto-max-bulk-len"], ["CONFIG", "GET", "maxclients"], ["CONFIG", "GET", "requirepass"],
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_matches_redis(pair, name):
    theirs, ours = pair
    differences = run_script(theirs, ours, SCRIPTS[name])
    assert not differences, "\n".join(differences)


def as_dict(value):
    """A CONFIG GET reply as a dict, from RESP2's flat list or RESP3's map."""
    return value if isinstance(value, dict) else dict(zip(value[::2], value[1::2]))


@pytest.mark.parametrize("patterns", [
    ["maxmemory"], ["maxmemory-policy"], ["port"], ["bind"], ["dir"], ["save"], ["appendonly"], ["appendfsync"],
    ["databases"], ["timeout"], ["loglevel"], ["proto-max-bulk-len"], ["lua-time-limit"], ["busy-reply-threshold"],
    ["maxclients"], ["requirepass"], ["port", "databases", "save"], ["MAXMEMORY"], ["lua*"], ["busy*"],
    ["Proto-max-*"],
])
def test_config_get_names_and_shape_match_redis(pair, patterns):
    """The names answered, and the reply's type (RESP3 map, RESP2 list); values are Strata's."""
    theirs, ours = pair
    expected, actual = reply(theirs, "CONFIG", "GET", *patterns), reply(ours, "CONFIG", "GET", *patterns)
    assert type(expected) is type(actual)
    assert sorted(as_dict(actual)) == sorted(as_dict(expected))


def test_config_get_values_come_from_the_flags(make_node):
    node = make_node("--memory", "48MiB", "--disk", "256MiB", "--fsync", "always", "--requirepass", "pw")
    client = node.client(password="pw", decode_responses=True)
    config = client.config_get("*")
    assert config["maxmemory"] == str(48 << 20) and config["maxmemory-policy"] == "allkeys-lru"
    assert config["port"] == str(node.port) and config["bind"] == "127.0.0.1"
    assert config["dir"] == node.data_dir and config["databases"] == "1" and config["save"] == ""
    assert config["appendonly"] == "no" and config["appendfsync"] == "always"
    assert config["requirepass"] == "pw"  # as Redis 7 shows it to an authenticated client
    assert config["loglevel"] == "verbose"  # --log-level info and config["busy-reply-threshold"] == "5000"
    assert config["cluster-enabled"] == "no"
    # Known, but fixed at start: a clear error naming the parameter.
    for name, value in [("port", "1"), ("appendonly", "yes"), ("dir", "/tmp"), ("disk", "1gb")]:
        with pytest.raises(redis.ResponseError, match=f"argument '{name}'.*immutable"):
            client.config_set(name, value)
    with pytest.raises(redis.ResponseError, match="only allkeys-lru"):
        client.config_set("maxmemory-policy", "noeviction")
    assert client.config_set("maxmemory-policy", "allkeys-lru")
    # Redis' 0 (no limit) is the budget the node started with.
    assert client.config_set("maxmemory", "0")
    assert client.config_get("maxmemory") == {"maxmemory": str(48 << 20)}


# ---------------------------------------------------------------------------------------------
# CONFIG SET maxmemory: the memory tier's budget changes live.


def strata_info(client):
    return client.info("strata")


def test_config_set_maxmemory_shrinks_the_memory_tier(make_node):
    node = make_node("--memory", "64MiB", "--disk", "256MiB")
    client = node.client()
    pipe = client.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"k:{i}", "x" * 1000)
    pipe.execute()
    before = strata_info(client)
    assert before["memory_items"] == 3000 and tier(client, "k:0") == "memory"

    assert client.config_set("maxmemory", "1mb")
    after = strata_info(client)
    assert after["memory_budget"] == 1 << 20 and client.info("memory")["maxmemory"] == 1 << 20
    assert client.config_get("maxmemory") == {"maxmemory": str(1 << 20)}
    assert after["memory_bytes"] <= 1 << 20
    assert after["memory_items"] < 1100 and after["memory_evictions"] >= 1900
    on_disk = [i for i in range(3000) if tier(client, f"k:{i}") == "disk"]
    assert len(on_disk) >= 1900
    # Nothing is lost: every key reads back from the disk tier, and memory stays in its budget.
    values = client.mget([f"k:{i}" for i in range(3000)])
    assert all(v == b"x" * 1000 for v in values)
    assert strata_info(client)["memory_bytes"] <= 1 << 20

    assert client.config_set("maxmemory", "64mb")
    client.mget([f"k:{i}" for i in range(3000)])
    assert strata_info(client)["memory_items"] == 3000

    # Redis' 0 (no limit) returns to the budget the node started with.
    assert client.config_set("maxmemory", "1mb")
    assert client.config_set("maxmemory", "0")
    assert client.config_get("maxmemory") == {"maxmemory": str(64 << 20)}


def test_proto_max_bulk_len_applies_to_new_connections(make_node):
    node = make_node("--memory", "64MiB", "--disk", "256MiB")
    admin = node.client()
    assert admin.config_set("proto-max-bulk-len", "1mb")
    with pytest.raises((redis.ResponseError, redis.ConnectionError)):
        node.client().set("big", "x" * (2 << 20))
    assert admin.config_set("proto-max-bulk-len", "512mb")
    assert node.client().set("big", "x" * (2 << 20))


# ---------------------------------------------------------------------------------------------
# Keys on the disk tier only


def push_to_disk(client, keys):
    """Writes filler past a 1 MiB memory budget until every key in `keys` is only on disk."""
    for round in range(20):
        pipe = client.pipeline(transaction=False)
        for i in range(500):
            pipe.set(f"filler:{round}:{i}", "f" * 1000)
        pipe.execute()
        if all(tier(client, key) == "disk" for key in keys):
            return
    pytest.fail("the filler did not push the keys to the disk tier")


def test_rename_and_copy_of_keys_only_on_disk(make_node):
    node = make_node("--memory", "1MiB", "--disk", "256MiB")
    client = node.client()
    client.set("cold", "cold-value", ex=1000)
    client.set("cold2", "second")
    client.set("dest", "old")
    push_to_disk(client, ["cold", "cold2", "dest"])
    assert client.rename("cold", "moved")
    assert client.get("moved") == b"cold-value" and 990 <= client.ttl("moved") <= 1000
    assert client.exists("cold") == 0
    assert client.copy("cold2", "dest", replace=True)
    assert client.get("dest") == b"second" and client.get("cold2") == b"second"
    assert client.renamenx("cold2", "dest") is False
    assert client.object("encoding", "dest") == b"embstr"
    usage = client.memory_usage("dest")
    assert usage is not None and usage > len("dest") + len("second")
    # The renames are durable: a restart reads them back from the disk tier.
    node.restart()
    client = node.client()
    assert client.get("moved") == b"cold-value" and client.exists("cold") == 0
    assert client.get("dest") == b"second"


def test_memory_usage_grows_with_the_value(node):
    client = node.client()
    client.set("small", "v")
    client.set("large", "x" * 10_000)
    small, large = client.memory_usage("small"), client.memory_usage("large")
    assert 0 < small < 200
    assert 10_000 < large < 25_000
    assert client.memory_usage("missing") is None
    stats = client.memory_stats()
    assert stats["keys.count"] == 2 and stats["dataset.bytes"] > 10_000
    assert client.execute_command("MEMORY", "DOCTOR").startswith(b"Hi Sam")


# ---------------------------------------------------------------------------------------------
# INFO


DEFAULT_HEADERS = ["Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU", "Modules",
                   "Errorstats", "Cluster", "Keyspace"]
FIELDS = {
    "server": {"redis_version": str, "redis_mode": str, "os": str, "arch_bits": int, "process_id": int,
               "tcp_port": int, "uptime_in_seconds": int, "uptime_in_days": int, "run_id": str, "hz": int,
               "executable": str},
    "clients": {"connected_clients": int, "blocked_clients": int, "maxclients": int},
    "memory": {"used_memory": int, "used_memory_human": str, "used_memory_rss": int, "used_memory_rss_human": str,
               "maxmemory": int, "maxmemory_human": str, "maxmemory_policy": str, "mem_allocator": str,
               "mem_fragmentation_ratio": float, "total_system_memory": int},
    "persistence": {"loading": int, "rdb_changes_since_last_save": int, "rdb_bgsave_in_progress": int,
                    "rdb_last_save_time": int, "rdb_last_bgsave_status": str, "aof_enabled": int,
                    "aof_rewrite_in_progress": int},
    "stats": {"total_connections_received": int, "total_commands_processed": int, "instantaneous_ops_per_sec": int,
              "total_net_input_bytes": int, "total_net_output_bytes": int, "instantaneous_input_kbps": float,
              "rejected_connections": int, "expired_keys": int, "evicted_keys": int, "keyspace_hits": int,
              "keyspace_misses": int},
    "replication": {"role": str, "connected_slaves": int, "master_replid": str, "master_repl_offset": int},
    "cpu": {"used_cpu_sys": float, "used_cpu_user": float},
    "cluster": {"cluster_enabled": int},
}


def headers(text):
    return [line[2:] for line in text.split("\r\n") if line.startswith("# ")]


def test_info_sections_and_fields_as_redis_names_them(node, redis_server):
    theirs, _ = redis_server
    ours = node.client()
    ours.set("k", "v")
    theirs.set("k", "v")
    for section, fields in FIELDS.items():
        mine, reference = ours.info(section), theirs.info(section)
        for name, kind in fields.items():
            assert name in reference, f"{name} is not a Redis field of {section}"
            assert name in mine, f"INFO {section} lacks {name}"
            value = mine[name]
            if kind is float:
                assert isinstance(value, (int, float)), (name, value)
            else:
                assert isinstance(value, kind), (name, value)
    info = ours.info()
    assert info["redis_mode"] == "standalone" and info["role"] == "master" and info["connected_slaves"] == 0
    assert info["cluster_enabled"] == 0 and info["maxmemory_policy"] == "allkeys-lru"
    assert info["tcp_port"] == node.port and info["maxmemory"] == 64 << 20 and info["loading"] == 0
    assert len(info["run_id"]) == 40 and info["aof_enabled"] == 0
    assert info["total_commands_processed"] >= 2 and info["keyspace_hits"] >= 0


def test_info_section_selection_follows_redis(node, redis_server):
    ours_raw, theirs_raw = raw_client(node.port), raw_client(redis_server[1])
    for args in [(), ("default",), ("all",), ("everything",), ("server", "cpu"), ("CPU",), ("foo",),
                 ("cpu", "CPU"), ("all", "server"), ("keyspace",), ("Server", "clients")]:
        expected = headers(theirs_raw.execute_command("INFO", *args).decode())
        actual = headers(ours_raw.execute_command("INFO", *args).decode())
        # Strata adds its own section to the default set and to all/everything.
        assert [h for h in actual if h != "Strata"] == expected, args
        assert ("Strata" in actual) == (not args or any(a in ("default", "all", "everything") for a in args))
    assert ours_raw.execute_command("INFO", "foo") == theirs_raw.execute_command("INFO", "foo") == b""


def test_info_keyspace_line(node):
    client = node.client()
    assert "db0" not in client.info("keyspace")  # omitted when empty, as Redis
    client.set("a", "1")
    client.set("b", "2", ex=1000)
    client.set("c", "3", px=500_000)
    db0 = client.info("keyspace")["db0"]
    assert db0["keys"] == 3 and db0["expires"] == 2
    # The mean remaining TTL of the two keys with one: about (1000 s + 500 s) / 2, in ms.
    assert 700_000 <= db0["avg_ttl"] <= 750_000
    strata = client.info("strata")
    assert strata["node_keys"] == 3 and "memory_items" in strata and "flush_floor" in strata


def test_info_instantaneous_ops_follow_the_traffic(node):
    client = node.client()
    client.info("stats")  # the first sample
    for _ in range(300):
        client.ping()
    time.sleep(1.1)
    stats = client.info("stats")
    assert stats["instantaneous_ops_per_sec"] > 0 and stats["instantaneous_input_kbps"] > 0


# ---------------------------------------------------------------------------------------------
# A 3-node cluster: RENAME/COPY keys that share a coordinator work through any node; keys whose
# coordinators differ get CROSSSLOT.


def keys_on_different_coordinators(node):
    first = owners(node, "rename:0")[0]
    for i in range(1, 200):
        key = f"rename:{i}"
        if owners(node, key)[0] != first:
            return "rename:0", key
    pytest.fail("no two keys with different coordinators")


def test_rename_in_a_cluster(make_node):
    cluster = start_cluster(make_node)
    n1, n2, n3 = (cluster[name].client() for name in ("n1", "n2", "n3"))
    assert n1.set("{t}a", "value", ex=1000)
    assert n2.rename("{t}a", "{t}b")
    assert n3.get("{t}b") == b"value" and n3.exists("{t}a") == 0 and 990 <= n3.ttl("{t}b") <= 1000
    assert n3.copy("{t}b", "{t}c")
    assert n1.get("{t}c") == b"value"
    assert n1.renamenx("{t}b", "{t}c") is False
    assert n2.renamenx("{t}b", "{t}d") is True
    assert n1.mget("{t}a", "{t}b", "{t}c", "{t}d") == [None, None, b"value", b"value"]
    # The renamed-away key is gone from every owner once replication has run.
    deadline = time.time() + 10
    while time.time() < deadline and any(tier(node.client(), "{t}a") != "none" for node in cluster.values()):
        time.sleep(0.1)
    assert all(tier(node.client(), "{t}a") == "none" for node in cluster.values())

    first, second = keys_on_different_coordinators(cluster["n1"])
    n1.set(first, "1")
    n1.set(second, "2")
    for client in (n1, n2, n3):
        for command in (["RENAME", first, second], ["RENAMENX", first, second], ["COPY", first, second]):
            with pytest.raises(redis.ResponseError, match="Keys in request don't hash to the same slot"):
                client.execute_command(*command)
        # TOUCH is split across the keys' nodes, like EXISTS.
        assert client.touch(first, second, "rename:missing") == 2
    raw = raw_client(cluster["n2"].port)
    assert reply(raw, "RENAME", first, second) == Err("CROSSSLOT Keys in request don't hash to the same slot")
    assert n1.get(first) == b"1" and n1.get(second) == b"2"


def test_config_set_loglevel_changes_what_the_node_logs(make_node):
    node = make_node("--memory", "32MiB")
    client = node.client()

    def logged(marker):
        deadline = time.time() + 5
        while time.time() < deadline:
            if any(marker in line for line in node.log_lines):
                return True
            time.sleep(0.05)
        return False

    # --log-level info is Redis' verbose: debug lines are left out.
    assert client.config_get("loglevel") == {"loglevel": "verbose"}
    client.eval("redis.log(redis.LOG_DEBUG, 'marker-hidden')", 0)
    assert client.config_set("loglevel", "debug")
    assert client.config_get("loglevel") == {"loglevel": "debug"}
    client.eval("redis.log(redis.LOG_DEBUG, 'marker-shown')", 0)
    assert logged("marker-shown")
    assert client.config_set("loglevel", "warning")
    client.eval("redis.log(redis.LOG_NOTICE, 'marker-quiet')", 0)
    client.eval("redis.log(redis.LOG_WARNING, 'marker-loud')", 0)
    assert logged("marker-loud")
    assert not any("marker-hidden" in line or "marker-quiet" in line for line in node.log_lines)


def test_errorstats_and_config_resetstat_follow_redis(node, redis_server):
    """INFO errorstats counts error replies by their code, scripts' own codes included, and
    CONFIG RESETSTAT starts INFO's stats and errorstats again, on both servers alike."""
    for port in (node.port, redis_server[1]):
        client = redis.Redis(port=port, decode_responses=True)
        client.set("es:s", "v")
        client.get("es:s")
        client.get("es:missing")
        assert client.config_resetstat()
        for command in (["GET"], ["INCR", "es:s"], ["NOSUCHCOMMAND"], ["HSET", "es:s", "f", "v"]):
            with pytest.raises(redis.ResponseError):
                client.execute_command(*command)
        with pytest.raises(redis.ResponseError):
            client.eval("return redis.error_reply('MYCODE oops')", 0)
        errors = client.info("errorstats")
        assert errors == {"errorstat_ERR": {"count": 3}, "errorstat_MYCODE": {"count": 1},
                          "errorstat_WRONGTYPE": {"count": 1}}, (port, errors)
        stats = client.info("stats")
        assert stats["total_error_replies"] == 5, port
        assert stats["keyspace_hits"] == 0 and stats["keyspace_misses"] == 0, (port, stats)
        assert 5 <= stats["total_commands_processed"] <= 10, (port, stats)
        assert client.config_resetstat()
        assert client.info("errorstats") == {}
        assert client.info("stats")["total_error_replies"] == 0
    # The Prometheus counters are totals: a reset does not move them back.
    text = urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/metrics", timeout=5).read().decode()
    commands = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("strata_commands_total")]
    assert commands and sum(commands) >= 10, commands


def test_collection_thresholds_as_flags_with_redis_names_and_aliases(make_node):
    node = make_node("--hash-max-listpack-entries", "4", "--list-max-ziplist-size", "-3",
                     "--zset-max-ziplist-entries", "2", "--set-max-intset-entries", "3")
    client = node.client(decode_responses=True)
    assert client.config_get("hash-max-listpack-entries") == {"hash-max-listpack-entries": "4"}
    assert client.config_get("hash-max-ziplist-entries") == {"hash-max-ziplist-entries": "4"}
    assert client.config_get("list-max-listpack-size") == {"list-max-listpack-size": "-3"}
    client.hset("fl:h", mapping={f"f{i}": i for i in range(5)})
    client.zadd("fl:z", {"a": 1, "b": 2, "c": 3})
    client.sadd("fl:s", 1, 2, 3, 4)
    client.hset("fl:small", "f", "v")
    assert [client.object("encoding", k) for k in ("fl:h", "fl:z", "fl:s", "fl:small")] == \
        ["hashtable", "skiplist", "listpack", "listpack"]


def test_a_bad_threshold_flag_stops_the_node_with_a_clear_error(tmp_path):
    binary = strata_binary()
    result = subprocess.run(
        [binary, "--data-dir", str(tmp_path / "d"), "--port", "0", "--http-port", "0", "--zset-max-listpack-value", "-1"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--zset-max-listpack-value: argument must be a memory value" in result.stderr, result.stderr


def test_shutdown_stops_the_node_gracefully_and_keeps_every_write(make_node):
    node = make_node("--fsync", "never")
    client = node.client()
    pipe = client.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"sd:{i}", i)
    pipe.execute()
    with pytest.raises(redis.ResponseError, match="syntax error"):
        client.execute_command("SHUTDOWN", "SAVE", "NOSAVE")
    with pytest.raises(redis.ResponseError, match="No shutdown in progress"):
        client.execute_command("SHUTDOWN", "ABORT")
    with pytest.raises(redis.ConnectionError):
        client.execute_command("SHUTDOWN", "NOSAVE")
    assert node.process.wait(timeout=60) == 0
    node.start()
    values = node.client().mget([f"sd:{i}" for i in range(2000)])
    assert values == [str(i).encode() for i in range(2000)]


def test_memory_stats_has_redis_fields_with_redis_types(node, redis_server):
    theirs = redis.Redis(port=redis_server[1], protocol=3)
    ours = redis.Redis(port=node.port, protocol=3)
    reference = theirs.execute_command("MEMORY", "STATS")
    mine = ours.execute_command("MEMORY", "STATS")
    # Redis 7.0 lists its databases as nested maps (db.0); Strata has one database and no such entry.
    wanted = {k: v for k, v in reference.items() if not k.startswith(b"db.")}
    missing = sorted(set(wanted) - set(mine))
    assert not missing, missing
    differing = {k: (type(wanted[k]).__name__, type(mine[k]).__name__) for k in wanted if type(wanted[k]) is not type(mine[k])}
    assert not differing, differing
    assert mine[b"dataset.bytes"] >= 0 and 0 <= mine[b"dataset.percentage"] <= 100
