"""Probes. `/livez`: the process answers (a Kubernetes liveness probe: restart it when not).
`/healthz`: the process answers and Neo4j answers (503 with Retry-After when not; the contract's
and the image's health check). `/readyz`: ready for traffic (a readiness probe): the database
answers, the schema is applied (no index still filling), the audit journals of stopped API
processes are replayed; 503 with Retry-After and the failing checks otherwise. It also shows
whether the server has tubetrace's procedures (engine/server/procedures), without failing on it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api import models
from api.deps import GatewayDep
from api.errors import RETRY_AFTER_S, error_answer
from engine.errors import DatabaseUnavailable
from engine.ops import backup
from engine.server.managed import PROCEDURES
from engine.store.gateway import Gateway

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=models.Health)
def healthz(gw: GatewayDep) -> models.Health:
    gw.read("ping")  # DatabaseUnavailable -> 503 database_unavailable, Retry-After
    return models.Health(status="ok", neo4j="up")


@router.get("/livez", response_model=models.Live)
async def livez() -> models.Live:
    return models.Live(status="alive")


def readiness(gw: Gateway, journals_replayed: bool) -> dict[str, str]:
    checks = {"database": "down", "schema": "unknown", "journals": "unknown"}
    checks["procedures"] = "unknown"
    try:
        gw.read("ping")
        checks["database"] = "up"
        filling = gw.read("indexes_not_online") if gw.schema_applied else None
        present = set(gw.read("tubetrace_procedures").value())
    except DatabaseUnavailable:
        return checks
    missing = [name for name in PROCEDURES if name not in present]
    checks["procedures"] = "installed" if not missing else f"missing {', '.join(missing)}"
    if filling is None:
        checks["schema"] = "pending"
    else:
        checks["schema"] = "applied" if not filling else f"{len(filling)} indexes filling"
    checks["journals"] = "replayed" if journals_replayed else "pending"
    return checks


READY = {"database": "up", "schema": "applied", "journals": "replayed"}
# `procedures` is shown, not required: without tubetrace's procedures only exposure and attack
# rates fail; traces, loads and tasks must stay in service (docs/operations.md).


@router.get("/readyz", response_model=models.Ready)
async def readyz(request: Request, gw: GatewayDep) -> Any:
    """200 when ready; otherwise 503 (the error envelope with `Retry-After` and `checks`: each
    check's state, e.g. `{"database": "down"}` or `{"schema": "2 indexes filling"}`)."""
    writer = getattr(request.app.state, "audit", None)
    replayed = writer is None or writer.journals_replayed
    checks = await run_in_threadpool(readiness, gw, replayed)
    if all(checks[k] == v for k, v in READY.items()):
        return models.Ready(status="ready", checks=checks)
    note = backup.maintenance(request.app.state.settings.home)
    failing = ", ".join(f"{k} {v}" for k, v in checks.items() if k in READY and READY[k] != v)
    message = f"Not ready: {failing}."
    retry = RETRY_AFTER_S
    if note is not None:
        message += f" {note.sentence()}"
        retry = note.retry_after_s()
    answer: JSONResponse = error_answer(503, message, {"Retry-After": str(retry)}, checks=checks)
    return answer
