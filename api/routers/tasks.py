"""District task lists and task status changes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import models
from api.deps import (
    AuditDep,
    DistrictPath,
    GatewayDep,
    Reader,
    ReasonQ,
    RevealQ,
    TaskIdPath,
    check_reveal,
)
from engine import tasks
from engine.errors import NotFound
from engine.views import person_view

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
    check_reveal(who, reveal, reason)
    if who.role == "district" and district_code != who.district:
        raise NotFound(f"No district '{district_code}'.")
    items, next_cursor = tasks.tasks_page(gw, district_code, status, cursor, limit)
    for item in items:
        if item["person"] is not None:
            item["person"] = person_view(item["person"], who, reveal)
    log.record(
        who,
        "district_tasks",
        target=district_code,
        person_ids=[i["person"]["person_id"] for i in items if i["person"]],
        reason=reason if reveal else None,
    )
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/tasks/{task_id}/transitions", response_model=models.Task)
def post_transition(
    task_id: TaskIdPath,
    body: models.TransitionIn,
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
) -> dict[str, Any]:
    task = tasks.task_view(gw, tasks.transition(gw, task_id, who, body.to, body.outcome, body.note))
    if task["person"] is not None:
        task["person"] = person_view(task["person"], who, False)
    log.record(
        who,
        "task_transition",
        target=task_id,
        person_ids=[task["person"]["person_id"]] if task["person"] else [],
        detail=f"to {body.to}" + (f" ({body.outcome})" if body.outcome else ""),
    )
    return task
