"""What a registration, a person's day and an event keep since the footprint cut
(docs/footprint.md), and that every promise around them holds: duplicates, conflicts with the
first version side by side (rebuilt from what is stored, or the line a record stored before
kept), one day per person and day under concurrent loads, the feed's event ids and times."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from engine import domain
from engine.access.keys import Principal
from engine.feed.status import person_status
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_many
from loaders import transform, write
from tests.helpers import quarantined, registration


def load_rows(
    gw: Gateway, settings: Settings, rows: list[dict[str, Any]], source: str = "f"
) -> Any:
    items = [(i + 1, r) for i, r in enumerate(rows)]
    return write.load_records(gw, "registrations", items, source, settings, keep_outcomes=True)


def trace_reads_as_sent(gw: Gateway, sent: dict[str, Any]) -> Any:
    """Tube T1's trace, its one member named with the method, box and id_type as sent."""
    [trace] = trace_many(gw, ["T1"]).values()
    [member] = trace["persons"]
    assert (member["method"], member["box_code"], member["id_type"]) == (
        "nucleic_code",
        sent["box_code"],
        "resident_id",
    )
    return trace


def test_a_registration_keeps_no_line_and_a_short_digest(gw: Gateway, settings: Settings) -> None:
    first = registration(phone="138 1234 5678")
    assert load_rows(gw, settings, [first]).counts()["stored"] == 1
    pid = domain.person_id(gw.secret(), domain.person_key("resident_id", first["id_number"], ""))
    shape = gw.read("stored_record_shapes", reg_key="file/R1", person_id=pid)[0]
    reg = shape["registration"]
    assert not {"raw", "sender"} & set(reg) and len(reg["content_hash"]) == domain.DIGEST_HEX
    # What its relationships and its person say is not kept again; the method is a code.
    gone = {"compound_code", "box_code", "tube_code", "id_type", "source", "line"}
    assert not gone & set(reg) and reg["method"] == domain.METHOD_CODES["nucleic_code"]
    [day] = shape["days"]  # its district is unset: compound C1 is not known
    assert {"day", "status", "since"} <= set(day) <= {"day", "status", "since", "district_code"}
    assert shape["since_types"] == ["LOCAL DATETIME NOT NULL"]  # in UTC: a block less
    assert not {"event_id", "type"} & set(shape["event"])  # a status change's type is implied
    assert shape["occurred_at_type"].startswith("ZONED")
    # Read back as before: the trace names the codes and the method, the status its time.
    trace = trace_reads_as_sent(gw, first)
    assert trace["box"] == {"code": first["box_code"]}
    assert trace["compound"] is not None and trace["compound"]["code"] == first["compound_code"]
    since = person_status(gw, pid, day["day"], Principal("k1", "investigator"))["since"]
    assert since is not None and since.endswith("+00:00")

    # The same again is a duplicate; new content a conflict showing the stored version.
    assert load_rows(gw, settings, [first]).counts()["duplicates"] == 1
    changed = first | {"phone": "13900000000", "name": "李四"}
    assert load_rows(gw, settings, [changed]).counts()["conflicts"] == 1
    [q] = quarantined(gw)
    existing = json.loads(q["existing"])
    # The stored version: the builder's record, its phone as stored (normalised).
    assert existing == registration(phone="13812345678")
    assert json.loads(q["raw"])["phone"] == "13900000000"


def test_a_registration_stored_before_keeps_its_line_and_long_digest(
    gw: Gateway, settings: Settings
) -> None:
    first = registration()
    load_rows(gw, settings, [first])
    row = transform.transform_registration(first, "f", 1, tz=settings.timezone, secret="x")
    assert isinstance(row, transform.Row)
    full = domain.content_hash(json.loads(row.raw))
    assert full.startswith(row.content_hash) and len(full) == 64
    gw.write("age_registration", reg_key="file/R1", raw=row.raw, content_hash=full)
    assert load_rows(gw, settings, [first]).counts()["duplicates"] == 1
    assert load_rows(gw, settings, [first | {"name": "王五"}]).counts()["conflicts"] == 1
    [q] = quarantined(gw)
    assert q["existing"] == row.raw


