"""The database is a real Neo4j 5.26 Community server, with APOC, serving Browser."""

from __future__ import annotations

import urllib.request

from engine.db import Gateway
from engine.settings import Settings


def test_server_is_neo4j_5_26_community(gw: Gateway) -> None:
    rows = gw.read("server_components")
    kernel = next(r for r in rows if r["name"] == "Neo4j Kernel")
    assert kernel["versions"][0].startswith("5.26.")
    assert kernel["edition"] == "community"


def test_schema_constraints_exist(gw: Gateway) -> None:
    with gw.driver.session(database=gw.database) as s:
        names = {r["name"] for r in s.run("SHOW CONSTRAINTS YIELD name")}
    assert {"registration_record_id", "tube_code", "person_id", "compound_code",
            "result_key", "quarantine_key"} <= names


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
