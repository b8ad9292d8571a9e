"""schemathesis against the app's own OpenAPI schema, over HTTP, with a key of every role and
every check schemathesis has (the CLI's `--checks all`): no server error, no status code,
content type, header or body the schema does not document, every request the schema calls
valid accepted (`positive_data_acceptance`: 2xx, or a refusal of the key, 404 or 409) and
every request it calls invalid refused (`negative_data_rejection`), keys enforced
(`ignored_auth`), undeclared methods answered 405 with `Allow` (`unsupported_method`).
Examples, fuzzing and coverage phases; positive and negative data.

Checks that stay silent here, and why:
- `use_after_free`, `ensure_resource_availability`: they follow a case's parent (a DELETE or
  a POST that created it) in the stateful phase; the one DELETE, of a directory entry, is
  covered by tests/integration/test_directory.py.
- `object_level_authorization`: it replays one identity's read as its peers' and needs
  schemathesis' escalating auth configuration; a district key seeing nothing of another
  district is tests/system/test_security.py's role matrix.
- `allow_header_conformance`: only OPTIONS answers, which the coverage phase sends rarely."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.generation import GenerationMode

from api.app import create_app
from bench.devdb import wipe
from engine.access.keys import create_key
from engine.analysis import outbreak
from engine.contract import Role
from engine.settings import Settings
from engine.store.gateway import Gateway
from tests.helpers import load_city

load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())  # `--checks all`
schema = schemathesis.openapi.from_dict(create_app().openapi())
# Every role (engine.contract.Role); the district key is Pudong's.
ROLES = [(r.value, "310115" if r == Role.DISTRICT else None) for r in Role]
COUNTS = {"cases": 0, "positive": 0, "negative": 0, "requests": 0}
WINDOWS = ("/v1/clusters", "/v1/reports/attack-rate")


@pytest.fixture(scope="module")
def keys(session_gateway: Gateway, settings: Settings) -> dict[str, str]:
    wipe(session_gateway)
    session_gateway._secret = None
    session_gateway.apply_schema()
    load_city(session_gateway, settings)
    return {
        role: create_key(
            session_gateway, role=role, district=district, labs=["LAB01"] if role == "lab" else None
        ).secret
        for role, district in ROLES
    }


def honour_dependencies(case: schemathesis.Case) -> None:
    """What OpenAPI cannot say as a schema (one parameter bounding another), the operations
    say in their descriptions and 422s; a valid request honours it too, so a positive case is
    made to: reveal=true comes with a reason, and a window of days is since <= until within
    outbreak.MAX_DAYS."""
    query: dict[str, Any] = case.query or {}
    if (
        str(query.get("reveal", "")).lower() == "true"
        and not str(query.get("reason") or "").strip()
    ):
        query["reason"] = "schemathesis"
    if case.path in WINDOWS and {"since", "until"} <= set(query):
        since, until = date.fromisoformat(query["since"]), date.fromisoformat(query["until"])
        if not 0 <= (until - since).days < outbreak.MAX_DAYS:
            query["until"] = query["since"]


@schema.parametrize()
@hsettings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(
    case: schemathesis.Case, api_url: str, keys: dict[str, str]
) -> None:
    positive = case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE
    if positive:
        honour_dependencies(case)
    COUNTS["cases"] += 1
    COUNTS["positive" if positive else "negative"] += 1
    for role, _ in ROLES:
        COUNTS["requests"] += 1
        case.call_and_validate(
            base_url=api_url, checks=ALL_CHECKS, headers={"Authorization": f"Bearer {keys[role]}"}
        )


def test_schemathesis_report() -> None:
    print(
        f"\nschemathesis: {COUNTS['cases']} cases ({COUNTS['positive']} positive, "
        f"{COUNTS['negative']} negative), {COUNTS['requests']} requests with {len(ROLES)} "
        f"roles and {len(ALL_CHECKS)} checks: no failure"
    )
    assert COUNTS["requests"] >= 50
