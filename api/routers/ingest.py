"""Registrations and results sent by collector apps and labs; population directory entries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, JsonValue

from api import models
from api.deps import (
    Admin,
    AuditDep,
    Collector,
    EntryKeyPath,
    GatewayDep,
    Lab,
    SettingsDep,
    check_batch,
)
from engine import domain
from engine.access import audit
from engine.access.keys import Principal
from engine.contract import LoadStatus
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.usecases import writes
from loaders import transform, write
from loaders.transform import Quarantined

router = APIRouter(tags=["load"])


def _records(kind: str, body: list[Any]) -> list[dict[str, Any] | Quarantined]:
    """Each element as the loader takes it; one that is not a JSON object is quarantined."""
    return [
        r.model_dump(exclude_none=True)
        if isinstance(r, BaseModel)
        else Quarantined(
            kind,
            "request",
            i,
            None,
            "not a JSON object: each element of the array must be one record",
            domain.canonical_json({"element": transform.as_content(r)}),
        )
        for i, r in enumerate(body)
    ]


def _load(
    kind: str,
    body: list[Any],
    gw: Gateway,
    s: Settings,
    who: Principal,
    log: audit.AuditWriter,
    *,
    lab_scoped: bool = False,
    keyed_by_sender: bool = False,
) -> models.LoadAnswer:
    """`lab_scoped`: a lab key sends its own labs' records only. `keyed_by_sender`: a record's
    stored key is (source, record_id), the source being the sender itself, so the sender is
    answered its own record id."""
    records = _records(kind, body)
    check_batch([r for r in records if isinstance(r, dict)])
    items: list[write.Item] = [(i, rec) for i, rec in enumerate(records)]

    def store() -> write.Summary:
        return write.load_records(
            gw, kind, items, "request", s, keep_outcomes=True, sender=who.key_id
        )

    target = f"{len(records)} records"
    if lab_scoped:
        labs = [r.get("lab_code") for r in records if isinstance(r, dict)]
        summary = writes.load_results(log, who, labs, store, target=target)
    else:
        summary = writes.load(log, who, store, target=target)
    return models.LoadAnswer(
        summary=models.LoadSummary(**summary.counts()),
        outcomes=[
            models.RecordOutcome(
                index=o.line or 0,
                key=o.key.split("/", 1)[1] if keyed_by_sender and o.key else o.key,
                status=LoadStatus(o.status),
                flags=o.flags,
                reason=o.reason,
            )
            for o in summary.outcomes
        ],
    )


@router.post("/v1/registrations", response_model=models.LoadAnswer)
def post_registrations(
    body: list[Annotated[models.RegistrationIn | JsonValue, Field(union_mode="left_to_right")]],
    gw: GatewayDep,
    s: SettingsDep,
    who: Collector,
    log: AuditDep,
) -> models.LoadAnswer:
    return _load("registrations", body, gw, s, who, log, keyed_by_sender=True)


@router.post("/v1/results", response_model=models.LoadAnswer)
def post_results(
    body: list[Annotated[models.ResultIn | JsonValue, Field(union_mode="left_to_right")]],
    gw: GatewayDep,
    s: SettingsDep,
    who: Lab,
    log: AuditDep,
) -> models.LoadAnswer:
    return _load("results", body, gw, s, who, log, lab_scoped=True)


@router.post("/v1/directory", response_model=models.LoadAnswer)
def post_directory(
    body: list[models.DirectoryEntryIn],
    gw: GatewayDep,
    s: SettingsDep,
    who: Admin,
    log: AuditDep,
) -> models.LoadAnswer:
    return _load("directory", body, gw, s, who, log)


@router.delete("/v1/directory/{entry_key}", response_model=models.DirectoryRemoval)
def delete_directory_entry(
    entry_key: EntryKeyPath, gw: GatewayDep, who: Admin, log: AuditDep
) -> models.DirectoryRemoval:
    """Remove a wrong or hostile directory entry (its key is in the load answer, and in
    `tubetrace directory list PERSON_ID`); the person's tasks move as for late data."""
    return models.DirectoryRemoval(**writes.remove_directory_entry(gw, log, who, entry_key))
