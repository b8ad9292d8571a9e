"""The cost of person statuses and the event outbox on the online load rate.

Same run, same server, same city: the registrations and results files are loaded with the
status/outbox step switched off (its two functions replaced by no-ops, which is what the loader
did before it existed) and on, alternately, and rows/s are printed for each.

    python -m bench.status_cost [--rows 50000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.devdb import connect, wipe
from engine.feed import outbox, status
from engine.settings import get_settings
from engine.store.gateway import Gateway
from loaders import write
from loaders.generate import generate_city
from loaders.read import read_file


@contextmanager
def without_status_and_outbox() -> Iterator[None]:
    refresh, task_events = status.refresh, outbox.task_events

    def no_events(*_: Any, **__: Any) -> list[dict[str, Any]]:
        return []

    status.refresh, outbox.task_events = no_events, no_events  # type: ignore[assignment]
    try:
        yield
    finally:
        status.refresh, outbox.task_events = refresh, task_events  # type: ignore[assignment]


def load_city(gw: Gateway, city: Path) -> tuple[int, float, int]:
    settings = get_settings()
    wipe(gw)
    gw._secret = None
    gw.apply_schema()
    write.load_records(
        gw, "compounds", read_file(city / "compounds.csv", "compounds"), "compounds", settings
    )
    rows = 0
    started = time.perf_counter()
    for kind in ("registrations", "results"):
        summary = write.load_records(
            gw, kind, read_file(city / f"{kind}.csv", kind), kind, settings
        )
        rows += summary.read
    seconds = time.perf_counter() - started
    events = gw.read("events_after", after=0, limit=10_000_000)
    return rows, seconds, len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000, help="registrations in the city")
    parser.add_argument("--rounds", type=int, default=1, help="off/on pairs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tubetrace-status-cost-"))
    try:
        stats = generate_city(work, seed=2022, registrations=args.rows, positive_rate=0.01)
        gw = connect(get_settings())
        try:
            figures: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(args.rounds):
                for mode in ("off", "on"):
                    if mode == "off":
                        with without_status_and_outbox():
                            rows, seconds, events = load_city(gw, work)
                    else:
                        rows, seconds, events = load_city(gw, work)
                    figures[mode].append(rows / seconds)
                    print(
                        f"status/outbox {mode:3}: {rows} rows ({stats.registrations} "
                        f"registrations + results) in {seconds:.1f} s = {rows / seconds:.0f} "
                        f"rows/s, {events} events",
                        flush=True,
                    )
            off = sum(figures["off"]) / len(figures["off"])
            on = sum(figures["on"]) / len(figures["on"])
            print(
                f"load rate without status/outbox {off:.0f} rows/s, with {on:.0f} rows/s: "
                f"{on / off:.2f}x ({(1 - on / off) * 100:.0f}% slower)"
            )
        finally:
            wipe(gw)
            gw.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
