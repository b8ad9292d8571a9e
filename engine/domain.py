"""Pure domain rules: ID numbers (GB 11643), phones, districts (GB/T 2260), timestamps, keys."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any, TypedDict, overload
from zoneinfo import ZoneInfo

from engine.contract import IdType, Method, ResultValue
from engine.errors import InputError

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^0\d{2,3}\d{7,8}$")
ID_TYPES = tuple(t.value for t in IdType)
METHODS = tuple(m.value for m in Method)
# How a registration stores its `method`: a one-digit code takes one property block where the
# name takes two, and a registration one property record less (docs/footprint.md). Fixed for
# good: stored codes never change meaning. A method that is no known one is stored as sent
# (flagged `invalid_method`, its line kept): read back as it is, never decoded.
METHOD_CODES = {"nucleic_code": "1", "id_card": "2", "manual": "3"}
_METHOD_NAMES = {code: name for name, code in METHOD_CODES.items()}
RESULTS = tuple(r.value for r in ResultValue)
# The city-level queue of tasks whose person has no known residence district.
UNASSIGNED = "unassigned"
DISTRICT_OR_UNASSIGNED = rf"\d{{6}}|{UNASSIGNED}"


def method_stored(method: str | None) -> str | None:
    """A registration's method as stored: its code, or the value as sent when it is no
    known method."""
    return None if method is None else METHOD_CODES.get(method, method)


def method_read(stored: Any, flags: Iterable[str] | None = None) -> Any:
    """A stored method as the contract names it: a code decoded, a name stored before codes
    and a value flagged `invalid_method` as they are."""
    if flags is not None and "invalid_method" in flags:
        return stored
    return _METHOD_NAMES.get(stored, stored) if isinstance(stored, str) else stored


def is_pooled(pool_size: int | None) -> bool:
    """A pooled tube (混管) holds several persons' swabs: a declared `pool_size` above 1.
    The Cypher queries spell the same rule `pool_size > 1` (single tube: `pool_size = 1`)."""
    return pool_size is not None and pool_size > 1


def id_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11]


def resident_id_valid(id_number: str) -> bool:
    """GB 11643: 17 digits, a valid birth date, and the check character (lower-case x accepted)."""
    s = id_number.strip().upper()
    if len(s) != 18 or not s[:17].isdigit() or not (s[17].isdigit() or s[17] == "X"):
        return False
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    if born.year < 1880:
        return False
    return id_check_char(s[:17]) == s[17]


def legacy_resident_id(id_number: str) -> str | None:
    """The 18-digit form of a valid 15-digit first-generation ID (area, YYMMDD, sequence):
    `19` before the year and the check character computed; None when it is not one."""
    s = id_number.strip()
    if len(s) != 15 or not s.isdigit():
        return None
    first17 = s[:6] + "19" + s[6:]
    try:
        date(int(first17[6:10]), int(first17[10:12]), int(first17[12:14]))
    except ValueError:
        return None
    return first17 + id_check_char(first17)


def normalise_phone(phone: str) -> str:
    s = re.sub(r"[\s\-]", "", phone)
    if s.startswith("+86"):
        s = s[3:]
    elif s.startswith("0086"):
        s = s[4:]
    return s


def phone_valid(phone: str) -> bool:
    return PHONE_RE.fullmatch(normalise_phone(phone)) is not None


def contact_phone_valid(phone: str) -> bool:
    """A compound's phone (the residents' committee): a mobile, or a landline with its area
    code (`0` + 2-3 digits, then 7-8 digits, e.g. 021-5000 0001)."""
    s = normalise_phone(phone)
    return phone_valid(s) or LANDLINE_RE.fullmatch(s) is not None


class _Former(TypedDict):
    successor: str
    name: str
    until: str


class Districts(TypedDict):
    """engine/data/districts.json: the present districts by code, and the former ones."""

    source: str
    current: dict[str, str]
    historic: dict[str, _Former]


@lru_cache(maxsize=1)
def district_data() -> Districts:
    text = (resources.files("engine") / "data" / "districts.json").read_text(encoding="utf-8")
    data: Districts = json.loads(text)
    return data


def present_district(code: str | None) -> str | None:
    """Map a (possibly historic) area code to its present successor; others are kept as they are."""
    if code is None:
        return None
    historic = district_data()["historic"]
    seen = set()
    while code in historic and code not in seen:
        seen.add(code)
        code = historic[code]["successor"]
    return code


def district_name(code: str | None) -> str | None:
    if code is None:
        return None
    current = district_data()["current"]
    return current.get(code)


def registered_district_code(id_type: str | None, id_number: str | None) -> str | None:
    if id_type != "resident_id" or not id_number or not resident_id_valid(id_number):
        return None
    return present_district(id_number[:6])


def parse_timestamp(value: str) -> datetime | None:
    """ISO 8601 with a UTC offset; anything without an offset is not a valid timestamp here."""
    s = value.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None and dt.utcoffset() is not None else None


# Times a sampling record can carry: outside these years a timestamp is a typo or a default
# value of some device (1900, 2999, the calendar's edges), flagged `invalid_<field>`.
PLAUSIBLE_YEARS = (2000, 2099)
MAX_OFFSET = timedelta(hours=14)
POOL_SIZE_MAX = 1000


# The days tubetrace reports on: the plausible years, whole (a day at the calendar's edges
# cannot have a day after it, nor any swab).
FIRST_DAY = date(PLAUSIBLE_YEARS[0], 1, 1)
LAST_DAY = date(PLAUSIBLE_YEARS[1], 12, 31)


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def parse_day(value: str) -> str:
    """A day a read asks for (YYYY-MM-DD, as the API's pattern: not the other ISO forms
    Python reads, 20220409 or 2022-W14-6), between FIRST_DAY and LAST_DAY."""
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise InputError(f"'{value}' is not a date; use YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InputError(f"{value} is outside {FIRST_DAY} .. {LAST_DAY}; no swab can be on it")
    return day.isoformat()


def plausible_time(dt: datetime) -> bool:
    """Within the plausible years, with a real-world UTC offset in whole minutes (the database
    keeps offsets up to 18 hours; the calendar ends at year 9999)."""
    offset = dt.utcoffset()
    if offset is None or abs(offset) > MAX_OFFSET or offset % timedelta(minutes=1):
        return False
    return PLAUSIBLE_YEARS[0] <= dt.year <= PLAUSIBLE_YEARS[1]


# A time later than the server's now plus this skew (clocks of labs and apps drift) is from
# the future: flagged (`future_reported_at`, `invalid_collected_at`, `future_updated_at`) and
# never ranked as the latest. The queries that rank say the same (`PT10M`).
FUTURE_SKEW = timedelta(minutes=10)


def from_the_future(dt: datetime, now: datetime | None = None) -> bool:
    """Later than `now` (default: the server's clock) plus FUTURE_SKEW."""
    return dt > (now or datetime.now(dt.tzinfo)) + FUTURE_SKEW


def unprintable(ch: str) -> bool:
    """Control, format (bidirectional overrides, zero-width), surrogate and private-use
    characters: they have no place in a name, a code or an address."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co")


def local_day(dt: datetime, tz: str) -> str:
    return dt.astimezone(ZoneInfo(tz)).date().isoformat()


def sampling_day(dt: datetime, tz: str) -> str | None:
    """The local day of a plausible time, when it is a day a read can ask for (`parse_day`'s
    range; 2099-12-31T20:00-02:00 is 2100-01-01 in China): else None."""
    if not plausible_time(dt):
        return None
    day = dt.astimezone(ZoneInfo(tz)).date()
    return day.isoformat() if FIRST_DAY <= day <= LAST_DAY else None


def iso(value: Any) -> str | None:
    """A time as text with the offset it arrived with: a driver or native datetime, or a
    Cypher datetime's `toString()` (queries may read times as text: the driver builds each
    datetime it receives in Python, ~25 us a value), written as Python's `isoformat` writes
    the same moment (`+00:00` for `Z`, a fraction of six digits or none)."""
    if value is None:
        return None
    if not isinstance(value, str):
        native = value.to_native() if hasattr(value, "to_native") else value
        text: str = native.isoformat()
        return text
    if value.endswith("]"):  # a named zone: Python writes only its offset
        value = value[: value.index("[")]
    cypher: str = value[:-1] + "+00:00" if value.endswith("Z") else value
    dot = cypher.find(".", 19)
    if dot < 0:
        return cypher
    end = dot + 1
    while end < len(cypher) and cypher[end].isdigit():
        end += 1
    micro = cypher[dot + 1 : end].ljust(6, "0")[:6]
    return cypher[:dot] + ("" if micro == "000000" else "." + micro) + cypher[end:]


def canonical_json(record: Mapping[str, object]) -> str:
    """Sorted, compact JSON; a lone surrogate (which UTF-8 cannot carry) is written as its
    `\\udXXX` escape, so the text can always be hashed and stored."""
    text = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def content_hash(record: Mapping[str, object]) -> str:
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()


DIGEST_HEX = 32  # a stored record's content digest: 128 bits, short enough to stay inline


def record_digest(record: Mapping[str, object]) -> str:
    """What a stored record keeps of its content's hash: the first 32 hex digits (128 bits; a
    64-digit hash went to the string store, 128 bytes a record, docs/footprint.md). Only two
    versions of one key are ever compared, so 128 bits leave no chance of a false duplicate."""
    return content_hash(record)[:DIGEST_HEX]


def same_digest(stored: str, digest: str) -> bool:
    """Whether a stored digest is this content's: records stored before digests were cut to
    32 digits hold all 64, whose first 32 are the short digest."""
    return stored[:DIGEST_HEX] == digest[:DIGEST_HEX]


SOURCE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def registration_key(sender: str, record_id: str) -> str:
    """A registration is (source, record_id): over the API the source is the sending key's id,
    for files `--source NAME` (default `file`), so one sender never collides with another's
    record ids. A source has no `/`, so the key reads back unambiguously."""
    return f"{sender}/{record_id}"


def person_key(id_type: str | None, id_number: str | None, record_id: str) -> str:
    """A person is (id_type, upper-cased id_number); without a number, the registration alone."""
    if id_number:
        return f"{id_type or 'unknown'}|{id_number.strip().upper()}"
    return f"record|{record_id}"


def person_id(secret: str, key: str) -> str:
    """Opaque and stable: an HMAC of the person key, so an ID number cannot be guessed back."""
    digest = hmac.new(secret.encode(), key.encode("utf-8"), hashlib.sha256).hexdigest()
    return "p_" + digest[:24]


def mask_id_number(value: str | None) -> str | None:
    """At most the last 4 characters of a document number, and fewer of a short one (a
    9-character passport shows 4, a 7-character number 2)."""
    if value is None:
        return None
    shown = min(4, max(0, len(value) - 5))
    return "*" * (len(value) - shown) + value[len(value) - shown :]


@overload
def mask_phone(value: str) -> str: ...
@overload
def mask_phone(value: None) -> None: ...
@overload
def mask_phone(value: str | None) -> str | None: ...
def mask_phone(value: str | None) -> str | None:
    """The operator prefix and the last 4 digits (`138****5678`)."""
    if value is None:
        return None
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str | None) -> str | None:
    """The first character (a family name in Chinese), the rest starred."""
    if value is None:
        return None
    return value[:1] + "*" * max(0, len(value) - 1)


def with_article(word: str) -> str:
    """'an admin', 'a district': the article of an English sentence for a role's name."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word
