"""Files as they come from the field, written by the real writers: openpyxl workbooks, CSV in
GB18030/GBK from Python's codecs with the Excel dialect, full-width digits, 15-digit IDs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from engine import domain
from engine.access.keys import create_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_tube
from loaders import transform, write
from loaders.read import detect_encoding, read_file
from loaders.transform import Quarantined
from tests.helpers import registration

DATA = Path(__file__).parent.parent / "data"
REG_FIELDS = list(transform.REGISTRATION_FIELDS)
# 310115800101001 is the first-generation card of R01 (310115198001010016) in tests/data.
R01_15 = "310115800101001"
R01_18 = "310115198001010016"


def reg(record_id: str, tube: str, id_number: str, **kw: Any) -> dict[str, Any]:
    field_app = {
        "record_id": record_id,
        "collected_at": "2022-04-09T09:00:00+08:00",
        "tube_code": tube,
        "pool_size": "10",
        "method": "id_card",
        "id_number": id_number,
        "phone": "13812340000",
        "registered_address": "",
        "collector_id": "V1",
    }
    return registration(**(field_app | kw))


def write_csv(path: Path, rows: list[dict[str, Any]], encoding: str) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), dialect="excel")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(header)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def load(gw: Gateway, settings: Settings, kind: str, path: Path, **kw: Any) -> write.Summary:
    return write.load_records(gw, kind, read_file(path, kind, **kw), path.name, settings)


def person(trace: dict[str, Any], record_id: str) -> dict[str, Any]:
    return next(p for p in trace["persons"] if p["record_id"] == record_id)


def test_legacy_id_rule() -> None:
    # GB 11643's own example, in its first-generation form.
    assert domain.legacy_resident_id("110105491231002") == "11010519491231002X"
    assert domain.legacy_resident_id(R01_15) == R01_18
    assert domain.legacy_resident_id("110105491331002") is None  # month 13
    assert domain.legacy_resident_id("11010549123100") is None
    assert domain.legacy_resident_id(R01_18) is None


def test_full_width_and_15_digit_fields_are_normalised_before_any_rule() -> None:
    record = reg(
        "Ｒ１",
        "Ｔ１",
        "３１０１１５８００１０１００１",
        phone="１３８ １２３４ ５６７０",
        compound_code="  Ｃ１\u3000",
        pool_size="１０",
    )
    row = transform.transform_registration(record, "f", 2, tz="Asia/Shanghai", secret="s")
    assert not isinstance(row, Quarantined)
    assert row.key == "file/R1" and row.props["record_id"] == "R1"  # (source, record_id)
    assert row.links["tube_code"] == "T1" and row.links["compound_code"] == "C1"
    assert row.props["phone"] == "13812345670" and row.props["pool_size"] == 10
    assert row.links["person"]["id_number"] == R01_18
    assert row.links["person"]["registered_district_code"] == "310115"
    assert row.flags == ["legacy_id_15"]
    ascii_row = transform.transform_registration(
        reg("R1", "T1", R01_15, phone="138 1234 5670", compound_code="C1", pool_size="10"),
        "f",
        2,
        tz="Asia/Shanghai",
        secret="s",
    )
    assert not isinstance(ascii_row, Quarantined)
    # The same content once normalised: a re-send is a duplicate, not a conflict.
    assert ascii_row.content_hash == row.content_hash
    assert ascii_row.links["person"]["person_id"] == row.links["person"]["person_id"]


def test_multiline_quoted_fields_keep_their_first_line_number(tmp_path: Path) -> None:
    rows = [
        reg("R1", "T1", R01_18, registered_address="上海市浦东新区\n金杨路100弄\r\n3号"),
        reg("R2", "T1", "31011519810101011X"),
    ]
    path = write_csv(tmp_path / "r.csv", rows, "utf-8")
    items = list(read_file(path, "registrations"))
    assert [line for line, _ in items] == [2, 5]
    first = items[0][1]
    assert isinstance(first, dict)
    assert first["registered_address"] == "上海市浦东新区\n金杨路100弄\r\n3号"


@pytest.mark.parametrize("encoding", ["gb18030", "gbk", "utf-8-sig", "utf-8"])
def test_excel_csv_encodings_are_detected(
    gw: Gateway, settings: Settings, tmp_path: Path, encoding: str
) -> None:
    rows = [
        reg("R1", "T1", R01_18, name="张三丰", registered_address="上海市\n浦东新区"),
        reg("R2", "T1", "31011519810101011X", name="李四", phone="１３９００００１１１１"),
    ]
    path = write_csv(tmp_path / "registrations.csv", rows, encoding)
    expected = "gb18030" if encoding in ("gb18030", "gbk") else "utf-8"
    assert detect_encoding(path) == expected
    load(gw, settings, "compounds", DATA / "compounds.csv")
    summary = load(gw, settings, "registrations", path)
    assert summary.counts()["stored"] == 2 and summary.quarantined == 0
    t1 = trace_tube(gw, "T1")
    assert [p["name"] for p in t1["persons"]] == ["张三丰", "李四"]
    assert person(t1, "R2")["phone"] == "13900001111"


def test_undecodable_line_of_a_gb18030_file_goes_to_the_quarantine(tmp_path: Path) -> None:
    good = write_csv(
        tmp_path / "good.csv",
        [reg("R1", "T1", R01_18, name="张三"), reg("R2", "T2", R01_18, name="李四")],
        "gb18030",
    )
    lines = good.read_bytes().split(b"\r\n")
    lines[2] = lines[2].replace("李四".encode("gb18030"), b"\xff\xff")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\r\n".join(lines))
    items = list(read_file(bad, "registrations"))
    assert isinstance(items[0][1], dict) and items[0][1]["name"] == "张三"
    q = items[1][1]
    assert isinstance(q, Quarantined) and q.line == 3 and "GB18030" in q.reason


def test_encoding_option_overrides_detection(
    gw: Gateway, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    # Big5 bytes also decode as GB18030 (as other characters): detection cannot know.
    path = write_csv(tmp_path / "r.csv", [reg("RB", "TB", R01_18, name="張三豐")], "big5")
    assert detect_encoding(path) == "gb18030"
    cli = [sys.executable, "-m", "cli"]
    done = subprocess.run(
        [*cli, "load", "registrations", str(path), "--encoding", "big5"],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "stored 1" in done.stdout
    traced = subprocess.run(
        [*cli, "trace", "TB", "--json"],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert json.loads(traced.stdout)["persons"][0]["name"] == "張三豐"
    # A name Python's codecs know but that is no text encoding (rot13, base64) printed a
    # traceback: it is an unknown encoding too.
    for name in ("klingon", "rot13", "base64"):
        wrong = subprocess.run(
            [*cli, "load", "results", str(path), "--encoding", name],
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert wrong.returncode == 1 and "Traceback" not in wrong.stderr, wrong.stderr[-2000:]
        assert f"unknown encoding '{name}'" in wrong.stderr


def test_xlsx_workbooks_of_every_kind(gw: Gateway, settings: Settings, tmp_path: Path) -> None:
    compounds = write_xlsx(
        tmp_path / "compounds.xlsx",
        ["compound_code", "name", "address", "district_code", "contact_phone"],
        [["Ｃ１", "金杨新村", "上海市浦东新区金杨路100弄", 310115, 13600000001]],
    )
    regs = write_xlsx(
        tmp_path / "registrations.xlsx",
        REG_FIELDS,
        [
            [
                "R1",
                "2022-04-09T09:00:00+08:00",
                "C1",
                "B1",
                "T1",
                10,
                "id_card",
                "resident_id",
                R01_15,
                "张三",
                None,
                "上海市浦东新区\n金杨路100弄",
                "V1",
            ],
            [
                "R2",
                "2022-04-09T09:01:00+08:00",
                "C1",
                "B1",
                "T1",
                10,
                "nucleic_code",
                "resident_id",
                "３１０１１５１９８１０１０１０１１ｘ",
                "李四",
                13900001111,
                None,
                "V1",
            ],
        ],
    )
    results = write_xlsx(
        tmp_path / "results.xlsx",
        ["tube_code", "result", "reported_at", "lab_code", "ct_value"],
        [["T1", "positive", "2022-04-09T20:00:00+08:00", "LAB01", 28.5]],
    )
    directory = write_xlsx(
        tmp_path / "directory.xlsx",
        ["id_type", "id_number", "phone", "phone_owner", "source", "updated_at"],
        [["resident_id", R01_15, 13700000002, "household", "census", "2022-04-01T00:00:00+08:00"]],
    )
    assert load(gw, settings, "compounds", compounds).stored == 1
    assert load(gw, settings, "registrations", regs).stored == 2
    assert load(gw, settings, "results", results).stored == 1
    assert load(gw, settings, "directory", directory).stored == 1
    t1 = trace_tube(gw, "T1")
    r1, r2 = person(t1, "R1"), person(t1, "R2")
    assert r1["id_number"] == R01_18 and "legacy_id_15" in r1["flags"]
    assert r1["contacts"] == [
        {
            "phone": "13700000002",
            "owner": "household",
            "source": "census",
            "updated_at": "2022-04-01T00:00:00+08:00",
        }
    ]
    assert r2["id_number"] == "31011519810101011X" and r2["phone"] == "13900001111"
    assert r2["flags"] == []
    assert t1["compound"]["contact_phone"] == "13600000001"
    assert t1["tube"]["results"][0]["ct_value"] == 28.5


def test_15_and_18_digit_ids_are_one_person(gw: Gateway, settings: Settings) -> None:
    for kind, name in (
        ("compounds", "compounds.csv"),
        ("registrations", "registrations.csv"),
        ("results", "results.jsonl"),
    ):
        load(gw, settings, kind, DATA / name)
    t1 = trace_tube(gw, "T1")
    items = [(1, reg("L15", "T15", R01_15, collected_at="2022-04-09T10:00:00+08:00"))]
    summary = write.load_records(gw, "registrations", items, "f", settings, keep_outcomes=True)
    assert "legacy_id_15" in summary.outcomes[0].flags
    t15 = trace_tube(gw, "T15")
    assert person(t15, "L15")["person_id"] == person(t1, "R01")["person_id"]
    # Same person, another pooled tube the same day.
    assert "duplicate_registration" in person(t15, "L15")["flags"]
    assert "duplicate_registration" in person(trace_tube(gw, "T1"), "R01")["flags"]


def test_api_bodies_are_normalised(gw: Gateway, api_url: str) -> None:
    secret = create_key(gw, role="collector", district=None).secret
    body = [
        {
            "record_id": "Ａ１",
            "collected_at": "2022-04-09T09:00:00+08:00",
            "compound_code": "C1",
            "box_code": "B1",
            "tube_code": "ＴＡ",
            "pool_size": "１０",
            "method": "id_card",
            "id_type": "resident_id",
            "id_number": R01_15,
            "name": "张三",
            "phone": "＋８６ １３８１２３４５６７０",
        }
    ]
    resp = httpx.post(  # a fresh database's first write: seconds on a busy machine
        f"{api_url}/v1/registrations",
        json=body,
        headers={"Authorization": f"Bearer {secret}"},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    outcome = resp.json()["outcomes"][0]
    assert outcome["key"] == "A1" and outcome["status"] == "stored"
    assert "legacy_id_15" in outcome["flags"]
    p = trace_tube(gw, "TA")["persons"][0]
    assert p["id_number"] == R01_18 and p["phone"] == "13812345670"
