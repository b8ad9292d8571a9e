"""Retention over a small city of four sampling days: day 1 bulk-imported, days 2-4 loaded
online, then the days before the window are purged (issue 22 item 3).

What must hold: nothing inside the window, or tied to an open task or a confirmed case, is lost
(their traces are identical before and after); every report of every day answers as before,
purged days from their stored rows (which differ from what the data left would say); the dry
run counts exactly what the purge deletes; a purge stopped by a Neo4j stop and run again ends
as one run would have; a second purge deletes nothing; the audit chain verifies; an old status
cursor answers 410 and a purged tube's trace 404 naming the window.

The module runs its own managed server (it is stopped mid-purge)."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from rich.console import Console

from engine.access.audit import DirectAudit
from engine.access.keys import create_key
from engine.analysis import reports
from engine.errors import DatabaseUnavailable
from engine.ops import retention
from engine.push import webhooks
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import all_traces
from engine.usecases import writes
from loaders.bulk import bulk_load
from loaders.generate import generate_city
from tests.helpers import cli, connect_test, load, start_api

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("NEO4J_URI")), reason="the purge is stopped by stopping the server"
    ),
]

DAYS = ["2022-04-09", "2022-04-10", "2022-04-11", "2022-04-12"]
KEEP = 2  # the window: 2022-04-11 and 2022-04-12
CUTOFF = "2022-04-11"
COUNTED = ("Registration", "Result", "Tube", "Task", "Person", "PersonDay", "Box", "Event")


def _reg(rid: str, day: str, tube: str, pool: int, person: str) -> dict[str, Any]:
    return {
        "record_id": rid,
        "collected_at": f"{day}T06:30:00+08:00",
        "compound_code": "C00001",
        "box_code": "BX-RET",
        "tube_code": tube,
        "pool_size": str(pool),
        "method": "nucleic_code",
        "id_type": "passport",
        "id_number": person,
        "name": "测试" + person[-2:],
        "phone": "13800000000",
        "registered_address": "",
        "collector_id": "V-RET",
    }


def _res(tube: str, value: str, day: str) -> dict[str, Any]:
    return {
        "tube_code": tube,
        "result": value,
        "reported_at": f"{day}T21:00:00+08:00",
        "lab_code": "LAB01",
        "ct_value": "",
    }


# Beside the generated city (whose positive pools each end with a confirmed case): a day-1 pool
# whose members were both released by negative retests on day 2 (nothing keeps it: it goes,
# and the reports of days 1 and 2 would change without their stored rows), and a day-1 pool
# left with open tasks, one of whose members was pooled again on day 2 with someone else.
EXTRA_REGS = {
    DAYS[0]: [
        _reg("X-REL-1", DAYS[0], "RX-REL", 10, "EX000001"),
        _reg("X-REL-2", DAYS[0], "RX-REL", 10, "EX000002"),
        _reg("X-OPEN-1", DAYS[0], "RX-OPEN", 10, "EX000003"),
        _reg("X-OPEN-2", DAYS[0], "RX-OPEN", 10, "EX000004"),
    ],
    DAYS[1]: [
        _reg("X-RT-1", DAYS[1], "RX-S1", 1, "EX000001"),
        _reg("X-RT-2", DAYS[1], "RX-S2", 1, "EX000002"),
        _reg("X-AGAIN-1", DAYS[1], "RX-AGAIN", 10, "EX000003"),
        _reg("X-AGAIN-2", DAYS[1], "RX-AGAIN", 10, "EX000005"),
    ],
}
EXTRA_RESULTS = {
    DAYS[0]: [_res("RX-REL", "positive", DAYS[0]), _res("RX-OPEN", "positive", DAYS[0])],
    DAYS[1]: [
        _res("RX-S1", "negative", DAYS[1]),
        _res("RX-S2", "negative", DAYS[1]),
        _res("RX-AGAIN", "negative", DAYS[1]),
    ],
}
OPEN_TASK_TUBES = {"RX-OPEN", "RX-AGAIN"}


def _split(city: Path, kind: str, field: str) -> None:
    """The generated round's file cut into one file per day (a line without a readable day
    goes with day 1), plus the scenario's own lines."""
    with (city / f"{kind}.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    extra = EXTRA_REGS if kind == "registrations" else EXTRA_RESULTS
    for i, day in enumerate(DAYS):
        folder = city / f"day{i + 1}"
        folder.mkdir(exist_ok=True)
        mine = [r for r in rows if (r[field] or "")[:10] == day]
        if i == 0:
            mine += [r for r in rows if (r[field] or "")[:10] not in DAYS]
        with (folder / f"{kind}.csv").open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, header)
            w.writeheader()
            w.writerows(mine + extra.get(day, []))
        (folder / "compounds.csv").write_bytes((city / "compounds.csv").read_bytes())


