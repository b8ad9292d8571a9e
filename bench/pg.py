"""The PostgreSQL baseline: the alternative a user would pick, measured in the same run.

A throw-away PostgreSQL 15 cluster (Debian's `postgresql`, initdb in a temporary folder, a free
loopback port, fsync and synchronous_commit on: durable at commit), loaded with COPY from the
same generated files through the project's own transforms (loaders/transform.py), with the
same first-version-wins rule. It answers the same trace in ONE SQL statement, with the same
derived flags (duplicate registrations, boxes filled at several compounds the same day, unknown
compounds), turned into the same JSON by engine.trace.build.build_trace; the day's positives; an
online load (the same transforms, INSERT ... ON CONFLICT, one transaction per batch); and the
second exposure ring of a confirmed case (bench/cypher/bench.cypher has the Neo4j side)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import psycopg

from engine.model import NODES
from engine.trace.build import build_trace
from loaders.read import read_file
from loaders.transform import Quarantined, Row
from loaders.write import make_transform


def _pg_bin() -> Path:
    """PostgreSQL 15 when installed (the baseline's version), else the newest one."""
    if os.environ.get("TUBETRACE_PG_BIN"):
        return Path(os.environ["TUBETRACE_PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: (p.parent.parent.name != "15", -int(p.parent.parent.name)),
    )
    return found[0].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()

SCHEMA = """
CREATE TABLE compound (
  code text PRIMARY KEY, name text, address text, district_code text, subdistrict text,
  lat double precision, lon double precision, contact_phone text, flags text[],
  content_hash text, raw text
);
CREATE TABLE person (
  person_id text PRIMARY KEY, id_type text, id_number text, registered_district_code text
);
CREATE TABLE tube (code text PRIMARY KEY);
CREATE TABLE registration (
  record_id text PRIMARY KEY,
  collected_at timestamptz,
  collected_at_iso text,  -- as received, with its own UTC offset
  day text, compound_code text, box_code text, tube_code text NOT NULL, pool_size integer,
  method text, id_type text, name text, phone text, registered_address text,
  collector_id text, flags text[], content_hash text,
  raw text,  -- as in Neo4j: the line only of a record flagged invalid_* (docs/footprint.md)
  person_id text NOT NULL
);
CREATE TABLE result (
  result_key text PRIMARY KEY, tube_code text NOT NULL, result text,
  reported_at timestamptz, reported_at_iso text, day text, lab_code text,
  ct_value double precision, flags text[], content_hash text,
  raw text  -- as for registrations
);
"""
INDEXES = """
CREATE INDEX registration_tube ON registration (tube_code);
CREATE INDEX registration_person_day ON registration (person_id, day);
CREATE INDEX registration_box_day ON registration (box_code, day);
CREATE INDEX result_tube ON result (tube_code);
CREATE INDEX result_day ON result (day, result);
ANALYZE;
"""

# The trace of a set of tubes, one statement. Derived flags as in cypher/trace.cypher:
# `duplicate` (the same person in another pooled tube the same day: computed here, a mark
# set by the loader in Neo4j, cypher/ingest.cypher) and the number of
# compounds the registration's box was filled at that day; an unknown compound has no row.
# The residence fallback (no directory here): the person's latest other registration at a
# known compound, as in cypher/directory.cypher.
TRACE_SQL = """
SELECT t.code,
  coalesce((
    SELECT json_agg(json_build_object(
        'record_id', r.record_id, 'collected_at', r.collected_at_iso, 'day', r.day,
        'pool_size', r.pool_size, 'method', r.method, 'name', r.name, 'phone', r.phone,
        'flags', r.flags, 'box_code', r.box_code, 'compound_code', r.compound_code,
        'person_id', p.person_id, 'id_type', p.id_type, 'id_number', p.id_number,
        'registered_district_code', p.registered_district_code,
        'compound', CASE WHEN c.code IS NULL THEN NULL ELSE json_build_object(
            'code', c.code, 'name', c.name, 'address', c.address,
            'district_code', c.district_code, 'subdistrict', c.subdistrict,
            'contact_phone', c.contact_phone) END,
        'fallback', CASE WHEN c.code IS NULL THEN (
            SELECT json_build_object('code', oc.code, 'address', oc.address,
                'district_code', oc.district_code, 'contact_phone', oc.contact_phone)
            FROM registration o JOIN compound oc ON oc.code = o.compound_code
            WHERE o.person_id = r.person_id AND o.record_id <> r.record_id
            ORDER BY o.collected_at DESC, o.record_id DESC LIMIT 1) END,
        'duplicate', r.pool_size > 1 AND r.day IS NOT NULL AND EXISTS (
            SELECT 1 FROM registration o
            WHERE o.person_id = r.person_id AND o.day = r.day AND o.record_id <> r.record_id
              AND o.pool_size > 1 AND o.tube_code <> r.tube_code),
        'box_compounds_that_day', CASE WHEN r.box_code IS NULL OR r.day IS NULL THEN 0 ELSE (
            SELECT count(DISTINCT f.compound_code) FROM registration f
            WHERE f.box_code = r.box_code AND f.day = r.day
              AND f.compound_code IS NOT NULL) END
      ) ORDER BY r.collected_at, r.record_id)
    FROM registration r
    JOIN person p ON p.person_id = r.person_id
    LEFT JOIN compound c ON c.code = r.compound_code
    WHERE r.tube_code = t.code), '[]') AS registrations,
  coalesce((
    SELECT json_agg(json_build_object(
        'result', x.result, 'reported_at', x.reported_at_iso, 'lab_code', x.lab_code,
        'ct_value', x.ct_value) ORDER BY x.reported_at, x.lab_code)
    FROM result x WHERE x.tube_code = t.code), '[]') AS results
FROM tube t
"""
TRACE_BY_CODES = TRACE_SQL + "WHERE t.code = ANY(%(codes)s)"
POSITIVES_WHERE = """WHERE t.code IN (
  SELECT tube_code FROM result WHERE day = %(day)s AND result = 'positive') ORDER BY t.code"""
POSITIVES_OF_DAY = TRACE_SQL + POSITIVES_WHERE
SECOND_RING = """
WITH case_tubes AS (
  SELECT DISTINCT tube_code FROM registration
  WHERE person_id = %(pid)s AND pool_size > 1 AND day BETWEEN %(since)s AND %(until)s),
ring1 AS (
  SELECT DISTINCT o.person_id FROM registration o JOIN case_tubes USING (tube_code)
  WHERE o.person_id <> %(pid)s),
ring1_tubes AS (
  SELECT DISTINCT r.tube_code FROM registration r JOIN ring1 USING (person_id)
  WHERE r.pool_size > 1 AND r.day BETWEEN %(since)s AND %(until)s),
ring2 AS (
  SELECT DISTINCT o.person_id FROM registration o JOIN ring1_tubes USING (tube_code)
  WHERE o.person_id <> %(pid)s AND o.person_id NOT IN (SELECT person_id FROM ring1))
SELECT array(SELECT person_id FROM ring1 ORDER BY 1) AS ring1,
       array(SELECT person_id FROM ring2 ORDER BY 1) AS ring2
"""

REG_COLUMNS = (
    "record_id",
    "collected_at",
    "collected_at_iso",
    "day",
    "compound_code",
    "box_code",
    "tube_code",
    "pool_size",
    "method",
    "id_type",
    "name",
    "phone",
    "registered_address",
    "collector_id",
    "flags",
    "content_hash",
    "raw",
    "person_id",
)
RESULT_COLUMNS = (
    "result_key",
    "tube_code",
    "result",
    "reported_at",
    "reported_at_iso",
    "day",
    "lab_code",
    "ct_value",
    "flags",
    "content_hash",
    "raw",
)
# The graph model's properties (engine/model.py), so that a new one fails the COPY loudly
# instead of being left out; `known` is the graph's marker of a compound read from a file.
COMPOUND_COLUMNS = (
    NODES["Compound"].key,
    *(p for p in NODES["Compound"].properties if p != "known"),
)
# `last_day` is Neo4j's bound for its loader (cypher/ingest.cypher); PostgreSQL indexes the day.
PERSON_COLUMNS = (
    NODES["Person"].key,
    *(p for p in NODES["Person"].properties if p != "last_day"),
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """A temporary PostgreSQL cluster on a free loopback port; `stop()` removes it."""

    def __init__(self, shared_buffers: str = "256MB") -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(
                f"PostgreSQL is not installed ({PG_BIN}/initdb is missing): "
                "apt-get install postgresql (./dev bench does it)"
            )
        self.dir = Path(tempfile.mkdtemp(prefix="tubetrace-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.shared_buffers = shared_buffers
        # initdb and postgres refuse to run as root: run them as the postgres user.
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user)

    def _run(self, *args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=self.user)

    def start(self) -> PgServer:
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "tubetrace",
            "--auth=trust",
            "--locale=C",
            "--encoding=UTF8",
        )
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            f"-c shared_buffers={self.shared_buffers} -c fsync=on -c synchronous_commit=on "
            "-c full_page_writes=on -c max_connections=20"
        )
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.dir / "postgres.log"),
            "-w",
            "start",
        )
        return self

    def connect(self) -> psycopg.Connection[Any]:
        # Autocommit: each `with conn.transaction()` is then a real BEGIN ... COMMIT.
        conn = psycopg.connect(
            host="127.0.0.1", port=self.port, user="tubetrace", dbname="postgres", autocommit=True
        )
        conn.execute("SET TimeZone = 'UTC'")
        return conn

    def stop(self) -> None:
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def create_schema(conn: psycopg.Connection[Any], indexes: bool = True) -> None:
    with conn.transaction():
        conn.execute("DROP TABLE IF EXISTS compound, person, tube, registration, result")
        conn.execute(SCHEMA)
        if indexes:
            conn.execute(INDEXES)