def test_the_shapes_stored_before_the_second_cut_read_as_before(
    gw: Gateway, settings: Settings
) -> None:
    """A store written before: codes, id_type, source and line on the registration, its
    method by name, a day's `since` with its zone, events with their `type`. Every reader
    answers as it does for the new shapes."""
    first = registration(phone="138 1234 5678")
    load_rows(gw, settings, [first])
    old = {k: first[k] for k in ("compound_code", "box_code", "tube_code", "id_type")}
    old |= {"source": "f", "line": 1, "method": "nucleic_code"}
    since = datetime(2022, 4, 9, 20, 0, tzinfo=timezone(timedelta(hours=8)))
    gw.write("age_store_shapes", reg_key="file/R1", props=old, since=since)
    pid = domain.person_id(gw.secret(), domain.person_key("resident_id", first["id_number"], ""))

    trace_reads_as_sent(gw, first)
    status = person_status(gw, pid, "2022-04-09", Principal("k1", "investigator"))
    assert status["since"] == "2022-04-09T12:00:00+00:00"  # the same moment, in UTC
    [change] = gw.read("status_changes_page", after=0, limit=10)
    assert change["event"]["type"] == "status.changed" and change["event"]["status"] == "pending"
    # A conflict shows the first version as the new shapes show it.
    assert load_rows(gw, settings, [first | {"name": "王五"}]).counts()["conflicts"] == 1
    [q] = quarantined(gw)
    assert json.loads(q["existing"]) == registration(phone="13812345678")


def test_two_loads_of_one_person_day_make_one_day(gw: Gateway, settings: Settings) -> None:
    """Days have no unique key any more: the person's lock is what keeps them one."""
    rows = [
        [registration(record_id=f"A{i}", tube_code=f"TA{i}", box_code="BA") for i in range(5)],
        [registration(record_id=f"B{i}", tube_code=f"TB{i}", box_code="BB") for i in range(5)],
    ]
    errors: list[BaseException] = []

    def go(batch: list[dict[str, Any]], source: str) -> None:
        try:
            load_rows(gw, settings, batch, source)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(b, f"s{i}")) for i, b in enumerate(rows)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    pid = domain.person_id(
        gw.secret(), domain.person_key("resident_id", registration()["id_number"], "")
    )
    shape = gw.read("stored_record_shapes", reg_key="file/A0", person_id=pid)[0]
    assert [d["day"] for d in shape["days"]] == ["2022-04-09"]


def test_a_result_in_conflict_shows_its_stored_fields(gw: Gateway, settings: Settings) -> None:
    first = {
        "tube_code": "T1",
        "result": "negative",
        "reported_at": "2022-04-09T20:00:00+08:00",
        "lab_code": "L1",
        "ct_value": "",
    }
    items = [(1, first), (2, first | {"result": "positive", "ct_value": "31.5"})]
    summary = write.load_records(gw, "results", items[:1], "r", settings)
    assert summary.counts()["stored"] == 1
    again = write.load_records(gw, "results", items, "r", settings)
    assert (again.counts()["duplicates"], again.counts()["conflicts"]) == (1, 1)
    [q] = quarantined(gw)
    assert json.loads(q["existing"]) == {
        "tube_code": "T1",
        "result": "negative",
        "reported_at": "2022-04-09T20:00:00+08:00",
        "lab_code": "L1",
    }


def test_a_registration_with_an_invalid_value_keeps_its_line(
    gw: Gateway, settings: Settings
) -> None:
    """The evidence of what was sent when a field cannot hold it: the line stays."""
    bad = registration(record_id="R2", collected_at="yesterday morning", pool_size="many")
    load_rows(gw, settings, [bad])
    pid = domain.person_id(gw.secret(), domain.person_key("resident_id", bad["id_number"], ""))
    reg = gw.read("stored_record_shapes", reg_key="file/R2", person_id=pid)[0]["registration"]
    assert "collected_at" not in reg and "pool_size" not in reg
    sent = json.loads(reg["raw"])
    assert (sent["collected_at"], sent["pool_size"]) == ("yesterday morning", "many")
    assert load_rows(gw, settings, [bad | {"name": "王五"}]).counts()["conflicts"] == 1
    [q] = quarantined(gw)
    assert q["existing"] == reg["raw"]
