"""The role matrix and Cypher injection, over every endpoint the app declares.

Endpoints are enumerated from the app's own routes, so a new endpoint cannot escape."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from fastapi.routing import APIRoute, iter_route_contexts

from api.app import create_app
from engine import domain
from engine.access.keys import create_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_tube
from tests.helpers import load, load_city, result, retest

OPEN = {"/healthz", "/livez", "/readyz"}
LABELS = {
    "Registration",
    "Person",
    "Tube",
    "Box",
    "Compound",
    "Result",
    "Quarantine",
    "Task",
    "Case",
    "Audit",
    "ApiKey",
    "Meta",
    "PersonDay",
    "Event",
    "Sequence",
    "Webhook",
    "Delivery",
}
PAYLOADS = [
    "' OR 1=1 //",
    '"}) MATCH (n) DETACH DELETE n //',
    "x`) SET n.pwned = true //",
    "T1'}) RETURN 1 UNION MATCH (n) RETURN n //",
    "'); CALL dbms.security.createUser('evil', 'evil', false) //",
    "$tube_codes",
    "\\u0027 OR \\u0027\\u0027=\\u0027",
    "{{7*7}}${7*7}",
]


def roles_of(route: APIRoute) -> set[str]:
    found: set[str] = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        found |= set(getattr(dep.call, "roles", ()))
        stack += dep.dependencies
    return found


def routes(settings: Settings, gw: Gateway) -> list[APIRoute]:
    app = create_app(settings, gateway=gw)
    # Routers are included lazily (FastAPI >= 0.137): walk their effective routes.
    found = [c.original_route for c in iter_route_contexts(app.routes)]
    # The web console's routes use sessions, not bearer keys: tests/integration/test_console.py
    # walks them with a session of each role the same way. Pages outside the schema (/docs) are
    # no endpoint.
    return [
        r
        for r in found
        if isinstance(r, APIRoute) and r.include_in_schema and not r.path.startswith("/console/")
    ]


def city_with_case(gw: Gateway, settings: Settings, tmp_path: Path) -> dict[str, Any]:
    load_city(gw, settings)
    load(gw, settings, "registrations", retest(tmp_path, "RT1", "S1", "310115198201010213"))
    load(gw, settings, "results", result(tmp_path, "S1", "positive"))
    t1 = trace_tube(gw, "T1")
    case = next(p for p in t1["persons"] if p["record_id"] == "R03")
    task = gw.read("district_tasks", district_code="310115", status=None, after="", limit=1)[0]
    return {"t1": t1, "case": case["person_id"], "task": task["task"]["task_id"]}


def request_for(
    route: APIRoute,
    ctx: dict[str, Any],
    district: str,
    value: str | None = None,
    field: str | None = None,
) -> dict[str, Any]:
    """A well-formed request for the route; `value` replaces `field` when given."""
    path_values = {
        "tube_code": "T1",
        "district_code": district,
        "task_id": ctx["task"],
        "person_id": ctx["case"],
        "report": "zoning",
        "entry_key": "0" * 32,  # no such directory entry: a 404 for the admin
    }
    params = {p.name: path_values[p.name] for p in route.dependant.path_params}
    query: dict[str, str] = {}
    for q in route.dependant.query_params:
        if q.name == "date":
            query["date"] = "2022-04-10"
        elif q.name in ("since", "until") and q.field_info.is_required():  # a window
            query[q.name] = "2022-04-04" if q.name == "since" else "2022-04-10"
    body: Any = None
    method = sorted(route.methods)[0]
    if route.path == "/v1/registrations":
        body = [
            {
                "record_id": "Z1",
                "collected_at": "2022-04-11T08:00:00+08:00",
                "compound_code": "C1",
                "box_code": "B9",
                "tube_code": "TZ",
                "pool_size": 10,
                "method": "nucleic_code",
                "id_type": "passport",
                "id_number": "EZ",
                "name": "z",
                "phone": "13800000009",
            }
        ]
    elif route.path == "/v1/results":
        body = [
            {
                "tube_code": "TZ",
                "result": "negative",
                "reported_at": "2022-04-11T20:00:00+08:00",
                "lab_code": "L1",
            }
        ]
    elif route.path.endswith("/transitions"):
        body = {"to": "acknowledged", "outcome": None, "note": "called"}
    if field is not None:
        if field in params:
            params[field] = value
        elif isinstance(body, list) and field in body[0]:
            body[0][field] = value
        elif isinstance(body, dict) and field in body:
            body[field] = value
        else:
            query[field] = str(value)
    template = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {tube_code:path}
    url = template.format(
        **{k: httpx.URL("http://x/" + str(v)).raw_path.decode()[1:] for k, v in params.items()}
    )
    return {"method": method, "url": url, "params": query, "json": body}


def string_fields(route: APIRoute) -> list[str]:
    names = [p.name for p in route.dependant.path_params]
    names += [
        q.name for q in route.dependant.query_params if q.name not in ("limit", "depth", "reveal")
    ]
    if route.path in ("/v1/registrations", "/v1/results"):
        names += [
            "tube_code",
            "record_id",
            "name",
            "compound_code",
            "id_number",
            "lab_code",
            "result",
        ]
    elif route.path.endswith("/transitions"):
        names += ["to", "outcome", "note"]
    return names


def sensitive(person: dict[str, Any]) -> set[str]:
    out = {person["person_id"], person["name"]}
    for value in (person["phone"], person["id_number"]):
        if value:
            out |= {value, domain.mask_phone(value) or ""}
    return out - {""}


def test_role_matrix_leaks_nothing(
    gw: Gateway, settings: Settings, api_url: str, tmp_path: Path
) -> None:
    ctx = city_with_case(gw, settings, tmp_path)
    keys = {
        name: create_key(
            gw, role=role, district=district, labs=["LAB01"] if role == "lab" else None
        ).secret
        for name, role, district in [
            ("investigator", "investigator", None),
            ("district:310115", "district", "310115"),
            ("district:310101", "district", "310101"),
            ("collector", "collector", None),
            ("lab", "lab", None),
            ("admin", "admin", None),
            ("health_code", "health_code", None),
        ]
    }
    r01 = next(p for p in ctx["t1"]["persons"] if p["record_id"] == "R01")
    foreign_to_huangpu = set().union(
        *(sensitive(p) for p in ctx["t1"]["persons"] if p["record_id"] != "R01")
    ) - sensitive(r01)
    requests = leaks = errors = 0
    for route in routes(settings, gw):
        allowed = roles_of(route)
        if route.path in OPEN:
            assert not allowed
            continue
        assert allowed, f"{route.path} declares no role"
        for name, secret in keys.items():
            role = name.split(":")[0]
            district = name.split(":")[1] if ":" in name else "310115"
            for target in (
                {district, "310115" if district == "310101" else "310101"}
                if role == "district"
                else {district}
            ):
                req = request_for(route, ctx, target)
                resp = httpx.request(
                    req["method"],
                    api_url + req["url"],
                    params=req["params"],
                    json=req["json"],
                    headers={"Authorization": f"Bearer {secret}"},
                    timeout=60,  # a shared CI machine can be slow; this test is not about time
                )
                requests += 1
                errors += resp.status_code >= 500
                if role not in allowed:
                    assert resp.status_code == 403, (name, route.path, resp.status_code)
                    continue
                if role == "district" and "{district_code}" in route.path and target != district:
                    assert resp.status_code == 404, (name, route.path, target)
                if name == "district:310101":
                    found = [s for s in foreign_to_huangpu if s in resp.text]
                    leaks += bool(found)
                    assert not found, (route.path, target, found[:3])
    print(f"\nrole matrix: {requests} requests, {leaks} leaks, {errors} server errors")
    assert errors == 0 and requests >= 60


def graph_state(gw: Gateway) -> dict[str, Any]:
    nodes = gw.read("dump_nodes")

    def norm(v: Any) -> Any:
        return v.iso_format() if hasattr(v, "iso_format") else v

    keep = sorted(
        json.dumps(
            {"l": sorted(n["labels"]), "p": {k: norm(v) for k, v in n["props"].items()}},
            sort_keys=True,
            ensure_ascii=False,
        )
        for n in nodes
        if not {"Audit", "ApiKey"} & set(n["labels"])
        and n["props"].get("key") != "audit_head"  # the audit chain's head moves with the log
    )
    labels = {label for n in nodes for label in n["labels"]}
    # Every relationship with its ends: a registration's codes are its relationships
    # (engine/model.py), so an injection that dropped or moved one must show here.
    rels = sorted(
        json.dumps(
            [
                r["type"],
                {k: norm(v) for k, v in r["props"].items()},
                sorted(r["from_labels"]),
                {k: norm(v) for k, v in r["from_props"].items()},
                sorted(r["to_labels"]),
                {k: norm(v) for k, v in r["to_props"].items()},
            ],
            sort_keys=True,
            ensure_ascii=False,
        )
        for r in gw.read("dump_relationships")
        if not {"Audit", "ApiKey"} & {*r["from_labels"], *r["to_labels"]}
    )
    with gw.driver.session(database=gw.database) as s:
        users = [r["user"] for r in s.run("SHOW USERS YIELD user")]
    return {"nodes": keep, "labels": labels, "users": users, "rels": rels}


def test_cypher_injection_changes_nothing(
    gw: Gateway, settings: Settings, api_url: str, tmp_path: Path
) -> None:
    ctx = city_with_case(gw, settings, tmp_path)
    secrets = {
        role: create_key(
            gw,
            role=role,
            district="310115" if role == "district" else None,
            labs=["LAB01"] if role == "lab" else None,
        ).secret
        for role in ("investigator", "district", "collector", "lab", "admin", "health_code")
    }
    before = graph_state(gw)
    sent = server_errors = 0
    for route in routes(settings, gw):
        allowed = roles_of(route)
        if not allowed:
            continue
        role = (
            sorted(allowed)[0]
            if "district" not in allowed or route.path.startswith("/v1/persons")
            else "district"
        )
        for field in string_fields(route):
            for payload in PAYLOADS:
                req = request_for(route, ctx, "310115", payload, field)
                resp = httpx.request(
                    req["method"],
                    api_url + req["url"],
                    params=req["params"],
                    json=req["json"],
                    headers={"Authorization": f"Bearer {secrets[role]}"},
                    timeout=60,  # a shared CI machine can be slow; this test is not about time
                )
                sent += 1
                server_errors += resp.status_code >= 500
                assert resp.status_code < 500, (route.path, field, payload, resp.text[:200])
    after = graph_state(gw)
    # Transitions may acknowledge tasks; the event counter counts their events.
    changed = [
        n
        for n in before["nodes"]
        if n not in after["nodes"] and '"Task"' not in n and '"Sequence"' not in n
    ]
    new_nodes = [n for n in after["nodes"] if n not in before["nodes"]]
    assert changed == []
    assert after["labels"] <= LABELS and after["users"] == before["users"]
    # No relationship of the data before went or changed (a task's may: its end changed);
    # new ones only of the kinds an upload makes.
    before_rels, after_rels = set(before["rels"]), set(after["rels"])
    assert [r for r in before_rels - after_rels if '"Task"' not in r] == []
    assert {json.loads(r)[0] for r in after_rels - before_rels if '"Task"' not in r} <= {
        "INTO_TUBE",
        "OF_PERSON",
        "IN_BOX",
        "AT_COMPOUND",
        "FILLED_AT",
        "FOR_TUBE",
        "HAS_DAY",
    }
    assert not any("pwned" in json.loads(n)["p"] for n in after["nodes"])  # no such property
    print(
        f"\ninjection: {sent} payload requests, {len(changed)} changes to existing data, "
        f"{len(new_nodes)} nodes stored as values, {server_errors} server errors"
    )


def test_logs_never_hold_a_full_id_number_or_phone(
    gw: Gateway, settings: Settings, api_url: str, tmp_path: Path
) -> None:
    ctx = city_with_case(gw, settings, tmp_path)
    inv = create_key(gw, role="investigator", district=None).secret
    collector = create_key(gw, role="collector", district=None).secret
    headers = {"Authorization": f"Bearer {inv}"}
    assert (
        httpx.get(
            f"{api_url}/v1/tubes/T1/trace",
            params={"reveal": "true", "reason": "x"},
            headers=headers,
        ).status_code
        == 200
    )
    httpx.post(
        f"{api_url}/v1/registrations",
        json=[
            {
                "tube_code": "TL",
                "id_type": "resident_id",
                "id_number": "11010519491231002X",
                "phone": "13912345678",
            }
        ],
        headers={"Authorization": f"Bearer {collector}"},
    )
    secrets = {"11010519491231002X", "13912345678"}
    for p in ctx["t1"]["persons"]:
        secrets |= {v for v in (p["id_number"], p["phone"]) if v}
    home = settings.home
    logs = [home / "uvicorn.log", *sorted((home / "neo4j" / "logs").glob("*.log"))]
    scanned = 0
    for path in logs:
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        scanned += len(text)
        found = [s for s in secrets if s in text]
        assert not found, (path.name, found[:3])
    assert scanned > 1000


def test_request_rate_per_key_is_limited(gw: Gateway, settings: Settings) -> None:
    from fastapi.testclient import TestClient

    limited = settings.model_copy(update={"rate_per_second": 1.0, "rate_burst": 3})
    key = create_key(gw, role="investigator", district=None).secret
    with TestClient(create_app(limited, gateway=gw)) as client:
        codes = [
            client.get(
                "/v1/tubes/NOPE/trace", headers={"Authorization": f"Bearer {key}"}
            ).status_code
            for _ in range(6)
        ]
    assert codes[:3] == [404, 404, 404] and 429 in codes[3:]


def test_every_error_answer_is_one_envelope(gw: Gateway, api_url: str) -> None:
    """Unknown paths, wrong methods, unreadable, deep or invalid bodies, chunked bodies over
    the limit: `{"error", "message"}` with the code word of the status, never `{"detail"}`."""
    from api.errors import ERRORS, MAX_BODY_BYTES

    key = create_key(gw, role="collector", district=None).secret
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def chunks() -> Any:
        yield b"["
        piece = b'{"tube_code": "T1"},' * 5000
        sent = 0
        while sent <= MAX_BODY_BYTES:
            yield piece
            sent += len(piece)
        yield b'{"tube_code": "T1"}]'

    cases = [
        (httpx.get(f"{api_url}/v1/nothing-here"), 404),
        (httpx.get(f"{api_url}/v1/registrations", headers=auth), 405),
        (httpx.delete(f"{api_url}/healthz"), 405),
        (httpx.post(f"{api_url}/v1/registrations", content=b"[{", headers=auth), 422),
        (httpx.post(f"{api_url}/v1/registrations", content=b"[" * 200_000, headers=auth), None),
        (httpx.post(f"{api_url}/v1/registrations", json={"not": "a list"}, headers=auth), 422),
        (httpx.post(f"{api_url}/v1/registrations", content=chunks(), headers=auth), 413),
        (httpx.get(f"{api_url}/v1/tubes/T1/trace"), 401),
        (httpx.get(f"{api_url}/v1/tubes/T1/trace", headers=auth), 403),
    ]
    for resp, status in cases:
        req = f"{resp.request.method} {resp.request.url.path}"
        assert status is None or resp.status_code == status, (req, resp.status_code, resp.text)
        assert resp.status_code in ERRORS, (req, resp.status_code)
        body = resp.json()
        assert "detail" not in body, (req, body)
        assert body["error"] == ERRORS[resp.status_code][0], (req, body)
        assert isinstance(body["message"], str) and body["message"], (req, body)
    print(f"\nerror envelope: {len(cases)} kinds of bad request, one envelope, no 'detail'")
    stored = {r["label"] for r in gw.read("count_by_label")}
    assert stored <= {"ApiKey", "Audit", "Meta"}, stored


def test_a_bug_is_a_500_with_an_error_id_in_the_log(
    gw: Gateway, settings: Settings, caplog: Any
) -> None:
    from fastapi.testclient import TestClient

    app = create_app(settings, gateway=gw)

    def broken() -> None:
        raise ZeroDivisionError("a bug")

    app.add_api_route("/v1/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/v1/broken")
    assert resp.status_code == 500
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["error"] == "internal_error" and len(body["error_id"]) >= 8
    assert body["error_id"] in body["message"]
    assert "ZeroDivisionError" not in resp.text
    logged = [r for r in caplog.records if body["error_id"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_openapi_lists_every_error_status_with_the_envelope(
    settings: Settings, gw: Gateway
) -> None:
    from api.errors import ERRORS

    doc = create_app(settings, gateway=gw).openapi()
    operations = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            operations += 1
            for status, (word, _) in ERRORS.items():
                answer = op["responses"].get(str(status))
                assert answer, (method, path, status)
                assert answer["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }, (method, path, status)
                assert word in answer["description"]
    assert "Retry-After" in doc["paths"]["/healthz"]["get"]["responses"]["503"]["headers"]
    print(f"\nopenapi: {operations} operations x {len(ERRORS)} error statuses documented")


def test_http_surface_edges_issue_9(
    gw: Gateway, settings: Settings, api_url: str, subprocess_env: dict[str, str]
) -> None:
    """Issue 9's HTTP items: each of these answered 500, leaked or was accepted before."""
    import subprocess
    import sys

    load_city(gw, settings)
    inv = create_key(gw, role="investigator", district=None).secret
    admin = create_key(gw, role="admin", district=None).secret
    collector = create_key(gw, role="collector", district=None).secret

    def get(path: str, key: str, **params: Any) -> httpx.Response:
        return httpx.get(
            api_url + path, params=params, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    # Reads at the calendar's edges: 4xx with a sentence, not 500.
    for path, key, params in (
        ("/v1/reports/zoning", inv, {"date": "9999-12-31"}),
        ("/v1/reports/completeness", inv, {"date": "0001-01-01"}),
        ("/v1/positives", inv, {"date": "9999-12-31"}),
        ("/v1/audit", admin, {"since": "0001-01-01T00:00:00+14:00"}),
        ("/v1/audit", admin, {"since": "9999-12-31T23:59:59-14:00"}),
    ):
        resp = get(path, key, **params)
        assert 400 <= resp.status_code < 500, (path, params, resp.status_code, resp.text)
        assert resp.json()["error"] == "invalid_input"

    # Path parameters: long, invisible or control characters, full-width or unknown districts.
    for path in (
        "/v1/tubes/" + "T" * 2000 + "/trace",
        "/v1/tubes/T%00/trace",
        "/v1/tubes/T%E2%80%AE1/trace",
        "/v1/tasks/k%00/transitions",
        "/v1/persons/" + "p" * 100 + "/rings",
        "/v1/districts/%EF%BC%93%EF%BC%91%EF%BC%90%EF%BC%91%EF%BC%91%EF%BC%95/tasks",
        "/v1/districts/999999/tasks",
    ):
        method = "POST" if path.endswith("/transitions") else "GET"
        resp = httpx.request(
            method,
            api_url + path,
            json={"to": "acknowledged"},
            headers={"Authorization": f"Bearer {inv}"},
        )
        assert resp.status_code == 422, (path[:80], resp.status_code, resp.text[:300])
        assert "T" * 100 not in resp.text and "p" * 100 not in resp.text  # not echoed
    assert get("/v1/districts/310115/tasks", inv).status_code == 200
    assert get("/v1/districts/unassigned/tasks", inv).status_code == 200

    # `keys create --district`: only districts of the table.
    for bad in ("999999", "３１０１１５", "31011"):
        done = subprocess.run(
            [sys.executable, "-m", "cli", "keys", "create", "--role", "district"]
            + ["--district", bad],
            capture_output=True,
            text=True,
            env=subprocess_env,
            check=False,
        )
        assert done.returncode == 1 and "Traceback" not in done.stderr, (bad, done.stderr)
        assert "district" in done.stderr

    # Answers that may carry personal data are never cached.
    trace = get("/v1/tubes/T1/trace", inv)
    assert trace.status_code == 200 and trace.headers["cache-control"] == "no-store"
    assert get("/v1/tubes/NOPE/trace", inv).headers["cache-control"] == "no-store"

    # A number is length-checked like a string; `true` is not the number 1.
    post = {"Authorization": f"Bearer {collector}"}
    huge = httpx.post(
        f"{api_url}/v1/registrations",
        content=b'[{"record_id": ' + b"7" * 4000 + b', "tube_code": "TX"}]',
        headers=post | {"Content-Type": "application/json"},
        timeout=60,
    )
    assert huge.status_code == 413 and huge.json()["error"] == "payload_too_large", huge.text
    record = {
        "record_id": "BOOL1",
        "collected_at": "2022-04-09T08:00:00+08:00",
        "compound_code": "C1",
        "box_code": "B1",
        "tube_code": "TBOOL",
        "pool_size": True,
        "method": "nucleic_code",
        "id_type": "passport",
        "id_number": "E12345678",
        "name": "n",
        "phone": "13800000000",
    }
    answer = httpx.post(
        f"{api_url}/v1/registrations", json=[record], headers=post, timeout=60
    ).json()
    assert answer["outcomes"][0]["status"] == "stored"
    assert "invalid_pool_size" in answer["outcomes"][0]["flags"], answer
    assert get("/v1/tubes/TBOOL/trace", inv).json()["tube"]["pool_size"] != 1

    # `?district=` is honoured for investigators; a district key cannot ask for another one.
    everyone = get("/v1/positives", inv, date="2022-04-09").json()["items"]
    pudong_only = get("/v1/positives", inv, date="2022-04-09", district="310115").json()["items"]
    huangpu = get("/v1/positives", inv, date="2022-04-09", district="310101").json()["items"]
    assert everyone and {i["district_code"] for i in everyone} == {"310115"}
    assert pudong_only == everyone and huangpu == []
    pudong = create_key(gw, role="district", district="310115").secret
    assert get("/v1/positives", pudong, date="2022-04-09", district="310101").status_code == 404
    print(
        "\nhttp surface: 5 calendar-edge reads 4xx, 7 bad path parameters 422, 3 bad "
        "--district refused, no-store on personal answers, 4,000-digit record_id 413, "
        "pool_size true flagged, ?district= honoured"
    )


def test_docs_serve_pinned_assets_from_the_package(api_url: str) -> None:
    from api.docs import ASSETS

    page = httpx.get(f"{api_url}/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text.replace(
        "https://swagger.io", ""
    )
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs/assets/{name}" in page.text
        asset = httpx.get(f"{api_url}/docs/assets/{name}")
        assert asset.status_code == 200 and len(asset.content) > 10_000
    assert (ASSETS / "LICENSE").read_text().startswith(" ") or "Apache" in (
        ASSETS / "LICENSE"
    ).read_text()
    assert (ASSETS / "VERSION").read_text().split()[-1].count(".") == 2  # pinned x.y.z


def test_unknown_keys_are_rate_limited_per_address(gw: Gateway, settings: Settings) -> None:
    from fastapi.testclient import TestClient

    limited = settings.model_copy(update={"rate_per_second": 1.0, "rate_burst": 5})
    with TestClient(create_app(limited, gateway=gw)) as client:
        codes = [
            client.get(
                "/v1/tubes/T1/trace",
                headers={"Authorization": f"Bearer tt_{i:012x}_{'x' * 43}"},
            ).status_code
            for i in range(30)
        ]
    assert codes[:5] == [401] * 5 and codes.count(429) >= 20, codes
    print(f"\nunknown keys: 30 in a burst from one address, {codes.count(429)} answered 429")


def test_denied_attempts_are_audited(gw: Gateway, settings: Settings) -> None:
    from fastapi.testclient import TestClient

    load_city(gw, settings)
    collector = create_key(gw, role="collector", district=None)
    huangpu = create_key(gw, role="district", district="310101")
    inv = create_key(gw, role="investigator", district=None)
    task = gw.read("district_tasks", district_code="310115", status=None, after="", limit=1)
    task_id = task[0]["task"]["task_id"]

    def bearer(secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    with TestClient(create_app(settings, gateway=gw)) as client:
        unknown = bearer("tt_0123456789ab_" + "x" * 43)
        assert client.get("/v1/tubes/T1/trace", headers=unknown).status_code == 401
        assert client.get("/v1/tubes/T1/trace", headers=bearer(collector.secret)).status_code == 403
        assert (
            client.get("/v1/districts/310115/tasks", headers=bearer(huangpu.secret)).status_code
            == 404
        )
        moves = [
            client.post(
                f"/v1/tasks/{task_id}/transitions",
                json={"to": "closed", "outcome": "released", "note": "x"},
                headers=bearer(inv.secret),
            ).status_code
            for _ in range(2)
        ]
        assert 409 in moves, moves
        client.app.state.audit.flush()  # type: ignore[attr-defined]
    from engine.access import audit

    denied = [
        e
        for e in audit.entries(gw, since=None, key_id=None, after="", limit=1000)
        if e["action"] == "denied"
    ]
    by_status = {e["status"]: e for e in denied}
    assert set(by_status) >= {"denied_401", "denied_403", "denied_404", "denied_409"}, denied
    # A key id nobody holds is not a key: what the caller claimed (integration/test_refusals.py).
    assert by_status["denied_401"]["key_id"] is None
    assert by_status["denied_401"]["claimed_key_id"] == "0123456789ab"
    assert by_status["denied_403"]["key_id"] == collector.key_id
    assert by_status["denied_404"]["key_id"] == huangpu.key_id
    print(f"\ndenied attempts: {len(denied)} audited ({', '.join(sorted(by_status))})")
