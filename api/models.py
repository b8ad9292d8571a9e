"""Pydantic models of every body and answer of the HTTP API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

# Any JSON value is taken as sent: the loader flags what is not a text or a number (`true`,
# objects, arrays) as `invalid_<field>` instead of refusing the batch or turning `true` into 1.
Scalar = JsonValue


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


class Health(BaseModel):
    status: str
    neo4j: str


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
    method: Scalar = None
    id_type: Scalar = None
    id_number: Scalar = None
    name: Scalar = None
    phone: Scalar = None
    registered_address: Scalar = None
    collector_id: Scalar = None


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tube_code: Scalar = None
    result: Scalar = None
    reported_at: Scalar = None
    lab_code: Scalar = None
    ct_value: Scalar = None


class DirectoryEntryIn(BaseModel):
    """One population-directory row: a phone that reaches the person and/or where they live."""

    model_config = ConfigDict(extra="ignore")

    id_type: Scalar = None
    id_number: Scalar = None
    name: Scalar = None
    phone: Scalar = None
    phone_owner: Scalar = None
    residence_compound_code: Scalar = None
    source: Scalar = None
    updated_at: Scalar = None


class LoadSummary(BaseModel):
    read: int
    stored: int
    duplicates: int
    conflicts: int
    updated: int
    flagged: int
    quarantined: int


class RecordOutcome(BaseModel):
    index: int
    key: str | None
    status: str = Field(description="stored, duplicate, conflict, updated or quarantined")
    flags: list[str]
    reason: str | None


class LoadAnswer(BaseModel):
    summary: LoadSummary
    outcomes: list[RecordOutcome]


class TubeResult(BaseModel):
    result: str | None
    reported_at: str | None
    lab_code: str | None
    ct_value: float | None


class Tube(BaseModel):
    code: str
    pool_size: int | None
    collected_at: str | None
    result: str | None
    reported_at: str | None
    results: list[TubeResult]


class BoxRef(BaseModel):
    code: str


class Compound(BaseModel):
    code: str | None
    name: str | None
    address: str | None
    district_code: str | None
    district: str | None
    subdistrict: str | None
    contact_phone: str | None = None


class Residence(BaseModel):
    compound_code: str | None
    address: str | None
    district_code: str | None
    source: str = Field(
        "registration",
        description="registration (the compound swabbed at, or another registration's) "
        "or directory (the population directory's residence, when the compound is unknown)",
    )
    contact_phone: str | None = Field(None, description="the residence compound's phone")


class Contact(BaseModel):
    phone: str
    owner: str = Field(description="self, household or compound_manager")
    source: str = Field(description="registration, or the directory entry's source")
    updated_at: str | None


class Person(BaseModel):
    person_id: str
    id_type: str | None
    id_number: str | None
    name: str | None
    phone: str | None
    method: str | None
    record_id: str
    box_code: str | None = Field(None, description="the box this person's swab went into")
    collected_at: str | None
    residence: Residence | None
    contacts: list[Contact] = Field(
        default_factory=list, description="usable phones: the registration's first"
    )
    registered_district_code: str | None
    household_separated: bool | None
    flags: list[str]


class Trace(BaseModel):
    tube: Tube
    box: BoxRef | None
    boxes: list[str]
    compound: Compound | None
    compounds: list[str]
    persons: list[Person]
    flags: list[str]


class QuarantineItem(BaseModel):
    qkey: str
    kind: str
    source: str
    line: int | None
    field: str | None
    reason: str
    raw: str
    existing: str | None
    at: str | None


class QuarantinePage(BaseModel):
    items: list[QuarantineItem]
    next_cursor: str | None


class AuditEntry(BaseModel):
    audit_id: str
    at: str | None
    key_id: str
    role: str
    action: str
    target: str | None
    person_ids: list[str]
    reason: str | None
    status: str | None
    detail: str | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


class TransitionIn(BaseModel):
    to: str = Field(max_length=32, description="the new status")
    outcome: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, max_length=512)


class HistoryEntry(BaseModel):
    status: str
    at: str
    actor: str
    note: str | None
    outcome: str | None = None


class TaskCompound(BaseModel):
    code: str | None
    address: str | None = None
    district_code: str | None = None
    name: str | None = None
    district: str | None = None
    subdistrict: str | None = None
    contact_phone: str | None = None


class Task(BaseModel):
    task_id: str
    status: str
    outcome: str | None
    kind: str
    tube_code: str
    district_code: str
    person: Person | None
    compound: TaskCompound | None
    contact_via: str = Field(description="phone (call the first contact) or compound")
    contact_phone: str | None = Field(
        None, description="with contact_via compound: the compound's phone"
    )
    flags: list[str]
    result_at: str | None
    created_at: str | None
    updated_at: str | None
    history: list[HistoryEntry]


class TaskPage(BaseModel):
    items: list[Task]
    next_cursor: str | None


class PositiveItem(BaseModel):
    district_code: str
    district: str | None
    tube_code: str
    trace: Trace


class PositivesPage(BaseModel):
    items: list[PositiveItem]
    next_cursor: str | None


class RingPerson(Person):
    tube_code: str


class RingPage(BaseModel):
    items: list[RingPerson]
    next_cursor: str | None


class CaseInfo(BaseModel):
    confirmed_at: str | None
    collected_at: str | None
    compound_code: str | None
    pool_tubes: list[str]


class Rings(BaseModel):
    person_id: str
    case: CaseInfo
    ring1: list[RingPerson]
    ring2: RingPage


class Report(BaseModel):
    report: str
    date: str
    items: list[dict[str, Any]]
    next_cursor: str | None
