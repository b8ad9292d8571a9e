"""The OpenAPI document says what the API accepts (issue 20 item 4): closed vocabularies as
enums (task moves, outcomes, task statuses, districts, reports), days as dates within the
years tubetrace reports on, ids and typed text with a pattern that excludes the characters
the checks refuse, and the reveal/reason dependency in the operations' descriptions. The
patterns are checked against the checks themselves, character by character."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import jsonschema_rs
import pytest

from api.app import create_app
from engine import codes, domain
from engine.analysis import reports
from engine.contract import Outcome, TaskStatus
from engine.errors import InputError
from engine.model import RecordKind

DOC: dict[str, Any] = create_app().openapi()
DISTRICTS = sorted(domain.district_data()["current"])
DAY_OPERATIONS = {
    ("/v1/positives", "date"),
    ("/v1/reports/{report}", "date"),
    ("/v1/reports/signals", "date"),
    ("/v1/persons/{person_id}/status", "date"),
    ("/v1/clusters", "since"),
    ("/v1/clusters", "until"),
    ("/v1/reports/attack-rate", "since"),
    ("/v1/reports/attack-rate", "until"),
    ("/v1/persons/{person_id}/exposure", "until"),
}


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return resolve(DOC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    return schema


def string_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The string branch of an optional parameter's schema (`anyOf: [string, null]`)."""
    schema = resolve(schema)
    for branch in schema.get("anyOf", []):
        if resolve(branch).get("type") == "string" or "enum" in resolve(branch):
            return {**resolve(branch), **{k: v for k, v in schema.items() if k != "anyOf"}}
    return schema


def parameter(path: str, name: str, method: str = "get") -> dict[str, Any]:
    found = [p for p in DOC["paths"][path][method]["parameters"] if p["name"] == name]
    assert found, (path, name)
    return found[0]


def test_task_moves_and_statuses_are_enums() -> None:
    body = DOC["paths"]["/v1/tasks/{task_id}/transitions"]["post"]["requestBody"]
    transition = resolve(body["content"]["application/json"]["schema"])
    assert resolve(transition["properties"]["to"])["enum"] == [s.value for s in TaskStatus]
    assert string_schema(transition["properties"]["outcome"])["enum"] == [o.value for o in Outcome]
    status = string_schema(parameter("/v1/districts/{district_code}/tasks", "status")["schema"])
    assert status["enum"] == [s.value for s in TaskStatus]


def test_districts_come_from_the_district_table() -> None:
    path = parameter("/v1/districts/{district_code}/tasks", "district_code")["schema"]
    assert path["enum"] == [*DISTRICTS, domain.UNASSIGNED]
    query = string_schema(parameter("/v1/positives", "district")["schema"])
    assert query["enum"] == DISTRICTS
    assert len(DISTRICTS) == 16 and "310115" in DISTRICTS


def test_reports_and_body_vocabularies_are_listed() -> None:
    report = parameter("/v1/reports/{report}", "report")["schema"]
    assert report["enum"] == list(reports.REPORTS)
    registration = DOC["components"]["schemas"]["RegistrationIn"]["properties"]
    assert "resident_id, passport, other" in registration["id_type"]["description"]
    assert "nucleic_code" in registration["method"]["description"]
    result = DOC["components"]["schemas"]["ResultIn"]["properties"]["result"]
    assert "positive, negative, invalid" in result["description"]
    quarantined = DOC["components"]["schemas"]["QuarantineItem"]["properties"]["kind"]
    assert resolve(quarantined)["enum"] == [k.value for k in RecordKind]


@pytest.mark.parametrize(("path", "name"), sorted(DAY_OPERATIONS))
def test_days_are_dates_within_the_plausible_years(path: str, name: str) -> None:
    schema = string_schema(parameter(path, name)["schema"])
    assert schema["format"] == "date"
    assert schema["formatMinimum"] == "2000-01-01" == domain.FIRST_DAY.isoformat()
    assert schema["formatMaximum"] == "2099-12-31" == domain.LAST_DAY.isoformat()
    day = re.compile(schema["pattern"])
    assert day.search("2000-01-01") and day.search("2099-12-31")
    assert not day.search("1999-12-31") and not day.search("2100-01-01")
    assert not day.search("20220409") and not day.search("２０２２-04-09")


def test_every_day_parameter_is_documented() -> None:
    """No operation takes a day the table above does not name (a new one gets the schema)."""
    found = {
        (path, p["name"])
        for path, item in DOC["paths"].items()
        for op in item.values()
        for p in op.get("parameters", [])
        if string_schema(p["schema"]).get("format") == "date"
    }
    assert found == DAY_OPERATIONS


def test_ids_and_reasons_carry_the_pattern_of_their_check() -> None:
    for path, name in [
        ("/v1/tubes/{tube_code}/trace", "tube_code"),
        ("/v1/persons/{person_id}/rings", "person_id"),
        ("/v1/persons/{person_id}/status", "person_id"),
        ("/v1/persons/{person_id}/exposure", "person_id"),
    ]:
        schema = parameter(path, name)["schema"]
        assert schema["pattern"] == codes.CODE_PATTERN
        assert (schema["minLength"], schema["maxLength"]) == (1, codes.MAX_CODE)
    task = parameter("/v1/tasks/{task_id}/transitions", "task_id", "post")["schema"]
    assert task["pattern"] == codes.CODE_PATTERN
    entry = parameter("/v1/directory/{entry_key}", "entry_key", "delete")["schema"]
    assert entry["pattern"] == codes.CODE_PATTERN
    note = DOC["components"]["schemas"]["TransitionIn"]["properties"]["note"]
    assert note["pattern"] == codes.MULTILINE_TEXT_PATTERN


