"""Neo4j Browser on the managed server, in headless Chromium: styled, with the guide."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.settings import Settings
from engine.store.gateway import Gateway
from tests.helpers import CHROMIUM_FLAGS, chromium, load_city

ARTIFACTS = Path(__file__).parent.parent / "artifacts"
TRACE = (
    "MATCH (t:Tube {code: 'T1'})<-[i:INTO_TUBE]-(r:Registration)-[o:OF_PERSON]->(p:Person) "
    "OPTIONAL MATCH (r)-[a:AT_COMPOUND]->(c:Compound) RETURN t, i, r, o, p, a, c"
)


def test_browser_shows_style_and_guide(gw: Gateway, settings: Settings) -> None:
    if settings.neo4j_uri:
        pytest.skip("Browser styling is applied by the managed server only")
    exe = chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI; ./dev test installs it")
        pytest.skip("chromium is not installed (./dev test installs it)")
    from playwright.sync_api import sync_playwright

    from engine.server.managed import ManagedServer

    load_city(gw, settings)
    server = ManagedServer(settings)
    port = server.bolt_uri.rsplit(":", 1)[1]
    url = f"{server.browser_url}?dbms=bolt://neo4j@127.0.0.1:{port}&preselectAuthMethod=NATIVE"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_test_id("password").fill(server.password())
            page.get_by_test_id("connect").click()
            page.get_by_text("tubetrace: trace a positive tube").wait_for(timeout=60_000)
            assert page.get_by_text("1 / 3").count() == 1  # the guide has 3 slides
            assert "node.Tube" in page.inner_text("body")  # the :style frame
            page.locator(".monaco-editor").first.click()
            page.keyboard.type(TRACE)
            page.get_by_test_id("editor-Run").click()
            tube = page.locator('svg circle[fill="#D9534F"]')
            tube.first.wait_for(timeout=60_000)
            persons = page.locator('svg circle[fill="#27AE60"]')
            assert persons.count() == 10
            assert page.locator('svg circle[fill="#2E86C1"]').count() == 1
            page.screenshot(path=str(ARTIFACTS / "neo4j-browser.png"))
        finally:
            browser.close()
    assert (ARTIFACTS / "neo4j-browser.png").stat().st_size > 10_000
