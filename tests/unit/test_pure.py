"""Pure functions without a database: trace building and dispatch planning. (ID, phone and
transform rules: tests/unit/test_domain.py and tests/unit/test_records.py.)"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.loop.tasks import plan_dispatch, task_id
from engine.trace.build import build_trace

AT = datetime(2022, 4, 9, 8, 15, tzinfo=UTC)
C1 = {"code": "C1", "name": "n", "address": "a", "district_code": "310115", "subdistrict": "s"}


def reg(record_id: str, **over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "person_id": f"p_{record_id}",
        "id_type": "resident_id",
        "id_number": "X",
        "name": "n",
        "phone": "13800000000",
        "method": "nucleic_code",
        "record_id": record_id,
        "collected_at": AT,
        "compound_code": "C1",
        "compound": C1,
        "box_code": "B1",
        "pool_size": 2,
        "registered_district_code": "310115",
        "flags": [],
        "duplicate": False,
        "box_compounds_that_day": 1,
    }
    return r | over


def test_trace_of_a_clean_pool() -> None:
    row = {
        "code": "T1",
        "registrations": [reg("R1"), reg("R2", registered_district_code="310104")],
        "results": [
            {"result": "positive", "reported_at": AT, "lab_code": "L", "ct_value": 28.5},
        ],
    }
    t = build_trace(row)
    assert t["tube"]["result"] == "positive"
    assert t["tube"]["pool_size"] == 2
    assert t["flags"] == []
    assert t["compound"]["district"] == "浦东新区"
    assert [p["household_separated"] for p in t["persons"]] == [False, True]
    assert t["box"] == {"code": "B1"} and t["boxes"] == ["B1"]


def test_trace_tube_flags() -> None:
    row = {
        "code": "T2",
        "registrations": [
            reg("R1", pool_size=1),
            reg("R2", pool_size=5, box_code="B2", compound_code="C9", compound=None),
        ],
        "results": [],
    }
    t = build_trace(row)
    assert t["flags"] == [
        "over_pool_size",
        "pool_size_mismatch",
        "tube_multiple_boxes",
        "tube_multiple_compounds",
    ]
    assert t["persons"][1]["flags"] == ["unknown_compound"]
    assert t["tube"]["result"] is None and t["tube"]["results"] == []


def test_trace_of_a_result_without_registrations() -> None:
    t = build_trace({"code": "T3", "registrations": [], "results": []})
    assert t["flags"] == ["no_registrations"] and t["persons"] == [] and t["compound"] is None


def member(pid: str, pool_size: int | None, district: str | None = "310115") -> dict[str, Any]:
    return {
        "person_id": pid,
        "record_id": f"r{pid}",
        "district_code": district,
        "compound_code": "C1",
        "collected_at": AT,
        "pool_size": pool_size,
    }


def ctx(result: str, members: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "tube_code": "T1",
        "result": result,
        "reported_at": AT,
        "day": "2022-04-09",
        "members": members,
        "open_resample_tasks": [],
        "open_case_tasks": [],
        "retest_tasks": [],
        "person_open_tasks": [],
    }
    return c | over


def test_positive_pool_plans_follow_ups_in_residence_districts() -> None:
    plan = plan_dispatch([ctx("positive", [member("a", 2), member("b", 2, None)])], AT)
    assert [(u["props"]["kind"], u["props"]["district_code"]) for u in plan.upserts] == [
        ("follow_up", "310115"),
        ("follow_up", "unassigned"),
    ]
    assert plan.upserts[0]["task_id"] == task_id("a", "T1", "follow_up")
    assert plan.positive_persons == ["a", "b"]


def test_pool_of_one_declared_pooled_is_pooled() -> None:
    plan = plan_dispatch([ctx("positive", [member("a", 10)])], AT)
    assert [u["props"]["kind"] for u in plan.upserts] == ["follow_up"] and not plan.cases


def test_single_positive_is_a_case_or_confirms_a_retest() -> None:
    plan = plan_dispatch([ctx("positive", [member("a", 1)])], AT)
    assert [u["props"]["kind"] for u in plan.upserts] == ["case"] and len(plan.cases) == 1
    plan = plan_dispatch([ctx("positive", [member("a", 1)], retest_tasks=["k1"])], AT)
    assert plan.upserts == [] and plan.closes == [(["k1"], "confirmed", plan.closes[0][2])]


def test_invalid_and_negative() -> None:
    plan = plan_dispatch([ctx("invalid", [member("a", 5), member("b", 5)])], AT)
    assert [u["props"]["kind"] for u in plan.upserts] == ["resample", "resample"]
    plan = plan_dispatch([ctx("negative", [member("a", 1)], retest_tasks=["k1"])], AT)
    assert plan.closes[0][:2] == (["k1"], "released")
    plan = plan_dispatch([ctx("positive", [member("a", 5)], open_resample_tasks=["k2"])], AT)
    assert plan.closes[0][:2] == (["k2"], "superseded")


def test_test_files_never_import_each_other() -> None:
    offences = []
    for f in Path(__file__).parent.parent.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests."):
                if node.module != "tests.helpers":
                    offences.append(f"{f.name}: from {node.module}")
    assert offences == []


def test_request_bodies_take_the_loader_fields() -> None:
    """The API's bodies and the loader read the same fields, in the same order."""
    from api import models
    from loaders import transform

    assert tuple(models.RegistrationIn.model_fields) == transform.REGISTRATION_FIELDS
    assert tuple(models.ResultIn.model_fields) == transform.RESULT_FIELDS
    assert tuple(models.DirectoryEntryIn.model_fields) == transform.DIRECTORY_FIELDS


