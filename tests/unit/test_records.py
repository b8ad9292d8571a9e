"""Pure transforms: every bad-record kind of the contract becomes a flag or a quarantine entry."""

from __future__ import annotations

from typing import Any

import pytest

from engine import domain
from loaders.transform import (
    Quarantined,
    Row,
    transform_compound,
    transform_registration,
    transform_result,
)
from tests.helpers import registration

FIRST17 = "31010819850607123"
VALID_ID = FIRST17 + domain.id_check_char(FIRST17)


def reg(**over: Any) -> dict[str, Any]:
    return registration(pool_size="10", id_number=VALID_ID) | over


def row(record: dict[str, Any]) -> Row:
    out = transform_registration(record, "f.csv", 2, tz="Asia/Shanghai", secret="s")
    assert isinstance(out, Row)
    return out


def test_clean_registration_has_no_flags_and_maps_historic_district() -> None:
    r = row(reg())
    assert r.flags == []
    assert r.links["person"]["registered_district_code"] == "310106"
    assert r.props["day"] == "2022-04-09"
    assert r.props["pool_size"] == 10


@pytest.mark.parametrize(
    "over,flag",
    [
        ({"phone": ""}, "missing_phone"),
        ({"phone": "021-5555"}, "invalid_phone"),
        ({"id_number": VALID_ID[:-1] + ("0" if VALID_ID[-1] != "0" else "1")}, "invalid_id_number"),
        ({"record_id": None}, "missing_record_id"),
        ({"name": "  "}, "missing_name"),
        ({"collected_at": "2022-04-09 08:15"}, "invalid_collected_at"),
        ({"pool_size": "ten"}, "invalid_pool_size"),
        ({"pool_size": "0"}, "invalid_pool_size"),
        ({"method": "fax"}, "invalid_method"),
        ({"id_type": "driver_licence"}, "invalid_id_type"),
        ({"box_code": None}, "missing_box_code"),
        ({"compound_code": None}, "missing_compound_code"),
        ({"name": {"nested": 1}}, "invalid_name"),
    ],
)
def test_bad_fields_are_flagged_and_still_stored(over: dict[str, Any], flag: str) -> None:
    r = row(reg(**over))
    assert flag in r.flags
    assert r.links["tube_code"] == "T1"


def test_passport_numbers_are_not_checked_as_resident_ids() -> None:
    r = row(reg(id_type="passport", id_number="E1234567"))
    assert r.flags == []
    assert r.links["person"]["registered_district_code"] is None


def test_phone_is_normalised() -> None:
    assert row(reg(phone="+86 138-1234-5678")).props["phone"] == "13812345678"


def test_lower_case_x_is_accepted_and_upper_cased() -> None:
    r = row(reg(id_number="11010519491231002x"))
    assert "invalid_id_number" not in r.flags
    assert r.links["person"]["id_number"] == "11010519491231002X"


def test_missing_record_id_is_keyed_by_content() -> None:
    a = row(reg(record_id=None))
    b = row(reg(record_id=""))
    assert a.key == b.key and a.props["record_id"].startswith("h:")
    assert a.key == "file/" + a.props["record_id"]  # (source, record_id)


def test_no_tube_code_goes_to_quarantine_with_the_line() -> None:
    out = transform_registration(reg(tube_code=""), "f.csv", 7, tz="Asia/Shanghai", secret="s")
    assert isinstance(out, Quarantined)
    assert (out.source, out.line, out.field) == ("f.csv", 7, "tube_code")
    assert "R1" in out.raw


def test_same_content_from_csv_and_json_hashes_equal() -> None:
    assert row(reg(pool_size="10")).content_hash == row(reg(pool_size=10)).content_hash


def test_result_rules() -> None:
    ok = transform_result(
        {
            "tube_code": "T1",
            "result": "POSITIVE",
            "reported_at": "2022-04-09T20:01:00+08:00",
            "lab_code": "L1",
            "ct_value": "28.5",
        },
        "r.csv",
        2,
        tz="Asia/Shanghai",
    )
    assert isinstance(ok, Row) and ok.flags == [] and ok.props["result"] == "positive"
    bad = transform_result(
        {"tube_code": "T1", "result": "maybe", "reported_at": "x", "ct_value": "n/a"},
        "r.csv",
        3,
        tz="Asia/Shanghai",
    )
    assert isinstance(bad, Row)
    assert bad.flags == [
        "invalid_ct_value",
        "invalid_reported_at",
        "invalid_result",
        "missing_lab_code",
    ]
    none = transform_result({"result": "positive"}, "r.csv", 4, tz="Asia/Shanghai")
    assert isinstance(none, Quarantined)


def test_compound_rules() -> None:
    c = transform_compound(
        {"compound_code": "C1", "name": "n", "address": "a", "district_code": "310103"}, "c.csv", 2
    )
    assert isinstance(c, Row) and c.props["district_code"] == "310101"
    bad = transform_compound(
        {"compound_code": "C2", "district_code": "31", "lat": "200"}, "c.csv", 3
    )
    assert isinstance(bad, Row)
    assert {"invalid_district_code", "invalid_lat", "missing_name", "missing_address"} <= set(
        bad.flags
    )
    assert isinstance(transform_compound({"name": "x"}, "c.csv", 4), Quarantined)


def test_method_is_stored_as_a_code_and_read_back_by_name() -> None:
    """A known method is one digit on the node (a property block less); a method that is no
    known one is kept as sent, flagged, and never read as a code (docs/footprint.md)."""
    assert set(domain.METHOD_CODES) == set(domain.METHODS)
    assert len(set(domain.METHOD_CODES.values())) == len(domain.METHODS)
    for name in domain.METHODS:
        r = row(reg(method=name))
        assert r.props["method"] == domain.METHOD_CODES[name] != name
        assert domain.method_read(r.props["method"], r.flags) == name
    sent_code = row(reg(method="1"))  # someone sends a code: no method, kept as sent
    assert "invalid_method" in sent_code.flags and sent_code.props["method"] == "1"
    assert domain.method_read("1", sent_code.flags) == "1"
    assert sent_code.props["raw"] is not None  # its line is the evidence
    assert domain.method_read("nucleic_code", []) == "nucleic_code"  # stored before codes
    assert row(reg(method=None)).props["method"] is None


def test_the_postgresql_peer_gets_every_column_of_a_registration() -> None:
    """The benchmark's peer stores the codes and id_type as columns: from the row's links,
    since the Neo4j node keeps them as relationships (bench/pg.py)."""
    from bench import pg

    r = row(reg())
    values = pg.reg_values(r)
    assert len(values) == len(pg.REG_COLUMNS)
    named = dict(zip(pg.REG_COLUMNS, values, strict=True))
    assert (named["compound_code"], named["box_code"], named["tube_code"]) == ("C1", "B1", "T1")
    assert named["id_type"] == "resident_id" and named["method"] == "1"