@dataclass
class Store:
    settings: Settings
    server: Any
    env: dict[str, str]
    tmp: Path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    from engine.server.managed import ManagedServer

    tmp = tmp_path_factory.mktemp("retention")
    settings = Settings(
        TUBETRACE_HOME=tmp / "home",
        TUBETRACE_NEO4J_HEAP="512m",
        TUBETRACE_NEO4J_PAGECACHE="128m",
        TUBETRACE_BATCH_SIZE=250,
    )
    city = tmp / "city"
    generate_city(city, seed=22, registrations=900, days=len(DAYS), positive_rate=0.04)
    _split(city, "registrations", "collected_at")
    _split(city, "results", "reported_at")
    server = ManagedServer(settings)
    server.start()
    try:
        bulk_load(settings, "all", city / "day1", Console(file=io.StringIO()))
        with _gw(settings) as gw:
            # A city-wide subscription: the outbox's events become deliveries.
            gw.write(
                "create_webhook",
                webhook_id="wh_retention",
                url="http://127.0.0.1:9/hook",
                district_code=None,
                events=["status.changed", "task.created", "task.updated"],
                secret="whsec_test",
                now=datetime.now(UTC),
            )
            for i in range(2, len(DAYS) + 1):
                for kind in ("registrations", "results"):
                    load(gw, settings, kind, city / f"day{i}" / f"{kind}.csv")
            webhooks.fan_out(gw)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "TUBETRACE_"))}
        env |= {
            "TUBETRACE_HOME": str(settings.home),
            "TUBETRACE_NEO4J_HEAP": settings.heap_size,
            "TUBETRACE_NEO4J_PAGECACHE": settings.pagecache_size,
            "TUBETRACE_WEBHOOKS": "0",
        }
        yield Store(settings, server, env, tmp)
    finally:
        server.stop()


class _gw:
    """A gateway for a `with` block (a fresh one after a restart of the server)."""

    def __init__(self, settings: Settings) -> None:
        self.gw = connect_test(settings)

    def __enter__(self) -> Gateway:
        return self.gw

    def __exit__(self, *_: object) -> None:
        self.gw.close()


def _counts(gw: Gateway) -> dict[str, int]:
    return {r["label"]: r["n"] for r in gw.read("count_by_label")}


def _all_reports(gw: Gateway, tz: str, live: bool = False) -> dict[str, Any]:
    districts = sorted({c["district_code"] for c in gw.read("known_compounds")})
    out = {}
    for day in DAYS:
        for name in reports.REPORTS:
            for district in [None, *districts, "unassigned"]:
                rows = reports.run_report(gw, name, day, tz, district, live=live)
                out[f"{day} {name} {district}"] = json.loads(json.dumps(rows, default=str))
    return out


def _tube_days(gw: Gateway) -> dict[str, set[str]]:
    """Each tube's registration and result days, as the test reads them from the traces."""
    found: dict[str, set[str]] = {}
    for t in all_traces(gw):
        days = {p["collected_at"][:10] for p in t["persons"] if p["collected_at"]}
        days |= {r["reported_at"][:10] for r in t["tube"]["results"] if r["reported_at"]}
        found[t["tube"]["code"]] = days
    return found


def _audited(gw: Gateway, action: str, key_id: str | None = None) -> int:
    return int(gw.read("count_audit", action=action, key_id=key_id)[0]["n"])


