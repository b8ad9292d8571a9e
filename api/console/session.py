"""Console sessions: in the database (engine.access.sessions), so that every API worker shares them
and a restart keeps them. The browser holds only a random session id (httpOnly,
SameSite=Strict cookie); the API key it logged in with is never stored, here or there."""

from __future__ import annotations

from engine.access.sessions import IDLE_S, MAX_S, Session, Sessions

__all__ = ["IDLE_S", "MAX_S", "Session", "Sessions"]
