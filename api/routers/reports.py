"""Daily reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api import models
from api.deps import AuditDep, DayQ, GatewayDep, Reader, SettingsDep, string_schema
from engine.analysis import reports
from engine.usecases import reads

router = APIRouter(tags=["reports"])


@router.get("/v1/reports/{report}", response_model=models.Report)
def get_report(
    report: Annotated[
        str,
        string_schema(enum=list(reports.REPORTS)),
        Path(pattern=f"^({'|'.join(reports.REPORTS)})$", description="the daily report"),
    ],
    gw: GatewayDep,
    s: SettingsDep,
    who: Reader,
    log: AuditDep,
    date: DayQ,
) -> dict[str, Any]:
    rows = reads.read_report(gw, log, who, report, date, tz=s.timezone)
    return {"report": report, "date": date, "items": rows, "next_cursor": None}
