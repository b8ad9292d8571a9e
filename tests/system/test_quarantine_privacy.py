"""Registrations are keyed by (source, record_id); the quarantine is masked like every answer."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import httpx

from engine.access.keys import create_key
from engine.store.gateway import Gateway
from tests import helpers
from tests.helpers import bearer, cli

# The first read of a fresh server plans its queries: slow on a loaded machine.
get = functools.partial(httpx.get, timeout=300)
ID_NUMBER = "310115198201010213"
PHONE = "13812345678"


def registration(**changes: Any) -> dict[str, Any]:
    base = {"collected_at": "2022-04-09T08:00:00+08:00", "id_number": ID_NUMBER, "phone": PHONE}
    return helpers.registration(**(base | {"name": "王小明"} | changes))


def post(api_url: str, secret: str, body: list[dict[str, Any]]) -> dict[str, Any]:
    resp = httpx.post(f"{api_url}/v1/registrations", json=body, headers=bearer(secret), timeout=300)
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


def test_senders_never_collide_and_quarantine_is_masked(gw: Gateway, api_url: str) -> None:
    app_a = create_key(gw, role="collector", district=None)
    app_b = create_key(gw, role="collector", district=None)
    inv = create_key(gw, role="investigator", district=None)
    admin = create_key(gw, role="admin", district=None)
    first = post(api_url, app_a.secret, [registration()])
    other = post(api_url, app_b.secret, [registration(tube_code="T2", name="李四")])
    assert first["summary"]["stored"] == other["summary"]["stored"] == 1
    assert other["summary"]["conflicts"] == 0
    assert first["outcomes"][0]["key"] == other["outcomes"][0]["key"] == "R1"  # its own id
    again = post(api_url, app_a.secret, [registration(tube_code="T9")])
    assert again["summary"]["conflicts"] == 1

    items = get(f"{api_url}/v1/quarantine", headers=bearer(inv.secret)).json()["items"]
    assert len(items) == 1
    text = items[0]["raw"] + items[0]["existing"]
    assert ID_NUMBER not in text and PHONE not in text and "王小明" not in text
    assert "**************0213" in text and "138****5678" in text and "王**" in text
    revealed = get(
        f"{api_url}/v1/quarantine",
        params={"reveal": "true", "reason": "conflict review"},
        headers=bearer(inv.secret),
    ).json()["items"]
    assert ID_NUMBER in revealed[0]["raw"] and "王小明" in revealed[0]["existing"]
    no_reason = get(
        f"{api_url}/v1/quarantine", params={"reveal": "true"}, headers=bearer(inv.secret)
    )
    assert no_reason.status_code == 422
    trace = get(f"{api_url}/v1/tubes/T1/trace", headers=bearer(inv.secret)).json()
    person_id = trace["persons"][0]["person_id"]
    log = get(
        f"{api_url}/v1/audit", params={"key": inv.key_id}, headers=bearer(admin.secret)
    ).json()["items"]
    entries = [(e["reason"], e["person_ids"]) for e in log if e["action"] == "quarantine"]
    assert (None, [person_id]) in entries and ("conflict review", [person_id]) in entries, log


def test_file_sources_scope_record_ids(
    gw: Gateway, api_url: str, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    header = "record_id,collected_at,compound_code,box_code,tube_code,pool_size,method,"
    header += "id_type,id_number,name,phone\n"
    line = "R1,2022-04-09T08:00:00+08:00,C1,B1,{tube},10,nucleic_code,passport,E57140543,n,\n"
    for source, tube in (("app-a", "T1"), ("app-b", "T2"), ("app-a", "T3")):
        path = tmp_path / f"{source}-{tube}.csv"
        path.write_text(header + line.format(tube=tube))
        done = cli(subprocess_env, "load", "registrations", str(path), "--source", source)
        assert done.returncode == 0, done.stderr
        expected = "conflicts 1" if tube == "T3" else "stored 1"
        assert expected in done.stdout, done.stdout
    bad = cli(subprocess_env, "load", "registrations", str(path), "--source", "a/b")
    assert bad.returncode == 2 and "--source" in bad.stderr + bad.stdout
