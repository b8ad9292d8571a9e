"""The trace query, as loaded from cypher/, starts with an index seek and never scans."""

from __future__ import annotations

from engine.db import Gateway
from engine.settings import Settings
from tests.helpers import assert_seek_without_scans, load_city


def test_trace_plan_starts_with_index_seek(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    plan = gw.profile("trace_tubes", tube_codes=["T1"])
    assert_seek_without_scans(plan)


def test_district_queue_plan_seeks_the_queue_index(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    plan = gw.profile("district_tasks", district_code="310115", status=None, after="", limit=100)
    assert_seek_without_scans(plan)
