"""GEO commands side by side with redis-server 7.0 in RESP2 and RESP3: GEOADD (NX XX CH),
GEOPOS, GEODIST in every unit, GEOHASH, GEORADIUS and GEORADIUSBYMEMBER (and _RO) with STORE and
STOREDIST, GEOSEARCH and GEOSEARCHSTORE (FROMMEMBER FROMLONLAT BYRADIUS BYBOX ASC DESC COUNT ANY
WITHCOORD WITHDIST WITHHASH STOREDIST), the errors in Redis' order, and a random comparison of
positions, distances and searches over a few hundred points."""
import random

import pytest

from test_commands import Unordered, pair, redis_port, run_script, strata  # noqa: F401 (module fixtures)

PLACES = ["GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania",
          "12.758489", "38.788135", "edge1", "-180", "85.05112878", "pole", "180", "-85.05112878", "south"]

SCRIPT = [
    PLACES,
    ["GEOADD", "Sicily", "NX", "13.361389", "38.115556", "Palermo", "14.0", "37.0", "New"],
    ["GEOADD", "Sicily", "XX", "CH", "13.4", "38.1", "Palermo", "14.5", "37.5", "Missing"],
    ["GEOADD", "Sicily", "NX", "XX", "1", "1", "x"],
    ["GEOADD", "Sicily", "1", "1"],
    ["GEOADD", "Sicily", "200", "100", "bad"],
    ["GEOADD", "Sicily", "abc", "10", "bad"],
    ["GEOADD", "Sicily", "10", "85.1", "bad"],
    ["GEOPOS", "Sicily", "Palermo", "Catania", "NonExisting", "edge1", "pole", "south"],
    ["GEOPOS", "missing", "a", "b"],
    ["GEOPOS", "Sicily"],
    ["GEODIST", "Sicily", "Palermo", "Catania"],
    ["GEODIST", "Sicily", "Palermo", "Catania", "km"],
    ["GEODIST", "Sicily", "Palermo", "Catania", "MI"],
    ["GEODIST", "Sicily", "Palermo", "Catania", "ft"],
    ["GEODIST", "Sicily", "Palermo", "Catania", "furlong"],
    ["GEODIST", "Sicily", "Palermo", "Nope"],
    ["GEODIST", "missing", "a", "b"],
    ["GEODIST", "Sicily", "Palermo", "Catania", "km", "extra"],
    ["GEOHASH", "Sicily", "Palermo", "Catania", "Nope", "pole", "south"],
    ["GEOHASH", "missing", "a"],
    ["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST", "ASC"],
    ["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHCOORD", "WITHDIST", "WITHHASH", "DESC"],
    ["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1"],
    ["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "0"],
    ["GEORADIUS", "Sicily", "15", "37", "200", "km", "ANY"],
    ["GEORADIUS", "Sicily", "15", "37", "-1", "km"],
    ["GEORADIUS", "Sicily", "15", "37", "x", "km"],
    ["GEORADIUS", "Sicily", "15", "37", "200", "parsec"],
    ["GEORADIUS", "Sicily", "15", "37", "200", "km", "BOGUS"],
    ["GEORADIUS", "Sicily", "15", "37", "200", "km", "ASC", "STORE", "dest"],
    ["ZRANGE", "dest", "0", "-1", "WITHSCORES"],
    ["GEORADIUS", "Sicily", "15", "37", "200", "km", "ASC", "STOREDIST", "dist"],
    ["ZRANGE", "dist", "0", "-1", "WITHSCORES"],
    ["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dest", "WITHDIST"],
    ["GEORADIUS", "missing", "15", "37", "200", "km", "STORE", "dest"],
    ["EXISTS", "dest"],
    ["GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "ASC"],
    ["GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "STORE", "x"],
    ["GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "ASC", "WITHDIST"],
    ["GEORADIUSBYMEMBER", "Sicily", "Nope", "200", "km"],
    ["GEORADIUSBYMEMBER_RO", "Sicily", "Catania", "100", "km", "DESC", "COUNT", "2"],
    ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHCOORD", "WITHDIST"],
    ["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "400", "400", "km", "ASC", "WITHDIST", "WITHHASH"],
    ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "100", "300", "km", "DESC"],
    ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "COUNT", "1", "ANY"],
    ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "COUNT", "2", "DESC"],
    ["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "m"],
    ["GEOSEARCH", "Sicily", "BYRADIUS", "1", "m"],
    ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "ASC"],
    ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "m", "BYBOX", "1", "1", "m"],
    ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "x", "1", "m"],
    ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "1", "-1", "m"],
    ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "m", "STORE", "x"],
    ["GEOSEARCH", "Sicily", "FROMMEMBER", "Nope", "BYRADIUS", "1", "m"],
    ["GEOSEARCH", "missing", "FROMMEMBER", "Nope", "BYRADIUS", "1", "m"],
    ["GEOSEARCH", "missing", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "m", "ANY"],
    ["GEOSEARCHSTORE", "out", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "COUNT", "2"],
    ["ZRANGE", "out", "0", "-1", "WITHSCORES"],
    ["GEOSEARCHSTORE", "out", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STOREDIST"],
    ["ZRANGE", "out", "0", "-1", "WITHSCORES"],
    ["GEOSEARCHSTORE", "out", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "WITHDIST"],
    ["GEOSEARCHSTORE", "out", "missing", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"],
    ["EXISTS", "out"],
    ["TYPE", "Sicily"],
    ["SET", "str", "x"],
    ["GEOADD", "str", "1", "1", "m"],
    ["GEOPOS", "str", "m"],
    ["GEOSEARCH", "str", "FROMLONLAT", "15", "37", "BYRADIUS", "x", "m"],
    ["GEORADIUS", "str", "1000", "37", "1", "m"],
]


def test_script_matches_redis(pair):
    theirs, ours = pair
    differences = run_script(theirs, ours, SCRIPT)
    assert not differences, f"{len(differences)} replies differ from Redis:\n" + "\n".join(differences)


def test_random_points_positions_distances_and_searches_match_redis(pair):
    theirs, ours = pair
    rng = random.Random(7)
    steps = []
    points = []
    for i in range(300):
        lon, lat = rng.uniform(-180, 180), rng.uniform(-85.05, 85.05)
        points.append((lon, lat))
        steps.append(["GEOADD", "world", f"{lon:.6f}", f"{lat:.6f}", f"p{i}"])
    steps.append(["GEOPOS", "world"] + [f"p{i}" for i in range(300)])
    steps.append(["GEOHASH", "world"] + [f"p{i}" for i in range(300)])
    for _ in range(60):
        a, b = rng.randrange(300), rng.randrange(300)
        steps.append(["GEODIST", "world", f"p{a}", f"p{b}", rng.choice(["m", "km", "mi", "ft"])])
    for _ in range(40):
        lon, lat = rng.uniform(-180, 180), rng.uniform(-80, 80)
        radius = str(rng.choice([100, 1000, 3000, 8000]))
        steps.append(["GEOSEARCH", "world", "FROMLONLAT", f"{lon:.4f}", f"{lat:.4f}", "BYRADIUS", radius, "km",
                      "ASC", "WITHDIST", "WITHCOORD"])
        steps.append(["GEOSEARCH", "world", "FROMMEMBER", f"p{rng.randrange(300)}", "BYBOX", radius, radius, "km",
                      "DESC", "WITHHASH"])
        steps.append(Unordered(["GEORADIUS", "world", f"{lon:.4f}", f"{lat:.4f}", radius, "km"]))
    differences = run_script(theirs, ours, steps)
    assert not differences, f"{len(differences)} replies differ from Redis:\n" + "\n".join(differences[:10])
