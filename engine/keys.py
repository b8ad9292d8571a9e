"""API keys with roles. Stored as SHA-256 hashes of high-entropy secrets; compared in
constant time. A key is `tt_<key_id>_<secret>`: the id finds the row, the hash proves it."""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any

from engine.codes import check_district
from engine.contract import Role
from engine.db import Gateway
from engine.domain import UNASSIGNED
from engine.errors import InputError, NotFound

ROLES = tuple(r.value for r in Role)
_KEY = re.compile(r"^tt_([0-9a-f]{12})_([A-Za-z0-9_\-]{20,})$")


@dataclass(frozen=True)
class Principal:
    """Who is asking: the key's id, role and (for district keys) district."""

    key_id: str
    role: str
    district: str | None = None

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


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    gw: Gateway, *, role: str, district: str | None, label: str | None = None
) -> CreatedKey:
    if role not in ROLES:
        raise InputError(f"unknown role '{role}'; use one of {', '.join(ROLES)}")
    if role == "district":
        if not district:
            raise InputError(f"a district key needs --district CODE (6 digits, or '{UNASSIGNED}')")
        check_district(district, allow_unassigned=True)
    elif district:
        raise InputError(f"only district keys take --district; a {role} key is not scoped")
    key_id = secrets.token_hex(6)
    secret = f"tt_{key_id}_{secrets.token_urlsafe(32)}"
    gw.write(
        "create_key", key_id=key_id, hash=_hash(secret), role=role, district=district, label=label
    )
    return CreatedKey(key_id, secret, role, district)


def authenticate(gw: Gateway, presented: str) -> Principal | None:
    m = _KEY.match(presented.strip())
    if not m:
        return None
    rows = gw.read("find_key", key_id=m.group(1))
    if not rows:
        hmac.compare_digest(_hash(presented), _hash("tt_000000000000_" + "x" * 43))
        return None
    row = rows[0]
    if not hmac.compare_digest(str(row["hash"]), _hash(presented.strip())) or row["revoked"]:
        return None
    return Principal(row["key_id"], row["role"], row["district"])


def list_keys(gw: Gateway) -> list[dict[str, Any]]:
    return [r["key"] for r in gw.read("list_keys")]


def revoke_key(gw: Gateway, key_id: str) -> None:
    if not gw.write("revoke_key", key_id=key_id):
        raise NotFound(f"No key with id '{key_id}'.")
