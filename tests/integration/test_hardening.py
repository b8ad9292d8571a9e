"""Hardening (third round, issue 21): the defects an outside review found, each with the test
that failed on the code before the fix."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.access.keys import CLI, create_key
from engine.errors import InputError
from engine.feed import outbox, status
from engine.loop import tasks
from engine.push import webhooks
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_tube
from loaders import write as loader
from loaders.read import read_file
from tests.helpers import (
    D1,
    D2,
    IDS,
    RETEST_HEADER,
    bearer,
    cli,
    console_login,
    count,
    load,
    load_compounds,
    reg,
    result,
    write,
)

# ---------------------------------------------------------------- 1. a task shows its own person

TWINS = {
    "app-a": {"id_number": "EA7000001", "name": "Alpha", "phone": "13811110001"},
    "app-b": {"id_number": "EB7000002", "name": "Bravo", "phone": "13811110002"},
}


def _audit(api_url: str, admin: str, key_id: str) -> list[dict[str, Any]]:
    """The audit entries of one key, as the admin lists them."""
    answer = httpx.get(
        f"{api_url}/v1/audit", params={"key": key_id}, headers=bearer(admin), timeout=60
    )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _twin(person: dict[str, str], at: str) -> dict[str, Any]:
    return {
        "record_id": "R-SAME",
        "collected_at": at,
        "compound_code": "C1",
        "box_code": "BSAME",
        "tube_code": "TSAME",
        "pool_size": 10,
        "method": "nucleic_code",
        "id_type": "passport",
        **person,
    }


def test_two_apps_reusing_a_record_id_each_task_shows_its_own_person(
    gw: Gateway, settings: Settings, api_url: str, tmp_path: Path
) -> None:
    """Two sampling apps number a record R-SAME in one tube: both are stored (the (source,
    record_id) rule) and the positive pool gives two tasks; each shows its own person in the
    API queue, the console queue and the audit entry of the read."""
    load_compounds(gw, settings)
    apps = {name: create_key(gw, role="collector", district=None) for name in TWINS}
    for i, (name, person) in enumerate(TWINS.items()):
        answer = httpx.post(
            f"{api_url}/v1/registrations",
            timeout=60,
            json=[_twin(person, f"2022-04-09T08:0{i}:00+08:00")],
            headers=bearer(apps[name].secret),
        )
        assert answer.status_code == 200 and answer.json()["summary"]["stored"] == 1, answer.text
    _load_lines(
        gw, settings, tmp_path, "results", RESULT_HEADER, f"TSAME,positive,{D1}T20:00:00+08:00,L1\n"
    )
    trace = gw.read("trace_tubes", tube_codes=["TSAME"])[0]
    person_of = {r["name"]: r["person_id"] for r in trace["registrations"]}
    assert len(set(person_of.values())) == 2

    # The engine's queue and the API's: the task's id is (person, tube, kind).
    own = {tasks.task_id(pid, "TSAME", "follow_up"): name for name, pid in person_of.items()}
    engine_queue = tasks.all_tasks(gw, "310115")
    assert {t["task_id"]: t["person"]["name"] for t in engine_queue} == own
    district = create_key(gw, role="district", district="310115")
    admin = create_key(gw, role="admin", district=None)
    resp = httpx.get(
        f"{api_url}/v1/districts/310115/tasks", headers=bearer(district.secret), timeout=60
    )
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert {t["task_id"]: t["person"]["name"] for t in items} == own
    assert {t["task_id"]: t["person"]["person_id"] for t in items} == {
        tid: person_of[name] for tid, name in own.items()
    }
    # The console's queue lists both persons, each once.
    console = console_login(api_url, district.secret)
    try:
        page = console.get("/console/districts/310115/tasks")
    finally:
        console.close()
    assert page.status_code == 200
    assert page.text.count("Alpha") == 1 and page.text.count("Bravo") == 1
    # The audit entries of the reads name both persons.
    reads = [
        e for e in _audit(api_url, admin.secret, district.key_id) if e["action"] == "district_tasks"
    ]
    assert len(reads) == 2
    assert all(sorted(e["person_ids"]) == sorted(person_of.values()) for e in reads)


# ---------------------------------------------- 3. the future never wins, a positive pool holds


def _flags(summary: loader.Summary) -> dict[str, list[str]]:
    """Each record's flags as the load answered them, by line."""
    return {str(o.line): o.flags for o in summary.outcomes}


