"""A campaign: daily rounds on one bounded store (issue 22 item 4).

    ./dev bench --campaign [--days 21] [--per-day 100000] [--keep-days 14]

Day 1 is a generated round, bulk-imported. Every later day is loaded online as the sampling
apps and labs send it: the same people swabbed again (the day's date, new record ids and
tubes, the same boxes), then the single-tube retests of everyone whose follow-up task is still
open (negative: the loop closes) and the day's results (dispatch). Then the retention purge
keeps `--keep-days` days. Per day it prints and saves in `bench/out/campaign.json`: the
registrations loaded and stored, the store's bytes on disk (and per stored registration), the
online load's rows/s, the trace p50/p99 of the day's tubes, the day's positives, a district
queue page, the purge's time and what it deleted; and draws `docs/campaign.png`. The goals
are ratios within the run (see docs/campaign.md)."""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.devdb import connect
from bench.footprint import ID_BUFFER, disk_parts, index_names
from bench.measure import pct, store_bytes, timed
from engine.analysis import reports
from engine.loop import tasks
from engine.ops import retention
from engine.server.managed import ManagedServer
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_many
from loaders import write
from loaders.bulk import bulk_load
from loaders.generate import generate_city
from loaders.read import read_file
from loaders.write import Item

OUT = Path(__file__).parent / "out"
DOCS = Path(__file__).resolve().parent.parent / "docs"
START = date(2022, 4, 9)  # the generator's first day
QUEUE_DISTRICT = "310115"
TRACES = 200  # traces per latency figure
REPEATS = 3  # timed calls of the day's positives and of a queue page (their median)
# A real day of loads takes hours, with a checkpoint every 15 minutes (Neo4j's default); a
# benchmark day takes a minute or two. Checkpoints every few seconds keep the benchmark's
# checkpoints per day nearer a real day's (freed index pages are reused only after one), and
# each day is measured after one (Community has no db.checkpoint()): the files hold every page.
CHECKPOINT_S = 5
# A run stops after the day it is loading when this file appears in its work folder (the
# server stopped cleanly), and `--resume` goes on from the next day: a 21-day run takes longer
# than one sitting on a 2-core machine.
STOP_FILE = "STOP"
_CHECKPOINT = re.compile(r"\[neo4j/\w+\] Checkpoint triggered by .* checkpoint (started|completed)")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T")


@dataclass
class Day:
    day: str
    registrations_loaded: int
    registrations_stored: int
    store_bytes: int  # databases/neo4j: the store files and indexes
    tx_log_bytes: int  # transactions/neo4j: kept by time (a day), not by simulated day
    bytes_per_registration: float  # store_bytes per stored registration
    online_rows_s: float | None  # None on day 1 (bulk-imported)
    retests: int
    trace_p50_ms: float
    trace_p99_ms: float
    positives_s: float
    positive_tubes: int
    queue_page_ms: float
    purge_s: float
    purged_registrations: int
    seconds: float  # the day's whole run: load, retests, results, purge, measures
    # store_bytes by file: the record files by what they hold and each index by name
    # (bench/footprint.py), and the nodes of each label (the counts store). Community has no
    # db.checkpoint(): the files hold what the last checkpoint or eviction wrote.
    store_files: dict[str, int] = field(default_factory=dict)
    index_files: dict[str, int] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    # The first day of a `--resume`: loaded into a server just started (a cold JVM and page
    # cache), as after a restart in production.
    after_restart: bool = False


def dir_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def shifted(
    items: Iterable[Item], days: int, prefix: str, fields: tuple[str, ...]
) -> Iterator[Item]:
    """Day 1's records `days` later: the named id fields prefixed (new record ids and tubes),
    every time stamp moved by `days` (a value the transform refuses stays as it is)."""
    for line, rec in items:
        if isinstance(rec, dict):
            rec = dict(rec)
            for name in fields:
                if rec.get(name):
                    rec[name] = f"{prefix}{rec[name]}"
            for name in ("collected_at", "reported_at"):
                at = str(rec.get(name) or "")
                if _STAMP.match(at):
                    moved = date.fromisoformat(at[:10]) + timedelta(days=days)
                    rec[name] = moved.isoformat() + at[10:]
        yield line, rec