def _rows(kind: str, path: Path, settings: Any, secret: str) -> Iterator[Row]:
    """The file through the project's transform, first version of each key only."""
    make = make_transform(kind, settings, secret)
    seen: set[str] = set()
    for line, item in read_file(path, kind):
        out = item if isinstance(item, Quarantined) else make(item, path.name, line)
        if isinstance(out, Quarantined) or out.key in seen:
            continue
        seen.add(out.key)
        yield out


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def reg_values(row: Row) -> tuple[Any, ...]:
    # The codes and id_type as the row's links say them: the Neo4j node keeps them as its
    # relationships and its person (engine/model.py); here they are the columns' foreign keys.
    p, links = row.props, row.links
    return (
        p["record_id"],
        p["collected_at"],
        _iso(p["collected_at"]),
        p["day"],
        links["compound_code"],
        links["box_code"],
        links["tube_code"],
        p["pool_size"],
        p["method"],
        links["person"]["id_type"],
        p["name"],
        p["phone"],
        p["registered_address"],
        p["collector_id"],
        p["flags"],
        p["content_hash"],
        p["raw"],  # as in Neo4j: set only on a record flagged invalid_*
        row.links["person"]["person_id"],
    )


def result_values(row: Row) -> tuple[Any, ...]:
    p = row.props
    return (
        p["result_key"],
        p["tube_code"],
        p["result"],
        p["reported_at"],
        _iso(p["reported_at"]),
        p["day"],
        p["lab_code"],
        p["ct_value"],
        p["flags"],
        p["content_hash"],
        p["raw"],
    )


