"""Webhooks to district systems: subscriptions, a delivery log, and the worker that posts
outbox events with Standard Webhooks signatures, at least once, off the request path."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import ssl
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NotRequired, TypedDict, cast

import httpx
from neo4j import ManagedTransaction
from neo4j.time import DateTime
from standardwebhooks.webhooks import Webhook as Signer

from engine import codes, domain
from engine.contract import DeliveryJSON, WebhookJSON
from engine.errors import DatabaseUnavailable, InputError, NotFound
from engine.feed import outbox
from engine.push import egress
from engine.records import StoredEvent
from engine.settings import Settings
from engine.store.gateway import Gateway

log = logging.getLogger("tubetrace.webhooks")


class Subscription(TypedDict):
    """A subscription as `list_webhooks` reads it, with the events' `head` for a pass."""

    webhook_id: str
    url: str
    district_code: str | None
    events: list[str]
    created_at: DateTime | None
    cursor: int
    secret: str
    failures: int
    parked_until: DateTime | None
    parks: int
    last_error: str | None
    head: NotRequired[int]


class Claimed(TypedDict):
    """A delivery node as `claim_deliveries` hands it out (properties never set are absent)."""

    delivery_id: str
    webhook_id: str
    event_seq: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    claim: NotRequired[str]
    window_start: NotRequired[DateTime]


class NewDelivery(TypedDict):
    """A row of `create_deliveries`."""

    delivery_id: str
    event_seq: int
    event_id: str
    event_type: str


@dataclass(frozen=True)
class Created:
    webhook_id: str
    secret: str


def add(
    gw: Gateway, url: str, district: str | None, events: list[str], *, allow_private: bool = False
) -> Created:
    """A subscription: an http(s) URL with a port in 1-65535 that resolves to public addresses
    only (unless `allow_private`), a district of the district table (or 'unassigned')."""
    egress.check_url(url, allow_private=allow_private)
    if district is not None:
        codes.check_district(district, allow_unassigned=True)
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


def _state(hook: Subscription, now: datetime, threshold: int) -> str:
    """`active`; `parked` until `parked_until`; `probing` (one attempt at a time) after a park."""
    parked = hook.get("parked_until")
    if parked is not None and parked.to_native() > now:
        return "parked"
    return "probing" if int(hook.get("failures") or 0) >= threshold else "active"


def list_all(gw: Gateway, breaker_failures: int = 5) -> list[WebhookJSON]:
    """Subscriptions as shown: never the secret; userinfo in the URL masked; the breaker's
    state (`active`, `parked` until a time, `probing`) and failed attempts in a row."""
    now = datetime.now(UTC)
    out = []
    for r in gw.read("list_webhooks"):
        hook: Subscription = r["webhook"]
        w = cast(WebhookJSON, {k: v for k, v in hook.items() if k != "secret"})
        w["state"] = _state(hook, now, breaker_failures)
        w["url"] = egress.masked(hook["url"])
        w["created_at"] = domain.iso(hook.get("created_at"))
        w["parked_until"] = domain.iso(hook.get("parked_until"))
        w["last_error"] = hook.get("last_error")
        out.append(w)
    return out


def remove(gw: Gateway, webhook_id: str) -> None:
    if not gw.write("remove_webhook", webhook_id=webhook_id):
        raise NotFound(f"No webhook with id '{webhook_id}'.")


def _delivery_json(d: Mapping[str, Any]) -> DeliveryJSON:
    """A delivery node (`list_deliveries`: every property it has) as the log shows it."""
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
    return cast(DeliveryJSON, out)


def deliveries(gw: Gateway, failed_only: bool = False, page: int = 1000) -> list[DeliveryJSON]:
    """The delivery log; each delivery also says until when its endpoint is parked (null when
    it is not), so that a delivery waiting for a parked endpoint is told from a forgotten one."""
    parked: dict[str, DateTime | None] = {
        r["webhook"]["webhook_id"]: r["webhook"].get("parked_until")
        for r in gw.read("list_webhooks")
    }
    now = datetime.now(UTC)
    out: list[DeliveryJSON] = []
    after = ""
    while True:
        rows = gw.read("list_deliveries", failed_only=failed_only, after=after, limit=page)
        for r in rows:
            d = _delivery_json(r["delivery"])
            until = parked.get(d["webhook_id"] or "")
            live = until is not None and until.to_native() > now and d["status"] == "pending"
            d["webhook_parked_until"] = domain.iso(until) if live else None
            out.append(d)
        if len(rows) < page:
            return out
        after = rows[-1]["delivery"]["delivery_id"]


