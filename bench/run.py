"""The benchmark: every hot path measured side by side with its baseline, in one run, at three
sizes. Prints one table and writes bench/out/results.json.

    ./dev bench                  # sizes scale/10, scale/3, scale (default scale 1,000,000)
    ./dev bench --scale 150000   # a quicker run
    ./dev bench --replay         # the peak-hour replay through the API (bench/replay.py)
    ./dev bench --http           # a trace's HTTP time, the route before / after (bench/http.py)
    ./dev bench --sizes 26000000 # a full round at city size, cold and warm (bench/round.py)
    ./dev bench --footprint      # what one label, property or index costs (bench/footprint.py)
    ./dev bench --compare REV    # bytes/registration, online rows/s: REV's tree beside this one

Each size gets its own managed Neo4j home (nothing shared with your data)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bench import footprint, pg
from bench import round as round_bench
from bench.devdb import connect, wipe
from bench.measure import KeepAlive, pct, store_bytes, timed
from engine.access.keys import create_key
from engine.analysis import outbreak, reports
from engine.server.managed import ManagedServer
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import all_tube_codes, trace_many
from loaders import write
from loaders.bulk import bulk_load
from loaders.generate import generate_city
from loaders.read import read_file
from loaders.write import Item

OUT = Path(__file__).parent / "out"
ONLINE_PREFIX = 60_000  # online load is measured on the first rows of the same file
BYTES_GOAL = 1254  # bytes on disk per registration at 1 M: half of 2,508 (issue 22)


def timed_calls(fn: Any, args: list[Any]) -> list[float]:
    out = []
    for a in args:
        t = time.perf_counter()
        fn(a)
        out.append((time.perf_counter() - t) * 1000)
    return out


def throughput(fn: Any, args: list[Any], workers: int, seconds: float) -> float:
    done = [0] * workers
    stop = time.perf_counter() + seconds

    def run(w: int) -> None:
        rng = random.Random(w)
        while time.perf_counter() < stop:
            fn(rng.choice(args))
            done[w] += 1

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / seconds


def dict_index(city: Path) -> dict[str, list[dict[str, str]]]:
    """The same registrations in a Python dict by tube: the in-process baseline."""
    index: dict[str, list[dict[str, str]]] = defaultdict(list)
    with (city / "registrations.csv").open(encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            if rec["tube_code"]:
                index[rec["tube_code"]].append(rec)
    return index


def dict_trace(
    index: dict[str, list[dict[str, str]]], compounds: dict[str, dict[str, str]], code: str
) -> dict[str, Any]:
    regs = sorted(index.get(code, []), key=lambda r: (r["collected_at"], r["record_id"]))
    return {
        "tube": code,
        "persons": [
            {
                "record_id": r["record_id"],
                "name": r["name"],
                "phone": r["phone"],
                "residence": compounds.get(r["compound_code"], {}).get("district_code"),
            }
            for r in regs
        ],
    }


def page_cache_ratio(gw: Gateway, codes: list[str]) -> float:
    hits = misses = 0
    for code in codes:
        plan = gw.profile("trace_tubes", tube_codes=[code])
        stack = [plan]
        while stack:
            p = stack.pop()
            hits += p.get("pageCacheHits", 0)
            misses += p.get("pageCacheMisses", 0)
            stack += p.get("children", [])
    return hits / (hits + misses) if hits + misses else 1.0


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def next_round(items: Iterable[Item], days: int = 2) -> Iterator[Item]:
    """The same registrations `days` later: the same people swabbed again, with new record ids
    and new tubes (a value the transform refuses stays as it is)."""
    for line, rec in items:
        if isinstance(rec, dict):
            rec = dict(rec)
            for name in ("record_id", "tube_code"):  # a missing one stays missing
                if rec.get(name):
                    rec[name] = f"N{rec[name]}"
            at = str(rec.get("collected_at") or "")
            if _DATE.match(at):
                day = date.fromisoformat(at[:10]) + timedelta(days=days)
                rec["collected_at"] = day.isoformat() + at[10:]
        yield line, rec


def heap_used(gw: Gateway) -> int:
    return int(gw.read("heap_used").value_or_none() or 0)


def bench_size(
    n: int, work: Path, settings: Settings, samples: int, seconds: float
) -> dict[str, Any]:
    home = work / f"home-{n}"
    city = work / f"city-{n}"
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(city, ignore_errors=True)
    s = settings.model_copy(update={"home": home})
    stats = generate_city(city, seed=2022, registrations=n, positive_rate=0.01, mix_pools=True)
    server = ManagedServer(s)
    res: dict[str, Any] = {"registrations": stats.registrations, "tubes": stats.tubes}
    pgs = pg.PgServer(shared_buffers=s.pagecache_size.upper() + "B").start()
    pconn = pgs.connect()
    try:
        # Online load rows/s, measured on a prefix of the registrations file.
        gw = connect(s)
        write.load_records(
            gw, "compounds", read_file(city / "compounds.csv", "compounds"), "compounds.csv", s
        )
        prefix = min(ONLINE_PREFIX, stats.registrations)
        t = time.perf_counter()
        write.load_records(
            gw,
            "registrations",
            islice(read_file(city / "registrations.csv", "registrations"), prefix),
            "registrations.csv",
            s,
        )
        res["online_rows_s"] = prefix / (time.perf_counter() - t)
        # The same prefix into PostgreSQL: the same transforms, INSERT ... ON CONFLICT.
        secret = gw.secret()
        pg.create_schema(pconn)
        pg.load_other(pconn, city, s, secret, results=False)
        t = time.perf_counter()
        pg.online_load(
            pconn,
            islice(read_file(city / "registrations.csv", "registrations"), prefix),
            s,
            secret,
        )
        res["pg_online_rows_s"] = prefix / (time.perf_counter() - t)
        wipe(gw)
        gw.close()
        # Bulk import of the whole round.
        timings = bulk_load(s, "all", city, Console(file=io.StringIO()))
        res["admin_rows_s"] = stats.registrations / timings["neo4j_admin_import_s"]
        res["bulk_total_s"] = sum(timings.values())
        gw = connect(s)
        t = time.perf_counter()
        pg.copy_load(pconn, city, s, gw.secret())
        res["pg_copy_rows_s"] = stats.registrations / (time.perf_counter() - t)
        codes = list(all_tube_codes(gw))
        rng = random.Random(1)
        sample = [rng.choice(codes) for _ in range(samples)]
        for code in sample[:200]:  # warm the page cache and the query cache
            trace_many(gw, [code])
            gw.read("ping")
            pg.trace_many(pconn, [code])
        # Single trace vs RETURN 1 on the same driver, and PostgreSQL's trace, interleaved.
        trace_ms: list[float] = []
        ping_ms: list[float] = []
        pg_ms: list[float] = []
        pg_ping_ms: list[float] = []
        for code in sample:
            trace_ms += timed_calls(lambda c: trace_many(gw, [c]), [code])
            ping_ms += timed_calls(lambda _: gw.read("ping"), [None])
            pg_ms += timed_calls(lambda c: pg.trace_many(pconn, [c]), [code])
            pg_ping_ms += timed_calls(lambda _: pg.ping(pconn), [None])
        res |= {
            "trace_p50_ms": pct(trace_ms, 0.5),
            "trace_p99_ms": pct(trace_ms, 0.99),
            "ping_p50_ms": pct(ping_ms, 0.5),
            "ping_p99_ms": pct(ping_ms, 0.99),
            "pg_trace_p50_ms": pct(pg_ms, 0.5),
            "pg_trace_p99_ms": pct(pg_ms, 0.99),
            "pg_ping_p50_ms": pct(pg_ping_ms, 0.5),
        }
        # Through HTTP: a running uvicorn, an investigator key.
        key = create_key(gw, role="investigator", district=None).secret
        port = 18000 + n % 1000
        env = dict(
            os.environ,
            TUBETRACE_HOME=str(home),
            TUBETRACE_RATE_PER_SECOND="1000000",
            TUBETRACE_RATE_BURST="1000000",
        )
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:create_app",
                "--factory",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
        )
        try:
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
            )
            for _ in range(120):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)

            plain = KeepAlive(port, key)

            def http_trace(c: str) -> None:
                plain.get(f"/v1/tubes/{c}/trace")

            def httpx_trace(c: str) -> None:
                client.get(f"/v1/tubes/{c}/trace").raise_for_status()

            for code in sample[:200]:
                http_trace(code)
                httpx_trace(code)
            http_ms: list[float] = []
            httpx_ms: list[float] = []
            drv_ms: list[float] = []
            for code in sample:
                http_ms += timed_calls(http_trace, [code])
                httpx_ms += timed_calls(httpx_trace, [code])
                drv_ms += timed_calls(lambda c: trace_many(gw, [c]), [code])
            res["http_p50_ms"] = pct(http_ms, 0.5)
            res["http_minus_driver_p50_ms"] = pct(http_ms, 0.5) - pct(drv_ms, 0.5)
            res["httpx_minus_driver_p50_ms"] = pct(httpx_ms, 0.5) - pct(drv_ms, 0.5)
            res["driver_traces_s"] = throughput(lambda c: trace_many(gw, [c]), codes, 2, seconds)
            res["pg_traces_s"] = pg_throughput(pgs, codes, 2, seconds)
            local = threading.local()

            def http_worker_trace(c: str) -> None:
                if not hasattr(local, "client"):
                    local.client = KeepAlive(port, key)
                local.client.get(f"/v1/tubes/{c}/trace")

            res["http_traces_s"] = throughput(http_worker_trace, codes, 2, seconds)
        finally:
            api.terminate()
            api.wait(timeout=30)
        # The day's positives: set-based pages vs single traces of the same tubes.
        day = "2022-04-09"
        list(reports.positives_stream(gw, day))  # plan and cache the queries once
        t = time.perf_counter()
        items = list(reports.positives_stream(gw, day))
        res["positives_s"] = time.perf_counter() - t
        tubes = sorted({i["tube_code"] for i in items})
        t = time.perf_counter()
        for code in tubes:
            trace_many(gw, [code])
        res["positives_loop_s"] = time.perf_counter() - t
        res["positive_tubes"] = len(tubes)
        pg.positives(pconn, day)
        res["pg_positives_s"], _ = timed(pg.positives, pconn, day)
        res |= ring_times(gw, pconn)
        res |= analysis_times(gw, pconn, stats_last_day(2))
        # Neo4j vs an in-process dict built from the same files.
        index = dict_index(city)
        with (city / "compounds.csv").open(encoding="utf-8") as fh:
            compounds = {c["compound_code"]: c for c in csv.DictReader(fh)}
        dict_ms = timed_calls(lambda c: dict_trace(index, compounds, c), sample)
        res["dict_p50_ms"] = pct(dict_ms, 0.5)
        res["heap_used_mb"] = heap_used(gw) / 2**20
        # Memory, and where the bytes go: on a server stopped cleanly (a checkpoint: every
        # page in its file) and started again, its page cache warmed by the same traces.
        gw.close()
        server.stop()
        server.start()
        gw = connect(s)
        for code in sample:
            trace_many(gw, [code])
        res |= footprint.measure(server, gw, stats.registrations)
        res["store_mb"] = store_bytes(server) / 2**20
        res["pagecache_mb"] = _size_mb(s.pagecache_size)
        res["pagecache_hit_ratio"] = page_cache_ratio(gw, sample[:300])
        # The next round, online onto the full store: the same people, two days later.
        t = time.perf_counter()
        write.load_records(
            gw,
            "registrations",
            next_round(islice(read_file(city / "registrations.csv", "registrations"), prefix)),
            "registrations-next.csv",
            s,
        )
        res["online_next_rows_s"] = prefix / (time.perf_counter() - t)
        gw.close()
    finally:
        pconn.close()
        pgs.stop()
        server.stop()
    return res


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def pg_throughput(pgs: pg.PgServer, codes: list[str], workers: int, seconds: float) -> float:
    conns = [pgs.connect() for _ in range(workers)]
    local = threading.local()

    def trace(code: str) -> None:
        if not hasattr(local, "conn"):
            local.conn = conns.pop()
        pg.trace_many(local.conn, [code])

    try:
        return throughput(trace, codes, workers, seconds)
    finally:
        for c in conns:
            c.close()


def ring_times(gw: Gateway, pconn: Any, cases: int = 30) -> dict[str, Any]:
    """The second exposure ring (14 days) of confirmed cases in both engines, interleaved;
    the answers must be equal."""
    neo_ms: list[float] = []
    pg_ms: list[float] = []
    sizes: list[int] = []
    rows = gw.read("confirmed_cases", limit=cases)
    for _ in range(2):  # the first pass plans and warms
        neo_ms, pg_ms, sizes = [], [], []
        for case in rows:
            until = case["collected_at"].to_native().date()
            args = (case["person_id"], (until - timedelta(days=13)).isoformat(), until.isoformat())
            t = time.perf_counter()
            a = pg.neo4j_second_ring(gw, *args)
            neo_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            b = pg.second_ring(pconn, *args)
            pg_ms.append((time.perf_counter() - t) * 1000)
            if a != b:
                raise AssertionError(f"second ring differs for {args}: {a} vs {b}")
            sizes.append(len(a[1]))
    return {
        "ring_cases": len(rows),
        "ring2_mean_size": sum(sizes) / len(sizes) if sizes else 0.0,
        "ring_neo4j_p50_ms": pct(neo_ms, 0.5) if neo_ms else float("nan"),
        "ring_pg_p50_ms": pct(pg_ms, 0.5) if pg_ms else float("nan"),
    }


def stats_last_day(stats_days: int, start: date = date(2022, 4, 9)) -> str:
    """The last sampling day of a generated city (generate_city's default start)."""
    return (start + timedelta(days=stats_days - 1)).isoformat()


def analysis_times(gw: Gateway, pconn: Any, last_day: str, cases: int = 30) -> dict[str, Any]:
    """Exposure at depth 2, 3 and 4 (the 14 days up to each of `cases` confirmed cases' day)
    and the clusters of the 14 days up to `last_day`, in both engines, interleaved; the
    answers must be equal. Neo4j: cypher/analysis.cypher as the API runs it (exposure_rings;
    clusters_of_window, grouped in the server by tubetrace.clusters). PostgreSQL: bench/pg.py's
    statements on their covering indexes, jit off, generic plans; its rows grouped by
    engine.analysis.outbreak.group_clusters (the rule the procedure is tested against).
    Exposure also with every case at once, per subject (`exposure_batch_ms`, as the attack
    rate asks: `ring_members`' queries of many subjects; PostgreSQL's statements pipelined):
    the engines' work without a round trip per subject."""
    pg.prepare_analysis(pconn)
    rows = gw.read("confirmed_cases", limit=cases)
    out: dict[str, Any] = {"exposure_cases": len(rows)}
    for key in (
        "exposure_p50_ms",
        "exposure_p99_ms",
        "exposure_pg_p50_ms",
        "exposure_pg_p99_ms",
        "exposure_batch_ms",
        "exposure_pg_batch_ms",
    ):
        out[key] = {}
    out["exposure_mean_persons"] = {}
    # Each case's (person_id, since, until): the 14 days up to its collection day.
    subjects = [
        (c["person_id"], (day - timedelta(days=13)).isoformat(), day.isoformat())
        for c in rows
        for day in [c["collected_at"].to_native().date()]
    ]
    for depth in (2, 3, 4):
        for _ in range(2):  # the first pass plans and warms
            neo_ms: list[float] = []
            pg_ms: list[float] = []
            sizes: list[int] = []
            for pid, since, until in subjects:
                t = time.perf_counter()
                items = outbreak.ring_members(
                    gw, [{"person_id": pid, "until": until}], depth=depth, days=14
                ).get(pid, [])
                neo_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                theirs = pg.exposure(pconn, pid, since, until, depth)
                pg_ms.append((time.perf_counter() - t) * 1000)
                ours = [(i["depth"], i["person_id"], i["day"], i["tube_code"]) for i in items]
                if ours != theirs:
                    raise AssertionError(f"exposure differs for {pid} at depth {depth}")
                sizes.append(len(ours))
        d = str(depth)
        out["exposure_p50_ms"][d] = pct(neo_ms, 0.5) if neo_ms else float("nan")
        out["exposure_p99_ms"][d] = pct(neo_ms, 0.99) if neo_ms else float("nan")
        out["exposure_pg_p50_ms"][d] = pct(pg_ms, 0.5) if pg_ms else float("nan")
        out["exposure_pg_p99_ms"][d] = pct(pg_ms, 0.99) if pg_ms else float("nan")
        out["exposure_mean_persons"][d] = sum(sizes) / len(sizes) if sizes else 0.0
        out["exposure_batch_ms"][d], out["exposure_pg_batch_ms"][d] = _exposure_batch(
            gw, pconn, subjects, depth
        )
    since = (date.fromisoformat(last_day) - timedelta(days=13)).isoformat()
    reported_until = (date.fromisoformat(last_day) + timedelta(days=7)).isoformat()
    neo_s: list[float] = []
    pg_s: list[float] = []
    for _ in range(3):  # the first plans and warms: the median of three
        t = time.perf_counter()
        found = outbreak.find_clusters(gw, since, last_day)
        neo_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        baseline = pg.clusters(pconn, since, last_day, reported_until)
        pg_s.append(time.perf_counter() - t)
        if cluster_answer(found) != cluster_answer(baseline):
            raise AssertionError(f"clusters of {since} .. {last_day} differ")
    out["clusters_s"] = sorted(neo_s)[1]
    out["clusters_pg_s"] = sorted(pg_s)[1]
    out["clusters"] = len(found.clusters)
    out["cluster_members"] = sum(len(c.members) for c in found.clusters)
    return out


def _exposure_batch(
    gw: Gateway, pconn: Any, subjects: list[tuple[str, str, str]], depth: int, passes: int = 3
) -> tuple[float, float]:
    """ms per subject of exposure of every (person_id, since, until) at once in each engine,
    interleaved, the median of `passes`; the answers must be those of one subject at a time."""
    if not subjects:
        return float("nan"), float("nan")
    asks: list[outbreak.Subject] = [
        {"person_id": pid, "until": until} for pid, _, until in subjects
    ]
    neo_ms: list[float] = []
    pg_ms: list[float] = []
    for _ in range(passes):
        t = time.perf_counter()
        found = outbreak.ring_members(gw, asks, depth=depth, days=14)
        neo_ms.append((time.perf_counter() - t) * 1000 / len(subjects))
        t = time.perf_counter()
        theirs = pg.exposure_many(pconn, subjects, depth)
        pg_ms.append((time.perf_counter() - t) * 1000 / len(subjects))
        for pid, _, _ in subjects:
            ours = [(i["depth"], i["person_id"], i["day"], i["tube_code"]) for i in found[pid]]
            if ours != theirs[pid]:
                raise AssertionError(f"exposure of many differs for {pid} at depth {depth}")
    return pct(neo_ms, 0.5), pct(pg_ms, 0.5)


def cluster_answer(found: outbreak.Clustering) -> list[tuple[Any, ...]]:
    return [
        (
            c.cluster_id,
            c.members,
            sorted(c.compounds),
            sorted(c.districts),
            sorted(c.days),
            sorted(c.pool_links),
            sorted(c.compound_links),
        )
        for c in found.clusters
    ]


def _size_mb(text: str) -> float:
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    return float(text[:-1]) * units[text[-1].lower()] if text[-1].isalpha() else float(text)


ROWS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("single trace p50 / p99 (ms)", lambda r: f"{r['trace_p50_ms']:.2f} / {r['trace_p99_ms']:.2f}"),
    ("RETURN 1 p50 / p99 (ms)", lambda r: f"{r['ping_p50_ms']:.2f} / {r['ping_p99_ms']:.2f}"),
    (
        "fixed cost p50, Neo4j RETURN 1 / PostgreSQL SELECT 1 (ms)",
        lambda r: f"{r['ping_p50_ms']:.2f} / {_ms(r.get('pg_ping_p50_ms'))}",
    ),
    (
        "single trace minus its fixed cost p50, Neo4j / PostgreSQL (ms)",
        lambda r: (
            f"{r['trace_p50_ms'] - r['ping_p50_ms']:.2f} / "
            + (
                f"{r['pg_trace_p50_ms'] - r['pg_ping_p50_ms']:.2f}"
                if r.get("pg_ping_p50_ms") is not None
                else "-"
            )
        ),
    ),
    (
        "ratio p50 (goal <=2) / p99 (goal <=3)",
        lambda r: (
            f"{r['trace_p50_ms'] / r['ping_p50_ms']:.1f} / "
            f"{r['trace_p99_ms'] / r['ping_p99_ms']:.1f}"
        ),
    ),
    (
        "HTTP minus driver p50 (ms, goal <=1; in brackets: httpx as the client)",
        lambda r: (
            f"{r['http_minus_driver_p50_ms']:.2f} ({_ms(r.get('httpx_minus_driver_p50_ms'))})"
        ),
    ),
    ("traces/s driver, 2 workers (goal >=1000)", lambda r: f"{r['driver_traces_s']:.0f}"),
    (
        "traces/s HTTP, 2 workers, plain client (goal >=50% of driver)",
        lambda r: f"{r['http_traces_s']:.0f} ({r['http_traces_s'] / r['driver_traces_s']:.0%})",
    ),
    (
        "day's positives, set-based (s)",
        lambda r: f"{r['positives_s']:.2f} ({r['positive_tubes']} tubes)",
    ),
    ("online load rows/s", lambda r: f"{r['online_rows_s']:.0f}"),
    (
        "online load rows/s, next round onto the store (goal >=90% of empty)",
        lambda r: (
            f"{r['online_next_rows_s']:.0f} ({r['online_next_rows_s'] / r['online_rows_s']:.0%})"
        ),
    ),
    ("neo4j-admin import rows/s", lambda r: f"{r['admin_rows_s']:.0f}"),
    ("  online / admin (goal >=20%)", lambda r: f"{r['online_rows_s'] / r['admin_rows_s']:.1%}"),
    (
        "trace Neo4j / in-process dict p50",
        lambda r: (
            f"{r['trace_p50_ms']:.2f} / {r['dict_p50_ms']:.3f} ms "
            f"({r['trace_p50_ms'] / r['dict_p50_ms']:.0f}x)"
        ),
    ),
    ("store / page cache (MB)", lambda r: f"{r['store_mb']:.0f} / {r['pagecache_mb']:.0f}"),
    (
        f"bytes on disk per registration (goal <= {BYTES_GOAL} at 1 M: half of 2,508)",
        lambda r: f"{r['bytes_per_registration']['total']:.0f}",
    ),
    ("heap used (MB)", lambda r: f"{r['heap_used_mb']:.0f}"),
    ("page-cache hit ratio, traces (goal >=99.9%)", lambda r: f"{r['pagecache_hit_ratio']:.4%}"),
    ("PostgreSQL 15 side by side (Neo4j / PG)", lambda r: ""),
    (
        "  traces/s, 2 workers (goal Neo4j >= PG/1.5)",
        lambda r: (
            f"{r['driver_traces_s']:.0f} / {r['pg_traces_s']:.0f} "
            f"({r['driver_traces_s'] / r['pg_traces_s']:.2f}x)"
        ),
    ),
    (
        "  trace p50 / p99 (ms)",
        lambda r: (
            f"{r['trace_p50_ms']:.2f}/{r['trace_p99_ms']:.1f} / "
            f"{r['pg_trace_p50_ms']:.2f}/{r['pg_trace_p99_ms']:.1f}"
        ),
    ),
    (
        "  online load rows/s (goal Neo4j >= PG/2)",
        lambda r: (
            f"{r['online_rows_s']:.0f} / {r['pg_online_rows_s']:.0f} "
            f"({r['online_rows_s'] / r['pg_online_rows_s']:.2f}x)"
        ),
    ),
    (
        "  bulk load rows/s (neo4j-admin / COPY)",
        lambda r: f"{r['admin_rows_s']:.0f} / {r['pg_copy_rows_s']:.0f}",
    ),
    (
        "  day's positives (s)",
        lambda r: f"{r['positives_s']:.2f} / {r['pg_positives_s']:.2f}",
    ),
    (
        "  exposure, 14 days, depth 2 | 3 | 4, p50 (ms)",
        lambda r: (
            " | ".join(
                f"{r['exposure_p50_ms'][d]:.1f}/{r['exposure_pg_p50_ms'][d]:.1f}" for d in "234"
            )
            + f" (~{r['exposure_mean_persons']['4']:.0f} people at depth 4)"
        ),
    ),
    (
        "  exposure, all cases at once, ms a subject",
        lambda r: " | ".join(
            f"{r['exposure_batch_ms'][d]:.1f}/{r['exposure_pg_batch_ms'][d]:.1f}" for d in "234"
        ),
    ),
    (
        "  clusters, 14 days (s)",
        lambda r: (
            f"{r['clusters_s']:.2f} / {r['clusters_pg_s']:.2f} "
            f"({_winner(r['clusters_s'], r['clusters_pg_s'])}; {r['clusters']} clusters, "
            f"{r['cluster_members']} people)"
        ),
    ),
    (
        "  second ring, 14 days, p50 (ms)",
        lambda r: (
            f"{r['ring_neo4j_p50_ms']:.1f} / {r['ring_pg_p50_ms']:.1f} "
            f"({_winner(r['ring_neo4j_p50_ms'], r['ring_pg_p50_ms'])}; "
            f"{r['ring_cases']} cases, ~{r['ring2_mean_size']:.0f} people)"
        ),
    ),
]