def compound_values(row: Row) -> tuple[Any, ...]:
    return tuple(row.props[c] for c in COMPOUND_COLUMNS)


def copy_load(conn: psycopg.Connection[Any], city: Path, settings: Any, secret: str) -> int:
    """The whole round with COPY (indexes built after); returns the registrations loaded."""
    create_schema(conn, indexes=False)
    persons: set[str] = set()
    tubes: set[str] = set()
    n = 0
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(f"COPY compound ({', '.join(COMPOUND_COLUMNS)}) FROM STDIN") as cp:
            for row in _rows("compounds", city / "compounds.csv", settings, secret):
                cp.write_row(compound_values(row))
        person_rows: list[tuple[Any, ...]] = []
        with cur.copy(f"COPY registration ({', '.join(REG_COLUMNS)}) FROM STDIN") as cp:
            for row in _rows("registrations", city / "registrations.csv", settings, secret):
                cp.write_row(reg_values(row))
                n += 1
                tubes.add(row.links["tube_code"])
                person = row.links["person"]
                if person["person_id"] not in persons:
                    persons.add(person["person_id"])
                    person_rows.append(tuple(person[c] for c in PERSON_COLUMNS))
        with cur.copy(f"COPY person ({', '.join(PERSON_COLUMNS)}) FROM STDIN") as cp:
            for values in person_rows:
                cp.write_row(values)
        with cur.copy(f"COPY result ({', '.join(RESULT_COLUMNS)}) FROM STDIN") as cp:
            for row in _rows("results", city / "results.csv", settings, secret):
                cp.write_row(result_values(row))
                tubes.add(row.links["tube_code"])
        with cur.copy("COPY tube (code) FROM STDIN") as cp:
            for code in sorted(tubes):
                cp.write_row((code,))
    with conn.transaction():
        conn.execute(INDEXES)
    return n


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def online_load(
    conn: psycopg.Connection[Any],
    items: Iterable[tuple[int | None, dict[str, Any] | Quarantined]],
    settings: Any,
    secret: str,
    source: str = "online",
) -> dict[str, int]:
    """Registrations as the online loader takes them: the project's transform, then per batch
    one transaction of INSERT ... ON CONFLICT DO NOTHING (persons, tubes, registrations), a
    stored key with another content hash counted as a conflict (the first version is kept)."""
    counts = {"read": 0, "stored": 0, "duplicates": 0, "conflicts": 0, "quarantined": 0}
    make = make_transform("registrations", settings, secret)
    cols = ", ".join(REG_COLUMNS)
    marks = ", ".join(["%s"] * len(REG_COLUMNS))
    for batch in _batches(items, settings.batch_size):
        rows: dict[str, Row] = {}
        for line, item in batch:
            counts["read"] += 1
            out = item if isinstance(item, Quarantined) else make(item, source, line)
            if isinstance(out, Quarantined):
                counts["quarantined"] += 1
            elif out.key in rows:
                same = rows[out.key].content_hash == out.content_hash
                counts["duplicates" if same else "conflicts"] += 1
            else:
                rows[out.key] = out
        with conn.transaction(), conn.cursor() as cur:
            persons = {r.links["person"]["person_id"]: r.links["person"] for r in rows.values()}
            cur.executemany(
                "INSERT INTO person (person_id, id_type, id_number, registered_district_code) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [tuple(p[c] for c in PERSON_COLUMNS) for p in persons.values()],
            )
            cur.executemany(
                "INSERT INTO tube (code) VALUES (%s) ON CONFLICT DO NOTHING",
                [(code,) for code in sorted({r.links["tube_code"] for r in rows.values()})],
            )
            cur.executemany(
                f"INSERT INTO registration ({cols}) VALUES ({marks}) "  # noqa: S608 - fixed columns
                "ON CONFLICT (record_id) DO NOTHING",
                [reg_values(r) for r in rows.values()],
            )
            cur.execute(
                "SELECT record_id, content_hash FROM registration WHERE record_id = ANY(%s)",
                (list(rows),),
            )
            stored = dict(cur.fetchall())
        for key, row in rows.items():
            if stored.get(key) == row.content_hash:
                counts["stored"] += 1  # new, or the same content again
            else:
                counts["conflicts"] += 1
    return counts


