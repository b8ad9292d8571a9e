"""Named Cypher queries loaded from `cypher/*.cypher`.

Each query starts with a header line `// name: query_name -> SHAPE`, where SHAPE says what the
query answers (`Shape`): `rows` (any number of rows), `row` (exactly one), `row?` (one or
none), `value` (exactly one row of one column), `value?` (one or none) or `nothing` (no
columns: a write that returns nothing). An optional `// params: a, b: int` line declares its
parameters, each with an optional type (`PARAM_TYPES`). Loading fails, naming file and line, on
a missing or unknown shape, a duplicate name, an empty body, an unknown parameter type, or a
declared parameter list that differs from the `$parameters` the body uses. At call time the
given parameters must equal the used ones, and the answer must have the declared shape
(`Query.check_rows`); `Rows` unwraps it by shape (`value()`, `row()`, ...).

The product's queries are `cypher/*.cypher` (`book()`); the benchmark and the tests add their
own folders (`book_with`), which are not shipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from engine.errors import QueryFileError


class Shape(StrEnum):
    """What a query answers, as its header line promises (`// name: q -> row`)."""

    ROWS = "rows"  # any number of rows
    ROW = "row"  # exactly one row
    ROW_OR_NONE = "row?"  # one row or none
    VALUE = "value"  # exactly one row of one column
    VALUE_OR_NONE = "value?"  # one row of one column, or none
    NOTHING = "nothing"  # no columns, no rows (a write that returns nothing)


_SAYS = {
    Shape.ROWS: "any number of rows",
    Shape.ROW: "exactly one row",
    Shape.ROW_OR_NONE: "one row or none",
    Shape.VALUE: "exactly one row of one column",
    Shape.VALUE_OR_NONE: "one row of one column, or none",
    Shape.NOTHING: "nothing",
}
_AT_MOST_ONE = {Shape.ROW_OR_NONE, Shape.VALUE_OR_NONE}
_EXACTLY_ONE = {Shape.ROW, Shape.VALUE}
_ONE_COLUMN = {Shape.VALUE, Shape.VALUE_OR_NONE}

# Types a `// params:` line may give a parameter (`// params: after: int, rows: list[map]`),
# where its name does not tell (tests/integration/test_query_book.py EXPLAINs every query with
# a value of each parameter's type).
PARAM_TYPES = frozenset(
    ("str", "int", "float", "bool", "date", "datetime", "map")
    + ("list[str]", "list[int]", "list[map]")
)

_NAME = re.compile(r"^\s*//\s*name:\s*([a-z_][a-z0-9_]*)\s*(?:->\s*(.*?))?\s*$")
_PARAMS = re.compile(r"^\s*//\s*params:\s*(.*)$")
_PARAM_USE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# Strings and `//` comments, whichever starts first: an apostrophe in a comment is not a
# string, and `//` in a string is not a comment.
_STRING_OR_COMMENT = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|//[^\n]*")
_SHAPES = ", ".join(f"'-> {s}'" for s in Shape)


@dataclass(frozen=True)
class Query:
    name: str
    text: str
    params: frozenset[str]
    file: str
    line: int
    shape: Shape = Shape.ROWS
    # The types the `// params:` line gives (not every parameter has one).
    types: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def check(self, given: Mapping[str, Any]) -> None:
        keys = set(given)
        if keys != self.params:
            missing = sorted(self.params - keys)
            extra = sorted(keys - self.params)
            raise QueryFileError(
                f"{self.file}:{self.line}: query '{self.name}' called with wrong parameters "
                f"(missing {missing}, unexpected {extra})"
            )

    def check_rows(self, rows: Sequence[object], columns: Sequence[str]) -> None:
        """The answer has the shape the header promises, or `QueryFileError`."""
        shape = self.shape
        if shape is Shape.ROWS:
            return
        n = len(rows)
        if (
            (shape in _EXACTLY_ONE and n != 1)
            or (shape in _AT_MOST_ONE and n > 1)
            or (shape is Shape.NOTHING and (n or columns))
        ):
            got = f"{n} row{'s' * (n != 1)}" + (f" of {list(columns)}" if columns else "")
            raise QueryFileError(f"{self.where}: promises {_SAYS[shape]} but answered {got}")
        if shape in _ONE_COLUMN and len(columns) != 1:
            raise QueryFileError(
                f"{self.where}: promises {_SAYS[shape]} but answered columns {list(columns)}"
            )

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}: query '{self.name}' (-> {self.shape})"


class Rows(list[dict[str, Any]]):
    """The rows a named query answered (already checked against its shape), and helpers that
    unwrap them by shape: each refuses a query whose header promises another shape."""

    __slots__ = ("query",)

    def __init__(self, query: Query, rows: list[dict[str, Any]]) -> None:
        super().__init__(rows)
        self.query = query

    def _expect(self, *shapes: Shape) -> None:
        if self.query.shape not in shapes:
            wanted = " or ".join(f"'-> {s}'" for s in shapes)
            raise QueryFileError(f"{self.query.where} is unwrapped as {wanted}")

    def value(self) -> Any:
        """The one value of a `-> value` query."""
        self._expect(Shape.VALUE)
        return next(iter(self[0].values()))

    def value_or_none(self) -> Any:
        """The value of a `-> value?` query, or None when it answered no row."""
        self._expect(Shape.VALUE_OR_NONE)
        return next(iter(self[0].values())) if self else None

    def row(self) -> dict[str, Any]:
        """The one row of a `-> row` query."""
        self._expect(Shape.ROW)
        return self[0]

    def row_or_none(self) -> dict[str, Any] | None:
        """The row of a `-> row?` query, or None when it answered none."""
        self._expect(Shape.ROW_OR_NONE)
        return self[0] if self else None


def _used_params(body: str) -> frozenset[str]:
    code = _STRING_OR_COMMENT.sub(lambda m: "" if m.group().startswith("//") else "''", body)
    return frozenset(_PARAM_USE.findall(code))


def _shape(marker: str | None, where: str) -> Shape:
    if not marker:
        raise QueryFileError(
            f"{where} has no result shape: end its name line with one of {_SHAPES}"
        )
    try:
        return Shape(marker)
    except ValueError:
        raise QueryFileError(
            f"{where} has an unknown result shape '-> {marker}' (one of {_SHAPES})"
        ) from None


def _declared(text: str, where: str) -> dict[str, str | None]:
    """`a, b: int` -> {"a": None, "b": "int"}."""
    out: dict[str, str | None] = {}
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        name, _, kind = (x.strip() for x in item.partition(":"))
        if kind and kind not in PARAM_TYPES:
            raise QueryFileError(
                f"{where}: parameter '{name}' has an unknown type '{kind}' "
                f"(one of {', '.join(sorted(PARAM_TYPES))})"
            )
        out[name] = kind or None
    return out


def parse_file(path: Path) -> list[Query]:
    queries: list[Query] = []
    name: str | None = None
    shape = Shape.ROWS
    start = 0
    declared: dict[str, str | None] | None = None
    declared_line = 0
    body: list[str] = []

    def flush() -> None:
        if name is None:
            code = [ln for ln in body if ln.strip() and not ln.strip().startswith("//")]
            if code:
                raise QueryFileError(f"{path.name}:1: Cypher before the first '// name:' header")
            return
        text = "\n".join(body).strip()
        if not text:
            raise QueryFileError(f"{path.name}:{start}: query '{name}' has an empty body")
        used = _used_params(text)
        types: dict[str, str] = {}
        if declared is not None:
            if set(declared) != used:
                raise QueryFileError(
                    f"{path.name}:{declared_line}: query '{name}' declares parameters "
                    f"{sorted(declared)} but uses {sorted(used)}"
                )
            types = {k: v for k, v in declared.items() if v}
        queries.append(Query(name, text, used, path.name, start, shape, types))

    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = _NAME.match(line)
        if m:
            flush()
            name, start, declared, body = m.group(1), lineno, None, []
            shape = _shape(m.group(2), f"{path.name}:{lineno}: query '{name}'")
            continue
        p = _PARAMS.match(line)
        if p and name is not None and not body:
            declared = _declared(p.group(1), f"{path.name}:{lineno}: query '{name}'")
            declared_line = lineno
            continue
        body.append(line)
    flush()
    return queries


class QueryBook:
    """All named queries, by name, plus which file each came from."""

    def __init__(self, queries: list[Query]) -> None:
        self._by_name: dict[str, Query] = {}
        for q in queries:
            if q.name in self._by_name:
                first = self._by_name[q.name]
                raise QueryFileError(
                    f"{q.file}:{q.line}: duplicate query name '{q.name}' "
                    f"(first defined at {first.file}:{first.line})"
                )
            self._by_name[q.name] = q

    def __getitem__(self, name: str) -> Query:
        try:
            return self._by_name[name]
        except KeyError:
            raise QueryFileError(f"no query named '{name}' in the query book") from None

    def all(self) -> list[Query]:
        return list(self._by_name.values())

    def names(self) -> list[str]:
        return sorted(self._by_name)


def load_directory(*directories: Path) -> QueryBook:
    """Every `*.cypher` file of these folders, as one book (names unique across them)."""
    queries: list[Query] = []
    for directory in directories:
        for path in sorted(directory.glob("*.cypher")):
            queries.extend(parse_file(path))
    return QueryBook(queries)


def package_directory() -> Path:
    return Path(str(resources.files("cypher")))


@lru_cache(maxsize=1)
def book() -> QueryBook:
    """The product's queries: the shipped `cypher/` package."""
    return load_directory(package_directory())


@lru_cache(maxsize=4)
def book_with(*directories: Path) -> QueryBook:
    """The product's queries and those of other folders (the benchmark's, the tests')."""
    return load_directory(package_directory(), *directories)
