"""The trace query, as loaded from cypher/, starts with an index seek and never scans."""

from __future__ import annotations

from typing import Any

from engine.db import Gateway
from engine.settings import Settings
from tests.helpers import assert_seek_without_scans, load_city, operators


def test_trace_plan_starts_with_index_seek(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    plan = gw.profile("trace_tubes", tube_codes=["T1"])
    assert_seek_without_scans(plan)


def test_district_queue_plan_seeks_the_queue_index(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    plan = gw.profile("district_tasks", district_code="310115", status=None, after="", limit=100)
    assert_seek_without_scans(plan)


# Pages that sort what they read, and why that stays small.
SORTED_PAGES = {
    # one person's pools on one day: a few dozen registrations, never a whole table
    "ring_same_compound_day": "one person's neighbourhood",
}


def _sorts_before_limit(plan: Any) -> list[str]:
    """Sort/Top operators with no Limit below them: they sort everything they are given. The
    right side of an Apply runs per row (a person's registrations of one day) and is skipped."""

    def has_limit(p: Any) -> bool:
        kids = p.get("children", [])
        return any(c["operatorType"].split("@")[0] == "Limit" or has_limit(c) for c in kids)

    found = []
    op = plan["operatorType"].split("@")[0]
    if op in ("Sort", "Top", "PartialSort", "PartialTop") and not has_limit(plan):
        found.append(op)
    children = plan.get("children", [])
    for child in children[:1] if op.endswith("Apply") else children:
        found += _sorts_before_limit(child)
    return found


def test_pages_read_their_index_in_order(gw: Gateway) -> None:
    """Every cursor page (and the webhook claim) stops at its limit in index order; a sort of
    the whole range cost ~1 s a queue page at 26 M (100,899 tasks of one district)."""
    pages = [q for q in gw.queries.all() if {"after", "limit"} <= set(q.params)]
    pages.append(gw.queries["claim_deliveries"])
    assert {"district_tasks", "list_audit", "events_after"} <= {q.name for q in pages}
    for q in pages:
        if q.name in SORTED_PAGES:
            continue
        with gw.driver.session() as session:
            plan = session.run("EXPLAIN " + q.text, dict.fromkeys(q.params)).consume().plan
        assert plan is not None
        assert not _sorts_before_limit(plan), (q.name, operators(plan))
