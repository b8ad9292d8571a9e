"""`tubetrace demo` on the test database: generated city, every flag present, a traced tube."""

from __future__ import annotations

import re

from engine.store.gateway import Gateway
from engine.trace.build import PERSON_FLAGS, TUBE_FLAGS
from tests.helpers import cli, console_login


def test_demo_loads_prints_flags_and_traces(
    gw: Gateway, subprocess_env: dict[str, str], api_url: str
) -> None:
    done = cli(subprocess_env, "demo", "--no-serve")
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    totals = dict(re.findall(r"^\s{2}([a-z0-9_]+)\s+(\d+)$", text, flags=re.M))
    for flag in (*PERSON_FLAGS, *TUBE_FLAGS):
        assert int(totals.get(flag, 0)) > 0, flag
    assert "A positive 10-in-1 tube, traced:" in text
    assert "Investigator API key: tt_" in text
    assert "Web console:   http://127.0.0.1:8000/console/" in text
    # The printed key opens the console on the demo city's positives.
    key = re.search(r"Investigator API key: (tt_\S+)", text)
    assert key
    console = console_login(api_url, key.group(1))
    home = console.get("/console/", follow_redirects=True)
    assert home.status_code == 200 and "/console/positives?date=2022-04-" in str(home.url)
    assert home.text.count('class="tube-link"') > 5
    assert re.search(r"registrations: read \d+, stored \d+", text)
    counts = {r["label"]: r["n"] for r in gw.read("count_by_label")}
    assert counts["Registration"] > 2500 and counts["Compound"] >= 12
    before = re.search(r"before the directory: .*; reachable ([\d.]+)%", text)
    after = re.search(r"after the directory: .*; reachable ([\d.]+)%", text)
    gained = re.search(r"unreachable before, reachable now: (\d+) of (\d+)", text)
    assert before and after and gained, text
    print(f"\n{before.group(0)}\n{after.group(0)}\n{gained.group(0)}")
    assert float(after.group(1)) > float(before.group(1))
    assert int(gained.group(1)) > 0
    assert counts["DirectoryEntry"] > 0
