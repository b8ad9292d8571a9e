"""Bulk initial import: the same transforms as the online loader, written as
`neo4j-admin database import full` CSV files and imported into an empty database.

The graph equals the online loader's: the same nodes, keys, properties and relationships,
the same first-version-wins rule for conflicts, the same quarantine. Tasks are then created
by the online dispatch code, over every positive and invalid result."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import groupby, islice
from pathlib import Path
from typing import Any, TextIO

from neo4j import ManagedTransaction

from engine import domain
from engine.errors import InputError
from engine.feed import outbox, status
from engine.loop import tasks
from engine.model import NODES, RELATIONSHIPS
from engine.settings import Settings
from engine.store.gateway import Gateway
from loaders import transform
from loaders.transform import Quarantined, Row
from loaders.write import Outcome, Summary, make_transform, transform_guarded

Item = tuple[int | None, "dict[str, Any] | Quarantined"]
ARRAY_DELIMITER = "\x1f"


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


class _Csv:
    """One import file with a typed header; None is written as an empty (unset) field."""

    def __init__(self, path: Path, header: list[str]) -> None:
        # gzip (fast level): a full round's import files are ~30 GB as text, 6 GB compressed,
        # next to a store of ~60 GB on the same disk; neo4j-admin reads them as they are.
        self.fh: TextIO = gzip.open(
            path.with_name(path.name + ".gz"), "wt", compresslevel=1, encoding="utf-8", newline=""
        )
        self.names = _names(header)
        self.writer = csv.writer(self.fh, quoting=csv.QUOTE_MINIMAL)
        self.writer.writerow(header)
        self.rows = 0

    def write(self, values: dict[str, Any]) -> None:
        self.writer.writerow(_cells(self.names, values))
        self.rows += 1

    def write_line(self, text: str) -> None:
        """A line made by `_Line` for this file's header."""
        self.fh.write(text)
        self.rows += 1

    def write_link(self, start: str, end: str, kind: str) -> None:
        """A relationship without properties: the line as the csv writer would write it,
        without its per-cell work when neither id needs quoting (nearly always)."""
        assert len(self.names) == 3, "a relationship file with properties"
        if _NEEDS_QUOTES.search(start) or _NEEDS_QUOTES.search(end):
            self.writer.writerow([start, end, kind])
        else:
            self.fh.write(f"{start},{end},{kind}\r\n")
        self.rows += 1

    def close(self) -> None:
        self.fh.close()


_NEEDS_QUOTES = re.compile('[",\r\n]')


def _names(header: list[str]) -> list[str]:
    return [h[1:].split("(")[0] if h.startswith(":") else h.split(":")[0] for h in header]


def _cells(names: list[str], values: dict[str, Any]) -> list[str]:
    get = values.get
    return [_cell(get(name)) for name in names]


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if type(v) is str:
        return v
    if isinstance(v, list):
        return ARRAY_DELIMITER.join(map(str, v))
    if isinstance(v, bool):
        return "true" if v else "false"
    return _iso(v)


REG_HEADER = NODES["Registration"].import_header()
PERSON_HEADER = NODES["Person"].import_header()
RESULT_HEADER = NODES["Result"].import_header()
COMPOUND_HEADER = NODES["Compound"].import_header()
QUARANTINE_HEADER = NODES["Quarantine"].import_header()
NODE_FILES = (
    "compounds",
    "registrations",
    "persons",
    "results",
    "tubes",
    "boxes",
    "quarantine",
    "meta",
    "person_days",
    "events",
    "sequences",
)


@dataclass
class Plan:
    """What the import writes, with the online loader's summary per kind. `conflicts` are
    quarantined registrations whose first version is read back from the database after the
    import (a round of 26 M registrations cannot keep every first version in memory);
    `status_tubes` are the tubes whose persons' statuses are derived online after the import
    (persons with a registration at an unknown compound: their residence comes from the
    database's fallback rule); `duplicates` the registrations marked duplicate after it."""

    summaries: dict[str, Summary] = field(default_factory=dict)
    conflicts: list[tuple[str, Quarantined]] = field(default_factory=list)
    status_tubes: set[str] = field(default_factory=set)
    # Keys of duplicate registrations (one person in two pooled tubes on one day), marked after
    # the import (online, new_registration_facts finds them, mark_duplicate_registrations marks).
    duplicates: list[str] = field(default_factory=list)


