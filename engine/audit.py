"""The audit log: every read of personal data and every write, append-only."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.db import Gateway
from engine.keys import Principal

log = logging.getLogger("tubetrace.audit")


def make_entry(
    who: Principal,
    action: str,
    *,
    target: str | None = None,
    person_ids: list[str] | None = None,
    reason: str | None = None,
    status: str = "ok",
    detail: str | None = None,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    # A time-ordered id (ms since epoch, then random) pages the log in order.
    return {
        "audit_id": f"{int(now.timestamp() * 1000):015d}-{uuid.uuid4().hex[:12]}",
        "at": now.isoformat(),
        "key_id": who.key_id,
        "role": who.role,
        "action": action,
        "target": target,
        "person_ids": person_ids or [],
        "reason": reason,
        "status": status,
        "detail": detail,
    }


def record(gw: Gateway, who: Principal, action: str, **fields: Any) -> None:
    """Write one entry now (the CLI)."""
    gw.write("append_audit_batch", entries=[make_entry(who, action, **fields)])


class AuditWriter:
    """The API's audit log: entries queue in memory and are written in batches by one thread,
    at most `interval_s` after the request (a synchronous write per request would cost more
    than the trace itself). `flush()` writes everything queued; it runs before the log is
    read and when the API stops."""

    def __init__(self, gw: Gateway, interval_s: float = 0.2, max_batch: int = 500) -> None:
        self.gw = gw
        self.interval_s = interval_s
        self.max_batch = max_batch
        self._queue: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def record(self, who: Principal, action: str, **fields: Any) -> None:
        with self._lock:
            self._queue.append(make_entry(who, action, **fields))

    def flush(self) -> None:
        with self._flush_lock:
            while True:
                with self._lock:
                    batch, self._queue = (
                        self._queue[: self.max_batch],
                        self._queue[self.max_batch :],
                    )
                if not batch:
                    return
                try:
                    self.gw.write("append_audit_batch", entries=batch)
                except Exception:
                    with self._lock:  # keep them for the next flush; never drop
                        self._queue[:0] = batch
                    log.exception("audit log write failed; %d entries kept queued", len(batch))
                    return

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()


def entries(
    gw: Gateway, *, since: datetime | None, key_id: str | None, after: str = "", limit: int = 500
) -> list[dict[str, Any]]:
    since = since or datetime(1970, 1, 1, tzinfo=UTC)
    rows = gw.read("list_audit", since=since, key_id=key_id, after=after, limit=limit)
    out = []
    for r in rows:
        e = r["entry"]
        e["at"] = e["at"].to_native().isoformat() if e.get("at") else None
        out.append(e)
    return out


def prune(gw: Gateway, retention_days: int) -> int:
    before = datetime.now(UTC) - timedelta(days=retention_days)
    return int(gw.write("prune_audit", before=before)[0]["pruned"])
