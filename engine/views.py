"""What each caller may see: masking and district scoping, decided by the server only."""

from __future__ import annotations

import copy
from typing import Any

from engine.domain import mask_id_number, mask_phone
from engine.errors import NotFound
from engine.keys import Principal


def person_view(person: dict[str, Any], who: Principal, reveal: bool) -> dict[str, Any]:
    p = dict(person)
    if who.is_cli or (who.role == "investigator" and reveal):
        return p
    p["id_number"] = mask_id_number(p["id_number"])
    own = who.role == "district" and (p.get("residence") or {}).get("district_code") == who.district
    if not own:
        p["phone"] = mask_phone(p["phone"])
        if "contacts" in p:
            p["contacts"] = [dict(c, phone=mask_phone(c["phone"])) for c in p["contacts"]]
    return p


def in_district(person: dict[str, Any], district: str | None) -> bool:
    residence = (person.get("residence") or {}).get("district_code")
    return residence == district or (district == "unassigned" and residence is None)


def trace_view(
    trace: dict[str, Any], who: Principal, reveal: bool, not_found: str
) -> dict[str, Any]:
    """A district key sees only its own residents of a tube; a tube with none is absent."""
    t = copy.deepcopy(trace)
    if who.role == "district":
        t["persons"] = [p for p in t["persons"] if in_district(p, who.district)]
        if not t["persons"]:
            raise NotFound(not_found)
    t["persons"] = [person_view(p, who, reveal) for p in t["persons"]]
    return t