def _person(gw: Gateway, person: str, tube: str = "P") -> str:
    """The person id of `name<person>` in the tube."""
    return str(
        next(
            r["person_id"]
            for r in gw.read("trace_tubes", tube_codes=[tube])[0]["registrations"]
            if r["name"] == f"name{person}"
        )
    )


def _day_status(gw: Gateway, person: str, day: str = D1) -> str:
    return str(status.person_status(gw, _person(gw, person), day, CLI)["status"])


RESULT_HEADER = "tube_code,result,reported_at,lab_code\n"
_files = itertools.count()


def _load_lines(
    gw: Gateway, settings: Settings, tmp_path: Path, kind: str, header: str, *lines: str
) -> loader.Summary:
    """Records of `kind` written under `header` to a file of their own, then loaded (the
    answer keeps each record's outcome)."""
    path = write(tmp_path, f"{kind}-{next(_files)}.csv", header + "".join(lines))
    return loader.load_records(
        gw, kind, read_file(path, kind), path.name, settings, keep_outcomes=True
    )


def _pool(compound: str) -> list[str]:
    """Persons A and B pooled into P at `compound` on D1."""
    return [
        reg("A1", f"{D1}T08:00:00+08:00", compound, "P", 10, "A"),
        reg("B1", f"{D1}T08:01:00+08:00", compound, "P", 10, "B"),
    ]


def _pool_of_a_and_b(
    gw: Gateway, settings: Settings, tmp_path: Path, compound: str, *more: str
) -> None:
    """The pool P (with `more` registrations), reported positive that evening."""
    _load_lines(gw, settings, tmp_path, "registrations", RETEST_HEADER, *_pool(compound), *more)
    _load_lines(
        gw, settings, tmp_path, "results", RESULT_HEADER, f"P,positive,{D1}T20:00:00+08:00,L1\n"
    )


def _last_seq(gw: Gateway) -> int:
    return max(
        (e["event"]["seq"] for e in gw.read("events_after", after=0, limit=10_000)), default=0
    )