# The transform of the kind being read, set before the worker processes fork.
_WORK: tuple[Callable[[dict[str, Any], str, int | None], Row | Quarantined], str, str] | None = None
CHUNK = 2000
# A registration's import-file lines, made by the worker that transformed it: its node and its
# status input with its person's properties (the main process writes them only if the row is
# stored).
Lines = tuple[str, str]
Transformed = tuple[int | None, "Row | Quarantined", "Lines | None"]


class _Line:
    """One import file's line for a row, as `_Csv.write` writes it."""

    def __init__(self, header: list[str]) -> None:
        self.names = _names(header)
        self.buf = io.StringIO()
        self.writer = csv.writer(self.buf, quoting=csv.QUOTE_MINIMAL)

    def __call__(self, values: dict[str, Any]) -> str:
        self.writer.writerow(_cells(self.names, values))
        text = self.buf.getvalue()
        self.buf.seek(0)
        self.buf.truncate()
        return text


def _registration_lines(row: Row, reg: _Line) -> tuple[Row, Lines]:
    """The lines of a registration, and the row without what only they needed (its
    properties and its person's), so that less goes back to the main process. Its person's
    properties go with its status input: the person's node is written from all its
    registrations (`_write_statuses`: its `last_day`)."""
    p, links = row.props, row.links
    person = links["person"]
    status = STATUS_SEP.join(
        _cell(v)
        for v in (
            person["person_id"],
            p["record_id"],
            p["collected_at"],
            links["tube_code"],
            p["day"],
            p["pool_size"],
            p["name"],
            links["compound_code"],
            person["id_type"],
            person["id_number"],
            person["registered_district_code"],
        )
    )
    lines = (reg({**p, "LABEL": "Registration"}), status + "\n")
    slim = {**links, "person": {"person_id": person["person_id"]}, "pool_size": p["pool_size"]}
    return replace(row, props={}, links=slim), lines


def _transform_chunk(chunk: list[Item]) -> list[Transformed]:
    assert _WORK is not None
    fn, kind, source = _WORK
    reg = _Line(REG_HEADER)
    out: list[Transformed] = []
    for line, item in chunk:
        if isinstance(item, Quarantined):
            out.append((line, item, None))
            continue
        row = transform_guarded(fn, kind, item, source, line)
        if kind == "registrations" and isinstance(row, Row):
            out.append((line, *_registration_lines(row, reg)))
        else:
            out.append((line, row, None))
    return out


def _transformed(
    items: Iterable[Item],
    fn: Callable[[dict[str, Any], str, int | None], Row | Quarantined],
    kind: str,
    source: str,
) -> Iterator[Transformed]:
    """The items transformed in order (as the online loader: a record the transform cannot
    read is quarantined); by worker processes, one per core, while this one reads the file
    and writes the import files."""
    global _WORK
    _WORK = (fn, kind, source)
    source_items = iter(items)
    chunks: Iterator[list[Item]] = iter(lambda: list(islice(source_items, CHUNK)), [])
    workers = os.cpu_count() or 1
    if workers < 2:
        for chunk in chunks:
            yield from _transform_chunk(chunk)
        return
    # A bounded window of chunks in flight (Pool.imap would read the whole file ahead).
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        window: deque[Any] = deque()
        for chunk in chunks:
            window.append(pool.apply_async(_transform_chunk, (chunk,)))
            if len(window) > 2 * workers:
                yield from window.popleft().get()
        while window:
            yield from window.popleft().get()


