"""Daily reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api import models
from api.deps import AuditDep, GatewayDep, Reader, SettingsDep
from engine import policy

router = APIRouter(tags=["reports"])


@router.get("/v1/reports/{report}", response_model=models.Report)
def get_report(
    report: Annotated[
        str, Path(pattern=r"^(completeness|household-separation|zoning|timeliness)$")
    ],
    gw: GatewayDep,
    s: SettingsDep,
    who: Reader,
    log: AuditDep,
    date: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")],
) -> dict[str, Any]:
    rows = policy.read_report(gw, log, who, report, date, tz=s.timezone)
    return {"report": report, "date": date, "items": rows, "next_cursor": None}
