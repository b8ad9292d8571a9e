"""Typed dependencies shared by the routers: the gateway, settings, audit writer, the caller's
role (the permission check is one dependency, `api.security.require`) and common parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from pydantic import AfterValidator, WithJsonSchema

from api import models
from api.security import require
from engine import codes, domain
from engine.access import audit
from engine.access.keys import Principal
from engine.errors import InputError
from engine.settings import Settings
from engine.store.gateway import Gateway

MAX_ROWS = 5000
MAX_STRING = codes.MAX_TEXT


async def get_gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def get_audit(request: Request) -> audit.AuditWriter:
    writer: audit.AuditWriter = request.app.state.audit
    return writer


async def get_app_settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


# The dependencies only read app state: `async def` keeps them on the event loop (a plain `def`
# costs a worker-thread hop each, per request).
GatewayDep = Annotated[Gateway, Depends(get_gateway)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
AuditDep = Annotated[audit.AuditWriter, Depends(get_audit)]
Reader = Annotated[Principal, Depends(require("investigator", "district"))]
Investigator = Annotated[Principal, Depends(require("investigator"))]
Collector = Annotated[Principal, Depends(require("collector"))]
Lab = Annotated[Principal, Depends(require("lab"))]
Admin = Annotated[Principal, Depends(require("admin"))]
HealthCode = Annotated[Principal, Depends(require("health_code"))]


def _validator(check: Callable[[str], Any]) -> AfterValidator:
    """An engine check as a pydantic validator: its sentence becomes the 422 message. The value
    passes on as it came (a check's normalised answer is the engine's business)."""

    def validate(value: str) -> str:
        try:
            check(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return value

    return AfterValidator(validate)


def string_schema(**schema: Any) -> WithJsonSchema:
    """What the OpenAPI document says a string parameter accepts: exactly what its checks let
    through (so that a generated client, or a fuzzer's valid data, is never refused). The
    checks themselves are the engine's, with their own sentences."""
    return WithJsonSchema({"type": "string", **schema})


# Closed vocabularies as the OpenAPI document lists them. The district table is the engine's
# (engine/data/districts.json); `unassigned` is the city-level queue of tasks.
DISTRICT_CODES = sorted(domain.district_data()["current"])
DISTRICT_SCHEMA = string_schema(enum=DISTRICT_CODES)
TASK_DISTRICT_SCHEMA = string_schema(enum=[*DISTRICT_CODES, domain.UNASSIGNED])
# A day: YYYY-MM-DD, a real date, in the years tubetrace reports on (domain.FIRST_DAY to
# LAST_DAY, whole centuries: the pattern pins the century, the format the calendar).
# `formatMinimum` / `formatMaximum` say the bounds to validators that read them (ajv-formats).
DAY_SCHEMA = string_schema(
    format="date",
    pattern=f"^{domain.FIRST_DAY.year // 100}[0-9]{{2}}-[0-9]{{2}}-[0-9]{{2}}$",
    formatMinimum=domain.FIRST_DAY.isoformat(),
    formatMaximum=domain.LAST_DAY.isoformat(),
)
DAY_HELP = f"a sampling day, YYYY-MM-DD, {domain.FIRST_DAY} to {domain.LAST_DAY}"
REVEAL_HELP = (
    "investigators only: unmasked identity. Needs `reason` (not blank): reveal=true without "
    "one answers 422 invalid_input"
)
REASON_HELP = (
    "why identity is revealed (audited); required, and not blank, with reveal=true. No control "
    "or invisible formatting characters"
)
# The 422 of an operation that takes `reveal`: its dependency on `reason` is one OpenAPI
# cannot state as a schema (one parameter requires another), so the answer says it.
REVEAL_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "model": models.Error,
        "description": "`invalid_input`: a parameter that does not validate, or reveal=true "
        "without a reason (or with a blank one)",
    }
}

RevealQ = Annotated[bool, Query(description=REVEAL_HELP)]
DayQ = Annotated[str, DAY_SCHEMA, Query(description=DAY_HELP), _validator(domain.parse_day)]
OptionalDay = Annotated[Annotated[str, DAY_SCHEMA] | None, _validator(domain.parse_day)]
ReasonQ = Annotated[
    Annotated[str, string_schema(maxLength=MAX_STRING, pattern=codes.TEXT_PATTERN)] | None,
    Query(max_length=MAX_STRING, description=REASON_HELP),
    _validator(lambda v: codes.check_text(v, "reason")),
]


def _code(what: str) -> Callable[[str], str]:
    return lambda value: codes.check_code(value, what)


CODE_SCHEMA = string_schema(minLength=1, maxLength=codes.MAX_CODE, pattern=codes.CODE_PATTERN)
TubeCodePath = Annotated[
    str,
    CODE_SCHEMA,
    Path(max_length=codes.MAX_CODE, description="a tube code: printable, at most 64 characters"),
    _validator(_code("tube code")),
]
TaskIdPath = Annotated[
    str, CODE_SCHEMA, Path(max_length=codes.MAX_CODE), _validator(_code("task id"))
]
PersonIdPath = Annotated[
    str, CODE_SCHEMA, Path(max_length=codes.MAX_CODE), _validator(_code("person id"))
]
EntryKeyPath = Annotated[
    str,
    CODE_SCHEMA,
    Path(max_length=codes.MAX_CODE, description="a directory entry's key (its load answer's key)"),
    _validator(_code("entry key")),
]
DistrictPath = Annotated[
    str,
    TASK_DISTRICT_SCHEMA,
    Path(
        pattern=r"^([0-9]{6}|unassigned)$",
        description="a district code from the district table, or 'unassigned'",
    ),
    _validator(lambda v: codes.check_district(v, allow_unassigned=True)),
]
DistrictQ = Annotated[
    Annotated[str, DISTRICT_SCHEMA] | None,
    Query(
        pattern=r"^[0-9]{6}$",
        description="only this district's residents (a district key: its own only); "
        "a code from the district table",
    ),
    _validator(lambda v: codes.check_district(v)),
]


def check_batch(records: list[dict[str, Any]]) -> None:
    if len(records) > MAX_ROWS:
        raise models.LimitExceeded(
            f"The batch has {len(records)} records; at most {MAX_ROWS} are accepted per request. "
            "Nothing was stored."
        )
    for i, rec in enumerate(records):
        for key, value in rec.items():
            # A number is held to the same limit as its text (a 4,000-digit record_id is not).
            text = value if isinstance(value, str) else _number_text(value)
            if text is not None and len(text) > MAX_STRING:
                raise models.LimitExceeded(
                    f"Record {i}, field '{key}' is {len(text)} characters long; at most "
                    f"{MAX_STRING} are accepted. Nothing was stored."
                )


def _number_text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and value.bit_length() > 4 * MAX_STRING:
        return "9" * (MAX_STRING + 1)  # too long to render cheaply, and over the limit anyway
    return str(value)
