"""tubetrace.exposure (engine/server/procedures) answers what the exposure query answered when
its four levels were written out in Cypher (tests/cypher `exposure_rings_cypher`): every row,
the via's registration included (which decides the district filter), on a generated city with
pooled, single and mixed tubes over 3 days, at every depth, with and without a district and a
page's start. The rule itself is checked against networkx in tests/system/test_analysis.py."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_tube
from loaders.generate import generate_city
from tests.helpers import load


def _both(gw: Gateway, **params: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return list(gw.read("exposure_rings", **params)), list(
        gw.read("exposure_rings_cypher", **params)
    )


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
            "exposure_rings",
            subjects=[{"person_id": subject, "until": None}],
            days=14,
            depth=4,
            **base,
        )
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
