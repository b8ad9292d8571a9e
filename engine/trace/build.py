"""The trace JSON of the contract, built from the `trace_tubes` query's rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, TypedDict

from neo4j.time import DateTime

from engine import domain
from engine.contract import (
    CompoundJSON,
    ContactJSON,
    PersonJSON,
    ResidenceJSON,
    TraceJSON,
    TubeResultJSON,
)
from engine.errors import NotFound
from engine.store.gateway import Gateway


class _Place(TypedDict):
    """A compound as a registration row holds it (`fallback`: without name and subdistrict)."""

    code: str
    name: str | None
    address: str | None
    district_code: str | None
    subdistrict: str | None
    contact_phone: str | None


class _Listed(TypedDict):
    """A usable directory entry of the person."""

    phone: str
    phone_owner: str
    source: str
    updated_at: DateTime | None
    future: bool


class Registration(TypedDict):
    """One registration of a `trace_tubes` row (cypher/trace.cypher)."""

    record_id: str
    collected_at: str | None
    day: str | None
    pool_size: int | None
    method: str | None
    name: str | None
    phone: str | None
    flags: list[str] | None
    box_code: str | None
    compound_code: str | None
    person_id: str
    id_type: str | None
    id_number: str | None
    registered_district_code: str | None
    compound: _Place | None
    fallback: _Place | None
    fallback_source: str | None
    directory: list[_Listed]
    duplicate: bool
    box_compounds_that_day: int


def contacts(reg: Registration) -> list[ContactJSON]:
    """Every usable phone known for the person: the registration's own first, then the
    directory's, newest first (a phone listed twice is kept once, at its first place); an
    entry dated in the future comes after every dated one."""
    found: list[ContactJSON] = []
    flags = reg["flags"] or []
    if reg["phone"] is not None and "invalid_phone" not in flags:
        found.append(
            {"phone": reg["phone"], "owner": "self", "source": "registration", "updated_at": None}
        )
    listed = reg.get("directory")
    if not listed:  # most persons: nothing to order or to deduplicate
        return found
    # Newest first; an entry dated in the future (never the newest) and an undated one after.
    ranked = [e for e in listed if e["updated_at"] is not None and not e.get("future")]
    future = [e for e in listed if e["updated_at"] is not None and e.get("future")]
    entries = [
        *sorted(ranked, key=_updated, reverse=True),
        *sorted(future, key=_updated, reverse=True),
        *(e for e in listed if e["updated_at"] is None),
    ]
    for e in entries:
        found.append(
            {
                "phone": e["phone"],
                "owner": e["phone_owner"],
                "source": e["source"],
                "updated_at": domain.iso(e["updated_at"]),
            }
        )
    seen: set[str] = set()
    unique = []
    for c in found:
        if c["phone"] not in seen:
            seen.add(c["phone"])
            unique.append(c)
    return unique


def _updated(e: _Listed) -> datetime:
    at = e["updated_at"]
    assert at is not None  # only dated entries are sorted
    return at.to_native()


def _residence(reg: Registration) -> ResidenceJSON:
    """The own compound when known, else the fallback (cypher/directory.cypher)."""
    compound = reg["compound"]
    fallback = reg.get("fallback")
    if compound is None and fallback is not None:
        return {
            "compound_code": fallback["code"],
            "address": fallback["address"],
            "district_code": fallback["district_code"],
            "source": reg.get("fallback_source") or "registration",
            "contact_phone": fallback.get("contact_phone"),
        }
    return {
        "compound_code": reg["compound_code"],
        "address": compound["address"] if compound else None,
        "district_code": compound["district_code"] if compound else None,
        "source": "registration",
        "contact_phone": compound.get("contact_phone") if compound else None,
    }


def _person(reg: Registration) -> PersonJSON:
    compound = reg["compound"]
    residence = _residence(reg)
    residence_district = residence["district_code"]
    registered = reg["registered_district_code"]
    flags = set(reg["flags"] or [])
    if reg["compound_code"] is not None and compound is None:
        flags.add("unknown_compound")
    if reg["duplicate"]:
        flags.add("duplicate_registration")
    reachable = contacts(reg)
    if not reachable:
        flags.add("no_usable_phone")
    separated = None
    if registered is not None and residence_district is not None:
        separated = registered != residence_district
    return {
        "person_id": reg["person_id"],
        "id_type": reg["id_type"],
        "id_number": reg["id_number"],
        "name": reg["name"],
        "phone": reg["phone"],
        "method": domain.method_read(reg["method"], reg["flags"]),
        "record_id": reg["record_id"],
        "collected_at": domain.iso(reg["collected_at"]),
        "box_code": reg["box_code"],
        "residence": residence,
        "contacts": reachable,
        "registered_district_code": registered,
        "household_separated": separated,
        "flags": sorted(flags),
    }


def _compound(reg: Registration) -> CompoundJSON:
    c = reg["compound"]
    if c is None:
        return {
            "code": reg["compound_code"],
            "name": None,
            "address": None,
            "district_code": None,
            "district": None,
            "subdistrict": None,
            "contact_phone": None,
        }
    return {
        "code": c["code"],
        "name": c["name"],
        "address": c["address"],
        "district_code": c["district_code"],
        "district": domain.district_name(c["district_code"]),
        "subdistrict": c["subdistrict"],
        "contact_phone": c.get("contact_phone"),
    }


def _distinct(values: list[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v is not None))


def build_trace(row: Mapping[str, Any]) -> TraceJSON:
    """A `trace_tubes` row: `code`, `registrations` and `results`."""
    regs: list[Registration] = row["registrations"]
    results: list[TubeResultJSON] = [
        {
            "result": x["result"],
            "reported_at": domain.iso(x["reported_at"]),
            "lab_code": x["lab_code"],
            "ct_value": x["ct_value"],
            "flags": sorted(x.get("flags") or []),
        }
        for x in row["results"]
    ]
    latest = results[-1] if results else None
    first = regs[0] if regs else None
    pool_sizes = [r["pool_size"] for r in regs if r["pool_size"] is not None]
    pool_size = (
        first["pool_size"]
        if first and first["pool_size"] is not None
        else (Counter(pool_sizes).most_common(1)[0][0] if pool_sizes else None)
    )
    boxes = _distinct([r["box_code"] for r in regs])
    compounds = _distinct([r["compound_code"] for r in regs])
    flags: set[str] = set()
    if not regs:
        flags.add("no_registrations")
    if pool_size is not None and len(regs) > pool_size:
        flags.add("over_pool_size")
    if len(set(pool_sizes)) > 1:
        flags.add("pool_size_mismatch")
    if len(boxes) > 1:
        flags.add("tube_multiple_boxes")
    if len(compounds) > 1:
        flags.add("tube_multiple_compounds")
    if any(r["box_compounds_that_day"] > 1 for r in regs):
        flags.add("box_multiple_compounds")
    values = {x["result"] for x in results}
    if {"positive", "negative"} <= values and (len(regs) > 1 or (pool_size or 0) > 1):
        # A pool reported both ways: its members stay in follow-up until their single-tube
        # retests (engine/feed/status.py), whichever came last; investigators see why.
        flags.add("result_conflict")
    return {
        "tube": {
            "code": row["code"],
            "pool_size": pool_size,
            "collected_at": domain.iso(first["collected_at"]) if first else None,
            "result": latest["result"] if latest else None,
            "reported_at": latest["reported_at"] if latest else None,
            "results": results,
        },
        "box": {"code": first["box_code"]} if first and first["box_code"] else None,
        "boxes": boxes,
        "compound": _compound(first) if first and first["compound_code"] else None,
        "compounds": compounds,
        "persons": [_person(r) for r in regs],
        "flags": sorted(flags),
    }


def trace_many(gw: Gateway, tube_codes: list[str]) -> dict[str, TraceJSON]:
    rows = gw.read("trace_tubes", tube_codes=tube_codes)
    return {row["code"]: build_trace(row) for row in rows}


def person_in(
    trace: TraceJSON, person_id: str | None, record_id: str | None = None
) -> PersonJSON | None:
    """A person of the trace by person id, never by record_id alone (two sampling apps may
    both number a record R-SAME in one tube: two persons). Of the person's registrations in
    the tube, the one numbered `record_id` when given and there, else the first."""
    mine = [p for p in trace["persons"] if p["person_id"] == person_id]
    return next((p for p in mine if p["record_id"] == record_id), None) or (
        mine[0] if mine else None
    )


def trace_tube(gw: Gateway, tube_code: str) -> TraceJSON:
    found = trace_many(gw, [tube_code])
    if tube_code not in found:
        raise NotFound(
            purged_tube_message(gw, tube_code)
            or f"No tube with code '{tube_code}' was registered or reported."
        )
    return found[tube_code]


def purged_tube_message(gw: Gateway, code: str) -> str | None:
    """The 404 sentence of a tube a purged day's codes span (engine/ops/retention.py keeps each
    purged day's lowest and highest tube code); None otherwise."""
    purged = gw.read("retention_purged_tube_day", code=code).row_or_none()
    if purged is None:
        return None
    return (
        f"No tube with code '{code}' is stored: the data of its sampling day "
        f"({purged['day']}) is older than the {purged['keep_days']}-day retention window "
        "and was deleted."
    )


