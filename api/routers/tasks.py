"""District task lists and task status changes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import models
from api.deps import (
    REVEAL_RESPONSES,
    AuditDep,
    DistrictPath,
    GatewayDep,
    Reader,
    ReasonQ,
    RevealQ,
    TaskIdPath,
)
from engine.contract import TaskJSON, TaskStatus
from engine.usecases import reads

router = APIRouter(tags=["tasks"])


@router.get(
    "/v1/districts/{district_code}/tasks",
    response_model=models.TaskPage,
    responses=REVEAL_RESPONSES,
)
def get_district_tasks(
    district_code: DistrictPath,
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    status: Annotated[TaskStatus | None, Query(description="only tasks in this status")] = None,
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
    """Move a task (`to`: the new status; `outcome` with `closed` only). The lifecycle decides
    which moves a task's current status allows: any other is a 409 that names them."""
    return reads.move_task(
        gw,
        log,
        who,
        task_id,
        to=body.to.value,
        outcome=body.outcome.value if body.outcome is not None else None,
        note=body.note,
    )
