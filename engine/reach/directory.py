"""The population directory beyond loading: an operator lists a person's entries and removes a
wrong or hostile one (`DELETE /v1/directory/{entry_key}`, `tubetrace directory remove`); the
person's residence fallback is then refreshed and their tasks move as for late data."""

from __future__ import annotations

from typing import TypedDict, cast

from neo4j import ManagedTransaction

from engine import domain
from engine.contract import DirectoryRemovalJSON
from engine.errors import NotFound
from engine.feed import outbox
from engine.reach import reroute
from engine.store.gateway import Gateway


class DirectoryEntry(TypedDict):
    """A directory entry as `entries` lists it (`updated_at` as ISO text)."""

    entry_key: str
    person_id: str
    name: str | None
    phone: str | None
    phone_owner: str | None
    residence_compound_code: str | None
    source: str
    updated_at: str | None
    flags: list[str]
    file: str | None
    line: int | None


def entries(gw: Gateway, person_id: str) -> list[DirectoryEntry]:
    """Every directory entry of one person, with its key (what `remove` takes)."""
    out = []
    for row in gw.read("directory_entries_of_person", person_id=person_id):
        entry = cast(DirectoryEntry, dict(row["entry"]))
        entry["updated_at"] = domain.iso(entry.get("updated_at"))
        entry["flags"] = sorted(entry.get("flags") or [])
        out.append(entry)
    return out


def remove(gw: Gateway, entry_key: str) -> DirectoryRemovalJSON:
    """Delete one entry; in the same transaction the person's residences are refreshed, their
    tasks re-routed (the move in each open task's history) and the tasks' events written."""

    def work(tx: ManagedTransaction) -> DirectoryRemovalJSON:
        removed = gw.run_in(tx, "remove_directory_entry", entry_key=entry_key).row_or_none()
        if removed is None:
            raise NotFound(f"No directory entry with key '{entry_key}'.")
        person_id = removed["person_id"]
        moved = reroute.after_directory(
            gw, tx, [person_id] if person_id else [], "a directory entry was removed"
        )
        events = outbox.task_events(gw, tx, set(), set(), moves=moved)
        outbox.append(gw, tx, events)
        return {"entry_key": entry_key, "person_id": person_id, "tasks_moved": len(moved)}

    return gw.write_tx(work)
