"""Person status for investigators and districts; the status-changes feed for the health-code
system (its only endpoint)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import models
from api.deps import (
    AuditDep,
    DayQ,
    GatewayDep,
    HealthCode,
    PersonIdPath,
    Reader,
    SettingsDep,
    string_schema,
)
from engine.contract import PersonStatusJSON
from engine.usecases import reads

router = APIRouter(tags=["status"])
# The feed's cursor as the engine reads it (feed.status.changes_page): a change_id, the
# whitespace Python's strip() takes around it, or nothing for the start of the feed.
_SPACE = (
    r"\t\n\u000B\u000C\r\u001C-\u001F \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
)
FEED_CURSOR = f"^[{_SPACE}]*(?:[0-9]{{1,18}}[{_SPACE}]*)?$"


@router.get("/v1/persons/{person_id}/status", response_model=models.PersonStatus)
def get_person_status(
    person_id: PersonIdPath,
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    date: DayQ,
) -> PersonStatusJSON:
    return reads.read_person_status(gw, log, who, person_id, date)


@router.get("/v1/status-changes", response_model=models.StatusChangePage)
def get_status_changes(
    gw: GatewayDep,
    who: HealthCode,
    log: AuditDep,
    settings: SettingsDep,
    cursor: Annotated[
        str, string_schema(maxLength=32, pattern=FEED_CURSOR), Query(max_length=32)
    ] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    items, next_cursor = reads.read_status_changes(
        gw, log, who, cursor=cursor, limit=limit, with_names=settings.status_feed_names
    )
    return {"items": items, "next_cursor": next_cursor}
