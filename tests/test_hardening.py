"""Hardening (third round, issue 21): the defects an outside review found, each with the test
that failed on the code before the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from engine import tasks
from engine.db import Gateway
from engine.keys import create_key
from engine.settings import Settings
from tests.helpers import bearer, console_login, load, load_compounds, write

# ---------------------------------------------------------------- 1. a task shows its own person

TWINS = {
    "app-a": {"id_number": "EA7000001", "name": "Alpha", "phone": "13811110001"},
    "app-b": {"id_number": "EB7000002", "name": "Bravo", "phone": "13811110002"},
}


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
    load(
        gw,
        settings,
        "results",
        write(
            tmp_path,
            "same.csv",
            "tube_code,result,reported_at,lab_code\nTSAME,positive,2022-04-09T20:00:00+08:00,L1\n",
        ),
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
    log = httpx.get(
        f"{api_url}/v1/audit",
        params={"key": district.key_id},
        headers=bearer(admin.secret),
        timeout=60,
    ).json()["items"]
    reads = [e for e in log if e["action"] == "district_tasks"]
    assert len(reads) == 2
    assert all(sorted(e["person_ids"]) == sorted(person_of.values()) for e in reads)
