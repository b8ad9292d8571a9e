"""The managed server keeps its files to this user and grants no cross-origin access."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from engine.server.managed import ManagedServer
from engine.settings import Settings
from engine.store.gateway import Gateway


def test_managed_home_is_private_and_http_refuses_other_origins(
    gw: Gateway, settings: Settings, neo4j_env: dict[str, str]
) -> None:
    if "NEO4J_URI" in neo4j_env:
        pytest.skip("the database is not the managed server")
    gw.write("ensure_secret", key="private-check", value="x")  # the server writes meanwhile
    home = Path(neo4j_env["TUBETRACE_HOME"])
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    loose: list[str] = []
    files = 0
    for folder, _, names in os.walk(home / "neo4j"):
        if stat.S_IMODE(Path(folder).stat().st_mode) != 0o700:
            loose.append(folder)
        for name in names:
            path = Path(folder) / name
            if path.is_symlink() or not path.exists():
                continue
            files += 1
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                loose.append(str(path))
    print(f"managed home: {files} files, {len(loose)} readable by others")
    assert loose == []
    server = ManagedServer(settings)
    preflight = httpx.options(
        server.browser_url.replace("/browser/", "/db/neo4j/tx"),
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    allowed = preflight.headers.get("access-control-allow-origin")
    assert allowed not in ("*", "http://evil.example"), preflight.headers
