"""Person status per sampling day, for the health-code system.

A person's status on a day is derived from the tubes they were swabbed into that day (and, for
a positive pool or an invalid tube, from their later samples). It is recomputed from the graph
in the transaction that writes a registration or a result, so the final status does not depend
on the order in which data arrives; a new registration whose tube has no result yet is told
from its own day alone (`after_new_registrations`). Every change is recorded as a
`status.changed` event."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from neo4j import ManagedTransaction
from neo4j.time import DateTime

from engine import domain
from engine.access.keys import Principal
from engine.access.masking import reaches
from engine.contract import PersonStatusJSON, StatusChangeJSON, StatusTubeJSON
from engine.errors import InputError, NotFound
from engine.feed import outbox
from engine.feed.outbox import NewEvent
from engine.records import StoredEvent
from engine.store.gateway import Gateway, split_page

STATUSES = ("pending", "negative", "pooled_positive", "released", "positive", "resample")
# When a person was swabbed into several tubes on one day, the most urgent status is shown.
_URGENCY = ("positive", "pooled_positive", "resample", "pending", "released", "negative")


class StatusReg(TypedDict):
    """A registration of the person, as `status_inputs` lists it (the bulk import builds the
    same from its files, with Python datetimes)."""

    record_id: str
    tube_code: str
    day: str | None
    collected_at: DateTime | datetime | None
    pool_size: int | None
    name: str | None
    members: int
    max_pool: int
    result: str | None
    was_positive: bool
    reported_at: DateTime | datetime | None
    district_code: str | None


class _PersonDay(TypedDict):
    """A row of `upsert_person_days` and `create_person_days`."""

    person_id: str
    day: str
    status: str
    district_code: str | None


@dataclass(frozen=True)
class DayStatus:
    person_id: str
    day: str
    status: str
    tubes: list[StatusTubeJSON]
    district_code: str | None
    name: str | None


def _when(value: DateTime | datetime | None) -> datetime | None:
    if value is None:
        return None
    native = value.to_native() if hasattr(value, "to_native") else value
    return native if isinstance(native, datetime) else None


def _pooled(reg: StatusReg) -> bool:
    return int(reg["members"] or 0) > 1 or int(reg["max_pool"] or 0) > 1


def _later(regs: list[StatusReg], reg: StatusReg) -> list[StatusReg]:
    """The person's samples taken after `reg` that have a result, earliest first."""
    at = _when(reg["collected_at"])
    if at is None:
        return []
    out = [r for r in regs if r["result"] is not None and (_when(r["collected_at"]) or at) > at]
    return sorted(out, key=lambda r: (_when(r["collected_at"]), r["record_id"]))


def tube_status(regs: list[StatusReg], reg: StatusReg) -> str:
    """The status one registration's tube gives its person (see the contract's table)."""
    result = reg["result"]
    if result is None:
        return "pending"
    if result == "negative" and reg.get("was_positive") and _pooled(reg):
        # A pooled tube once reported positive keeps its members in follow-up until their
        # single-tube retests: a later negative of the same tube (the trace's
        # `result_conflict`) releases nobody.
        result = "positive"
    if result == "negative":
        return "negative"
    if result == "positive":
        if not _pooled(reg):
            return "positive"
        for retest in _later(regs, reg):
            if not _pooled(retest) and retest["result"] in ("positive", "negative"):
                return "released" if retest["result"] == "negative" else "positive"
        return "pooled_positive"
    later = _later(regs, reg)
    return tube_status(regs, later[0]) if later else "resample"


def derive(person_id: str, regs: list[StatusReg]) -> list[DayStatus]:
    """Every sampling day of one person with its status; pure, for any arrival order."""
    by_day: dict[str, list[StatusReg]] = {}
    for reg in regs:
        if reg["day"] is not None:
            by_day.setdefault(reg["day"], []).append(reg)
    out: list[DayStatus] = []
    for day, day_regs in sorted(by_day.items()):
        day_regs.sort(key=lambda r: (str(domain.iso(r["collected_at"])), r["record_id"]))
        statuses = [tube_status(regs, r) for r in day_regs]
        status = min(statuses, key=_URGENCY.index)
        tubes: list[StatusTubeJSON] = [
            {
                "tube_code": r["tube_code"],
                "pooled": _pooled(r),
                "result": r["result"],
                "reported_at": domain.iso(r["reported_at"]),
                "status": s,
            }
            for r, s in zip(day_regs, statuses, strict=True)
        ]
        district = next((r["district_code"] for r in day_regs if r["district_code"]), None)
        out.append(DayStatus(person_id, day, status, tubes, district, day_regs[0]["name"]))
    return out


CHUNK = 2000  # persons per query: the query memory of a large results batch stays bounded


def refresh(
    gw: Gateway, tx: ManagedTransaction, tube_codes: Iterable[str], now: datetime
) -> list[NewEvent]:
    """Recompute the statuses of every person swabbed into these tubes, store the changed ones
    and return their `status.changed` events (to be appended to the outbox by the caller).
    Only the days these tubes can change are derived (`status_inputs` with the tubes): what
    a day of results costs does not grow with the days the store keeps. Events carry the
    person id only; identity is read with the feed."""
    codes = sorted(set(tube_codes))
    if not codes:
        return []
    person_ids = [r["person_id"] for r in gw.run_in(tx, "status_lock_persons", tube_codes=codes)]
    events: list[NewEvent] = []
    for start in range(0, len(person_ids), CHUNK):
        days: list[_PersonDay] = []
        chunk = person_ids[start : start + CHUNK]
        for row in gw.run_in(tx, "status_inputs", person_ids=chunk, tube_codes=codes):
            stored = {d["day"]: d["status"] for d in row["stored"]}
            for ds in derive(row["person_id"], row["regs"]):
                if row["from"] is not None and ds.day < row["from"]:
                    continue  # a day read in part (see status_inputs): it keeps its status
                previous = stored.get(ds.day)
                if previous != ds.status:
                    _change(days, events, ds, previous, now)
        if days:
            gw.run_in(tx, "upsert_person_days", days=days, now=now)
    return events