def test_reveal_needs_a_reason_and_says_so() -> None:
    """OpenAPI cannot make one parameter require another: every operation that takes
    `reveal` says it in the parameter and documents the 422."""
    operations = [
        (path, op)
        for path, item in DOC["paths"].items()
        for op in item.values()
        if any(p["name"] == "reveal" for p in op.get("parameters", []))
    ]
    assert len(operations) == 7
    for path, op in operations:
        reason = next(p for p in op["parameters"] if p["name"] == "reason")
        assert "reveal=true" in reason["description"], path
        assert string_schema(reason["schema"])["pattern"] == codes.TEXT_PATTERN
        assert "reveal=true without a reason" in op["responses"]["422"]["description"], path


def test_refused_ranges_are_the_refused_categories() -> None:
    """The written-out ranges are this Python's Unicode: a newer one must regenerate them."""
    refused = {
        cp
        for cp in range(0x110000)
        if unicodedata.category(chr(cp)) in codes.REFUSED_CATEGORIES and cp != 0x20
    }
    written = {cp for low, high in codes.REFUSED_RANGES for cp in range(low, high + 1)}
    assert written == refused


def accepted(check: Any, value: str) -> bool:
    try:
        check(value)
    except InputError:
        return False
    return True


# Each range's edges and their neighbours, the line breaks, and characters of every kind a
# code or a reason holds in practice.
EDGES = {cp + d for low, high in codes.REFUSED_RANGES for cp in (low, high) for d in (-1, 0, 1)}
SAMPLES = sorted(
    (EDGES | {ord(c) for c in "\t\n\r aZ09-_/中区\u00e9\u0378\U0001f600"})
    - set(range(0xD800, 0xE000))  # no UTF-8 text carries a surrogate
    - {-1}
)


@pytest.mark.parametrize(
    ("pattern", "check"),
    [
        (codes.CODE_PATTERN, lambda v: codes.check_code(v)),
        (codes.TEXT_PATTERN, lambda v: codes.check_text(v, "reason")),
        (codes.MULTILINE_TEXT_PATTERN, lambda v: codes.check_text(v, "note", multiline=True)),
    ],
)
def test_patterns_say_what_the_checks_do(pattern: str, check: Any) -> None:
    """Python's reading of the pattern, the Rust one of the validators (jsonschema-rs, as
    schemathesis uses it) and the check agree on every sample character."""
    python = re.compile(pattern)
    rust = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
    for cp in SAMPLES:
        value = f"a{chr(cp)}b"
        ok = accepted(check, value)
        assert bool(python.search(value)) == ok, hex(cp)
        assert rust.is_valid(value) == ok, hex(cp)
    # An unassigned code point is no control: taken (it was refused before the pattern).
    assert accepted(codes.check_code, "T\u0378")


def test_cursors_say_what_their_readers_take() -> None:
    """A cursor the schema calls valid is one the engine reads, and the other way round."""
    from api.routers import analysis, status
    from engine.analysis import outbreak

    exposure = parameter("/v1/persons/{person_id}/exposure", "cursor")["schema"]["pattern"]
    clusters = parameter("/v1/clusters", "cursor")["schema"]["pattern"]
    feed = parameter("/v1/status-changes", "cursor")["schema"]["pattern"]
    assert (exposure, clusters, feed) == (
        analysis.EXPOSURE_CURSOR,
        analysis.CLUSTERS_CURSOR,
        status.FEED_CURSOR,
    )

    def feed_reads(value: str) -> bool:  # feed.status.changes_page
        return re.fullmatch(r"[0-9]{1,18}", value.strip()) is not None or not value.strip()

    spaces = "".join(chr(cp) for cp in range(0x110000) if chr(cp).isspace())
    samples = ["", "1:p", "4:" + "p" * 128, "5:p", "1:", "1:a\nb", "1:a\rb", "12:c_1", "x:c"]
    samples += ["0:c:d", "1234567890:c", "7", " 7 ", f"{spaces}42{spaces}", "\ufeff7", "7x"]
    samples += ["1" * 18, "1" * 19, "１２"]
    cases = [
        (exposure, lambda v: accepted(outbreak._exposure_cursor, v)),
        (clusters, lambda v: accepted(outbreak._cluster_cursor, v)),
        (feed, feed_reads),
    ]
    for pattern, reads in cases:
        rust = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
        for value in samples:
            assert rust.is_valid(value) == reads(value) == bool(re.search(pattern, value)), (
                pattern[:20],
                value,
            )


def test_audit_since_is_a_date_time_the_server_takes() -> None:
    from api.routers import audit

    since = string_schema(parameter("/v1/audit", "since")["schema"])
    assert since["format"] == "date-time" and since["pattern"] == audit.SINCE_PATTERN
    good = ["2022-04-09T00:00:00+08:00", "2022-04-09t00:00:00.5z", "0002-01-01T00:00:00Z"]
    bad = ["1649462400", "0.5", "2022-04-09 00:00:00Z", "0001-01-01T00:00:00+14:00"]
    bad += ["9999-12-31T23:59:59-14:00", "2022-04-09T23:59:60Z", "2022-04-09"]
    for value in good:
        assert audit._rfc3339(value) == value
    for value in bad:
        with pytest.raises(ValueError):
            audit._rfc3339(value)