def redeliver(gw: Gateway, delivery_id: str) -> None:
    if not gw.write("redeliver", delivery_id=delivery_id, now=datetime.now(UTC)):
        raise NotFound(f"No delivery with id '{delivery_id}'.")


def _wanted(event: StoredEvent, hook: Subscription) -> bool:
    if event["type"] not in hook["events"]:
        return False
    # A status change of a person with no known residence district is an `unassigned` one.
    district = event.get("district_code") or domain.UNASSIGNED
    return hook["district_code"] is None or district == hook["district_code"]


def delivery_rows(hook: Subscription, events: list[StoredEvent]) -> list[NewDelivery]:
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


Plan = tuple[Subscription, int, list[NewDelivery]]  # subscription, new cursor, deliveries


def _create_deliveries(
    gw: Gateway, plans: list[Plan], now: datetime
) -> list[tuple[Subscription, int, int]]:
    """Each subscription's deliveries and cursor in one transaction: the ones moved."""

    def work(tx: ManagedTransaction) -> list[tuple[Subscription, int, int]]:
        moved = []
        for hook, cursor, rows in plans:
            if gw.run_in(
                tx,
                "create_deliveries",
                webhook_id=hook["webhook_id"],
                expected=hook["cursor"],
                cursor=cursor,
                deliveries=rows,
                now=now,
            ):
                moved.append((hook, cursor, len(rows)))
        return moved

    return gw.write_tx(work, "create_deliveries")


def fan_out(
    gw: Gateway, page: int = 5000, max_pages: int = 20, hooks: list[Subscription] | None = None
) -> int:
    """New outbox events become deliveries of every subscription that wants them: the events
    are read once for all subscriptions behind, and their deliveries written in one
    transaction (a subscription whose cursor another worker moved meanwhile gets none)."""
    made = 0
    if hooks is None:
        hooks = _listed(gw)
    head = max((int(h.get("head", 0)) for h in hooks), default=0)
    behind = [h.copy() for h in hooks if h["cursor"] < head]
    for _ in range(max_pages):
        if not behind:
            break
        events: list[StoredEvent] = [
            r["event"]
            for r in gw.read("events_after", after=min(h["cursor"] for h in behind), limit=page)
        ]
        if not events:
            break
        now = datetime.now(UTC)
        plans: list[Plan] = []
        for hook in behind:
            mine = [e for e in events if e["seq"] > hook["cursor"]]
            if mine:
                plans.append((hook, mine[-1]["seq"], delivery_rows(hook, mine)))

        moved = _create_deliveries(gw, plans, now)
        made += sum(n for _, _, n in moved)
        for hook, cursor, _ in moved:
            hook["cursor"] = cursor
        if len(events) < page:
            break
        # A subscription that was removed, or whose cursor moved meanwhile, is left alone.
        stuck = {h["webhook_id"] for h, _, _ in plans} - {h["webhook_id"] for h, _, _ in moved}
        behind = [h for h in behind if h["cursor"] < head and h["webhook_id"] not in stuck]
    return made


def _listed(gw: Gateway) -> list[Subscription]:
    """Every subscription, each with the number of the last event written (`head`)."""
    return [r["webhook"] | {"head": r["head"]} for r in gw.read("list_webhooks")]


