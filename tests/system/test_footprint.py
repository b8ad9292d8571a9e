"""Where the bytes go (bench/footprint.py, issue 22 item 1): the store's size on disk by part
adds up to what `bench.measure.store_bytes` finds, indexes are named, and the logical counts
per registration are the graph's."""

from __future__ import annotations

import os

import pytest

from bench import footprint
from bench.measure import store_bytes
from engine.settings import Settings
from engine.store.gateway import Gateway
from tests.helpers import count, load_city

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("NEO4J_URI")), reason="reads the managed server's files"
)


def test_footprint_parts_add_up_and_name_the_indexes(gw: Gateway, settings: Settings) -> None:
    from engine.server.managed import ManagedServer

    load_city(gw, settings)
    n = count(gw, "Registration")
    server = ManagedServer(settings)
    # As the benchmark measures: on a server stopped cleanly (a checkpoint writes every page
    # to its file; before it the new store's record files may still be empty) and started.
    server.stop()
    server.start()
    found = footprint.measure(server, gw, n)
    b = found["bytes_per_registration"]
    assert b["total"] == pytest.approx(b["store"] + b["indexes"] + b["transaction_logs"])
    assert b["store"] == pytest.approx(sum(b["store_files"].values()))
    assert b["indexes"] == pytest.approx(sum(b["index_files"].values()))
    # The same files as the benchmark's store size (nothing written in between).
    assert b["total"] * n == pytest.approx(store_bytes(server), rel=0.01)
    assert {"registration_key", "person_id", "tube_code"} <= set(b["index_files"])
    assert b["store_files"]["nodes"] > 0 and b["store_files"]["properties"] > 0
    assert b["transaction_logs"] > 0
    labels = {r["label"]: r["n"] for r in gw.read("count_by_label")}
    assert found["nodes_per_registration"] == pytest.approx(sum(labels.values()) / n)
    per_label = found["by_label_per_registration"]
    assert per_label["Registration"]["nodes"] == 1.0
    # reg_key, record_id, collected_at, day, pool_size, method, name, phone, collector_id,
    # content_hash; flags and the evidence line on a few (docs/footprint.md: no codes, no
    # id_type, no source or line any more).
    assert 10 <= per_label["Registration"]["properties"] <= 12
    assert found["relationships_per_registration"] >= 4  # tube, person, box, compound
    printed = dict(footprint.rows(found))
    assert any(k.strip().startswith("index ") for k in printed)
    assert any(k.strip() == "properties" for k in printed)
