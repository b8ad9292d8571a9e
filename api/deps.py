"""Typed dependencies shared by the routers: the gateway, settings, audit writer, the caller's
role (the permission check is one dependency, `api.security.require`) and common parameters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request

from api import models
from api.security import require
from engine import audit
from engine.db import Gateway
from engine.keys import Principal
from engine.settings import Settings

MAX_ROWS = 5000
MAX_STRING = 512


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
RevealQ = Annotated[bool, Query(description="investigators only: unmasked identity")]
ReasonQ = Annotated[
    str | None, Query(max_length=MAX_STRING, description="why identity is revealed (audited)")
]


def check_batch(records: list[dict[str, Any]]) -> None:
    if len(records) > MAX_ROWS:
        raise models.LimitExceeded(
            f"The batch has {len(records)} records; at most {MAX_ROWS} are accepted per request. "
            "Nothing was stored."
        )
    for i, rec in enumerate(records):
        for key, value in rec.items():
            if isinstance(value, str) and len(value) > MAX_STRING:
                raise models.LimitExceeded(
                    f"Record {i}, field '{key}' is {len(value)} characters long; at most "
                    f"{MAX_STRING} are accepted. Nothing was stored."
                )
