"""What each key sees, without a database: document numbers, shared tubes, the unassigned
queue's own residents."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from engine import domain
from engine.access.keys import Principal
from engine.access.masking import person_view, quarantine_view, trace_view
from engine.errors import NotFound
from engine.trace.build import build_trace

EARLY = datetime(2022, 4, 9, 7, 0, tzinfo=UTC)
LATE = datetime(2022, 4, 9, 8, 15, tzinfo=UTC)
PUDONG = {
    "code": "C1",
    "name": "浦东小区",
    "address": "a1",
    "district_code": "310115",
    "subdistrict": "s",
}
HUANGPU = {
    "code": "C2",
    "name": "黄浦小区",
    "address": "a2",
    "district_code": "310101",
    "subdistrict": "t",
}


def reg(record_id: str, compound: dict[str, Any] | None, box: str, at: datetime) -> dict[str, Any]:
    return {
        "person_id": f"p_{record_id}",
        "id_type": "passport",
        "id_number": "E57140543",
        "name": "n",
        "phone": "13812345678",
        "method": "nucleic_code",
        "record_id": record_id,
        "collected_at": at.isoformat(),  # as trace_tubes reads it: text (datetimes work too)
        "compound_code": compound["code"] if compound else "C9",
        "compound": compound,
        "box_code": box,
        "pool_size": 3,
        "registered_district_code": None,
        "flags": [],
        "duplicate": False,
        "box_compounds_that_day": 1,
    }


def shared_tube() -> dict[str, Any]:
    return build_trace(
        {
            "code": "T1",
            "registrations": [
                reg("R1", HUANGPU, "BOX-HP", EARLY),
                reg("R2", PUDONG, "BOX-PD", LATE),
                reg("R3", None, "BOX-UN", LATE),
            ],
            "results": [],
        }
    )


def test_document_numbers_show_at_most_four_characters() -> None:
    for number in ("E57140543", "310115198201010213", "G1234567", "AB12345", "X1"):
        masked = domain.mask_id_number(number) or ""
        assert len(masked) == len(number)
        assert len(masked) - masked.count("*") <= 4, masked
    assert domain.mask_id_number("E57140543") == "*****0543"


def test_a_district_sees_only_its_own_part_of_a_shared_tube() -> None:
    view = trace_view(shared_tube(), Principal("pd", "district", "310115"), False, "gone")
    text = json.dumps(view, ensure_ascii=False)
    assert [p["record_id"] for p in view["persons"]] == ["R2"]
    assert view["compound"]["code"] == "C1" and view["compounds"] == ["C1"]
    assert view["box"] == {"code": "BOX-PD"} and view["boxes"] == ["BOX-PD"]
    assert view["tube"]["collected_at"] == LATE.isoformat()
    for other in ("C2", "黄浦小区", "a2", "BOX-HP", "BOX-UN", EARLY.isoformat()):
        assert other not in text, other
    assert "tube_multiple_compounds" not in view["flags"]
    whole = trace_view(shared_tube(), Principal("inv", "investigator"), False, "gone")
    assert whole["compound"]["code"] == "C2" and len(whole["persons"]) == 3


def test_views_of_one_trace_leave_it_as_it_was() -> None:
    """Views copy only what they change: one trace seen by every kind of key in turn (as the
    reports do with a tube shared by districts) is the same trace afterwards."""
    trace = shared_tube()
    before = copy.deepcopy(trace)
    keys = [
        Principal("pd", "district", "310115"),
        Principal("hp", "district", "310101"),
        Principal("un", "district", "unassigned"),
        Principal("inv", "investigator"),
    ]
    seen = [trace_view(trace, who, False, "gone") for who in keys]
    seen.append(trace_view(trace, Principal("inv", "investigator"), True, "gone"))
    assert trace == before
    assert [len(v["persons"]) for v in seen] == [1, 1, 1, 3, 3]
    assert seen[3]["persons"][0]["phone"] == "138****5678"
    assert seen[4]["persons"][0]["phone"] == "13812345678"


def test_the_unassigned_queue_sees_its_residents_phones() -> None:
    person = shared_tube()["persons"][2]
    assert person["residence"]["district_code"] is None
    unassigned = person_view(person, Principal("un", "district", "unassigned"), False)
    assert unassigned["phone"] == "13812345678"
    other = person_view(person, Principal("pd", "district", "310115"), False)
    assert other["phone"] == "138****5678"
    assert unassigned["id_number"] == other["id_number"] == "*****0543"


def test_quarantine_lines_are_masked_unless_revealed() -> None:
    raw = domain.canonical_json(
        {
            "record_id": "R1",
            "id_type": "passport",
            "id_number": "E57140543",
            "name": "王小明",
            "phone": "13812345678",
            "tube_code": "T1",
        }
    )
    item = {"qkey": "q", "raw": raw, "existing": "R1,E57140543,王小明,13812345678", "at": None}
    inv = Principal("inv", "investigator")
    masked, ids = quarantine_view(item, inv, False, "secret")
    text = masked["raw"] + masked["existing"]
    assert "E57140543" not in text and "13812345678" not in text and "小明" not in text
    assert ids == [domain.person_id("secret", domain.person_key("passport", "E57140543", ""))]
    revealed, _ = quarantine_view(item, inv, True, "secret")
    assert revealed["raw"] == raw


def test_a_tube_with_a_result_and_no_registration_yet() -> None:
    """The city sees it (a lab reported before the sampling app synced); a district does not."""
    early = build_trace({"code": "T9", "registrations": [], "results": []})
    assert trace_view(early, Principal("inv", "investigator"), False, "gone")["persons"] == []
    with pytest.raises(NotFound):
        trace_view(early, Principal("pd", "district", "310115"), False, "gone")
