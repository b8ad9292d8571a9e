"""A full round at city size: `./dev bench --sizes 26000000` (a size of ROUND_MIN or more runs
this instead of the side-by-side figures of bench/run.py).

Generates the round (streamed; time and peak memory of the generator), imports it with
`tubetrace load all --bulk` (import, schema, dispatch, statuses; each step timed), then with
a page cache smaller than the store measures, cold (server restarted, the OS page cache
dropped when this user may) and warm: single traces p50/p99, the day's positives in one
set-based pass, a district's queue page and the reports. Each figure is measured at this size,
not extrapolated.

    ./dev bench --sizes 26000000 [--city DIR [--drop-city]] [--measure-only]
    ./dev bench --round --sizes 2600000 --positive-rate 0.111   # a day of 26,000 positive
        # tubes on a smaller store (still larger than its page cache: set the page cache)

--measure-only: measure again on the store a run before imported (its figures are in
bench/out/round-N.json), e.g. when that run was cut short while measuring.
--city: a round generated before (kept, unless --drop-city); a round generated here is
deleted once its import files are written (store, import files and input do not fit the
disk together). Disk: about 2.5 KB per registration (65 GB for 26 M).
"""

from __future__ import annotations

import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import footprint
from bench.devdb import connect
from bench.measure import drop_os_cache, pct, store_bytes, timed
from engine.analysis import reports
from engine.loop import tasks
from engine.server.managed import ManagedServer
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_many
from loaders.bulk import bulk_load

ROUND_MIN = 5_000_000
DAY = "2022-04-09"
# What a round needs on disk at its peak (the import), per registration: the store with the
# statuses and their events (~2.3 KB, measured at 200k) and the gzipped import files (~0.2 KB).
# The generated files (~140 B) are gone by then.
BYTES_PER_REGISTRATION = 2_500
QUEUE_DISTRICT = "310115"  # the largest district (Pudong)
# The generated day's share of positive tubes (a round generated before keeps its own):
# 26,000 positive tubes of 2.6 M, as on 9-10 April 2022.
POSITIVE_RATE = 0.0111


