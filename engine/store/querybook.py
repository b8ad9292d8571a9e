"""Named Cypher queries loaded from `cypher/*.cypher`.

Each query starts with a `// name: query_name` header; an optional `// params: a, b` line
declares its parameters. Loading fails, naming file and line, on a duplicate name, an empty
body, or a declared parameter list that differs from the `$parameters` the body uses. At call
time the given parameters must equal the used ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from engine.errors import QueryFileError

_NAME = re.compile(r"^\s*//\s*name:\s*([a-z_][a-z0-9_]*)\s*$")
_PARAMS = re.compile(r"^\s*//\s*params:\s*(.*)$")
_PARAM_USE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# Strings and `//` comments, whichever starts first: an apostrophe in a comment is not a
# string, and `//` in a string is not a comment.
_STRING_OR_COMMENT = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|//[^\n]*")


@dataclass(frozen=True)
class Query:
    name: str
    text: str
    params: frozenset[str]
    file: str
    line: int

    def check(self, given: Mapping[str, Any]) -> None:
        keys = set(given)
        if keys != self.params:
            missing = sorted(self.params - keys)
            extra = sorted(keys - self.params)
            raise QueryFileError(
                f"{self.file}:{self.line}: query '{self.name}' called with wrong parameters "
                f"(missing {missing}, unexpected {extra})"
            )


def _used_params(body: str) -> frozenset[str]:
    code = _STRING_OR_COMMENT.sub(lambda m: "" if m.group().startswith("//") else "''", body)
    return frozenset(_PARAM_USE.findall(code))


def parse_file(path: Path) -> list[Query]:
    queries: list[Query] = []
    name: str | None = None
    start = 0
    declared: frozenset[str] | None = None
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
        if declared is not None and declared != used:
            raise QueryFileError(
                f"{path.name}:{declared_line}: query '{name}' declares parameters "
                f"{sorted(declared)} but uses {sorted(used)}"
            )
        queries.append(Query(name, text, used, path.name, start))

    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = _NAME.match(line)
        if m:
            flush()
            name, start, declared, body = m.group(1), lineno, None, []
            continue
        p = _PARAMS.match(line)
        if p and name is not None and not body:
            declared = frozenset(x.strip() for x in p.group(1).split(",") if x.strip())
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
            raise QueryFileError(f"no query named '{name}' in cypher/") from None

    def all(self) -> list[Query]:
        return list(self._by_name.values())

    def names(self) -> list[str]:
        return sorted(self._by_name)


def load_directory(directory: Path) -> QueryBook:
    queries: list[Query] = []
    for path in sorted(directory.glob("*.cypher")):
        queries.extend(parse_file(path))
    return QueryBook(queries)


@lru_cache(maxsize=1)
def book() -> QueryBook:
    return load_directory(Path(str(resources.files("cypher"))))
