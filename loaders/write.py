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
from engine.feed import outbox, status
from engine.loop import tasks
from engine.reach import reroute
from engine.settings import Settings
from engine.store.gateway import Gateway
from loaders import transform
from loaders.transform import Quarantined, Row

log = logging.getLogger(__name__)
FATAL_CODES = (
    "Neo.ClientError.Security.Unauthorized",
    "Neo.ClientError.Security.Forbidden",
    "Neo.ClientError.Database.DatabaseNotFound",
)
Item = tuple[int | None, "dict[str, Any] | Quarantined"]

MERGE_QUERY = {
    "registrations": "merge_registrations",
    "results": "merge_results",
    "compounds": "merge_compounds",
    "directory": "merge_directory",
}


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


def make_transform(
    kind: str, settings: Settings, secret: str, sender: str = "file"
) -> Callable[[dict[str, Any], str, int | None], Row | Quarantined]:
    if kind == "registrations":
        return lambda rec, src, ln: transform.transform_registration(
            rec, src, ln, tz=settings.timezone, secret=secret, sender=sender
        )
    if kind == "results":
        return lambda rec, src, ln: transform.transform_result(rec, src, ln, tz=settings.timezone)
    if kind == "compounds":
        return transform.transform_compound
    if kind == "directory":
        return lambda rec, src, ln: transform.transform_directory(rec, src, ln, secret=secret)
    raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(transform.KINDS)}")


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


def _link_registrations(gw: Gateway, tx: ManagedTransaction, rows: list[Row]) -> None:
    """Link new registrations to their tube, person, box and compound: the nodes first, each
    key once (a new person takes the first row's properties), then the relationships."""
    links = [r.links for r in rows]
    persons: dict[str, dict[str, Any]] = {}
    for link in links:
        persons.setdefault(link["person"]["person_id"], link["person"])
    boxes = {link["box_code"] for link in links if link["box_code"] is not None}
    compounds = {link["compound_code"] for link in links if link["compound_code"] is not None}
    filled = {
        (link["box_code"], link["compound_code"], link["day"])
        for link in links
        if link["box_code"] is not None
        and link["compound_code"] is not None
        and link["day"] is not None
    }
    gw.run_in(tx, "merge_tubes", codes=sorted({link["tube_code"] for link in links}))
    gw.run_in(tx, "merge_persons", persons=[persons[k] for k in sorted(persons)])
    if boxes:
        gw.run_in(tx, "merge_boxes", codes=sorted(boxes))
    if compounds:
        gw.run_in(tx, "merge_compound_refs", codes=sorted(compounds))
    gw.run_in(
        tx,
        "link_registrations",
        rows=[
            {
                "key": r.key,
                "tube_code": link["tube_code"],
                "person_id": link["person"]["person_id"],
                "box_code": link["box_code"],
                "compound_code": link["compound_code"],
            }
            for r, link in zip(rows, links, strict=True)
        ],
    )
    if filled:
        gw.run_in(
            tx,
            "merge_filled_at",
            links=[{"box_code": b, "compound_code": c, "day": d} for b, c, d in sorted(filled)],
        )


# The stamp the merge query sets from an ISO string (`datetime(row.at)`): the driver packs a
# Python datetime in Python, about 45 us a value, a third of a registration's whole write.
WIRE_TIME = {"registrations": "collected_at", "results": "reported_at"}


def _wire(kind: str, row: Row) -> dict[str, Any]:
    """What the merge query reads of a row, no more: the driver packs every value it is sent
    (a registration's links and raw copy are not needed to merge it)."""
    props = row.props
    out: dict[str, Any] = {"key": row.key}
    stamp = WIRE_TIME.get(kind)
    if stamp is not None:
        props = dict(props)
        at = props.pop(stamp, None)
        out["at"] = at.isoformat() if isinstance(at, datetime) else None
    out["props"] = props
    if kind in ("results", "directory"):
        out["links"] = row.links
    if kind == "compounds":
        out["raw"] = row.raw
    return out


