"""Codes that name things in paths and keys: tube codes, task and person ids, district codes.
Each check answers a sentence (InputError) instead of letting an odd value through."""

from __future__ import annotations

import re

from engine.domain import UNASSIGNED, district_data
from engine.errors import InputError

MAX_CODE = 64
MAX_TEXT = 512  # the contract's limit on a string value (and on a number's digits)
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"  # a day as every interface takes it: YYYY-MM-DD
_ASCII_DISTRICT = re.compile(r"[0-9]{6}", re.ASCII)


def check_code(value: str, what: str = "code") -> str:
    """At most 64 characters, all printable: no NUL, no control characters, no bidi overrides
    or other invisible format characters (Python's `isprintable` refuses all of them)."""
    if not value:
        raise InputError(f"the {what} is empty")
    if len(value) > MAX_CODE:
        raise InputError(f"the {what} has {len(value)} characters; at most {MAX_CODE} are allowed")
    if not value.isprintable():
        raise InputError(
            f"the {what} holds a control or invisible formatting character; "
            "only printable characters are allowed"
        )
    return value


def check_text(value: str | None, what: str, *, multiline: bool = False) -> str | None:
    """Free text a person types (a note, a reason): no control or invisible format characters
    (NUL, bidi overrides, zero-width), line breaks and tabs allowed where `multiline`. Blank
    text is None: it says nothing."""
    if value is None:
        return None
    allowed = "\n\r\t" if multiline else ""
    if any(not ch.isprintable() and ch not in allowed and ch != " " for ch in value):
        raise InputError(
            f"the {what} holds a control or invisible formatting character; "
            "only printable characters are allowed"
        )
    return value if value.strip() else None


def check_district(value: str, *, allow_unassigned: bool = False) -> str:
    """Six ASCII digits that name a district in the district table (or `unassigned`)."""
    if allow_unassigned and value == UNASSIGNED:
        return value
    if not _ASCII_DISTRICT.fullmatch(value):
        raise InputError(
            f"'{value[:MAX_CODE]}' is not a district code: six ASCII digits, e.g. 310115"
            + (", or 'unassigned'" if allow_unassigned else "")
        )
    if value not in district_data()["current"]:
        raise InputError(f"there is no district {value} in the district table")
    return value
