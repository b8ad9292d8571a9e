"""Residence fallback and late re-routing.

A registration's residence is its own compound when that compound is known. When it is not,
the person's newest directory entry naming a known compound gives it (`source: directory`),
else the person's latest other registration at a known compound (`source: registration`).
Whenever a compound, a registration or a directory entry arrives, the fallback of the
registrations it may concern is refreshed and their open tasks move to the district it now
implies, the move written into each task's history. Runs inside the loader's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypedDict, cast

from neo4j import ManagedTransaction

from engine.store.gateway import Gateway


class Move(TypedDict):
    """An open task moved to the district its person's residence now implies."""

    task_id: str
    from_district: str
    to_district: str


def refresh_and_reroute(
    gw: Gateway, tx: ManagedTransaction, reg_keys: list[str], reason: str
) -> list[Move]:
    """Moves made: `task_id`, `from_district`, `to_district`. Registrations by their
    (source, record_id) key: a record_id alone may be two senders' registrations."""
    if not reg_keys:
        return []
    gw.run_in(tx, "refresh_residences", reg_keys=reg_keys)
    moves = gw.run_in(tx, "reroute_tasks", reg_keys=reg_keys, now=datetime.now(UTC), reason=reason)
    return cast(list[Move], moves)


def after_compounds(gw: Gateway, tx: ManagedTransaction, codes: list[str]) -> list[Move]:
    if not codes:
        return []
    ids = [r["reg_key"] for r in gw.run_in(tx, "registrations_near_compounds", codes=codes)]
    return refresh_and_reroute(gw, tx, ids, "the compound's master data arrived")


def after_registrations(gw: Gateway, tx: ManagedTransaction, reg_keys: list[str]) -> list[Move]:
    if not reg_keys:
        return []
    rows = gw.run_in(tx, "registrations_near_registrations", reg_keys=reg_keys)
    ids = [r["reg_key"] for r in rows]
    return refresh_and_reroute(gw, tx, ids, "another registration of the person arrived")


def after_directory(
    gw: Gateway,
    tx: ManagedTransaction,
    person_ids: list[str],
    reason: str = "a directory entry arrived",
) -> list[Move]:
    if not person_ids:
        return []
    rows = gw.run_in(tx, "registrations_of_persons", person_ids=sorted(set(person_ids)))
    ids = [r["reg_key"] for r in rows]
    return refresh_and_reroute(gw, tx, ids, reason)
