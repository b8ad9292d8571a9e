"""Positive tubes of a day, each with its traceback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import models
from api.deps import (
    REVEAL_RESPONSES,
    AuditDep,
    DayQ,
    DistrictQ,
    GatewayDep,
    Reader,
    ReasonQ,
    RevealQ,
)
from engine.usecases import reads

router = APIRouter(tags=["tasks"])


@router.get("/v1/positives", response_model=models.PositivesPage, responses=REVEAL_RESPONSES)
def get_positives(
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    date: DayQ,
    cursor: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    reveal: RevealQ = False,
    reason: ReasonQ = None,
    district: DistrictQ = None,
) -> dict[str, Any]:
    items, next_cursor = reads.read_positives_page(
        gw,
        log,
        who,
        date,
        district=district,
        cursor=cursor,
        limit=limit,
        reveal=reveal,
        reason=reason,
    )
    return {"items": items, "next_cursor": next_cursor}
