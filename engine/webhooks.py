"""Webhooks to district systems: subscriptions, a delivery log, and the worker that posts
outbox events with Standard Webhooks signatures, at least once, off the request path."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook as Signer

from engine import domain, outbox
from engine.db import Gateway
from engine.errors import DatabaseUnavailable, InputError, NotFound
from engine.settings import Settings

log = logging.getLogger("tubetrace.webhooks")


@dataclass(frozen=True)
class Created:
    webhook_id: str
    secret: str


def add(gw: Gateway, url: str, district: str | None, events: list[str]) -> Created:
    if not re.fullmatch(r"https?://[^\s/$.?#][^\s]*", url):
        raise InputError(f"'{url}' is not an http(s) URL")
    if district is not None and not re.fullmatch(domain.DISTRICT_OR_UNASSIGNED, district):
        raise InputError("--district takes a 6-digit district code or 'unassigned'")
    unknown = [e for e in events if e not in outbox.EVENT_TYPES]
    if unknown or not events:
        raise InputError(
            f"unknown events {unknown}; choose from {', '.join(outbox.EVENT_TYPES)}"
            if unknown
            else "--events needs at least one event type"
        )
    webhook_id = "wh_" + secrets.token_hex(6)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    gw.write(
        "create_webhook",
        webhook_id=webhook_id,
        url=url,
        district_code=district,
        events=sorted(set(events)),
        secret=secret,
        now=datetime.now(UTC),
    )
    return Created(webhook_id, secret)


def list_all(gw: Gateway) -> list[dict[str, Any]]:
    out = []
    for r in gw.read("list_webhooks"):
        w = dict(r["webhook"])
        w.pop("secret", None)
        w["created_at"] = domain.iso(w.get("created_at"))
        out.append(w)
    return out


def remove(gw: Gateway, webhook_id: str) -> None:
    if not gw.write("remove_webhook", webhook_id=webhook_id):
        raise NotFound(f"No webhook with id '{webhook_id}'.")


def _delivery_json(d: dict[str, Any]) -> dict[str, Any]:
    out = {
        k: d.get(k)
        for k in (
            "delivery_id",
            "webhook_id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
        )
    }
    for k in ("created_at", "next_at", "last_attempt_at", "delivered_at"):
        out[k] = domain.iso(d.get(k))
    out["log"] = [json.loads(e) for e in d.get("log") or []]
    return out


def deliveries(gw: Gateway, failed_only: bool = False, page: int = 1000) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = ""
    while True:
        rows = gw.read("list_deliveries", failed_only=failed_only, after=after, limit=page)
        out += [_delivery_json(r["delivery"]) for r in rows]
        if len(rows) < page:
            return out
        after = rows[-1]["delivery"]["delivery_id"]


def redeliver(gw: Gateway, delivery_id: str) -> None:
    if not gw.write("redeliver", delivery_id=delivery_id, now=datetime.now(UTC)):
        raise NotFound(f"No delivery with id '{delivery_id}'.")


def _wanted(event: dict[str, Any], hook: dict[str, Any]) -> bool:
    if event["type"] not in hook["events"]:
        return False
    # A status change of a person with no known residence district is an `unassigned` one.
    district = event.get("district_code") or domain.UNASSIGNED
    return hook["district_code"] is None or district == hook["district_code"]


def delivery_rows(hook: dict[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The deliveries `create_deliveries` makes of these events for this subscription: one per
    event it wants, its id fixed by (event, subscription)."""
    return [
        {
            "delivery_id": f"dl_{e['seq']:012d}_{hook['webhook_id'][3:]}",
            "event_seq": e["seq"],
            "event_id": e["event_id"],
            "event_type": e["type"],
        }
        for e in events
        if _wanted(e, hook)
    ]


def fan_out(gw: Gateway, page: int = 5000, max_pages: int = 20) -> int:
    """New outbox events become deliveries of every subscription that wants them."""
    made = 0
    for row in gw.read("list_webhooks"):
        hook = row["webhook"]
        cursor = hook["cursor"]
        for _ in range(max_pages):
            events = [r["event"] for r in gw.read("events_after", after=cursor, limit=page)]
            if not events:
                break
            rows = delivery_rows(hook, events)
            moved = gw.write(
                "create_deliveries",
                webhook_id=hook["webhook_id"],
                expected=cursor,
                cursor=events[-1]["seq"],
                deliveries=rows,
                now=datetime.now(UTC),
            )
            if not moved:  # removed, or another worker moved the cursor meanwhile
                break
            made += len(rows)
            cursor = events[-1]["seq"]
            if len(events) < page:
                break
    return made


