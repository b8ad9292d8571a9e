"""Pure transforms: one input record (a dict of what the file or request said) into a row to
store, with its flags, or into a quarantine entry. No I/O here."""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from engine import codes, domain
from engine.model import KEY_FIELDS, UPDATABLE, RecordKind

REGISTRATION_FIELDS = (
    "record_id",
    "collected_at",
    "compound_code",
    "box_code",
    "tube_code",
    "pool_size",
    "method",
    "id_type",
    "id_number",
    "name",
    "phone",
    "registered_address",
    "collector_id",
)
# every field but the optional last three (phone, registered_address, collector_id)
REGISTRATION_REQUIRED = REGISTRATION_FIELDS[:10]
RESULT_FIELDS = ("tube_code", "result", "reported_at", "lab_code", "ct_value")
RESULT_REQUIRED = ("tube_code", "result", "reported_at", "lab_code")
COMPOUND_FIELDS = (
    "compound_code",
    "name",
    "address",
    "district_code",
    "subdistrict",
    "lat",
    "lon",
    "contact_phone",
)
COMPOUND_REQUIRED = ("compound_code", "name", "address", "district_code")
DIRECTORY_FIELDS = (
    "id_type",
    "id_number",
    "name",
    "phone",
    "phone_owner",
    "residence_compound_code",
    "source",
    "updated_at",
)
DIRECTORY_REQUIRED = ("id_type", "id_number", "source", "updated_at")
PHONE_OWNERS = ("self", "household", "compound_manager")
KINDS = tuple(k.value for k in RecordKind)


@dataclass(frozen=True)
class Quarantined:
    """A line that cannot be stored: kept whole, with where it came from and why."""

    kind: str
    source: str
    line: int | None
    field: str | None
    reason: str
    raw: str
    existing: str | None = None

    @property
    def key(self) -> str:
        return domain.content_hash(
            {
                "kind": self.kind,
                "source": self.source,
                "line": self.line,
                "raw": self.raw,
                "reason": self.reason,
            }
        )[:32]

    def as_props(self) -> dict[str, Any]:
        return {
            "qkey": self.key,
            "kind": self.kind,
            "source": self.source,
            "line": self.line,
            "field": self.field,
            "reason": self.reason,
            "raw": self.raw,
            "existing": self.existing,
        }


def text(value: Any) -> str:
    """Every text field, before any rule: Unicode NFKC (full-width digits and letters become
    ASCII, e.g. from IDs typed on a Chinese keyboard) and trimmed."""
    return unicodedata.normalize("NFKC", str(value)).strip()


@dataclass
class Row:
    """A record to store: its key, content hash, and the properties of its node."""

    kind: str
    key: str
    content_hash: str
    raw: str
    props: dict[str, Any]
    flags: list[str] = field(default_factory=list)
    links: dict[str, Any] = field(default_factory=dict)


MAX_TEXT = codes.MAX_TEXT  # a longer value (a 4,000-digit number) is invalid
_MAX_INT = 10**MAX_TEXT


def _text(value: Any) -> tuple[str | None, bool]:
    """A field's value as trimmed text, and whether it was invalid. Only strings and finite
    numbers are values; booleans, objects, arrays, NaN and infinities are not. Unprintable
    characters (control, bidi overrides, lone surrogates) are removed and make it invalid."""
    if value is None:
        return None, False
    if isinstance(value, str):
        text = value
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) < _MAX_INT:
        text = str(value)
    elif isinstance(value, float) and math.isfinite(value):
        text = repr(value)
    else:
        return None, True
    if text.isprintable():  # no Cc/Cf/Cs/Co character: the common case, without a loop
        cleaned = text
    else:
        cleaned = "".join(
            " " if ch in "\t\r\n" else ch
            for ch in text
            if ch in "\t\r\n" or not domain.unprintable(ch)
        )
    invalid = len(cleaned) != len(text)
    cleaned = unicodedata.normalize("NFKC", cleaned).strip()
    if len(cleaned) > MAX_TEXT:
        return None, True
    return cleaned or None, invalid


