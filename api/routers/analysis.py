"""Outbreak analysis: exposure to any depth, clusters of cases, the day's signals, attack
rates. Included before the reports router: `/v1/reports/signals` and `/v1/reports/attack-rate`
are not the daily reports' `/v1/reports/{report}`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import models
from api.deps import (
    REVEAL_RESPONSES,
    AuditDep,
    DayQ,
    GatewayDep,
    Investigator,
    OptionalDay,
    PersonIdPath,
    Reader,
    ReasonQ,
    RevealQ,
    string_schema,
)
from engine.analysis import outbreak
from engine.contract import AttackRateJSON, ClustersJSON, ExposureJSON, SignalsJSON
from engine.usecases import reads

router = APIRouter(tags=["analysis"])

# A window of sampling days: since <= until, at most outbreak.MAX_DAYS days (OpenAPI cannot
# bound one parameter by another; the description says it, a window outside it is a 422).
WINDOW_HELP = (
    f"YYYY-MM-DD, 2000-01-01 to 2099-12-31; since <= until, at most {outbreak.MAX_DAYS} days "
    "from since to until (else 422 invalid_input)"
)
WindowDayQ = Annotated[DayQ, Query(description=WINDOW_HELP)]
# The cursors as the engine reads them (outbreak._exposure_cursor, _cluster_cursor): a page's
# next_cursor, or empty for the first page.
EXPOSURE_CURSOR = r"^(?:[1-4]:[^\n]{1,128})?$"
CLUSTERS_CURSOR = r"^(?:[0-9]{1,9}:[\s\S]+)?$"


@router.get(
    "/v1/persons/{person_id}/exposure", response_model=models.Exposure, responses=REVEAL_RESPONSES
)
def get_exposure(
    person_id: PersonIdPath,
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    depth: Annotated[int, Query(ge=1, le=outbreak.MAX_DEPTH)] = 3,
    days: Annotated[int, Query(ge=1, le=outbreak.MAX_DAYS)] = 14,
    until: Annotated[
        OptionalDay,
        Query(description="the window's last sampling day (default: the person's latest)"),
    ] = None,
    cursor: Annotated[
        str, string_schema(maxLength=160, pattern=EXPOSURE_CURSOR), Query(max_length=160)
    ] = "",
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


@router.get("/v1/clusters", response_model=models.Clusters, responses=REVEAL_RESPONSES)
def get_clusters(
    gw: GatewayDep,
    who: Reader,
    log: AuditDep,
    since: WindowDayQ,
    until: WindowDayQ,
    cursor: Annotated[
        str, string_schema(maxLength=64, pattern=CLUSTERS_CURSOR), Query(max_length=64)
    ] = "",
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
