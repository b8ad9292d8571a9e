"""Web console sessions, kept in the database: every API worker sees the same sessions, a
restart logs nobody out, and a logout (or a revoked key) ends a session on every worker at its
next request.

The browser holds a random session id; the database holds its SHA-256 only (a dump or backup
cannot be turned into a cookie), the session's CSRF token and the key id it logged in with
(never the key itself). A session ends `idle_s` after its last request and, whatever happens,
`max_s` after the login (the absolute lifetime)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.access.keys import Principal
from engine.store.gateway import Gateway

IDLE_S = 30 * 60
MAX_S = 12 * 3600
TOUCH_S = 60.0  # the idle clock is moved at most this often (a write), never more precisely


@dataclass(frozen=True)
class Session:
    sid: str
    who: Principal
    csrf: str
    created_at: datetime
    expires_at: datetime


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


def _native(value: Any) -> datetime:
    native = value.to_native() if hasattr(value, "to_native") else value
    result: datetime = native
    return result


class Sessions:
    def __init__(
        self,
        gw: Gateway,
        idle_s: float = IDLE_S,
        max_s: float = MAX_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.gw = gw
        self.clock = clock
        self.idle = timedelta(seconds=idle_s)
        self.max = timedelta(seconds=max_s)
        self.touch = timedelta(seconds=min(TOUCH_S, idle_s / 10))

    def create(self, who: Principal) -> Session:
        now = self.clock()
        self.gw.write("expire_console_sessions", now=now)
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + self.max
        self.gw.write(
            "create_console_session",
            sid_hash=_hash(sid),
            key_id=who.key_id,
            csrf=csrf,
            now=now,
            idle_until=min(now + self.idle, expires),
            expires_at=expires,
        )
        return Session(sid, who, csrf, now, expires)

    def get(self, sid: str) -> Session | None:
        """The live session of this id with its key as it is now; None (and the session
        ended) when it is unknown, idle too long, past its lifetime or its key is revoked."""
        row = self.gw.read("find_console_session", sid_hash=_hash(sid)).row_or_none()
        if row is None:
            return None
        s = row["session"]
        now = self.clock()
        expires = _native(s["expires_at"])
        if row["revoked"] or now >= expires or now >= _native(s["idle_until"]):
            self.drop(sid)
            return None
        if now - _native(s["last_seen"]) >= self.touch:
            self.gw.write(
                "touch_console_session",
                sid_hash=_hash(sid),
                now=now,
                idle_until=min(now + self.idle, expires),
            )
        who = Principal(str(s["key_id"]), str(row["role"]), row["district"])
        return Session(sid, who, str(s["csrf"]), _native(s["created_at"]), expires)

    def drop(self, sid: str) -> None:
        self.gw.write("end_console_session", sid_hash=_hash(sid))
