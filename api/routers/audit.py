"""The audit log, for admin keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from api import models
from api.deps import Admin, AuditDep, GatewayDep
from engine.access import audit
from engine.store.gateway import split_page

router = APIRouter(tags=["security"])


@router.get("/v1/audit", response_model=models.AuditPage)
def get_audit(
    gw: GatewayDep,
    who: Admin,
    log: AuditDep,
    since: datetime | None = None,
    key: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    if since is not None and since.tzinfo is None:
        raise HTTPException(422, "since needs a UTC offset, e.g. 2022-04-09T00:00:00+08:00.")
    if since is not None:
        try:
            since = since.astimezone(UTC)
        except OverflowError:
            raise HTTPException(
                422, "since is outside the calendar once moved to UTC; give a later time."
            ) from None
    log.flush()
    rows = audit.entries(gw, since=since, key_id=key, after=cursor, limit=limit + 1)
    rows, more = split_page(rows, limit)
    return {"items": rows, "next_cursor": rows[-1]["audit_id"] if more else None}
