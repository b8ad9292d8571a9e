"""Pure rules: ID numbers, phones, districts, timestamps, masking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import domain


def test_example_id_from_the_standard_is_valid() -> None:
    assert domain.resident_id_valid("11010519491231002X")
    assert domain.resident_id_valid("11010519491231002x")


@pytest.mark.parametrize(
    "bad",
    [
        "11010519491231002",  # too short
        "110105194912310021",  # wrong check character
        "11010519491331002X",  # month 13
        "11010519490230002X",  # 30 February (check char recomputed below)
        "1101051949123100AX",  # letters in the digits
        "",
    ],
)
def test_invalid_ids_are_detected(bad: str) -> None:
    if bad == "11010519490230002X":
        bad = bad[:17] + domain.id_check_char(bad[:17])
    assert not domain.resident_id_valid(bad)


def test_every_single_character_change_is_detected() -> None:
    valid = "11010519491231002X"
    for pos in range(18):
        for ch in "0123456789X":
            if ch == valid[pos]:
                continue
            changed = valid[:pos] + ch + valid[pos + 1 :]
            assert not domain.resident_id_valid(changed), changed


@pytest.mark.parametrize(
    "raw,ok",
    [
        ("13812345678", True),
        ("+86 138-1234-5678", True),
        ("0086 13812345678", True),
        ("12812345678", False),
        ("1381234567", False),
        ("021-5555", False),
        ("138123456789", False),
    ],
)
def test_phone_rules(raw: str, ok: bool) -> None:
    assert domain.phone_valid(raw) is ok


@pytest.mark.parametrize(
    "historic,present",
    [
        ("310103", "310101"),
        ("310108", "310106"),
        ("310119", "310115"),
        ("310230", "310151"),
        ("310225", "310115"),
        ("310115", "310115"),
        ("320102", "320102"),
    ],
)
def test_historic_area_codes_map_to_present_districts(historic: str, present: str) -> None:
    assert domain.present_district(historic) == present


def test_district_mapping_names_its_source() -> None:
    data = domain.district_data()
    assert "GB/T 2260" in data["source"]
    assert len(data["current"]) == 16
    for code, entry in data["historic"].items():
        assert domain.present_district(code) in data["current"], code
        assert entry["name"]


def test_registered_district_only_for_valid_resident_ids() -> None:
    first17 = "31010319800101001"
    valid = first17 + domain.id_check_char(first17)
    assert domain.registered_district_code("resident_id", valid) == "310101"
    assert domain.registered_district_code("passport", valid) is None
    assert (
        domain.registered_district_code(
            "resident_id", valid[:-1] + "0" if valid[-1] != "0" else valid[:-1] + "1"
        )
        is None
    )


def test_timestamps_need_an_offset_and_keep_it() -> None:
    dt = domain.parse_timestamp("2022-04-09T08:15:00+08:00")
    assert dt is not None and domain.iso(dt) == "2022-04-09T08:15:00+08:00"
    assert domain.parse_timestamp("2022-04-09T08:15:00") is None
    assert domain.parse_timestamp("yesterday") is None
    late = domain.parse_timestamp("2022-04-09T17:30:00Z")
    assert late is not None and domain.local_day(late, "Asia/Shanghai") == "2022-04-10"


def test_person_id_is_opaque_and_stable() -> None:
    key = domain.person_key("resident_id", "11010519491231002x", "r1")
    assert key == domain.person_key("resident_id", "11010519491231002X", "r2")
    pid = domain.person_id("secret", key)
    assert pid == domain.person_id("secret", key)
    assert "1101051949" not in pid and pid != domain.person_id("other", key)


def test_masking() -> None:
    assert domain.mask_id_number("310101198001010011") == "**************0011"
    assert domain.mask_id_number("E57140543") == "*****0543"  # at most 4 characters shown
    assert domain.mask_id_number("E1234") == "*****"
    assert domain.mask_phone("13812345678") == "138****5678"
    assert domain.mask_phone(None) is None


@given(data=st.data())
def test_any_one_character_change_is_detected(data: st.DataObject) -> None:
    birth = r"(19[5-9][0-9])(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])"
    first17 = data.draw(st.from_regex(r"3101[0-9]{2}" + birth + r"[0-9]{3}", fullmatch=True))
    valid = first17 + domain.id_check_char(first17)
    assert domain.resident_id_valid(valid)
    pos = data.draw(st.integers(0, 17))
    ch = data.draw(st.sampled_from("0123456789X").filter(lambda c: c != valid[pos]))
    assert not domain.resident_id_valid(valid[:pos] + ch + valid[pos + 1 :])