def retests(gw: Gateway, day: date, n: int) -> tuple[list[Item], list[Item]]:
    """A single-tube retest, negative, of everyone whose follow-up task is open: the
    registrations and their results (reported the same evening)."""
    regs: list[Item] = []
    results: list[Item] = []
    for i, p in enumerate(gw.read("campaign_open_follow_ups")):
        tube = f"RT{n:02d}-{i:06d}"
        regs.append(
            (
                i + 1,
                {
                    "record_id": f"RT{n:02d}-{i:06d}",
                    "collected_at": f"{day.isoformat()}T09:00:00+08:00",
                    "compound_code": p["compound_code"],
                    "box_code": f"RB{n:02d}",
                    "tube_code": tube,
                    "pool_size": "1",
                    "method": "nucleic_code",
                    "id_type": p["id_type"],
                    "id_number": p["id_number"],
                    "name": p["name"] or "",
                    "phone": p["phone"] or "",
                },
            )
        )
        results.append(
            (
                i + 1,
                {
                    "tube_code": tube,
                    "lab_code": "LAB01",
                    "result": "negative",
                    "reported_at": f"{day.isoformat()}T20:00:00+08:00",
                },
            )
        )
    return regs, results


def _log_size(server: ManagedServer) -> int:
    log = server.logs_dir / "debug.log"
    return log.stat().st_size if log.exists() else 0


def checkpointed(server: ManagedServer, mark: int, timeout_s: float = 6 * CHECKPOINT_S) -> bool:
    """Wait until a checkpoint of the database that started after `mark` (a size of the
    server's debug.log) has completed; False after the timeout (no checkpoint was needed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with (server.logs_dir / "debug.log").open("rb") as f:
            f.seek(mark)
            text = f.read().decode("utf-8", "replace")
        states = [m.group(1) for m in _CHECKPOINT.finditer(text)]
        if "started" in states and "completed" in states[states.index("started") :]:
            return True
        time.sleep(0.5)
    return False


def measure(gw: Gateway, day: str, rng: random.Random) -> dict[str, Any]:
    codes = [r["code"] for r in gw.read("campaign_tubes_of_day", day=day)]
    sample = [rng.choice(codes) for _ in range(TRACES)] if codes else []
    for code in sample[:20]:  # warm the query cache
        trace_many(gw, [code])
    ms = [timed(trace_many, gw, [c])[0] * 1000 for c in sample]
    # Each figure warm, as an investigator's later calls of the day (the first plans queries):
    # the median of REPEATS calls, where one call's figure doubled in a busy second.
    sum(1 for _ in reports.positives_stream(gw, day))
    runs = [timed(lambda: list(reports.positives_stream(gw, day))) for _ in range(REPEATS)]
    items = runs[0][1]
    tasks.tasks_page(gw, QUEUE_DISTRICT, "pending", "", 50)
    queue = [
        timed(lambda: tasks.tasks_page(gw, QUEUE_DISTRICT, "pending", "", 50))[0]
        for _ in range(REPEATS)
    ]
    return {
        "trace_p50_ms": pct(ms, 0.5),
        "trace_p99_ms": pct(ms, 0.99),
        "positives_s": pct([s for s, _ in runs], 0.5),
        "positive_tubes": len({i["tube_code"] for i in items}),
        "queue_page_ms": pct(queue, 0.5) * 1000,
    }


def resumed(days: int, per_day: int, keep_days: int, work: Path) -> list[Day]:
    """The days of an interrupted run (`--resume`): its campaign.json, when it is the run of
    the same figures whose store is in `work`."""
    doc = json.loads((OUT / "campaign.json").read_text())
    same = (doc["days_planned"], doc["per_day"], doc["keep_days"]) == (days, per_day, keep_days)
    if not same or not (work / "home").is_dir() or not doc["days"]:
        raise SystemExit(
            f"nothing to resume: {OUT / 'campaign.json'} is not a run of --days {days} "
            f"--per-day {per_day} --keep-days {keep_days} with its store in {work}"
        )
    return [Day(**d) for d in doc["days"]]


def run(
    days: int,
    per_day: int,
    keep_days: int,
    work: Path,
    settings: Settings,
    console: Console,
    resume: bool = False,
) -> list[Day]:
    """The campaign's days; with `resume`, the days after those an earlier run saved (it
    stopped after a whole day: see STOP_FILE)."""
    home, city = work / "home", work / "city"
    s = settings.model_copy(update={"home": home})
    out: list[Day] = resumed(days, per_day, keep_days, work) if resume else []
    rng = random.Random(22 + len(out))
    server = ManagedServer(s)
    if not out:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(city, ignore_errors=True)
        generate_city(
            city, seed=2022, registrations=per_day, days=1, positive_rate=0.01, mix_pools=True
        )
        server.conf_dir.mkdir(parents=True, exist_ok=True)
        conf = f"db.checkpoint.interval.time={CHECKPOINT_S}s\n"
        (server.conf_dir / "extra.conf").write_text(conf)
        t = time.perf_counter()  # day 1's time runs from the bulk import
        bulk_load(s, "all", city, Console(file=io.StringIO()))
    stop = work / STOP_FILE
    stop.unlink(missing_ok=True)
    gw = connect(s)
    first = len(out) + 1
    try:
        for n in range(first, days + 1):
            if stop.exists():
                console.print(f"{stop} found: stopped before day {n}; go on with --resume")
                break
            today = START + timedelta(days=n - 1)
            loaded, rows_s, retested = per_day, None, 0
            if n > 1:
                t = time.perf_counter()
                regs = shifted(
                    read_file(city / "registrations.csv", "registrations"),
                    n - 1,
                    f"D{n:02d}-",
                    ("record_id", "tube_code"),
                )
                load_s, summary = timed(
                    write.load_records, gw, "registrations", regs, f"day{n}.csv", s
                )
                loaded, rows_s = summary.read, summary.read / load_s
                retest_regs, retest_results = retests(gw, today, n)
                retested = len(retest_regs)
                write.load_records(gw, "registrations", retest_regs, f"retests{n}.csv", s)
                results = shifted(
                    read_file(city / "results.csv", "results"), n - 1, f"D{n:02d}-", ("tube_code",)
                )
                write.load_records(gw, "results", results, f"results{n}.csv", s)
                write.load_records(gw, "results", retest_results, f"retest-results{n}.csv", s)
            purge_s, report = timed(
                lambda today=today: retention.purge(
                    gw, keep_days=keep_days, tz=s.timezone, today=today
                )
            )
            mark = _log_size(server)
            figures = measure(gw, today.isoformat(), rng)
            checkpointed(server, mark)
            stored = gw.read("campaign_registrations").value()
            parts = disk_parts(server, index_names(gw), gw.database)
            total = store_bytes(server)
            size = dir_bytes(server.data_dir / "databases" / "neo4j")
            day = Day(
                day=today.isoformat(),
                registrations_loaded=loaded,
                registrations_stored=stored,
                store_bytes=size,
                tx_log_bytes=total - size,
                bytes_per_registration=size / stored if stored else float("nan"),
                online_rows_s=rows_s,
                retests=retested,
                purge_s=purge_s,
                purged_registrations=int(report.deleted["Registration"]),
                seconds=time.perf_counter() - t,
                store_files=parts["store"],
                index_files=parts["indexes"],
                labels=dict(sorted(gw.read("campaign_label_counts").value().items())),
                after_restart=resume and n == first,
                **figures,
            )
            out.append(day)
            brief = {k: v for k, v in asdict(day).items() if not isinstance(v, dict)}
            console.print(json.dumps(brief))
            save(out, days, per_day, keep_days)
    finally:
        gw.close()
        server.stop()
    return out


def save(out: list[Day], days: int, per_day: int, keep_days: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {
        "days_planned": days,
        "per_day": per_day,
        "keep_days": keep_days,
        "days": [asdict(d) for d in out],
    }
    (OUT / "campaign.json").write_text(json.dumps(doc, indent=1) + "\n")


def records_bytes(d: Day) -> int:
    """The store without Neo4j's freed-id buffer (a temporary queue, bounded: see ID_BUFFER)."""
    return d.store_bytes - d.store_files.get(ID_BUFFER, 0)


