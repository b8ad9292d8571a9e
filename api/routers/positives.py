"""Positive tubes of a day, each with its traceback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import models
from api.deps import AuditDep, DistrictQ, GatewayDep, Reader, ReasonQ, RevealQ, check_reveal
from engine import reports
from engine.errors import NotFound
from engine.views import person_view

router = APIRouter(tags=["tasks"])


@router.get("/v1/positives", response_model=models.PositivesPage)
def get_positives(
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    date: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")],
    cursor: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    reveal: RevealQ = False,
    reason: ReasonQ = None,
    district: DistrictQ = None,
) -> dict[str, Any]:
    check_reveal(who, reveal, reason)
    if who.role == "district":
        if district is not None and district != who.district:
            raise NotFound(f"No district '{district}'.")
        district = who.district
    items, next_cursor = reports.positives_page(gw, date, district, cursor, limit)
    for item in items:
        item["trace"]["persons"] = [person_view(p, who, reveal) for p in item["trace"]["persons"]]
    log.record(
        who,
        "positives",
        target=date,
        person_ids=[p["person_id"] for i in items for p in i["trace"]["persons"]],
        reason=reason if reveal else None,
    )
    return {"items": items, "next_cursor": next_cursor}