def _purge_json(env: dict[str, str], *extra: str) -> dict[str, Any]:
    done = cli(env, "retention", "purge", "--keep-days", str(KEEP), "--today", DAYS[-1], *extra)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_purge_keeps_the_window_cases_and_open_tasks_and_resumes_after_a_stop(
    store: Store,
) -> None:
    s = store.settings
    with _gw(s) as gw:
        before_counts = _counts(gw)
        before_traces = {t["tube"]["code"]: t for t in all_traces(gw)}
        before_reports = _all_reports(gw, s.timezone)
        tube_days = _tube_days(gw)
        rels = gw.read("dump_relationships")
        case_pools = {r["to_props"]["code"] for r in rels if r["type"] == "FROM_POOL"}
        confirmed_by = {r["to_props"]["code"] for r in rels if r["type"] == "CONFIRMED_BY"}
        cases = {r["to_props"]["person_id"] for r in rels if r["type"] == "IS_CASE"}
        case_tubes = {
            code
            for code, t in before_traces.items()
            if any(p["person_id"] in cases for p in t["persons"])
        }
    assert before_counts["Delivery"] > 0 and before_counts["Case"] > 0

    dry = _purge_json(store.env, "--dry-run", "--json")
    assert dry["dry_run"] is True and dry["oldest_kept_day"] == CUTOFF
    assert dry["aggregated_days"] == DAYS[:2]
    assert dry["deleted"]["Registration"] > 0 and dry["deleted"]["Person"] > 0
    assert dry["deleted"]["Event"] > 0 and dry["deleted"]["Delivery"] > 0
    assert dry["kept_cases"] > 0 and dry["kept_for_open_tasks"] >= 4
    with _gw(s) as gw:
        assert {k: v for k, v in _counts(gw).items() if k not in ("Audit", "Meta")} == {
            k: v for k, v in before_counts.items() if k not in ("Audit", "Meta")
        }, "the dry run changed the store"

    # The purge, stopped by a Neo4j stop after its first batch of tubes (before the persons
    # and boxes that batch left are looked at), then run again.
    stopped: list[bool] = []

    def stop_server(_: int) -> None:
        if not stopped:
            stopped.append(True)
            store.server.stop()

    with _gw(s) as gw, pytest.raises(DatabaseUnavailable):
        writes.purge_retention(
            gw,
            DirectAudit(gw),
            retention.SYSTEM,
            keep_days=KEEP,
            tz=s.timezone,
            today=date.fromisoformat(DAYS[-1]),
            batch=15,
            on_batch=stop_server,
        )
    assert stopped
    store.server.start()
    with _gw(s) as gw:
        assert _counts(gw).get("RetentionPending", 0) > 0, "the stop left nothing half done"
    again = _purge_json(store.env, "--json")
    assert again["aggregated_days"] == []  # aggregated by the stopped run, before any delete

    with _gw(s) as gw:
        after_counts = _counts(gw)
        after_traces = {t["tube"]["code"]: t for t in all_traces(gw)}
        after_reports = _all_reports(gw, s.timezone)
        live_reports = _all_reports(gw, s.timezone, live=True)
        assert "RetentionPending" not in after_counts
        # The stopped run and the one after it deleted exactly what the dry run counted.
        for label in COUNTED:
            assert (
                before_counts.get(label, 0) - after_counts.get(label, 0) == dry["deleted"][label]
            ), label
        deliveries_left = int(gw.read("retention_count_deliveries", bound="dl_~")[0]["n"])
        assert before_counts["Delivery"] - deliveries_left == dry["deleted"]["Delivery"]

    # Nothing inside the window, of a case or of an open task is lost: identical traces.
    in_window = {code for code, days in tube_days.items() if any(d >= CUTOFF for d in days)}
    must_keep = in_window | case_pools | confirmed_by | case_tubes | OPEN_TASK_TUBES
    assert must_keep <= set(after_traces)
    for code in after_traces:
        assert after_traces[code] == before_traces[code], code
    gone = set(before_traces) - set(after_traces)
    assert "RX-REL" in gone and {"RX-S1", "RX-S2"} <= gone
    assert all(max(tube_days[c]) < CUTOFF for c in gone)
    # Every report of every day answers as before; the purged days' from their stored rows.
    assert after_reports == before_reports
    changed = [k for k in after_reports if live_reports[k] != after_reports[k]]
    assert changed and all(k[:10] in DAYS[:2] for k in changed), changed

    # A second purge deletes nothing; the audit chain holds the three runs' entries.
    third = _purge_json(store.env, "--json")
    assert set(third["deleted"].values()) == {0}
    assert (third["kept_cases"], third["kept_for_open_tasks"]) == (
        dry["kept_cases"],
        dry["kept_for_open_tasks"],
    )
    verified = cli(store.env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    with _gw(s) as gw:
        assert _audited(gw, "retention_purge") == 2  # none of the stopped run: written after
        assert _audited(gw, "retention_dry_run") == 1

    # From outside: a purged tube's trace, an old status cursor, a person's purged day.
    trace = cli(store.env, "trace", "RX-REL")
    assert trace.returncode == 4 and "older than the 2-day retention window" in trace.stderr
    unknown = cli(store.env, "trace", "NEVER-SEEN")
    assert unknown.returncode == 4 and "retention" not in unknown.stderr
    with _gw(s) as gw:
        investigator = create_key(gw, role="investigator", district=None).secret
        feed = create_key(gw, role="health_code", district=None).secret
    proc, url = start_api(store.env, store.tmp / "uvicorn.log")
    try:
        client = httpx.Client(base_url=url, timeout=30)
        resp = client.get(
            "/v1/tubes/RX-REL/trace", headers={"Authorization": f"Bearer {investigator}"}
        )
        assert resp.status_code == 404
        assert resp.json()["error"] == "not_found"
        assert "older than the 2-day retention window" in resp.json()["message"]
        kept = client.get(
            "/v1/tubes/RX-OPEN/trace?reveal=true&reason=test",
            headers={"Authorization": f"Bearer {investigator}"},
        )
        assert kept.status_code == 200
        old = client.get("/v1/status-changes?cursor=1", headers={"Authorization": f"Bearer {feed}"})
        assert old.status_code == 410, old.text
        body = old.json()
        assert body["error"] == "cursor_expired" and int(body["oldest_cursor"]) > 1
        assert body["message"]
        resumed = client.get(
            f"/v1/status-changes?cursor={body['oldest_cursor']}",
            headers={"Authorization": f"Bearer {feed}"},
        )
        assert resumed.status_code == 200 and resumed.json()["items"]
        first = client.get("/v1/status-changes", headers={"Authorization": f"Bearer {feed}"})
        assert first.status_code == 200
        assert first.json()["items"][0]["change_id"] > int(body["oldest_cursor"])
        listed = client.get("/openapi.json").json()["paths"]["/v1/status-changes"]["get"]
        assert "410" in listed["responses"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_runs_the_purge_once_a_day_when_the_setting_is_set(store: Store) -> None:
    """Inside the app: on with TUBETRACE_RETENTION_DAYS=N, off with 0 or unset; the day's run
    is claimed once (a second process, or a second pass of the day, finds it taken)."""
    from api.app import create_app

    assert not retention.job_enabled(Settings())
    assert not retention.job_enabled(Settings(TUBETRACE_RETENTION_DAYS=0))
    on = Settings(
        TUBETRACE_HOME=store.settings.home,
        TUBETRACE_RETENTION_DAYS=3,
        TUBETRACE_WEBHOOKS=False,
    )
    assert retention.job_enabled(on)
    with _gw(store.settings) as gw:
        with TestClient(create_app(on, gw)):
            for _ in range(600):
                if _audited(gw, "retention_purge", "system:retention"):
                    break
                time.sleep(0.1)
        assert _audited(gw, "retention_purge", "system:retention") == 1
        # Today's window of 3 days holds none of 2022: every 2022 day is marked.
        marked = {r["day"]: r["state"] for r in gw.read("retention_markers")}
        assert all(marked.get(d) == "purged" for d in DAYS), marked
        # The day's run is claimed: a second job the same day does nothing.
        job = retention.Job(gw, on, lambda today, on_batch: pytest.fail("ran twice"))
        assert job.once() is None