def _clean(
    record: dict[str, Any], fields: tuple[str, ...]
) -> tuple[dict[str, str | None], set[str]]:
    """Strings stripped, empty as missing; values that are not text or a number noted invalid."""
    out: dict[str, str | None] = {}
    invalid: set[str] = set()
    for name in fields:
        out[name], bad = _text(record.get(name))
        if bad:
            invalid.add(name)
    return out, invalid


def as_content(value: Any) -> Any:
    """A value as it counts for the record's content (and its kept raw text), whatever it is."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        try:
            return str(value)
        except ValueError:  # more digits than Python prints
            return f"<integer of {int(value).bit_length()} bits>"
    try:
        json.dumps(value)
    except (ValueError, TypeError, RecursionError):
        return f"<{type(value).__name__} that cannot be written as JSON>"
    return value


def _canonical(record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """What counts as the record's content: its contract fields, as text, missing as absent."""
    content: dict[str, Any] = {}
    for name in fields:
        value = as_content(record.get(name))
        if value is None or value == "":
            continue
        content[name] = value
    return content


def _int(value: str) -> int | None:
    try:
        number = float(value)
    except ValueError:
        return None
    if not number.is_integer() or not 1 <= number <= domain.POOL_SIZE_MAX:
        return None
    return int(number)