def test_times_from_the_future_are_flagged_and_never_rank_as_the_latest(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    """A result dated later than now plus 10 minutes is stored flagged `future_reported_at`
    and never becomes the tube's latest (the correction that follows wins); a swab dated in the
    future is `invalid_collected_at`. Within the skew nothing is flagged."""
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    load_compounds(gw, settings)
    regs = _flags(
        _load_lines(
            gw,
            settings,
            tmp_path,
            "registrations",
            RETEST_HEADER,
            *_pool("C1"),
            reg("D1", f"{D1}T08:02:00+08:00", "C1", "S", 1, "D"),
            reg("E1", later, "C1", "Q", 10, "E"),
            reg("F1", soon, "C1", "Q", 10, "F"),
        )
    )
    assert "invalid_collected_at" in regs["5"] and "invalid_collected_at" not in regs["6"]
    q = trace_tube(gw, "Q")
    swabbed = {p["name"]: p["collected_at"] for p in q["persons"]}
    assert swabbed["nameE"] is None and swabbed["nameF"] is not None
    results = _flags(
        _load_lines(
            gw,
            settings,
            tmp_path,
            "results",
            RESULT_HEADER,
            f"P,positive,{D1}T20:00:00+08:00,L1\n",
            f"P,negative,{later},L2\n",  # a lab's clock an hour ahead
            "S,negative,2099-01-01T08:00:00+08:00,L1\n",  # a typo: 2099
            f"Q,negative,{soon},L1\n",
        )
    )
    assert results["3"] == results["4"] == ["future_reported_at"]
    assert results["2"] == results["5"] == []
    p = trace_tube(gw, "P")
    assert p["tube"]["result"] == "positive"
    assert p["tube"]["reported_at"] == f"{D1}T20:00:00+08:00"
    assert p["tube"]["results"][0]["flags"] == ["future_reported_at"]
    assert {_day_status(gw, "A"), _day_status(gw, "B")} == {"pooled_positive"}
    assert len(tasks.all_tasks(gw, "310115", "pending")) == 2
    # The correction of S arrives: it wins over the 2099 typo.
    _load_lines(
        gw, settings, tmp_path, "results", RESULT_HEADER, f"S,positive,{D1}T21:00:00+08:00,L1\n"
    )
    s = trace_tube(gw, "S")
    assert (s["tube"]["result"], s["tube"]["reported_at"]) == ("positive", f"{D1}T21:00:00+08:00")
    assert trace_tube(gw, "Q")["tube"]["results"][0]["flags"] == []


def test_a_negative_after_a_positive_pool_releases_nobody(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    """A pooled tube once reported positive keeps its members in follow-up until their
    single-tube retests: a later negative of the same tube is stored, flagged
    `result_conflict` for investigators, and releases nobody (tasks open, the health-code
    feed does not turn them negative)."""
    load_compounds(gw, settings)
    _pool_of_a_and_b(gw, settings, tmp_path, "C1")
    seen = _last_seq(gw)
    _load_lines(
        gw, settings, tmp_path, "results", RESULT_HEADER, f"P,negative,{D1}T22:00:00+08:00,L2\n"
    )
    p = trace_tube(gw, "P")
    assert [x["result"] for x in p["tube"]["results"]] == ["positive", "negative"]
    assert "result_conflict" in p["flags"]
    assert {t["status"] for t in tasks.all_tasks(gw, "310115")} == {"pending"}
    assert {_day_status(gw, "A"), _day_status(gw, "B")} == {"pooled_positive"}
    after = gw.read("events_after", after=seen, limit=1000)
    assert [e["event"]["status"] for e in after if e["event"]["type"] == "status.changed"] == []
    # The single-tube retest still releases its person, and only them.
    retest = reg("A2", f"{D2}T09:00:00+08:00", "C1", "S1", 1, "A")
    _load_lines(gw, settings, tmp_path, "registrations", RETEST_HEADER, retest)
    load(gw, settings, "results", result(tmp_path, "S1", "negative"))
    assert (_day_status(gw, "A"), _day_status(gw, "B")) == ("released", "pooled_positive")
    by_status = sorted((t["status"], t["outcome"]) for t in tasks.all_tasks(gw, "310115"))
    assert by_status == [("closed", "released"), ("pending", None)]


def test_a_lab_key_sends_its_own_labs_results_only(
    gw: Gateway, settings: Settings, api_url: str, subprocess_env: dict[str, str]
) -> None:
    """`keys create --role lab --lab LAB01,LAB02`: results under another lab code are refused
    (403, nothing stored) and audited; a lab key made before keys named their labs is refused
    until it is made again."""
    with pytest.raises(InputError, match="--lab"):
        create_key(gw, role="lab", district=None)
    with pytest.raises(InputError, match="only lab keys"):
        create_key(gw, role="collector", district=None, labs=["LAB01"])
    made = cli(subprocess_env, "keys", "create", "--role", "lab", "--lab", "LAB01, LAB02")
    assert made.returncode == 0, made.stderr[-2000:]
    assert "(lab LAB01,LAB02)" in made.stdout
    secret = made.stdout.strip().splitlines()[-1]
    key_id = made.stdout.split()[2]
    listed = json.loads(cli(subprocess_env, "keys", "list", "--json").stdout)["items"]
    assert [k["labs"] for k in listed if k["key_id"] == key_id] == [["LAB01", "LAB02"]]
    admin = create_key(gw, role="admin", district=None)
    load_compounds(gw, settings)

    def post(key: str, *rows: tuple[str, str]) -> httpx.Response:
        body = [
            {"tube_code": tube, "result": "negative", "reported_at": f"{D1}T20:00:00+08:00"}
            | ({"lab_code": lab} if lab else {})
            for tube, lab in rows
        ]
        return httpx.post(f"{api_url}/v1/results", json=body, headers=bearer(key), timeout=60)

    ok = post(secret, ("T-OWN", "LAB01"), ("T-OWN2", "ＬＡＢ02 "))  # as the loader reads it
    assert ok.status_code == 200 and ok.json()["summary"]["stored"] == 2, ok.text
    for rows in ((("T-OWN3", "LAB01"), ("T-OTHER", "LAB03")), (("T-NONE", ""),)):
        refused = post(secret, *rows)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "forbidden"
    assert count(gw, "Result") == 2  # nothing of the refused requests
    # A lab key from before: refused whatever it sends, with what to do.
    old = create_key(gw, role="lab", district=None, labs=["LAB01"])
    gw.write("tamper_forget_key_labs", key_id=old.key_id)
    stale = post(old.secret, ("T-OLD", "LAB01"))
    assert stale.status_code == 403 and "--lab" in stale.json()["message"], stale.text
    assert count(gw, "Result") == 2
    for key, times in ((key_id, 2), (old.key_id, 1)):
        log = _audit(api_url, admin.secret, key)
        denied = [e for e in log if e["action"] == "denied"]
        assert [e["status"] for e in denied] == ["denied_403"] * times, log
        assert all(e["target"] == "POST /v1/results" for e in denied)


# ------------------------------------------------------- 4. the directory cannot be poisoned

DIRECTORY_HEADER = (
    "id_type,id_number,name,phone,phone_owner,residence_compound_code,source,updated_at\n"
)


def _entry(phone: str, compound: str, source: str, at: str) -> str:
    return f"passport,{IDS['A']},nameA,{phone},self,{compound},{source},{at}\n"


def test_a_directory_entry_from_the_future_never_wins_and_an_entry_can_be_removed(
    gw: Gateway,
    settings: Settings,
    api_url: str,
    subprocess_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """An entry dated 2099 is flagged `future_updated_at`: it neither moves the task nor puts
    its phone first. `DELETE /v1/directory/{entry_key}` and `tubetrace directory remove` (admin,
    audited) delete an entry; the task moves back as for late data."""
    load_compounds(gw, settings)
    _pool_of_a_and_b(gw, settings, tmp_path, "CX")
    tid = tasks.task_id(_person(gw, "A"), "P", "follow_up")

    def district() -> str:
        return str(tasks.get_task(gw, tid, CLI)["district_code"])

    assert district() == "unassigned"
    census = _entry("13700000001", "C1", "census", "2022-04-01T00:00:00+08:00")
    _load_lines(gw, settings, tmp_path, "directory", DIRECTORY_HEADER, census)
    assert district() == "310115"
    poisoned = _entry("13700000666", "C2", "health_code", "2099-01-01T00:00:00+08:00")
    flags = _flags(_load_lines(gw, settings, tmp_path, "directory", DIRECTORY_HEADER, poisoned))
    assert flags["2"] == ["future_updated_at"]
    assert district() == "310115"  # the 2099 entry did not move it to Huangpu
    a = next(p for p in trace_tube(gw, "P")["persons"] if p["name"] == "nameA")
    # The registration's own phone, then the directory's newest first: the 2099 one last.
    assert [c["phone"] for c in a["contacts"]] == ["13800000005", "13700000001", "13700000666"]

    # A real, later entry naming Huangpu moves the task, as late data does.
    admin = create_key(gw, role="admin", district=None)
    newer = {
        "id_type": "passport",
        "id_number": IDS["A"],
        "phone": "13700000777",
        "residence_compound_code": "C2",
        "source": "health_code",
        "updated_at": "2022-04-05T00:00:00+08:00",
    }
    sent = httpx.post(
        f"{api_url}/v1/directory", json=[newer], headers=bearer(admin.secret), timeout=60
    )
    assert sent.status_code == 200, sent.text
    key = sent.json()["outcomes"][0]["key"]
    assert district() == "310101"
    # Only the admin removes; an unknown key is a 404.
    for role, district_code in (("investigator", None), ("district", "310101")):
        other = create_key(gw, role=role, district=district_code)
        refused = httpx.delete(
            f"{api_url}/v1/directory/{key}", headers=bearer(other.secret), timeout=60
        )
        assert refused.status_code == 403, refused.text
    missing = httpx.delete(
        f"{api_url}/v1/directory/{'0' * 32}", headers=bearer(admin.secret), timeout=60
    )
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    removed = httpx.delete(
        f"{api_url}/v1/directory/{key}", headers=bearer(admin.secret), timeout=60
    )
    assert removed.status_code == 200, removed.text
    assert removed.json() == {"entry_key": key, "person_id": _person(gw, "A"), "tasks_moved": 1}
    task = tasks.get_task(gw, tid, CLI)
    assert task["district_code"] == "310115"
    assert "a directory entry was removed" in task["history"][-1]["note"]
    log = _audit(api_url, admin.secret, admin.key_id)
    assert [(e["target"], e["person_ids"]) for e in log if e["action"] == "directory_remove"] == [
        (key, [_person(gw, "A")])
    ]

    # The CLI lists the person's entries with their keys and removes the 2099 one.
    listed = cli(subprocess_env, "directory", "list", _person(gw, "A"), "--json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    entries = {e["phone"]: e for e in json.loads(listed.stdout)["items"]}
    assert set(entries) == {"13700000001", "13700000666"}
    assert entries["13700000666"]["flags"] == ["future_updated_at"]
    done = cli(subprocess_env, "directory", "remove", entries["13700000666"]["entry_key"])
    assert done.returncode == 0 and "0 tasks moved" in done.stdout, done.stdout + done.stderr
    a = next(p for p in trace_tube(gw, "P")["persons"] if p["name"] == "nameA")
    assert [c["phone"] for c in a["contacts"]] == ["13800000005", "13700000001"]
    assert (
        cli(subprocess_env, "directory", "remove", entries["13700000666"]["entry_key"]).returncode
        != 0
    )


# --------------------------------------------- 5. the district a task leaves is told, closed move

COMPOUND_HEADER = "compound_code,name,address,district_code,subdistrict,lat,lon\n"


def _task_events(gw: Gateway, after: int) -> list[dict[str, Any]]:
    return [
        e["event"]
        for e in gw.read("events_after", after=after, limit=1000)
        if e["event"]["type"].startswith("task.")
    ]


def _received(events: list[dict[str, Any]], district: str) -> list[dict[str, Any]]:
    """What a subscription of `district` to task.updated is sent of these events."""
    hook = {"webhook_id": "wh_test", "events": ["task.updated"], "district_code": district}
    wanted = {d["event_seq"] for d in webhooks.delivery_rows(hook, events)}
    return [outbox.payload(e, district)["data"] for e in events if e["seq"] in wanted]


def test_a_task_moved_by_late_data_tells_the_district_it_left_and_closed_tasks_move_too(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    """Late master data moves a task: the district (or `unassigned` queue) it left gets a
    `task.updated` saying where it went (`moved_to`) and nothing of the person; the district it
    joined gets the task with the person and `moved_from`. A closed task leaves `unassigned`
    too once its district is known (status and history unchanged), but a district that
    handled it keeps it."""
    _pool_of_a_and_b(
        gw, settings, tmp_path, "CX", reg("B2", f"{D2}T09:00:00+08:00", "CX", "S1", 1, "B")
    )
    _load_lines(
        gw, settings, tmp_path, "results", RESULT_HEADER, f"S1,negative,{D2}T20:00:00+08:00,L1\n"
    )
    a = tasks.task_id(_person(gw, "A"), "P", "follow_up")
    b = tasks.task_id(_person(gw, "B"), "P", "follow_up")
    before = {t["task_id"]: t for t in tasks.all_tasks(gw, "unassigned")}
    assert (before[a]["status"], before[b]["status"]) == ("pending", "closed")
    seen = _last_seq(gw)

    # The compound's master data arrives: Huangpu.
    compound = "CX,新村,上海市黄浦区某路1号,{},,,\n"
    load(
        gw,
        settings,
        "compounds",
        write(tmp_path, "c1.csv", COMPOUND_HEADER + compound.format("310101")),
    )
    assert tasks.all_tasks(gw, "unassigned") == []
    moved = {t["task_id"]: t for t in tasks.all_tasks(gw, "310101")}
    assert (
        moved[a]["status"] == "pending"
        and "moved from unassigned to 310101" in (moved[a]["history"][-1]["note"])
    )
    assert (moved[b]["status"], moved[b]["outcome"]) == ("closed", "released")
    assert moved[b]["history"] == before[b]["history"]  # a closed task's history unchanged
    events = _task_events(gw, seen)
    left = _received(events, "unassigned")
    assert sorted(d["task_id"] for d in left) == sorted([a, b])
    for d in left:
        assert (d["moved_from"], d["moved_to"], d["district_code"]) == (
            "unassigned",
            "310101",
            "310101",
        )
        assert d["person"] is None and d["record_id"] is None and d["history"] == []
    joined = {d["task_id"]: d for d in _received(events, "310101")}
    assert set(joined) == {a, b}
    assert joined[a]["moved_from"] == "unassigned" and joined[a]["person"]["name"] == "nameA"
    masked = joined[a]["person"]["id_number"]  # as a district key sees it
    assert masked != IDS["A"] and masked.startswith("*")

    # Corrected master data: the compound is in Pudong. The open task moves and Huangpu is told;
    # the closed one stays with the district that handled it.
    seen = max(e["seq"] for e in events)
    load(
        gw,
        settings,
        "compounds",
        write(tmp_path, "c2.csv", COMPOUND_HEADER + compound.format("310115")),
    )
    assert [t["task_id"] for t in tasks.all_tasks(gw, "310115")] == [a]
    assert [t["task_id"] for t in tasks.all_tasks(gw, "310101")] == [b]
    events = _task_events(gw, seen)
    assert [(d["task_id"], d["moved_to"], d["person"]) for d in _received(events, "310101")] == [
        (a, "310115", None)
    ]
    assert [(d["task_id"], d["moved_from"]) for d in _received(events, "310115")] == [(a, "310101")]