def load_other(
    conn: psycopg.Connection[Any], city: Path, settings: Any, secret: str, results: bool = True
) -> None:
    """Compounds (and results) with plain INSERTs, before an online load of registrations."""
    with conn.transaction(), conn.cursor() as cur:
        comp = list(_rows("compounds", city / "compounds.csv", settings, secret))
        cur.executemany(
            f"INSERT INTO compound ({', '.join(COMPOUND_COLUMNS)}) "  # noqa: S608 - fixed
            f"VALUES ({', '.join(['%s'] * len(COMPOUND_COLUMNS))})",
            [compound_values(r) for r in comp],
        )
        if not results:
            return
        res = list(_rows("results", city / "results.csv", settings, secret))
        cur.executemany(
            "INSERT INTO tube (code) VALUES (%s) ON CONFLICT DO NOTHING",
            [(r.props["tube_code"],) for r in res],
        )
        cur.executemany(
            f"INSERT INTO result ({', '.join(RESULT_COLUMNS)}) "  # noqa: S608 - fixed
            f"VALUES ({', '.join(['%s'] * len(RESULT_COLUMNS))})",
            [result_values(r) for r in res],
        )


def _trace_row(
    code: str, registrations: list[dict[str, Any]], results: list[dict[str, Any]]
) -> dict[str, Any]:
    for r in registrations:
        if r["collected_at"] is not None:
            r["collected_at"] = datetime.fromisoformat(r["collected_at"])
    for x in results:
        if x["reported_at"] is not None:
            x["reported_at"] = datetime.fromisoformat(x["reported_at"])
        if x["ct_value"] is not None:
            x["ct_value"] = float(x["ct_value"])
    return {"code": code, "registrations": registrations, "results": results}


def ping(conn: psycopg.Connection[Any]) -> None:
    """A round trip that does nothing: the fixed cost of any statement (RETURN 1's peer)."""
    conn.execute("SELECT 1").fetchone()


