"""The managed server explains what is wrong in one sentence, without a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cli.exits import Exit
from engine.errors import ServerError
from engine.server.managed import ManagedServer
from engine.settings import Settings


def test_missing_java_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("engine.server.managed.shutil.which", lambda name: None)
    with pytest.raises(ServerError, match="Java is not installed"):
        ManagedServer(Settings(TUBETRACE_HOME=tmp_path)).start()  # type: ignore[call-arg]


def test_port_clash_names_the_port_and_the_log(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        server = ManagedServer(Settings(TUBETRACE_HOME=tmp_path))  # type: ignore[call-arg]
        server.root.mkdir(parents=True)
        server.state_file.write_text(json.dumps({"bolt_port": port, "http_port": port + 1}))
        with pytest.raises(ServerError, match=f"Port {port} .* already in use.*Log: "):
            server.start()


def test_cli_prints_the_sentence_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        (tmp_path / "neo4j").mkdir()
        (tmp_path / "neo4j" / "state.json").write_text(
            json.dumps({"bolt_port": port, "http_port": port + 1})
        )
        done = subprocess.run(
            [sys.executable, "-m", "cli", "neo4j", "start"],
            capture_output=True,
            text=True,
            timeout=300,
            env={
                "PATH": "/usr/bin:/bin",
                "TUBETRACE_HOME": str(tmp_path),
                "HOME": str(Path.home()),
            },
            check=False,
        )
    assert done.returncode == Exit.SERVER_ERROR  # the exit-code table of docs/usage.md
    assert "already in use" in done.stderr and "Traceback" not in done.stderr
