"""The event outbox: `status.changed`, `task.created` and `task.updated` events, written in the
transaction of the change that causes them, numbered in commit order. Webhook deliveries and
the status-changes feed read from here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NotRequired, TypedDict

from neo4j import ManagedTransaction

from engine import domain
from engine.errors import CursorExpired
from engine.reach.reroute import Move
from engine.records import StoredEvent, StoredHistory, StoredTask
from engine.store.gateway import Gateway

EVENT_TYPES = ("task.created", "task.updated", "status.changed")


class StatusEvent(TypedDict):
    """A `status.changed` event to append (engine/feed/status.py)."""

    type: str
    occurred_at: str
    person_id: str
    day: str
    status: str
    previous_status: str | None
    district_code: str | None


class TaskEvent(TypedDict):
    """A `task.*` event to append: its `data` as JSON text."""

    type: str
    occurred_at: str
    task_id: str
    person_id: str | None
    district_code: str
    data: str


NewEvent = StatusEvent | TaskEvent


class EventPerson(TypedDict):
    """The person of a task event (`task_event_rows`)."""

    person_id: str
    id_type: str | None
    id_number: str | None
    name: str | None
    phone: str | None


class TaskData(TypedDict):
    """A `task.*` event's data."""

    task_id: str
    kind: str
    status: str
    outcome: str | None
    tube_code: str
    district_code: str
    record_id: str | None
    person: EventPerson | None
    created_at: str | None
    updated_at: str | None
    history: list[StoredHistory]
    moved_from: NotRequired[str | None]
    moved_to: NotRequired[str]


class _ChangePerson(TypedDict):
    person_id: str | None
    id_type: str | None
    id_number: str | None
    name: str | None


class StatusData(TypedDict):
    """A `status.changed` event's data: the feed's change, with the district."""

    change_id: int | None
    person: _ChangePerson
    day: str | None
    status: str | None
    previous_status: str | None
    changed_at: str | None
    district_code: str | None


class Payload(TypedDict):
    """What a webhook delivery posts."""

    id: str
    type: str
    occurred_at: str | None
    data: StatusData | TaskData


def append(gw: Gateway, tx: ManagedTransaction, events: Sequence[NewEvent]) -> None:
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
    moves: list[Move] | None = None,
) -> list[TaskEvent]:
    """The `task.*` events of these tasks. `moves` (`task_id`, `from_district`, `to_district`,
    as engine/reach/reroute.py returns them): a task moved by late data is also told to each
    district it left, and its own event carries `moved_from` and `moved_to`."""
    moved: dict[str, list[Move]] = {}
    for m in moves or []:
        moved.setdefault(m["task_id"], []).append(m)
    ids = sorted(created | updated | set(moved))
    if not ids:
        return []
    at = (now or datetime.now(UTC)).isoformat()
    events: list[TaskEvent] = []
    for row in gw.run_in(tx, "task_event_rows", task_ids=ids):
        task: StoredTask = row["task"]
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


def _task_data(task: StoredTask, person: EventPerson | None) -> TaskData:
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
    task: StoredTask,
    person_id: str | None,
    district: str,
    data: TaskData,
) -> TaskEvent:
    """An outbox row: routed to subscriptions by `district_code`."""
    return {
        "type": kind,
        "occurred_at": at,
        "task_id": task["task_id"],
        "person_id": person_id,
        "district_code": district,
        "data": json.dumps(data, ensure_ascii=False),
    }


def event_data(event: StoredEvent, district: str | None) -> StatusData | TaskData:
    """The event's `data` as the subscriber may see it: city-wide subscriptions (made by the
    admin at the machine) see what the CLI sees; a district subscription sees what a district
    key sees (identity numbers masked; phones of its own residents kept)."""
    data: StatusData | TaskData
    if event["type"] == "status.changed":
        data = {
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
            "changed_at": domain.iso(event.get("occurred_at")),
            "district_code": event.get("district_code"),
        }
    else:
        task_data: TaskData = json.loads(event["data"])
        data = task_data
    person = data["person"]
    if district is not None and person:
        person["id_number"] = domain.mask_id_number(person.get("id_number"))
    return data


def payload(event: StoredEvent, district: str | None) -> Payload:
    return {
        "id": event["event_id"],
        "type": event["type"],
        "occurred_at": domain.iso(event.get("occurred_at")),
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