def backoff_s(settings: Settings, attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: base, 2 base, 4 base ..."""
    return float(
        min(settings.webhook_backoff_max_s, settings.webhook_backoff_base_s * 2 ** (attempts - 1))
    )


class Worker:
    """Runs inside `tubetrace serve`: fans events out and posts due deliveries, at most
    `webhook_concurrency` at a time, each with a timeout, never on a request's thread."""

    def __init__(self, gw: Gateway, settings: Settings) -> None:
        self.gw = gw
        self.settings = settings
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(
            max_workers=settings.webhook_concurrency, thread_name_prefix="webhook-post"
        )
        self._inflight = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="webhook-worker", daemon=True)
        self._client = httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)

    def start(self) -> Worker:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.settings.webhook_timeout_s + 5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                fan_out(self.gw)
                self._post_due()
            except DatabaseUnavailable as exc:  # an outage is expected: one line, no traceback
                log.warning("webhook worker waits for the database: %s", exc)
            except Exception:  # noqa: BLE001 - the worker outlives a database outage
                log.exception("webhook worker pass failed; retrying")
            self._stop.wait(self.settings.webhook_poll_s)

    def _post_due(self) -> None:
        with self._lock:
            free = self.settings.webhook_concurrency - self._inflight
        if free <= 0:
            return
        now = datetime.now(UTC)
        lease = now + timedelta(seconds=self.settings.webhook_timeout_s + 30)
        claimed = [
            r["delivery"]
            for r in self.gw.write(
                "claim_deliveries",
                now=now,
                lease_until=lease,
                limit=free,
                claim=secrets.token_hex(8),
            )
        ]
        if not claimed:
            return
        hooks = {r["webhook"]["webhook_id"]: r["webhook"] for r in self.gw.read("list_webhooks")}
        events = {
            r["event"]["seq"]: r["event"]
            for r in self.gw.read("events_by_seq", seqs=[d["event_seq"] for d in claimed])
        }
        for d in claimed:
            hook = hooks.get(d["webhook_id"])
            event = events.get(d["event_seq"])
            if hook is None or event is None:
                self._record(d, False, None, "subscription removed", now, final=True)
                continue
            with self._lock:
                self._inflight += 1
            self._pool.submit(self._post, d, hook, event)

    def _post(self, d: dict[str, Any], hook: dict[str, Any], event: dict[str, Any]) -> None:
        try:
            body = json.dumps(outbox.payload(event, hook["district_code"]), ensure_ascii=False)
            at = datetime.now(UTC)
            signature = Signer(hook["secret"]).sign(event["event_id"], at, body)
            headers = {
                "content-type": "application/json",
                "webhook-id": event["event_id"],
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": signature,
            }
            code: int | None = None
            error: str | None = None
            started = time.monotonic()
            try:
                resp = self._client.post(hook["url"], content=body.encode(), headers=headers)
                code = resp.status_code
                if not 200 <= code < 300:
                    error = f"answered {code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
            self._record(d, error is None, code, error, at, time.monotonic() - started)
        except Exception:  # noqa: BLE001 - one delivery never stops the worker
            log.exception("webhook delivery %s failed", d["delivery_id"])
        finally:
            with self._lock:
                self._inflight -= 1

    def _record(
        self,
        d: dict[str, Any],
        ok: bool,
        code: int | None,
        error: str | None,
        at: datetime,
        seconds: float = 0.0,
        *,
        final: bool = False,
    ) -> None:
        attempts = int(d.get("attempts") or 0) + 1
        window: Any = d.get("window_start")
        start: datetime = window.to_native() if window is not None else at
        next_at = at + timedelta(seconds=backoff_s(self.settings, attempts))
        if ok:
            state = "delivered"
        elif final or next_at - start > timedelta(seconds=self.settings.webhook_give_up_s):
            state = "failed"
        else:
            state = "pending"
        entry = json.dumps(
            {"at": at.isoformat(), "status_code": code, "error": error, "ms": int(seconds * 1000)}
        )
        recorded = self.gw.write(
            "record_attempt",
            delivery_id=d["delivery_id"],
            claim=d.get("claim"),
            status=state,
            next_at=next_at,
            entry=entry,
            error=error,
            status_code=code,
            now=at,
        )
        if not recorded:  # redelivered (or removed) while this attempt ran: it goes again
            log.info("delivery %s was redelivered during an attempt", d["delivery_id"])
