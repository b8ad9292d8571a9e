"""`GET /metrics`: Prometheus text that prometheus_client's parser and promtool read, counters
that move with traffic, the database's gauges that move with the data, no personal data in any
label, only the ops and admin roles; the alert rules and the dashboard name metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from engine.access.keys import create_key
from engine.ops import gauges
from engine.settings import Settings
from engine.store.gateway import Gateway
from tests.helpers import DATA, bearer, load, load_city, result, retest

ROOT = Path(__file__).resolve().parents[2]
OPS_DOCS = ROOT / "docs" / "ops"
PROMTOOL = shutil.which("promtool")
NO_PROMTOOL = "promtool is missing: apt-get install prometheus (./dev test installs it)"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client: httpx.Client | TestClient, key: str) -> str:
    resp = client.get("/metrics", headers=bearer(key))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return resp.text


def test_counters_move_with_traffic_and_only_ops_and_admin_scrape(
    gw: Gateway, api_url: str
) -> None:
    ops = create_key(gw, role="ops", district=None).secret
    admin = create_key(gw, role="admin", district=None).secret
    inv = create_key(gw, role="investigator", district=None).secret
    with httpx.Client(base_url=api_url, timeout=30) as client:
        before = samples(scrape(client, ops))
        for _ in range(7):
            assert client.get("/healthz").status_code == 200
        for _ in range(3):
            assert client.get("/v1/tubes/NOPE/trace", headers=bearer(inv)).status_code == 404
        after = samples(scrape(client, admin))
        assert client.get("/metrics", headers=bearer(inv)).status_code == 403
        assert client.get("/metrics").status_code == 401
        assert client.get("/v1/quarantine", headers=bearer(ops)).status_code == 403
    route = "/v1/tubes/{tube_code}/trace"
    for name, labels, n in (
        ("tubetrace_http_requests_total", {"route": "/healthz", "status": "200"}, 7),
        ("tubetrace_http_requests_total", {"route": route, "status": "404"}, 3),
        ("tubetrace_http_request_duration_seconds_count", {"route": route, "status": "404"}, 3),
    ):
        labels |= {"method": "GET"}
        assert value(after, name, **labels) - value(before, name, **labels) >= n, (name, labels)
    # A raw path is never a label: the 404s above count under their template.
    assert not [k for k in after if any("NOPE" in v for _, v in k[1])]
    assert value(after, "tubetrace_database_up") == 1.0


def test_database_gauges_follow_the_data_without_personal_data(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    ops = create_key(gw, role="ops", district=None).secret
    app = create_app(
        settings.model_copy(update={"webhooks_enabled": False, "metrics_cache_s": 0.0}),
        gateway=gw,
    )
    with TestClient(app) as client:
        empty = samples(scrape(client, ops))
        assert value(empty, "tubetrace_records", kind="registrations") == 0
        load_city(gw, settings)
        load(gw, settings, "registrations", retest(tmp_path, "RT1", "S1", "310115198201010213"))
        load(gw, settings, "results", result(tmp_path, "S1", "positive"))
        bad = tmp_path / "bad.csv"
        bad.write_text((DATA / "registrations.csv").read_text().splitlines()[0] + "\nx,,,,,\n")
        load(gw, settings, "registrations", bad)
        text = scrape(client, ops)
    found = samples(text)
    counts = {r["label"]: r["n"] for r in gw.read("count_by_label")}
    assert value(found, "tubetrace_records", kind="registrations") == counts["Registration"]
    assert value(found, "tubetrace_records", kind="results") == counts["Result"]
    assert value(found, "tubetrace_quarantined_records", kind="registrations") >= 1
    tasks = gw.read("dump_nodes")
    open_tasks: dict[tuple[str, str], int] = {}
    for n in tasks:
        if "Task" in n["labels"] and n["props"]["status"] != "closed":
            key = (n["props"]["district_code"], n["props"]["status"])
            open_tasks[key] = open_tasks.get(key, 0) + 1
    assert open_tasks
    for (district, status), n in open_tasks.items():
        assert value(found, "tubetrace_tasks_open", district=district, status=status) == n
    assert value(found, "tubetrace_outbox_events") > 0
    assert value(found, "tubetrace_metrics_database_seconds") > 0
    # Overdue: the same tasks a day and more later.
    later = gauges.snapshot(gw, now=datetime.now(UTC) + timedelta(hours=25))
    assert later.tasks_overdue == {
        d: sum(n for (dd, _), n in open_tasks.items() if dd == d) for d, _ in open_tasks
    }
    # No personal data in any name or label value: ID numbers, phones, names, record ids.
    personal = set()
    for n in tasks:
        for field in ("id_number", "phone", "name", "record_id", "person_id"):
            v = n["props"].get(field)
            if isinstance(v, str) and len(v) >= 2:
                personal.add(v)
    label_values = {v for (_, labels) in found for _, v in labels}
    names = {name for name, _ in found}
    assert not {v for v in label_values | names if v in personal}
    assert all(re.fullmatch(r"[a-z0-9_]+", n) for n in names)
    districts = {v for (name, labels) in found for k, v in labels if k == "district"}
    assert districts and all(re.fullmatch(r"[0-9]{6}|unassigned", d) for d in districts)
    if PROMTOOL:
        checked = subprocess.run(
            [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_alert_rules_pass_promtool_and_their_own_tests() -> None:
    assert PROMTOOL is not None
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run(
            [PROMTOOL, *args], cwd=OPS_DOCS, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_alerts_and_dashboard_name_metrics_that_exist() -> None:
    from api import metrics as m

    exposed = {
        "tubetrace_http_requests_total",
        "tubetrace_http_request_duration_seconds_bucket",
    }
    source = Path(m.__file__).read_text()
    exposed |= set(re.findall(r'"(tubetrace_[a-z_]+)"', source))
    text = (OPS_DOCS / "alerts.yml").read_text()
    dashboard = json.loads((OPS_DOCS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 12
    used = set(re.findall(r"\b(tubetrace_[a-z_]+)", text + "\n".join(exprs)))
    assert used and used <= exposed, used - exposed
    for alert in ("DatabaseDown", "OutboxStuck", "OverdueTasksRising", "HighErrorRate"):
        assert f"alert: Tubetrace{alert}" in text
