"""Background work that runs once across every API process of an installation, however many
workers (`tubetrace serve --workers N`) or machines serve it: a lease node in the database, with
an expiry, names the process that runs it.

- The webhook worker runs in the process holding the `webhooks` lease, renewed every `tick_s`
  and good for `lease_s`: when that process stops, another takes the worker over at once (a
  clean stop releases the lease) or after `lease_s` (a crash).
- Daily jobs (the audit log's retention) run in the process that takes their lease first that
  day; the lease lasts 23 hours, so each runs once a day. (The retention purge claims its day's
  run itself: engine.ops.retention.Job.)
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from engine.errors import DatabaseUnavailable
from engine.store.gateway import Gateway

log = logging.getLogger("tubetrace.jobs")

DAILY_LEASE_S = 23 * 3600.0
DAILY_POLL_S = 3600.0


class Closeable(Protocol):
    def close(self) -> None: ...


def holder_id() -> str:
    """This process, as a lease names it."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    def __init__(self, gw: Gateway, name: str, holder: str) -> None:
        self.gw = gw
        self.name = name
        self.holder = holder

    def acquire(self, ttl_s: float) -> bool:
        """Take the lease (free or expired) or renew it (ours) for `ttl_s`; False when another
        process holds it."""
        return self._take("acquire_lease", ttl_s)

    def claim(self, ttl_s: float) -> bool:
        """Take the lease for `ttl_s` only if it is free or expired (never renewed)."""
        return self._take("claim_lease", ttl_s)

    def _take(self, query: str, ttl_s: float) -> bool:
        now = datetime.now(UTC)
        until = now + timedelta(seconds=ttl_s)
        rows = self.gw.write(query, lease=self.name, holder=self.holder, now=now, until=until)
        return bool(rows)

    def release(self) -> None:
        self.gw.write("release_lease", lease=self.name, holder=self.holder, now=datetime.now(UTC))


class Jobs:
    """One thread per process: keeps (or waits for) the leases and runs what they name."""

    def __init__(
        self,
        gw: Gateway,
        *,
        webhooks: Callable[[], Closeable] | None = None,
        daily: dict[str, Callable[[], object]] | None = None,
        tick_s: float = 5.0,
        lease_s: float = 20.0,
        holder: str | None = None,
    ) -> None:
        self.gw = gw
        self.holder = holder or holder_id()
        self.start_webhooks = webhooks
        self.daily = daily or {}
        self.tick_s = tick_s
        self.lease_s = lease_s
        self.worker: Closeable | None = None
        self._webhooks = Lease(gw, "webhooks", self.holder)
        self._next_daily = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)

    def start(self) -> Jobs:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.worker is not None:
            self.worker.close()
            self.worker = None
            try:
                self._webhooks.release()  # the next process takes over at its next tick
            except DatabaseUnavailable:
                pass

    @property
    def runs_webhooks(self) -> bool:
        return self.worker is not None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except DatabaseUnavailable as exc:  # the worker, if any, waits for it by itself
                log.warning("background jobs wait for the database: %s", exc)
            except Exception:  # noqa: BLE001 - the jobs outlive a failed pass
                log.exception("background jobs: a pass failed; retrying")
            self._stop.wait(self.tick_s)

    def tick(self) -> None:
        if self.start_webhooks is not None:
            held = self._webhooks.acquire(self.lease_s)
            if held and self.worker is None:
                log.info("this process runs the webhook worker (lease %s)", self.holder)
                self.worker = self.start_webhooks()
            elif not held and self.worker is not None:
                log.warning("the webhook lease went to another process; stopping this worker")
                self.worker.close()
                self.worker = None
        if self.daily and time.monotonic() >= self._next_daily:
            for name, run in self.daily.items():
                if Lease(self.gw, f"daily:{name}", self.holder).claim(DAILY_LEASE_S):
                    log.info("daily job %s runs in this process", name)
                    run()
            self._next_daily = time.monotonic() + DAILY_POLL_S
