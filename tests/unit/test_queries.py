"""The named-query loader fails at load time, naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import QueryFileError
from engine.store.querybook import book, load_directory


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_project_queries_load_and_use_parameters_only() -> None:
    b = book()
    assert "trace_tubes" in b.names()
    assert b["trace_tubes"].params == {"tube_codes"}
    for name in b.names():
        assert "{" not in name


def test_duplicate_name_names_both_places(tmp_path: Path) -> None:
    write(tmp_path, "a.cypher", "// name: q\nRETURN 1\n")
    write(tmp_path, "b.cypher", "\n\n// name: q\nRETURN 2\n")
    with pytest.raises(QueryFileError, match=r"b.cypher:3: duplicate query name 'q'.*a.cypher:1"):
        load_directory(tmp_path)


def test_empty_body(tmp_path: Path) -> None:
    write(tmp_path, "a.cypher", "// name: q\n\n// name: r\nRETURN 1\n")
    with pytest.raises(QueryFileError, match=r"a.cypher:1: query 'q' has an empty body"):
        load_directory(tmp_path)


def test_declared_parameters_must_match(tmp_path: Path) -> None:
    write(tmp_path, "a.cypher", "// name: q\n// params: a, b\nRETURN $a\n")
    with pytest.raises(QueryFileError, match=r"a.cypher:2: query 'q' declares"):
        load_directory(tmp_path)


def test_call_time_parameters_must_match(tmp_path: Path) -> None:
    write(tmp_path, "a.cypher", "// name: q\nRETURN $a, '$notaparam' // $nor_this\n")
    q = load_directory(tmp_path)["q"]
    assert q.params == {"a"}
    q.check({"a": 1})
    with pytest.raises(QueryFileError, match="missing \\['a'\\], unexpected \\['b'\\]"):
        q.check({"b": 1})


def test_an_apostrophe_in_a_comment_is_not_a_string(tmp_path: Path) -> None:
    """A comment's apostrophe used to open a 'string' that swallowed the parameters up to the
    next quote; `//` inside a string is not a comment either."""
    text = (
        "// name: q\n// params: a, b, c\n"
        "MATCH (w {id: $a}) // the worker's lock\n"
        "SET w.at = $b\n"
        "SET w.url = 'http://x/$no' // it's\n"
        "RETURN $c\n"
    )
    assert load_directory(write(tmp_path, "a.cypher", text))["q"].params == {"a", "b", "c"}
