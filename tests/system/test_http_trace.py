"""The trace route's fast path (async dependencies, one worker-thread hop, the response model
checked and encoded once) answers byte for byte what the previous route (a sync endpoint with
FastAPI validating and encoding the response model; bench.http:before_app) answered: for every
tube of a generated city, as an investigator (masked and revealed) and as a district key."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from bench.http import before_app
from engine.access.keys import create_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import all_tube_codes
from loaders.generate import generate_city
from tests.helpers import bearer, load


def test_trace_bytes_equal_the_previous_route(
    gw: Gateway, settings: Settings, api_url: str, tmp_path: Path
) -> None:
    generate_city(tmp_path, seed=5, registrations=600, positive_rate=0.05)
    for kind in ("compounds", "registrations", "results"):
        load(gw, settings, kind, tmp_path / f"{kind}.csv")
    investigator = bearer(create_key(gw, role="investigator", district=None).secret)
    district = bearer(create_key(gw, role="district", district="310115").secret)
    codes = list(all_tube_codes(gw))[:40] + ["T_ABSENT"]
    fast = settings.model_copy(update={"rate_per_second": 1e6, "rate_burst": 10**6})
    compared = 0
    with TestClient(before_app(fast, gw)) as before, httpx.Client(base_url=api_url) as after:
        for headers, params in (
            (investigator, {}),
            (investigator, {"reveal": "true", "reason": "case 7 contact tracing"}),
            (district, {}),
        ):
            for code in codes:
                path = f"/v1/tubes/{code}/trace"
                old = before.get(path, headers=headers, params=params)
                new = after.get(path, headers=headers, params=params)
                assert (new.status_code, new.content) == (old.status_code, old.content), code
                assert new.headers["content-type"] == old.headers["content-type"]
                compared += old.status_code == 200
    assert compared > 60
