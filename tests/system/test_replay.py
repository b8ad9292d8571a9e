"""A few seconds of the peak-hour replay (bench/replay.py) through the real API: sampling apps,
a lab, 16 district systems and investigators at once; no errors, and every positive pool posted
gets its follow-up tasks in its district's queue."""

from __future__ import annotations

import json
from pathlib import Path

from bench.replay import print_report, run_replay, split_city
from engine.access.keys import create_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from loaders import write
from loaders.generate import generate_city
from loaders.read import read_file


def test_replay_smoke(gw: Gateway, settings: Settings, api_url: str, tmp_path: Path) -> None:
    city, base = tmp_path / "city", tmp_path / "base"
    generate_city(city, seed=7, registrations=1200, positive_rate=0.08, mix_pools=True)
    traffic = split_city(city, base)
    for kind in ("compounds", "registrations", "results"):
        path = base / f"{kind}.csv"
        write.load_records(gw, kind, read_file(path, kind), path.name, settings)
    keys: dict[str, object] = {
        role: create_key(
            gw, role=role, district=None, labs=traffic.labs if role == "lab" else None
        ).secret
        for role in ("collector", "lab", "investigator")
    }
    keys["districts"] = {
        d: create_key(gw, role="district", district=d).secret for d in traffic.districts
    }
    assert len(traffic.districts) == 16 and len(traffic.registrations) > 500
    report = run_replay(api_url, keys, traffic, investigators=1, poll_s=2.0, probe_sample=20)
    print_report(report, "replay smoke test")
    print(json.dumps(report["endpoints"]))
    assert report["errors"] == 0, report["endpoints"]
    assert report["positive_pools_posted"] > 0
    assert report["positive_pools_without_tasks"] == []
    probe = report["result_to_queue"]
    assert probe["probed"] > 0 and probe["visible"] == probe["probed"]
    for name in ("POST /v1/registrations", "POST /v1/results", "GET /v1/districts/{d}/tasks"):
        assert report["endpoints"][name]["requests"] > 0
