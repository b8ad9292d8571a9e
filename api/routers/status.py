"""Person status for investigators and districts; the status-changes feed for the health-code
system (its only endpoint)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from api.deps import AuditDep, DayQ, GatewayDep, Reader
from api.security import require
from engine import status
from engine.keys import Principal

router = APIRouter(tags=["status"])
HealthCode = Annotated[Principal, Depends(require("health_code"))]


class StatusTube(BaseModel):
    tube_code: str
    pooled: bool
    result: str | None
    reported_at: str | None
    status: str


class PersonStatus(BaseModel):
    person_id: str
    date: str
    status: str
    since: str | None
    tubes: list[StatusTube]


class ChangePerson(BaseModel):
    person_id: str
    id_type: str | None
    id_number: str | None
    name: str | None


class StatusChange(BaseModel):
    change_id: int
    person: ChangePerson
    day: str
    status: str
    previous_status: str | None
    changed_at: str


class StatusChangePage(BaseModel):
    items: list[StatusChange]
    next_cursor: str | None


@router.get("/v1/persons/{person_id}/status", response_model=PersonStatus)
def get_person_status(
    person_id: Annotated[str, Path(max_length=64)],
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    date: DayQ,
) -> dict[str, Any]:
    answer = status.person_status(gw, person_id, date, who)
    log.record(who, "person_status", target=f"{person_id} {date}", person_ids=[person_id])
    return answer


@router.get("/v1/status-changes", response_model=StatusChangePage)
def get_status_changes(
    gw: GatewayDep,
    who: HealthCode,
    log: AuditDep,
    cursor: Annotated[str, Query(max_length=32)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    items, next_cursor = status.changes_page(gw, cursor, limit)
    log.record(
        who,
        "status_changes",
        target=f"after {cursor or 'start'}",
        person_ids=sorted({i["person"]["person_id"] for i in items}),
        detail=f"{len(items)} changes",
    )
    return {"items": items, "next_cursor": next_cursor}
