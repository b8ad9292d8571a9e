"""One spec per record kind (loaders/kinds.py): every kind has one, and the write path asks no
kind's name (a new kind is a row of the table, not a branch in loaders/write.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from engine.model import RecordKind
from engine.store.querybook import book
from loaders.kinds import SPECS, spec_of

ROOT = Path(__file__).resolve().parents[2]


def test_every_kind_has_one_spec_and_its_merge_query_exists() -> None:
    assert list(SPECS) == sorted(SPECS, key=[k.value for k in RecordKind].index)
    assert set(SPECS) == {k.value for k in RecordKind}
    queries = book()
    for name, spec in SPECS.items():
        assert spec.kind.value == name
        assert {"rows"} <= set(queries[spec.merge_query].params), spec.merge_query


def test_the_write_path_never_branches_on_a_kind_name() -> None:
    names = {k.value for k in RecordKind}
    tree = ast.parse((ROOT / "loaders" / "write.py").read_text(encoding="utf-8"))
    offences = [
        f"line {node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in names
    ]
    assert offences == []


def test_an_unknown_kind_is_refused_with_the_known_ones() -> None:
    try:
        spec_of("boxes")
    except ValueError as exc:
        assert "compounds, registrations, results, directory" in str(exc)
    else:
        raise AssertionError("an unknown kind was accepted")


def test_the_wire_sends_what_the_merge_reads_and_no_more() -> None:
    """A registration's links and raw copy are not sent (the merge does not read them); its
    time goes as ISO text."""
    from datetime import UTC, datetime

    from loaders.transform import Row

    at = datetime(2022, 4, 9, 8, tzinfo=UTC)
    row = Row(
        kind="registrations",
        key="k",
        content_hash="h",
        raw="{}",
        props={"collected_at": at, "pool_size": 10},
        links={"tube_code": "T1"},
    )
    assert spec_of("registrations").wire(row) == {
        "key": "k",
        "at": at.isoformat(),
        "props": {"pool_size": 10},
    }
    compound = spec_of("compounds").wire(Row("compounds", "C1", "h", '{"code":"C1"}', {"n": 1}))
    assert compound == {"key": "C1", "props": {"n": 1}, "raw": '{"code":"C1"}'}
