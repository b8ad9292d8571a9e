"""The day's positives, reports, rings and export on the real Neo4j."""

from __future__ import annotations

import csv
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import networkx as nx
import pytest

from engine.access.keys import Principal
from engine.analysis import reports
from engine.loop import tasks
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_tube
from loaders.generate import generate_city
from tests.helpers import (
    DATA,
    RETEST_HEADER,
    assert_seek_without_scans,
    load,
    load_city,
    result,
    retest,
    write,
)


def test_days_positives_equal_the_union_of_single_traces(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    generate_city(tmp_path, seed=7, registrations=1200, positive_rate=0.15)
    for kind in ("compounds", "registrations", "results"):
        load(gw, settings, kind, tmp_path / f"{kind}.csv")
    with (tmp_path / "results.csv").open() as fh:
        expected = {
            r["tube_code"]
            for r in csv.DictReader(fh)
            if r["result"] == "positive"
            and r["reported_at"].startswith("2022-04-09")
            and r["tube_code"]
        }
    items = list(reports.positives_stream(gw, "2022-04-09", page=7))
    assert {i["tube_code"] for i in items} == expected and len(expected) >= 8
    keys = [f"{i['district_code']}|{i['tube_code']}" for i in items]
    assert keys == sorted(keys) and len(keys) == len(set(keys))
    # The one-pass read equals the keyset pages a district system reads through the API.
    paged, cursor = [], ""
    while cursor is not None:
        page, cursor = reports.positives_page(gw, "2022-04-09", None, cursor, 7)
        paged += page
    assert paged == items
    # Pages traced by several threads come in order, equal to one page at a time; a caller
    # that stops early leaves no thread behind.
    serial = list(reports.positives_pages(gw, "2022-04-09", page=7, workers=1))
    assert len(serial) >= 2 and [i for p in serial for i in p] == items
    for workers in (2, 3):
        assert list(reports.positives_pages(gw, "2022-04-09", page=7, workers=workers)) == serial
    pages = reports.positives_pages(gw, "2022-04-09", page=7, workers=2)
    assert next(pages) == serial[0]
    pages.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("positives")]
    for code in expected:
        single = trace_tube(gw, code)
        parts = [i for i in items if i["tube_code"] == code]
        union = sorted(
            (p for i in parts for p in i["trace"]["persons"]), key=lambda p: p["record_id"]
        )
        assert union == sorted(single["persons"], key=lambda p: p["record_id"])
        for i in parts:
            assert {k: v for k, v in i["trace"].items() if k != "persons"} == {
                k: v for k, v in single.items() if k != "persons"
            }
            assert all(
                (p["residence"]["district_code"] or "unassigned") == i["district_code"]
                for p in i["trace"]["persons"]
            )


