"""API keys with roles. Stored as SHA-256 hashes of high-entropy secrets; compared in
constant time. A key is `tt_<key_id>_<secret>`: the id finds the row, the hash proves it."""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

from neo4j.time import DateTime

from engine.codes import check_code, check_district
from engine.contract import Role
from engine.domain import UNASSIGNED
from engine.errors import Forbidden, InputError, NotFound
from engine.store.gateway import Gateway

ROLES = tuple(r.value for r in Role)
_KEY = re.compile(r"^tt_([0-9a-f]{12})_([A-Za-z0-9_\-]{20,})$")


@dataclass(frozen=True)
class Principal:
    """Who is asking: the key's id, role, (for district keys) district and (for lab keys) the
    lab codes it may send results for."""

    key_id: str
    role: str
    district: str | None = None
    labs: tuple[str, ...] = ()

    @property
    def is_cli(self) -> bool:
        return self.key_id == "cli" or self.key_id.startswith("cli:")


CLI = Principal("cli", "admin")


def cli_principal() -> Principal:
    """The machine's own user at the command line: sees data unmasked, audited by name."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return Principal(f"cli:{user}", "admin")


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    secret: str
    role: str
    district: str | None
    labs: tuple[str, ...] = ()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def lab_code(value: object) -> str | None:
    """A lab code as the loader stores it (NFKC, trimmed); None when it is not text."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return unicodedata.normalize("NFKC", str(value)).strip() or None


def _lab_codes(labs: Iterable[str] | None) -> tuple[str, ...]:
    found: list[str] = []
    for value in labs or ():
        for part in value.split(","):
            code = lab_code(part)
            if code is not None and code not in found:
                found.append(check_code(code, "lab code"))
    return tuple(found)


def create_key(
    gw: Gateway,
    *,
    role: str,
    district: str | None,
    label: str | None = None,
    labs: Iterable[str] | None = None,
) -> CreatedKey:
    """A new key. A lab key is bound to the lab codes it may send results for (`--lab`)."""
    if role not in ROLES:
        raise InputError(f"unknown role '{role}'; use one of {', '.join(ROLES)}")
    if role == "district":
        if not district:
            raise InputError(f"a district key needs --district CODE (6 digits, or '{UNASSIGNED}')")
        check_district(district, allow_unassigned=True)
    elif district:
        raise InputError(f"only district keys take --district; a {role} key is not scoped")
    bound = _lab_codes(labs)
    if role == "lab" and not bound:
        raise InputError(
            "a lab key needs --lab CODE[,CODE]: the lab codes whose results it may send"
        )
    if role != "lab" and bound:
        raise InputError(f"only lab keys take --lab; a {role} key sends no results")
    key_id = secrets.token_hex(6)
    secret = f"tt_{key_id}_{secrets.token_urlsafe(32)}"
    gw.write(
        "create_key",
        key_id=key_id,
        hash=_hash(secret),
        role=role,
        district=district,
        label=label,
        labs=list(bound) if role == "lab" else None,
    )
    return CreatedKey(key_id, secret, role, district, bound)


def check_lab_codes(who: Principal, values: Iterable[object]) -> None:
    """A lab key sends results under its own lab codes only: any other (or none) refuses the
    whole request (Forbidden: 403, audited as refused). A lab key made before keys named
    their labs names none, and is refused until it is made again with --lab."""
    if who.role != "lab":
        return
    if not who.labs:
        raise Forbidden(
            "This lab key was made before lab keys named their labs; nothing was stored. "
            "Ask the operator for a new one: tubetrace keys create --role lab --lab CODE."
        )
    others = sorted({str(lab_code(v)) for v in values if lab_code(v) not in who.labs})
    if others:
        shown = ", ".join(o if o != "None" else "(none)" for o in others[:5])
        raise Forbidden(
            f"This key sends results for lab {', '.join(who.labs)} only, not for {shown}; "
            "nothing was stored."
        )


# No key proven: a refusal of a caller whose key is unknown, wrong or absent is audited under
# this (its audit entry has no key id; what the caller typed goes in `claimed_key_id`).
NOBODY = Principal("", "unknown")
_CLAIMED = re.compile(r"[0-9A-Za-z\-]{1,32}")


@dataclass(frozen=True)
class KeyCheck:
    """What a presented key turned out to be. `principal`: a live key whose secret matched
    (None: refused). `verified`: the key when it exists and its secret matched, revoked or not
    (a refusal may name it). `claimed_key_id`: the key id the caller typed, unverified (never
    any of the secret). `why`: ok, malformed, unknown_key, wrong_secret or revoked."""

    principal: Principal | None
    verified: Principal | None
    claimed_key_id: str | None
    why: str


def claimed_key_id(presented: str) -> str | None:
    """The key id part of what a caller typed (`tt_<id>_...`), unverified; None when it does
    not have that shape."""
    parts = presented.strip().split("_")
    if len(parts) >= 3 and parts[0] == "tt" and _CLAIMED.fullmatch(parts[1]):
        return parts[1]
    return None


def check_key(gw: Gateway, presented: str) -> KeyCheck:
    """Look a presented key up: constant-time hash comparison; an unknown key id costs the
    same comparison as a known one."""
    claimed = claimed_key_id(presented)
    m = _KEY.match(presented.strip())
    if not m:
        return KeyCheck(None, None, claimed, "malformed")
    row = gw.read("find_key", key_id=m.group(1)).row_or_none()
    if row is None:
        hmac.compare_digest(_hash(presented), _hash("tt_000000000000_" + "x" * 43))
        return KeyCheck(None, None, claimed, "unknown_key")
    if not hmac.compare_digest(str(row["hash"]), _hash(presented.strip())):
        return KeyCheck(None, None, claimed, "wrong_secret")
    who = Principal(row["key_id"], row["role"], row["district"], tuple(row["labs"] or ()))
    if row["revoked"]:
        return KeyCheck(None, who, claimed, "revoked")
    return KeyCheck(who, who, claimed, "ok")


def authenticate(gw: Gateway, presented: str) -> Principal | None:
    return check_key(gw, presented).principal


class StoredKey(TypedDict):
    """A key as `list_keys` reads it (never its secret's hash)."""

    key_id: str
    role: str
    district: str | None
    labs: list[str] | None
    label: str | None
    created_at: DateTime | None
    revoked_at: DateTime | None


class ShownKey(TypedDict):
    """A key as `keys list` shows it: its times as ISO text."""

    key_id: str
    role: str
    district: str | None
    labs: list[str] | None
    label: str | None
    created_at: str | None
    revoked_at: str | None


def list_keys(gw: Gateway) -> list[StoredKey]:
    return [r["key"] for r in gw.read("list_keys")]


def revoke_key(gw: Gateway, key_id: str) -> None:
    if not gw.write("revoke_key", key_id=key_id):
        raise NotFound(f"No key with id '{key_id}'.")
