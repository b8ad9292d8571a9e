"""`tubetrace load ... --bulk`: the initial import of a whole round into an empty database
through `neo4j-admin database import full`, then schema and task dispatch."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path

from rich.console import Console

from engine.errors import InputError
from engine.feed import status
from engine.model import RecordKind
from engine.settings import Settings
from engine.store.gateway import Gateway, connect
from loaders import bulk_files
from loaders.read import Item, read_file
from loaders.write import Summary

Inputs = dict[str, tuple[str, Iterable[Item]]]

# what --bulk imports (the directory is loaded online)
KINDS = tuple(k.value for k in RecordKind if k is not RecordKind.DIRECTORY)


def _inputs(kind: str, path: Path, encoding: str | None = None) -> Inputs:
    if kind == "all":
        if not path.is_dir():
            raise InputError(
                f"{path}: with 'all', give a folder holding compounds, "
                "registrations and results files"
            )
        found: Inputs = {}
        for k in KINDS:
            files = sorted(
                p for p in path.iterdir() if p.stem == k and p.suffix in (".csv", ".jsonl", ".xlsx")
            )
            if files:
                found[k] = (files[0].name, read_file(files[0], k, encoding))
        return found
    if kind not in KINDS:
        raise InputError(f"unknown kind '{kind}'; use {', '.join(KINDS)} or all")
    return {kind: (path.name, read_file(path, kind, encoding))}


def bulk_load(
    settings: Settings,
    kind: str,
    path: Path,
    out: Console,
    encoding: str | None = None,
    sender: str = "file",
    on_files_written: Callable[[], None] | None = None,
    on_loaded: Callable[[Gateway, list[Summary]], None] | None = None,
) -> dict[str, float]:
    """`sender` is the registrations' source, as `--source` of the online load: the same
    (source, record_id) keys whichever way a round goes in. `on_loaded` gets the gateway and
    the summaries once the database is back (the CLI audits the import then)."""
    if settings.neo4j_uri:
        raise InputError(
            "--bulk imports with the managed server's own neo4j-admin; it cannot "
            "import into a server at NEO4J_URI. Load online instead."
        )
    from engine.server.managed import ManagedServer

    server = ManagedServer(settings)
    with closing(connect(settings)) as gw:
        if gw.read("count_nodes_except_meta").value():
            raise InputError(
                "--bulk is for the initial import into an empty database; this "
                "one holds data. Load online, or start from a new TUBETRACE_HOME."
            )
        secret = gw.secret()
    timings: dict[str, float] = {}
    server.stop()  # its memory is the import's
    t0 = time.perf_counter()
    target = server.import_dir / "bulk"
    plan = bulk_files.write_import_files(
        target, _inputs(kind, path, encoding), settings, secret, sender
    )
    timings["write_csv_s"] = time.perf_counter() - t0
    if on_files_written is not None:  # the benchmark frees the disk of its generated input
        on_files_written()
    t1 = time.perf_counter()
    server.admin(*bulk_files.import_args(target, settings.neo4j_database))
    timings["neo4j_admin_import_s"] = time.perf_counter() - t1
    shutil.rmtree(target, ignore_errors=True)  # as large as the store; not needed any more
    server.start()
    t2 = time.perf_counter()
    with closing(connect(settings)) as gw:
        timings["schema_s"] = time.perf_counter() - t2
        bulk_files.store_conflicts(gw, plan.conflicts)
        t3 = time.perf_counter()
        bulk_files.mark_duplicates(gw, plan.duplicates)
        dispatched = bulk_files.dispatch_all(gw)
        timings["dispatch_s"] = time.perf_counter() - t3
        t4 = time.perf_counter()
        status.refresh_tubes(gw, sorted(plan.status_tubes))
        timings["status_s"] = time.perf_counter() - t4
        if on_loaded is not None:
            on_loaded(gw, list(plan.summaries.values()))
    for summary in plan.summaries.values():
        out.print(summary.line(), highlight=False)
    out.print(
        f"bulk import: {sum(s.read for s in plan.summaries.values())} lines, "
        f"{dispatched} results dispatched; "
        + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()),
        highlight=False,
    )
    return timings
