"""The bulk import (neo4j-admin) builds the same graph as the online loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.devdb import wipe
from engine.access import audit
from engine.loop import tasks
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import all_tube_codes, trace_many
from loaders import write
from loaders.generate import generate_city
from loaders.read import read_file
from tests.helpers import cli, connect_test, quarantined


def snapshot(gw: Gateway) -> dict[str, Any]:
    codes = list(all_tube_codes(gw))
    traces: dict[str, Any] = {}
    for start in range(0, len(codes), 400):
        traces.update(trace_many(gw, codes[start : start + 400]))
    quarantine = sorted(
        (q["kind"], q["source"], q["line"], q["field"], q["reason"], q["raw"], q["existing"])
        for q in quarantined(gw, limit=100_000)
    )
    queue = []
    for district in sorted(
        {
            p["residence"]["district_code"] or tasks.UNASSIGNED
            for t in traces.values()
            for p in t["persons"]
        }
    ):
        items, _ = tasks.tasks_page(gw, district, None, "", 10_000)
        queue += sorted(
            (t["task_id"], t["kind"], t["status"], t["outcome"], t["district_code"]) for t in items
        )
    # Events differ by path (online: pending, then the result; bulk: the final status only);
    # the audit log too (the CLI's bulk import is audited, the online load here is not).
    counts = {
        r["label"]: r["n"]
        for r in gw.read("count_by_label")
        if r["label"] not in ("Event", "Sequence", "Audit", "Meta")
    }
    statuses = sorted(
        (r["key"], r["status"], r["district_code"])
        for r in gw.read("all_person_days", after="", limit=1_000_000)
    )
    return {
        "traces": traces,
        "quarantine": quarantine,
        "tasks": queue,
        "counts": counts,
        "statuses": statuses,
        "pool_days": {r["code"]: r["pool_day"] for r in gw.read("tube_pool_days")},
        # The marks that spare reads a person's window (docs/footprint.md).
        "marks": {k: sorted(v) for k, v in gw.read("registration_marks")[0].items()},
        "last_days": {r["person_id"]: r["last_day"] for r in gw.read("person_last_days")},
    }


def test_bulk_import_equals_online_load(
    settings: Settings, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """`tubetrace load all FOLDER --bulk` builds the graph the online load builds, and leaves
    the online load's audit entry for each kind (it left none)."""
    if settings.neo4j_uri:
        pytest.skip("the bulk import runs the managed server's neo4j-admin")
    from engine.server.managed import ManagedServer

    # Its own server: the import replaces the database under every open driver.
    own = settings.model_copy(update={"home": tmp_path / "home"})
    server = ManagedServer(own)
    city = tmp_path / "city"
    generate_city(city, seed=11, registrations=1500, positive_rate=0.05)
    try:
        gw = connect_test(own)
        for kind in ("compounds", "registrations", "results"):
            path = city / f"{kind}.csv"
            write.load_records(gw, kind, read_file(path, kind), path.name, own, sender="app7")
        secret = gw.secret()
        online = snapshot(gw)
        wipe(gw)
        gw.write("ensure_secret", key="person_id_secret", value=secret)
        gw.close()
        done = cli(
            {**subprocess_env, "TUBETRACE_HOME": str(own.home)},
            *("load", "all", str(city), "--bulk", "--source", "app7"),
        )
        assert done.returncode == 0, done.stderr[-2000:]
        gw = connect_test(own)
        imported = snapshot(gw)
        entries = audit.entries(gw, since=None, key_id=None)
        _, first = next(iter(read_file(city / "registrations.csv", "registrations")))
        assert isinstance(first, dict)
        keys = [f"{s}/{first['record_id']}" for s in ("app7", "file")]
        stored = [r["key"] for r in gw.read("existing_registrations", keys=keys)]
        gw.close()
    finally:
        server.stop()
    print(f"\n{done.stdout}")
    printed = done.stdout.splitlines()[:3]  # the summary of each kind, then the timings
    assert [(e["action"], e["target"], e["detail"]) for e in entries] == [
        (f"load_{kind}", "city (bulk)", line)
        for kind, line in zip(("compounds", "registrations", "results"), printed, strict=True)
    ]
    assert all(str(e["key_id"]).startswith("cli:") for e in entries)
    assert stored == [keys[0]]  # the --source of the bulk import, as of the online load
    assert imported["counts"] == online["counts"]
    assert imported["quarantine"] == online["quarantine"] and online["quarantine"]
    assert imported["tasks"] == online["tasks"] and online["tasks"]
    assert imported["statuses"] == online["statuses"] and online["statuses"]
    print(f"person statuses equal: {len(online['statuses'])} person-days")
    assert imported["traces"].keys() == online["traces"].keys()
    different = [c for c in online["traces"] if imported["traces"][c] != online["traces"][c]]
    assert different == []
    assert len(online["traces"]) > 150
    # Each tube's pool_day (the outbreak queries' filter), the same both ways: set on the pooled
    # tubes of one day, unset on single tubes and on those whose registrations disagree.
    assert imported["pool_days"] == online["pool_days"]
    days = list(online["pool_days"].values())
    assert days.count(None) and len(days) - days.count(None) > 100
    # The marks (docs/footprint.md), the same both ways, and found in the generated city: its
    # planted duplicate registrations, persons at unknown compounds, every person's last day.
    assert imported["marks"] == online["marks"]
    assert online["marks"]["duplicates"] and online["marks"]["unplaced"]
    assert imported["last_days"] == online["last_days"] and len(online["last_days"]) > 500
