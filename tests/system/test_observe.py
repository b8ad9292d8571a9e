"""Logs an on-call engineer can follow: one JSON line per request, the request id on every
answer, the same id as a 500's error_id and in the audit entries the request wrote; no query
string (an investigator's reason) in any log line, uvicorn's access line included."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import AuditDep, GatewayDep, Investigator, TubeCodePath
from api.observe import JsonFormatter, TextFormatter, request_id_of
from engine.access.keys import create_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.usecases import reads
from tests.helpers import bearer, load_city

REASON = "REASON-must-not-be-logged-7f3a"


@pytest.fixture()
def log_lines() -> Iterator[io.StringIO]:
    """The `tubetrace` loggers' lines, as the JSON handler writes them."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("tubetrace")
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)


def lines_of(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_one_request_found_by_its_id_in_the_log_its_500_and_its_audit_entry(
    gw: Gateway, settings: Settings, log_lines: io.StringIO
) -> None:
    load_city(gw, settings)
    inv = create_key(gw, role="investigator", district=None)
    admin = create_key(gw, role="admin", district=None).secret
    app = create_app(settings.model_copy(update={"webhooks_enabled": False}), gateway=gw)

    @app.get("/v1/test-only/{tube_code}/fails-after-reading")
    def fails(tube_code: TubeCodePath, g: GatewayDep, who: Investigator, log: AuditDep) -> None:
        """A bug after an audited read: the read's entry, the 500 and the log line share the
        request's id."""
        reads.read_trace(g, log, who, tube_code, reveal=True, reason=REASON)
        raise RuntimeError("a bug")

    rid = "call-2022-04-09.district:42"
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get(
            "/v1/test-only/T1/fails-after-reading",
            params={"reason": REASON},
            headers=bearer(inv.secret) | {"X-Request-ID": rid},
        )
        assert resp.status_code == 500, resp.text
        body = resp.json()
        assert body["error"] == "internal_error" and body["error_id"] == rid
        assert resp.headers["x-request-id"] == rid and rid in body["message"]

        ok = client.get("/v1/tubes/T1/trace", headers=bearer(inv.secret))
        assert ok.status_code == 200
        other = ok.headers["x-request-id"]
        assert other != rid and len(other) == 32  # a new id when the caller sent none

        unsafe = client.get("/healthz", headers={"X-Request-ID": "x" * 65})
        assert unsafe.headers["x-request-id"] != "x" * 65
        assert client.get("/livez", headers={"X-Request-ID": "a b"}).headers[
            "x-request-id"
        ] not in ("a b", "")
        app.state.audit.flush()
        audit = client.get("/v1/audit", params={"key": inv.key_id}, headers=bearer(admin))
    assert audit.status_code == 200
    entries = audit.json()["items"]
    mine = [e for e in entries if e.get("request_id") == rid]
    assert [e["action"] for e in mine] == ["trace"], entries
    assert mine[0]["reason"] == REASON  # the audit log keeps the reason; logs never do
    assert any(e.get("request_id") == other for e in entries)

    lines = lines_of(log_lines)
    found = [ln for ln in lines if ln.get("request_id") == rid and ln["message"] == "request"]
    assert len(found) == 1, lines
    (line,) = found
    assert line["status"] == 500 and line["error_id"] == rid
    assert line["route"] == "/v1/test-only/{tube_code}/fails-after-reading"
    assert line["key_id"] == inv.key_id and line["method"] == "GET"
    assert isinstance(line["duration_ms"], float) and line["level"] == "error"
    assert set(line) >= {"time", "pid", "request_id", "route", "status", "duration_ms"}
    errors = [ln for ln in lines if str(ln["message"]).startswith("internal_error")]
    assert [e["error_id"] for e in errors] == [rid] and "RuntimeError" in str(errors[0])
    text = log_lines.getvalue()
    assert REASON not in text and "/v1/test-only/T1" not in text
    # No ID number, phone or name of the traced persons in any line.
    trace = client_trace(settings, gw)
    for person in trace["persons"]:
        for value in (person["id_number"], person["phone"], person["name"]):
            assert not value or value not in text, value


def client_trace(settings: Settings, gw: Gateway) -> dict[str, object]:
    from engine.access.audit import DirectAudit
    from engine.access.keys import CLI

    view: dict[str, object] = reads.read_trace(
        gw, DirectAudit(gw), CLI, "T1", reveal=True, reason="test"
    )
    return view


def test_the_served_api_logs_template_and_key_never_the_reason(
    gw: Gateway, settings: Settings, api_url: str, neo4j_env: dict[str, str]
) -> None:
    """The session's uvicorn (run by hand, `--log-level info`): its own access line is on
    there, and loses the query string; the request line carries the template and key id."""
    load_city(gw, settings)
    inv = create_key(gw, role="investigator", district=None)
    rid = f"probe-{time.time_ns()}"
    resp = httpx.get(
        f"{api_url}/v1/tubes/T1/trace",
        params={"reveal": "true", "reason": REASON},
        headers=bearer(inv.secret) | {"X-Request-ID": rid},
    )
    assert resp.status_code == 200 and resp.headers["x-request-id"] == rid
    log_path = Path(neo4j_env["TUBETRACE_HOME"]) / "uvicorn.log"
    deadline = time.monotonic() + 10
    while rid not in log_path.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log_path.read_text(errors="replace")
    assert REASON not in text
    [line] = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{") and rid in ln]
    assert line["route"] == "/v1/tubes/{tube_code}/trace" and line["status"] == 200
    assert line["key_id"] == inv.key_id
    access = [ln for ln in text.splitlines() if '"GET /v1/tubes/T1/trace' in ln]
    assert access and all("?" not in ln.split('"GET ')[1].split(" ")[0] for ln in access)


def test_text_format_and_request_ids() -> None:
    record = logging.LogRecord("tubetrace.request", logging.INFO, __file__, 1, "request", (), None)
    record.fields = {  # type: ignore[attr-defined]
        "request_id": "abc",
        "method": "GET",
        "route": "/v1/tubes/{tube_code}/trace",
        "status": 200,
        "duration_ms": 1.5,
        "key_id": "k1",
    }
    text = TextFormatter().format(record)
    assert "GET /v1/tubes/{tube_code}/trace 200 1.5 ms" in text
    assert "key_id=k1" in text and "request_id=abc" in text and not text.startswith("{")
    assert json.loads(JsonFormatter().format(record))["route"] == "/v1/tubes/{tube_code}/trace"

    def scope(value: bytes) -> dict[str, object]:
        return {"headers": [(b"x-request-id", value)]}

    assert request_id_of(scope(b"a-b_c.d:e")) == "a-b_c.d:e"
    for bad in (b"x" * 65, b"a b", b"\xff", b"", b"a/b", b"a\nb"):
        assert request_id_of(scope(bad)) != bad.decode("latin-1")