def _generate(city: Path, n: int, positive_rate: float) -> dict[str, Any]:
    """The generator in its own process, for its peak memory."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cli", "generate", str(city), "--registrations", str(n),
         "--days", "1", "--positive-rate", str(positive_rate), "--seed", "2022"],
        check=True,
    )  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "generate_s": time.perf_counter() - t,
        "generate_peak_mb": max(peak, before) / 1024,
    }


def _measure(gw: Gateway, codes: list[str], out: dict[str, Any], save: Callable[[], None]) -> None:
    """Each figure into `out`, saved as it comes (a report takes minutes at 26 M)."""
    ms = [timed(lambda c=c: trace_many(gw, [c]))[0] * 1000 for c in codes]
    out["trace_p50_ms"] = pct(ms, 0.5)
    out["trace_p99_ms"] = pct(ms, 0.99)
    positives_s, items = timed(lambda: list(reports.positives_stream(gw, DAY)))
    out["positives_s"] = positives_s
    out["positive_tubes"] = len({i["tube_code"] for i in items})
    out["positive_persons"] = sum(len(i["trace"]["persons"]) for i in items)
    del items
    queue_s, (page, _) = timed(lambda: tasks.tasks_page(gw, QUEUE_DISTRICT, "pending", "", 50))
    out["queue_page_ms"] = queue_s * 1000
    out["queue_page_items"] = len(page)
    save()
    for name in reports.REPORTS:
        seconds, rows = timed(lambda name=name: reports.run_report(gw, name, DAY, "Asia/Shanghai"))
        out[f"report_{name}_s"] = seconds
        out[f"report_{name}_rows"] = len(rows)
        save()
    # Last, so the figures before it stay comparable with earlier runs: the day's pass twice
    # in a row, the second with that day's pages cached (the warm run's first pass follows the
    # cold run's reports, which fill the page cache with other pages).
    for _ in reports.positives_stream(gw, DAY):
        pass
    out["positives_again_s"] = timed(lambda: sum(1 for _ in reports.positives_stream(gw, DAY)))[0]
    save()


def bench_round(
    n: int,
    work: Path,
    settings: Settings,
    samples: int,
    city: Path | None = None,
    drop: bool = False,
    positive_rate: float = POSITIVE_RATE,
    save: Callable[[dict[str, Any]], None] = lambda res: None,
    loaded: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`save` gets the figures after each stage (a full round runs for hours). With `loaded`
    (the figures saved by a run that imported this round into `work`), only the measuring is
    done again, on the store that run left."""
    work.mkdir(parents=True, exist_ok=True)
    home = work / f"home-{n}"
    if loaded is not None:
        kept = {k: v for k, v in loaded.items() if k not in ("cold", "warm")}
        return _measure_store(settings.model_copy(update={"home": home}), kept, samples, save)
    need = n * BYTES_PER_REGISTRATION
    free = shutil.disk_usage(work).free
    print(f"disk: this round needs about {need / 1e9:.0f} GB, {free / 1e9:.0f} GB free", flush=True)
    if free < need:
        sys.exit(f"not enough free disk under {work} for a round of {n:,} registrations")
    res: dict[str, Any] = {"disk_needed_gb": need / 1e9, "disk_free_gb": free / 1e9}
    generated = city is None or not (city / "registrations.csv").exists()
    if generated:
        city = city or work / f"city-{n}"
        res |= _generate(city, n, positive_rate)
        save(res)
    assert city is not None
    # The generated files go once the import files are written: the disk is the limit.
    source = city

    def drop_city() -> None:
        if generated or drop:
            shutil.rmtree(source, ignore_errors=True)

    shutil.rmtree(home, ignore_errors=True)
    s = settings.model_copy(update={"home": home})
    console = Console(file=io.StringIO())
    t = time.perf_counter()
    timings = bulk_load(s, "all", city, console, on_files_written=drop_city)
    res["bulk_total_s"] = time.perf_counter() - t
    res |= timings
    res["bulk_output"] = console.file.getvalue().strip()  # type: ignore[attr-defined]
    return _measure_store(s, res, samples, save)