def _dedupe(
    kind: str,
    source: str,
    items: Iterable[Item],
    transform_one: Callable[[dict[str, Any], str, int | None], Row | Quarantined],
    seen: dict[Any, Any],
    quarantine: dict[str, Quarantined],
    summary: Summary,
    conflicts: list[tuple[str, Quarantined]] | None = None,
) -> Iterator[tuple[Row, Lines | None]]:
    """The online loader's rules: first version wins; a different one is a conflict. With
    `conflicts`, `seen` keeps a 16-byte digest per key instead of the first version, and a
    conflict's first version is looked up after the import."""
    for line, out, lines in _transformed(items, transform_one, kind, source):
        summary.read += 1
        if isinstance(out, Quarantined):
            quarantine.setdefault(out.key, out)
            summary.add(Outcome(line, None, "quarantined"), keep=False)
            continue
        seen_key = out.key if conflicts is None else _digest(out.key)
        first = seen.get(seen_key)
        if conflicts is None:
            verdict = transform.judge(out, source, line, *(first or (None, None)))
        else:
            digest = bytes.fromhex(out.content_hash[:32])
            same = None if first is None else out.content_hash if first == digest else first.hex()
            verdict = transform.judge(out, source, line, same, None)
        status, q = verdict.status, verdict.quarantined
        if status == "updated":
            raise InputError(
                f"bulk import: compound {out.key} appears twice with different "
                "content; load compounds online to update them"
            )
        if status == "stored":
            seen[seen_key] = (
                (out.content_hash, transform.first_version(out)) if conflicts is None else digest
            )
        if q is not None:
            if conflicts is not None and q.existing is None:
                conflicts.append((out.key, q))
            else:
                quarantine.setdefault(q.key, q)
        summary.add(Outcome(line, out.key, status, out.flags), keep=False)
        if status == "stored":
            yield out, lines


def _digest(text: str) -> bytes:
    """16 bytes standing for a key in memory (a collision is a 2^-128 chance per pair)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


STATUS_SEP = "\x1f"


def write_import_files(
    out: Path,
    inputs: dict[str, tuple[str, Iterable[Item]]],
    settings: Settings,
    secret: str,
    sender: str = "file",
) -> Plan:
    """Write node and relationship CSVs for `neo4j-admin database import full`."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    plan = Plan()
    quarantine: dict[str, Quarantined] = {}
    # Membership is kept in dicts of strings and bytes, never in sets: a set is always
    # tracked by the cycle collector, which walks its every entry on each full collection, and
    # full collections come often while chunks of rows are unpickled. A set of 26 M person ids
    # made the import files quadratic (13k rows/s falling to 5k by 15 M rows; unpickling 2,000
    # rows took 18x longer beside a set of 5 M); a dict of atomic values is not tracked.
    districts: dict[str, str | None] = {}  # known compounds
    compound_refs: dict[str, None] = {}
    members: dict[str, int] = {}  # tube -> registrations
    pool_days: dict[str, str] = {}  # tube -> its `pool_day` (engine/model.py), "" for none
    boxes: dict[str, None] = {}
    filled: dict[str, None] = {}  # box, compound and day, joined

    comp = _Csv(out / "compounds.csv", COMPOUND_HEADER)
    if "compounds" in inputs:
        source, items = inputs["compounds"]
        summary = Summary("compounds")
        to_row = make_transform("compounds", settings, secret, sender)
        for row, _ in _dedupe("compounds", source, items, to_row, {}, quarantine, summary):
            comp.write({**row.props, "LABEL": "Compound"})
            districts[row.key] = row.props.get("district_code")
        plan.summaries["compounds"] = summary

    reg = _Csv(out / "registrations.csv", REG_HEADER)
    rel_headers = {t.lower(): r.import_header() for t, r in RELATIONSHIPS.items()}
    rels = {name: _Csv(out / f"rel_{name}.csv", header) for name, header in rel_headers.items()}
    # What each person's status needs, one line per registration, sorted by person later.
    status_in = (out / "status_inputs.txt").open("w", encoding="utf-8")
    if "registrations" in inputs:
        source, items = inputs["registrations"]
        summary = Summary("registrations")
        to_row = make_transform("registrations", settings, secret, sender)
        for row, lines in _dedupe(
            "registrations", source, items, to_row, {}, quarantine, summary, plan.conflicts
        ):
            assert lines is not None
            reg_line, status_line = lines
            reg.write_line(reg_line)
            links = row.links
            person = links["person"]
            tube = links["tube_code"]
            members[tube] = members.get(tube, 0) + 1
            _pool_day(pool_days, tube, links["pool_size"], links["day"])
            rels["into_tube"].write_link(row.key, tube, "INTO_TUBE")
            rels["of_person"].write_link(row.key, person["person_id"], "OF_PERSON")
            if links["box_code"] is not None:
                boxes[links["box_code"]] = None
                rels["in_box"].write_link(row.key, links["box_code"], "IN_BOX")
            if links["compound_code"] is not None:
                compound_refs[links["compound_code"]] = None
                rels["at_compound"].write_link(row.key, links["compound_code"], "AT_COMPOUND")
            if None not in (links["box_code"], links["compound_code"], links["day"]):
                key = (links["box_code"], links["compound_code"], links["day"])
                joined = STATUS_SEP.join(key)
                if joined not in filled:
                    filled[joined] = None
                    rels["filled_at"].write(
                        {"START_ID": key[0], "END_ID": key[1], "day": key[2], "TYPE": "FILLED_AT"}
                    )
            status_in.write(status_line)
        plan.summaries["registrations"] = summary
    status_in.close()

    res = _Csv(out / "results.csv", RESULT_HEADER)
    latest: dict[str, tuple[Any, ...]] = {}  # tube -> its last valid result, as the queries
    was_positive: set[str] = set()  # tubes with a positive result (a pool stays positive)
    if "results" in inputs:
        source, items = inputs["results"]
        summary = Summary("results")
        to_row = make_transform("results", settings, secret, sender)
        for row, _ in _dedupe("results", source, items, to_row, {}, quarantine, summary):
            res.write({**row.props, "LABEL": "Result"})
            tube = row.links["tube_code"]
            members.setdefault(tube, 0)
            rels["for_tube"].write_link(row.key, tube, "FOR_TUBE")
            p = row.props
            if p.get("result") in ("positive", "negative", "invalid"):
                order = _result_order(p.get("reported_at"), p.get("lab_code"), p["flags"])
                if tube not in latest or order >= latest[tube][0]:
                    latest[tube] = (order, p["result"], p.get("reported_at"))
                if p["result"] == "positive":
                    was_positive.add(tube)
        plan.summaries["results"] = summary

    for code in sorted(compound_refs.keys() - districts.keys()):
        comp.write({"code": code, "LABEL": "Compound"})
    tubes = _Csv(out / "tubes.csv", NODES["Tube"].import_header())
    for code in sorted(members):
        tubes.write({"code": code, "pool_day": pool_days.get(code) or None, "LABEL": "Tube"})
    tubes.close()
    del pool_days
    _single(out / "boxes.csv", boxes, "Box")
    q = _Csv(out / "quarantine.csv", QUARANTINE_HEADER)
    now = datetime.now(UTC)
    for item in quarantine.values():
        q.write({**item.as_props(), "at": now, "LABEL": "Quarantine"})
    meta = _Csv(out / "meta.csv", NODES["Meta"].import_header())
    meta.write({"key": "person_id_secret", "value": secret, "LABEL": "Meta"})
    meta.write({"key": TUBE_POOL_DAY_MARK, "value": "set", "LABEL": "Meta"})
    meta.write({"key": DUPLICATE_MARK, "value": "set", "LABEL": "Meta"})
    meta.write({"key": UNPLACED_MARK, "value": "set", "LABEL": "Meta"})
    for f in (comp, reg, res, q, meta, *rels.values()):
        f.close()
    _write_statuses(out, plan, districts, members, latest, was_positive, now, sender)
    return plan


