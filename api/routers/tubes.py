"""A tube's traceback."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter

from api import models
from api.deps import AuditDep, GatewayDep, Reader, ReasonQ, RevealQ, TubeCodePath, check_reveal
from engine.trace import trace_tube
from engine.views import trace_view

router = APIRouter(tags=["trace"])
TRACE_JSON = TypeAdapter(models.Trace)


@router.get("/v1/tubes/{tube_code}/trace", response_model=models.Trace)
async def get_trace(
    tube_code: TubeCodePath,
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    reveal: RevealQ = False,
    reason: ReasonQ = None,
) -> Response:
    check_reveal(who, reveal, reason)
    missing = f"No tube with code '{tube_code}' was registered or reported."

    def work() -> bytes:
        view = trace_view(trace_tube(gw, tube_code), who, reveal, missing)
        log.record(
            who,
            "trace",
            target=tube_code,
            person_ids=[p["person_id"] for p in view["persons"]],
            reason=reason if reveal else None,
            detail="revealed" if reveal else "masked",
        )
        # Checked against the response model once and encoded by pydantic: the bytes FastAPI
        # would send, made in the same worker thread as the database call (one hop).
        return TRACE_JSON.dump_json(TRACE_JSON.validate_python(view))

    return Response(await run_in_threadpool(work), media_type="application/json")
