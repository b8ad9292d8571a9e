"""A tube's traceback."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter

from api import models
from api.deps import REVEAL_RESPONSES, AuditDep, GatewayDep, Reader, ReasonQ, RevealQ, TubeCodePath
from engine.usecases import reads

router = APIRouter(tags=["trace"])
TRACE_JSON = TypeAdapter(models.Trace)


# `:path`: a tube code may hold `/` (sent as it is, or as %2F).
@router.get(
    "/v1/tubes/{tube_code:path}/trace", response_model=models.Trace, responses=REVEAL_RESPONSES
)
async def get_trace(
    tube_code: TubeCodePath,
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    reveal: RevealQ = False,
    reason: ReasonQ = None,
) -> Response:
    def work() -> bytes:
        view = reads.read_trace(gw, log, who, tube_code, reveal=reveal, reason=reason)
        # Checked against the response model once and encoded by pydantic: the bytes FastAPI
        # would send, made in the same worker thread as the database call (one hop).
        return TRACE_JSON.dump_json(TRACE_JSON.validate_python(view))

    return Response(await run_in_threadpool(work), media_type="application/json")
