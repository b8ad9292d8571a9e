"""What the database says about the service's state, for /metrics: records stored and
quarantined by kind, open and overdue tasks by district and status, the outbox and the webhook
deliveries. Every figure is a counted query that reads an index or the count store (no scan of
the data per scrape); the caller keeps a snapshot for a few seconds. No personal data: district
codes, statuses, kinds and webhook ids only."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine import domain
from engine.loop.tasks import OVERDUE_AFTER, STATUSES
from engine.store.gateway import Gateway

OPEN = tuple(s for s in STATUSES if s != "closed")


@dataclass
class Snapshot:
    """One reading; `took_s` is what it cost the database (the scrape's cost)."""

    at: float
    took_s: float = 0.0
    records: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    tasks_open: dict[tuple[str, ...], int] = field(default_factory=dict)
    tasks_overdue: dict[str, int] = field(default_factory=dict)
    events_head: int = 0
    subscriptions: int = 0
    fanout_lag: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)
    retrying: int = 0
    oldest_undelivered_age_s: float = 0.0
    webhook_failures: dict[str, int] = field(default_factory=dict)
    webhooks_parked: int = 0


def snapshot(gw: Gateway, now: datetime | None = None) -> Snapshot:
    """Read every gauge (DatabaseUnavailable when the database does not answer)."""
    now = now or datetime.now(UTC)
    start = time.perf_counter()
    snap = Snapshot(at=time.time())
    snap.records = {k: int(v) for k, v in gw.read("metrics_records").row().items()}
    snap.quarantined = {r["kind"]: int(r["n"]) for r in gw.read("metrics_quarantine")}
    for r in gw.read("metrics_tasks_open", open=list(OPEN), overdue_before=now - OVERDUE_AFTER):
        snap.tasks_open[(r["district_code"], r["status"])] = int(r["n"])
        district = r["district_code"]
        snap.tasks_overdue[district] = snap.tasks_overdue.get(district, 0) + int(r["overdue"])
    outbox = gw.read("metrics_outbox").row()
    snap.events_head = int(outbox["head"])
    snap.subscriptions = int(outbox["subscriptions"])
    snap.fanout_lag = int(outbox["lag"])
    oldest: list[datetime] = []
    if outbox["oldest_unfanned_at"]:
        when = domain.parse_timestamp(str(outbox["oldest_unfanned_at"]))
        if when is not None:
            oldest.append(when)
    snap.deliveries = {"pending": 0, "failed": 0}
    for r in gw.read("metrics_deliveries"):
        snap.deliveries[r["status"]] = int(r["n"])
        if r["status"] == "pending":
            snap.retrying = int(r["retrying"])
            if r["oldest"] is not None:
                oldest.append(_native(r["oldest"]))
    if oldest:
        snap.oldest_undelivered_age_s = max(0.0, (now - min(oldest)).total_seconds())
    for r in gw.read("metrics_webhooks"):
        snap.webhook_failures[r["webhook_id"]] = int(r["failures"])
        snap.webhooks_parked += bool(r["parked"])
    snap.took_s = time.perf_counter() - start
    return snap


def _native(value: Any) -> datetime:
    native = value.to_native() if hasattr(value, "to_native") else value
    if isinstance(native, str):
        native = datetime.fromisoformat(native)
    result: datetime = native if native.tzinfo else native.replace(tzinfo=UTC)
    return result
