"""What could not be stored, for investigators to look at."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import models
from api.deps import REVEAL_RESPONSES, AuditDep, GatewayDep, Investigator, ReasonQ, RevealQ
from engine.usecases import reads

router = APIRouter(tags=["load"])


@router.get("/v1/quarantine", response_model=models.QuarantinePage, responses=REVEAL_RESPONSES)
def get_quarantine(
    gw: GatewayDep,
    who: Investigator,
    log: AuditDep,
    cursor: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    reveal: RevealQ = False,
    reason: ReasonQ = None,
) -> dict[str, Any]:
    """Masked like every answer (ID numbers, phones, names in `raw` and `existing`);
    `reveal=true&reason=TEXT` shows them. The audit entry names the persons shown."""
    items, next_cursor = reads.read_quarantine_page(
        gw, log, who, cursor=cursor, limit=limit, reveal=reveal, reason=reason
    )
    return {"items": items, "next_cursor": next_cursor}
