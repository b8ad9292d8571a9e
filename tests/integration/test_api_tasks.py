"""District systems and investigators over HTTP: queues, transitions, positives, reports."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from engine.access.keys import create_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from tests.helpers import (
    RETEST_HEADER,
    bearer,
    cli,
    load,
    load_city,
    load_compounds,
    result,
    retest,
    write,
)


def test_district_queue_and_transitions(gw: Gateway, settings: Settings, api_url: str) -> None:
    load_city(gw, settings)
    pudong = bearer(create_key(gw, role="district", district="310115").secret)
    huangpu = bearer(create_key(gw, role="district", district="310101").secret)
    resp = httpx.get(
        f"{api_url}/v1/districts/310115/tasks", params={"status": "pending"}, headers=pudong
    )
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert len(items) == 9
    phones = [i["person"]["phone"] for i in items]
    assert None in phones and all(p is None or p.isdigit() for p in phones)  # own residents
    assert all(i["person"]["id_number"].count("*") == 14 for i in items)
    assert httpx.get(f"{api_url}/v1/districts/310101/tasks", headers=pudong).status_code == 404
    tid = items[0]["task_id"]
    bad = httpx.post(
        f"{api_url}/v1/tasks/{tid}/transitions",
        headers=pudong,
        json={"to": "closed", "outcome": "released", "note": None},
    )
    assert bad.status_code == 409
    assert bad.json()["message"].startswith("a task in 'pending' can move to acknowledged")
    other = httpx.post(
        f"{api_url}/v1/tasks/{tid}/transitions", headers=huangpu, json={"to": "acknowledged"}
    )
    assert other.status_code == 404
    ok = httpx.post(
        f"{api_url}/v1/tasks/{tid}/transitions",
        headers=pudong,
        json={"to": "acknowledged", "note": "SMS sent"},
    )
    assert ok.status_code == 200, ok.text
    task = ok.json()
    assert task["status"] == "acknowledged"
    assert [h["status"] for h in task["history"]] == ["pending", "acknowledged"]
    again = httpx.post(
        f"{api_url}/v1/tasks/{tid}/transitions",
        headers=pudong,
        json={"to": "acknowledged", "note": "SMS sent"},
    )
    assert again.json()["history"] == task["history"]


def test_cli_tasks_json_matches_api_for_investigator(
    gw: Gateway, settings: Settings, api_url: str, subprocess_env: dict[str, str]
) -> None:
    load_city(gw, settings)
    inv = bearer(create_key(gw, role="investigator", district=None).secret)
    api = httpx.get(
        f"{api_url}/v1/districts/310115/tasks",
        params={"reveal": "true", "reason": "audit check"},
        headers=inv,
    ).json()
    done = cli(subprocess_env, "tasks", "--district", "310115", "--json")
    assert done.returncode == 0, done.stderr
    from_cli = json.loads(done.stdout)
    for a, c in zip(api["items"], from_cli["items"], strict=True):
        assert {k: (a[k], c[k]) for k in a if a[k] != c[k]} == {}
    assert from_cli == api


def test_positives_reports_and_rings(
    gw: Gateway, settings: Settings, api_url: str, tmp_path: Path
) -> None:
    load_city(gw, settings)
    load(gw, settings, "registrations", retest(tmp_path, "RT1", "S1", "310115198201010213"))
    load(gw, settings, "results", result(tmp_path, "S1", "positive"))
    inv = bearer(create_key(gw, role="investigator", district=None).secret)
    huangpu = bearer(create_key(gw, role="district", district="310101").secret)
    pos = httpx.get(f"{api_url}/v1/positives", params={"date": "2022-04-09"}, headers=inv).json()
    assert [(i["district_code"], i["tube_code"]) for i in pos["items"]] == [("310115", "T1")]
    assert (
        httpx.get(f"{api_url}/v1/positives", params={"date": "2022-04-09"}, headers=huangpu).json()[
            "items"
        ]
        == []
    )
    for name in ("completeness", "household-separation", "zoning", "timeliness"):
        resp = httpx.get(f"{api_url}/v1/reports/{name}", params={"date": "2022-04-10"}, headers=inv)
        assert resp.status_code == 200, (name, resp.text)
    zoning = httpx.get(
        f"{api_url}/v1/reports/zoning", params={"date": "2022-04-10"}, headers=inv
    ).json()["items"]
    assert {z["compound_code"]: z["zone"] for z in zoning}["C1"] == "sealed"
    case = next(
        p
        for p in httpx.get(f"{api_url}/v1/tubes/T1/trace", headers=inv).json()["persons"]
        if p["record_id"] == "R03"
    )
    rings = httpx.get(f"{api_url}/v1/persons/{case['person_id']}/rings", headers=inv).json()
    assert len(rings["ring1"]) == 9 and rings["case"]["pool_tubes"] == ["T1"]
    assert httpx.get(f"{api_url}/v1/persons/nobody/rings", headers=inv).status_code == 404
    assert (
        httpx.get(f"{api_url}/v1/persons/{case['person_id']}/rings", headers=huangpu).status_code
        == 403
    )


def test_a_district_sees_only_its_part_of_a_shared_positive_tube(
    gw: Gateway, settings: Settings, api_url: str, tmp_path: Path
) -> None:
    """Tube TS pools a Pudong resident (C1, box BX1, 08:00) and a Huangpu one (C2, box BX2,
    09:00): each district's positives and trace show only its own compound, box and time."""
    load_compounds(gw, settings)
    rows = (
        "RS1,2022-04-09T08:00:00+08:00,C1,BX1,TS,10,nucleic_code,passport,E1,a,13800000001\n"
        "RS2,2022-04-09T09:00:00+08:00,C2,BX2,TS,10,nucleic_code,passport,E2,b,13800000002\n"
    )
    load(gw, settings, "registrations", write(tmp_path, "shared.csv", RETEST_HEADER + rows))
    load(gw, settings, "results", result(tmp_path, "TS", "positive", "2022-04-09T20:00:00+08:00"))
    day = {"date": "2022-04-09"}
    inv = bearer(create_key(gw, role="investigator", district=None).secret)
    city = httpx.get(f"{api_url}/v1/positives", params=day, headers=inv).json()["items"]
    assert sorted(i["district_code"] for i in city) == ["310101", "310115"]
    own = {"310115": ("RS1", "C1", "BX1"), "310101": ("RS2", "C2", "BX2")}
    others = {
        "310115": ("C2", "淮海小区", "BX2", "RS2", "T09:00:00"),
        "310101": ("C1", "金杨新村", "BX1", "RS1", "T08:00:00"),
    }
    for district, (record, compound, box) in own.items():
        key = bearer(create_key(gw, role="district", district=district).secret)
        items = httpx.get(f"{api_url}/v1/positives", params=day, headers=key).json()["items"]
        trace = httpx.get(f"{api_url}/v1/tubes/TS/trace", headers=key).json()
        for view in (items[0]["trace"], trace):
            assert [p["record_id"] for p in view["persons"]] == [record]
            assert view["compound"]["code"] == compound and view["boxes"] == [box]
            text = json.dumps(view, ensure_ascii=False)
            for other in others[district]:
                assert other not in text, (district, other)
        assert len(items) == 1
