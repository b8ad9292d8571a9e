"""The web console over HTTP against a real uvicorn and Neo4j: sessions, cookies, CSP, CSRF,
scoping by role for every console route, and the one graph shape shared with the export."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from fastapi.routing import APIRoute, iter_route_contexts

from api.app import create_app
from engine.access.keys import create_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace import export
from engine.trace.build import trace_tube
from tests.helpers import CONSOLE_CSRF as CSRF
from tests.helpers import console_login as login
from tests.helpers import load_city


def csrf_of(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    found = CSRF.search(page.text)
    assert found, (path, page.status_code, page.text[:300])
    return found.group(1)


def keys(gw: Gateway) -> dict[str, str]:
    return {
        name: create_key(gw, role=role, district=district).secret
        for name, role, district in [
            ("investigator", "investigator", None),
            ("district", "district", "310115"),
            ("other_district", "district", "310101"),
            ("admin", "admin", None),
            ("collector", "collector", None),
        ]
    }


def elements_load_in_cytoscape(elements: dict[str, list[dict[str, Any]]]) -> None:
    """What `cy.json({elements})` needs: unique ids on every element, edges between nodes
    that exist. (The browser test loads them into real cytoscape.js as well.)"""
    nodes = {n["data"]["id"] for n in elements["nodes"]}
    ids = [e["data"]["id"] for e in elements["nodes"] + elements["edges"]]
    assert all(ids) and len(ids) == len(set(ids))
    for e in elements["edges"]:
        assert e["data"]["source"] in nodes and e["data"]["target"] in nodes, e


def test_session_cookie_csp_and_logout(gw: Gateway, settings: Settings, api_url: str) -> None:
    load_city(gw, settings)
    secret = keys(gw)["investigator"]
    client = httpx.Client(base_url=api_url, follow_redirects=False, timeout=30)
    first = client.get("/console/positives?date=2022-04-09")
    assert first.status_code == 303 and first.headers["location"].startswith("/console/login")
    form = client.get("/console/login")
    assert form.headers["content-security-policy"].startswith("default-src 'self'")
    token = CSRF.search(form.text)
    assert token
    stale = client.post("/console/login", data={"key": secret, "csrf": "forged"})
    assert stale.status_code == 403
    wrong = client.post(
        "/console/login", data={"key": "tt_000000000000_" + "x" * 43, "csrf": token.group(1)}
    )
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    resp = client.post("/console/login", data={"key": secret, "csrf": token.group(1)})
    assert resp.status_code == 303
    cookie = next(h for h in resp.headers.get_list("set-cookie") if h.startswith("tt_console="))
    low = cookie.lower()
    assert "httponly" in low and "samesite=strict" in low and "path=/console" in low
    assert secret not in cookie and secret not in resp.text
    page = client.get("/console/positives?date=2022-04-09")
    assert page.status_code == 200 and "T1" in page.text
    for header in ("content-security-policy", "x-content-type-options", "cache-control"):
        assert header in page.headers
    assert "<script>" not in page.text and " style=" not in page.text
    static = client.get("/console/static/vendor/cytoscape/cytoscape.min.js")
    assert (
        static.status_code == 200
        and "default-src 'self'" in static.headers["content-security-policy"]
    )
    # Logging out needs the form's token; afterwards the old session id is worth nothing.
    assert client.post("/console/logout", data={"csrf": "forged"}).status_code == 403
    csrf = csrf_of(client, "/console/positives?date=2022-04-09")
    assert client.post("/console/logout", data={"csrf": csrf}).status_code == 303
    sid = cookie.split(";")[0].split("=", 1)[1]
    again = httpx.get(api_url + "/console/positives?date=2022-04-09", cookies={"tt_console": sid})
    assert again.status_code == 303 and again.headers["location"].startswith("/console/login")


def test_senders_cannot_log_in_and_revoked_keys_end_sessions(
    gw: Gateway, settings: Settings, api_url: str
) -> None:
    from engine.access.keys import revoke_key

    secrets = keys(gw)
    client = httpx.Client(base_url=api_url, timeout=30)
    form = client.get("/console/login")
    token = CSRF.search(form.text)
    assert token
    resp = client.post("/console/login", data={"key": secrets["collector"], "csrf": token.group(1)})
    assert resp.status_code == 403 and "no console pages" in resp.text
    admin = login(api_url, secrets["admin"])
    home = admin.get("/console/")
    assert home.status_code == 200 and "Audit log" in home.text
    assert admin.get("/console/tubes/T1").status_code == 403  # as over the API
    revoke_key(gw, secrets["admin"].split("_")[1])
    import time

    time.sleep(31)  # sessions re-read their key every 30 s
    assert admin.get("/console/").status_code == 303


def console_routes() -> list[APIRoute]:
    """Every console route the app serves, found the way the API's role matrix finds its own."""
    found = [c.original_route for c in iter_route_contexts(create_app().routes)]
    routes = [r for r in found if isinstance(r, APIRoute) and r.path.startswith("/console/")]
    assert len(routes) >= 14
    return routes