def trace_many(conn: psycopg.Connection[Any], codes: list[str]) -> dict[str, dict[str, Any]]:
    rows = conn.execute(TRACE_BY_CODES, {"codes": codes}).fetchall()
    return {code: build_trace(_trace_row(code, regs, xs)) for code, regs, xs in rows}


def positives(conn: psycopg.Connection[Any], day: str) -> list[dict[str, Any]]:
    rows = conn.execute(POSITIVES_OF_DAY, {"day": day}).fetchall()
    return [build_trace(_trace_row(code, regs, xs)) for code, regs, xs in rows]


def second_ring(
    conn: psycopg.Connection[Any], person_id: str, since: str, until: str
) -> tuple[list[str], list[str]]:
    row = conn.execute(SECOND_RING, {"pid": person_id, "since": since, "until": until}).fetchone()
    assert row is not None
    return list(row[0]), list(row[1])


def neo4j_second_ring(
    gw: Any, person_id: str, since: str, until: str
) -> tuple[list[str], list[str]]:
    rings = gw.read("second_ring", person_id=person_id, since=since, until=until).row_or_none()
    if rings is None:
        return [], []
    return sorted(rings["ring1"]), sorted(rings["ring2"])


# Outbreak analysis (issue 23), PostgreSQL at its best: each ring a join of the window's pooled
# registrations with the ring before (tubes de-duplicated before each fan-out, persons of
# earlier rings excluded), one statement for any depth up to 4, on covering indexes
# (ANALYSIS_INDEXES) so that every step is an index-only scan; run with jit = off and
# plan_cache_mode = force_generic_plan (ANALYSIS_SETTINGS).
ANALYSIS_SETTINGS = ("SET jit = off", "SET plan_cache_mode = force_generic_plan")
ANALYSIS_INDEXES = """
CREATE INDEX IF NOT EXISTS registration_tube_cover
  ON registration (tube_code) INCLUDE (person_id, day, pool_size);
CREATE INDEX IF NOT EXISTS registration_person_cover
  ON registration (person_id, day) INCLUDE (tube_code, pool_size, compound_code);
CREATE INDEX IF NOT EXISTS result_positive_day ON result (day) INCLUDE (tube_code)
  WHERE result = 'positive';
ANALYZE;
"""