def test_overdue_is_one_rule_for_the_queue_and_the_timeliness_report() -> None:
    from datetime import timedelta

    from engine.loop.progress import is_overdue
    from engine.loop.tasks import OVERDUE_AFTER, overdue

    now = AT + timedelta(days=3)
    old, fresh = now - OVERDUE_AFTER - timedelta(seconds=1), now - OVERDUE_AFTER
    assert overdue("pending", old, now) and not overdue("pending", fresh, now)
    assert not overdue("closed", old, now) and not overdue("pending", None, now)
    assert is_overdue({"status": "contacted", "created_at": old.isoformat()}, now)
    assert not is_overdue({"status": "contacted", "created_at": None}, now)


def test_days_outside_the_plausible_years_are_refused() -> None:
    import pytest

    from engine.domain import FIRST_DAY, LAST_DAY, PLAUSIBLE_YEARS, parse_day
    from engine.errors import InputError

    assert (FIRST_DAY.year, LAST_DAY.year) == PLAUSIBLE_YEARS
    assert parse_day("2022-04-09") == "2022-04-09"
    for bad in ("1999-12-31", "2100-01-01", "9999-12-31", "2022-02-30", "yesterday"):
        with pytest.raises(InputError):
            parse_day(bad)


def test_a_time_whose_china_day_no_read_can_ask_for_is_flagged() -> None:
    """Within the plausible years at its own offset, outside them as a day in China: flagged
    as invalid (the record is kept), not stored on a day no status read can reach."""
    from loaders.transform import transform_registration

    def reg(at: str) -> Any:
        record = {
            "record_id": "R1",
            "collected_at": at,
            "tube_code": "T1",
            "pool_size": 10,
            "id_type": "passport",
            "id_number": "E57140543",
        }
        # Judged on 2100-01-01: 2099 is not the future then (tests/integration/test_hardening.py).
        return transform_registration(
            record,
            "f.csv",
            2,
            tz="Asia/Shanghai",
            secret="s" * 32,
            now=datetime(2100, 1, 1, 12, tzinfo=UTC),
        )

    for at in ("2099-12-31T20:00:00-02:00", "2000-01-01T01:00:00+14:00"):
        row = reg(at)
        assert "invalid_collected_at" in row.flags and row.props["day"] is None, at
    for at, day in (
        ("2099-12-31T10:00:00-02:00", "2099-12-31"),
        ("2000-01-01T01:00:00+08:00", "2000-01-01"),
    ):
        row = reg(at)
        assert "invalid_collected_at" not in row.flags and row.props["day"] == day, at


def test_read_ahead_in_order_hands_on_errors_and_stops_with_its_caller() -> None:
    """The loader transforms the next batch in a thread while it writes this one: items come
    out in order, an error of the reading side is raised in the caller, and a caller that
    stops early stops the reader (no thread left behind), also when the reader has already
    made the last item."""
    import threading
    import time

    import pytest

    from engine.ahead import read_ahead

    made: list[int] = []

    def batches(fail_at: int | None = None, n: int = 6) -> Any:
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"unreadable batch {i}")
            made.append(i)
            yield i

    assert list(read_ahead(batches(), 1, "t-ahead")) == [0, 1, 2, 3, 4, 5]
    got: list[int] = []
    with pytest.raises(ValueError, match="unreadable batch 3"):
        for b in read_ahead(batches(fail_at=3), 1, "t-ahead"):
            got.append(b)
    assert got == [0, 1, 2]
    made.clear()
    for b in read_ahead(batches(), 1, "t-ahead"):
        if b == 1:
            break
    assert made[-1] <= 3  # at most the next batch and the one waiting were read
    # A caller that stops after the second of three: the reader holds the end mark, with
    # the queue full. It used to wait for room forever (the loader hung after a failed write
    # of its second-to-last batch).
    items = read_ahead(batches(n=3), 1, "t-ahead")
    assert [next(items), next(items)] == [0, 1]
    time.sleep(0.3)  # the reader has queued the last batch and holds the end mark
    closing = threading.Thread(target=items.close, daemon=True)
    closing.start()
    closing.join(timeout=5)
    assert not closing.is_alive(), "closing the reader hangs"
    assert not [t for t in threading.enumerate() if t.name == "t-ahead"]


