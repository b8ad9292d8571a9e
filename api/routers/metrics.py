"""`GET /metrics`: Prometheus text format, for keys of the ops role (or the admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.metrics import CONTENT_TYPE, Metrics
from api.security import require
from engine.access.keys import Principal

router = APIRouter(tags=["ops"])
Ops = Annotated[Principal, Depends(require("ops", "admin"))]


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format (version 0.0.4)",
        }
    },
)
async def metrics(request: Request, who: Ops) -> Response:
    """Request counts and latency by route template and status; records and quarantine by
    kind; open and overdue tasks by district; outbox and webhook deliveries; database up and
    the breaker. No personal data in any name or label."""
    source: Metrics = request.app.state.metrics
    return Response(await run_in_threadpool(source.render), media_type=CONTENT_TYPE)
