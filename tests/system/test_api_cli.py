"""The API over HTTP (a running uvicorn) and the CLI (a subprocess) against the same database."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from engine.access.keys import create_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from tests.helpers import bearer, cli, load_city


def test_cli_json_equals_api_for_investigator_reveal(
    gw: Gateway, settings: Settings, api_url: str, subprocess_env: dict[str, str]
) -> None:
    load_city(gw, settings)
    key = create_key(gw, role="investigator", district=None)
    done = cli(subprocess_env, "trace", "T1", "--json")
    assert done.returncode == 0, done.stderr
    from_cli = json.loads(done.stdout)
    resp = httpx.get(
        f"{api_url}/v1/tubes/T1/trace",
        params={"reveal": "true", "reason": "CDC case 42"},
        headers=bearer(key.secret),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == from_cli
    assert len(from_cli["persons"]) == 10


def test_masked_by_default_and_district_scoping(
    gw: Gateway, settings: Settings, api_url: str
) -> None:
    load_city(gw, settings)
    inv = create_key(gw, role="investigator", district=None)
    pudong = create_key(gw, role="district", district="310115")
    huangpu = create_key(gw, role="district", district="310101")
    masked = httpx.get(f"{api_url}/v1/tubes/T1/trace", headers=bearer(inv.secret)).json()
    first = masked["persons"][0]
    assert first["id_number"] == "**************0016" and first["phone"] == "138****5670"
    own = httpx.get(f"{api_url}/v1/tubes/T1/trace", headers=bearer(pudong.secret)).json()
    assert own["persons"][0]["phone"] == "13812345670"
    assert own["persons"][0]["id_number"] == "**************0016"
    other = httpx.get(f"{api_url}/v1/tubes/T1/trace", headers=bearer(huangpu.secret))
    absent = httpx.get(f"{api_url}/v1/tubes/NOPE/trace", headers=bearer(huangpu.secret))
    assert other.status_code == absent.status_code == 404
    assert other.json()["message"].replace("T1", "X") == absent.json()["message"].replace(
        "NOPE", "X"
    )
    refused = httpx.get(
        f"{api_url}/v1/tubes/T1/trace", params={"reveal": "true"}, headers=bearer(inv.secret)
    )
    assert refused.status_code == 422 and "reason" in refused.json()["message"]
    # A reason must say something: invisible characters only (a right-to-left override, NUL,
    # a zero-width space) were accepted and audited as the reason for a full-identity read.
    for blank in ("\u202e", "\x00", "\u200b", "x\x00y"):
        refused = httpx.get(
            f"{api_url}/v1/tubes/T1/trace",
            params={"reveal": "true", "reason": blank},
            headers=bearer(inv.secret),
        )
        assert refused.status_code == 422, (blank, refused.text)
    # A bad day reads as the engine's sentence, not pydantic's "Value error, ", and a GET does
    # not say that nothing was stored.
    bad_day = httpx.get(
        f"{api_url}/v1/positives", params={"date": "2022-13-45"}, headers=bearer(inv.secret)
    )
    assert bad_day.status_code == 422 and bad_day.json()["message"] == (
        "The request is not valid at query.date: '2022-13-45' is not a date; use YYYY-MM-DD."
    )


def test_keys_roles_and_audit(
    gw: Gateway, settings: Settings, api_url: str, subprocess_env: dict[str, str]
) -> None:
    load_city(gw, settings)
    collector = create_key(gw, role="collector", district=None)
    inv = create_key(gw, role="investigator", district=None)
    admin = create_key(gw, role="admin", district=None)
    assert httpx.get(f"{api_url}/v1/tubes/T1/trace").status_code == 401
    assert (
        httpx.get(f"{api_url}/v1/tubes/T1/trace", headers=bearer(inv.secret + "x")).status_code
        == 401
    )
    assert (
        httpx.get(f"{api_url}/v1/tubes/T1/trace", headers=bearer(collector.secret)).status_code
        == 403
    )
    httpx.get(
        f"{api_url}/v1/tubes/T1/trace",
        params={"reveal": "true", "reason": "case 7"},
        headers=bearer(inv.secret),
    )
    resp = httpx.get(
        f"{api_url}/v1/audit", params={"key": inv.key_id}, headers=bearer(admin.secret)
    )
    assert resp.status_code == 200, resp.text
    log = resp.json()["items"]
    reads = [e for e in log if e["action"] != "denied"]
    assert [(e["action"], e["target"], e["reason"]) for e in reads] == [("trace", "T1", "case 7")]
    assert len(reads[0]["person_ids"]) == 10
    # The attempt with a wrong secret for this key id is in the log as refused.
    denied = [e for e in log if e["action"] == "denied"]
    assert [(e["status"], e["target"]) for e in denied] == [
        ("denied_401", "GET /v1/tubes/T1/trace")
    ]
    # Not proven: the key id is what the caller claimed, not the key's.
    assert (denied[0]["key_id"], denied[0]["claimed_key_id"]) == (None, inv.key_id)
    revoked = cli(subprocess_env, "keys", "revoke", inv.key_id)
    assert revoked.returncode == 0, revoked.stderr
    time.sleep(settings.key_cache_ttl_s + 0.2)  # revocation holds within the cache TTL
    assert httpx.get(f"{api_url}/v1/tubes/T1/trace", headers=bearer(inv.secret)).status_code == 401


def test_unknown_tube_is_404_with_a_sentence_in_api_and_cli(
    gw: Gateway, api_url: str, subprocess_env: dict[str, str]
) -> None:
    inv = create_key(gw, role="investigator", district=None)
    resp = httpx.get(f"{api_url}/v1/tubes/NOPE/trace", headers=bearer(inv.secret))
    assert resp.status_code == 404
    assert resp.json()["message"] == "No tube with code 'NOPE' was registered or reported."
    done = cli(subprocess_env, "trace", "NOPE")
    assert done.returncode == 4 and "No tube with code 'NOPE'" in done.stderr
    # `load all` without --bulk says what to do instead of "unknown kind 'all'".
    folder = cli(subprocess_env, "load", "all", ".")
    assert folder.returncode == 2 and "add --bulk" in folder.stderr, folder.stderr


def test_post_registrations_answers_per_record(gw: Gateway, api_url: str) -> None:
    key = create_key(gw, role="collector", district=None)
    good: dict[str, Any] = {
        "record_id": "A1",
        "collected_at": "2022-04-09T08:00:00+08:00",
        "compound_code": "C1",
        "box_code": "B1",
        "tube_code": "T1",
        "pool_size": 10,
        "method": "nucleic_code",
        "id_type": "passport",
        "id_number": "E1",
        "name": "n",
        "phone": "13800000000",
    }
    body = [
        good,
        {**good, "record_id": "A2", "pool_size": "ten"},
        {**good, "tube_code": None, "record_id": "A3"},
    ]
    first = httpx.post(
        f"{api_url}/v1/registrations", json=body, headers=bearer(key.secret), timeout=60
    )
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["summary"]["stored"] == 2 and answer["summary"]["quarantined"] == 1
    assert [o["status"] for o in answer["outcomes"]] == ["stored", "stored", "quarantined"]
    assert "invalid_pool_size" in answer["outcomes"][1]["flags"]
    again = httpx.post(
        f"{api_url}/v1/registrations", json=body, headers=bearer(key.secret), timeout=60
    )
    assert again.json()["summary"]["duplicates"] == 2


def test_limits_refuse_whole_before_writing(gw: Gateway, api_url: str) -> None:
    key = create_key(gw, role="collector", district=None)
    too_many = [{"tube_code": f"T{i}"} for i in range(5001)]
    resp = httpx.post(f"{api_url}/v1/registrations", json=too_many, headers=bearer(key.secret))
    assert resp.status_code == 413 and "Nothing was stored" in resp.json()["message"]
    long = [{"tube_code": "T1", "name": "x" * 600}]
    resp = httpx.post(f"{api_url}/v1/registrations", json=long, headers=bearer(key.secret))
    assert resp.status_code == 413
    huge = b"[" + b'{"tube_code": "T1"},' * 500_000 + b'{"tube_code": "T1"}]'
    resp = httpx.post(
        f"{api_url}/v1/registrations",
        content=huge,
        headers=bearer(key.secret) | {"Content-Type": "application/json"},
    )
    assert resp.status_code == 413
    assert gw.read("count_by_label") == [
        r for r in gw.read("count_by_label") if r["label"] in ("ApiKey", "Audit", "Meta")
    ]


def test_healthz_is_open(api_url: str) -> None:
    assert httpx.get(f"{api_url}/healthz").json() == {"status": "ok", "neo4j": "up"}