def goals(out: list[Day], keep_days: int) -> list[tuple[str, str, bool | None]]:
    """The issue's goals, each a ratio within the run; None where the run is too short. The
    store is judged as it is on disk and without the freed-id buffer (docs/campaign.md)."""
    rows: list[tuple[str, str, bool | None]] = []
    steady = out[keep_days:]  # from day keep_days + 1 on
    for name, size in (
        ("store bytes within +-10 % of day keep+1", lambda d: d.store_bytes),
        ("  the same without the freed-id buffer", records_bytes),
    ):
        if len(steady) >= 2:
            base = size(steady[0])
            worst = max(abs(size(d) / base - 1) for d in steady[1:])
            rows.append((name, f"{worst:.1%} at most", worst <= 0.10))
        else:
            rows.append((name, "run too short", None))
    if len(out) >= 3:
        day2, last = out[1], out[-1]
        trace = last.trace_p50_ms / day2.trace_p50_ms
        positives = last.positives_s / day2.positives_s if day2.positives_s else float("nan")
        rate = (last.online_rows_s or 0) / (day2.online_rows_s or 1)
        rows.append(("last day's trace p50 / day 2's (<= 1.25)", f"{trace:.2f}", trace <= 1.25))
        rows.append(
            ("last day's positives / day 2's (<= 1.25)", f"{positives:.2f}", positives <= 1.25)
        )
        rows.append(("last day's online rows/s / day 2's (>= 0.9)", f"{rate:.2f}", rate >= 0.9))
    return rows


