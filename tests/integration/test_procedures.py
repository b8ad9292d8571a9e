"""tubetrace's own Neo4j procedures (engine/server/procedures): built once by the managed
server with javac, cached, installed in its plugins, and a clear error where they are missing.
What the exposure procedure answers is tested with the rule (test_tube_pool_day.py) and against
networkx (tests/system/test_analysis.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.errors import DatabaseError, ServerError
from engine.server import managed
from engine.settings import Settings
from engine.store.gateway import Gateway


@pytest.fixture(autouse=True)
def _managed_only(neo4j_env: dict[str, str]) -> None:
    """The managed server builds the procedures; a test server of NEO4J_URI or of Docker
    (tests/conftest.py) has them from elsewhere."""
    if "NEO4J_URI" in neo4j_env:
        pytest.skip("the managed server builds the procedures")


def _sources(tmp_path: Path, edit: str) -> Path:
    """A copy of the procedures' sources with `edit` appended to one (a new cache key)."""
    root = tmp_path / "procedures"
    shutil.copytree(managed.PROCEDURES_SRC, root)
    java = next(root.rglob("Exposure.java"))
    java.write_text(java.read_text() + edit)
    return root


def test_the_managed_server_installs_its_procedures_once(settings: Settings, gw: Gateway) -> None:
    server = managed.ManagedServer(settings)
    jars = server.classpath()
    jar = managed.procedures_jar(jars)
    built = jar.stat().st_mtime_ns
    assert managed.procedures_jar(jars) == jar and jar.stat().st_mtime_ns == built  # cached
    installed = sorted(p.name for p in server.plugins_dir.glob("tubetrace-procedures-*.jar"))
    assert installed == [jar.name]
    # A stale build of older sources leaves the plugins at the next start.
    stale = server.plugins_dir / "tubetrace-procedures-0000000000000000.jar"
    stale.write_bytes(jar.read_bytes())
    server._install_procedures(jars)
    assert sorted(p.name for p in server.plugins_dir.glob("tubetrace-procedures-*.jar")) == [
        jar.name
    ]
    # The running server has it: the exposure of a person who is not there is empty.
    assert (
        gw.read(
            "exposure_rings",
            subjects=[{"person_id": "P-none", "until": None}],
            days=14,
            depth=4,
            district=None,
            after_depth=0,
            after_person="",
        )
        == []
    )


def test_without_javac_the_error_names_the_package(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jars = managed.ManagedServer(settings).classpath()
    monkeypatch.setattr(managed, "PROCEDURES_SRC", _sources(tmp_path, "// no javac\n"))
    monkeypatch.setattr(managed.shutil, "which", lambda name: None)
    with pytest.raises(ServerError, match="openjdk-17-jdk-headless"):
        managed.procedures_jar(jars)


def test_a_source_that_does_not_compile_says_why(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jars = managed.ManagedServer(settings).classpath()
    monkeypatch.setattr(managed, "PROCEDURES_SRC", _sources(tmp_path, "class Broken {\n"))
    with pytest.raises(ServerError, match="javac could not build") as caught:
        managed.procedures_jar(jars)
    assert "Exposure.java" in str(caught.value)


def test_a_server_without_them_gets_a_clear_error(gw: Gateway) -> None:
    with pytest.raises(DatabaseError, match="lacks tubetrace's procedures"):
        gw.read("call_missing_procedure")
    assert gw.read("tubetrace_procedures").value() == list(managed.PROCEDURES)  # /readyz's check


def test_a_failed_build_starts_the_server_without_them(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restore or bulk import restarts the server: a build that fails must not keep it down,
    nor leave a jar Neo4j cannot read; a whole jar of the same build stays."""
    server = managed.ManagedServer(settings)
    jars = server.classpath()
    good = managed.procedures_jar(jars)  # the real build
    monkeypatch.setattr(managed, "PROCEDURES_SRC", _sources(tmp_path, "class Broken {\n"))
    plugins, logs = tmp_path / "plugins", tmp_path / "logs"
    plugins.mkdir()
    monkeypatch.setattr(server, "plugins_dir", plugins)
    monkeypatch.setattr(server, "logs_dir", logs)
    (plugins / "tubetrace-procedures-0000000000000000.jar").write_bytes(good.read_bytes())
    current = plugins / managed.procedures_jar_name(jars)
    current.write_bytes(b"")  # cut short: Neo4j would refuse to start with it
    server._install_procedures(jars)  # logs, raises nothing
    assert list(plugins.iterdir()) == []
    assert "javac could not build" in (logs / "procedures.log").read_text()
    # A whole jar of this very build is kept when the build fails (no javac, a cache wiped).
    current.write_bytes(good.read_bytes())
    server._install_procedures(jars)
    assert [p.name for p in plugins.iterdir()] == [current.name]


def test_a_jar_that_is_not_whole_is_built_and_copied_again(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = managed.ManagedServer(settings)
    jars = server.classpath()
    monkeypatch.setattr(managed, "PROCEDURES_SRC", _sources(tmp_path, "// rebuilt\n"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = (
        tmp_path / "cache" / "tubetrace" / "procedures" / managed.procedures_key(jars)
    ) / managed.procedures_jar_name(jars)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")  # an empty file where the build was
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    monkeypatch.setattr(server, "plugins_dir", plugins)
    (plugins / cached.name).write_bytes(b"PK")  # and a broken copy in the plugins
    server._install_procedures(jars)
    assert managed.procedures_jar(jars) == cached and managed.valid_jar(cached)
    assert (plugins / cached.name).read_bytes() == cached.read_bytes()
