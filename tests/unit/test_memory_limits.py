"""How much of the server's heap one transaction may take: the managed server's setting, how
it is checked, and what the gateway makes of Neo4j's refusals (tests/system/test_memory.py
runs a question past the limit against a real server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.errors import DatabaseError, ServerError, TooLarge
from engine.server.managed import ManagedServer, half
from engine.settings import Settings
from engine.store.gateway import _translate


@pytest.mark.parametrize(
    ("heap", "limit"),
    [("2g", "1024m"), ("2G", "1024m"), ("2048m", "1024m"), ("3g", "1536m"), ("512m", "256m")],
)
def test_the_default_limit_is_half_the_heap(heap: str, limit: str) -> None:
    assert half(heap) == limit


def test_a_heap_that_is_no_size_is_one_sentence() -> None:
    with pytest.raises(ServerError, match="not a memory size"):
        half("lots")


def _conf(tmp_path: Path, **env: str) -> str:
    server = ManagedServer(Settings(TUBETRACE_HOME=tmp_path, **env))  # type: ignore[arg-type]
    server.conf_dir.mkdir(parents=True, exist_ok=True)
    server._write_conf()
    return (server.conf_dir / "neo4j.conf").read_text()


def test_the_managed_server_bounds_a_transaction(tmp_path: Path) -> None:
    assert "db.memory.transaction.max=1536m\n" in _conf(tmp_path, TUBETRACE_NEO4J_HEAP="3g")
    written = _conf(tmp_path, TUBETRACE_NEO4J_HEAP="3g", TUBETRACE_NEO4J_TX_MEMORY="8m")
    assert "db.memory.transaction.max=8m\n" in written
    assert "db.memory.transaction.max=0\n" in _conf(tmp_path, TUBETRACE_NEO4J_TX_MEMORY="0")


@pytest.mark.parametrize("value", ["512k", "lots", "1.5 gigs", "-1m"])
def test_a_limit_neo4j_would_refuse_is_refused_before_it_starts(value: str) -> None:
    with pytest.raises(ValidationError, match="TUBETRACE_NEO4J_TX_MEMORY is 0"):
        Settings(TUBETRACE_NEO4J_TX_MEMORY=value)  # type: ignore[call-arg]


class _Refusal(Exception):
    """What `_translate` reads of a driver error: its Neo4j status code and message."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _error(code: str, message: str = "") -> Exception:
    return _Refusal(code, message)


def test_a_transaction_past_the_memory_limits_is_too_large() -> None:
    for code in (
        "Neo.ClientError.General.TransactionOutOfMemoryError",
        "Neo.TransientError.General.MemoryPoolOutOfMemoryError",
    ):
        found = _translate(_error(code), "exposure_rings")
        assert isinstance(found, TooLarge)
        assert "exposure_rings" in str(found) and "fewer days" in str(found)
    # The JVM's own heap running out is a server fault, not a question too large.
    jvm = _translate(_error("Neo.TransientError.General.OutOfMemoryError"), "exposure_rings")
    assert type(jvm) is DatabaseError


def test_a_call_that_fits_another_build_of_the_procedures_says_restart() -> None:
    message = (
        "Procedure call provides too many arguments: got 6 expected no more than 4.\n\n"
        "Procedure tubetrace.exposure has signature: tubetrace.exposure(person :: NODE, ...)"
    )
    found = _translate(_error("Neo.ClientError.Statement.SyntaxError", message), "exposure_rings")
    assert isinstance(found, DatabaseError) and "another build" in str(found)
    other = _translate(_error("Neo.ClientError.Statement.SyntaxError", "Invalid input"), "x")
    assert "another build" not in str(other)
