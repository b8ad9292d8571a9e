"""ruff (lint and format) and mypy (strict on engine/) are part of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_ruff_clean() -> None:
    done = run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_applied() -> None:
    done = run("ruff", "format", "--check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_clean(mypy_run: subprocess.Popen[str]) -> None:
    """`mypy engine api loaders cli`, started at collection (tests/conftest.py)."""
    output, _ = mypy_run.communicate(timeout=600)
    assert mypy_run.returncode == 0, output


def test_no_cypher_outside_cypher_files() -> None:
    """Cypher lives in cypher/*.cypher: no Python string literal holds a query."""
    import ast
    import re

    pattern = re.compile(
        r"\b(MATCH|MERGE|CREATE|OPTIONAL MATCH)\s*\(|\bUNWIND\s+\$|DETACH DELETE"
        r"|\bCALL\s+(db|dbms|apoc|gds)\.|\bSHOW\s+(INDEXES|CONSTRAINTS|DATABASES)\b"
    )
    offenders = []
    for folder in ("engine", "api", "loaders", "cli", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and pattern.search(node.value)
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_mypy_is_strict_on_engine_and_loaders() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    strict = {
        m for o in config["tool"]["mypy"]["overrides"] if o.get("strict") for m in o["module"]
    }
    assert {"engine.*", "loaders.*"} <= strict


def test_test_files_have_unique_names() -> None:
    """The test folders are not packages: two test files of one name in two folders stop the
    whole run at collection ("import file mismatch")."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
