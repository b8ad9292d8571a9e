"""The web console in a real browser: Playwright on Debian's chromium against a real uvicorn
and the real Neo4j. Every request the pages make is recorded and must stay on the server;
screenshots go to docs/console/ (docs/usage.md shows them); draw times are printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from engine.access.keys import create_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_tube
from loaders import write
from loaders.generate import generate_city
from loaders.read import read_file
from tests.helpers import CHROMIUM_FLAGS, chromium, load, load_city

SHOTS = Path(__file__).parent.parent.parent / "docs" / "console"
XSS = "<img src=x onerror=alert(1)>"
WIDTHS = (390, 1280)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    exe = chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI; ./dev test installs it")
        pytest.skip("chromium is not installed (./dev test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page whose requests, dialogs, CSP reports and script errors are all recorded."""

    def __init__(self, browser: Any, api_url: str, width: int = 1280) -> None:
        self.base = api_url
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        self.page.on("console", self._console)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            self.problems.append(msg.text)

    def login(self, secret: str) -> None:
        self.page.goto(self.base + "/console/login")
        self.page.fill("#key", secret)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state("load")
        assert "/console/login" not in self.page.url, self.page.inner_text("main")

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def no_overflow(self) -> None:
        """Usable at this width: the page never scrolls sideways (wide tables scroll inside
        their own box)."""
        over = self.page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert over <= 0, (self.page.url, over)

    def close(self) -> None:
        host = urlsplit(self.base).netloc
        foreign = [u for u in self.requests if urlsplit(u).netloc != host]
        assert foreign == [], foreign
        assert self.dialogs == [], self.dialogs
        csp = [p for p in self.problems if "Content Security Policy" in p]
        assert csp == [], csp
        self.context.close()


def xss_city(gw: Gateway, settings: Settings, tmp_path: Path) -> None:
    """The test city plus a positive pool at C1 whose first person is named with markup."""
    load_city(gw, settings)
    regs = tmp_path / "xss.csv"
    regs.write_text(
        "record_id,collected_at,compound_code,box_code,tube_code,pool_size,method,id_type,"
        "id_number,name,phone\n"
        f"X1,2022-04-09T09:00:00+08:00,C1,B1,TX,10,nucleic_code,passport,EX1,{XSS},13800000001\n"
        "X2,2022-04-09T09:01:00+08:00,C1,B1,TX,10,nucleic_code,passport,EX2,ok,13800000002\n",
        encoding="utf-8",
    )
    res = tmp_path / "xss-res.csv"
    res.write_text(
        "tube_code,result,reported_at,lab_code\nTX,positive,2022-04-09T20:30:00+08:00,LAB01\n",
        encoding="utf-8",
    )
    load(gw, settings, "registrations", regs)
    load(gw, settings, "results", res)


def draw_time(w: Watched, click: Any) -> tuple[float, float]:
    """Seconds from the click to the graph drawn on the next page (seen from Python), and
    the page's own figure (navigation start to drawn)."""
    start = time.perf_counter()
    click()
    w.page.wait_for_selector("#graph[data-drawn=true]", timeout=30_000)
    seen = time.perf_counter() - start
    in_page = float(w.page.get_attribute("#graph", "data-drawn-ms") or 0) / 1000
    return seen, in_page


