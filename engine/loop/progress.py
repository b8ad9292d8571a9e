"""How far each district has closed the loop of a day: task counts per status, and which
open tasks are overdue. Scoped by the caller: a district key sees its own district only."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TypedDict

from engine import domain
from engine.access.keys import Principal
from engine.access.masking import scope_district
from engine.domain import parse_day
from engine.loop.tasks import STATUSES, overdue
from engine.store.gateway import Gateway


class DistrictProgress(TypedDict):
    district_code: str
    district: str | None
    statuses: dict[str, int]
    tasks: int


def is_overdue(task: Mapping[str, object], now: datetime | None = None) -> bool:
    """`task` as the task JSON has it: `status` and an ISO `created_at`."""
    created = task.get("created_at")
    return overdue(
        str(task["status"]),
        datetime.fromisoformat(created) if isinstance(created, str) and created else None,
        now or datetime.now(UTC),
    )


def latest_positive_day(gw: Gateway) -> str | None:
    day = gw.read("latest_positive_day").value_or_none()
    return None if day is None else str(day)


def loop_progress(gw: Gateway, who: Principal, day: str) -> list[DistrictProgress]:
    """Per residence district: how many of the day's tasks are in each status."""
    district = scope_district(who, None)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in gw.read("task_status_counts", day=parse_day(day), district_code=district):
        counts[r["district_code"]][r["status"]] += int(r["n"])
    return [
        {
            "district_code": code,
            "district": domain.district_name(code),
            "statuses": {s: c[s] for s in STATUSES},
            "tasks": sum(c.values()),
        }
        for code, c in sorted(counts.items())
    ]
