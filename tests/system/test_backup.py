"""The restore drill: load a city, back it up under a running API (503 with Retry-After while
the database is stopped, back by itself after), destroy the home, restore into a new one:
every trace identical, the old keys work, `audit verify` passes, the day's files loaded again
change nothing. A damaged or partial backup is refused before anything is touched; a home with
data is replaced only with --force."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.exits import Exit
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_tube
from loaders.generate import generate_city
from tests.helpers import bearer, connect_test, start_api

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("NEO4J_URI")), reason="backup and restore need the managed server"
    ),
]
KINDS = ("compounds", "registrations", "results")


def settings_for(home: Path) -> Settings:
    return Settings(
        TUBETRACE_HOME=home, TUBETRACE_NEO4J_HEAP="512m", TUBETRACE_NEO4J_PAGECACHE="128m"
    )


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "TUBETRACE_"))}
    return env | {
        "TUBETRACE_HOME": str(home),
        "TUBETRACE_NEO4J_HEAP": "512m",
        "TUBETRACE_NEO4J_PAGECACHE": "128m",
        "TUBETRACE_WEBHOOKS": "0",
        "TUBETRACE_RATE_PER_SECOND": "1000",
        "TUBETRACE_RATE_BURST": "1000",
    }


def tubetrace(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


def traces(gw: Gateway) -> dict[str, Any]:
    codes = sorted(n["props"]["code"] for n in gw.read("dump_nodes") if "Tube" in n["labels"])
    return {code: trace_tube(gw, code) for code in codes}


def data_counts(gw: Gateway) -> dict[str, int]:
    skip = {"Audit", "Meta"}
    return {r["label"]: r["n"] for r in gw.read("count_by_label") if r["label"] not in skip}


@pytest.fixture()
def homes(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    from engine.server.managed import ManagedServer

    for home in tmp_path.glob("home-*"):
        ManagedServer(settings_for(home)).stop()


def test_restore_drill(homes: Path) -> None:
    from engine.server.managed import ManagedServer

    old, new, untouched = homes / "home-old", homes / "home-new", homes / "home-untouched"
    city = homes / "city"
    generate_city(city, seed=7, registrations=1500)
    for kind in KINDS:
        ok(tubetrace(old, "load", kind, str(city / f"{kind}.csv")))
    key = ok(tubetrace(old, "keys", "create", "--role", "investigator")).strip().splitlines()[-1]
    gw = connect_test(settings_for(old))
    try:
        before = traces(gw)
        counts = data_counts(gw)
    finally:
        gw.close()
    positive = next(c for c, t in before.items() if t["tube"]["result"] == "positive")
    assert len(before) > 100

    # The backup, under a running API that keeps being asked.
    proc, url = start_api(env_for(old), homes / "api-old.log")
    answers: list[tuple[int, str, str | None]] = []
    try:
        with httpx.Client(base_url=url, headers=bearer(key), timeout=60) as client:
            seen = client.get(f"/v1/tubes/{positive}/trace")
            assert seen.status_code == 200
            api_before = seen.json()
            folder = homes / "backup"
            done: list[subprocess.CompletedProcess[str]] = []
            runner = threading.Thread(
                target=lambda: done.append(tubetrace(old, "backup", str(folder)))
            )
            runner.start()
            while runner.is_alive():
                resp = client.get(f"/v1/tubes/{positive}/trace")
                answers.append(
                    (
                        resp.status_code,
                        resp.json().get("message", ""),
                        resp.headers.get("Retry-After"),
                    )
                )
                time.sleep(0.2)
            runner.join()
            print("\n" + ok(done[0]).strip())
            back = None
            for _ in range(300):  # the same API process answers again by itself
                resp = client.get(f"/v1/tubes/{positive}/trace")
                if resp.status_code == 200:
                    back = resp.json()
                    break
                time.sleep(0.5)
            assert back == api_before
            assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    down = [a for a in answers if a[0] == 503]
    assert down and all(a[2] and int(a[2]) > 0 for a in down), answers[:5]
    assert any("backup" in a[1] for a in down), down[:3]
    assert {a[0] for a in answers} <= {200, 503}

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == 1 and manifest["neo4j_version"].startswith("5.")
    assert manifest["counts"]["labels"]["Registration"] == counts["Registration"]
    assert manifest["key_material"]["api_keys"] == 1
    assert manifest["dump"] in manifest["files"]
    journals = [f for f in manifest["files"] if f.startswith("audit/")]
    assert journals  # the API's journal: its entries answered before the dump

    # A damaged or partial backup is refused, and nothing is touched.
    for damage in ("flip", "manifest", "edited", "journal", "extra"):
        bad = homes / f"bad-{damage}"
        shutil.copytree(folder, bad)
        if damage == "flip":
            dump = bad / manifest["dump"]
            data = bytearray(dump.read_bytes())
            data[len(data) // 2] ^= 0xFF
            dump.write_bytes(bytes(data))
        elif damage == "manifest":
            (bad / "manifest.json").unlink()
        elif damage == "edited":  # a count changed by hand: the manifest's seal no longer fits
            edited = json.loads((bad / "manifest.json").read_text())
            edited["counts"]["nodes"] += 1
            (bad / "manifest.json").write_text(json.dumps(edited))
        elif damage == "journal":
            (bad / journals[0]).unlink()
        else:
            (bad / "notes.txt").write_text("x")
        refused = tubetrace(untouched, "restore", str(bad))
        assert refused.returncode == Exit.BACKUP_INVALID, (damage, refused.stderr)
        assert "Nothing was restored" in refused.stderr and "Traceback" not in refused.stderr
    assert not (untouched / "neo4j").exists()

    # The old home is gone; the backup goes into a new one.
    ManagedServer(settings_for(old)).stop()
    shutil.rmtree(old)
    print(ok(tubetrace(new, "restore", str(folder))).strip())
    gw = connect_test(settings_for(new))
    try:
        assert traces(gw) == before
        assert data_counts(gw) == counts
    finally:
        gw.close()
    verified = ok(tubetrace(new, "audit", "verify"))
    assert "intact" in verified and "NOT" not in verified

    proc, url = start_api(env_for(new), homes / "api-new.log")
    try:
        resp = httpx.get(f"{url}/v1/tubes/{positive}/trace", headers=bearer(key), timeout=60)
        assert resp.status_code == 200 and resp.json() == api_before  # the old key, same ids
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    # The day's files again: nothing changes.
    for kind in KINDS:
        out = ok(tubetrace(new, "load", kind, str(city / f"{kind}.csv")))
        assert "stored 0" in out, out
    gw = connect_test(settings_for(new))
    try:
        assert data_counts(gw) == counts and traces(gw) == before
    finally:
        gw.close()

    # A home with data is replaced only with --force.
    refused = tubetrace(new, "restore", str(folder))
    assert refused.returncode == Exit.TARGET_NOT_EMPTY and "--force" in refused.stderr
    ok(tubetrace(new, "restore", str(folder), "--force"))
    gw = connect_test(settings_for(new))
    try:
        assert traces(gw) == before
    finally:
        gw.close()
    ok(tubetrace(new, "audit", "verify"))
    print(
        f"restore drill: {len(before)} tubes, {counts['Registration']} registrations; the "
        f"database was down {manifest['downtime_s']} s for the backup (dump "
        f"{manifest['dump_s']} s, made while it served); {len(down)} of {len(answers)} API "
        "answers meanwhile were 503 + Retry-After"
    )
