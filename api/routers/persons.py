"""A person's contact rings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import models
from api.deps import (
    REVEAL_RESPONSES,
    AuditDep,
    GatewayDep,
    Investigator,
    PersonIdPath,
    ReasonQ,
    RevealQ,
)
from engine.analysis import reports
from engine.contract import RingsJSON
from engine.usecases import reads

router = APIRouter(tags=["tasks"])


@router.get(
    "/v1/persons/{person_id}/rings", response_model=models.Rings, responses=REVEAL_RESPONSES
)
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
) -> RingsJSON:
    return reads.read_rings(
        gw,
        log,
        who,
        person_id,
        cursor=cursor,
        limit=limit,
        depth=depth,
        reveal=reveal,
        reason=reason,
    )
