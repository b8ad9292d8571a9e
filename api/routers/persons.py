"""A person's contact rings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import models
from api.deps import (
    AuditDep,
    GatewayDep,
    Investigator,
    PersonIdPath,
    ReasonQ,
    RevealQ,
    check_reveal,
)
from engine import reports
from engine.views import person_view

router = APIRouter(tags=["tasks"])


@router.get("/v1/persons/{person_id}/rings", response_model=models.Rings)
def get_rings(
    person_id: PersonIdPath,
    gw: GatewayDep,
    who: Investigator,
    log: AuditDep,
    cursor: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=reports.RING2_MAX_PAGE)] = 100,
    depth: Annotated[int, Query(ge=1, le=2)] = 2,
    reveal: RevealQ = False,
    reason: ReasonQ = None,
) -> dict[str, Any]:
    check_reveal(who, reveal, reason)
    answer = reports.rings(gw, person_id, cursor, limit)
    answer["ring1"] = [person_view(p, who, reveal) for p in answer["ring1"]]
    if depth < 2:
        answer["ring2"] = {"items": [], "next_cursor": None}
    answer["ring2"]["items"] = [person_view(p, who, reveal) for p in answer["ring2"]["items"]]
    log.record(
        who,
        "rings",
        target=person_id,
        person_ids=[p["person_id"] for p in answer["ring1"]]
        + [p["person_id"] for p in answer["ring2"]["items"]],
        reason=reason if reveal else None,
    )
    return answer
