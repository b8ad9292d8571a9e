"""ruff and mypy (strict on engine/) are part of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def test_ruff_clean() -> None:
    done = run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_clean() -> None:
    done = run("mypy", "engine", "api", "loaders")
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_cypher_in_api_or_loaders() -> None:
    import re

    pattern = re.compile(r"\b(MATCH|MERGE|UNWIND|DETACH DELETE|CREATE \()")
    for folder in ("api", "loaders"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not pattern.search(path.read_text()), path