def test_investigator_traces_reveals_and_sees_markup_as_text(
    browser: Any,
    gw: Gateway,
    settings: Settings,
    api_url: str,
    tmp_path: Path,
    subprocess_env: dict[str, str],
) -> None:
    xss_city(gw, settings, tmp_path)
    secret = create_key(gw, role="investigator", district=None).secret
    w = Watched(browser, api_url)
    try:
        w.login(secret)
        assert "/console/positives?date=2022-04-09" in w.page.url  # what the role needs first
        w.page.wait_for_selector("#progress-chart[data-drawn=true]")
        figures = []
        for _ in range(3):  # the first click also loads and compiles the graph library
            w.page.wait_for_selector("#progress-chart[data-drawn=true]")
            link = w.page.locator("a.tube-link", has_text="T1")
            figures.append(draw_time(w, link.click))
            w.page.go_back()
        print(
            "\ntrace page of a 10-person tube drawn after the click: "
            + ", ".join(f"{s * 1000:.0f} ms" for s, _ in figures)
            + " (first, then with the scripts cached); in the page, navigation start to drawn: "
            + ", ".join(f"{p * 1000:.0f} ms" for _, p in figures)
        )
        w.goto("/console/tubes/T1")
        w.page.wait_for_selector("#graph[data-drawn=true]")
        graph = w.page.evaluate(
            """() => ({
                persons: tubetraceGraph.nodes("[kind = 'person']").length,
                separated: tubetraceGraph.nodes('[?household_separated]')
                    .map(n => n.data('record_id')),
                kinds: tubetraceGraph.nodes().map(n => n.data('kind')).sort(),
            })"""
        )
        assert graph["persons"] == 10 and sorted(graph["separated"]) == ["R09", "R10"]
        assert graph["kinds"].count("residence") == 1 and graph["kinds"].count("box") == 1
        # Dagre follows the data: compound above box above tube above persons above residence.
        ys = w.page.evaluate(
            """() => Object.fromEntries(['compound', 'box', 'tube', 'person', 'residence'].map(
                k => [k, tubetraceGraph.nodes(`[kind = '${k}']`)[0].position('y')]))"""
        )
        assert ys["compound"] < ys["box"] < ys["tube"] < ys["person"] < ys["residence"], ys
        # The export's file loads through cy.json() in the same cytoscape.js.
        out = tmp_path / "t1.cyjs"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cli",
                "export",
                "T1",
                "--format",
                "cytoscape",
                "--out",
                str(out),
            ],
            env=subprocess_env,
            check=True,
            capture_output=True,
        )
        exported = json.loads(out.read_text(encoding="utf-8"))["elements"]
        loaded = w.page.evaluate(
            """(els) => {
                const cy = cytoscape({headless: true});
                cy.json({elements: els});
                const again = cytoscape({headless: true});
                again.json({elements: tubetraceGraph.json().elements});
                return [cy.elements().length, again.elements().length];
            }""",
            exported,
        )
        total = len(exported["nodes"]) + len(exported["edges"])
        assert loaded == [total, total]
        # Click a person in the graph: the record opens beside it, masked.
        r03 = next(p for p in trace_tube(gw, "T1")["persons"] if p["record_id"] == "R03")
        point = w.page.evaluate(
            """(id) => {
                const n = tubetraceGraph.getElementById('person:' + id);
                const box = document.getElementById('graph').getBoundingClientRect();
                const p = n.renderedPosition();
                return [box.left + p.x, box.top + p.y];
            }""",
            r03["person_id"],
        )
        w.page.mouse.click(point[0], point[1])
        w.page.wait_for_selector("#record:not([hidden])")
        assert w.page.inner_text("#record [data-field=record_id]") == "R03"
        masked_id = w.page.inner_text("#record [data-field=id_number]")
        assert masked_id != r03["id_number"] and "*" in masked_id
        assert w.page.locator("tr.picked").count() == 1
        SHOTS.mkdir(parents=True, exist_ok=True)
        w.page.screenshot(path=str(SHOTS / "trace.png"), full_page=True)
        # Reveal with a reason: the full ID numbers appear, and the reason is in the audit log.
        w.page.fill("#reason", "case investigation 42")
        w.page.click("form.reveal button")
        w.page.wait_for_selector("#graph[data-drawn=true]")
        assert r03["id_number"] in w.page.inner_text("table.persons")
        # Markup in a name stays text: in the table, the graph label and the record panel.
        w.goto("/console/tubes/TX")
        w.page.wait_for_selector("#graph[data-drawn=true]")
        assert XSS in w.page.inner_text("table.persons")
        w.page.locator("tr[data-person]").first.click()
        assert w.page.inner_text("#record [data-field=name]") == XSS
        assert w.page.locator("main img").count() == 0
        labels = w.page.evaluate("() => tubetraceGraph.nodes().map(n => n.data('label'))")
        assert XSS in labels
        time.sleep(0.5)
        assert not any(urlsplit(u).path.endswith("/x") for u in w.requests)
    finally:
        w.close()
    entries = httpx.get(
        api_url + "/v1/audit",
        headers={"Authorization": f"Bearer {create_key(gw, role='admin', district=None).secret}"},
        timeout=30,
    ).json()["items"]
    reveals = [e for e in entries if e["action"] == "trace" and e["reason"]]
    assert {e["reason"] for e in reveals} == {"case investigation 42"}
    assert any(e["action"] == "console_login" for e in entries)


