"""The console's cluster pages: the window's clusters of cases, and one cluster drawn as a
graph of its cases, the compounds they were swabbed at and the pooled tubes they shared,
coloured by day. The same engine calls (and scoping, masking, audit) as `/v1/clusters`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.console.pages import SessionDep, _gw, _log, _today, engine_errors, need, render
from engine import codes
from engine.access.keys import Principal
from engine.analysis import outbreak
from engine.contract import ClusterDetailJSON
from engine.loop import progress
from engine.usecases import reads

router = APIRouter(prefix="/console", include_in_schema=False)

OptionalDayQ = Annotated[str | None, Query(pattern=codes.DAY_PATTERN)]
ClusterIdPath = Annotated[str, Path(pattern=r"^k_[0-9a-f]{1,40}$")]
CLUSTERS_PAGE = 50


def _window(request: Request, since: str | None, until: str | None) -> tuple[str, str]:
    """The window asked for; by default the 14 days up to the latest day with a positive."""
    end = until or progress.latest_positive_day(_gw(request)) or _today(request)
    start = since or (date.fromisoformat(end) - timedelta(days=13)).isoformat()
    return start, end


@router.get("/clusters")
def clusters_page(
    request: Request,
    session: SessionDep,
    since: OptionalDayQ = None,
    until: OptionalDayQ = None,
    cursor: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    who = need(session, "investigator", "district")
    start, end = _window(request, since, until)
    with engine_errors():
        answer = reads.read_clusters(
            _gw(request), _log(request), who, start, end, cursor=cursor, limit=CLUSTERS_PAGE
        )
    window = urlencode({"since": answer["since"], "until": answer["until"]})
    return render(
        request,
        "clusters.html",
        session,
        answer=answer,
        window=window,
        max_days=outbreak.MAX_DAYS,
        cursor=cursor,
    )


def _cluster(
    request: Request, who: Principal, cluster_id: str, since: str | None, until: str | None
) -> ClusterDetailJSON:
    start, end = _window(request, since, until)
    with engine_errors():
        return reads.read_cluster(_gw(request), _log(request), who, start, end, cluster_id)


@router.get("/clusters/{cluster_id}")
def cluster_page(
    request: Request,
    session: SessionDep,
    cluster_id: ClusterIdPath,
    since: OptionalDayQ = None,
    until: OptionalDayQ = None,
) -> Response:
    who = need(session, "investigator", "district")
    c = _cluster(request, who, cluster_id, since, until)
    window = urlencode({"since": c["since"], "until": c["until"]})
    return render(
        request,
        "cluster.html",
        session,
        cluster=c,
        window=window,
        data_url=f"/console/data/clusters/{quote(cluster_id, safe='')}?{window}",
    )


@router.get("/data/clusters/{cluster_id}")
def cluster_data(
    request: Request,
    session: SessionDep,
    cluster_id: ClusterIdPath,
    since: OptionalDayQ = None,
    until: OptionalDayQ = None,
) -> dict[str, Any]:
    who = need(session, "investigator", "district")
    c = _cluster(request, who, cluster_id, since, until)
    return {"cluster_id": c["cluster_id"], "elements": cluster_elements(c)}


def cluster_elements(c: ClusterDetailJSON) -> dict[str, list[dict[str, Any]]]:
    """Cytoscape elements: a node per case (its day: the first positive tube's), per compound
    and per pooled tube two cases shared; an edge per registration of a case inside the
    window at a compound (SWABBED_AT) or in a shared pooled tube (IN_POOL), with its day."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[str, dict[str, Any]] = {}
    for p in c["persons"]:
        nodes[f"case:{p['person_id']}"] = {
            "id": f"case:{p['person_id']}",
            "kind": "case",
            "label": p["name"] or p["record_id"],
            "person_id": p["person_id"],
            "day": p["day"],
            "tube_code": p["tube_code"],
        }
    for r in c["registrations"]:
        case = f"case:{r['person_id']}"
        if case not in nodes:
            continue
        if r["compound_code"]:
            site = f"compound:{r['compound_code']}"
            nodes.setdefault(site, {"id": site, "kind": "compound", "label": r["compound_code"]})
            edge = f"SWABBED_AT:{case}->{site}#{r['day']}"
            edges.setdefault(
                edge,
                {"id": edge, "source": case, "target": site, "type": "SWABBED_AT", "day": r["day"]},
            )
        if r["linking_pool"]:
            pool = f"pool:{r['tube_code']}"
            nodes.setdefault(
                pool,
                {"id": pool, "kind": "pool", "label": r["tube_code"], "day": r["day"]},
            )
            edge = f"IN_POOL:{case}->{pool}"
            edges.setdefault(
                edge,
                {"id": edge, "source": case, "target": pool, "type": "IN_POOL", "day": r["day"]},
            )
    return {
        "nodes": [{"data": d} for d in nodes.values()],
        "edges": [{"data": d} for d in edges.values()],
    }