def _result_order(reported_at: Any, lab_code: Any, flags: list[str]) -> tuple[Any, ...]:
    """The status query's `ORDER BY ranked IS NOT NULL, ranked, x.reported_at, x.lab_code`
    (`ranked`: the time unless it is from the future): an undated or future-dated result first
    (never the latest), then by time; a null time or lab code sorts last among equals."""
    ranked = None if "future_reported_at" in flags else reported_at
    oldest = datetime.min.replace(tzinfo=UTC)
    return (
        ranked is not None,
        ranked or oldest,
        reported_at is None,
        reported_at or oldest,
        lab_code is None,
        lab_code or "",
    )


def _write_statuses(
    out: Path,
    plan: Plan,
    districts: dict[str, str | None],
    members: dict[str, int],
    latest: dict[str, tuple[Any, ...]],
    was_positive: set[str],
    now: datetime,
    sender: str,
) -> None:
    """Every person's status per day (engine.feed.status.derive, as the online loader) and its
    `status.changed` event, from the registrations sorted by person. A person with a
    registration at a compound without master data is left to the online refresh after the
    import, which applies the residence fallback. Each person's node is written here, with the
    properties of its first registration in the files (a stable sort) and its `last_day` (the
    latest day of its registrations: cypher/ingest.cypher, new_registration_facts, then reads
    no window for a later day); its duplicate registrations go to `plan.duplicates`."""
    path = out / "status_inputs.txt"
    ordered = out / "status_inputs.sorted.txt"
    subprocess.run(
        [
            "sort",
            "-s",  # stable: a person's lines in the files' order
            "-t",
            STATUS_SEP,
            "-k1,1",
            "-S",
            "25%",
            f"--parallel={os.cpu_count() or 1}",
            "-T",
            str(out),
            "-o",
            str(ordered),
            str(path),
        ],
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    path.unlink()
    per = _Csv(out / "persons.csv", PERSON_HEADER)
    days = _Csv(out / "person_days.csv", NODES["PersonDay"].import_header())
    has_day = _Csv(out / "rel_has_day.csv", RELATIONSHIPS["HAS_DAY"].import_header())
    events = _Csv(out / "events.csv", NODES["Event"].import_header())
    seq = 0
    changed_at = now.isoformat()
    since = now.astimezone(UTC).replace(tzinfo=None)
    with ordered.open(encoding="utf-8") as fh:
        for person_id, lines in groupby(fh, key=lambda ln: ln.split(STATUS_SEP, 1)[0]):
            regs: list[status.StatusReg] = []
            late = False
            person: dict[str, Any] | None = None
            for ln in lines:
                fields = ln.rstrip("\n").split(STATUS_SEP)
                _, record_id, at, tube, day, pool, name, compound = fields[:8]
                if person is None:
                    id_type, id_number, district = fields[8:]
                    person = {
                        "person_id": person_id,
                        "id_type": id_type or None,
                        "id_number": id_number or None,
                        "registered_district_code": district or None,
                        "LABEL": "Person",
                    }
                if not compound or compound not in districts:
                    late = True
                result = latest.get(tube)
                pool_size = int(pool) if pool else None
                regs.append(
                    {
                        "record_id": record_id,
                        "tube_code": tube,
                        "day": day or None,
                        "collected_at": datetime.fromisoformat(at) if at else None,
                        "pool_size": pool_size,
                        "name": name or None,
                        "members": members.get(tube, 0),
                        "max_pool": pool_size or 0,
                        "result": result[1] if result else None,
                        "was_positive": tube in was_positive,
                        "reported_at": result[2] if result else None,
                        "district_code": districts.get(compound),
                    }
                )
            assert person is not None
            per.write(
                {**person, "last_day": max((r["day"] for r in regs if r["day"]), default=None)}
            )
            plan.duplicates += (
                domain.registration_key(sender, str(r["record_id"])) for r in _duplicates(regs)
            )
            if late:
                plan.status_tubes.update(str(r["tube_code"]) for r in regs)
                continue
            for ds in status.derive(person_id, regs):
                key = f"{ds.person_id}|{ds.day}"  # the import's id only (engine/model.py)
                days.write(
                    {
                        "ID": key,
                        "day": ds.day,
                        "status": ds.status,
                        "since": since,  # a local time in UTC (engine/model.py)
                        "district_code": ds.district_code,
                        "LABEL": "PersonDay",
                    }
                )
                has_day.write_link(ds.person_id, key, "HAS_DAY")
                seq += 1
                events.write(
                    {
                        "ID": str(seq),
                        "seq": seq,  # a status change keeps no `type` (cypher/status.cypher)
                        "occurred_at": changed_at,
                        "person_id": ds.person_id,
                        "day": ds.day,
                        "status": ds.status,
                        "district_code": ds.district_code,
                        "LABEL": "Event",
                    }
                )
    ordered.unlink()
    sequences = _Csv(out / "sequences.csv", NODES["Sequence"].import_header())
    sequences.write({"name": "events", "value": seq, "LABEL": "Sequence"})
    for f in (per, days, has_day, events, sequences):
        f.close()


def _duplicates(regs: list[status.StatusReg]) -> list[status.StatusReg]:
    """A person's pooled registrations of a day that has pooled ones in two tubes or more, as
    cypher/ingest.cypher's new_registration_facts finds them online."""
    pooled = [r for r in regs if r["day"] is not None and domain.is_pooled(r["pool_size"])]
    tubes: dict[Any, set[Any]] = {}
    for r in pooled:
        tubes.setdefault(r["day"], set()).add(r["tube_code"])
    return [r for r in pooled if len(tubes[r["day"]]) > 1]


def mark_duplicates(gw: Gateway, keys: list[str], page: int = 10_000) -> None:
    """The duplicate registrations the import files found, marked as the online load marks them."""
    for start in range(0, len(keys), page):
        gw.write("mark_duplicate_registrations", keys=keys[start : start + page])


# The Meta key cypher/schema.cypher's duplicate backfill (schema_registration_duplicate_backfill)
# looks for: the bulk import marks its duplicates itself (mark_duplicates). Written with the
# import files, so that the first connection does not walk every registration: an import
# stopped before its steps after the import (the marks, the dispatch) is not resumed, it is
# run again on an empty database (`--bulk` refuses one that holds data).
DUPLICATE_MARK = "registration_duplicate"
# And its `unplaced` backfill (schema_person_unplaced_backfill): dispatch_all marks them.
UNPLACED_MARK = "person_unplaced"

# The Meta key cypher/schema.cypher's tube backfill (schema_tube_pool_day_backfill) looks for:
# an imported store's tubes carry `pool_day` already.
TUBE_POOL_DAY_MARK = "tube_pool_day"


def _pool_day(pool_days: dict[str, str], tube: str, pool_size: Any, day: str | None) -> None:
    """A tube's `pool_day` as cypher/ingest.cypher's set_tube_pool_days makes it: the day
    when every registration of the tube is pooled and on that day, else none ("")."""
    this = sys.intern(day) if day is not None and pool_size is not None and pool_size > 1 else ""
    before = pool_days.get(tube)
    if before is None:
        pool_days[tube] = this
    elif before != this:
        pool_days[tube] = ""


def _single(path: Path, values: Iterable[str], label: str) -> None:
    node = NODES[label]
    f = _Csv(path, node.import_header())
    for v in sorted(values):
        f.write({node.key: v, "LABEL": label})
    f.close()


def import_args(out: Path, database: str) -> list[str]:
    args = [
        "database",
        "import",
        "full",
        database,
        "--overwrite-destination=true",
        f"--array-delimiter={ARRAY_DELIMITER}",
        "--multiline-fields=false",
        "--bad-tolerance=0",
        "--threads=2",
        f"--report-file={out / 'import.report'}",
    ]
    args += [f"--nodes={out / (n + '.csv.gz')}" for n in NODE_FILES]
    args += [f"--relationships={p}" for p in sorted(out.glob("rel_*.csv.gz"))]
    return args


def store_conflicts(gw: Gateway, conflicts: list[tuple[str, Quarantined]]) -> None:
    """The quarantined conflicts of registrations, with the first version as stored."""
    if not conflicts:
        return
    keys = sorted({key for key, _ in conflicts})
    first = {
        r["key"]: transform.stored_version(r) for r in gw.read("existing_registrations", keys=keys)
    }
    rows = {}
    for key, q in conflicts:
        q = replace(q, existing=first.get(key))
        rows[q.key] = q.as_props()
    gw.write_tx(lambda tx: gw.run_in(tx, "merge_quarantine", rows=list(rows.values())))


def dispatch_all(gw: Gateway, page: int = 1000) -> int:
    """`unplaced` persons and residence fallbacks, then tasks for every positive and invalid
    result, as the online loader does. A negative result only acts on a retest task, and the
    retests of the new tasks are dispatched with them (`tasks.dispatch`: `link_earlier_retests`)."""
    unknown = [r["reg_key"] for r in gw.read("registrations_without_known_compound")]
    for start in range(0, len(unknown), page):
        ids = unknown[start : start + page]

        def refresh(tx: ManagedTransaction, c: list[str] = ids) -> None:
            gw.run_in(tx, "mark_unplaced_persons", reg_keys=c)
            gw.run_in(tx, "refresh_residences", reg_keys=c)

        gw.write_tx(refresh)
    keys = [r["key"] for r in gw.read("results_to_dispatch")]
    for start in range(0, len(keys), page):
        chunk = keys[start : start + page]

        def work(tx: ManagedTransaction, c: list[str] = chunk) -> None:
            changes = tasks.dispatch(gw, tx, c)
            outbox.append(gw, tx, outbox.task_events(gw, tx, changes.created, changes.updated))

        gw.write_tx(work)
    return len(keys)