def test_district_closes_a_loop_from_the_queue_and_the_api_agrees(
    browser: Any, gw: Gateway, settings: Settings, api_url: str, tmp_path: Path
) -> None:
    xss_city(gw, settings, tmp_path)
    secret = create_key(gw, role="district", district="310115").secret
    r02 = next(p for p in trace_tube(gw, "T1")["persons"] if p["record_id"] == "R02")
    from engine.loop.tasks import task_id

    tid = task_id(r02["person_id"], "T1", "follow_up")
    w = Watched(browser, api_url)
    try:
        w.login(secret)
        assert w.page.url.endswith("/console/districts/310115/tasks")
        assert XSS in w.page.inner_text("ol.tasks")  # the markup name, as text
        SHOTS.mkdir(parents=True, exist_ok=True)
        w.page.screenshot(path=str(SHOTS / "queue.png"), full_page=False)
        for label, status in (
            ("Acknowledge", "acknowledged"),
            ("Contacted", "contacted"),
            ("Retest collected", "retest_collected"),
            ("Close: released", "closed"),
        ):
            task = w.page.locator(f"#task-{tid}")
            task.get_by_role("button", name=label, exact=True).click()
            w.page.wait_for_load_state("load")
            assert w.page.locator(f"#task-{tid}").get_attribute("data-status") == status
        assert w.page.locator(f"#task-{tid} button").count() == 0  # closed: no moves left
        w.page.locator(f"#task-{tid} summary").click()
        history = w.page.inner_text(f"#task-{tid} ol.history")
        assert "closed (released)" in history
        # Another district's queue, tube and report are refused, even by typing the URL.
        for path in ("/console/districts/310101/tasks", "/console/tubes/T2"):
            resp = w.goto(path)
            assert resp.status == 404, path
            assert "Not found" in w.page.inner_text("h1")
    finally:
        w.close()
    api = httpx.get(
        api_url + "/v1/districts/310115/tasks",
        params={"status": "closed"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    ).json()["items"]
    task = next(t for t in api if t["task_id"] == tid)
    assert (task["status"], task["outcome"]) == ("closed", "released")
    assert [h["status"] for h in task["history"]] == [
        "pending",
        "acknowledged",
        "contacted",
        "retest_collected",
        "closed",
    ]
    assert {h["actor"] for h in task["history"][1:]} == {secret.split("_")[1]}


def test_admin_sees_the_audit_log(
    browser: Any, gw: Gateway, settings: Settings, api_url: str
) -> None:
    load_city(gw, settings)
    w = Watched(browser, api_url)
    try:
        w.login(create_key(gw, role="admin", district=None).secret)
        assert "Audit log" in w.page.inner_text("h1")
        assert "console_login" in w.page.inner_text("table")
        resp = w.goto("/console/positives")
        assert resp.status == 403  # as over the API: an admin key reads no personal data
    finally:
        w.close()


def big_day(gw: Gateway, settings: Settings, tmp_path: Path) -> tuple[str, int]:
    """A generated city with more than 500 positive tubes on its one sampling day."""
    city = tmp_path / "city"
    stats = generate_city(city, registrations=8000, days=1, positive_rate=0.85)
    for kind in ("compounds", "registrations", "results"):
        path = city / f"{kind}.csv"
        write.load_records(gw, kind, read_file(path, kind), path.name, settings)
    assert stats.positive_tubes >= 500
    return "2022-04-09", stats.positive_tubes


def test_pages_at_phone_and_desktop_width_and_the_big_day(
    browser: Any, gw: Gateway, settings: Settings, api_url: str, tmp_path: Path
) -> None:
    day, positive_tubes = big_day(gw, settings, tmp_path)
    investigator = create_key(gw, role="investigator", district=None).secret
    district = create_key(gw, role="district", district="310115").secret
    SHOTS.mkdir(parents=True, exist_ok=True)
    w = Watched(browser, api_url)
    try:
        w.login(investigator)
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            w.goto(f"/console/positives?date={day}")
            w.page.wait_for_selector("#progress-chart[data-drawn=true]", timeout=60_000)
            timings.append(time.perf_counter() - start)
        tubes = w.page.locator("a.tube-link").count()
        charted = w.page.evaluate(
            "() => Chart.getChart('progress-chart').data.datasets"
            ".reduce((n, d) => n + d.data.reduce((a, b) => a + b, 0), 0)"
        )
        print(
            f"\npositives page of a day with {positive_tubes} positive tubes ({charted} tasks in "
            f"the chart, the first {tubes} tubes in the table): drawn in "
            + ", ".join(f"{t * 1000:.0f}" for t in timings)
            + " ms (first, then warm)"
        )
        assert tubes == 200 and positive_tubes >= 500
        w.page.screenshot(path=str(SHOTS / "positives.png"))
        w.goto(f"/console/reports/completeness?date={day}")
        w.page.wait_for_selector("#report-chart[data-drawn=true]")
        w.page.screenshot(path=str(SHOTS / "report-completeness.png"))
        w.goto(f"/console/reports/zoning?date={day}")
        w.page.wait_for_selector("#report-chart[data-drawn=true]")
        w.page.screenshot(path=str(SHOTS / "report-zoning.png"))
    finally:
        w.close()
    pages = {
        investigator: [
            f"/console/positives?date={day}",
            "/console/reports/timeliness?date=" + day,
            "/console/districts/310115/tasks",
        ],
        district: ["/console/districts/310115/tasks", f"/console/reports/completeness?date={day}"],
    }
    tube = gw.read("district_tasks", district_code="310115", status=None, after="", limit=1)[0][
        "task"
    ]["tube_code"]
    pages[investigator].append(f"/console/tubes/{tube}")
    checked = 0
    for width in WIDTHS:
        for secret, paths in pages.items():
            w = Watched(browser, api_url, width)
            try:
                w.login(secret)
                for path in paths:
                    resp = w.goto(path)
                    assert resp.status == 200, path
                    w.page.wait_for_load_state("networkidle")
                    w.no_overflow()
                    checked += 1
                    if width == 390 and "/tubes/" in path:
                        w.page.wait_for_selector("#graph[data-drawn=true]")
                        w.page.screenshot(path=str(SHOTS / "trace-phone.png"), full_page=True)
            finally:
                w.close()
    print(f"{checked} page views at {WIDTHS} px: no sideways scrolling, no foreign request")