def _float(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _timestamp(value: str | None, name: str, flags: list[str], tz: str) -> tuple[Any, str | None]:
    """A timestamp with offset and its local day; a bad one becomes `invalid_<name>`."""
    if value is None:
        return None, None
    parsed = domain.parse_timestamp(value)
    # A status on a day nobody can read would be lost: such a time is invalid too.
    day = domain.sampling_day(parsed, tz) if parsed is not None else None
    if day is None:
        flags.append(f"invalid_{name}")
        return None, None
    return parsed, day


def _number(value: str | None, name: str, flags: list[str], parse: Any) -> Any:
    if value is None:
        return None
    number = parse(value)
    if number is None:
        flags.append(f"invalid_{name}")
    return number


def _missing_flags(
    values: dict[str, str | None], required: tuple[str, ...], invalid: set[str]
) -> list[str]:
    return [f"missing_{n}" for n in required if values[n] is None and n not in invalid]


def _id_number(id_type: str | None, value: str | None, flags: list[str]) -> str | None:
    """Upper-cased; a 15-digit first-generation resident ID becomes its 18-digit form (the same
    person), flagged `legacy_id_15`; a resident ID that is still not valid is flagged."""
    if value is None:
        return None
    id_number = value.upper()
    if id_type == "resident_id":
        upgraded = domain.legacy_resident_id(id_number)
        if upgraded is not None:
            flags.append("legacy_id_15")
            id_number = upgraded
        elif not domain.resident_id_valid(id_number):
            flags.append("invalid_id_number")
    return id_number


def _person(secret: str, key: str, id_type: str | None, id_number: str | None) -> dict[str, Any]:
    """The (:Person) a record names: its opaque id, and the ID it was derived from."""
    return {
        "person_id": domain.person_id(secret, key),
        "id_type": id_type,
        "id_number": id_number,
        "registered_district_code": domain.registered_district_code(id_type, id_number),
    }


def transform_registration(
    record: dict[str, Any],
    source: str,
    line: int | None,
    *,
    tz: str,
    secret: str,
    sender: str = "file",
    now: datetime | None = None,
) -> Row | Quarantined:
    """`now`: the clock the future is judged by (default: the server's)."""
    content = _canonical(record, REGISTRATION_FIELDS)
    raw = domain.canonical_json(content)
    v, invalid = _clean(record, REGISTRATION_FIELDS)
    tube_code = v["tube_code"]
    if tube_code is None:
        reason = (
            "tube_code is not a text value"
            if "tube_code" in invalid
            else "no tube_code: a registration must name the tube the swab went into"
        )
        return Quarantined("registrations", source, line, "tube_code", reason, raw)
    digest = domain.record_digest(content)
    flags = _missing_flags(v, REGISTRATION_REQUIRED, invalid)
    flags += [f"invalid_{n}" for n in sorted(invalid)]
    record_id = v["record_id"] or f"h:{digest[:32]}"
    reg_key = domain.registration_key(sender, record_id)

    collected_at, day = _timestamp(v["collected_at"], "collected_at", flags, tz)
    if collected_at is not None and domain.from_the_future(collected_at, now):
        # A swab cannot be taken later than now: the time is invalid, as one that cannot be
        # read (it would rank as the person's latest sample for good).
        flags.append("invalid_collected_at")
        collected_at, day = None, None
    pool_size = _number(v["pool_size"], "pool_size", flags, _int)
    if v["method"] is not None and v["method"] not in domain.METHODS:
        flags.append("invalid_method")
    id_type = v["id_type"]
    if id_type is not None and id_type not in domain.ID_TYPES:
        flags.append("invalid_id_type")
    id_number = _id_number(id_type, v["id_number"], flags)
    phone = v["phone"]
    if phone is None:
        flags.append("missing_phone")
    elif domain.phone_valid(phone):
        phone = domain.normalise_phone(phone)
    else:
        flags.append("invalid_phone")

    key = domain.person_key(id_type, id_number, reg_key)
    person = _person(secret, key, id_type, id_number)
    props: dict[str, Any] = {
        "reg_key": reg_key,  # `sender/record_id`: the sender is not kept apart
        "record_id": record_id,
        "collected_at": collected_at,
        "day": day,
        # The compound, box and tube codes and the id_type are not kept on the node: its
        # relationships and its person say them (engine/model.py; `links` below).
        "pool_size": pool_size,
        "method": domain.method_stored(v["method"]),
        "name": v["name"],
        "phone": phone,
        "registered_address": v["registered_address"],
        "collector_id": v["collector_id"],
        "flags": sorted(set(flags)),
        "content_hash": digest,
        # Its line only when a value could not be kept as sent (`invalid_*`): the evidence.
        # Otherwise none: the line is the largest thing a registration would keep (three
        # records of the string store); a conflict shows it rebuilt (`stored_version`).
        "raw": evidence(raw, flags),
    }
    return Row(
        "registrations",
        reg_key,
        digest,
        raw,
        props,
        sorted(set(flags)),
        {
            "person": person,
            "tube_code": tube_code,
            "box_code": v["box_code"],
            "compound_code": v["compound_code"],
            "day": day,
        },
    )


def transform_result(
    record: dict[str, Any], source: str, line: int | None, *, tz: str, now: datetime | None = None
) -> Row | Quarantined:
    content = _canonical(record, RESULT_FIELDS)
    raw = domain.canonical_json(content)
    v, invalid = _clean(record, RESULT_FIELDS)
    tube_code = v["tube_code"]
    if tube_code is None:
        return Quarantined(
            "results", source, line, "tube_code", "no tube_code: a result must name its tube", raw
        )
    digest = domain.record_digest(content)
    flags = _missing_flags(v, RESULT_REQUIRED, invalid)
    flags += [f"invalid_{n}" for n in sorted(invalid)]
    result = v["result"].lower() if v["result"] else None
    if result is not None and result not in domain.RESULTS:
        flags.append("invalid_result")
    reported_at, day = _timestamp(v["reported_at"], "reported_at", flags, tz)
    if reported_at is not None and domain.from_the_future(reported_at, now):
        # Kept as the lab wrote it, but never the tube's latest result (cypher/trace.cypher).
        flags.append("future_reported_at")
    ct_value = _number(v["ct_value"], "ct_value", flags, _float)
    stamp = reported_at.isoformat() if reported_at is not None else v["reported_at"]
    key = domain.content_hash(
        {"tube_code": tube_code, "lab_code": v["lab_code"], "reported_at": stamp}
    )[:32]
    props: dict[str, Any] = {
        "result_key": key,
        "tube_code": tube_code,
        "result": result,
        "reported_at": reported_at,
        "day": day,
        "lab_code": v["lab_code"],
        "ct_value": ct_value,
        "flags": sorted(set(flags)),
        "content_hash": digest,
        "raw": evidence(raw, flags),  # as for registrations
    }
    return Row("results", key, digest, raw, props, sorted(set(flags)), {"tube_code": tube_code})


def transform_compound(record: dict[str, Any], source: str, line: int | None) -> Row | Quarantined:
    content = _canonical(record, COMPOUND_FIELDS)
    raw = domain.canonical_json(content)
    v, invalid = _clean(record, COMPOUND_FIELDS)
    code = v["compound_code"]
    if code is None:
        return Quarantined(
            "compounds",
            source,
            line,
            "compound_code",
            "no compound_code: a compound needs its key",
            raw,
        )
    digest = domain.record_digest(content)
    flags = _missing_flags(v, COMPOUND_REQUIRED, invalid)
    flags += [f"invalid_{n}" for n in sorted(invalid)]
    district = v["district_code"]
    if district is not None:
        if not (len(district) == 6 and district.isascii() and district.isdigit()):
            flags.append("invalid_district_code")
            district = None
        else:
            district = domain.present_district(district)
    coords: dict[str, float | None] = {}
    for axis, limit in (("lat", 90.0), ("lon", 180.0)):
        value = v[axis]
        number = _float(value) if value is not None else None
        if value is not None and (number is None or abs(number) > limit):
            flags.append(f"invalid_{axis}")
            number = None
        coords[axis] = number
    contact_phone = v["contact_phone"]
    if contact_phone is not None:
        if domain.contact_phone_valid(contact_phone):
            contact_phone = domain.normalise_phone(contact_phone)
        else:
            flags.append("invalid_contact_phone")
            contact_phone = None
    props: dict[str, Any] = {
        "code": code,
        "name": v["name"],
        "address": v["address"],
        "district_code": district,
        "subdistrict": v["subdistrict"],
        "lat": coords["lat"],
        "lon": coords["lon"],
        "contact_phone": contact_phone,
        "flags": sorted(set(flags)),
        "content_hash": digest,
        "raw": raw,
        "known": True,
    }
    return Row("compounds", code, digest, raw, props, sorted(set(flags)))


def transform_directory(
    record: dict[str, Any],
    source: str,
    line: int | None,
    *,
    secret: str,
    now: datetime | None = None,
) -> Row | Quarantined:
    """A population-directory entry: who else can reach a person, and where they live. Keyed by
    (person, source, phone); for the same key the latest `updated_at` wins, never one from the
    future (later than `now`, default the server's clock, plus the skew): that is flagged
    `future_updated_at` and ranks as if it had no date."""
    content = _canonical(record, DIRECTORY_FIELDS)
    raw = domain.canonical_json(content)
    v, invalid = _clean(record, DIRECTORY_FIELDS)
    flags = _missing_flags(v, DIRECTORY_REQUIRED, invalid)
    flags += [f"invalid_{n}" for n in sorted(invalid)]
    id_type = v["id_type"]
    if id_type is not None and id_type not in domain.ID_TYPES:
        flags.append("invalid_id_type")
    id_number = _id_number(id_type, v["id_number"], flags)
    if id_number is None:
        return Quarantined(
            "directory",
            source,
            line,
            "id_number",
            "no id_number: a directory entry must name the person it is about",
            raw,
        )
    phone = v["phone"]
    usable = False
    if phone is not None:
        if domain.phone_valid(phone):
            phone = domain.normalise_phone(phone)
            usable = True
        else:
            flags.append("invalid_phone")
    owner = v["phone_owner"] or "self"
    if owner not in PHONE_OWNERS:
        flags.append("invalid_phone_owner")
    updated_at = domain.parse_timestamp(v["updated_at"]) if v["updated_at"] else None
    if updated_at is not None and not domain.plausible_time(updated_at):
        updated_at = None  # the calendar's edges and 9999 would win over every later entry
    if v["updated_at"] is not None and updated_at is None:
        flags.append("invalid_updated_at")
    if updated_at is not None and domain.from_the_future(updated_at, now):
        flags.append("future_updated_at")
    key = domain.person_key(id_type, id_number, "")
    entry_source = v["source"]
    entry_key = domain.content_hash({"person": key, "source": entry_source, "phone": phone})[:32]
    digest = domain.record_digest(content)
    person = _person(secret, key, id_type, id_number)
    props: dict[str, Any] = {
        "entry_key": entry_key,
        "person_id": person["person_id"],
        "name": v["name"],
        "phone": phone,
        "usable": usable,
        "phone_owner": owner,
        "residence_compound_code": v["residence_compound_code"],
        "source": entry_source,
        "updated_at": updated_at,
        "flags": sorted(set(flags)),
        "content_hash": digest,
        "raw": raw,
        "file": source,
        "line": line,
    }
    return Row(
        "directory",
        entry_key,
        digest,
        raw,
        props,
        sorted(set(flags)),
        {"person": person, "compound_code": v["residence_compound_code"]},
    )


class Verdict(NamedTuple):
    """What the duplicate/conflict rule says of one record."""

    status: str  # stored, duplicate, updated or conflict
    quarantined: Quarantined | None = None
    reason: str | None = None


def stored_version(answer: Mapping[str, Any]) -> str | None:
    """The first version of a record, for a conflict's `existing`: the line as it came when
    the record kept it (`raw`: compounds, directory entries, records stored before), else the
    record rebuilt from what is stored (registrations, results: the merge query's `stored`),
    its contract fields as tubetrace holds them (times with their offset, phones normalised)."""
    raw: str | None = answer.get("raw")
    stored: Mapping[str, Any] | None = answer.get("stored")
    if raw is not None or not stored:
        return raw
    fields = dict(stored)
    if "method" in fields:  # a flagged method keeps its line: a code here is a known one
        fields["method"] = domain.method_read(fields["method"])
    return domain.canonical_json(
        {
            name: value if isinstance(value, str | int | float) else domain.iso(value)
            for name, value in fields.items()
            if value is not None
        }
    )


# The kinds whose records keep no `raw` line, and the fields a conflict shows of them instead
# (as the merge queries' `stored` projects them: cypher/ingest.cypher).
REBUILT_FIELDS = {"registrations": REGISTRATION_FIELDS, "results": RESULT_FIELDS}


def evidence(raw: str, flags: list[str]) -> str | None:
    """The line a registration or result keeps: only when a value of it was invalid (an
    unreadable or future time, a pool size that is no number, a value that is no text), since
    its field then holds nothing or not what was sent; the line is the evidence (a few
    records in a hundred)."""
    return raw if any(f.startswith("invalid_") for f in flags) else None


def first_version(row: Row) -> str:
    """A conflict's `existing` when its first version is still in hand (earlier in the same
    batch or import file): what `stored_version` will rebuild of it once stored, so that a
    conflict reads the same whichever batch its first version came in; the line as sent for
    the kinds that keep it."""
    fields = REBUILT_FIELDS.get(row.kind)
    if fields is None or row.props.get("raw") is not None:  # a kept line is shown as kept
        return row.raw
    person = row.links.get("person", {})
    # What the node does not keep, from where the stored version reads it (its person, its
    # tube, box and compound: cypher/ingest.cypher).
    values = (
        row.props
        | {k: row.links.get(k) for k in ("tube_code", "box_code", "compound_code")}
        | {"id_type": person.get("id_type"), "id_number": person.get("id_number")}
    )
    return stored_version({"stored": {name: values.get(name) for name in fields}}) or row.raw


def judge(
    row: Row,
    source: str,
    line: int | None,
    first_hash: str | None,
    first_raw: str | None,
    *,
    newer: bool | None = None,
) -> Verdict:
    """The duplicate/conflict rule, for the online loader (within a batch and against the
    database) and the bulk import alike. The first version of a key wins; the same content
    again is a `duplicate`. An updatable kind with new content is `updated` (a directory entry
    only when it is `newer`, as the database decides; within a batch it is passed on to it).
    Any other record with new content is a `conflict`, quarantined with both versions side by
    side, its field naming the contract's key."""
    if first_hash is None:
        return Verdict("stored")
    if domain.same_digest(first_hash, row.content_hash):
        return Verdict("duplicate")
    kind = RecordKind(row.kind)
    if kind in UPDATABLE:
        if newer is False:
            return Verdict("duplicate", None, "an entry with a later updated_at is kept")
        return Verdict("updated")
    q = Quarantined(
        row.kind,
        source,
        line,
        ", ".join(KEY_FIELDS[kind]),
        f"conflict: {row.key} was already received with different content; "
        "the first version is kept",
        row.raw,
        first_raw,
    )
    return Verdict("conflict", q, q.reason)
