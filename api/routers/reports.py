"""Daily reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api import models
from api.deps import AuditDep, GatewayDep, Reader, SettingsDep
from engine import reports

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
    district = who.district if who.role == "district" else None
    rows = reports.run_report(gw, report, date, s.timezone, district)
    log.record(who, f"report_{report}", target=date)
    return {"report": report, "date": date, "items": rows, "next_cursor": None}
