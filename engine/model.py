"""The graph model, declared once: labels, their keys and properties, relationships, and the
record kinds that feed them. The bulk import headers are generated from it; a test proves
that `cypher/schema.cypher`'s constraints and the transforms' properties agree with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class RecordKind(StrEnum):
    """What an input file or request holds."""

    COMPOUNDS = "compounds"
    REGISTRATIONS = "registrations"
    RESULTS = "results"
    DIRECTORY = "directory"


# The fields that identify a record of each kind (the contract's keys); a record sent again
# under the same key with different content is a conflict.
KEY_FIELDS: dict[RecordKind, tuple[str, ...]] = {
    RecordKind.COMPOUNDS: ("compound_code",),
    RecordKind.REGISTRATIONS: ("source", "record_id"),
    RecordKind.RESULTS: ("tube_code", "lab_code", "reported_at"),
    RecordKind.DIRECTORY: ("id_type", "id_number", "source", "phone"),
}
# Kinds whose key sent again with other content updates the stored record (compounds: the
# newer master data; directory: the latest `updated_at`) instead of being a conflict.
UPDATABLE = (RecordKind.COMPOUNDS, RecordKind.DIRECTORY)


def _typed(properties: dict[str, str]) -> list[str]:
    """neo4j-admin header fields: `name` for a string, `name:type` otherwise."""
    return [n if t == "string" else f"{n}:{t}" for n, t in properties.items()]


@dataclass(frozen=True)
class Node:
    """A label, its unique key and its other properties (name: neo4j-admin import type)."""

    label: str
    key: str
    properties: dict[str, str] = field(default_factory=dict)
    imported: bool = True  # written by the bulk import (else only by the online code)
    key_type: str = "string"
    # False: the key names the node in an import file only (links to it); the store reaches
    # it through a relationship and keeps no key property nor its index.
    key_stored: bool = True

    def import_header(self) -> list[str]:
        if not self.key_stored:
            key = [f":ID({self.label})"]
        elif self.key_type != "string":  # an ID column is text: the typed key is a property
            key = [f":ID({self.label})", f"{self.key}:{self.key_type}"]
        else:
            key = [f"{self.key}:ID({self.label})"]
        return [*key, *_typed(self.properties), ":LABEL"]


@dataclass(frozen=True)
class Relationship:
    type: str
    start: str
    end: str
    properties: dict[str, str] = field(default_factory=dict)

    def import_header(self) -> list[str]:
        return [
            f":START_ID({self.start})",
            f":END_ID({self.end})",
            *_typed(self.properties),
            ":TYPE",
        ]


# Registrations and results keep their `raw` line only as the evidence of an invalid value
# (docs/footprint.md): a conflict rebuilds their first version from their fields otherwise
# (loaders/transform.py, evidence, stored_version).
# A record's digest, and its line only when it is the evidence of an invalid value
# (loaders/transform.py, evidence). Which file and line a record came from is not kept: the
# quarantine and the load's audit entry say it (docs/footprint.md).
_KEPT = {"content_hash": "string", "raw": "string"}

NODES: dict[str, Node] = {
    n.label: n
    for n in (
        Node(
            "Compound",
            "code",
            {
                "name": "string",
                "address": "string",
                "district_code": "string",
                "subdistrict": "string",
                "lat": "double",
                "lon": "double",
                "contact_phone": "string",
                "flags": "string[]",
                "content_hash": "string",
                "raw": "string",
                "known": "boolean",
            },
        ),
        # A registration keeps no compound, box or tube code and no id_type: its
        # relationships and its person say them. `method` is kept as a one-digit code
        # (engine/domain.py, METHOD_CODES), a method that is no known one as it was sent.
        Node(
            "Registration",
            "reg_key",
            {
                "record_id": "string",
                "collected_at": "datetime",
                "day": "string",
                "pool_size": "long",
                "method": "string",
                "name": "string",
                "phone": "string",
                "registered_address": "string",
                "collector_id": "string",
                "flags": "string[]",
                **_KEPT,
            },
        ),
        # `last_day`: at least the day of each of the person's registrations and days, a bound
        # new_registration_facts reads instead of the person's window (docs/footprint.md).
        Node(
            "Person",
            "person_id",
            {
                "id_type": "string",
                "id_number": "string",
                "registered_district_code": "string",
                "last_day": "string",
            },
        ),
        Node(
            "Result",
            "result_key",
            {
                "tube_code": "string",
                "result": "string",
                "reported_at": "datetime",
                "day": "string",
                "lab_code": "string",
                "ct_value": "double",
                "flags": "string[]",
                **_KEPT,
            },
        ),
        # `pool_day`: the sampling day of a pooled tube whose registrations all say pooled
        # (pool_size > 1) and agree on the day; unset otherwise (a single tube, a tube without
        # registrations, or registrations that disagree: read them then). What the outbreak
        # queries filter a tube on without reading its registrations (cypher/analysis.cypher).
        Node("Tube", "code", {"pool_day": "string"}),
        Node("Box", "code"),
        Node(
            "Quarantine",
            "qkey",
            {
                "kind": "string",
                "source": "string",
                "line": "long",
                "field": "string",
                "reason": "string",
                "raw": "string",
                "existing": "string",
                "at": "datetime",
            },
        ),
        Node("Meta", "key", {"value": "string"}),
        Node(
            "DirectoryEntry",
            "entry_key",
            {
                "person_id": "string",
                "name": "string",
                "phone": "string",
                "usable": "boolean",
                "phone_owner": "string",
                "residence_compound_code": "string",
                "source": "string",
                "updated_at": "datetime",
                "flags": "string[]",
                "content_hash": "string",
                "raw": "string",
                "file": "string",
                "line": "long",
            },
            imported=False,
        ),
        Node("Task", "task_id", imported=False),
        Node("Case", "person_id", imported=False),
        Node("ApiKey", "key_id", imported=False),
        Node("Audit", "audit_id", imported=False),
        # The running service's state (cypher/ops.cypher), not data: left out of dumps and wipes.
        Node("ConsoleSession", "sid_hash", imported=False),
        Node("Lease", "name", imported=False),
        # The bulk import writes every person's day status and its `status.changed` event.
        # A person's day is reached from its person (HAS_DAY, under the person's lock): it
        # keeps neither a key (`person_id|day`, 37 characters and an index) nor the person's
        # id (docs/footprint.md).
        Node(
            "PersonDay",
            "key",
            {
                "day": "string",
                "status": "string",
                "since": "localdatetime",  # in UTC: a block less than a datetime with a zone
                "district_code": "string",
            },
            key_stored=False,
        ),
        Node(
            "Event",
            "seq",
            key_type="long",
            properties={
                "type": "string",
                "occurred_at": "datetime",
                "person_id": "string",
                "day": "string",
                "status": "string",
                "previous_status": "string",
                "district_code": "string",
            },
        ),
        Node("Sequence", "name", {"value": "long"}),
        Node("Webhook", "webhook_id", imported=False),
        Node("Delivery", "delivery_id", imported=False),
        # Retention (engine/ops/retention.py): a purged day's marker and its aggregates.
        Node(
            "RetentionDay",
            "day",
            {"state": "string", "keep_days": "long", "tube_min": "string", "tube_max": "string"},
            imported=False,
        ),
        Node(
            "DayAggregate",
            "key",
            {"day": "string", "scope": "string", "code": "string"},
            imported=False,
        ),
    )
}

RELATIONSHIPS: dict[str, Relationship] = {
    r.type: r
    for r in (
        Relationship("INTO_TUBE", "Registration", "Tube"),
        Relationship("OF_PERSON", "Registration", "Person"),
        Relationship("IN_BOX", "Registration", "Box"),
        Relationship("AT_COMPOUND", "Registration", "Compound"),
        Relationship("FILLED_AT", "Box", "Compound", {"day": "string"}),
        Relationship("FOR_TUBE", "Result", "Tube"),
        Relationship("HAS_DAY", "Person", "PersonDay"),
    )
}

# The node each record kind is stored as.
STORED_AS: dict[RecordKind, str] = {
    RecordKind.COMPOUNDS: "Compound",
    RecordKind.REGISTRATIONS: "Registration",
    RecordKind.RESULTS: "Result",
    RecordKind.DIRECTORY: "DirectoryEntry",
}
