"""Prometheus metrics (`GET /metrics`, roles ops and admin).

Per process: requests and their latency by route template, method and status, counted by the
request middleware (api.observe). With several workers (`tubetrace serve --workers N` sets
`PROMETHEUS_MULTIPROC_DIR`) each worker writes its counts to that folder and the worker that
answers a scrape adds them all up. From the database (engine.ops.gauges), read at most every
`TUBETRACE_METRICS_CACHE` seconds whatever the number of scrapers: records and quarantine by
kind, open and overdue tasks by district, the outbox and webhook deliveries; and whether the
database answers and this process's breaker is open. Labels are route templates, methods,
statuses, kinds, district codes and webhook ids: never a path, a name or an ID number."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from engine.errors import DatabaseUnavailable
from engine.ops import gauges
from engine.settings import Settings
from engine.store.gateway import Gateway

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Request metrics live in their own registry: the app can be made many times in a process
# (tests), the counters once.
HTTP = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "tubetrace_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=HTTP,
)
LATENCY = Histogram(
    "tubetrace_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ["route", "method", "status"],
    buckets=BUCKETS,
    registry=HTTP,
)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    code = str(status)
    REQUESTS.labels(route, method, code).inc()
    LATENCY.labels(route, method, code).observe(seconds)


class DatabaseCollector(Collector):
    """The database's gauges, refreshed at most every `cache_s` seconds (one refresh at a
    time; a scrape meanwhile gets the last reading)."""

    def __init__(self, gw: Gateway, cache_s: float) -> None:
        self.gw = gw
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._snap: gauges.Snapshot | None = None
        self._up = 0.0

    def refresh(self) -> None:
        with self._lock:
            if self._snap is not None and time.time() - self._snap.at < self.cache_s:
                return
            try:
                self._snap = gauges.snapshot(self.gw)
                self._up = 1.0
            except DatabaseUnavailable:
                self._snap, self._up = None, 0.0

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield _gauge(
            "tubetrace_database_up", "1 when the database answered the last reading.", self._up
        )
        yield _gauge(
            "tubetrace_database_breaker_open",
            "1 while this process's gateway answers 'unavailable' at once after an outage.",
            1.0 if self.gw.breaker.is_open() else 0.0,
        )
        snap = self._snap
        if snap is None:
            return
        yield _gauge(
            "tubetrace_metrics_database_seconds",
            "What the last reading of the database's gauges took.",
            snap.took_s,
        )
        yield _gauge(
            "tubetrace_metrics_age_seconds",
            "Age of the database reading served (cached for TUBETRACE_METRICS_CACHE).",
            max(0.0, time.time() - snap.at),
        )
        yield _by(
            "tubetrace_records",
            "Records stored, by kind.",
            ["kind"],
            {(k,): v for k, v in snap.records.items()},
        )
        yield _by(
            "tubetrace_quarantined_records",
            "Quarantined lines, by record kind.",
            ["kind"],
            {(k,): v for k, v in snap.quarantined.items()},
        )
        yield _by(
            "tubetrace_tasks_open",
            "Open follow-up tasks, by district and status.",
            ["district", "status"],
            snap.tasks_open,
        )
        yield _by(
            "tubetrace_tasks_overdue",
            "Open tasks older than 24 hours (overdue), by district.",
            ["district"],
            {(k,): v for k, v in snap.tasks_overdue.items()},
        )
        yield _gauge(
            "tubetrace_outbox_events",
            "Events written to the outbox (the newest seq).",
            snap.events_head,
        )
        yield _gauge(
            "tubetrace_outbox_fanout_lag_events",
            "Events the slowest webhook subscription has not fanned out yet.",
            snap.fanout_lag,
        )
        yield _gauge(
            "tubetrace_outbox_oldest_undelivered_age_seconds",
            "Age of the oldest event not yet delivered to a subscription (0 when none).",
            snap.oldest_undelivered_age_s,
        )
        yield _by(
            "tubetrace_webhook_deliveries",
            "Webhook deliveries pending or failed (given up after the retry window).",
            ["status"],
            {(k,): v for k, v in snap.deliveries.items()},
        )
        yield _gauge(
            "tubetrace_webhook_deliveries_retrying",
            "Pending deliveries whose earlier attempts failed.",
            snap.retrying,
        )
        yield _by(
            "tubetrace_webhook_consecutive_failures",
            "Failed attempts in a row, by webhook subscription.",
            ["webhook_id"],
            {(k,): v for k, v in snap.webhook_failures.items()},
        )
        yield _gauge(
            "tubetrace_webhook_subscriptions", "Webhook subscriptions.", snap.subscriptions
        )
        yield _gauge(
            "tubetrace_webhook_subscriptions_parked",
            "Subscriptions whose endpoint the breaker parked.",
            snap.webhooks_parked,
        )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _by(
    name: str, doc: str, labels: list[str], values: Mapping[tuple[str, ...], int]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


class Metrics:
    """The app's /metrics: the request metrics (of every worker) and the database's."""

    def __init__(self, gw: Gateway, settings: Settings) -> None:
        self.database = DatabaseCollector(gw, settings.metrics_cache_s)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self.database)

    def render(self) -> bytes:
        """The text exposition (blocking: it may read the database)."""
        self.database.refresh()
        if MULTIPROCESS:
            workers = CollectorRegistry()
            multiprocess.MultiProcessCollector(workers)  # type: ignore[no-untyped-call]
            requests = generate_latest(workers)
        else:
            requests = generate_latest(HTTP)
        return requests + generate_latest(self._registry)