def backoff_s(settings: Settings, attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: base, 2 base, 4 base ..."""
    return float(
        min(settings.webhook_backoff_max_s, settings.webhook_backoff_base_s * 2 ** (attempts - 1))
    )


ANSWER_BYTES = 4096  # of a receiver's answer body, at most this much is read


@dataclass(frozen=True)
class Outcome:
    """One attempt: delivered or not, the status code, why not, a note, how long it took."""

    ok: bool
    code: int | None
    error: str | None
    seconds: float
    note: str | None = None


async def attempt(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    deadline_s: float,
    allow_private: bool,
) -> Outcome:
    """One POST under one wall-clock deadline for all of it (resolve, connect, send, the
    status line, the answer), reading at most ANSWER_BYTES of the answer's body; the
    connection is closed when the body is longer or late. A 2xx status is a delivery even
    when its body is cut."""
    started = time.monotonic()
    code: int | None = None
    note: str | None = None
    try:
        async with asyncio.timeout(deadline_s):
            target = await egress.pinned(url, allow_private=allow_private)
            async with client.stream(
                "POST",
                target.url,
                content=body,
                headers=headers | target.headers,
                extensions=target.extensions,
            ) as resp:
                code = resp.status_code
                read = 0
                async for chunk in resp.aiter_raw():  # raw: no decompression of a bomb
                    read += len(chunk)
                    if read >= ANSWER_BYTES:
                        note = f"answer longer than {ANSWER_BYTES} bytes: not read further"
                        break
        error = None if 200 <= code < 300 else f"answered {code}"
    except TimeoutError:
        if code is not None and 200 <= code < 300:
            error, note = (
                None,
                f"answered {code}; its body was cut at the {deadline_s:g} s deadline",
            )
        else:
            error = f"no complete answer within the {deadline_s:g} s deadline" + (
                f" (status {code})" if code is not None else ""
            )
    except InputError as exc:  # egress.Refused: a private address; or a URL stored before checks
        error = f"refused: {exc}"
    except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
        if code is not None and 200 <= code < 300:  # the body broke off after a 2xx
            error, note = None, f"answered {code}; reading its body failed: {type(exc).__name__}"
        else:
            error = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - started
    if error is not None:
        error = error.replace(url, egress.masked(url))[:300]
    return Outcome(error is None, code, error, seconds, note)


PREFETCH_ROUNDS = 4  # a subscription's lane holds at most this many rounds of its slots


class Room(TypedDict):
    """How many more deliveries a subscription may claim now (`claim_deliveries`)."""

    webhook_id: str
    room: int


class _Parked(TypedDict):
    """A row of `webhook_outcomes`: the time an endpoint is parked until (None: not)."""

    webhook_id: str
    parked: DateTime | None


def rooms(
    hooks: list[Subscription],
    held: dict[str, int],
    settings: Settings,
    now: datetime,
    turn: int,
) -> tuple[list[Room], dict[str, int]]:
    """How many more deliveries each subscription may claim now, and how many it may post at
    once (its width): `per_subscription` at once (one while its endpoint is probed after a
    park; none while it is parked), holding at most PREFETCH_ROUNDS times that, and at most
    `concurrency` held in all, shared out one at a time from a rotating start (round-robin)."""
    free = settings.webhook_concurrency - sum(held.values())
    widths: dict[str, int] = {}
    caps: dict[str, int] = {}
    for hook in hooks:
        state = _state(hook, now, settings.webhook_breaker_failures)
        width = {"parked": 0, "probing": 1}.get(state, settings.webhook_per_subscription)
        widths[hook["webhook_id"]] = width
        cap = width if state == "probing" else width * PREFETCH_ROUNDS
        room = cap - held.get(hook["webhook_id"], 0)
        if room > 0:
            caps[hook["webhook_id"]] = room
    order = list(caps)
    if order:
        turn %= len(order)
        order = order[turn:] + order[:turn]
    given = dict.fromkeys(order, 0)
    while free > 0 and any(given[h] < caps[h] for h in order):
        for h in order:
            if free > 0 and given[h] < caps[h]:
                given[h] += 1
                free -= 1
    return [{"webhook_id": h, "room": n} for h, n in given.items() if n > 0], widths


Due = tuple[Claimed, Subscription, StoredEvent]  # delivery, subscription, event


class _AttemptRow(TypedDict):
    """A row of `record_attempts`."""

    delivery_id: str
    claim: str | None
    status: str
    next_at: datetime
    entry: str
    error: str | None
    status_code: int | None
    now: datetime


class _Breaker(TypedDict):
    """A row of `webhook_outcomes`: an endpoint's attempts in a batch."""

    webhook_id: str
    reset: bool
    failed: int
    error: str | None


@dataclass
class _Lane:
    """One subscription's claimed deliveries in this process, posted by at most `width`
    senders at once, in the order claimed."""

    queue: deque[Due] = field(default_factory=deque)
    sending: int = 0
    width: int = 0

    @property
    def held(self) -> int:
        return len(self.queue) + self.sending


class Worker:
    """Runs inside `tubetrace serve`, never on a request's thread: fans events out and posts
    due deliveries from one asyncio loop in its own thread. Each attempt has one deadline;
    each subscription has its own lane and few slots, so that a slow, failing or backlogged
    endpoint delays nobody else's events; a breaker parks an endpoint that keeps failing."""

    def __init__(self, gw: Gateway, settings: Settings) -> None:
        self.gw = gw
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-worker", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._lanes: dict[str, _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._turn = 0
        # Passes and records each on their own thread: a pass never waits behind records.
        self._passes = ThreadPoolExecutor(1, thread_name_prefix="webhook-pass")
        self._records = ThreadPoolExecutor(1, thread_name_prefix="webhook-record")
        self._outcomes: list[tuple[Claimed, Outcome, datetime]] = []
        self._recording = False

    def start(self) -> Worker:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop already ended
                pass
        self._thread.join(timeout=self.settings.webhook_timeout_s + 5)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._passes.shutdown(wait=False, cancel_futures=True)
            self._records.shutdown(wait=False, cancel_futures=True)

    async def _in(self, pool: ThreadPoolExecutor, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        async with httpx.AsyncClient(
            follow_redirects=False, timeout=self.settings.webhook_timeout_s, limits=limits
        ) as client:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    held = {h: lane.held for h, lane in self._lanes.items() if lane.held}
                    due, widths = await self._in(self._passes, self._due, held)
                    for hook_id, width in widths.items():
                        self._lanes.setdefault(hook_id, _Lane()).width = width
                    for item in due:
                        self._lanes.setdefault(item[0]["webhook_id"], _Lane()).queue.append(item)
                    for hook_id, lane in list(self._lanes.items()):
                        if hook_id not in widths and not lane.held:
                            del self._lanes[hook_id]  # removed
                        while lane.sending < lane.width and len(lane.queue) > lane.sending:
                            lane.sending += 1
                            self._spawn(self._send(client, lane))
                except DatabaseUnavailable as exc:  # an outage is expected: one line
                    log.warning("webhook worker waits for the database: %s", exc)
                except Exception:  # noqa: BLE001 - the worker outlives a database outage
                    log.exception("webhook worker pass failed; retrying")
                try:  # the next pass: after the poll interval, or as soon as a lane empties
                    async with asyncio.timeout(self.settings.webhook_poll_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            # Attempts still running are dropped: their claims lapse and they go again.
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _due(self, held: dict[str, int]) -> tuple[list[Due], dict[str, int]]:
        """New events fanned out, then each subscription's share of its due deliveries claimed,
        with their subscription and event (in a worker thread: the driver blocks)."""
        listed = _listed(self.gw)
        fan_out(self.gw, hooks=listed)
        now = datetime.now(UTC)
        hooks = {h["webhook_id"]: h for h in listed}
        self._turn += 1
        share, widths = rooms(list(hooks.values()), held, self.settings, now, self._turn)
        if not share:
            return [], widths
        # A lane may hold PREFETCH_ROUNDS rounds: the lease outlasts them all.
        lease_s = self.settings.webhook_timeout_s * (PREFETCH_ROUNDS + 1) + 30
        claimed: list[Claimed] = [
            r["delivery"]
            for r in self.gw.write(
                "claim_deliveries",
                hooks=share,
                most=max(s["room"] for s in share),
                now=now,
                lease_until=now + timedelta(seconds=lease_s),
                claim=secrets.token_hex(8),
            )
        ]
        if not claimed:
            return [], widths
        events: dict[int, StoredEvent] = {
            r["event"]["seq"]: r["event"]
            for r in self.gw.read("events_by_seq", seqs=[d["event_seq"] for d in claimed])
        }
        out: list[Due] = []
        for d in claimed:
            hook, event = hooks.get(d["webhook_id"]), events.get(d["event_seq"])
            if hook is None or event is None:
                gone = Outcome(False, None, "subscription removed", 0.0)
                self.gw.write("record_attempts", rows=[self._attempt_row(d, gone, now, True)])
                continue
            out.append((d, hook, event))
        return out, widths

    async def _send(self, client: httpx.AsyncClient, lane: _Lane) -> None:
        """Post the lane's deliveries one after another; outcomes are recorded meanwhile."""
        try:
            while lane.queue and lane.sending <= lane.width and not self._stop.is_set():
                d, hook, event = lane.queue.popleft()
                at = datetime.now(UTC)
                try:
                    outcome = await self._post(client, hook, event, at)
                except Exception:  # noqa: BLE001 - one delivery never stops the worker
                    log.exception("webhook delivery %s failed", d["delivery_id"])
                    continue
                self._outcomes.append((d, outcome, at))
                if not self._recording:
                    self._recording = True
                    self._spawn(self._recorder())
        finally:
            lane.sending -= 1
            self._poke()

    async def _post(
        self, client: httpx.AsyncClient, hook: Subscription, event: StoredEvent, at: datetime
    ) -> Outcome:
        body = json.dumps(outbox.payload(event, hook["district_code"]), ensure_ascii=False)
        signature = Signer(hook["secret"]).sign(event["event_id"], at, body)
        headers = {
            "content-type": "application/json",
            "webhook-id": event["event_id"],
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
        }
        return await attempt(
            client,
            hook["url"],
            body.encode(),
            headers,
            deadline_s=self.settings.webhook_timeout_s,
            allow_private=self.settings.webhook_allow_private,
        )

    async def _recorder(self) -> None:
        """Write the outcomes gathered meanwhile, a batch per transaction; when a batch parked
        an endpoint, hand its lane's claimed deliveries back, due when the park ends."""
        try:
            while self._outcomes:
                batch, self._outcomes = self._outcomes[:500], self._outcomes[500:]
                try:
                    parked = await self._in(self._records, self._record, batch)
                except DatabaseUnavailable as exc:  # the claims lapse; the deliveries go again
                    log.warning("%d webhook outcomes not recorded: %s", len(batch), exc)
                    continue
                except Exception:  # noqa: BLE001 - the worker outlives a failed write
                    log.exception("%d webhook outcomes not recorded", len(batch))
                    continue
                for hook_id, until in parked.items():
                    lane = self._lanes.get(hook_id)
                    if lane is None:
                        continue
                    lane.width = 0
                    back = [
                        {"delivery_id": x[0]["delivery_id"], "claim": x[0]["claim"]}
                        for x in lane.queue
                    ]
                    lane.queue.clear()
                    if back:
                        await self._in(
                            self._records,
                            lambda b=back, u=until: self.gw.write(
                                "release_deliveries", deliveries=b, next_at=u
                            ),
                        )
        finally:
            self._recording = False

    def _attempt_row(
        self, d: Claimed, outcome: Outcome, at: datetime, final: bool = False
    ) -> _AttemptRow:
        """The delivery log's row of one attempt: its state after it and the entry."""
        attempts = int(d.get("attempts") or 0) + 1
        window = d.get("window_start")
        start: datetime = window.to_native() if window is not None else at
        next_at = at + timedelta(seconds=backoff_s(self.settings, attempts))
        if outcome.ok:
            state = "delivered"
        elif final or next_at - start > timedelta(seconds=self.settings.webhook_give_up_s):
            state = "failed"
        else:
            state = "pending"
        entry: dict[str, object] = {
            "at": at.isoformat(),
            "status_code": outcome.code,
            "error": outcome.error,
            "ms": int(outcome.seconds * 1000),
        }
        if outcome.note:
            entry["note"] = outcome.note
        return {
            "delivery_id": d["delivery_id"],
            "claim": d.get("claim"),
            "status": state,
            "next_at": next_at,
            "entry": json.dumps(entry),
            "error": outcome.error,
            "status_code": outcome.code,
            "now": at,
        }

    def _record(self, batch: list[tuple[Claimed, Outcome, datetime]]) -> dict[str, DateTime]:
        """Attempts into the delivery log, then each endpoint's breaker (in the order the
        attempts ended); the endpoints parked by them, with the time each is parked until."""
        rows = [self._attempt_row(d, outcome, at) for d, outcome, at in batch]
        breaker: dict[str, _Breaker] = {}
        for d, outcome, _ in batch:
            b = breaker.setdefault(
                d["webhook_id"],
                {"webhook_id": d["webhook_id"], "reset": False, "failed": 0, "error": None},
            )
            if outcome.ok:
                b["reset"], b["failed"] = True, 0
            else:
                b["failed"], b["error"] = b["failed"] + 1, outcome.error

        def work(tx: ManagedTransaction) -> tuple[set[str], list[_Parked]]:
            recorded = {r["delivery_id"] for r in self.gw.run_in(tx, "record_attempts", rows=rows)}
            answer = self.gw.run_in(
                tx,
                "webhook_outcomes",
                rows=[breaker[k] for k in sorted(breaker)],  # locked in one order
                now=datetime.now(UTC),
                threshold=self.settings.webhook_breaker_failures,
                park_s=self.settings.webhook_park_s,
                park_max_s=self.settings.webhook_backoff_max_s,
            )
            return recorded, cast(list[_Parked], answer)

        recorded, answer = self.gw.write_tx(work, "record_attempts")
        for row in rows:  # redelivered (or removed) while its attempt ran: it goes again
            if row["delivery_id"] not in recorded:
                log.info("delivery %s was redelivered during an attempt", row["delivery_id"])
        return {r["webhook_id"]: r["parked"] for r in answer if r["parked"] is not None}