PERSON_FLAGS = (
    "missing_phone",
    "invalid_phone",
    "invalid_id_number",
    "duplicate_registration",
    "unknown_compound",
    "legacy_id_15",
    "no_usable_phone",
)
TUBE_FLAGS = (
    "over_pool_size",
    "pool_size_mismatch",
    "tube_multiple_boxes",
    "tube_multiple_compounds",
    "box_multiple_compounds",
    "no_registrations",
    "result_conflict",
)


def all_tube_codes(gw: Gateway, page: int = 2000) -> Iterator[str]:
    after = ""
    while True:
        codes = [r["code"] for r in gw.read("tube_codes_after", after=after, limit=page)]
        yield from codes
        if len(codes) < page:
            return
        after = codes[-1]


def all_traces(gw: Gateway, page: int = 500) -> Iterator[TraceJSON]:
    """Every tube's trace, a page of tubes per query."""
    batch: list[str] = []
    for code in all_tube_codes(gw):
        batch.append(code)
        if len(batch) == page:
            yield from trace_many(gw, batch).values()
            batch = []
    if batch:
        yield from trace_many(gw, batch).values()


def count_flags(totals: Counter[str], trace: TraceJSON) -> None:
    totals.update(trace["flags"])
    for p in trace["persons"]:
        totals.update(p["flags"])
