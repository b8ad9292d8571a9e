"""Every query of the book (the product's `cypher/`, the benchmark's `bench/cypher/`, the tests'
`tests/cypher/`) EXPLAINed against the applied schema, each parameter given a value of a
plausible type: a syntax error, an unknown function or procedure, a parameter of the wrong type,
a hint naming a missing index, deprecated syntax, or columns that do not fit the header's
result shape (`// name: q -> value` answers one column) fail here rather than in production."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from neo4j import NotificationClassification
from neo4j.exceptions import Neo4jError

from engine.store.gateway import Gateway
from engine.store.querybook import Query, Shape, load_directory
from tests.helpers import TEST_BOOK

AT = datetime(2022, 4, 9, 12, tzinfo=UTC)
# A value of each type a `// params:` line may name (engine/store/querybook.py, PARAM_TYPES).
BY_TYPE: dict[str, Any] = {
    "str": "x",
    "int": 1,
    "float": 1.5,
    "bool": False,
    "date": date(2022, 4, 9),
    "datetime": AT,
    "map": {"key": "x"},
    "list[str]": ["x"],
    "list[int]": [1],
    "list[map]": [{"key": "x"}],
}
# Without a type on the `// params:` line, a parameter's name tells its type as the callers send
# it; any other name is text.
BY_NAME: dict[str, Any] = {
    **dict.fromkeys(("limit", "most", "n", "seq", "through", "cursor", "threshold"), 3),
    **dict.fromkeys(("park_s", "park_max_s", "depth", "after_depth"), 60),
    "failed_only": False,
    **dict.fromkeys(
        (
            "before",
            "expires_at",
            "idle_until",
            "lease_until",
            "next_at",
            "now",
            "overdue_before",
            "stale",
            "window_start",
        ),
        AT,
    ),
    **dict.fromkeys(("day", "today", "cutoff", "reported_until"), "2022-04-09"),
    "entry": {"at": "2022-04-09T12:00:00+00:00", "status": "acknowledged"},
    "marker": {"state": "marked"},
    "seqs": [1],
    "values": [AT],
    **dict.fromkeys(
        (
            "aggregates",
            "cases",
            "closes",
            "deliveries",
            "entries",
            "events",
            "hooks",
            "links",
            "persons",
            "rows",
            "subjects",
            "tasks",
            "days",
        ),
        [{"key": "x"}],
    ),
    **dict.fromkeys(
        (
            "box_codes",
            "codes",
            "ids",
            "keys",
            "labs",
            "open",
            "person_ids",
            "pools",
            "reg_keys",
            "result_keys",
            "task_ids",
            "tube_codes",
        ),
        ["x"],
    ),
}
# Notifications an empty database gives any query (a label, type or property that no node has
# yet); every other one (a missing hinted index, deprecated syntax, a cartesian product...) fails.
EXPECTED = {NotificationClassification.UNRECOGNIZED}


def example(q: Query, name: str) -> Any:
    if name in q.types:
        return BY_TYPE[q.types[name]]
    return BY_NAME.get(name, "x")


def explain_problems(gw: Gateway, queries: list[Query]) -> list[str]:
    problems: list[str] = []
    for q in queries:
        params = {p: example(q, p) for p in q.params}
        where = f"{q.file}:{q.line} {q.name}"
        try:
            with gw.driver.session(
                database=gw.database, notifications_min_severity="INFORMATION"
            ) as session:
                result = session.run("EXPLAIN " + q.text, params)
                columns = result.keys()
                summary = result.consume()
        except Neo4jError as exc:
            problems.append(f"{where}: {exc.message}")
            continue
        problems += [
            f"{where}: {n.status_description}"
            for n in summary.gql_status_objects
            if n.is_notification and n.classification not in EXPECTED
        ]
        if q.shape is Shape.NOTHING and columns:
            problems.append(f"{where}: '-> nothing' but returns {list(columns)}")
        elif q.shape in (Shape.VALUE, Shape.VALUE_OR_NONE) and len(columns) != 1:
            problems.append(f"{where}: '-> {q.shape}' but returns {list(columns)}")
        elif q.shape not in (Shape.NOTHING, Shape.VALUE, Shape.VALUE_OR_NONE) and not columns:
            problems.append(f"{where}: '-> {q.shape}' but returns no columns")
    return problems


def test_every_query_of_the_book_plans_against_the_schema(gw: Gateway) -> None:
    # call_missing_procedure fails on purpose (test_procedures.py: a server without them).
    queries = [q for q in TEST_BOOK.all() if q.name != "call_missing_procedure"]
    assert len(queries) > 150
    assert explain_problems(gw, queries) == []


def test_what_the_explain_check_catches(gw: Gateway, tmp_path: Path) -> None:
    (tmp_path / "bad.cypher").write_text(
        "// name: unknown_function -> value\nRETURN nosuch($x) AS y\n\n"
        "// name: missing_index -> rows\n"
        "MATCH (t:Tube) USING INDEX t:Tube(nosuch) WHERE t.nosuch = $x RETURN t.code AS code\n\n"
        "// name: wrong_type -> rows\nMATCH (t:Tube) RETURN t.code AS code LIMIT $x\n\n"
        "// name: two_columns -> value\nRETURN 1 AS a, 2 AS b\n\n"
        "// name: a_write -> nothing\nMATCH (t:Tube) SET t.x = 1 RETURN t.code AS code\n\n"
        "// name: fine -> row\n// params: x: int\nRETURN range(1, $x) AS r\n",
        encoding="utf-8",
    )
    problems = explain_problems(gw, load_directory(tmp_path).all())
    assert [p.split(" ", 1)[1].split(":", 1)[0] for p in problems] == [
        "unknown_function",
        "missing_index",
        "wrong_type",
        "two_columns",
        "a_write",
    ]
