"""What could not be stored, for investigators to look at."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import models
from api.deps import AuditDep, GatewayDep, Investigator
from engine.db import split_page
from loaders import write

router = APIRouter(tags=["load"])


@router.get("/v1/quarantine", response_model=models.QuarantinePage)
def get_quarantine(
    gw: GatewayDep,
    who: Investigator,
    log: AuditDep,
    cursor: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    items = write.list_quarantine(gw, after=cursor, limit=limit + 1)
    log.record(who, "quarantine", target=f"after {cursor or 'start'}")
    items, more = split_page(items, limit)
    for item in items:
        item["at"] = item["at"].to_native().isoformat() if item.get("at") else None
    return {"items": items, "next_cursor": items[-1]["qkey"] if more else None}
