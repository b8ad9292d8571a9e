"""A tube's traceback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api import models
from api.deps import AuditDep, GatewayDep, Reader, ReasonQ, RevealQ, check_reveal
from engine.trace import trace_tube
from engine.views import trace_view

router = APIRouter(tags=["trace"])


@router.get("/v1/tubes/{tube_code}/trace", response_model=models.Trace)
def get_trace(
    tube_code: str,
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    reveal: RevealQ = False,
    reason: ReasonQ = None,
) -> dict[str, Any]:
    check_reveal(who, reveal, reason)
    missing = f"No tube with code '{tube_code}' was registered or reported."
    view = trace_view(trace_tube(gw, tube_code), who, reveal, missing)
    log.record(
        who,
        "trace",
        target=tube_code,
        person_ids=[p["person_id"] for p in view["persons"]],
        reason=reason if reveal else None,
        detail="revealed" if reveal else "masked",
    )
    return view
