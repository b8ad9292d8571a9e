"""District task lists and task status changes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import models
from api.deps import AuditDep, DistrictPath, GatewayDep, Reader, ReasonQ, RevealQ, TaskIdPath
from engine.contract import TaskJSON
from engine.usecases import reads

router = APIRouter(tags=["tasks"])


@router.get("/v1/districts/{district_code}/tasks", response_model=models.TaskPage)
def get_district_tasks(
    district_code: DistrictPath,
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    status: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    reveal: RevealQ = False,
    reason: ReasonQ = None,
) -> dict[str, Any]:
    items, next_cursor = reads.read_tasks_page(
        gw,
        log,
        who,
        district_code,
        status=status,
        cursor=cursor,
        limit=limit,
        reveal=reveal,
        reason=reason,
    )
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/tasks/{task_id}/transitions", response_model=models.Task)
def post_transition(
    task_id: TaskIdPath,
    body: models.TransitionIn,
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
) -> TaskJSON:
    return reads.move_task(gw, log, who, task_id, to=body.to, outcome=body.outcome, note=body.note)
