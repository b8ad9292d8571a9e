"""Pydantic models of every body and answer of the HTTP API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from engine.codes import MAX_TEXT, MULTILINE_TEXT_PATTERN
from engine.contract import (
    AttackRate,
    AuditEntry,
    AuditPage,
    BoxRef,
    CaseInfo,
    ChangePerson,
    Cluster,
    Clusters,
    Compound,
    Contact,
    DirectoryRemoval,
    Exposure,
    HistoryEntry,
    IdType,
    LoadAnswer,
    LoadSummary,
    Method,
    Outcome,
    Person,
    PersonStatus,
    PositiveItem,
    PositivesPage,
    QuarantineItem,
    QuarantinePage,
    RecordOutcome,
    Report,
    Residence,
    ResultValue,
    RingPage,
    RingPerson,
    Rings,
    Signals,
    StatusChange,
    StatusChangePage,
    StatusTube,
    Task,
    TaskCompound,
    TaskPage,
    TaskStatus,
    Trace,
    Tube,
    TubeResult,
)
from loaders.transform import PHONE_OWNERS

# The answers' shapes are the engine's (engine/contract.py); only request bodies and the
# error envelope are the API's own.
__all__ = [
    "LoadSummary",
    "RecordOutcome",
    "LoadAnswer",
    "TubeResult",
    "Tube",
    "BoxRef",
    "Compound",
    "Residence",
    "Contact",
    "DirectoryRemoval",
    "Person",
    "Trace",
    "QuarantineItem",
    "QuarantinePage",
    "AuditEntry",
    "AuditPage",
    "HistoryEntry",
    "TaskCompound",
    "Task",
    "TaskPage",
    "PositiveItem",
    "PositivesPage",
    "RingPerson",
    "RingPage",
    "CaseInfo",
    "Rings",
    "Report",
    "StatusTube",
    "PersonStatus",
    "ChangePerson",
    "StatusChange",
    "StatusChangePage",
    "Exposure",
    "Cluster",
    "Clusters",
    "Signals",
    "AttackRate",
]

# Any JSON value is taken as sent: the loader flags what is not a text or a number (`true`,
# objects, arrays) as `invalid_<field>` instead of refusing the batch or turning `true` into 1.
Scalar = JsonValue


def known(field: str, values: Iterable[str]) -> Any:
    """A field of a closed vocabulary that is still taken as sent (a swab is never lost to a
    typo): the OpenAPI document lists the values; another one is stored flagged
    `invalid_<field>`."""
    listed = list(values)
    return Field(
        default=None,
        description=f"one of {', '.join(listed)}; another value is stored flagged invalid_{field}",
        examples=[listed[0]],
    )


class LimitExceeded(Exception):
    """A request over a size limit: refused whole, before anything is written."""


class ErrorDetail(BaseModel):
    loc: list[str]
    msg: str | None


class Error(BaseModel):
    """Every error answer: a code word and a sentence a person can act on."""

    error: str
    message: str
    details: list[ErrorDetail] | None = None
    error_id: str | None = Field(default=None, description="500 only: also in the server log")
    oldest_cursor: str | None = Field(
        default=None, description="410 only: the cursor to read on from after resynchronising"
    )


class Health(BaseModel):
    status: str
    neo4j: str


class Live(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    checks: dict[str, str]


class RegistrationIn(BaseModel):
    """One person swabbed into one tube. Every field is accepted as given: a bad value is
    stored with a flag, not refused, so that no swab is lost."""

    model_config = ConfigDict(extra="ignore")

    record_id: Scalar = None
    collected_at: Scalar = None
    compound_code: Scalar = None
    box_code: Scalar = None
    tube_code: Scalar = None
    pool_size: Scalar = None
    method: Scalar = known("method", Method)
    id_type: Scalar = known("id_type", IdType)
    id_number: Scalar = None
    name: Scalar = None
    phone: Scalar = None
    registered_address: Scalar = None
    collector_id: Scalar = None


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tube_code: Scalar = None
    result: Scalar = known("result", ResultValue)
    reported_at: Scalar = None
    lab_code: Scalar = None
    ct_value: Scalar = None


class DirectoryEntryIn(BaseModel):
    """One population-directory row: a phone that reaches the person and/or where they live."""

    model_config = ConfigDict(extra="ignore")

    id_type: Scalar = known("id_type", IdType)
    id_number: Scalar = None
    name: Scalar = None
    phone: Scalar = None
    phone_owner: Scalar = known("phone_owner", PHONE_OWNERS)
    residence_compound_code: Scalar = None
    source: Scalar = None
    updated_at: Scalar = None


class TransitionIn(BaseModel):
    """A task move. `outcome` goes with `to: closed` only (`released` or `confirmed` after a
    retest; `closed_by_investigator`, with a note, by an investigator from any open status)."""

    to: TaskStatus = Field(description="the new status")
    outcome: Outcome | None = Field(default=None, description="with `closed` only")
    note: str | None = Field(
        default=None,
        max_length=MAX_TEXT,
        description="free text (line breaks allowed; no control or invisible formatting "
        "characters)",
        json_schema_extra={"pattern": MULTILINE_TEXT_PATTERN},
    )
