"""Where the bulk import's dispatch goes: seconds per named query inside its transactions,
the rest (planning in Python, the driver) as "python". Generates a day, imports it with
`load all --bulk` into a new home under --work, and profiles the dispatch step.

    python -m bench.dispatch_profile --registrations 200000 [--positive-rate 0.0111]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from engine.server.managed import ManagedServer
from engine.settings import get_settings
from engine.store.gateway import Gateway
from loaders import bulk_files
from loaders.bulk import bulk_load
from loaders.generate import generate_city

OUT = Path(__file__).parent / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--registrations", type=int, default=200_000)
    parser.add_argument("--positive-rate", type=float, default=0.0111)
    parser.add_argument("--work", type=Path, default=OUT / "dispatch-profile")
    args = parser.parse_args()
    if get_settings().neo4j_uri:
        sys.exit("the profile runs its own managed server; unset NEO4J_URI")
    shutil.rmtree(args.work, ignore_errors=True)
    city = args.work / "city"
    generate_city(
        city, seed=2022, registrations=args.registrations, days=1, positive_rate=args.positive_rate
    )
    settings = get_settings().model_copy(update={"home": args.work / "home"})
    seen: dict[str, float] = {}
    calls: Counter[str] = Counter()
    dispatch_all = bulk_files.dispatch_all

    def profiled(gw: Gateway, page: int = 1000) -> int:
        gw.timings, gw.calls = {}, Counter()
        t = time.perf_counter()
        n = dispatch_all(gw, page)
        seen.update(gw.timings, total=time.perf_counter() - t, results=n)
        calls.update(gw.calls)
        gw.timings = None
        return n

    bulk_files.dispatch_all = profiled  # type: ignore[assignment]
    try:
        bulk_load(settings, "all", city, Console(file=io.StringIO()))
    finally:
        bulk_files.dispatch_all = dispatch_all  # type: ignore[assignment]
        ManagedServer(settings).stop()
        shutil.rmtree(args.work, ignore_errors=True)
    total = seen.pop("total")
    results = int(seen.pop("results"))
    table = Table(title=f"dispatch of {results:,} results: {total:.1f} s")
    for col in ("query", "seconds", "share", "calls"):
        table.add_column(col, justify="left" if col == "query" else "right")
    for name, seconds in sorted(seen.items(), key=lambda kv: -kv[1]):
        table.add_row(name, f"{seconds:.2f}", f"{seconds / total:.0%}", str(calls[name]))
    rest = total - sum(seen.values())
    table.add_row("python (plan, driver)", f"{rest:.2f}", f"{rest / total:.0%}", "")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