def test_ordered_map_keeps_order_raises_in_place_and_stops_with_its_caller() -> None:
    """Pages traced by two threads (the day's positives): results in the items' order however
    the calls finish, an error raised in its place after the results before it, and a caller
    that stops early: the calls not yet started never run, and no thread is left behind."""
    import threading
    import time

    import pytest

    from engine.ahead import ordered_map

    def slow_first(i: int) -> int:
        time.sleep(0.05 if i % 2 == 0 else 0)  # the odd ones finish first
        if i == 5:
            raise ValueError("page 5 failed")
        return i * 10

    got: list[int] = []
    with pytest.raises(ValueError, match="page 5 failed"):
        for r in ordered_map(slow_first, range(8), 2, "t-map"):
            got.append(r)
    assert got == [0, 10, 20, 30, 40]
    started: list[int] = []

    def record(i: int) -> int:
        started.append(i)
        return i

    results = ordered_map(record, range(100), 2, "t-map")
    assert next(results) == 0
    results.close()
    assert max(started) <= 3 and not [
        t for t in threading.enumerate() if t.name.startswith("t-map")
    ]


def test_an_import_files_link_line_is_what_the_csv_writer_writes(tmp_path: Path) -> None:
    import gzip

    from loaders.bulk_files import _Csv

    pairs = [("R1", "T000000001"), ('r"q', "T2"), ("a,b", "T3"), ("x\ny", "T4"), ("é", "中")]
    fast = _Csv(tmp_path / "fast.csv", [":START_ID(R)", ":END_ID(T)", ":TYPE"])
    slow = _Csv(tmp_path / "slow.csv", [":START_ID(R)", ":END_ID(T)", ":TYPE"])
    for start, end in pairs:
        fast.write_link(start, end, "INTO_TUBE")
        slow.write({"START_ID": start, "END_ID": end, "TYPE": "INTO_TUBE"})
    fast.close()
    slow.close()
    text = gzip.decompress((tmp_path / "fast.csv.gz").read_bytes())
    assert text == gzip.decompress((tmp_path / "slow.csv.gz").read_bytes())
    assert b'"r""q",T2,INTO_TUBE' in text and b"R1,T000000001,INTO_TUBE\r\n" in text


def test_a_registrations_worker_lines_are_what_the_import_files_write(tmp_path: Path) -> None:
    import gzip

    from loaders.bulk_files import PERSON_HEADER, REG_HEADER, _Csv, _Line

    values = {
        "record_id": 'R,1"x',
        "collected_at": datetime(2022, 4, 9, 8, 30, tzinfo=UTC),
        "pool_size": 10,
        "flags": ["missing_phone", "unknown_compound"],
        "name": "张三\n",
        "phone": None,
        "LABEL": "Registration",
    }
    person = {"person_id": "p_00ff", "id_type": "id_card", "LABEL": "Person"}
    for header, row in ((REG_HEADER, values), (PERSON_HEADER, person)):
        written = _Csv(tmp_path / "f.csv", header)
        written.write(row)
        written.close()
        text = gzip.decompress((tmp_path / "f.csv.gz").read_bytes()).decode("utf-8")
        assert text.split("\r\n", 1)[1] == _Line(header)(row)


def test_cli_prints_user_data_in_brackets_as_it_is() -> None:
    """rich would read `[fe80::1]` or `[bold]` in a URL or a name as markup and drop it."""
    from rich.table import Table

    from cli import render

    with render.out.capture() as captured:
        table = Table("url")
        table.add_row("http://[fe80::1]:9/h")
        render.out.print(table)
        render.out.print(render.styled("red", "error:", " name [bold]x[/bold]"))
    text = captured.get()
    assert "http://[fe80::1]:9/h" in text
    assert "error: name [bold]x[/bold]" in text
