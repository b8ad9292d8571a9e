"""Plans of the queries as loaded from cypher/: the trace and the queue start with an index
seek and never scan; no page sorts more than it returns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.settings import Settings
from engine.store.gateway import Gateway
from tests.helpers import assert_no_unbounded_sort, assert_seek_without_scans, load_city


def test_trace_plan_starts_with_index_seek(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    plan = gw.profile("trace_tubes", tube_codes=["T1"])
    assert_seek_without_scans(plan)


def test_district_queue_plan_seeks_the_queue_index(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    plan = gw.profile("district_tasks", district_code="310115", status=None, after="", limit=100)
    assert_seek_without_scans(plan)
    assert_no_unbounded_sort(plan)


# Every cursor page (and the webhook claim, the console's latest day), with parameters of the
# types its callers send: a plan can depend on them.
AT = datetime(2022, 4, 9, 12, tzinfo=UTC)
PAGES: dict[str, dict[str, Any]] = {
    "district_tasks": {"district_code": "310115", "status": "pending", "after": "", "limit": 51},
    "list_quarantine": {"after": "", "limit": 51},
    "list_audit": {"since": AT, "key_id": None, "after": "", "limit": 51},
    "audit_chain_page": {"after": 0, "limit": 51},
    "status_changes_page": {"after": 0, "limit": 51},
    "all_person_days": {"after": "", "limit": 51},
    "tube_codes_after": {"after": "", "limit": 51},
    "events_after": {"after": 0, "limit": 51},
    "list_deliveries": {"after": "", "failed_only": False, "limit": 51},
    "claim_deliveries": {
        "hooks": [{"webhook_id": "wh_1", "room": 2}],
        "most": 2,
        "now": AT,
        "lease_until": AT,
        "claim": "c",
    },
    "latest_positive_day": {},
    "retention_old_events": {
        "after": 0,
        "cutoff": AT.date(),
        "window_start": AT,
        "limit": 51,
    },
}
# Pages that sort what they read, and why that stays small.
SORTED_PAGES = {
    "ring_same_compound_day": "one person's pools on one day: a few dozen registrations",
}


def test_pages_read_their_index_in_order(gw: Gateway, settings: Settings) -> None:
    """Every cursor page stops at its limit in index order: a sort of the whole range cost
    ~1 s a queue page at 26 M (the district's 100,899 tasks sorted for 50)."""
    load_city(gw, settings)  # a plan on an empty database can differ from a loaded one's
    paged = {q.name for q in gw.queries.all() if {"after", "limit"} <= set(q.params)}
    assert paged <= set(PAGES) | set(SORTED_PAGES), "a new page: add it to PAGES"
    for name, params in PAGES.items():
        q = gw.queries[name]
        with gw.driver.session() as session:  # EXPLAIN: the claim must not run
            plan = session.run("EXPLAIN " + q.text, params).consume().plan
        assert plan is not None
        assert_no_unbounded_sort(plan)
