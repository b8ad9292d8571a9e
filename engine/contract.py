"""The typed contract: the shapes of the trace, person, task, report, quarantine, audit,
person-status and load answers, and the vocabularies (roles, statuses, outcomes, kinds,
results) as enums.
The API's response models are these; the CLI renders its JSON through them too.
The engine builds the same shapes as plain dicts: their TypedDicts (`...JSON`) close the file."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel, Field

from engine.model import RecordKind


class Role(StrEnum):
    INVESTIGATOR = "investigator"
    DISTRICT = "district"
    COLLECTOR = "collector"
    LAB = "lab"
    ADMIN = "admin"
    HEALTH_CODE = "health_code"
    OPS = "ops"  # GET /metrics only


class TaskStatus(StrEnum):
    PENDING = "pending"
    ACKNOWLEDGED = "acknowledged"
    CONTACTED = "contacted"
    RETEST_COLLECTED = "retest_collected"
    UNREACHABLE = "unreachable"
    CLOSED = "closed"


class Outcome(StrEnum):
    RELEASED = "released"
    CONFIRMED = "confirmed"
    SUPERSEDED = "superseded"
    CLOSED_BY_INVESTIGATOR = "closed_by_investigator"


class TaskKind(StrEnum):
    FOLLOW_UP = "follow_up"
    RESAMPLE = "resample"
    CASE = "case"


class ResultValue(StrEnum):
    """A lab result. A stored result may carry another value, flagged `invalid_result`."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    INVALID = "invalid"


class IdType(StrEnum):
    RESIDENT_ID = "resident_id"
    PASSPORT = "passport"
    OTHER = "other"


class Method(StrEnum):
    NUCLEIC_CODE = "nucleic_code"
    ID_CARD = "id_card"
    MANUAL = "manual"


