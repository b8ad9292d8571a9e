"""Load: transformed records written in batches (one list of rows per query), each batch one
managed write transaction (retried by the driver), idempotent by key.
Outcomes per record and a summary."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import neo4j
from neo4j import ManagedTransaction

from engine import domain
from engine.ahead import read_ahead
from engine.feed import outbox
from engine.settings import Settings
from engine.store.gateway import Gateway
from loaders import transform
from loaders.kinds import KindSpec, Linked, Merged, Transform, spec_of
from loaders.transform import Quarantined, Row

log = logging.getLogger(__name__)
FATAL_CODES = (
    "Neo.ClientError.Security.Unauthorized",
    "Neo.ClientError.Security.Forbidden",
    "Neo.ClientError.Database.DatabaseNotFound",
)
Item = tuple[int | None, "dict[str, Any] | Quarantined"]


@dataclass(frozen=True)
class Outcome:
    line: int | None
    key: str | None
    status: str
    flags: list[str] = field(default_factory=list)
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "key": self.key,
            "status": self.status,
            "flags": self.flags,
            "reason": self.reason,
        }


@dataclass
class Summary:
    kind: str
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    updated: int = 0
    flagged: int = 0
    quarantined: int = 0
    outcomes: list[Outcome] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "read": self.read,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "updated": self.updated,
            "flagged": self.flagged,
            "quarantined": self.quarantined,
        }

    def line(self) -> str:
        return f"{self.kind}: " + ", ".join(f"{k} {v}" for k, v in self.counts().items())

    def add(self, outcome: Outcome, keep: bool) -> None:
        status = outcome.status
        if status == "stored":
            self.stored += 1
        elif status == "duplicate":
            self.duplicates += 1
        elif status == "conflict":
            self.conflicts += 1
            self.quarantined += 1
        elif status == "updated":
            self.updated += 1
        elif status == "quarantined":
            self.quarantined += 1
        if outcome.flags and status in ("stored", "updated"):
            self.flagged += 1
        if keep:
            self.outcomes.append(outcome)


def make_transform(kind: str, settings: Settings, secret: str, sender: str = "file") -> Transform:
    return spec_of(kind).make_transform(settings, secret, sender)


def _batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def _merge_in_waves(
    gw: Gateway, tx: ManagedTransaction, query: str, payload: list[dict[str, Any]], token: str
) -> list[dict[str, Any]]:
    """One query per wave, a key at most once per wave: a compound or directory entry sent
    twice in a batch is merged in order, the second seeing the first (within one query the
    planner may read every row's state before it writes any)."""
    waves: list[list[int]] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(payload):
        n = seen.get(row["key"], 0)
        seen[row["key"]] = n + 1
        if n == len(waves):
            waves.append([])
        waves[n].append(i)
    answers: list[dict[str, Any]] = [{} for _ in payload]
    for wave in waves:
        params: dict[str, Any] = {"rows": [payload[i] for i in wave]}
        if "token" in gw.queries[query].params:
            params["token"] = token
        for i, answer in zip(wave, gw.run_in(tx, query, **params), strict=True):
            answers[i] = answer
    return answers


def _write_batch(
    gw: Gateway,
    spec: KindSpec,
    source: str,
    rows: list[tuple[int | None, Row]],
    quarantined: list[Quarantined],
) -> Callable[[ManagedTransaction], list[Outcome]]:
    """One batch in one transaction, the same steps for every kind: merge, link the new rows,
    judge the others against the stored version, the kind's hook (tasks, re-routing), the
    quarantine, then statuses and task events in the outbox."""

    def work(tx: ManagedTransaction) -> list[Outcome]:
        payload = [spec.wire(r) for _, r in rows]
        answers = _merge_in_waves(gw, tx, spec.merge_query, payload, uuid.uuid4().hex)
        new = [r for (_, r), a in zip(rows, answers, strict=True) if a["created"]]
        linked = spec.link(gw, tx, new) if spec.link is not None and new else Linked()
        outcomes: list[Outcome] = []
        extra_q: list[Quarantined] = []
        for (line, row), answer in zip(rows, answers, strict=True):
            if answer["created"]:
                derived = linked.facts.get(row.key, {}).get("derived_flags") or []
                outcomes.append(Outcome(line, row.key, "stored", sorted({*row.flags, *derived})))
                continue
            v = transform.judge(
                row,
                source,
                line,
                answer["content_hash"],
                transform.stored_version(answer),
                # the database's word (null counts as no); within a batch it is not known yet
                newer=bool(answer["newer"]) if "newer" in answer else None,
            )
            if v.quarantined is not None:
                extra_q.append(v.quarantined)
            outcomes.append(Outcome(line, row.key, v.status, row.flags, v.reason))
        kept = [o.key for o in outcomes if o.key and o.status in ("stored", "updated")]
        then = spec.after(Merged(gw, tx, new, answers, kept, linked.facts))
        moved = linked.moved + then.moved
        changes = then.changes
        changes.updated |= {m["task_id"] for m in moved}
        all_q = quarantined + extra_q
        if all_q:
            gw.run_in(tx, "merge_quarantine", rows=[q.as_props() for q in all_q])
        if then.status_events is not None or changes.updated or changes.created:
            # Statuses and events commit with the records that cause them (for compounds and
            # directory entries: the tasks they moved to another district).
            now = datetime.now(UTC)
            events = then.status_events(now) if then.status_events is not None else []
            events += outbox.task_events(gw, tx, changes.created, changes.updated, now, moves=moved)
            outbox.append(gw, tx, events)
        return outcomes

    return work


def transform_guarded(
    fn: Callable[[dict[str, Any], str, int | None], Row | Quarantined],
    kind: str,
    item: dict[str, Any],
    source: str,
    line: int | None,
) -> Row | Quarantined:
    """The transform's answer; should it fail on a value nobody foresaw, the record goes to the
    quarantine with the reason instead of failing the batch around it."""
    try:
        return fn(item, source, line)
    except Exception as exc:  # noqa: BLE001 - one record must never sink the batch
        log.warning("%s line %s could not be transformed: %r", source, line, exc)
        raw = domain.canonical_json({k: transform.as_content(v) for k, v in item.items()})
        return Quarantined(
            kind, source, line, None, f"could not be read ({type(exc).__name__})", raw
        )


# What a value the database or the driver refuses raises; not an outage (those are retried).
REFUSED = (neo4j.exceptions.ClientError, OverflowError, ValueError, TypeError)


def _write_split(
    gw: Gateway,
    spec: KindSpec,
    source: str,
    rows: list[tuple[int | None, Row]],
    quarantined: list[Quarantined],
) -> list[Outcome]:
    """Write a batch; when the database refuses it, write its halves, down to the one record
    it refuses, which goes to the quarantine with the reason: the others are stored."""
    try:
        return gw.write_tx(_write_batch(gw, spec, source, rows, quarantined))
    except REFUSED as exc:
        if isinstance(exc, neo4j.exceptions.ClientError) and exc.code in FATAL_CODES:
            raise
        if len(rows) > 1:
            half = len(rows) // 2
            return _write_split(gw, spec, source, rows[:half], quarantined) + _write_split(
                gw, spec, source, rows[half:], []
            )
        if not rows:
            raise
        line, row = rows[0]
        log.warning("%s line %s refused by the database: %r", source, line, exc)
        q = Quarantined(
            spec.kind.value,
            source,
            line,
            None,
            f"the database refused the record ({type(exc).__name__})",
            row.raw,
        )
        gw.write_tx(_write_batch(gw, spec, source, [], [*quarantined, q]))
        return [Outcome(line, row.key, "quarantined", row.flags, q.reason)]


@dataclass
class _Prepared:
    """A batch transformed and checked against itself, ready to write."""

    read: int
    rows: list[tuple[int | None, Row]]
    quarantined: list[Quarantined]
    ordered: list[Outcome | int]  # an outcome known already, or an index into `rows`


def _prepare(
    batch: list[Item],
    kind: str,
    source: str,
    transform_one: Callable[[dict[str, Any], str, int | None], Row | Quarantined],
) -> _Prepared:
    out = _Prepared(len(batch), [], [], [])
    seen: dict[str, Row] = {}
    for line, item in batch:
        result = (
            item
            if isinstance(item, Quarantined)
            else transform_guarded(transform_one, kind, item, source, line)
        )
        if isinstance(result, Quarantined):
            out.quarantined.append(result)
            out.ordered.append(Outcome(line, None, "quarantined", [], result.reason))
            continue
        first = seen.get(result.key)
        v = transform.judge(
            result,
            source,
            line,
            first.content_hash if first else None,
            transform.first_version(first) if first else None,
        )
        if v.status in ("stored", "updated"):
            seen[result.key] = result
            out.ordered.append(len(out.rows))
            out.rows.append((line, result))
            continue
        if v.quarantined is not None:
            out.quarantined.append(v.quarantined)
        out.ordered.append(Outcome(line, result.key, v.status, result.flags, v.reason))
    return out


def load_records(
    gw: Gateway,
    kind: str,
    items: Iterable[Item],
    source: str,
    settings: Settings,
    *,
    keep_outcomes: bool = False,
    on_batch: Callable[[int], None] | None = None,
    sender: str = "file",
) -> Summary:
    """Transform and store every item; a bad item never fails the others. `sender` is the
    source that scopes registration record ids (the API key's id, or a file's `--source`)."""
    spec = spec_of(kind)
    transform_one = spec.make_transform(settings, gw.secret() if spec.needs_secret else "", sender)
    summary = Summary(kind)
    prepared: Iterator[_Prepared] = (
        _prepare(batch, kind, source, transform_one)
        for batch in _batches(items, settings.batch_size)
    )
    if not (isinstance(items, list) and len(items) <= settings.batch_size):
        # The next batch is read and transformed while this one is written; a request's one
        # batch needs no thread.
        prepared = read_ahead(prepared, 1, "load-ahead")
    for batch in prepared:
        summary.read += batch.read
        written = _write_split(gw, spec, source, batch.rows, batch.quarantined)
        for entry in batch.ordered:
            summary.add(written[entry] if isinstance(entry, int) else entry, keep_outcomes)
        if on_batch is not None:
            on_batch(batch.read)
    return summary