def _winner(neo: float, other: float) -> str:
    if neo <= other:
        return f"Neo4j {other / neo:.1f}x faster"
    return f"PG {neo / other:.1f}x faster"


def main() -> None:
    if "--replay" in sys.argv[1:]:
        from bench import replay

        replay.main([a for a in sys.argv[1:] if a != "--replay"])
        return
    if "--campaign" in sys.argv[1:]:  # weeks of daily rounds on one bounded store
        from bench import campaign

        campaign.main([a for a in sys.argv[1:] if a != "--campaign"])
        return
    if "--compare" in sys.argv[1:]:  # bytes and online rows/s of another tree beside this one
        from bench import sidebyside

        sidebyside.main(sys.argv[1:])
        return
    if "--footprint" in sys.argv[1:]:  # what one label, property or index costs
        footprint.main([a for a in sys.argv[1:] if a != "--footprint"])
        return
    if "--http" in sys.argv[1:]:
        from bench import http

        http.main([a for a in sys.argv[1:] if a != "--http"])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=1_000_000,
        help="registrations at the largest size (default 1000000)",
    )
    parser.add_argument(
        "--sizes", type=str, default="", help="comma-separated sizes instead of the three"
    )
    parser.add_argument("--samples", type=int, default=1000, help="traces per latency figure")
    parser.add_argument("--seconds", type=float, default=8.0, help="per throughput figure")
    parser.add_argument("--work", type=Path, default=OUT / "work")
    parser.add_argument(
        "--city", type=Path, default=None, help="a round generated before (full rounds only)"
    )
    parser.add_argument(
        "--drop-city", action="store_true", help="delete --city once its import files are written"
    )
    parser.add_argument(
        "--round", action="store_true", help="run every size as a full round (bench/round.py)"
    )
    parser.add_argument(
        "--positive-rate",
        type=float,
        default=round_bench.POSITIVE_RATE,
        help="share of positive tubes in a full round's generated day",
    )
    parser.add_argument(
        "--measure-only",
        action="store_true",
        help="full rounds: measure the store a run before imported again (bench/round.py)",
    )
    args = parser.parse_args()
    sizes = [max(2000, args.scale // 10), max(3000, args.scale // 3), args.scale]
    if args.sizes:
        sizes = [int(x) for x in args.sizes.split(",")]
    settings = Settings()
    if settings.neo4j_uri:
        sys.exit("the benchmark runs its own managed servers; unset NEO4J_URI")
    rounds = [n for n in sizes if n >= round_bench.ROUND_MIN or args.round]
    if rounds:  # a full round at city size: its own figures (bench/round.py)
        round_bench.main(
            rounds,
            args.work,
            settings,
            args.samples,
            args.city,
            args.drop_city,
            args.positive_rate,
            args.measure_only,
        )
        sizes = [n for n in sizes if n not in rounds]
        if not sizes:
            return
    results = {}
    for n in sizes:
        print(f"size {n}: generating, loading, measuring ...", flush=True)
        results[n] = bench_size(n, args.work, settings, args.samples, args.seconds)
        print(json.dumps({"size": n} | results[n]), flush=True)  # kept if a later size fails
    table = Table(
        title=f"tubetrace benchmark ({platform.node()}, {os.cpu_count()} cores, "
        f"heap {settings.heap_size}, page cache {settings.pagecache_size})"
    )
    table.add_column("figure")
    for n in sizes:
        table.add_column(f"{results[n]['registrations']:,} regs", justify="right")
    for label, fmt in ROWS:
        table.add_row(label, *(fmt(results[n]) for n in sizes))
        if label.startswith("bytes on disk per registration"):
            parts = [footprint.rows(results[n]) for n in sizes]
            for i, (name, _) in enumerate(parts[0]):
                table.add_row(name, *(p[i][1] if i < len(p) else "" for p in parts))
    Console(width=160).print(table)
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(
        json.dumps(
            {
                "machine": {"cores": os.cpu_count(), "node": platform.node()},
                "settings": {"heap": settings.heap_size, "pagecache": settings.pagecache_size},
                "sizes": {str(k): v for k, v in results.items()},
            },
            indent=2,
        )
    )
    shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
