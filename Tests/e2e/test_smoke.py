def test_ping_set_get(r):
    assert r.ping()
    assert r.set("k", "v")
    assert r.get("k") == b"v"


def test_health_and_ready(node):
    assert node.http("/health") == (200, "ok\n")
    status, body = node.http("/ready")
    assert status == 200 and '"ready":true' in body
