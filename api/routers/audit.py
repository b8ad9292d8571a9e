"""The audit log, for admin keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BeforeValidator

from api import models
from api.deps import Admin, AuditDep, GatewayDep, string_schema
from engine.access import audit
from engine.store.gateway import split_page

router = APIRouter(tags=["security"])

# `since` as RFC 3339 says a date-time (what the OpenAPI format says; pydantic alone would also
# take 1649462400 or 2022-04-09 00:00), in years 0002 to 9998 (a time of year 1 or 9999 can
# fall off the calendar once moved to UTC), without leap seconds (Python has none).
SINCE_PATTERN = (
    r"^(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9])"
    r"-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9](?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?$"
)
_SINCE = re.compile(SINCE_PATTERN)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, str) and not _SINCE.fullmatch(value):
        raise ValueError(
            "since is not a date-time as RFC 3339 writes it, years 0002 to 9998, e.g. "
            "2022-04-09T00:00:00+08:00"
        )
    return value


SinceQ = Annotated[
    Annotated[datetime, string_schema(format="date-time", pattern=SINCE_PATTERN)] | None,
    BeforeValidator(_rfc3339),
    Query(description="entries at or after this time (with its UTC offset)"),
]


@router.get("/v1/audit", response_model=models.AuditPage)
def get_audit(
    gw: GatewayDep,
    who: Admin,
    log: AuditDep,
    since: SinceQ = None,
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
