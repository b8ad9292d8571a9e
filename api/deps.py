"""Typed dependencies shared by the routers: the gateway, settings, audit writer, the caller's
role (the permission check is one dependency, `api.security.require`) and common parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from pydantic import AfterValidator

from api import models
from api.security import require
from engine import codes
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
RevealQ = Annotated[bool, Query(description="investigators only: unmasked identity")]
DayQ = Annotated[str, Query(pattern=codes.DAY_PATTERN)]
ReasonQ = Annotated[
    str | None, Query(max_length=MAX_STRING, description="why identity is revealed (audited)")
]


def _validator(check: Callable[[str], str]) -> AfterValidator:
    """An engine check as a pydantic validator: its sentence becomes the 422 message."""

    def validate(value: str) -> str:
        try:
            return check(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None

    return AfterValidator(validate)


def _code(what: str) -> Callable[[str], str]:
    return lambda value: codes.check_code(value, what)


TubeCodePath = Annotated[
    str,
    Path(max_length=codes.MAX_CODE, description="a tube code: printable, at most 64 characters"),
    _validator(_code("tube code")),
]
TaskIdPath = Annotated[str, Path(max_length=codes.MAX_CODE), _validator(_code("task id"))]
PersonIdPath = Annotated[str, Path(max_length=codes.MAX_CODE), _validator(_code("person id"))]
EntryKeyPath = Annotated[
    str,
    Path(max_length=codes.MAX_CODE, description="a directory entry's key (its load answer's key)"),
    _validator(_code("entry key")),
]
DistrictPath = Annotated[
    str,
    Path(
        pattern=r"^([0-9]{6}|unassigned)$",
        description="a district code from the district table (6 ASCII digits) or 'unassigned'",
    ),
    _validator(lambda v: codes.check_district(v, allow_unassigned=True)),
]
DistrictQ = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9]{6}$",
        description="only this district's residents (a district key: its own only)",
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