# Ring k from ring k - 1: its pooled tubes not used before, then their persons not seen
# before, each with the earliest (day, tube) that put them there; a ring deeper than
# %(depth)s is empty (its first step reads nothing).
EXPOSURE = """
WITH t1 AS MATERIALIZED (
  SELECT DISTINCT r.tube_code FROM registration r
  WHERE r.person_id = %(pid)s AND r.pool_size > 1 AND r.day BETWEEN %(since)s AND %(until)s),
p1 AS MATERIALIZED (
  SELECT DISTINCT ON (o.person_id) o.person_id, o.day, o.tube_code
  FROM registration o JOIN t1 USING (tube_code)
  WHERE o.pool_size > 1 AND o.day BETWEEN %(since)s AND %(until)s AND o.person_id <> %(pid)s
  ORDER BY o.person_id, o.day, o.tube_code),
t2 AS MATERIALIZED (
  SELECT DISTINCT r.tube_code FROM registration r JOIN p1 USING (person_id)
  WHERE %(depth)s >= 2 AND r.pool_size > 1 AND r.day BETWEEN %(since)s AND %(until)s
    AND r.tube_code NOT IN (SELECT tube_code FROM t1)),
p2 AS MATERIALIZED (
  SELECT DISTINCT ON (o.person_id) o.person_id, o.day, o.tube_code
  FROM registration o JOIN t2 USING (tube_code)
  WHERE o.pool_size > 1 AND o.day BETWEEN %(since)s AND %(until)s AND o.person_id <> %(pid)s
    AND o.person_id NOT IN (SELECT person_id FROM p1)
  ORDER BY o.person_id, o.day, o.tube_code),
t3 AS MATERIALIZED (
  SELECT DISTINCT r.tube_code FROM registration r JOIN p2 USING (person_id)
  WHERE %(depth)s >= 3 AND r.pool_size > 1 AND r.day BETWEEN %(since)s AND %(until)s
    AND r.tube_code NOT IN (SELECT tube_code FROM t1 UNION ALL SELECT tube_code FROM t2)),
p3 AS MATERIALIZED (
  SELECT DISTINCT ON (o.person_id) o.person_id, o.day, o.tube_code
  FROM registration o JOIN t3 USING (tube_code)
  WHERE o.pool_size > 1 AND o.day BETWEEN %(since)s AND %(until)s AND o.person_id <> %(pid)s
    AND o.person_id NOT IN (SELECT person_id FROM p1 UNION ALL SELECT person_id FROM p2)
  ORDER BY o.person_id, o.day, o.tube_code),
t4 AS MATERIALIZED (
  SELECT DISTINCT r.tube_code FROM registration r JOIN p3 USING (person_id)
  WHERE %(depth)s >= 4 AND r.pool_size > 1 AND r.day BETWEEN %(since)s AND %(until)s
    AND r.tube_code NOT IN (SELECT tube_code FROM t1 UNION ALL SELECT tube_code FROM t2
                            UNION ALL SELECT tube_code FROM t3)),
p4 AS MATERIALIZED (
  SELECT DISTINCT ON (o.person_id) o.person_id, o.day, o.tube_code
  FROM registration o JOIN t4 USING (tube_code)
  WHERE o.pool_size > 1 AND o.day BETWEEN %(since)s AND %(until)s AND o.person_id <> %(pid)s
    AND o.person_id NOT IN (SELECT person_id FROM p1 UNION ALL SELECT person_id FROM p2
                            UNION ALL SELECT person_id FROM p3)
  ORDER BY o.person_id, o.day, o.tube_code)
SELECT 1 AS depth, person_id, day, tube_code FROM p1
UNION ALL SELECT 2, person_id, day, tube_code FROM p2
UNION ALL SELECT 3, person_id, day, tube_code FROM p3
UNION ALL SELECT 4, person_id, day, tube_code FROM p4
ORDER BY depth, person_id
"""
POSITIVE_REGISTRATIONS = """
SELECT r.tube_code, r.day, r.pool_size, r.person_id, r.compound_code,
       c.district_code AS compound_district, r.box_code, r.collector_id,
       coalesce(c.district_code, 'unassigned') AS district
FROM registration r LEFT JOIN compound c ON c.code = r.compound_code
WHERE r.tube_code IN (SELECT tube_code FROM result
                      WHERE result = 'positive' AND day BETWEEN %(since)s AND %(reported_until)s)
  AND r.day BETWEEN %(since)s AND %(until)s
ORDER BY r.day, r.tube_code, r.person_id
"""
MEMBER_REGISTRATIONS = """
SELECT r.person_id, r.tube_code, r.day, r.pool_size > 1 AS pooled, r.compound_code,
       c.district_code AS compound_district
FROM registration r LEFT JOIN compound c ON c.code = r.compound_code
WHERE r.person_id = ANY(%(ids)s) AND r.day BETWEEN %(since)s AND %(until)s
"""


def prepare_analysis(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute(ANALYSIS_INDEXES)
    for statement in ANALYSIS_SETTINGS:
        conn.execute(statement)


def exposure(
    conn: psycopg.Connection[Any], person_id: str, since: str, until: str, depth: int
) -> list[tuple[int, str, str, str]]:
    """Rings 1..depth: (depth, person_id, day, tube_code), as cypher's exposure_rings."""
    args = {"pid": person_id, "since": since, "until": until, "depth": depth}
    return [tuple(row) for row in conn.execute(EXPOSURE, args).fetchall()]


def exposure_many(
    conn: psycopg.Connection[Any], subjects: list[tuple[str, str, str]], depth: int
) -> dict[str, list[tuple[int, str, str, str]]]:
    """`exposure` of many (person_id, since, until) at once: the statements pipelined (libpq's
    pipeline mode: sent together, one round trip), as a caller with many subjects would."""
    with conn.pipeline():
        cursors = [
            (pid, conn.execute(EXPOSURE, {"pid": pid, "since": a, "until": b, "depth": depth}))
            for pid, a, b in subjects
        ]
    return {pid: [tuple(row) for row in cur.fetchall()] for pid, cur in cursors}


def _dicts(cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def clusters(conn: psycopg.Connection[Any], since: str, until: str, reported_until: str) -> Any:
    """The window's clusters: the links read in two statements, the groups made by the same
    code as the engine's (engine.analysis.outbreak.group_clusters)."""
    from engine.analysis.outbreak import group_clusters

    args = {"since": since, "until": until, "reported_until": reported_until}
    positive = _dicts(conn.execute(POSITIVE_REGISTRATIONS, args))
    ids = sorted({r["person_id"] for r in positive})
    members = _dicts(conn.execute(MEMBER_REGISTRATIONS, {"ids": ids} | args))
    return group_clusters(since, until, positive, members)
