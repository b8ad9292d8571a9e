"""The trace query, as loaded from cypher/, starts with an index seek and never scans."""

from __future__ import annotations

from typing import Any

from engine.db import Gateway
from engine.settings import Settings
from tests.test_load_trace import load_city


def operators(plan: Any) -> list[str]:
    details = str(plan.get("args", {}).get("Details", ""))[:80]
    found = [
        plan["operatorType"].split("@")[0]
        + (f" [{details}]" if "Index" in plan["operatorType"] else "")
    ]
    for child in plan.get("children", []):
        found += operators(child)
    return found


def first_operator(plan: Any) -> str:
    while plan.get("children"):
        plan = plan["children"][0]
    return str(plan["operatorType"].split("@")[0])  # the leaf that runs first


def assert_seek_without_scans(plan: Any) -> None:
    ops = operators(plan)
    assert first_operator(plan) in ("NodeUniqueIndexSeek", "NodeIndexSeek"), " / ".join(ops)
    assert not [op for op in ops if op.split(" ")[0].endswith("Scan")], " / ".join(ops)


def test_trace_plan_starts_with_index_seek(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    plan = gw.profile("trace_tubes", tube_codes=["T1"])
    assert_seek_without_scans(plan)


def test_district_queue_plan_seeks_the_queue_index(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    plan = gw.profile("district_tasks", district_code="310115", status=None, after="", limit=100)
    assert_seek_without_scans(plan)
