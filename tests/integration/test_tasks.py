"""The closed loop on the real Neo4j: dispatch to residence districts, lifecycle, retests."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from engine.access.keys import CLI, Principal
from engine.errors import InputError, NotFound, TransitionError
from engine.loop import tasks
from engine.settings import Settings
from engine.store.gateway import Gateway
from loaders import write as write_loader
from loaders.read import read_file
from tests.helpers import DATA, RETEST_HEADER, count, load, load_city, result, retest, write

INVESTIGATOR = Principal("inv", "investigator")
PUDONG = Principal("pd", "district", "310115")


def queue(gw: Gateway, district: str, status: str | None = None) -> list[dict[str, Any]]:
    items, cursor = tasks.tasks_page(gw, district, status, "", 500)
    assert cursor is None
    return items


def test_positive_pool_dispatches_to_residence_district(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    pudong = queue(gw, "310115")
    assert len(pudong) == 10 and {t["kind"] for t in pudong} == {"follow_up"}
    by_rec = {t["person"]["record_id"]: t for t in pudong}
    # R01 was retested alone in T2 the next day (negative): that loop is already closed.
    assert (by_rec["R01"]["status"], by_rec["R01"]["outcome"]) == ("closed", "released")
    assert {t["status"] for r, t in by_rec.items() if r != "R01"} == {"pending"}
    separated = next(t for t in pudong if t["person"]["record_id"] == "R09")
    # Registered in old Luwan (now Huangpu), lives in Pudong: the task goes to Pudong.
    assert separated["person"]["registered_district_code"] == "310101"
    assert separated["person"]["household_separated"] is True
    assert "missing_phone" in separated["person"]["flags"]
    assert queue(gw, "310101") == []
    assert separated["compound"]["code"] == "C1"
    assert separated["history"][0]["status"] == "pending"


def test_resending_results_creates_nothing(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    before = count(gw, "Task")
    load(gw, settings, "results", DATA / "results.jsonl")
    assert count(gw, "Task") == before == 10


def test_unknown_compound_goes_to_unassigned(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    load(gw, settings, "registrations", DATA / "registrations.csv")
    load(gw, settings, "results", DATA / "results.jsonl")
    assert len(queue(gw, "unassigned")) == 10
    assert queue(gw, "310115") == []


CONTRACT_MOVES = {
    ("pending", "acknowledged"),
    ("acknowledged", "contacted"),
    ("contacted", "retest_collected"),
    ("pending", "unreachable"),
    ("acknowledged", "unreachable"),
    ("contacted", "unreachable"),
    ("unreachable", "contacted"),
}


def contract_allows(start: str, to: str, outcome: str | None, role: str) -> bool:
    if start == to:
        return False
    if to == "closed":
        if outcome == "closed_by_investigator":
            return role == "investigator" and start != "closed"
        return start == "retest_collected" and outcome in ("released", "confirmed")
    return outcome is None and (start, to) in CONTRACT_MOVES


def test_every_transition_follows_the_contract() -> None:
    checked = refused = 0
    for start, to, outcome, who in itertools.product(
        tasks.STATUSES, tasks.STATUSES, (None, *tasks.OUTCOMES), (PUDONG, INVESTIGATOR)
    ):
        if start == to:
            continue
        task = {"status": start, "district_code": "310115"}
        checked += 1
        if contract_allows(start, to, outcome, who.role):
            tasks._check_transition(task, who, to, outcome)
        else:
            refused += 1
            with pytest.raises(TransitionError):
                tasks._check_transition(task, who, to, outcome)
    assert (checked, refused) == (300, 277)  # 23 legal moves: 14 + 4 + 5


def test_illegal_moves_are_refused_in_the_database(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    tid = next(t["task_id"] for t in queue(gw, "310115") if t["status"] == "pending")
    for to in ("contacted", "retest_collected", "closed"):
        with pytest.raises(TransitionError, match="'pending' can move to"):
            tasks.transition(gw, tid, PUDONG, to, "released" if to == "closed" else None, None)
    assert tasks.get_task(gw, tid, CLI)["status"] == "pending"


def test_transition_rules_and_idempotence(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    tid = next(t["task_id"] for t in queue(gw, "310115") if t["status"] == "pending")
    with pytest.raises(TransitionError, match="'pending' can move to acknowledged, unreachable"):
        tasks.transition(gw, tid, PUDONG, "contacted", None, None)
    tasks.transition(gw, tid, PUDONG, "acknowledged", None, "called back")
    again = tasks.transition(gw, tid, PUDONG, "acknowledged", None, "called back")
    assert len(again["history"]) == 2
    with pytest.raises(TransitionError, match="only an investigator"):
        tasks.transition(gw, tid, PUDONG, "closed", "closed_by_investigator", "x")
    with pytest.raises(TransitionError, match="needs a note"):
        tasks.transition(gw, tid, INVESTIGATOR, "closed", "closed_by_investigator", None)
    tasks.transition(gw, tid, INVESTIGATOR, "closed", "closed_by_investigator", "moved away")
    task = tasks.get_task(gw, tid, CLI)
    assert (task["status"], task["outcome"]) == ("closed", "closed_by_investigator")
    assert [h["actor"] for h in task["history"]] == ["system", "pd", "inv"]
    with pytest.raises(NotFound):
        tasks.transition(gw, tid, Principal("hp", "district", "310101"), "contacted", None, None)


def test_retests_close_the_loop(gw: Gateway, settings: Settings, tmp_path: Path) -> None:
    load_city(gw, settings)
    members = {t["person"]["record_id"]: t for t in queue(gw, "310115")}
    neg_id = members["R02"]["person"]["id_number"]
    pos_id = members["R03"]["person"]["id_number"]
    load(gw, settings, "registrations", retest(tmp_path, "RT1", "S1", neg_id))
    load(gw, settings, "registrations", retest(tmp_path, "RT2", "S2", pos_id))
    by_rec = {t["person"]["record_id"]: t for t in queue(gw, "310115")}
    assert by_rec["R02"]["status"] == by_rec["R03"]["status"] == "retest_collected"
    load(gw, settings, "results", result(tmp_path, "S1", "negative"))
    load(gw, settings, "results", result(tmp_path, "S2", "positive"))
    by_rec = {t["person"]["record_id"]: t for t in queue(gw, "310115")}
    assert (by_rec["R02"]["status"], by_rec["R02"]["outcome"]) == ("closed", "released")
    assert (by_rec["R03"]["status"], by_rec["R03"]["outcome"]) == ("closed", "confirmed")
    assert by_rec["R04"]["status"] == "pending"
    with gw.driver.session(database=gw.database) as s:
        tubes = s.run(
            "MATCH (:Person)-[:IS_CASE]->(c:Case)-[]->(t:Tube) RETURN collect(t.code) AS tubes"
        ).single()["tubes"]
    assert sorted(tubes) == ["S2", "T1"]
    assert count(gw, "Task") == 10  # the confirmed retest opened no extra case task


def test_retest_before_the_pooled_result_still_closes(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    load(gw, settings, "compounds", DATA / "compounds.csv")
    load(gw, settings, "registrations", DATA / "registrations.csv")
    load(gw, settings, "registrations", retest(tmp_path, "RT1", "S1", "310115198201010213"))
    load(gw, settings, "results", result(tmp_path, "S1", "negative"))
    load(gw, settings, "results", DATA / "results.jsonl")
    by_rec = {t["person"]["record_id"]: t for t in queue(gw, "310115")}
    assert (by_rec["R03"]["status"], by_rec["R03"]["outcome"]) == ("closed", "released")
    assert len(by_rec) == 10


def test_a_negative_retest_reported_before_it_is_registered_still_releases(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    load_city(gw, settings)
    members = {t["person"]["record_id"]: t for t in queue(gw, "310115")}
    load(gw, settings, "results", result(tmp_path, "S1", "negative"))
    load(
        gw,
        settings,
        "registrations",
        retest(tmp_path, "RT1", "S1", members["R02"]["person"]["id_number"]),
    )
    by_rec = {t["person"]["record_id"]: t for t in queue(gw, "310115")}
    assert (by_rec["R02"]["status"], by_rec["R02"]["outcome"]) == ("closed", "released")
    assert by_rec["R04"]["status"] == "pending"


def test_a_positive_retest_reported_before_its_pool_leaves_no_second_open_task(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    """The retest's positive came first and opened a case task; the pool's positive result
    then confirms the person's follow-up with that same tube, and the case task is closed as
    superseded: one positive tube, one open loop, whatever the order."""
    load(gw, settings, "compounds", DATA / "compounds.csv")
    load(gw, settings, "registrations", DATA / "registrations.csv")
    load(gw, settings, "registrations", retest(tmp_path, "RT2", "S2", "310115198201010213"))
    load(gw, settings, "results", result(tmp_path, "S2", "positive"))
    assert [(t["kind"], t["status"]) for t in queue(gw, "310115")] == [("case", "pending")]
    load(gw, settings, "results", DATA / "results.jsonl")
    q = queue(gw, "310115")
    mine = {t["kind"]: t for t in q if t["person"]["id_number"].endswith("0213")}
    assert (mine["follow_up"]["status"], mine["follow_up"]["outcome"]) == ("closed", "confirmed")
    assert (mine["case"]["status"], mine["case"]["outcome"]) == ("closed", "superseded")
    # R01's own retest (in results.jsonl) releases R01: the eight others are open.
    assert len(q) == 11 and sum(t["status"] != "closed" for t in q) == 8


def test_invalid_then_positive_supersedes_resample(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    load(gw, settings, "compounds", DATA / "compounds.csv")
    load(gw, settings, "registrations", DATA / "registrations.csv")
    load(gw, settings, "results", result(tmp_path, "T1", "invalid", "2022-04-09T19:00:00+08:00"))
    assert {t["kind"] for t in queue(gw, "310115")} == {"resample"}
    load(gw, settings, "results", result(tmp_path, "T1", "positive", "2022-04-09T22:00:00+08:00"))
    q = queue(gw, "310115")
    resample = [t for t in q if t["kind"] == "resample"]
    follow = [t for t in q if t["kind"] == "follow_up"]
    assert len(resample) == len(follow) == 10
    assert {(t["status"], t["outcome"]) for t in resample} == {("closed", "superseded")}
    assert {t["status"] for t in follow if t["person"]["record_id"] != "R01"} == {"pending"}


def test_positive_single_tube_without_open_task_is_a_case(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    load_city(gw, settings)
    load(gw, settings, "results", result(tmp_path, "T2", "positive", "2022-04-10T22:00:00+08:00"))
    kinds = sorted(t["kind"] for t in queue(gw, "310101"))
    assert kinds == ["case"]


def test_repeat_positive_pools_are_listed_first(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    load_city(gw, settings)
    later = write(
        tmp_path,
        "later.csv",
        RETEST_HEADER + "L1,2022-04-11T09:00:00+08:00,C1,B9,T7,10,nucleic_code,resident_id,"
        "310115198701010711,x,13800000000\n"
        "L2,2022-04-11T09:00:00+08:00,C1,B9,T7,10,nucleic_code,passport,E99,y,"
        "13800000001\n",
    )
    load(gw, settings, "registrations", later)
    load(gw, settings, "results", result(tmp_path, "T7", "positive", "2022-04-11T20:00:00+08:00"))
    q = queue(gw, "310115")
    assert len(q) == 12
    assert {t["person"]["record_id"] for t in q[:2]} == {"R08", "L1"}
    assert all("repeat_positive_pool" in t["flags"] for t in q[:2])
    assert not any("repeat_positive_pool" in t["flags"] for t in q[2:])


def test_paging_walks_the_whole_queue(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    seen: list[str] = []
    cursor = ""
    while True:
        items, cursor_next = tasks.tasks_page(gw, "310115", None, cursor, 3)
        seen += [t["task_id"] for t in items]
        if cursor_next is None:
            break
        cursor = cursor_next
    assert len(seen) == len(set(seen)) == 10


def _single(record_id: str, tube: str, id_number: str, at: str) -> str:
    return RETEST_HEADER + (
        f"{record_id},{at},C1,RB1,{tube},1,nucleic_code,resident_id,{id_number},x,13800000000\n"
    )


def test_a_single_tube_links_only_its_own_persons_later_tasks(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    """Registrations are keyed by (source, record_id): another sender's registration with the
    same record_id is another person's swab and moves nothing of this person's; and a single
    tube collected before the pool is no retest of it, whichever file arrives first."""
    load_city(gw, settings)
    r04 = next(t for t in queue(gw, "310115") if t["person"]["record_id"] == "R04")
    assert r04["status"] == "pending"
    # R04's own single tube of the day before the pool, arriving after the pool's tasks.
    before = write(
        tmp_path,
        "a.csv",
        _single("X1", "SX1", r04["person"]["id_number"], "2022-04-08T10:00:00+08:00"),
    )
    items = read_file(before, "registrations")
    write_loader.load_records(gw, "registrations", items, "a.csv", settings, sender="appA")
    load(gw, settings, "results", result(tmp_path, "SX1", "negative", "2022-04-08T20:00:00+08:00"))
    # Another app numbers its records alike: its X1 is someone else's retest, after the pool.
    other = write(
        tmp_path, "b.csv", _single("X1", "SX2", "310115199001010012", "2022-04-10T10:00:00+08:00")
    )
    items = read_file(other, "registrations")
    write_loader.load_records(gw, "registrations", items, "b.csv", settings, sender="appB")
    r04 = next(t for t in queue(gw, "310115") if t["person"]["record_id"] == "R04")
    assert (r04["status"], len(r04["history"])) == ("pending", 1), r04["history"]
    # The task's events name the task's own person only, once.
    rows = gw.read("task_event_rows", task_ids=[r04["task_id"]])
    assert [r["person"]["id_number"] for r in rows] == [r04["person"]["id_number"]]
    # A real retest of R04 (after the pool) still links.
    load(gw, settings, "registrations", retest(tmp_path, "RT4", "S4", r04["person"]["id_number"]))
    r04 = next(t for t in queue(gw, "310115") if t["person"]["record_id"] == "R04")
    assert r04["status"] == "retest_collected"


def test_task_events_carry_the_tasks_own_person(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    """Another sender's registration with the task's record_id (R05 of the city's file) is
    another person: a task event carries its own person, once (a district webhook received
    another district's resident, full phone, as a second task.created)."""
    load_city(gw, settings)
    r05 = next(t for t in queue(gw, "310115") if t["person"]["record_id"] == "R05")
    other = write(
        tmp_path, "b.csv", _single("R05", "SX3", "310115199001010012", "2022-04-10T10:00:00+08:00")
    )
    items = read_file(other, "registrations")
    write_loader.load_records(gw, "registrations", items, "b.csv", settings, sender="appB")
    rows = gw.read("task_event_rows", task_ids=[r05["task_id"]])
    assert [r["person"]["id_number"] for r in rows] == [r05["person"]["id_number"]]


def test_notes_are_printable_text(gw: Gateway, settings: Settings) -> None:
    """A note holds no control or invisible format characters (NUL, a right-to-left override
    were stored in the history); line breaks and tabs are text. A note made only of invisible
    characters does not count as the note an investigator's close needs."""
    load_city(gw, settings)
    task = queue(gw, "310115", "pending")[0]["task_id"]
    for note in ("\u202e\x00", "ok\u202eko", "\u200b"):
        with pytest.raises(InputError):
            tasks.transition(gw, task, INVESTIGATOR, "closed", "closed_by_investigator", note)
    moved = tasks.transition(gw, task, PUDONG, "acknowledged", None, "called\r\ntwice\t(SMS)")
    assert moved["status"] == "acknowledged"


def test_a_retest_with_an_unreadable_time_still_links(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    """The retest rule compares collection times only when both are known: a single tube whose
    `collected_at` is flagged invalid is still the person's retest (as before the rule)."""
    load_city(gw, settings)
    r06 = next(t for t in queue(gw, "310115") if t["person"]["record_id"] == "R06")
    load(
        gw,
        settings,
        "registrations",
        retest(tmp_path, "RT6", "S6", r06["person"]["id_number"], "2022-13-45"),
    )
    r06 = next(t for t in queue(gw, "310115") if t["person"]["record_id"] == "R06")
    assert r06["status"] == "retest_collected"
