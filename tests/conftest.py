"""A real Neo4j for the whole run: `NEO4J_URI` when set; else a container when a Docker engine
answers; else the managed server in a temporary `TUBETRACE_HOME`, started once per run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.devdb import wipe
from engine.settings import Settings
from engine.store.gateway import Gateway
from tests.helpers import connect_test, free_port


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means no engine
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """tests/system/ (spawned API and CLI processes, the browser, outages, bulk imports,
    PostgreSQL, replays, fuzzing) is slow: `-m "not slow"` leaves it out. When the mypy test
    is among those selected, mypy starts now, beside the other tests (without its cache, in a
    fresh clone, it takes ~20 s: a third of the unit loop's time when run last)."""
    for item in items:
        if item.path.parent.name == "system":
            item.add_marker(pytest.mark.slow)
    if any(item.name == "test_mypy_clean" for item in items):
        config.stash[MYPY] = subprocess.Popen(
            [sys.executable, "-m", "mypy", "engine", "api", "loaders", "cli"],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


MYPY = pytest.StashKey[subprocess.Popen[str]]()


@pytest.fixture()
def mypy_run(request: pytest.FixtureRequest) -> subprocess.Popen[str]:
    """The mypy run started at collection (pytest_collection_modifyitems)."""
    return request.config.stash[MYPY]


@pytest.fixture(scope="session")
def neo4j_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment variables that point any process (CLI, uvicorn) at the test database."""
    home = tmp_path_factory.mktemp("tubetrace-home")
    if os.environ.get("NEO4J_URI"):
        yield {
            k: os.environ[k]
            for k in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE")
            if k in os.environ
        } | {"TUBETRACE_HOME": str(home)}
        return
    if _docker_answers():
        from testcontainers.core.image import DockerImage
        from testcontainers.neo4j import Neo4jContainer

        from engine.server.managed import PROCEDURES_SRC

        # The Compose file's Neo4j: the official image with tubetrace's procedures.
        with (
            DockerImage(path=PROCEDURES_SRC, tag="tubetrace-neo4j:test") as image,
            Neo4jContainer(str(image)) as container,
        ):
            yield {
                "NEO4J_URI": container.get_connection_url(),
                "NEO4J_USER": "neo4j",
                "NEO4J_PASSWORD": container.password,
                "TUBETRACE_HOME": str(home),
            }
        return
    from engine.server.managed import ManagedServer

    settings = Settings(
        TUBETRACE_HOME=home, TUBETRACE_NEO4J_HEAP="1g", TUBETRACE_NEO4J_PAGECACHE="512m"
    )
    server = ManagedServer(settings)
    server.start()
    try:
        yield {
            "TUBETRACE_HOME": str(home),
            "TUBETRACE_NEO4J_HEAP": "1g",
            "TUBETRACE_NEO4J_PAGECACHE": "512m",
        }
    finally:
        server.stop()


@pytest.fixture(scope="session")
def settings(neo4j_env: dict[str, str]) -> Settings:
    keys = {k: v for k, v in neo4j_env.items()}
    # The tests' webhook receivers listen on 127.0.0.1 (refused by default).
    return Settings(  # type: ignore[arg-type]
        **keys, TUBETRACE_BATCH_SIZE=500, TUBETRACE_WEBHOOK_ALLOW_PRIVATE=True
    )


@pytest.fixture(scope="session")
def session_gateway(settings: Settings) -> Iterator[Gateway]:
    gw = connect_test(settings)
    yield gw
    gw.close()


@pytest.fixture()
def gw(session_gateway: Gateway) -> Gateway:
    """A clean database for each test: nothing shared, schema in place. The installation's
    person-id key survives the wipe, as it would in a real installation: the session's API
    process keeps it cached, and person ids must agree between it and the test."""
    secret = session_gateway.secret()
    wipe(session_gateway)
    session_gateway.apply_schema()
    session_gateway.write("ensure_secret", key="person_id_secret", value=secret)
    return session_gateway


@pytest.fixture()
def subprocess_env(neo4j_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env.update(neo4j_env)
    env["TUBETRACE_WEBHOOK_ALLOW_PRIVATE"] = "1"  # the tests' receivers are on 127.0.0.1
    return env


@pytest.fixture(scope="session")
def api_url(neo4j_env: dict[str, str]) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")} | neo4j_env
    env["TUBETRACE_RATE_PER_SECOND"] = "1000"
    env["TUBETRACE_RATE_BURST"] = "1000"
    # Webhook tests run their own workers on the shared database; this server's would race them.
    env["TUBETRACE_WEBHOOKS"] = "0"
    port = free_port()
    log_path = Path(neo4j_env["TUBETRACE_HOME"]) / "uvicorn.log"
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "info",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise RuntimeError("uvicorn did not answer")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