class LoadStatus(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    UPDATED = "updated"
    QUARANTINED = "quarantined"


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
    status: LoadStatus
    flags: list[str]
    reason: str | None


class LoadAnswer(BaseModel):
    summary: LoadSummary
    outcomes: list[RecordOutcome]


class DirectoryRemoval(BaseModel):
    entry_key: str
    person_id: str | None = Field(description="the person the entry was about")
    tasks_moved: int = Field(description="tasks that moved to another district as a result")


class TubeResult(BaseModel):
    result: str | None
    reported_at: str | None
    lab_code: str | None
    ct_value: float | None
    flags: list[str] = Field(
        default_factory=list,
        description="the result's flags, e.g. future_reported_at (never ranked as the latest)",
    )


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
    kind: RecordKind
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
    key_id: str | None = Field(
        description="the key that did it: named only when proven (it exists and its secret "
        "matched); null for a refused caller whose key is unknown, wrong or absent"
    )
    claimed_key_id: str | None = Field(
        default=None,
        description="a refused caller's key id as typed: unverified, anyone can type it",
    )
    role: Role | Literal["unknown"]  # "unknown": no key proven
    action: str
    target: str | None
    person_ids: list[str]
    reason: str | None
    status: str | None
    detail: str | None
    request_id: str | None = None  # the API request that wrote it (its X-Request-ID)


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


class HistoryEntry(BaseModel):
    status: TaskStatus
    at: str
    actor: str
    note: str | None
    outcome: Outcome | None = None


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
    status: TaskStatus
    outcome: Outcome | None
    kind: TaskKind
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


class StatusTube(BaseModel):
    tube_code: str
    pooled: bool
    result: str | None
    reported_at: str | None
    status: str


class PersonStatus(BaseModel):
    person_id: str
    date: str
    status: str
    since: str | None
    tubes: list[StatusTube]


class ChangePerson(BaseModel):
    person_id: str
    id_type: str | None
    id_number: str | None
    name: str | None


class StatusChange(BaseModel):
    change_id: int
    person: ChangePerson
    day: str
    status: str
    previous_status: str | None
    changed_at: str


class StatusChangePage(BaseModel):
    items: list[StatusChange]
    next_cursor: str | None


class Report(BaseModel):
    report: str
    date: str
    items: list[dict[str, Any]]
    next_cursor: str | None


# Outbreak analysis (engine/analysis/outbreak.py; the contract's "Outbreak analysis").


class WindowPerson(Person):
    """A trace person, plus the tube and sampling day of the registration that placed them
    (in a ring, or in a cluster: their earliest positive tube of the window)."""

    tube_code: str
    day: str


class ExposureRing(BaseModel):
    depth: int = Field(description="co-pool distance from the person")
    persons: list[WindowPerson]


class Exposure(BaseModel):
    person_id: str
    since: str | None
    until: str | None
    depth: int
    days: int
    rings: list[ExposureRing]
    next_cursor: str | None


class ClusterLinks(BaseModel):
    pool: int = Field(description="pooled tubes shared by at least two members")
    compound: int = Field(
        description="compounds where at least two members were swabbed within 3 days of each other"
    )


class Cluster(BaseModel):
    cluster_id: str = Field(description="stable for the same members")
    size: int = Field(description="members (a district key sees only its own among persons)")
    persons: list[WindowPerson]
    compounds: list[str]
    districts: list[str]
    first_day: str
    last_day: str
    links: ClusterLinks


class Clusters(BaseModel):
    since: str
    until: str
    clusters: list[Cluster]
    next_cursor: str | None


class Signal(BaseModel):
    kind: Literal[
        "collector_across_compounds",
        "box_across_compounds",
        "lab_positive_rate",
        "compound_consecutive_days",
    ]
    subject: str = Field(description="the collector id, box code, lab code or compound code")
    evidence: dict[str, Any]
    tubes: list[str]
    traces: list[str] = Field(description="the trace of each tube (API paths)")


class Signals(BaseModel):
    date: str
    signals: list[Signal]


class AttackRateRow(BaseModel):
    persons: int
    positives: int
    share: float | None


class RingAttackRate(BaseModel):
    depth: int
    persons: int
    positives: int
    share: float | None


class AttackRate(BaseModel):
    since: str
    until: str
    cases: int
    follow_days: int
    rings: list[RingAttackRate]
    city: AttackRateRow


# ------------------------------------------------ the same shapes as the engine builds them
# The engine builds its answers as dicts (they go out as JSON as they are): these TypedDicts
# name their keys, mirror the models above, and are what the use cases return.


class TubeResultJSON(TypedDict):
    result: str | None
    reported_at: str | None
    lab_code: str | None
    ct_value: float | None
    flags: list[str]


class TubeJSON(TypedDict):
    code: str
    pool_size: int | None
    collected_at: str | None
    result: str | None
    reported_at: str | None
    results: list[TubeResultJSON]


class BoxRefJSON(TypedDict):
    code: str


class ResidenceCompoundJSON(TypedDict):
    """A task's compound when the person lives elsewhere than the tube's compound."""

    code: str | None
    address: str | None
    district_code: str | None
    contact_phone: str | None


class CompoundJSON(ResidenceCompoundJSON):
    name: str | None
    district: str | None
    subdistrict: str | None


class ResidenceJSON(TypedDict):
    compound_code: str | None
    address: str | None
    district_code: str | None
    source: str
    contact_phone: str | None


class ContactJSON(TypedDict):
    phone: str
    owner: str
    source: str
    updated_at: str | None


class ChangePersonJSON(TypedDict):
    """Who a person is (a status change names them so; a trace person says more)."""

    person_id: str
    id_type: str | None
    id_number: str | None
    name: str | None


class PersonJSON(ChangePersonJSON):
    phone: str | None
    method: str | None
    record_id: str
    collected_at: str | None
    box_code: str | None
    residence: ResidenceJSON
    contacts: list[ContactJSON]
    registered_district_code: str | None
    household_separated: bool | None
    flags: list[str]


class RingPersonJSON(PersonJSON):
    tube_code: str


class WindowPersonJSON(RingPersonJSON):
    day: str


class TraceJSON(TypedDict):
    tube: TubeJSON
    box: BoxRefJSON | None
    boxes: list[str]
    compound: CompoundJSON | None
    compounds: list[str]
    persons: list[PersonJSON]
    flags: list[str]


class HistoryJSON(TypedDict):
    status: str
    at: str
    actor: str
    note: str | None
    outcome: str | None


class ContactRouteJSON(TypedDict):
    contact_via: str
    contact_phone: str | None


class TaskJSON(ContactRouteJSON):
    task_id: str
    status: str
    outcome: str | None
    kind: str
    tube_code: str
    district_code: str
    person: PersonJSON | None
    compound: CompoundJSON | ResidenceCompoundJSON | None
    flags: list[str]
    result_at: str | None
    created_at: str | None
    updated_at: str | None
    history: list[HistoryJSON]


class PositiveItemJSON(TypedDict):
    district_code: str
    district: str | None
    tube_code: str
    trace: TraceJSON


class CaseInfoJSON(TypedDict):
    confirmed_at: str | None
    collected_at: str | None
    compound_code: str | None
    pool_tubes: list[str]


class RingPageJSON(TypedDict):
    items: list[RingPersonJSON]
    next_cursor: str | None


class RingsJSON(TypedDict):
    person_id: str
    case: CaseInfoJSON
    ring1: list[RingPersonJSON]
    ring2: RingPageJSON


class QuarantineItemJSON(TypedDict):
    qkey: str
    reason: str
    kind: str
    source: str
    raw: str | None  # the line as sent (masked unless revealed)
    existing: str | None  # the stored record it conflicts with
    line: int | None
    field: str | None
    at: str | None


class AuditEntryJSON(TypedDict):
    audit_id: str
    at: str | None
    key_id: str | None
    role: str
    action: str
    target: str | None
    reason: str | None
    status: str | None
    detail: str | None
    person_ids: list[str]
    claimed_key_id: NotRequired[str | None]  # a refused caller's, unverified
    request_id: NotRequired[str | None]


class StatusTubeJSON(TypedDict):
    tube_code: str
    pooled: bool
    result: str | None
    reported_at: str | None
    status: str


class PersonStatusJSON(TypedDict):
    person_id: str
    date: str
    status: str
    since: str | None
    tubes: list[StatusTubeJSON]


class StatusChangeJSON(TypedDict):
    change_id: int
    person: ChangePersonJSON
    day: str
    status: str
    previous_status: str | None
    changed_at: str


class DirectoryRemovalJSON(TypedDict):
    entry_key: str
    person_id: str | None
    tasks_moved: int


class ExposureRingJSON(TypedDict):
    depth: int
    persons: list[WindowPersonJSON]


class ExposureJSON(TypedDict):
    person_id: str
    since: str | None
    until: str | None
    depth: int
    days: int
    rings: list[ExposureRingJSON]
    next_cursor: str | None


class ClusterLinksJSON(TypedDict):
    pool: int
    compound: int


class ClusterJSON(TypedDict):
    cluster_id: str
    size: int
    persons: list[WindowPersonJSON]
    compounds: list[str]
    districts: list[str]
    first_day: str
    last_day: str
    links: ClusterLinksJSON


class ClusterRegistrationJSON(TypedDict):
    person_id: str
    tube_code: str
    day: str
    pooled: bool
    compound_code: str | None
    linking_pool: bool


class ClusterDetailJSON(ClusterJSON):
    """One cluster with its members' registrations (the console's graph)."""

    since: str
    until: str
    registrations: list[ClusterRegistrationJSON]


class ClustersJSON(TypedDict):
    since: str
    until: str
    clusters: list[ClusterJSON]
    next_cursor: str | None


class SignalJSON(TypedDict):
    kind: str
    subject: str
    evidence: dict[str, object]
    tubes: list[str]
    traces: list[str]


class SignalsJSON(TypedDict):
    date: str
    signals: list[SignalJSON]


class AttackRateRowJSON(TypedDict):
    persons: int
    positives: int
    share: float | None


class RingAttackRateJSON(AttackRateRowJSON):
    depth: int


class AttackRateJSON(TypedDict):
    since: str
    until: str
    cases: int
    follow_days: int
    rings: list[RingAttackRateJSON]
    city: AttackRateRowJSON


class WebhookJSON(TypedDict):
    """A subscription as `webhooks list` shows it: never its secret."""

    webhook_id: str
    url: str
    district_code: str | None
    events: list[str]
    created_at: str | None
    cursor: int
    failures: int
    parked_until: str | None
    parks: int
    last_error: str | None
    state: str


class DeliveryJSON(TypedDict):
    """A delivery of the delivery log (`webhooks deliveries`)."""

    delivery_id: str | None
    webhook_id: str | None
    event_id: str | None
    event_type: str | None
    status: str | None
    attempts: int | None
    last_status_code: int | None
    last_error: str | None
    created_at: str | None
    next_at: str | None
    last_attempt_at: str | None
    delivered_at: str | None
    log: list[dict[str, object]]
    webhook_parked_until: NotRequired[str | None]
