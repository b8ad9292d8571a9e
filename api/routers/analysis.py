"""Outbreak analysis: exposure to any depth, clusters of cases, the day's signals, attack
rates. Included before the reports router: `/v1/reports/signals` and `/v1/reports/attack-rate`
are not the daily reports' `/v1/reports/{report}`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import models
from api.deps import (
    AuditDep,
    DayQ,
    GatewayDep,
    Investigator,
    PersonIdPath,
    Reader,
    ReasonQ,
    RevealQ,
)
from engine import codes
from engine.analysis import outbreak
from engine.contract import AttackRateJSON, ClustersJSON, ExposureJSON, SignalsJSON
from engine.usecases import reads

router = APIRouter(tags=["analysis"])

WindowDayQ = Annotated[str, Query(pattern=codes.DAY_PATTERN, description="YYYY-MM-DD")]


@router.get("/v1/persons/{person_id}/exposure", response_model=models.Exposure)
def get_exposure(
    person_id: PersonIdPath,
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    depth: Annotated[int, Query(ge=1, le=outbreak.MAX_DEPTH)] = 3,
    days: Annotated[int, Query(ge=1, le=outbreak.MAX_DAYS)] = 14,
    until: Annotated[
        str | None,
        Query(
            pattern=codes.DAY_PATTERN,
            description="the window's last sampling day (default: the person's latest)",
        ),
    ] = None,
    cursor: Annotated[str, Query(max_length=160)] = "",
    limit: Annotated[int, Query(ge=1, le=outbreak.EXPOSURE_MAX_PAGE)] = 100,
    reveal: RevealQ = False,
    reason: ReasonQ = None,
) -> ExposureJSON:
    return reads.read_exposure(
        gw,
        log,
        who,
        person_id,
        depth=depth,
        days=days,
        until=until,
        cursor=cursor,
        limit=limit,
        reveal=reveal,
        reason=reason,
    )


@router.get("/v1/clusters", response_model=models.Clusters)
def get_clusters(
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    since: WindowDayQ,
    until: WindowDayQ,
    cursor: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=outbreak.CLUSTERS_MAX_PAGE)] = 50,
    reveal: RevealQ = False,
    reason: ReasonQ = None,
) -> ClustersJSON:
    return reads.read_clusters(
        gw, log, who, since, until, cursor=cursor, limit=limit, reveal=reveal, reason=reason
    )


@router.get("/v1/reports/signals", response_model=models.Signals)
def get_signals(gw: GatewayDep, who: Investigator, log: AuditDep, date: DayQ) -> SignalsJSON:
    return reads.read_signals(gw, log, who, date)


@router.get("/v1/reports/attack-rate", response_model=models.AttackRate)
def get_attack_rate(
    gw: GatewayDep, who: Investigator, log: AuditDep, since: WindowDayQ, until: WindowDayQ
) -> AttackRateJSON:
    return reads.read_attack_rate(gw, log, who, since, until)
