"""Loading a hand-built city into the real Neo4j, tracing it, and reloading it."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from engine import domain
from engine.errors import NotFound
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_tube
from tests.helpers import DATA, graph_fingerprint, load, load_city, quarantined


def expected_t1() -> dict[str, Any]:
    with (DATA / "registrations.csv").open(encoding="utf-8") as fh:
        regs = [r for r in csv.DictReader(fh) if r["tube_code"] == "T1"]
    residence = {
        "compound_code": "C1",
        "address": "上海市浦东新区金杨路100弄",
        "district_code": "310115",
        "source": "registration",
        "contact_phone": None,
    }
    persons = []
    for r in regs:
        registered = {"R09": "310101", "R10": "320102"}.get(r["record_id"], "310115")
        flags = {"R09": ["missing_phone", "no_usable_phone"]}.get(r["record_id"], [])
        phone = {"R09": None, "R10": "13900001111"}.get(r["record_id"], r["phone"])
        persons.append(
            {
                "person_id": "?",
                "id_type": "resident_id",
                "id_number": r["id_number"].upper(),
                "name": r["name"],
                "phone": phone,
                "method": r["method"],
                "record_id": r["record_id"],
                "collected_at": r["collected_at"],
                "box_code": r["box_code"],
                "residence": residence,
                "contacts": []
                if phone is None
                else [
                    {"phone": phone, "owner": "self", "source": "registration", "updated_at": None}
                ],
                "registered_district_code": registered,
                "household_separated": registered != "310115",
                "flags": flags,
            }
        )
    return {
        "tube": {
            "code": "T1",
            "pool_size": 10,
            "collected_at": "2022-04-09T08:10:00+08:00",
            "result": "positive",
            "reported_at": "2022-04-09T20:01:00+08:00",
            "results": [
                {
                    "result": "positive",
                    "reported_at": "2022-04-09T20:01:00+08:00",
                    "lab_code": "LAB01",
                    "ct_value": 28.5,
                    "flags": [],
                }
            ],
        },
        "box": {"code": "B1"},
        "boxes": ["B1"],
        "compound": {
            "code": "C1",
            "name": "金杨新村",
            "address": "上海市浦东新区金杨路100弄",
            "district_code": "310115",
            "district": "浦东新区",
            "subdistrict": "金杨新村街道",
            "contact_phone": None,
        },
        "compounds": ["C1"],
        "persons": persons,
        "flags": [],
    }


def test_ten_person_positive_tube_traces_whole(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    got = trace_tube(gw, "T1")
    ids = [p["person_id"] for p in got["persons"]]
    assert len(set(ids)) == 10 and all(i.startswith("p_") for i in ids)
    for p in got["persons"]:
        p["person_id"] = "?"
    assert got == expected_t1()


def test_same_person_keeps_one_id_and_box_reuse_on_another_day_is_clean(
    gw: Gateway, settings: Settings
) -> None:
    load_city(gw, settings)
    t1, t2 = trace_tube(gw, "T1"), trace_tube(gw, "T2")
    assert t2["persons"][0]["person_id"] == t1["persons"][0]["person_id"]
    # B1 was filled at C1 on the 9th and at C2 on the 10th: each tube traces to its own compound.
    assert t2["compound"]["code"] == "C2" and t2["flags"] == []
    assert t2["persons"][0]["household_separated"] is True
    # The single-tube retest on the next day is not a duplicate registration.
    assert "duplicate_registration" not in t1["persons"][0]["flags"]


def test_reload_changes_nothing(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    before = graph_fingerprint(gw)
    again = load(gw, settings, "registrations", DATA / "registrations.csv")
    load(gw, settings, "compounds", DATA / "compounds.csv")
    load(gw, settings, "results", DATA / "results.jsonl")
    assert graph_fingerprint(gw) == before
    assert (again.stored, again.duplicates) == (0, 11)
    assert before[0]["Registration"] == 11 and before[0]["Person"] == 10


def test_unknown_tube_is_not_found(gw: Gateway) -> None:
    with pytest.raises(NotFound, match="No tube with code 'NOPE'"):
        trace_tube(gw, "NOPE")


def test_every_bad_record_kind_lands_where_the_contract_says(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    load_city(gw, settings)
    good = {
        "collected_at": "2022-04-09T09:00:00+08:00",
        "compound_code": "C1",
        "box_code": "B2",
        "pool_size": 10,
        "method": "nucleic_code",
        "id_type": "resident_id",
        "name": "某",
        "phone": "13800000000",
    }
    lines = [
        {**good, "record_id": "X1", "tube_code": "T9", "id_number": "310115198001010016"},
        {**good, "record_id": "X2", "tube_code": "T9", "id_number": "310115198001010017"},
        {
            **good,
            "record_id": "X3",
            "tube_code": "T9",
            "id_number": "E1",
            "id_type": "passport",
            "phone": "12345",
        },
        {**good, "record_id": None, "tube_code": "T9", "id_number": "E2", "id_type": "passport"},
        {
            **good,
            "record_id": "X5",
            "tube_code": "T9",
            "id_number": "E3",
            "id_type": "passport",
            "compound_code": "C404",
        },
        {**good, "record_id": "X6", "tube_code": None, "id_number": "E4", "id_type": "passport"},
        {**good, "record_id": "X1", "tube_code": "T9", "id_number": "E5", "id_type": "passport"},
        {**good, "record_id": "R01", "tube_code": "T9", "id_number": "E6", "id_type": "passport"},
        {
            **good,
            "record_id": "X9",
            "tube_code": "T10",
            "id_number": "E7",
            "id_type": "passport",
            "collected_at": "not a time",
            "pool_size": "many",
        },
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in lines)
        + '\n{"record_id": "X10", broken\n'
    )
    summary = load(gw, settings, "registrations", path)
    assert summary.counts() == {
        "read": 10,
        "stored": 6,
        "duplicates": 0,
        "conflicts": 2,
        "updated": 0,
        "flagged": 6,
        "quarantined": 4,
    }
    t9 = trace_tube(gw, "T9")
    flags = {p["record_id"]: p["flags"] for p in t9["persons"]}
    assert flags["X1"] == ["duplicate_registration"]  # R01's person is also in pooled T1
    assert flags["X2"] == ["invalid_id_number"]
    assert flags["X3"] == ["invalid_phone", "no_usable_phone"]
    assert [f for r, f in flags.items() if r.startswith("h:")] == [["missing_record_id"]]
    assert flags["X5"] == ["unknown_compound"]
    assert "tube_multiple_compounds" in t9["flags"]
    assert trace_tube(gw, "T10")["persons"][0]["flags"] == [
        "invalid_collected_at",
        "invalid_pool_size",
    ]
    quarantine = quarantined(gw)
    by_line = {q["line"]: q for q in quarantine}
    assert by_line[6]["field"] == "tube_code" and by_line[6]["source"] == "bad.jsonl"
    assert "conflict" in by_line[7]["reason"] and json.loads(by_line[7]["existing"])["id_number"]
    assert "conflict" in by_line[8]["reason"] and "R01" in by_line[8]["existing"]
    assert "not valid JSON" in by_line[10]["reason"] and "X10" in by_line[10]["raw"]
    # T1's first version is kept.
    assert trace_tube(gw, "T1")["persons"][0]["record_id"] == "R01"


def test_compound_loaded_later_clears_unknown_compound(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    load(gw, settings, "registrations", DATA / "registrations.csv")
    assert "unknown_compound" in trace_tube(gw, "T1")["persons"][0]["flags"]
    summary = load(gw, settings, "compounds", DATA / "compounds.csv")
    assert summary.stored == 2
    assert trace_tube(gw, "T1")["persons"][0]["flags"] == []
    changed = tmp_path / "c.csv"
    changed.write_text((DATA / "compounds.csv").read_text().replace("金杨新村,", "金杨新村一期,"))
    again = load(gw, settings, "compounds", changed)
    assert (again.updated, again.duplicates) == (1, 1)
    assert trace_tube(gw, "T1")["compound"]["name"] == "金杨新村一期"


def test_results_are_idempotent_and_latest_wins(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    load_city(gw, settings)
    path = tmp_path / "r.csv"
    path.write_text(
        "tube_code,result,reported_at,lab_code,ct_value\n"
        "T1,negative,2022-04-10T08:00:00+08:00,LAB02,\n"
        "TZ,positive,2022-04-10T08:00:00+08:00,LAB02,31\n"
    )
    first = load(gw, settings, "results", path)
    second = load(gw, settings, "results", path)
    assert (first.stored, second.duplicates, second.stored) == (2, 2, 0)
    t1 = trace_tube(gw, "T1")
    assert t1["tube"]["result"] == "negative" and len(t1["tube"]["results"]) == 2
    orphan = trace_tube(gw, "TZ")
    assert orphan["flags"] == ["no_registrations"] and orphan["persons"] == []


def test_times_read_as_text_equal_the_drivers_datetimes(gw: Gateway) -> None:
    """The trace reads its times as the database's text (engine/domain.py, iso): the same
    text as the driver's datetimes give, at every offset and fraction."""
    values = [
        datetime(2022, 4, 9, 7, 1, tzinfo=timezone(timedelta(hours=8))),
        datetime(2022, 4, 9, 7, 1, 5, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        datetime(2022, 4, 9, 7, 1, 5, 120000, tzinfo=UTC),
        datetime(2022, 4, 9, 0, 0, tzinfo=UTC),
        datetime(2022, 4, 9, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=45))),
        datetime(1970, 1, 1, 0, 0, 0, 500, tzinfo=timezone(timedelta(hours=14))),
        datetime(9999, 12, 30, 23, 59, 59, 100, tzinfo=timezone(timedelta(hours=-12))),
    ]
    rows = gw.read("datetime_texts", values=values)
    texts = [domain.iso(r["text"]) for r in rows]
    assert texts == [domain.iso(r["value"]) for r in rows] == [v.isoformat() for v in values]
    assert domain.iso(None) is None
    # A named zone (not written by the loaders) reads as its offset, as Python writes it.
    assert (
        domain.iso("2022-04-09T07:01:00.5+08:00[Asia/Shanghai]")
        == "2022-04-09T07:01:00.500000+08:00"
    )