def test_every_console_route_keeps_a_district_in_its_district(
    gw: Gateway, settings: Settings, api_url: str
) -> None:
    """Every page and data URL of the console, enumerated from its router, asked by a district
    session for its own district and for another one: the other answers 404 or shows nothing
    of the other district's people."""
    load_city(gw, settings)
    secrets = keys(gw)
    t1 = trace_tube(gw, "T1")
    task = gw.read("district_tasks", district_code="310115", status=None, after="", limit=1)
    task_id = task[0]["task"]["task_id"]
    names = {p["name"] for p in t1["persons"]}
    sessions = {name: login(api_url, secrets[name]) for name in ("district", "other_district")}
    values = {
        "tube_code": "T1",
        "task_id": task_id,
        "person_id": t1["persons"][0]["person_id"],
        "name": "completeness",
        "cluster_id": "k_0",
    }
    checked = 0
    for route in console_routes():
        if "GET" not in route.methods or route.path in ("/console/login", "/console/logout"):
            continue
        for district in ("310115", "310101"):
            template = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {tube_code:path}
            path = template.format(**(values | {"district_code": district}))
            for who, client in sessions.items():
                resp = client.get(path, params={"date": "2022-04-09"})
                checked += 1
                assert resp.status_code < 500, (path, resp.text[:300])
                if who == "other_district":
                    leaked = [n for n in names if n in resp.text]
                    assert not leaked, (path, leaked)
                    if "{district_code}" in template and district == "310115":
                        assert resp.status_code == 404, path
                    if "{tube_code}" in template:
                        assert resp.status_code == 404, path
                    if "{person_id}" in template:
                        assert resp.status_code == 403, path
    # Moves: a district cannot move another district's task, and a form without its token
    # moves nothing.
    other = sessions["other_district"]
    csrf = csrf_of(other, "/console/districts/310101/tasks")
    refused = other.post(
        f"/console/tasks/{task_id}/transitions", data={"csrf": csrf, "to": "acknowledged"}
    )
    assert refused.status_code == 404
    own = sessions["district"]
    forged = own.post(
        f"/console/tasks/{task_id}/transitions", data={"csrf": "forged", "to": "acknowledged"}
    )
    assert forged.status_code == 403
    assert gw.read("get_task", task_id=task_id)[0]["task"]["status"] == task[0]["task"]["status"]
    print(f"\nconsole scoping: {checked} requests over {len(console_routes())} routes, 0 leaks")


