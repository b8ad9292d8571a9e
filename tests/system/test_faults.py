"""Reliability against a real Neo4j: a dropped COMMIT, concurrent senders, kill -9 mid-load,
and reloading as a property."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from neo4j import GraphDatabase

from bench.devdb import wipe
from engine.settings import Settings
from engine.store.gateway import Gateway
from loaders import write
from loaders.generate import generate_city
from loaders.read import read_file
from tests.helpers import CommitDroppingProxy, graph_fingerprint


def registrations(n: int, prefix: str = "R") -> list[tuple[int, dict[str, Any]]]:
    return [
        (
            i,
            {
                "record_id": f"{prefix}{i:05d}",
                "collected_at": "2022-04-09T08:00:00+08:00",
                "compound_code": "C1",
                "box_code": "B1",
                "tube_code": f"T{i // 10}",
                "pool_size": 10,
                "method": "nucleic_code",
                "id_type": "passport",
                "id_number": f"E{i:07d}",
                "name": "n",
                "phone": "13800000000",
            },
        )
        for i in range(n)
    ]


def integrity(gw: Gateway) -> dict[str, int]:
    """Registrations, and those without exactly one tube and one person."""
    with gw.driver.session(database=gw.database) as s:
        row = s.run(
            "MATCH (r:Registration) "
            "RETURN count(r) AS n, "
            "sum(CASE WHEN COUNT { (r)-[:INTO_TUBE]->() } <> 1 THEN 1 ELSE 0 END) "
            "AS bad_tube, "
            "sum(CASE WHEN COUNT { (r)-[:OF_PERSON]->() } <> 1 THEN 1 ELSE 0 END) "
            "AS bad_person"
        ).single()
    return dict(row)


def test_connection_lost_during_commit_is_resent_safely(gw: Gateway, settings: Settings) -> None:
    bolt_port = int(settings_bolt_port(gw))
    proxy = CommitDroppingProxy(bolt_port)
    try:
        driver = GraphDatabase.driver(
            f"bolt://127.0.0.1:{proxy.port}",
            auth=gw_auth(gw, settings),
            max_transaction_retry_time=5,
        )
        via_proxy = Gateway(driver, gw.database)
        via_proxy._secret = gw.secret()
        proxy.armed.set()
        summary = write.load_records(
            via_proxy, "registrations", registrations(300), "req", settings
        )
        driver.close()
    finally:
        proxy.close()
    assert proxy.dropped == 1
    # The first COMMIT went through; the resend found every record and changed nothing.
    assert summary.stored + summary.duplicates == 300
    assert integrity(gw) == {"n": 300, "bad_tube": 0, "bad_person": 0}
    print(
        f"\nconnection lost during commit: 1 drop, 300 records, "
        f"{integrity(gw)['n']} stored once, 0 duplicated"
    )


def settings_bolt_port(gw: Gateway) -> str:
    with gw.driver.session(database=gw.database) as s:
        rows = s.run(
            "CALL dbms.listConfig('server.bolt.listen_address') YIELD value RETURN value"
        ).single()
    return str(rows["value"]).rsplit(":", 1)[1]


def gw_auth(gw: Gateway, settings: Settings) -> tuple[str, str]:
    if settings.neo4j_uri:
        pw = settings.neo4j_password.get_secret_value() if settings.neo4j_password else ""
        return settings.neo4j_user, pw
    from engine.server.managed import ManagedServer

    return "neo4j", ManagedServer(settings).password()


def test_same_batch_from_eight_threads_makes_one_node_per_key(
    gw: Gateway, settings: Settings
) -> None:
    batch = registrations(200)
    gw.secret()
    summaries: list[write.Summary] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            summaries.append(write.load_records(gw, "registrations", batch, "req", settings))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(s.stored for s in summaries) == 200
    assert sum(s.duplicates for s in summaries) == 7 * 200
    assert integrity(gw) == {"n": 200, "bad_tube": 0, "bad_person": 0}
    counts = {r["label"]: r["n"] for r in gw.read("count_by_label")}
    assert counts["Tube"] == 20 and counts["Person"] == 200 and counts["Box"] == 1


def test_kill_9_mid_load_loses_and_duplicates_nothing(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    if settings.neo4j_uri:
        pytest.skip("kill -9 needs the managed server's JVM")
    from engine.server.managed import ManagedServer

    server = ManagedServer(settings)
    generate_city(tmp_path, seed=3, registrations=12000, fmt="jsonl")
    path = tmp_path / "registrations.jsonl"
    small = settings.model_copy(update={"batch_size": 250})
    gw.secret()
    acknowledged = 0
    killed = threading.Event()
    failure: list[BaseException] = []

    def on_batch(n: int) -> None:
        nonlocal acknowledged
        if not killed.is_set():
            acknowledged += n

    def first_load() -> None:
        try:
            write.load_records(
                gw,
                "registrations",
                read_file(path, "registrations"),
                path.name,
                small,
                on_batch=on_batch,
            )
        except BaseException as exc:  # noqa: BLE001 - the kill is expected to break it
            failure.append(exc)

    loader = threading.Thread(target=first_load)
    loader.start()
    while acknowledged < 2000 and loader.is_alive():
        threading.Event().wait(0.05)
    assert loader.is_alive(), "the load finished before it could be killed"
    server.kill()  # SIGKILL the JVM, a write transaction in flight
    killed.set()
    server.start()
    loader.join(timeout=300)
    lines = [item for _, item in read_file(path, "registrations")]
    acked_ids = {
        rec["record_id"]
        for rec in lines[:acknowledged]
        if isinstance(rec, dict) and rec.get("record_id")
    }
    present = {
        r["k"]
        for r in gw.driver.execute_query(
            "MATCH (r:Registration) WHERE r.record_id IN $ids RETURN r.record_id AS k",
            ids=sorted(acked_ids),
            database_=gw.database,
        ).records
    }
    lost_before_rerun = len(acked_ids - present)
    write.load_records(gw, "registrations", read_file(path, "registrations"), path.name, small)
    again = integrity(gw)
    total_keys = len(
        {r.get("record_id") for r in lines if isinstance(r, dict) and r.get("tube_code")} - {None}
    )
    assert lost_before_rerun == 0
    assert again["bad_tube"] == 0 and again["bad_person"] == 0
    assert again["n"] >= total_keys
    write.load_records(gw, "registrations", read_file(path, "registrations"), path.name, small)
    assert integrity(gw) == again
    print(
        f"\nkill -9 mid-load: {acknowledged} acknowledged, {lost_before_rerun} lost, "
        f"0 duplicated, {again['n']} registrations after the re-run"
    )


record = st.fixed_dictionaries(
    {
        "record_id": st.one_of(st.none(), st.sampled_from(["A", "B", "C", "D"])),
        "tube_code": st.one_of(st.none(), st.sampled_from(["T1", "T2"])),
        "pool_size": st.sampled_from([None, 1, 10, "ten"]),
        "id_type": st.sampled_from(["resident_id", "passport", None]),
        "id_number": st.sampled_from(["11010519491231002X", "110105194912310021", "E1", None]),
        "phone": st.sampled_from(["13800000000", "+86 138-0000-0001", "123", None]),
        "collected_at": st.sampled_from(["2022-04-09T08:00:00+08:00", "bad", None]),
        "compound_code": st.sampled_from(["C1", None]),
    }
)


@hsettings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(record, max_size=8))
def test_loading_a_batch_twice_equals_loading_it_once(
    gw: Gateway, settings: Settings, batch: list[dict[str, Any]]
) -> None:
    wipe(gw)
    gw._secret = None
    items = list(enumerate(batch))
    write.load_records(gw, "registrations", items, "req", settings)
    once = graph_fingerprint(gw)
    write.load_records(gw, "registrations", items, "req", settings)
    assert graph_fingerprint(gw) == once
