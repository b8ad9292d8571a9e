"""The named-query loader fails at load time, naming file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.errors import QueryFileError
from engine.store.querybook import Query, Rows, Shape, book, load_directory


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
    write(tmp_path, "a.cypher", "// name: q -> value\nRETURN 1\n")
    write(tmp_path, "b.cypher", "\n\n// name: q -> value\nRETURN 2\n")
    with pytest.raises(QueryFileError, match=r"b.cypher:3: duplicate query name 'q'.*a.cypher:1"):
        load_directory(tmp_path)


def test_empty_body(tmp_path: Path) -> None:
    write(tmp_path, "a.cypher", "// name: q -> rows\n\n// name: r -> value\nRETURN 1\n")
    with pytest.raises(QueryFileError, match=r"a.cypher:1: query 'q' has an empty body"):
        load_directory(tmp_path)


def test_declared_parameters_must_match(tmp_path: Path) -> None:
    write(tmp_path, "a.cypher", "// name: q -> value\n// params: a, b\nRETURN $a\n")
    with pytest.raises(QueryFileError, match=r"a.cypher:2: query 'q' declares"):
        load_directory(tmp_path)


def test_call_time_parameters_must_match(tmp_path: Path) -> None:
    write(tmp_path, "a.cypher", "// name: q -> row\nRETURN $a, '$notaparam' // $nor_this\n")
    q = load_directory(tmp_path)["q"]
    assert q.params == {"a"}
    q.check({"a": 1})
    with pytest.raises(QueryFileError, match="missing \\['a'\\], unexpected \\['b'\\]"):
        q.check({"b": 1})


def test_an_apostrophe_in_a_comment_is_not_a_string(tmp_path: Path) -> None:
    """A comment's apostrophe used to open a 'string' that swallowed the parameters up to the
    next quote; `//` inside a string is not a comment either."""
    text = (
        "// name: q -> value\n// params: a, b, c\n"
        "MATCH (w {id: $a}) // the worker's lock\n"
        "SET w.at = $b\n"
        "SET w.url = 'http://x/$no' // it's\n"
        "RETURN $c\n"
    )
    assert load_directory(write(tmp_path, "a.cypher", text))["q"].params == {"a", "b", "c"}


def test_a_query_without_a_shape_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "a.cypher", "// name: p -> rows\nRETURN 1 AS x\n\n// name: q\nRETURN 1\n")
    with pytest.raises(QueryFileError, match=r"a.cypher:4: query 'q' has no result shape"):
        load_directory(tmp_path)


def test_an_unknown_shape_names_file_line_and_the_known_ones(tmp_path: Path) -> None:
    write(tmp_path, "a.cypher", "\n// name: q -> one\nRETURN 1\n")
    with pytest.raises(
        QueryFileError, match=r"a.cypher:2: query 'q' has an unknown result shape '-> one'.*row\?"
    ):
        load_directory(tmp_path)


def test_every_shape_parses(tmp_path: Path) -> None:
    text = "".join(f"// name: q{i} -> {s}\nRETURN 1\n" for i, s in enumerate(Shape))
    b = load_directory(write(tmp_path, "a.cypher", text))
    assert [b[f"q{i}"].shape for i in range(len(Shape))] == list(Shape)


def test_parameter_types(tmp_path: Path) -> None:
    text = (
        "// name: q -> rows\n// params: after: int, key, at: datetime\nRETURN $after, $key, $at\n"
    )
    assert load_directory(write(tmp_path, "a.cypher", text))["q"].types == {
        "after": "int",
        "at": "datetime",
    }
    write(tmp_path, "a.cypher", "// name: q -> rows\n// params: after: integer\nRETURN $after\n")
    with pytest.raises(QueryFileError, match=r"a.cypher:2: .* 'after' has an unknown type"):
        load_directory(tmp_path)


def query(shape: Shape) -> Query:
    return Query("q", "RETURN 1", frozenset(), "a.cypher", 7, shape)


@pytest.mark.parametrize(
    ("shape", "rows", "columns"),
    [
        (Shape.ROW, [], ["a"]),
        (Shape.ROW, [{"a": 1}, {"a": 2}], ["a"]),
        (Shape.ROW_OR_NONE, [{"a": 1}, {"a": 2}], ["a"]),
        (Shape.VALUE, [{"a": 1, "b": 2}], ["a", "b"]),
        (Shape.VALUE, [], ["a"]),
        (Shape.VALUE_OR_NONE, [], ["a", "b"]),
        (Shape.NOTHING, [], ["a"]),
        (Shape.NOTHING, [{"a": 1}], ["a"]),
    ],
)
def test_an_answer_of_another_shape_is_refused(
    shape: Shape, rows: list[dict[str, int]], columns: list[str]
) -> None:
    with pytest.raises(QueryFileError, match=rf"a.cypher:7: query 'q' \(-> {re.escape(shape)}\)"):
        query(shape).check_rows(rows, columns)


def test_one_row_expected_and_two_came() -> None:
    with pytest.raises(QueryFileError, match=r"promises exactly one row but answered 2 rows"):
        query(Shape.ROW).check_rows([{"a": 1}, {"a": 2}], ["a"])


def test_rows_unwrap_by_shape() -> None:
    assert Rows(query(Shape.VALUE), [{"n": 3}]).value() == 3
    assert Rows(query(Shape.VALUE_OR_NONE), []).value_or_none() is None
    assert Rows(query(Shape.VALUE_OR_NONE), [{"n": 4}]).value_or_none() == 4
    assert Rows(query(Shape.ROW), [{"a": 1, "b": 2}]).row() == {"a": 1, "b": 2}
    assert Rows(query(Shape.ROW_OR_NONE), []).row_or_none() is None
    query(Shape.ROWS).check_rows([{"a": 1}] * 3, ["a"])
    query(Shape.NOTHING).check_rows([], [])
    with pytest.raises(QueryFileError, match=r"\(-> rows\) is unwrapped as '-> value'"):
        Rows(query(Shape.ROWS), [{"n": 3}]).value()
    with pytest.raises(QueryFileError, match=r"\(-> row\?\) is unwrapped as '-> row'"):
        Rows(query(Shape.ROW_OR_NONE), [{"n": 3}]).row()


def test_the_product_unwraps_answers_through_the_shape_helpers() -> None:
    """`gw.read(...)[0]["n"]` hides a shape the header should say (`-> value`, `.value()`)."""
    root = Path(__file__).resolve().parents[2]
    call = re.compile(r"\.(?:read|write|run_in)\((?:[^()]|\([^()]*\))*\)\s*\[0\]")
    found = [
        f"{path.relative_to(root)}:{text[: m.start()].count(chr(10)) + 1}"
        for folder in ("engine", "api", "cli", "loaders")
        for path in sorted((root / folder).rglob("*.py"))
        for text in [path.read_text(encoding="utf-8")]
        for m in call.finditer(text)
    ]
    assert not found, found


def test_every_schema_statement_is_in_schema_cypher() -> None:
    """Constraints and indexes are read in one place, grouped by concept, in the order applied."""
    queries = book().all()
    assert {q.file for q in queries if q.name.startswith("schema_")} == {"schema.cypher"}
    assert {q.name[:7] for q in queries if q.file == "schema.cypher"} == {"schema_"}
    assert [q.name for q in queries if q.file == "schema.cypher"][-1] == "schema_await"


def test_the_package_holds_only_what_the_product_runs() -> None:
    """The benchmark's and the tests' queries live in bench/cypher/ and tests/cypher/."""
    from tests.helpers import TEST_BOOK

    product = set(book().names())
    assert {"wipe_all", "dump_nodes", "second_ring", "count_by_label"} & product == set()
    assert product < set(TEST_BOOK.names())
