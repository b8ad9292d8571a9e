"""Every refusal is in the audit log, by the right name: the console's refusals (another
district's page, a role's page, a bad CSRF token, a failed or refused login) write the same
`denied` entry as the API's, and an entry names a key only when that key exists and its secret
matched; what a caller typed is `claimed_key_id`, unverified."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from engine.access import audit
from engine.access.keys import create_key, revoke_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from tests.helpers import CONSOLE_CSRF, bearer, load_city


def denied(gw: Gateway, client: TestClient) -> list[dict[str, Any]]:
    client.app.state.audit.flush()  # type: ignore[attr-defined]
    return [
        e
        for e in audit.entries(gw, since=None, key_id=None, after="", limit=1000)
        if e["action"] == "denied"
    ]


def form_token(client: TestClient, path: str) -> str:
    found = CONSOLE_CSRF.search(client.get(path).text)
    assert found, path
    return found.group(1)


def log_in(client: TestClient, key: str, token: str | None = None) -> int:
    token = token or form_token(client, "/console/login")
    resp = client.post(
        "/console/login",
        data={"key": key, "csrf": token, "next": "/console/"},
        follow_redirects=False,
    )
    return resp.status_code


def test_console_refusals_are_audited_like_the_apis(gw: Gateway, settings: Settings) -> None:
    load_city(gw, settings)
    huangpu = create_key(gw, role="district", district="310101")
    admin = create_key(gw, role="admin", district=None)
    lab = create_key(gw, role="lab", district=None, labs=["LAB01"])
    task_id = gw.read("district_tasks", district_code="310115", status=None, after="", limit=1)[0][
        "task"
    ]["task_id"]
    wrong = f"tt_{huangpu.key_id}_{'x' * 43}"
    with TestClient(create_app(settings, gateway=gw)) as client:
        # A failed login: the key id exists, the secret does not match.
        assert log_in(client, wrong) == 401
        # A failed login with a key id nobody holds, and a stale login form.
        assert log_in(client, "tt_0123456789ab_" + "y" * 43) == 401
        assert log_in(client, huangpu.secret, token="stale") == 403
        # A refused login: the key is right, its role has no console.
        assert log_in(client, lab.secret) == 403
        # Signed in as Huangpu: Pudong's queue, and a move with a bad CSRF token.
        assert log_in(client, huangpu.secret) == 303
        assert client.get("/console/districts/310115/tasks").status_code == 404
        moved = client.post(
            f"/console/tasks/{task_id}/transitions",
            data={"csrf": "forged", "to": "acknowledged"},
            follow_redirects=False,
        )
        assert moved.status_code == 403
        # An admin's console has no trace page (as over the API).
        other = TestClient(client.app)
        assert log_in(other, admin.secret) == 303
        assert other.get("/console/tubes/T1").status_code == 403
        # The API's refusal of the same wrong secret, for comparison.
        assert client.get("/v1/tubes/T1/trace", headers=bearer(wrong)).status_code == 401
        entries = denied(gw, client)
    seen = {
        (e["status"], e["target"], e["key_id"], e["claimed_key_id"], e["role"]): e["detail"]
        for e in entries
    }
    for row, detail in sorted(seen.items(), key=str):
        print(f"\n  denied: {row} {detail}")
    expected = {
        ("denied_401", "POST /console/login", None, huangpu.key_id, "unknown"),
        ("denied_401", "POST /console/login", None, "0123456789ab", "unknown"),
        ("denied_403", "POST /console/login", None, huangpu.key_id, "unknown"),
        ("denied_403", "POST /console/login", lab.key_id, None, "lab"),
        ("denied_404", "GET /console/districts/310115/tasks", huangpu.key_id, None, "district"),
        (
            "denied_403",
            f"POST /console/tasks/{task_id}/transitions",
            huangpu.key_id,
            None,
            "district",
        ),
        ("denied_403", "GET /console/tubes/T1", admin.key_id, None, "admin"),
        ("denied_401", "GET /v1/tubes/T1/trace", None, huangpu.key_id, "unknown"),
    }
    assert set(seen) == expected, set(seen) ^ expected
    console = [d for row, d in seen.items() if row[1].startswith(("POST /console", "GET /console"))]
    assert all(d.endswith("(console)") for d in console)
    assert seen[("denied_401", "POST /console/login", None, huangpu.key_id, "unknown")] == (
        "The key is unknown or revoked. (wrong secret) (console)"
    )
    assert (
        "(unknown key)"
        in seen[("denied_401", "POST /console/login", None, "0123456789ab", "unknown")]
    )
    assert (
        "(wrong secret)"
        in seen[("denied_401", "GET /v1/tubes/T1/trace", None, huangpu.key_id, "unknown")]
    )
    assert audit.verify(gw).intact


def test_a_denied_entry_names_a_key_only_when_its_secret_matched(
    gw: Gateway, settings: Settings
) -> None:
    inv = create_key(gw, role="investigator", district=None)
    gone = create_key(gw, role="investigator", district=None)
    revoke_key(gw, gone.key_id)
    typed = {
        "wrong secret": f"tt_{inv.key_id}_{'z' * 43}",
        "unknown key": "tt_abcdefabcdef_" + "z" * 43,
        "revoked": gone.secret,
        "malformed": f"tt_{inv.key_id}",
    }
    with TestClient(create_app(settings, gateway=gw)) as client:
        for key in typed.values():
            assert client.get("/v1/tubes/T1/trace", headers=bearer(key)).status_code == 401
        assert client.get("/v1/tubes/T1/trace").status_code == 401  # no key at all
        entries = denied(gw, client)
        # The admin's view of one key: what it proved, and what was claimed in its name.
        admin = create_key(gw, role="admin", district=None)
        mine = client.get(
            "/v1/audit", params={"key": inv.key_id}, headers=bearer(admin.secret)
        ).json()["items"]
    why = {e["detail"].rsplit("(", 1)[-1].rstrip(")"): e for e in entries if "(" in e["detail"]}
    assert why["wrong secret"]["key_id"] is None
    assert why["wrong secret"]["claimed_key_id"] == inv.key_id
    assert why["unknown key"]["key_id"] is None
    assert why["unknown key"]["claimed_key_id"] == "abcdefabcdef"
    # Revoked, but the secret matched: the key is proven, and named.
    assert (why["revoked"]["key_id"], why["revoked"]["role"]) == (gone.key_id, "investigator")
    assert why["revoked"]["claimed_key_id"] is None
    assert why["malformed"]["key_id"] is None and why["malformed"]["claimed_key_id"] is None
    bare = [e for e in entries if "(" not in e["detail"]]
    assert [(e["key_id"], e["claimed_key_id"]) for e in bare] == [(None, None)]
    assert [(e["key_id"], e["claimed_key_id"]) for e in mine] == [(None, inv.key_id)]
    assert audit.verify(gw).intact
