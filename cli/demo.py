"""`tubetrace demo`: a small generated city, loaded into the managed Neo4j, traced and served."""

from __future__ import annotations

import shutil
from collections import Counter
from functools import partial
from pathlib import Path

from rich.console import Console

from cli.connection import gateway, me
from cli.render import print_trace
from engine import domain
from engine.access.audit import DirectAudit
from engine.contract import TraceJSON
from engine.errors import TubetraceError
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import PERSON_FLAGS, TUBE_FLAGS, all_traces, count_flags
from engine.usecases import reads, writes
from loaders import write
from loaders.generate import generate_city

DEMO_REGISTRATIONS = 3000


def run_demo(
    settings: Settings, out: Console, *, host: str, port: int, serve_api: bool, seed: int
) -> None:
    from loaders.read import read_file

    out.print("Starting Neo4j (the first run fetches the server from Maven Central)...")
    with gateway(settings) as gw:
        city_dir = settings.home / "demo-city"
        shutil.rmtree(city_dir, ignore_errors=True)
        stats = generate_city(city_dir, seed=seed, registrations=DEMO_REGISTRATIONS)
        out.print(
            f"Generated {stats.registrations} registrations in {stats.tubes} tubes at "
            f"{stats.compounds} compounds (seed {seed}) in {city_dir}",
            highlight=False,
        )
        for kind in ("compounds", "registrations", "results"):
            path = city_dir / f"{kind}.csv"
            summary = writes.load(
                DirectAudit(gw),
                me(),
                partial(write.load_records, gw, kind, read_file(path, kind), path.name, settings),
                target=path.name,
            )
            out.print(summary.line(), highlight=False)

        totals: Counter[str] = Counter()
        example = None
        for trace in all_traces(gw):  # one pass: flag totals and an example tube
            count_flags(totals, trace)
            example = _better_example(example, trace)
        out.print("Flags in the demo city:")
        for flag, n in sorted(totals.items()):
            out.print(f"  {flag:<28} {n}", highlight=False)
        required = (
            *PERSON_FLAGS,
            *TUBE_FLAGS,
            "missing_record_id",
            "missing_name",
            "invalid_collected_at",
        )
        absent = [f for f in required if totals[f] == 0]
        if absent:
            raise TubetraceError(f"the demo city lacks flags {absent}; the generator is broken")

        _print_loop(gw, out)
        _print_reach_gain(gw, out, settings, city_dir / "directory.csv")
        if example is not None:
            out.print("\nA positive 10-in-1 tube, traced:")
            # Shown through the use case like any CLI trace: its names and phones are audited.
            code = example["tube"]["code"]
            print_trace(reads.read_trace(gw, DirectAudit(gw), me(), code))
            out.print(f"(tubetrace trace {code} --json for the JSON)\n")
        if not settings.neo4j_uri:
            from engine.server.managed import ManagedServer

            out.print(
                f"Neo4j Browser: {ManagedServer(settings).browser_url} "
                f"(user neo4j, password in {ManagedServer(settings).password_file})",
                highlight=False,
            )
        key_line = _demo_key(gw)
        if key_line:
            out.print(key_line, highlight=False)
        out.print(f"API docs:      http://{host}:{port}/docs", highlight=False)
        out.print(
            f"Web console:   http://{host}:{port}/console/ (log in with the investigator key)",
            highlight=False,
        )
    if serve_api:
        import uvicorn

        out.print("Serving the API until Ctrl-C.")
        uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="info")


def _print_loop(gw: Gateway, out: Console) -> None:
    """Where the day's positive pools went, and how far each district's loops are closed."""
    from engine.analysis import reports
    from engine.loop import tasks

    out.print("\nFollow-up tasks by residence district (kind/status):")
    for code in sorted(
        {
            i["district_code"]
            for day in ("2022-04-09", "2022-04-10")
            for i in reports.positives_stream(gw, day)
        }
        | {tasks.UNASSIGNED}
    ):
        items = tasks.all_tasks(gw, code)
        counts = Counter(
            f"{t['kind']}/{t['status']}" + (f"({t['outcome']})" if t["outcome"] else "")
            for t in items
        )
        if counts:
            out.print(
                f"  {code} {domain.district_name(code) or ''}: "
                + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())),
                highlight=False,
            )
    rows = reports.completeness(gw, "2022-04-09")
    out.print("Completeness of the positive pools of 2022-04-09 (share with a usable phone):")
    for r in rows:
        out.print(
            f"  {r['district_code']} {r['district'] or ''}: {r['persons']} persons, "
            f"{r['usable_phone_share']:.0%} callable, {r['invalid_id_numbers']} invalid IDs",
            highlight=False,
        )


REACH_WORDS = {
    "own_phone": "by their own phone",
    "directory": "only by a directory phone",
    "compound": "only through the compound's phone",
    "none": "not at all",
}


def _reach_line(reach: dict[tuple[str, str, str], str]) -> str:
    counts = Counter(reach.values())
    total = len(reach) or 1
    parts = [f"{REACH_WORDS[k]} {counts[k]} ({counts[k] / total:.1%})" for k in REACH_WORDS]
    return ", ".join(parts) + f"; reachable {1 - counts['none'] / total:.1%}"


def _print_reach_gain(gw: Gateway, out: Console, settings: Settings, path: Path) -> None:
    """Load the population directory and show who it makes reachable, by which route."""
    from engine.analysis import reports
    from engine.loop import tasks
    from loaders.read import read_file

    day = "2022-04-09"
    before = reports.reach_of_positive_pools(gw, day)
    unassigned = len(tasks.all_tasks(gw, tasks.UNASSIGNED))
    out.print(
        f"\nReaching the {len(before)} members of the positive pools of {day}:", highlight=False
    )
    out.print(f"  before the directory: {_reach_line(before)}", highlight=False)
    entries = read_file(path, "directory")
    summary = writes.load(
        DirectAudit(gw),
        me(),
        lambda: write.load_records(gw, "directory", entries, path.name, settings),
        target=path.name,
    )
    out.print(f"  {summary.line()}", highlight=False)
    after = reports.reach_of_positive_pools(gw, day)
    out.print(f"  after the directory:  {_reach_line(after)}", highlight=False)
    gained = Counter(after.get(key, "none") for key, route in before.items() if route == "none")
    now = sum(n for route, n in gained.items() if route != "none")
    out.print(
        f"  unreachable before, reachable now: {now} of {sum(gained.values())} ("
        + ", ".join(f"{REACH_WORDS[k]} {gained[k]}" for k in REACH_WORDS if k != "none")
        + ")",
        highlight=False,
    )
    still = len(tasks.all_tasks(gw, tasks.UNASSIGNED))
    out.print(
        f"  open and closed tasks in the unassigned queue: {unassigned} before, {still} after "
        "(the rest moved to the district of the directory's residence)",
        highlight=False,
    )


def _better_example(best: TraceJSON | None, trace: TraceJSON) -> TraceJSON | None:
    """A positive 10-in-1 tube with 10 persons, one of them household-separated if any."""
    tube = trace["tube"]
    if tube["result"] != "positive" or tube["pool_size"] != 10 or len(trace["persons"]) != 10:
        return best
    separated = any(p["household_separated"] for p in trace["persons"])
    if best is None or (separated and not any(p["household_separated"] for p in best["persons"])):
        return trace
    return best


def _demo_key(gw: Gateway) -> str | None:
    key = writes.create_key(
        gw, DirectAudit(gw), me(), role="investigator", district=None, label="demo"
    )
    return f"Investigator API key: {key.secret}  (send as 'Authorization: Bearer ...')"
