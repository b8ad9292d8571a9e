"""The PostgreSQL baseline of the benchmark (bench/pg.py) answers exactly what Neo4j answers:
the same trace JSON for every tube of a generated city (derived flags included), the same
day's positives and the same second exposure ring of every confirmed case; its online load
stores the same traces and is idempotent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bench import pg
from bench.run import analysis_times
from engine.analysis import reports
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import all_tube_codes, trace_many
from loaders import write
from loaders.generate import generate_city
from loaders.read import read_file


@pytest.fixture(scope="module")
def pg_server() -> Iterator[pg.PgServer]:
    if not (pg.PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL 15 is missing ({pg.PG_BIN}): apt-get install postgresql")
    server = pg.PgServer(shared_buffers="64MB").start()
    yield server
    server.stop()


def as_json(trace: dict[str, object]) -> str:
    return json.dumps(trace, sort_keys=True, ensure_ascii=False)


def test_pg_answers_equal_neo4j(
    gw: Gateway, settings: Settings, pg_server: pg.PgServer, tmp_path: Path
) -> None:
    city = tmp_path / "city"
    generate_city(city, seed=11, registrations=1500, positive_rate=0.06, mix_pools=True)
    for kind in ("compounds", "registrations", "results"):
        path = city / f"{kind}.csv"
        write.load_records(gw, kind, read_file(path, kind), path.name, settings)
    secret = gw.secret()
    codes = list(all_tube_codes(gw))
    neo = trace_many(gw, codes)
    with pg_server.connect() as conn:
        loaded = pg.copy_load(conn, city, settings, secret)
        assert loaded > 1500
        other = pg.trace_many(conn, codes)
        assert sorted(other) == sorted(neo)
        differ = [c for c in codes if as_json(neo[c]) != as_json(other[c])]
        assert differ == [], (as_json(neo[differ[0]]), as_json(other[differ[0]]))
        flags = {f for t in neo.values() for f in t["flags"]}
        flags |= {f for t in neo.values() for p in t["persons"] for f in p["flags"]}
        assert {"duplicate_registration", "unknown_compound", "box_multiple_compounds"} <= flags
        # The day's positives.
        for day in ("2022-04-09", "2022-04-10"):
            tubes = sorted({i["tube_code"] for i in reports.positives_stream(gw, day)})
            mine = pg.positives(conn, day)
            assert [t["tube"]["code"] for t in mine] == tubes and tubes
            assert all(as_json(t) == as_json(neo[t["tube"]["code"]]) for t in mine)
        # The second exposure ring of every confirmed case, 14 days up to its collection day.
        cases = gw.read("confirmed_cases", limit=50)
        assert cases
        sizes = []
        for case in cases:
            until = case["collected_at"].to_native().date()
            since = (until - timedelta(days=13)).isoformat()
            a = pg.neo4j_second_ring(gw, case["person_id"], since, until.isoformat())
            b = pg.second_ring(conn, case["person_id"], since, until.isoformat())
            assert a == b
            sizes.append((len(a[0]), len(a[1])))
        assert any(r2 > 0 for _, r2 in sizes), sizes
        print(f"PG = Neo4j on {len(codes)} traces and {len(cases)} rings (ring sizes {sizes[:5]})")
        # The bench's exposure (depth 2-4, one subject at a time and all at once) and clusters:
        # it raises when an answer of PostgreSQL's differs from Neo4j's.
        analysis = analysis_times(gw, conn, "2022-04-10")
        assert analysis["exposure_cases"] == min(len(cases), 30)
        assert analysis["exposure_mean_persons"]["4"] > analysis["exposure_mean_persons"]["2"] > 0
        assert (
            set(analysis["exposure_batch_ms"])
            == set(analysis["exposure_pg_batch_ms"])
            == {
                "2",
                "3",
                "4",
            }
        )
        assert analysis["clusters"] > 0
        # The online load (the same transforms, INSERT ... ON CONFLICT) stores the same traces.
        pg.create_schema(conn)
        pg.load_other(conn, city, settings, secret)
        path = city / "registrations.csv"
        first = pg.online_load(conn, read_file(path, "registrations"), settings, secret)
        again = pg.online_load(conn, read_file(path, "registrations"), settings, secret)
        count = conn.execute("SELECT count(*) FROM registration").fetchone()
        assert count is not None and count[0] == loaded
        assert first["conflicts"] > 0 and again["read"] == first["read"]
        online = pg.trace_many(conn, codes)
        assert all(as_json(online[c]) == as_json(neo[c]) for c in codes)
