"""What could not be stored, for investigators to look at."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import models
from api.deps import AuditDep, GatewayDep, Investigator, ReasonQ, RevealQ, check_reveal
from engine.db import split_page
from engine.views import quarantine_view
from loaders import write

router = APIRouter(tags=["load"])


@router.get("/v1/quarantine", response_model=models.QuarantinePage)
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
    check_reveal(who, reveal, reason)
    items, more = split_page(write.list_quarantine(gw, after=cursor, limit=limit + 1), limit)
    secret = gw.secret()
    shown: list[dict[str, Any]] = []
    person_ids: set[str] = set()
    for item in items:
        view, ids = quarantine_view(item, who, reveal, secret)
        view["at"] = view["at"].to_native().isoformat() if view.get("at") else None
        shown.append(view)
        person_ids.update(ids)
    log.record(
        who,
        "quarantine",
        target=f"after {cursor or 'start'}",
        person_ids=sorted(person_ids),
        reason=reason if reveal else None,
        detail="revealed" if reveal else "masked",
    )
    return {"items": shown, "next_cursor": items[-1]["qkey"] if more else None}
