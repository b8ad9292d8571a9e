"""tubetrace's procedures (engine/server/procedures) answer what they replace, on a generated
city with pooled, single and mixed tubes over 3 days:
- tubetrace.exposure what the exposure query answered when its four levels were written out
  in Cypher (tests/cypher `exposure_rings_cypher`): every row, the via's registration included
  (which decides the district filter), at every depth, with and without a district and a
  page's start;
- tubetrace.clusters what engine.analysis.outbreak.group_clusters makes of the rows of
  `positive_registrations` (the rule in Python, which the benchmark also runs on PostgreSQL's
  rows): every cluster, its members and how each is shown, compounds, districts, days, links.
The rules themselves are checked against networkx in tests/system/test_analysis.py."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from bench.run import cluster_answer
from engine.analysis import outbreak
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_tube
from loaders.generate import generate_city
from tests.helpers import load


def _both(gw: Gateway, **params: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Both queries' rows. Without a district the product's query reads no districts (an
    empty list); the Cypher levels always did: compared only when a district asks."""
    ours = list(gw.read("exposure_rings", **params))
    before = list(gw.read("exposure_rings_cypher", **params))
    if params["district"] is None:
        assert all(r["districts"] == [] for r in ours)
        ours = [{k: v for k, v in r.items() if k != "districts"} for r in ours]
        before = [{k: v for k, v in r.items() if k != "districts"} for r in before]
    return ours, before


def test_the_procedure_answers_what_the_cypher_levels_answered(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    generate_city(tmp_path, seed=11, registrations=2500, days=3, positive_rate=0.08, mix_pools=True)
    for kind in ("compounds", "registrations", "results"):
        load(gw, settings, kind, tmp_path / f"{kind}.csv")
    with (tmp_path / "results.csv").open() as fh:
        positive = sorted(
            {r["tube_code"] for r in csv.DictReader(fh) if r["result"] == "positive"} - {""}
        )
    subjects = sorted({p["person_id"] for t in positive[:12] for p in trace_tube(gw, t)["persons"]})
    assert len(subjects) >= 40
    base = {"district": None, "after_depth": 0, "after_person": ""}
    sizes: dict[int, int] = {}
    for depth in (1, 2, 3, 4):
        for days in (1, 14):
            ours, before = _both(
                gw,
                subjects=[{"person_id": s, "until": None} for s in subjects],
                days=days,
                depth=depth,
                **base,
            )
            assert ours == before, (depth, days)
            if days == 14:
                sizes[depth] = sum(len(r["person_ids"]) for r in ours)
    assert sizes[1] < sizes[2] < sizes[3], sizes  # rings that reach out, not empty ones
    # A district filter and a page's start, subject by subject, on the widest rings.
    for subject in subjects[:15]:
        (row,) = gw.read(
            "exposure_rings_cypher",  # its districts: the product's query reads them for a district
            subjects=[{"person_id": subject, "until": None}],
            days=14,
            depth=4,
            **base,
        )
        assert row["districts"]
        for district in sorted(set(row["districts"]))[:2]:
            ours, before = _both(
                gw,
                subjects=[{"person_id": subject, "until": row["until"]}],
                days=14,
                depth=4,
                district=district,
                after_depth=0,
                after_person="",
            )
            assert ours == before, (subject, district)
        if row["person_ids"]:
            middle = len(row["person_ids"]) // 2
            after = {
                "after_depth": row["depths"][middle],
                "after_person": row["person_ids"][middle],
            }
            ours, before = _both(
                gw,
                subjects=[{"person_id": subject, "until": None}],
                days=14,
                depth=4,
                district=None,
                **after,
            )
            assert (
                ours == before and len(ours[0]["person_ids"]) == len(row["person_ids"]) - middle - 1
            )


def _clustering(found: outbreak.Clustering) -> list[tuple[Any, ...]]:
    """What the benchmark compares (bench/run.py), and how each member is shown."""
    return [
        (*cluster, [found.shown[p] for p in c.members])
        for cluster, c in zip(cluster_answer(found), found.clusters, strict=True)
    ]


def test_the_clusters_procedure_answers_what_group_clusters_makes(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    generate_city(tmp_path, seed=12, registrations=3000, days=6, positive_rate=0.08, mix_pools=True)
    # Every other compound sampled on the first and last day only, half its people on each:
    # 5 days apart, more than LINK_DAYS, so those are two segments there, not one.
    regs = tmp_path / "registrations.csv"
    with regs.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames or [], list(reader)
    days = sorted({r["collected_at"][:10] for r in rows if (r["collected_at"] or "")[:4] == "2022"})
    assert len(days) == 6

    def kept(r: dict[str, str]) -> bool:
        if (r["compound_code"] or "")[-1:] not in "02468":
            return True
        day, half = (r["collected_at"] or "")[:10], sum(map(ord, r["id_number"] or "")) % 2
        return (day == days[0] and half == 0) or (day == days[-1] and half == 1)

    with regs.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fields)
        writer.writeheader()
        writer.writerows(r for r in rows if kept(r))
    for kind in ("compounds", "registrations", "results"):
        load(gw, settings, kind, tmp_path / f"{kind}.csv")
    windows = [(d, d) for d in days] + [
        (days[0], days[-1]),
        (days[1], days[2]),
        ("2022-04-16", "2022-04-20"),
    ]
    linked = 0
    for since, until in windows:
        ours = outbreak.find_clusters(gw, since, until)
        positive, window = outbreak._positive_registrations(
            gw, since, until, outbreak._shift(until, outbreak.REPORT_LAG_DAYS), members=True
        )
        reference = outbreak.group_clusters(since, until, positive, window)
        assert _clustering(ours) == _clustering(reference), (since, until)
        linked += sum(bool(c.pool_links) and bool(c.compound_links) for c in ours.clusters)
    assert linked > 3  # clusters joined both ways, not only lone persons
    # A cluster's graph: its members' registrations inside the window, as the rows said.
    since, until = days[0], days[-1]
    biggest = outbreak.find_clusters(gw, since, until).clusters[0]
    detail = outbreak.cluster(gw, since, until, biggest.cluster_id)
    _, window = outbreak._positive_registrations(
        gw, since, until, outbreak._shift(until, outbreak.REPORT_LAG_DAYS), members=True
    )
    mine = sorted(
        (r["person_id"], r["day"], r["tube_code"], r["pooled"], r["compound_code"])
        for r in window
        if r["person_id"] in biggest.members
    )
    assert len(mine) > len(biggest.members) > 5
    assert (
        sorted(
            (r["person_id"], r["day"], r["tube_code"], r["pooled"], r["compound_code"])
            for r in detail["registrations"]
        )
        == mine
    )
