"""Where the online load's time goes: seconds per named query (inside the write
transactions), the rest (reading, transforming, the driver) as "python", and the Eager
operators in each write query's plan. Loads a generated city into a wiped database.

    TUBETRACE_HOME=... python -m bench.write_profile --registrations 30000

Uses the managed Neo4j of TUBETRACE_HOME (or NEO4J_URI) and WIPES its database."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from neo4j.exceptions import Neo4jError
from rich.console import Console
from rich.table import Table

from bench.devdb import connect, wipe
from engine.settings import get_settings
from engine.store.gateway import Gateway
from loaders import write
from loaders.generate import generate_city
from loaders.read import read_file


def operators(plan: dict[str, Any]) -> list[str]:
    out = [plan["operatorType"].split("@")[0]]
    for child in plan.get("children", []):
        out += operators(child)
    return out


def eager_count(gw: Gateway, name: str) -> str:
    """Eager operators in the query's plan (EXPLAIN: planned with null parameters, not run)."""
    q = gw.queries[name]
    params: dict[str, Any] = dict.fromkeys(q.params)
    try:
        with gw.driver.session(database=gw.database) as session:
            plan = session.run("EXPLAIN " + q.text, params).consume().plan
    except Neo4jError:
        return "?"
    return str(sum(op == "Eager" for op in operators(plan or {})))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--registrations", type=int, default=30_000)
    args = parser.parse_args()
    settings = get_settings()
    gw = connect(settings)
    secret = gw.secret()
    wipe(gw)
    gw.write("ensure_secret", key="person_id_secret", value=secret)
    gw._secret = None
    with tempfile.TemporaryDirectory() as tmp:
        city = Path(tmp)
        generate_city(city, seed=5, registrations=args.registrations, days=1)
        for kind in ("compounds",):
            path = city / f"{kind}.csv"
            write.load_records(gw, kind, read_file(path, kind), path.name, settings)
        gw.timings = {}
        gw.calls = Counter()
        path = city / "registrations.csv"
        start = time.perf_counter()
        summary = write.load_records(
            gw, "registrations", read_file(path, "registrations"), path.name, settings
        )
        total = time.perf_counter() - start
    timings, calls = Counter(gw.timings), gw.calls
    gw.timings = None
    in_queries = sum(timings.values())
    table = Table(
        title=f"online load of {summary.read:,} registrations: {total:.1f} s, "
        f"{summary.read / total:,.0f} rows/s (batch {settings.batch_size})"
    )
    for col in ("query", "seconds", "share", "ms per 1,000 rows", "calls", "Eager ops"):
        table.add_column(col, justify="left" if col == "query" else "right", no_wrap=True)
    for name, seconds in timings.most_common():
        table.add_row(
            name,
            f"{seconds:.2f}",
            f"{seconds / total:.0%}",
            f"{1000 * seconds / summary.read * 1000:.0f}",
            str(calls[name]),
            eager_count(gw, name),
        )
    rest = total - in_queries
    table.add_row("python (read, transform, driver)", f"{rest:.2f}", f"{rest / total:.0%}")
    Console(width=120).print(table)
    gw.close()


if __name__ == "__main__":
    main()
