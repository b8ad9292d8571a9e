"""A development database, for the benchmark and the tests: the product's query book plus the
benchmark's own queries (`bench/cypher/`, not shipped with the package), and `wipe`, which
empties the database between runs (no product command deletes everything)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.settings import Settings
from engine.store import gateway
from engine.store.gateway import Gateway
from engine.store.querybook import QueryBook, book_with

BENCH_CYPHER = Path(__file__).resolve().parent / "cypher"


def dev_book(*more: Path) -> QueryBook:
    """cypher/ (the product's), bench/cypher/ and any other folders (the tests')."""
    return book_with(BENCH_CYPHER, *more)


def connect(settings: Settings, **options: Any) -> Gateway:
    """`engine.store.gateway.connect` with the benchmark's queries."""
    options.setdefault("queries", dev_book())
    return gateway.connect(settings, **options)


def wipe(gw: Gateway) -> None:
    """Delete every node but the installation's person-id key. The audit chain goes last, in
    one transaction under its head's lock: an API still flushing its journal meanwhile either
    lands before it (and goes) or starts a fresh chain, never one with seqs of the old."""
    gw.memo.clear()
    gw.run_auto("wipe_all")
    gw.write("wipe_audit_chain")