def test_positives_pages_after_the_first_read_the_first_pages_list(
    gw: Gateway, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client paging through a day finds the day's positive tubes once (about 0.5 s at
    52,000 tubes): the pages after the first read the list the first page found; a new first
    page, or an expired list, finds it again."""
    generate_city(tmp_path, seed=7, registrations=1200, positive_rate=0.15)
    for kind in ("compounds", "registrations", "results"):
        load(gw, settings, kind, tmp_path / f"{kind}.csv")
    with (tmp_path / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    positive = {r["tube_code"] for r in rows if r["result"] == "positive"}
    late = max(
        r["tube_code"]
        for r in rows
        if r["result"] == "negative"
        and r["reported_at"].startswith("2022-04-09")
        and r["tube_code"] not in positive
    )
    finds: list[str] = []
    read = gw.read

    def counting(name: str, **params: object) -> list[dict[str, object]]:
        if name == "positive_tubes_of_day":
            finds.append(name)
        return read(name, **params)

    monkeypatch.setattr(gw, "read", counting)

    def rest(cursor: str | None) -> list[str]:
        codes: list[str] = []
        while cursor is not None:
            page, cursor = reports.positives_page(gw, "2022-04-09", None, cursor, 3)
            codes += [i["tube_code"] for i in page]
        return codes

    first, cursor = reports.positives_page(gw, "2022-04-09", None, "", 3)
    assert cursor is not None and len(finds) == 1
    # A positive result for a tube of the day arrives while the client is paging.
    load(gw, settings, "results", result(tmp_path, late, "positive", "2022-04-09T23:00:00+08:00"))
    before = [i["tube_code"] for i in first] + rest(cursor)
    assert late not in before and len(finds) == 1
    fresh, cursor = reports.positives_page(gw, "2022-04-09", None, "", 3)
    after = [i["tube_code"] for i in fresh] + rest(cursor)
    assert late in after and sorted(set(after) - set(before)) == [late] and len(finds) == 2
    # A district's pages are its part of the city's list, even after the city's first page.
    district = max(i["district_code"] for i in fresh)
    whole = list(reports.positives_stream(gw, "2022-04-09", district))
    assert len(whole) >= 2 and {i["district_code"] for i in whole} == {district}
    own, cursor = reports.positives_page(gw, "2022-04-09", district, "", 1)
    reports.positives_page(gw, "2022-04-09", None, "", 3)
    while cursor is not None:
        page, cursor = reports.positives_page(gw, "2022-04-09", district, cursor, 1)
        own += page
    assert own == whole
    # An expired list is found again.
    memo = gw.memo["positives"]
    assert isinstance(memo, reports.DayPairs)
    monkeypatch.setattr(memo, "ttl_s", 0.0)
    finds.clear()
    rest(f"{fresh[0]['district_code']}|{fresh[0]['tube_code']}")
    assert len(finds) >= 1


def test_positives_plan_starts_with_index_seek(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    plan = gw.profile("positive_tubes_of_day", day="2022-04-09", district_code=None)
    assert_seek_without_scans(plan)


def test_completeness_and_household_separation(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    [row] = reports.completeness(gw, "2022-04-09")
    assert row == {
        "district_code": "310115",
        "district": "浦东新区",
        "positive_pooled_tubes": 1,
        "persons": 10,
        "usable_phone_share": 0.9,
        "invalid_id_numbers": 0,
        "unknown_compounds": 0,
        "over_filled_tubes": 0,
        "duplicate_registrations": 0,
        "reachable_by_own_phone": 9,
        "reachable_only_through_directory": 0,
        "reachable_only_through_compound": 0,
        "unreachable": 1,
        "reachable_share": 0.9,
    }
    sep = reports.household_separation(gw, "2022-04-09")
    assert sorted(
        (r["registered_district_code"], r["residence_district_code"], r["persons"]) for r in sep
    ) == [("310101", "310115", 1), ("320102", "310115", 1)]
    assert reports.completeness(gw, "2022-04-08") == []


def test_zone_boundaries_are_exact() -> None:
    on = date(2022, 4, 20)
    assert reports.zone_for(date(2022, 4, 20), on) == "sealed"
    assert reports.zone_for(date(2022, 4, 14), on) == "sealed"  # 6 days
    assert reports.zone_for(date(2022, 4, 13), on) == "controlled"  # exactly 7 days
    assert reports.zone_for(date(2022, 4, 7), on) == "controlled"  # 13 days
    assert reports.zone_for(date(2022, 4, 6), on) == "precaution"  # exactly 14 days
    assert reports.zone_for(None, on) == "precaution"
    assert reports.zone_for(date(2022, 4, 21), on) == "precaution"  # not yet


def test_zoning_from_a_confirmed_retest(gw: Gateway, settings: Settings, tmp_path: Path) -> None:
    load_city(gw, settings)
    load(
        gw,
        settings,
        "registrations",
        retest(tmp_path, "RT1", "S1", "310115198201010213", "2022-04-10T23:30:00+08:00"),
    )
    load(gw, settings, "results", result(tmp_path, "S1", "positive"))

    def zone(day: str) -> dict[str, str]:
        return {r["compound_code"]: r["zone"] for r in reports.zoning(gw, day, settings.timezone)}

    assert zone("2022-04-09") == {"C1": "precaution", "C2": "precaution"}
    assert zone("2022-04-10")["C1"] == "sealed"
    assert zone("2022-04-16")["C1"] == "sealed"
    assert zone("2022-04-17")["C1"] == "controlled"
    assert zone("2022-04-23")["C1"] == "controlled"
    assert zone("2022-04-24")["C1"] == "precaution"
    assert zone("2022-04-17")["C2"] == "precaution"


def test_timeliness_counts_acknowledged_tasks(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    pending = [t for t in tasks.tasks_page(gw, "310115", "pending", "", 100)[0]]
    tasks.transition(
        gw, pending[0]["task_id"], Principal("pd", "district", "310115"), "acknowledged", None, None
    )
    [row] = reports.timeliness(gw, "2022-04-09")
    assert row["tasks"] == 10
    assert row["result_to_acknowledged_hours"]["median"] > 24 * 365  # the data is from 2022
    assert row["open_older_than_24h"] == 0
    # The hours are the stored times' difference, to the report's two decimals.
    [stored] = gw.read("get_task", task_id=pending[0]["task_id"])
    k = stored["task"]
    hours = (k["acknowledged_at"].to_native() - k["result_at"].to_native()).total_seconds() / 3600
    assert row["result_to_acknowledged_hours"] == dict.fromkeys(("median", "p90"), round(hours, 2))
    # A district's report is its row of the city's; a day later every open task is overdue.
    later = datetime.now(UTC) + tasks.OVERDUE_AFTER + timedelta(minutes=1)
    assert reports.timeliness(gw, "2022-04-09", "310115") == [row]
    assert reports.timeliness(gw, "2022-04-09", "310101") == []
    [late] = reports.timeliness(gw, "2022-04-09", now=later)
    still_open = [t for t in tasks.all_tasks(gw, "310115") if t["status"] != "closed"]
    assert 0 < len(still_open) < 10
    assert late["open_older_than_24h"] == len(still_open)


def test_rings_of_a_confirmed_case(gw: Gateway, settings: Settings, tmp_path: Path) -> None:
    load_city(gw, settings)
    neighbours = write(
        tmp_path,
        "n.csv",
        RETEST_HEADER + "N1,2022-04-09T11:00:00+08:00,C1,B1,T5,10,nucleic_code,passport,E1,a,"
        "13800000001\n"
        "N2,2022-04-10T11:00:00+08:00,C1,B1,T6,10,nucleic_code,passport,E2,b,"
        "13800000002\n",
    )
    load(gw, settings, "registrations", neighbours)
    load(gw, settings, "registrations", retest(tmp_path, "RT1", "S1", "310115198201010213"))
    load(gw, settings, "results", result(tmp_path, "S1", "positive"))
    case_pid = next(
        p["person_id"] for p in trace_tube(gw, "T1")["persons"] if p["record_id"] == "R03"
    )
    answer = reports.rings(gw, case_pid)
    assert answer["case"]["pool_tubes"] == ["T1"]
    assert len(answer["ring1"]) == 9 and case_pid not in {p["person_id"] for p in answer["ring1"]}
    assert [p["record_id"] for p in answer["ring2"]["items"]] == ["N1"]


def test_export_graphml(gw: Gateway, settings: Settings, tmp_path: Path) -> None:
    from engine.trace import export

    load_city(gw, settings)
    path = tmp_path / "t1.graphml"
    assert export.write([trace_tube(gw, "T1")], path, "graphml") == (14, 22)
    back = nx.read_graphml(path)
    kinds = [d["kind"] for _, d in back.nodes(data=True)]
    assert kinds.count("person") == 10 and kinds.count("tube") == 1
    assert kinds.count("box") == 1 and kinds.count("compound") == 1
    assert kinds.count("residence") == 1
    assert DATA.exists()