def _change(
    days: list[_PersonDay],
    events: list[NewEvent],
    ds: DayStatus,
    previous: str | None,
    now: datetime,
) -> None:
    """A person-day whose status changed: the row to store and its `status.changed` event."""
    days.append(
        {
            "person_id": ds.person_id,
            "day": ds.day,
            "status": ds.status,
            "district_code": ds.district_code,
        }
    )
    events.append(
        {
            "type": "status.changed",
            "occurred_at": now.isoformat(),
            "person_id": ds.person_id,
            "day": ds.day,
            "status": ds.status,
            "previous_status": previous,
            "district_code": ds.district_code,
        }
    )


# A tube without a result adds `pending` to its day; these stay as they are (see _URGENCY).
_AT_LEAST_PENDING = frozenset(_URGENCY[: _URGENCY.index("pending") + 1])


def after_new_registrations(
    gw: Gateway, tx: ManagedTransaction, facts: list[dict[str, Any]], now: datetime
) -> list[NewEvent]:
    """The statuses after registrations this transaction created and linked, from their
    `new_registration_facts` (which locked their tubes and persons). A registration whose tube
    has no result yet changes only its own day, and only by adding a pending tube: a new day
    is pending, a day at least as urgent as pending stays. Everything else (a tube with a result,
    a negative or released day, two registrations of one person-day) is derived again by
    `refresh`, from the days it can change on. Returns the `status.changed` events."""
    days: list[_PersonDay] = []
    events: list[NewEvent] = []
    whole: set[str] = set()
    for f in facts:
        if f["results"]:
            whole.add(f["tube_code"])
        elif f["day"] is None or (f["stored"] and f["stored"][0] in _AT_LEAST_PENDING):
            continue  # no day (derive skips it), or the day keeps its status
        elif f["stored"] or f["others_that_day"]:
            whole.add(f["tube_code"])
        else:
            ds = DayStatus(f["person_id"], f["day"], "pending", [], f["district_code"], None)
            _change(days, events, ds, None, now)
    if days:
        gw.run_in(tx, "create_person_days", days=days, now=now)
    return events + refresh(gw, tx, whole, now)


def refresh_tubes(gw: Gateway, codes: list[str], page: int = 2000) -> int:
    """Derive the statuses of the persons of these tubes, a page of tubes per transaction;
    returns events."""
    total = 0
    for start in range(0, len(codes), page):

        def work(tx: ManagedTransaction, c: list[str] = codes[start : start + page]) -> int:
            now = datetime.now(UTC)
            events = refresh(gw, tx, c, now)
            outbox.append(gw, tx, events)
            return len(events)

        total += gw.write_tx(work)
    return total


def person_status(gw: Gateway, person_id: str, date: str, who: Principal) -> PersonStatusJSON:
    """A person's status on one sampling day; a district sees only its own residents."""
    date = domain.parse_day(date)
    found = gw.read("person_day_status", person_id=person_id, day=date).row_or_none()
    # The id is not echoed: a district must not learn anything about other districts' people.
    missing = f"No status for this person on {date} (or not a resident of your district)."
    if found is None:
        raise NotFound(missing)
    if not reaches(who, found["districts"]):
        raise NotFound(missing)
    d = found["status"]
    # one row per person, every day
    [inputs] = gw.read("status_inputs", person_ids=[person_id], tube_codes=None)
    day = next((x for x in derive(person_id, inputs["regs"]) if x.day == date), None)
    return {
        "person_id": d["person_id"],
        "date": d["day"],
        "status": d["status"],
        "since": domain.iso(d["since"]),
        "tubes": day.tubes if day is not None else [],
    }


def change_json(event: StoredEvent) -> StatusChangeJSON:
    return {
        "change_id": event["seq"],
        "person": {
            "person_id": event["person_id"],
            "id_type": event.get("id_type"),
            "id_number": event.get("id_number"),
            "name": event.get("name"),
        },
        "day": event["day"],
        "status": event["status"],
        "previous_status": event.get("previous_status"),
        "changed_at": str(domain.iso(event["occurred_at"])),
    }


def changes_page(gw: Gateway, cursor: str, limit: int) -> tuple[list[StatusChangeJSON], str | None]:
    """Status changes in the order they happened, after `cursor` (the last change_id seen)."""
    cursor = cursor.strip()
    # ASCII digits within 64 bits only (str.isdigit() takes '²', which int() refuses, and a
    # longer number overflows the driver: both were a 500).
    if cursor and not re.fullmatch(r"[0-9]{1,18}", cursor):
        raise InputError(f"cursor '{cursor}' is not a change_id; pass next_cursor as given")
    after = int(cursor) if cursor else 0
    if cursor:  # a reader further back than the retention left events: resynchronise (410)
        outbox.check_event_cursor(gw, after)
    rows: list[StoredEvent] = [
        r["event"] for r in gw.read("status_changes_page", after=after, limit=limit + 1)
    ]
    rows, more = split_page(rows, limit)
    items = [change_json(e) for e in rows]
    # At the end of the feed next_cursor is null; a reader polls again later with the last
    # change_id it has seen.
    return items, (str(items[-1]["change_id"]) if more and items else None)