def _measure_store(
    s: Settings, res: dict[str, Any], samples: int, save: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    server = ManagedServer(s)
    try:
        with closing(connect(s)) as gw:
            counts = {r["label"]: r["n"] for r in gw.read("count_by_label")}
        res["registrations"] = counts.get("Registration", 0)
        res["tubes"] = counts.get("Tube", 0)
        res["persons"] = counts.get("Person", 0)
        res["tasks"] = counts.get("Task", 0)
        res["person_days"] = counts.get("PersonDay", 0)
        res["store_mb"] = store_bytes(server) / 2**20
        res["pagecache"] = s.pagecache_size
        res["heap"] = s.heap_size
        save(res)
        rng = random.Random(7)
        codes = [f"T{rng.randrange(1, res['tubes']):09d}" for _ in range(samples)]
        server.stop()
        res["os_cache_dropped"] = drop_os_cache()
        server.start()
        with closing(connect(s)) as gw:
            for run in ("cold", "warm"):
                res[run] = {}
                _measure(gw, codes, res[run], lambda: save(res))
            # Where the bytes go (bench/footprint.py), last: counting reads every node.
            res |= footprint.logical(gw, res["registrations"])
            names = footprint.index_names(gw)
        server.stop()  # a clean stop: every page in its file
        parts = footprint.disk_parts(server, names, s.neo4j_database)
        res["bytes_per_registration"] = footprint.on_disk(parts, res["registrations"])
        save(res)
    finally:
        server.stop()
    return res


ROWS = [
    (
        "registrations / tubes / persons",
        lambda r: f"{r['registrations']:,} / {r['tubes']:,} / {r['persons']:,}",
    ),
    (
        "generate (streamed): time, peak memory",
        lambda r: (
            f"{r['generate_s'] / 60:.1f} min, {r['generate_peak_mb']:.0f} MB"
            if "generate_s" in r
            else "generated before this run"
        ),
    ),
    ("load all --bulk end to end (goal <= 30 min)", lambda r: f"{r['bulk_total_s'] / 60:.1f} min"),
    ("  import files (transforms, statuses)", lambda r: f"{r['write_csv_s'] / 60:.1f} min"),
    ("  neo4j-admin import", lambda r: f"{r['neo4j_admin_import_s'] / 60:.1f} min"),
    ("  schema (indexes online)", lambda r: f"{r['schema_s'] / 60:.1f} min"),
    ("  dispatch", lambda r: f"{r['dispatch_s'] / 60:.1f} min ({r['tasks']:,} tasks)"),
    ("  statuses left to the online refresh", lambda r: f"{r['status_s'] / 60:.1f} min"),
    ("store / page cache", lambda r: f"{r['store_mb'] / 1024:.1f} GB / {r['pagecache']}"),
    (
        "bytes on disk per registration (store files / indexes / tx logs)",
        lambda r: (
            "{total:.0f} ({store:.0f} / {indexes:.0f} / {transaction_logs:.0f})".format(
                **r["bytes_per_registration"]
            )
            if "bytes_per_registration" in r
            else "-"
        ),
    ),
    (
        "nodes / relationships / properties per registration",
        lambda r: (
            f"{r['nodes_per_registration']:.2f} / {r['relationships_per_registration']:.2f} / "
            f"{r['properties_per_registration']:.1f}"
            if "nodes_per_registration" in r
            else "-"
        ),
    ),
]
SIDE = [
    ("trace p50 / p99 (ms)", lambda m: f"{m['trace_p50_ms']:.2f} / {m['trace_p99_ms']:.2f}"),
    ("day's positives, set-based (goal <= 30 s)", lambda m: (
        f"{m['positives_s']:.1f} s ({m['positive_tubes']:,} tubes, "
        f"{m['positive_persons']:,} persons)")),
    ("  the same pass twice in a row, the second", lambda m: (
        f"{m['positives_again_s']:.1f} s" if "positives_again_s" in m else "not measured")),
    ("district queue page (50 tasks)", lambda m: f"{m['queue_page_ms']:.0f} ms"),
    *[
        (f"report {name}", lambda m, name=name: f"{m[f'report_{name}_s']:.1f} s")
        for name in reports.REPORTS
    ],
]  # fmt: skip


def print_table(res: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"a full round ({res['registrations']:,} registrations)")
    table.add_column("figure")
    table.add_column("cold", justify="right")
    table.add_column("warm", justify="right")
    for label, fmt in ROWS:
        table.add_row(label, fmt(res), "")
    for label, fmt in SIDE:
        table.add_row(label, fmt(res["cold"]), fmt(res["warm"]))
    Console(width=160).print(table)
    print("OS page cache dropped before the cold run:", res["os_cache_dropped"])


def main(
    sizes: list[int],
    work: Path,
    settings: Settings,
    samples: int,
    city: Path | None,
    drop: bool = False,
    positive_rate: float = POSITIVE_RATE,
    measure_only: bool = False,
) -> None:
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    for n in sizes:
        path = out / f"round-{n}.json"

        def save(res: dict[str, Any], path: Path = path) -> None:
            part = path.with_suffix(".part")  # replaced whole: a kill never leaves it empty
            part.write_text(json.dumps(res, indent=2, default=str))
            os.replace(part, path)

        loaded = None
        if measure_only:
            if not path.exists() or not (work / f"home-{n}").exists():
                sys.exit(f"--measure-only: no imported round of {n:,} under {work} ({path})")
            loaded = json.loads(path.read_text())
        res = bench_round(n, work, settings, samples, city, drop, positive_rate, save, loaded)
        save(res)
        print_table(res)
