"""Server-side console sessions: the browser holds only a random session id (httpOnly,
SameSite=Strict cookie); the API key it logged in with is never stored, here or there."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from engine.keys import Principal

IDLE_S = 30 * 60
RECHECK_S = 30.0  # how often a session re-reads its key, so a revoked key ends its sessions


@dataclass
class Session:
    sid: str
    who: Principal
    csrf: str
    last_seen: float
    checked: float = field(default=0.0)


class SessionStore:
    """In the memory of the one `tubetrace serve` process; a restart logs everyone out."""

    def __init__(self, idle_s: float = IDLE_S) -> None:
        self.idle_s = idle_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, who: Principal) -> Session:
        now = time.monotonic()
        s = Session(secrets.token_urlsafe(32), who, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._expire(now)
            self._sessions[s.sid] = s
        return s

    def get(self, sid: str) -> Session | None:
        now = time.monotonic()
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                return None
            if now - s.last_seen > self.idle_s:
                del self._sessions[sid]
                return None
            s.last_seen = now
            return s

    def drop(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    def _expire(self, now: float) -> None:
        for sid in [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_s]:
            del self._sessions[sid]
