"""Keys, roles and per-key request rates for the API. The district comes from the key."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine import domain
from engine.access.keys import KeyCheck, Principal, check_key
from engine.store.gateway import Gateway

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer tt_...`")


class RateLimiter:
    """A token bucket per key: `rate` requests a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            return True


class KeyCache:
    """Authenticated keys, remembered for `ttl_s` so that a request costs no key lookup;
    a revoked key stops working within `ttl_s`. Unknown keys are never cached."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def cached(self, presented: str) -> Principal | None:
        """The key when it was authenticated less than `ttl_s` ago (no database call)."""
        with self._lock:
            hit = self._cache.get(presented)
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def check(self, gw: Gateway, presented: str) -> KeyCheck:
        """The key as `keys.check_key` finds it; a live key is remembered for `ttl_s`."""
        now = time.monotonic()
        hit = self.cached(presented)
        if hit is not None:
            return KeyCheck(hit, hit, hit.key_id, "ok")
        check = check_key(gw, presented)
        if check.principal is not None:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[presented] = (check.principal, now + self.ttl_s)
        return check

    def authenticate(self, gw: Gateway, presented: str) -> Principal | None:
        return self.check(gw, presented).principal


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through only keys of the given roles. On the event loop: a
    cached key costs no thread hop; a key not seen for `ttl_s` is looked up in a worker."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise HTTPException(
                401,
                "An API key is required: send 'Authorization: Bearer KEY'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        gw: Gateway = request.app.state.gateway
        keys: KeyCache = request.app.state.key_cache
        limiter: RateLimiter = request.app.state.rate_limiter
        who = keys.cached(credentials.credentials)
        if who is None:
            # A key not known yet costs a database lookup: those are limited per client
            # address, so that guessing keys (or a flood of unknown ones) is slowed down too.
            address = request.client.host if request.client else "unknown"
            if not limiter.allow(f"address:{address}"):
                raise HTTPException(
                    429,
                    "Too many requests with unknown keys from this address; slow down.",
                    headers={"Retry-After": "1"},
                )
            check = await run_in_threadpool(keys.check, gw, credentials.credentials)
            # A refusal's audit entry names the key only if it was proven (api.errors).
            request.state.key_check = check
            who = check.principal
        if who is None:
            raise HTTPException(
                401, "The API key is unknown or revoked.", headers={"WWW-Authenticate": "Bearer"}
            )
        if not limiter.allow(who.key_id):
            raise HTTPException(
                429,
                "Too many requests for this key; slow down and retry.",
                headers={"Retry-After": "1"},
            )
        request.state.principal = who
        if who.role not in roles:
            raise HTTPException(
                403,
                f"{domain.with_article(who.role).capitalize()} key cannot use this endpoint; "
                f"it needs one of: {', '.join(roles)}.",
            )
        return who

    dependency.roles = roles  # type: ignore[attr-defined]
    return dependency
