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

# The characters no code, id or typed text may hold: controls (Cc), invisible format
# characters (Cf: bidirectional overrides, zero-width, tags), surrogates (Cs), private use
# (Co), line and paragraph separators (Zl, Zp) and every space but U+0020 (Zs). Unicode 14's
# ranges (Python 3.11's `unicodedata`); tests/unit/test_openapi.py checks them against the
# running Python. Written out, so that the API's OpenAPI patterns say the same as the checks.
REFUSED_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Zl", "Zp", "Zs")
REFUSED_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x00A0), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x1680, 0x1680),
    (0x180E, 0x180E), (0x2000, 0x200F), (0x2028, 0x202F), (0x205F, 0x2064), (0x2066, 0x206F),
    (0x3000, 0x3000), (0xD800, 0xF8FF), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001), (0xE0020, 0xE007F), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD),
)  # fmt: skip
LINE_BREAKS = "\t\n\r"  # what a multi-line text (a note) may hold besides


def _class_body(allowed: str = "") -> str:
    """The refused characters as the body of a regex character class, in the syntax Python,
    ECMA-262 (JSON Schema) and Rust read alike: `\\uXXXX` escapes in the BMP, the characters
    themselves beyond it. Surrogates are left out: no UTF-8 text carries one, and the Rust
    engine behind validators cannot name them (the check still refuses them)."""

    def char(cp: int) -> str:
        return f"\\u{cp:04X}" if cp <= 0xFFFF else chr(cp)

    holes = sorted([(ord(c), ord(c)) for c in allowed] + [(0xD800, 0xDFFF)])
    parts = []
    for low, high in REFUSED_RANGES:
        for a, b in _without(low, high, holes):
            parts.append(char(a) if a == b else f"{char(a)}-{char(b)}")
    return "".join(parts)


def _without(low: int, high: int, holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The range [low, high] less the sorted ranges `holes`."""
    out: list[tuple[int, int]] = []
    for hole_low, hole_high in holes:
        if hole_high < low or hole_low > high:
            continue
        if hole_low > low:
            out.append((low, hole_low - 1))
        low = hole_high + 1
    if low <= high:
        out.append((low, high))
    return out


# The OpenAPI patterns of ids and codes (at least one character), of one-line text (a
# reason) and of multi-line text (a note): the same characters `check_code` and `check_text`
# refuse.
CODE_PATTERN = f"^[^{_class_body()}]+$"
TEXT_PATTERN = f"^[^{_class_body()}]*$"
MULTILINE_TEXT_PATTERN = f"^[^{_class_body(LINE_BREAKS)}]*$"
_REFUSED = re.compile(f"[{_class_body()}\\uD800-\\uDFFF]")
_REFUSED_MULTILINE = re.compile(f"[{_class_body(LINE_BREAKS)}\\uD800-\\uDFFF]")


def check_code(value: str, what: str = "code") -> str:
    """At most 64 characters, none refused: no NUL, no control characters, no bidi overrides
    or other invisible format characters, no space but U+0020 (`REFUSED_RANGES`)."""
    if not value:
        raise InputError(f"the {what} is empty")
    if len(value) > MAX_CODE:
        raise InputError(f"the {what} has {len(value)} characters; at most {MAX_CODE} are allowed")
    if _REFUSED.search(value):
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
    if (_REFUSED_MULTILINE if multiline else _REFUSED).search(value):
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
