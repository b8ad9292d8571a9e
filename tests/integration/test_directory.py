"""The population directory: contacts, the compound as the last route, the directory's residence
for persons at unknown compounds, late data re-routing open tasks, and completeness."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.access.keys import Principal, create_key
from engine.analysis import reports
from engine.errors import NotFound
from engine.feed import status
from engine.loop import tasks
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_tube
from loaders import transform, write
from tests.helpers import directory_entry, graph_fingerprint, load, load_city, registration

DATA = Path(__file__).parent.parent / "data"
R09_ID = "310103197505051233"  # R09 in tests/data: ID card, no phone, tube T1 (positive)


def load_rows(gw: Gateway, settings: Settings, kind: str, rows: list[dict[str, Any]]) -> Any:
    items = [(i + 1, r) for i, r in enumerate(rows)]
    return write.load_records(gw, kind, items, "test", settings, keep_outcomes=True)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(transform.DIRECTORY_FIELDS), dialect="excel")
        writer.writeheader()
        writer.writerows(rows)
    return path


def entry(id_number: str, **kw: Any) -> dict[str, Any]:
    return directory_entry(id_number=id_number, **kw)


def reg(record_id: str, tube: str, id_number: str, compound: str, **kw: Any) -> dict[str, Any]:
    row = registration(
        record_id=record_id,
        collected_at="2022-04-09T09:00:00+08:00",
        compound_code=compound,
        box_code="BX",
        tube_code=tube,
        method="id_card",
        id_number=id_number,
        name=record_id,
    )
    del row["phone"]  # the directory gives it
    return row | kw


def person(trace: dict[str, Any], record_id: str) -> dict[str, Any]:
    return next(p for p in trace["persons"] if p["record_id"] == record_id)


def task_of(gw: Gateway, district: str, record_id: str) -> dict[str, Any] | None:
    found = [t for t in tasks.all_tasks(gw, district) if t["person"]["record_id"] == record_id]
    return found[0] if found else None


def test_contacts_newest_first_and_the_compound_as_last_route(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    load_city(gw, settings)
    before = person(trace_tube(gw, "T1"), "R09")
    assert before["contacts"] == [] and "no_usable_phone" in before["flags"]
    t09 = task_of(gw, "310115", "R09")
    assert t09 is not None and t09["contact_via"] == "compound"
    assert t09["contact_phone"] is None  # the compound has no phone yet
    path = write_csv(
        tmp_path / "directory.csv",
        [
            entry(R09_ID, phone="13700000001", updated_at="2022-03-01T00:00:00+08:00"),
            entry(
                R09_ID,
                phone="+86 137-0000-0002",
                phone_owner="household",
                source="health_code",
                updated_at="2022-04-05T00:00:00+08:00",
            ),
            entry(R09_ID, phone="12345", source="health_code"),
            entry("310115198001010016", phone="13700000003"),
            entry("310115198001010016", phone="13812345670", source="health_code"),
            entry("", phone="13700000009"),
        ],
    )
    summary = load(gw, settings, "directory", path)
    assert summary.counts() == {
        "read": 6,
        "stored": 5,
        "duplicates": 0,
        "conflicts": 0,
        "updated": 0,
        "flagged": 1,
        "quarantined": 1,
    }
    t1 = trace_tube(gw, "T1")
    r09 = person(t1, "R09")
    assert r09["phone"] is None and "no_usable_phone" not in r09["flags"]
    assert "missing_phone" in r09["flags"]
    assert r09["contacts"] == [
        {
            "phone": "13700000002",
            "owner": "household",
            "source": "health_code",
            "updated_at": "2022-04-05T00:00:00+08:00",
        },
        {
            "phone": "13700000001",
            "owner": "self",
            "source": "census",
            "updated_at": "2022-03-01T00:00:00+08:00",
        },
    ]
    # The registration's own phone first; the same number from the directory is not repeated.
    assert [c["phone"] for c in person(t1, "R01")["contacts"]] == ["13812345670", "13700000003"]
    assert person(t1, "R01")["contacts"][0]["source"] == "registration"
    t09 = task_of(gw, "310115", "R09")
    assert t09 is not None and t09["contact_via"] == "phone" and t09["contact_phone"] is None

    # Latest updated_at wins for the same (person, source, phone); older changes nothing.
    newer = write_csv(
        tmp_path / "newer.csv",
        [
            entry(
                R09_ID,
                phone="13700000001",
                phone_owner="household",
                updated_at="2022-04-09T00:00:00+08:00",
            ),
            entry(
                R09_ID,
                phone="13700000002",
                source="health_code",
                updated_at="2022-01-01T00:00:00+08:00",
            ),
        ],
    )
    counts = load(gw, settings, "directory", newer).counts()
    assert counts["updated"] == 1 and counts["duplicates"] == 1
    r09 = person(trace_tube(gw, "T1"), "R09")
    assert [(c["phone"], c["owner"]) for c in r09["contacts"]] == [
        ("13700000001", "household"),
        ("13700000002", "household"),
    ]
    fingerprint = graph_fingerprint(gw)
    load(gw, settings, "directory", path)
    load(gw, settings, "directory", newer)
    assert graph_fingerprint(gw) == fingerprint

    # A person with no phone anywhere is reached through the compound's phone.
    load_rows(
        gw,
        settings,
        "compounds",
        [
            {
                "compound_code": "C1",
                "name": "金杨新村",
                "address": "上海市浦东新区金杨路100弄",
                "district_code": "310115",
                "subdistrict": "金杨新村街道",
                "lat": "31.25",
                "lon": "121.56",
                "contact_phone": "021-5000 0001",
            }
        ],
    )
    load_rows(
        gw,
        settings,
        "registrations",
        [
            reg(
                "N1",
                "T1",
                "31011519900101001X",
                "C1",
                pool_size=10,
                box_code="B1",
                collected_at="2022-04-09T08:20:00+08:00",
            )
        ],
    )
    nophone = task_of(gw, "310115", "N1")
    assert nophone is not None
    assert nophone["contact_via"] == "compound" and nophone["contact_phone"] == "02150000001"
    assert (
        "invalid_contact_phone"
        in load_rows(
            gw,
            settings,
            "compounds",
            [
                {
                    "compound_code": "C9",
                    "name": "x",
                    "address": "y",
                    "district_code": "310115",
                    "contact_phone": "021",
                }
            ],
        )
        .outcomes[0]
        .flags
    )


def test_compound_phone_reaches_persons_without_any_phone(gw: Gateway, settings: Settings) -> None:
    load_rows(
        gw,
        settings,
        "compounds",
        [
            {
                "compound_code": "C1",
                "name": "金杨新村",
                "address": "金杨路100弄",
                "district_code": "310115",
                "contact_phone": "13600000001",
            }
        ],
    )
    load_rows(
        gw,
        settings,
        "registrations",
        [
            reg("N1", "TN", "31011519900101001X", "C1"),
            reg("N2", "TN", "310115198001010016", "C1", phone="13812345670"),
        ],
    )
    load_rows(
        gw,
        settings,
        "results",
        [
            {
                "tube_code": "TN",
                "result": "positive",
                "reported_at": "2022-04-09T20:00:00+08:00",
                "lab_code": "L",
            }
        ],
    )
    n1, n2 = task_of(gw, "310115", "N1"), task_of(gw, "310115", "N2")
    assert n1 is not None and n2 is not None
    assert (n1["contact_via"], n1["contact_phone"]) == ("compound", "13600000001")
    assert (n2["contact_via"], n2["contact_phone"]) == ("phone", None)
    assert n1["person"]["residence"]["contact_phone"] == "13600000001"


def test_directory_residence_dispatches_a_person_at_an_unknown_compound(
    gw: Gateway, settings: Settings
) -> None:
    load(gw, settings, "compounds", DATA / "compounds.csv")
    load_rows(
        gw,
        settings,
        "directory",
        [entry("31011519900101001X", residence_compound_code="C2", source="census")],
    )
    load_rows(
        gw,
        settings,
        "registrations",
        [reg("U1", "TU", "31011519900101001X", "CX"), reg("U2", "TU", "310115198001010016", "CX")],
    )
    load_rows(
        gw,
        settings,
        "results",
        [
            {
                "tube_code": "TU",
                "result": "positive",
                "reported_at": "2022-04-09T20:00:00+08:00",
                "lab_code": "L",
            }
        ],
    )
    trace = trace_tube(gw, "TU")
    u1, u2 = person(trace, "U1"), person(trace, "U2")
    assert u1["residence"]["source"] == "directory"
    assert (u1["residence"]["compound_code"], u1["residence"]["district_code"]) == ("C2", "310101")
    assert "unknown_compound" in u1["flags"]  # the swab compound itself is still unknown
    assert u2["residence"] == {
        "compound_code": "CX",
        "address": None,
        "district_code": None,
        "source": "registration",
        "contact_phone": None,
    }
    assert task_of(gw, "310101", "U1") is not None
    assert task_of(gw, "unassigned", "U1") is None
    assert task_of(gw, "unassigned", "U2") is not None
    positives = {
        (i["district_code"], i["tube_code"]) for i in reports.positives_stream(gw, "2022-04-09")
    }
    assert positives == {("310101", "TU"), ("unassigned", "TU")}
    # The person status follows the same residence rule as the tasks: the district (and the
    # unassigned queue's key) that holds a person's task reads that person's status.
    huangpu = Principal("hp", "district", "310101")
    unassigned = Principal("un", "district", "unassigned")
    assert status.person_status(gw, u1["person_id"], "2022-04-09", huangpu)["status"]
    assert status.person_status(gw, u2["person_id"], "2022-04-09", unassigned)["status"]
    for who, other in ((huangpu, u2), (unassigned, u1)):
        with pytest.raises(NotFound):
            status.person_status(gw, other["person_id"], "2022-04-09", who)
    # So do the status.changed events that district webhooks receive.
    events = [r["event"] for r in gw.read("events_after", after=0, limit=1000)]
    changes = {
        (e["person_id"], e.get("district_code")) for e in events if e["type"] == "status.changed"
    }
    assert changes == {(u1["person_id"], "310101"), (u2["person_id"], None)}, changes


def _unassigned_task(gw: Gateway, settings: Settings) -> dict[str, Any]:
    load(gw, settings, "compounds", DATA / "compounds.csv")
    load_rows(
        gw,
        settings,
        "registrations",
        [reg("U1", "TU", "31011519900101001X", "CX"), reg("U2", "TU", "310115198001010016", "CX")],
    )
    load_rows(
        gw,
        settings,
        "results",
        [
            {
                "tube_code": "TU",
                "result": "positive",
                "reported_at": "2022-04-09T20:00:00+08:00",
                "lab_code": "L",
            }
        ],
    )
    task = task_of(gw, "unassigned", "U1")
    assert task is not None
    tasks.transition(gw, task["task_id"], _investigator(), "acknowledged", None, "seen")
    return task


def _investigator() -> Any:
    from engine.access.keys import Principal

    return Principal("k_test", "investigator")


def _moved(gw: Gateway, district: str, record_id: str) -> dict[str, Any]:
    task = task_of(gw, district, record_id)
    assert task is not None, f"{record_id} not in {district}"
    assert task["status"] == "acknowledged"  # a move keeps the status
    last = task["history"][-1]
    assert last["actor"] == "system" and last["status"] == "acknowledged"
    assert last["note"].startswith(f"moved from unassigned to {district}")
    return task


def test_late_compound_moves_open_tasks(gw: Gateway, settings: Settings) -> None:
    _unassigned_task(gw, settings)
    load_rows(
        gw,
        settings,
        "compounds",
        [
            {
                "compound_code": "CX",
                "name": "新小区",
                "address": "卢湾路1号",
                "district_code": "310104",
            }
        ],
    )
    task = _moved(gw, "310104", "U1")
    assert "master data" in task["history"][-1]["note"]
    assert task["person"]["residence"]["district_code"] == "310104"
    assert task_of(gw, "310104", "U2") is not None
    assert tasks.all_tasks(gw, "unassigned") == []


def test_late_registration_moves_open_tasks(gw: Gateway, settings: Settings) -> None:
    _unassigned_task(gw, settings)
    load_rows(
        gw,
        settings,
        "registrations",
        [reg("U1b", "TS", "31011519900101001X", "C1", collected_at="2022-04-10T09:00:00+08:00")],
    )
    task = _moved(gw, "310115", "U1")
    residence = task["person"]["residence"]
    assert (residence["compound_code"], residence["source"]) == ("C1", "registration")
    assert [t["person"]["record_id"] for t in tasks.all_tasks(gw, "unassigned")] == ["U2"]


def test_late_directory_entry_moves_open_tasks(gw: Gateway, settings: Settings) -> None:
    _unassigned_task(gw, settings)
    load_rows(
        gw,
        settings,
        "directory",
        [entry("31011519900101001X", residence_compound_code="C2", source="census")],
    )
    task = _moved(gw, "310101", "U1")
    assert task["person"]["residence"]["source"] == "directory"
    assert [t["person"]["record_id"] for t in tasks.all_tasks(gw, "unassigned")] == ["U2"]
    # A closed task stays where it was closed.
    tasks.transition(
        gw, task["task_id"], _investigator(), "closed", "closed_by_investigator", "done"
    )
    load_rows(
        gw,
        settings,
        "directory",
        [
            entry(
                "31011519900101001X",
                residence_compound_code="C1",
                source="census",
                updated_at="2022-04-09T00:00:00+08:00",
            )
        ],
    )
    assert task_of(gw, "310101", "U1") is not None and task_of(gw, "310115", "U1") is None


def test_completeness_splits_reachability(gw: Gateway, settings: Settings, tmp_path: Path) -> None:
    load_city(gw, settings)
    day = "2022-04-09"
    before = reports.completeness(gw, day)
    assert [(r["district_code"], r["persons"]) for r in before] == [("310115", 10)]
    row = before[0]
    assert (row["reachable_by_own_phone"], row["reachable_only_through_directory"]) == (9, 0)
    assert (row["reachable_only_through_compound"], row["unreachable"]) == (0, 1)
    load_rows(gw, settings, "directory", [entry(R09_ID, phone="13700000001")])
    row = reports.completeness(gw, day)[0]
    assert (row["reachable_by_own_phone"], row["reachable_only_through_directory"]) == (9, 1)
    assert row["unreachable"] == 0


def test_post_directory_is_for_admins(gw: Gateway, settings: Settings, api_url: str) -> None:
    load_city(gw, settings)
    admin = create_key(gw, role="admin", district=None).secret
    collector = create_key(gw, role="collector", district=None).secret
    body = [
        {
            "id_type": "resident_id",
            "id_number": "３１０１０３７５０５０５１２３",  # R09's card, full-width, 15 digits
            "phone": "13700000001",
            "source": "health_code",
            "updated_at": "2022-04-01T00:00:00+08:00",
        }
    ]
    url = f"{api_url}/v1/directory"
    assert (
        httpx.post(url, json=body, headers={"Authorization": f"Bearer {collector}"}).status_code
        == 403
    )
    resp = httpx.post(url, json=body, headers={"Authorization": f"Bearer {admin}"})
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["summary"]["stored"] == 1
    assert answer["outcomes"][0]["flags"] == ["legacy_id_15"]
    r09 = person(trace_tube(gw, "T1"), "R09")
    assert [c["phone"] for c in r09["contacts"]] == ["13700000001"]
    again = httpx.post(url, json=body, headers={"Authorization": f"Bearer {admin}"}).json()
    assert again["summary"]["duplicates"] == 1
    investigator = create_key(gw, role="investigator", district=None).secret
    masked = httpx.get(
        f"{api_url}/v1/tubes/T1/trace", headers={"Authorization": f"Bearer {investigator}"}
    ).json()
    contacts = person(masked, "R09")["contacts"]
    assert contacts[0]["phone"] == "137****0001"


def test_the_same_entry_twice_in_one_batch_is_merged_in_order(
    gw: Gateway, settings: Settings
) -> None:
    old = entry(R09_ID, phone="13700000001", updated_at="2021-01-01T00:00:00+08:00")
    new = dict(old, phone_owner="household", updated_at="2022-04-01T00:00:00+08:00")
    summary = load_rows(gw, settings, "directory", [old, new, old])
    assert [o.status for o in summary.outcomes] == ["stored", "updated", "duplicate"]
    assert summary.stored == 1 and summary.updated == 1
    compound = {"compound_code": "C7", "name": "a", "address": "b", "district_code": "310115"}
    twice = load_rows(gw, settings, "compounds", [compound, dict(compound, name="c")])
    assert [o.status for o in twice.outcomes] == ["stored", "updated"]


def test_a_move_is_a_task_updated_event_for_the_new_district(
    gw: Gateway, settings: Settings
) -> None:
    task = _unassigned_task(gw, settings)
    last = max(
        [e["seq"] for e in (r["event"] for r in gw.read("events_after", after=0, limit=10_000))]
    )
    load_rows(
        gw,
        settings,
        "directory",
        [entry("31011519900101001X", residence_compound_code="C2", source="census")],
    )
    events = [r["event"] for r in gw.read("events_after", after=last, limit=100)]
    moved = [e for e in events if e["task_id"] == task["task_id"]]
    # The queue it left is told too, where it went and nothing of the person (issue 21).
    assert [(e["type"], e["district_code"]) for e in moved] == [
        ("task.updated", "unassigned"),
        ("task.updated", "310101"),
    ]
