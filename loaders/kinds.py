"""One spec per record kind, in one table (`SPECS`): how a record becomes a row, which query
merges it and what that query is sent, and what a batch of it sets off once merged (links,
task changes, re-routing, statuses). The write path (`loaders/write.py`) runs the same steps for
every kind: merge -> link the new rows -> judge the others -> the kind's hook -> quarantine ->
events, and never asks a kind's name. A new kind is a row of `SPECS` (docs/architecture.md,
"How to add a record kind")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from neo4j import ManagedTransaction

from engine.feed import outbox, status
from engine.loop import tasks
from engine.model import RecordKind
from engine.reach import reroute
from engine.settings import Settings
from engine.store.gateway import Gateway
from loaders import transform
from loaders.transform import Quarantined, Row

Transform = Callable[[dict[str, Any], str, int | None], Row | Quarantined]
# The outbox events a batch's statuses make, computed last in the transaction.
StatusEvents = Callable[[datetime], list[outbox.NewEvent]]


@dataclass
class Merged:
    """What one batch's transaction has written so far, handed to its kind's hooks."""

    gw: Gateway
    tx: ManagedTransaction
    new: list[Row]  # the rows that made a new record
    answers: list[dict[str, Any]]  # the merge query's answer for each row of the batch
    kept: list[str]  # keys stored or updated (not duplicates, conflicts or quarantined)
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # per new key, from `link`


@dataclass
class Linked:
    """What linking the new rows found: facts per key (`derived_flags` among them, which join
    the row's own flags) and the open tasks it moved to another district."""

    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    moved: list[reroute.Move] = field(default_factory=list)


@dataclass
class Consequences:
    """What a batch sets off: task changes, tasks moved to another district, and the status
    events (None: the kind changes no status)."""

    changes: tasks.TaskChanges = field(default_factory=tasks.TaskChanges)
    moved: list[reroute.Move] = field(default_factory=list)
    status_events: StatusEvents | None = None


@dataclass(frozen=True)
class KindSpec:
    kind: RecordKind
    # returns `key`, `created`, `content_hash`, `raw` (and `stored` for the kinds that keep no
    # raw line, `newer`) per row: transform.stored_version reads `raw` and `stored`
    merge_query: str
    make_transform: Callable[[Settings, str, str], Transform]  # (settings, secret, sender)
    needs_secret: bool  # the person-id key (records naming a person)
    # What the merge query reads of a row, beyond `key` and `props`: a time sent as ISO text
    # (`at`; the driver packs a Python datetime slowly, ~45 us), the links, the raw copy.
    wire_time: str | None = None
    wire_links: bool = False
    wire_raw: bool = False
    link: Callable[[Gateway, ManagedTransaction, list[Row]], Linked] | None = None
    after: Callable[[Merged], Consequences] = lambda m: Consequences()

    def wire(self, row: Row) -> dict[str, Any]:
        """What the merge query reads of a row, no more: the driver packs every value sent."""
        props = row.props
        out: dict[str, Any] = {"key": row.key}
        if self.wire_time is not None:
            props = dict(props)
            at = props.pop(self.wire_time, None)
            out["at"] = at.isoformat() if isinstance(at, datetime) else None
        out["props"] = props
        if self.wire_links:
            out["links"] = row.links
        if self.wire_raw:
            out["raw"] = row.raw
        return out


# --- registrations -------------------------------------------------------------------------


def _link_registrations(gw: Gateway, tx: ManagedTransaction, rows: list[Row]) -> Linked:
    """Link new registrations to their tube, person, box and compound: the nodes first, each
    key once (a new person takes the first row's properties), then the relationships; re-route
    the person's open tasks, read the new registrations' facts and set the marks they call
    for (`duplicate`, `unplaced`, `last_day`: docs/footprint.md)."""
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
    gw.run_in(tx, "set_tube_pool_days", codes=sorted({link["tube_code"] for link in links}))
    if filled:
        gw.run_in(
            tx,
            "merge_filled_at",
            links=[{"box_code": b, "compound_code": c, "day": d} for b, c, d in sorted(filled)],
        )
    keys = [r.key for r in rows]
    # By their (source, record_id) key: another sender's same record_id is another
    # registration, perhaps of another person.
    moved = reroute.after_registrations(gw, tx, keys)
    facts = {f["key"]: f for f in gw.run_in(tx, "new_registration_facts", keys=keys)}
    # The marks that spare a trace and a later load the person's whole window (docs/footprint.md):
    # set apart, new_registration_facts stays a read without Eager.
    duplicates = sorted({k for f in facts.values() for k in f["duplicates"]})
    if duplicates:
        gw.run_in(tx, "mark_duplicate_registrations", keys=duplicates)
    unplaced = sorted(k for k, f in facts.items() if f["unplaced"])
    if unplaced:
        gw.run_in(tx, "mark_unplaced_persons", reg_keys=unplaced)
    last: dict[str, str] = {}
    for f in facts.values():
        day = f["last_day"]
        if day is not None and day > last.get(f["person_id"], ""):
            last[f["person_id"]] = day
    if last:
        days = [{"person_id": p, "day": d} for p, d in sorted(last.items())]
        gw.run_in(tx, "mark_person_last_days", days=days)
    return Linked(facts, moved)


def _after_registrations(m: Merged) -> Consequences:
    """Retests link to their tasks; a registration that arrives after its tube's result
    (a positive or invalid one, or a single tube's negative) dispatches as the result did."""
    single = [r.key for r in m.new if r.props["pool_size"] == 1]
    singles = set(single)
    resulted = [
        k
        for k, f in m.facts.items()
        if {"positive", "invalid"} & set(f["results"])
        or ("negative" in f["results"] and k in singles)
    ]
    changes = tasks.after_registrations(m.gw, m.tx, single, resulted)
    facts = list(m.facts.values())
    return Consequences(
        changes, [], lambda now: status.after_new_registrations(m.gw, m.tx, facts, now)
    )


# --- results -------------------------------------------------------------------------------


def _after_results(m: Merged) -> Consequences:
    """New results dispatch follow-up and retest tasks; their tubes are locked first, before
    the tubes' members are read (see `new_registration_facts`)."""
    tubes = sorted({str(r.links["tube_code"]) for r in m.new})
    if tubes:
        m.gw.run_in(m.tx, "lock_tubes", codes=tubes)
    changes = tasks.dispatch(m.gw, m.tx, [r.key for r in m.new])
    return Consequences(changes, [], lambda now: status.refresh(m.gw, m.tx, tubes, now))


# --- compounds and directory entries: late data moves open tasks ----------------------------


def _after_compounds(m: Merged) -> Consequences:
    return Consequences(moved=reroute.after_compounds(m.gw, m.tx, m.kept))


def _after_directory(m: Merged) -> Consequences:
    persons = [a["person_id"] for a in m.answers if a["created"] or a["newer"]]
    return Consequences(moved=reroute.after_directory(m.gw, m.tx, persons))


SPECS: dict[str, KindSpec] = {
    spec.kind.value: spec
    for spec in (
        KindSpec(
            RecordKind.COMPOUNDS,
            "merge_compounds",
            lambda settings, secret, sender: transform.transform_compound,
            needs_secret=False,
            wire_raw=True,
            after=_after_compounds,
        ),
        KindSpec(
            RecordKind.REGISTRATIONS,
            "merge_registrations",
            lambda settings, secret, sender: (
                lambda rec, src, ln: transform.transform_registration(
                    rec, src, ln, tz=settings.timezone, secret=secret, sender=sender
                )
            ),
            needs_secret=True,
            wire_time="collected_at",
            link=_link_registrations,
            after=_after_registrations,
        ),
        KindSpec(
            RecordKind.RESULTS,
            "merge_results",
            lambda settings, secret, sender: (
                lambda rec, src, ln: transform.transform_result(rec, src, ln, tz=settings.timezone)
            ),
            needs_secret=False,
            wire_time="reported_at",
            wire_links=True,
            after=_after_results,
        ),
        KindSpec(
            RecordKind.DIRECTORY,
            "merge_directory",
            lambda settings, secret, sender: (
                lambda rec, src, ln: transform.transform_directory(rec, src, ln, secret=secret)
            ),
            needs_secret=True,
            wire_links=True,
            after=_after_directory,
        ),
    )
}


def spec_of(kind: str) -> KindSpec:
    spec = SPECS.get(kind)
    if spec is None:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(SPECS)}")
    return spec