def _write_batch(
    gw: Gateway,
    kind: str,
    source: str,
    rows: list[tuple[int | None, Row]],
    quarantined: list[Quarantined],
) -> Callable[[ManagedTransaction], list[Outcome]]:
    def work(tx: ManagedTransaction) -> list[Outcome]:
        token = uuid.uuid4().hex
        moved: list[dict[str, Any]] = []
        payload = [_wire(kind, r) for _, r in rows]
        query = MERGE_QUERY[kind]
        answers = _merge_in_waves(gw, tx, query, payload, token)
        created_rows = [r for (_, r), a in zip(rows, answers, strict=True) if a["created"]]
        facts: dict[str, dict[str, Any]] = {}
        if kind == "registrations" and created_rows:
            _link_registrations(gw, tx, created_rows)
            # By their (source, record_id) key: another sender's same record_id is another
            # registration, perhaps of another person.
            moved = reroute.after_registrations(gw, tx, [r.key for r in created_rows])
            new_keys = [r.key for r in created_rows]
            facts = {f["key"]: f for f in gw.run_in(tx, "new_registration_facts", keys=new_keys)}
            for a in answers:
                a["derived_flags"] = facts[a["key"]]["derived_flags"] if a["created"] else []
        outcomes: list[Outcome] = []
        extra_q: list[Quarantined] = []
        for (line, row), answer in zip(rows, answers, strict=True):
            if answer["created"]:
                flags = sorted(set(row.flags) | set(answer.get("derived_flags") or []))
                outcomes.append(Outcome(line, row.key, "stored", flags))
                continue
            v = transform.judge(
                row,
                source,
                line,
                answer["content_hash"],
                answer["raw"],
                # the database's word (null counts as no); within a batch it is not known yet
                newer=bool(answer["newer"]) if "newer" in answer else None,
            )
            if v.quarantined is not None:
                extra_q.append(v.quarantined)
            outcomes.append(Outcome(line, row.key, v.status, row.flags, v.reason))
        created = [o.key for o in outcomes if o.status == "stored" and o.key is not None]
        changes = tasks.TaskChanges()
        result_tubes: list[str] = []
        if kind == "results":
            result_tubes = sorted({str(r.links["tube_code"]) for r in created_rows})
            if result_tubes:  # before the tubes' members are read: see new_registration_facts
                gw.run_in(tx, "lock_tubes", codes=result_tubes)
            changes = tasks.dispatch(gw, tx, created)
        elif kind == "registrations":
            single = [r.key for r in created_rows if r.props["pool_size"] == 1]
            # A tube's results that can move tasks: a positive or invalid one, or a single
            # tube's negative one (a retest registered after its result).
            singles = set(single)
            resulted = [
                k
                for k, f in facts.items()
                if {"positive", "invalid"} & set(f["results"])
                or ("negative" in f["results"] and k in singles)
            ]
            changes = tasks.after_registrations(gw, tx, single, resulted)
        elif kind == "compounds":
            keys = [o.key for o in outcomes if o.key and o.status in ("stored", "updated")]
            moved = reroute.after_compounds(gw, tx, keys)
        elif kind == "directory":
            persons = [a["person_id"] for a in answers if a["created"] or a["newer"]]
            moved = reroute.after_directory(gw, tx, persons)
        changes.updated |= {m["task_id"] for m in moved}
        all_q = quarantined + extra_q
        if all_q:
            gw.run_in(tx, "merge_quarantine", rows=[q.as_props() for q in all_q])
        if kind in ("results", "registrations") or changes.updated:
            # Statuses and events commit with the records that cause them (for compounds and
            # directory entries: the tasks they moved to another district).
            now = datetime.now(UTC)
            if kind == "registrations":
                events = status.after_new_registrations(gw, tx, list(facts.values()), now)
            elif kind == "results":
                events = status.refresh(gw, tx, result_tubes, now)
            else:
                events = []
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
    kind: str,
    source: str,
    rows: list[tuple[int | None, Row]],
    quarantined: list[Quarantined],
) -> list[Outcome]:
    """Write a batch; when the database refuses it, write its halves, down to the one record
    it refuses, which goes to the quarantine with the reason: the others are stored."""
    try:
        return gw.write_tx(_write_batch(gw, kind, source, rows, quarantined))
    except REFUSED as exc:
        if isinstance(exc, neo4j.exceptions.ClientError) and exc.code in FATAL_CODES:
            raise
        if len(rows) > 1:
            half = len(rows) // 2
            return _write_split(gw, kind, source, rows[:half], quarantined) + _write_split(
                gw, kind, source, rows[half:], []
            )
        if not rows:
            raise
        line, row = rows[0]
        log.warning("%s line %s refused by the database: %r", source, line, exc)
        q = Quarantined(
            kind,
            source,
            line,
            None,
            f"the database refused the record ({type(exc).__name__})",
            row.raw,
        )
        gw.write_tx(_write_batch(gw, kind, source, [], [*quarantined, q]))
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
            first.raw if first else None,
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
    needs_secret = kind in ("registrations", "directory")
    transform_one = make_transform(kind, settings, gw.secret() if needs_secret else "", sender)
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
        written = _write_split(gw, kind, source, batch.rows, batch.quarantined)
        for entry in batch.ordered:
            summary.add(written[entry] if isinstance(entry, int) else entry, keep_outcomes)
        if on_batch is not None:
            on_batch(batch.read)
    return summary


def list_quarantine(gw: Gateway, after: str = "", limit: int = 500) -> list[dict[str, Any]]:
    return [r["item"] for r in gw.read("list_quarantine", after=after, limit=limit)]
