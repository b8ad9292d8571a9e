"""Stored records as the queries return them (node properties), where more than one module
reads them: a task (engine/loop/tasks.py, engine/feed/outbox.py) and an outbox event
(engine/feed/outbox.py, engine/feed/status.py, engine/push/webhooks.py). A property that is
null is not stored: an event's optional keys are absent, not null."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from neo4j.time import DateTime


class StoredTask(TypedDict):
    """A task node (cypher/tasks.cypher); `history` holds `StoredHistory` entries as JSON."""

    task_id: str
    kind: str
    status: str
    outcome: NotRequired[str | None]
    tube_code: str
    person_id: str
    record_id: str
    district_code: str
    compound_code: NotRequired[str | None]
    result_at: NotRequired[DateTime | None]
    collected_at: NotRequired[DateTime | None]
    result_day: NotRequired[str | None]
    repeat_positive_pool: NotRequired[bool]
    sort_key: str
    history: NotRequired[list[str]]
    created_at: DateTime
    updated_at: NotRequired[DateTime]


class StoredHistory(TypedDict):
    """An entry of a task's history (`outcome` only when it has one)."""

    status: str
    at: str
    actor: str
    note: str | None
    outcome: NotRequired[str]


class StoredEvent(TypedDict):
    """An outbox event (cypher/status.cypher, append_events), with its person's identity where
    a status change is read for the feed or a delivery."""

    seq: int
    event_id: str
    type: str
    occurred_at: str
    district_code: NotRequired[str]
    person_id: NotRequired[str]
    task_id: NotRequired[str]
    data: NotRequired[str]  # a task event's data, as JSON
    day: NotRequired[str]
    status: NotRequired[str]
    previous_status: NotRequired[str]
    id_type: NotRequired[str | None]
    id_number: NotRequired[str | None]
    name: NotRequired[str | None]
