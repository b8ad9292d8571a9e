"""The database is a real Neo4j 5.26 Community server, with APOC, serving Browser."""

from __future__ import annotations

import urllib.request

from engine.settings import Settings
from engine.store.gateway import Gateway


def test_server_is_neo4j_5_26_community(gw: Gateway) -> None:
    rows = gw.read("server_components")
    kernel = next(r for r in rows if r["name"] == "Neo4j Kernel")
    assert kernel["versions"][0].startswith("5.26.")
    assert kernel["edition"] == "community"


def test_schema_constraints_exist(gw: Gateway) -> None:
    with gw.driver.session(database=gw.database) as s:
        names = {r["name"] for r in s.run("SHOW CONSTRAINTS YIELD name")}
    assert {
        "registration_key",  # (source, record_id)
        "tube_code",
        "person_id",
        "compound_code",
        "result_key",
        "quarantine_key",
    } <= names
    assert "registration_record_id" not in names  # record ids are unique per source only


def test_managed_server_serves_browser_and_apoc(gw: Gateway, settings: Settings) -> None:
    if settings.neo4j_uri:
        return
    from engine.server.managed import ManagedServer

    server = ManagedServer(settings)
    with urllib.request.urlopen(server.browser_url, timeout=10) as resp:
        assert resp.status == 200
        assert b"Neo4j Browser" in resp.read()
    with gw.driver.session(database=gw.database) as s:
        version = s.run("RETURN apoc.version() AS v").single()["v"]
    assert version.startswith("5.26")
    status = server.status()
    assert status.running and status.bolt_uri.startswith("bolt://127.0.0.1:")
    assert (server.password_file.stat().st_mode & 0o077) == 0


def test_neo4j_routing_uri_works_end_to_end(gw: Gateway, settings: Settings) -> None:
    """A `neo4j://` URI (cluster routing; reads go to secondaries there) runs every query."""
    from engine.store.gateway import connect
    from engine.trace.build import trace_tube
    from tests.helpers import load_city

    load_city(gw, settings)
    if settings.neo4j_uri:
        uri, password = settings.neo4j_uri, settings.neo4j_password
    else:
        from engine.server.managed import ManagedServer

        server = ManagedServer(settings)
        uri, password = server.bolt_uri.replace("bolt://", "neo4j://"), server.password()
    routed = connect(
        Settings(
            NEO4J_URI=uri,
            NEO4J_PASSWORD=password,  # type: ignore[call-arg]
            TUBETRACE_HOME=settings.home,
        )
    )
    try:
        assert routed.driver.execute_query("RETURN 1 AS x").records[0]["x"] == 1
        assert len(trace_tube(routed, "T1")["persons"]) == 10
    finally:
        routed.close()
