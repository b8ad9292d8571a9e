"""The event outbox: `status.changed`, `task.created` and `task.updated` events, written in the
transaction of the change that causes them, numbered in commit order. Webhook deliveries and
the status-changes feed read from here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from neo4j import ManagedTransaction

from engine import domain
from engine.errors import CursorExpired
from engine.store.gateway import Gateway

EVENT_TYPES = ("task.created", "task.updated", "status.changed")


def append(gw: Gateway, tx: ManagedTransaction, events: list[dict[str, Any]]) -> None:
    """Number and store events; call it last in the transaction (it takes the counter's lock,
    held until commit, so numbers follow commit order)."""
    if events:
        gw.run_in(tx, "append_events", events=events)


def task_events(
    gw: Gateway,
    tx: ManagedTransaction,
    created: set[str],
    updated: set[str],
    now: datetime | None = None,
    moves: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The `task.*` events of these tasks. `moves` (`task_id`, `from_district`, `to_district`,
    as engine/reach/reroute.py returns them): a task moved by late data is also told to each
    district it left, and its own event carries `moved_from` and `moved_to`."""
    moved: dict[str, list[dict[str, Any]]] = {}
    for m in moves or []:
        moved.setdefault(m["task_id"], []).append(m)
    ids = sorted(created | updated | set(moved))
    if not ids:
        return []
    at = (now or datetime.now(UTC)).isoformat()
    events = []
    for row in gw.run_in(tx, "task_event_rows", task_ids=ids):
        task = row["task"]
        trail = moved.get(task["task_id"], [])
        for m in trail:
            if m["from_district"] != task["district_code"]:
                # The district it left: which task and where it went, nothing of the person,
                # whom that district may no longer see (no person, record id or history).
                left = _task_data(task, None) | {"record_id": None, "history": []}
                left |= {"moved_from": m["from_district"], "moved_to": task["district_code"]}
                events.append(_event("task.updated", at, task, None, m["from_district"], left))
        data = _task_data(task, row["person"])
        if trail:
            data["moved_from"] = trail[0]["from_district"]
            data["moved_to"] = task["district_code"]
        kind = "task.created" if task["task_id"] in created else "task.updated"
        events.append(_event(kind, at, task, task.get("person_id"), task["district_code"], data))
    return events


def _task_data(task: dict[str, Any], person: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "task_id": task["task_id"],
        "kind": task["kind"],
        "status": task["status"],
        "outcome": task.get("outcome"),
        "tube_code": task["tube_code"],
        "district_code": task["district_code"],
        "record_id": task.get("record_id"),
        "person": person,
        "created_at": domain.iso(task.get("created_at")),
        "updated_at": domain.iso(task.get("updated_at")),
        "history": [json.loads(h) for h in task.get("history") or []],
    }


def _event(
    kind: str,
    at: str,
    task: dict[str, Any],
    person_id: str | None,
    district: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    """An outbox row: routed to subscriptions by `district_code`."""
    return {
        "type": kind,
        "occurred_at": at,
        "task_id": task["task_id"],
        "person_id": person_id,
        "district_code": district,
        "data": json.dumps(data, ensure_ascii=False),
    }


def event_data(event: dict[str, Any], district: str | None) -> dict[str, Any]:
    """The event's `data` as the subscriber may see it: city-wide subscriptions (made by the
    admin at the machine) see what the CLI sees; a district subscription sees what a district
    key sees (identity numbers masked; phones of its own residents kept)."""
    if event["type"] == "status.changed":
        data: dict[str, Any] = {
            "change_id": event.get("seq"),
            "person": {
                "person_id": event.get("person_id"),
                "id_type": event.get("id_type"),
                "id_number": event.get("id_number"),
                "name": event.get("name"),
            },
            "day": event.get("day"),
            "status": event.get("status"),
            "previous_status": event.get("previous_status"),
            "changed_at": event.get("occurred_at"),
            "district_code": event.get("district_code"),
        }
    else:
        data = json.loads(event["data"])
    if district is not None and data.get("person"):
        data["person"]["id_number"] = domain.mask_id_number(data["person"].get("id_number"))
    return data


def payload(event: dict[str, Any], district: str | None) -> dict[str, Any]:
    return {
        "id": event["event_id"],
        "type": event["type"],
        "occurred_at": event.get("occurred_at"),
        "data": event_data(event, district),
    }


def events_through(gw: Gateway) -> int:
    """The number of the last event the retention deleted (engine/ops/retention.py): every
    event up to it is gone."""
    return int(gw.read("retention_events_through").value() or 0)


def check_event_cursor(gw: Gateway, after: int) -> None:
    """A feed read after `after` would skip events the retention deleted: expired."""
    through = events_through(gw)
    if after < through:
        raise CursorExpired(
            f"The cursor {after} is older than the oldest kept event: events up to "
            f"{through} were deleted by the retention window. Resynchronise, then read on "
            f"from cursor {through}.",
            oldest_cursor=str(through),
        )