def growers(out: list[Day], keep_days: int, top: int = 8) -> list[tuple[str, int, int, int]]:
    """What grew most from day keep_days + 1 (the window full) to the last day: each file
    group and index (bytes) and each label (nodes), as (what, first, last, growth), the
    largest byte growth first, then the labels that grew."""
    if len(out) < 2:
        return []
    first, last = out[min(keep_days, len(out) - 2)], out[-1]
    rows: list[tuple[str, int, int, int]] = []
    for kind, a, b in (
        ("file", first.store_files, last.store_files),
        ("index", first.index_files, last.index_files),
    ):
        for name in sorted(a.keys() | b.keys()):
            rows.append((f"{kind} {name}", a.get(name, 0), b.get(name, 0), 0))
    by_bytes = sorted(
        ((w, x, y, y - x) for w, x, y, _ in rows if y != x), key=lambda r: -abs(r[3])
    )[:top]
    labels = sorted(
        (
            (f"nodes :{name}", first.labels.get(name, 0), last.labels.get(name, 0), 0)
            for name in first.labels.keys() | last.labels.keys()
        ),
        key=lambda r: -(r[2] - r[1]),
    )
    by_nodes = [(w, x, y, y - x) for w, x, y, _ in labels if y != x][:top]
    return by_bytes + by_nodes


def print_growers(out: list[Day], keep_days: int, console: Console) -> None:
    rows = growers(out, keep_days)
    if not rows:
        return
    first = out[min(keep_days, len(out) - 2)]
    days = len(out) - 1 - out.index(first)
    table = Table(title=f"what grew from {first.day} to {out[-1].day} ({days} days)")
    for name in ("what", "first", "last", "growth", "per day"):
        table.add_column(name, justify="right")
    for what, a, b, grew in rows:
        if what.startswith("nodes"):
            cells = (f"{a:,}", f"{b:,}", f"{grew:+,}", f"{grew / days:+,.0f}")
        else:
            mb = 2**20
            cells = (f"{a / mb:,.1f} MB", f"{b / mb:,.1f} MB", f"{grew / mb:+,.1f} MB",
                     f"{grew / days / mb:+,.2f} MB")  # fmt: skip
        table.add_row(what, *cells)
    console.print(table)


def print_table(out: list[Day], keep_days: int, console: Console) -> None:
    table = Table(title="campaign: one row per day")
    for name in ("day", "loaded", "stored", "store MB", "tx log MB", "B/reg", "rows/s", "retests",
                 "trace p50/p99 ms", "positives s", "queue ms", "purge s", "purged"):  # fmt: skip
        table.add_column(name, justify="right")
    for d in out:
        table.add_row(
            d.day,
            f"{d.registrations_loaded:,}",
            f"{d.registrations_stored:,}",
            f"{d.store_bytes / 2**20:,.0f}",
            f"{d.tx_log_bytes / 2**20:,.0f}",
            f"{d.bytes_per_registration:,.0f}",
            "bulk" if d.online_rows_s is None else f"{d.online_rows_s:,.0f}",
            f"{d.retests:,}",
            f"{d.trace_p50_ms:.1f} / {d.trace_p99_ms:.1f}",
            f"{d.positives_s:.2f}",
            f"{d.queue_page_ms:.1f}",
            f"{d.purge_s:.1f}",
            f"{d.purged_registrations:,}",
        )
    console.print(table)
    for name, value, ok in goals(out, keep_days):
        mark = "-" if ok is None else ("met" if ok else "NOT met")
        console.print(f"{name}: {value} ({mark})")


def plot(out: list[Day], keep_days: int, path: Path) -> None:
    """The per-day figures in four panels (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = list(range(1, len(out) + 1))
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    panels = [
        ("store on disk (MB)", [d.store_bytes / 2**20 for d in out]),
        ("online load (rows/s)", [d.online_rows_s or float("nan") for d in out]),
        ("trace p50 (ms)", [d.trace_p50_ms for d in out]),
        ("the day's positives (s)", [d.positives_s for d in out]),
    ]
    for ax, (title, ys) in zip(axes.flat, panels, strict=True):
        ax.plot(x, ys, marker="o", markersize=3)
        ax.axvline(keep_days + 0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("day of the campaign (dotted: the retention window fills)")
    fig.suptitle(
        f"tubetrace campaign: {len(out)} days x {out[0].registrations_loaded:,} registrations, "
        f"keep {keep_days} days",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[Day]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--per-day", type=int, default=100_000)
    parser.add_argument("--keep-days", type=int, default=14)
    parser.add_argument("--work", type=Path, default=OUT / "campaign-work")
    parser.add_argument("--plot", type=Path, default=DOCS / "campaign.png")
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"go on with a run stopped by a {STOP_FILE} file in its work folder",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    if settings.neo4j_uri:
        raise SystemExit("the benchmark runs its own managed server; unset NEO4J_URI")
    console = Console(width=180)
    out = run(args.days, args.per_day, args.keep_days, args.work, settings, console, args.resume)
    print_table(out, args.keep_days, console)
    print_growers(out, args.keep_days, console)
    plot(out, args.keep_days, args.plot)
    console.print(f"saved {OUT / 'campaign.json'} and {args.plot}")
    return out