def test_one_graph_shape_for_console_and_export(
    gw: Gateway, settings: Settings, api_url: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    load_city(gw, settings)
    secret = keys(gw)["investigator"]
    client = login(api_url, secret)
    drawn = client.get("/console/data/tubes/T1").json()["elements"]
    elements_load_in_cytoscape(drawn)
    kinds = [n["data"]["kind"] for n in drawn["nodes"]]
    assert kinds.count("person") == 10 and kinds.count("tube") == 1
    assert kinds.count("box") == 1 and kinds.count("compound") == 1
    assert kinds.count("residence") == 1
    separated = [n for n in drawn["nodes"] if n["data"].get("household_separated")]
    assert sorted(n["data"]["record_id"] for n in separated) == ["R09", "R10"]
    # The flow: compound -> box -> tube -> persons -> residence.
    types = {(e["data"]["type"], e["data"]["source"].split(":")[0]) for e in drawn["edges"]}
    assert types == {
        ("FILLED", "compound"),
        ("HOLDS", "box"),
        ("SWABBED", "tube"),
        ("RESIDES_AT", "person"),
    }
    out = tmp_path / "t1.cyjs"
    subprocess.run(
        [sys.executable, "-m", "cli", "export", "T1", "--format", "cytoscape", "--out", str(out)],
        env=subprocess_env,
        check=True,
        capture_output=True,
    )
    written = json.loads(out.read_text(encoding="utf-8"))["elements"]
    elements_load_in_cytoscape(written)
    # The same shape: the same ids; the console's is masked, the CLI's is not.
    assert {n["data"]["id"] for n in written["nodes"]} == {n["data"]["id"] for n in drawn["nodes"]}
    assert {e["data"]["id"] for e in written["edges"]} == {e["data"]["id"] for e in drawn["edges"]}
    unmasked = {n["data"]["id_number"] for n in written["nodes"] if n["data"]["kind"] == "person"}
    masked = {n["data"]["id_number"] for n in drawn["nodes"] if n["data"]["kind"] == "person"}
    assert "310115198001010016" in unmasked and "310115198001010016" not in masked
    assert export.cytoscape_elements([trace_tube(gw, "T1")]) == written


def test_sessions_end_after_the_idle_time_and_their_lifetime(gw: Gateway) -> None:
    """Sessions live in the database: the idle time, the absolute lifetime (12 h by
    default), a logout and a revoked key each end one. The clock is the test's."""
    from datetime import UTC, datetime, timedelta

    from api.console.session import IDLE_S, MAX_S, Sessions
    from engine.access.keys import Principal, revoke_key

    assert (IDLE_S, MAX_S) == (30 * 60, 12 * 3600)
    key = create_key(gw, role="district", district="310115")
    who = Principal(key.key_id, "district", "310115")
    now = [datetime.now(UTC)]

    def later(minutes: float) -> None:
        now[0] += timedelta(minutes=minutes)

    store = Sessions(gw, clock=lambda: now[0])
    s = store.create(who)
    for _ in range(3):  # a click every 20 minutes keeps it alive past the idle 30 minutes
        later(20)
        got = store.get(s.sid)
        assert got is not None and (got.who, got.csrf) == (who, s.csrf), got
    later(31)
    assert store.get(s.sid) is None
    later(-31)
    assert store.get(s.sid) is None  # ended in the database, not only refused

    s = store.create(who)
    for _ in range(35):  # clicks do not extend the absolute lifetime of 12 hours
        later(20)
        assert store.get(s.sid) is not None
    later(21)
    assert store.get(s.sid) is None

    s = store.create(who)
    Sessions(gw).drop(s.sid)  # a logout, on another worker
    assert store.get(s.sid) is None
    s = store.create(who)
    revoke_key(gw, key.key_id)
    assert store.get(s.sid) is None
    assert store.get("not-a-session") is None


def test_open_tasks_older_than_a_day_are_overdue() -> None:
    from datetime import UTC, datetime, timedelta

    from engine.loop.progress import is_overdue

    now = datetime(2022, 4, 11, 12, tzinfo=UTC)
    old = (now - timedelta(hours=25)).isoformat()
    fresh = (now - timedelta(hours=23)).isoformat()
    assert is_overdue({"status": "contacted", "created_at": old}, now)
    assert not is_overdue({"status": "closed", "created_at": old}, now)
    assert not is_overdue({"status": "pending", "created_at": fresh}, now)


def test_rings_page_for_an_investigator(
    gw: Gateway, settings: Settings, api_url: str, tmp_path: Path
) -> None:
    from tests.helpers import load, result, retest

    load_city(gw, settings)
    load(gw, settings, "registrations", retest(tmp_path, "RT1", "S1", "310115198201010213"))
    load(gw, settings, "results", result(tmp_path, "S1", "positive"))
    case = next(p for p in trace_tube(gw, "T1")["persons"] if p["record_id"] == "R03")
    client = login(api_url, keys(gw)["investigator"])
    page = client.get(f"/console/persons/{case['person_id']}/rings")
    assert page.status_code == 200
    others = [p for p in trace_tube(gw, "T1")["persons"] if p["record_id"] != "R03"]
    assert all(p["name"] in page.text for p in others)
    assert not any(p["id_number"] in page.text for p in others)  # masked
    assert client.get("/console/persons/nobody/rings").status_code == 404


def test_login_sends_back_only_to_console_paths() -> None:
    from api.console.pages import safe_next

    assert safe_next("/console/tubes/T1?reveal=true") == "/console/tubes/T1?reveal=true"
    for evil in (
        "//evil.example/",
        "https://evil.example/",
        "/console/..//evil.example",
        "/\\evil",
    ):
        assert safe_next(evil) == "/console/", evil


def test_console_errors_are_pages_and_an_outage_says_so(gw: Gateway, settings: Settings) -> None:
    """A form that does not validate, an unknown page and a database outage answer the API's
    status as a console page (CSP kept); the console's data paths keep the JSON envelope."""
    from fastapi.testclient import TestClient

    secret = keys(gw)["investigator"]
    with TestClient(create_app(settings, gateway=gw), follow_redirects=False) as client:
        bad = client.post("/console/login", data={"key": secret})  # no csrf field
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in bad.headers["content-security-policy"]
        gone = client.get("/console/nowhere")
        assert gone.status_code == 404 and gone.headers["content-type"].startswith("text/html")
        token = CSRF.search(client.get("/console/login").text)
        assert token
        # Neo4j does not answer: the gateway answers at once (held open for the whole request,
        # however slowly this machine runs it), then closed again for the next tests. The
        # database is up all the while, so a background call of the app (the audit writer's
        # flush, the webhook deliverer's poll) already past the breaker when it opened would
        # close it again on success: success is not heard during the request.
        breaker = gw.breaker
        cool = breaker.cool_s
        breaker.cool_s = 60.0
        breaker.succeeded = lambda: None  # type: ignore[method-assign]
        breaker.failed()
        try:
            down = client.post(
                "/console/login", data={"key": secret, "csrf": token.group(1), "next": "/console/"}
            )
        finally:
            breaker.cool_s = cool
            del breaker.succeeded  # the class's own again
            breaker.succeeded()
        assert down.status_code == 503 and down.headers["content-type"].startswith("text/html")
        assert int(down.headers["retry-after"]) > 0 and "database" in down.text.lower()
        data = client.get("/console/data/tubes/T1")  # no session: JSON, not a page
        assert data.headers["content-type"].startswith("application/json")
