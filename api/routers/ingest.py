"""Registrations and results sent by collector apps and labs; population directory entries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api import models
from api.deps import Admin, AuditDep, Collector, GatewayDep, Lab, SettingsDep, check_batch
from engine import audit
from engine.db import Gateway
from engine.keys import Principal
from engine.settings import Settings
from loaders import write

router = APIRouter(tags=["load"])


def _load(
    kind: str,
    records: list[dict[str, Any]],
    gw: Gateway,
    s: Settings,
    who: Principal,
    log: audit.AuditWriter,
) -> models.LoadAnswer:
    check_batch(records)
    items = [(i, rec) for i, rec in enumerate(records)]
    summary = write.load_records(gw, kind, items, "request", s, keep_outcomes=True)
    log.record(who, f"load_{kind}", target=f"{len(records)} records", detail=summary.line())
    return models.LoadAnswer(
        summary=models.LoadSummary(**summary.counts()),
        outcomes=[
            models.RecordOutcome(
                index=o.line or 0, key=o.key, status=o.status, flags=o.flags, reason=o.reason
            )
            for o in summary.outcomes
        ],
    )


@router.post("/v1/registrations", response_model=models.LoadAnswer)
def post_registrations(
    body: list[models.RegistrationIn],
    gw: GatewayDep,
    s: SettingsDep,
    who: Collector,
    log: AuditDep,
) -> models.LoadAnswer:
    return _load("registrations", [r.model_dump(exclude_none=True) for r in body], gw, s, who, log)


@router.post("/v1/results", response_model=models.LoadAnswer)
def post_results(
    body: list[models.ResultIn], gw: GatewayDep, s: SettingsDep, who: Lab, log: AuditDep
) -> models.LoadAnswer:
    return _load("results", [r.model_dump(exclude_none=True) for r in body], gw, s, who, log)


@router.post("/v1/directory", response_model=models.LoadAnswer)
def post_directory(
    body: list[models.DirectoryEntryIn],
    gw: GatewayDep,
    s: SettingsDep,
    who: Admin,
    log: AuditDep,
) -> models.LoadAnswer:
    return _load("directory", [r.model_dump(exclude_none=True) for r in body], gw, s, who, log)
