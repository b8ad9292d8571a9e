"""Bulk initial import: the same transforms as the online loader, written as
`neo4j-admin database import full` CSV files and imported into an empty database.

The graph equals the online loader's: the same nodes, keys, properties and relationships,
the same first-version-wins rule for conflicts, the same quarantine. Tasks are then created
by the online dispatch code, over every positive and invalid result."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from neo4j import ManagedTransaction

from engine import outbox, tasks
from engine.db import Gateway
from engine.errors import InputError
from engine.model import NODES, RELATIONSHIPS
from engine.settings import Settings
from loaders import transform
from loaders.transform import Quarantined, Row
from loaders.write import Outcome, Summary, make_transform

Item = tuple[int | None, "dict[str, Any] | Quarantined"]
ARRAY_DELIMITER = "\x1f"


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


class _Csv:
    """One import file with a typed header; None is written as an empty (unset) field."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.fh: TextIO = path.open("w", encoding="utf-8", newline="")
        self.names = [h[1:].split("(")[0] if h.startswith(":") else h.split(":")[0] for h in header]
        self.writer = csv.writer(self.fh, quoting=csv.QUOTE_MINIMAL)
        self.writer.writerow(header)
        self.rows = 0

    def write(self, values: dict[str, Any]) -> None:
        out = []
        for name in self.names:
            v = values.get(name)
            if v is None:
                out.append("")
            elif isinstance(v, list):
                out.append(ARRAY_DELIMITER.join(map(str, v)))
            elif isinstance(v, bool):
                out.append("true" if v else "false")
            else:
                out.append(_iso(v))
        self.writer.writerow(out)
        self.rows += 1

    def close(self) -> None:
        self.fh.close()


REG_HEADER = NODES["Registration"].import_header()
PERSON_HEADER = NODES["Person"].import_header()
RESULT_HEADER = NODES["Result"].import_header()
COMPOUND_HEADER = NODES["Compound"].import_header()
QUARANTINE_HEADER = NODES["Quarantine"].import_header()


@dataclass
class Plan:
    """What the import writes, with the online loader's summary per kind."""

    summaries: dict[str, Summary] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def _dedupe(
    kind: str,
    source: str,
    items: Iterable[Item],
    transform_one: Callable[[dict[str, Any], str, int | None], Row | Quarantined],
    seen: dict[str, tuple[str, str]],
    quarantine: dict[str, Quarantined],
    summary: Summary,
) -> Iterator[Row]:
    """The online loader's rules: first version wins; a different one is a conflict."""
    for line, item in items:
        summary.read += 1
        out = item if isinstance(item, Quarantined) else transform_one(item, source, line)
        if isinstance(out, Quarantined):
            quarantine.setdefault(out.key, out)
            summary.add(Outcome(line, None, "quarantined"), keep=False)
            continue
        first = seen.get(out.key)
        verdict = transform.judge(out, source, line, *(first or (None, None)))
        status, q = verdict.status, verdict.quarantined
        if status == "updated":
            raise InputError(
                f"bulk import: compound {out.key} appears twice with different "
                "content; load compounds online to update them"
            )
        if status == "stored":
            seen[out.key] = (out.content_hash, out.raw)
        if q is not None:
            quarantine.setdefault(q.key, q)
        summary.add(Outcome(line, out.key, status, out.flags), keep=False)
        if status == "stored":
            yield out


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
    compounds_known: set[str] = set()
    compound_refs: set[str] = set()
    tubes: set[str] = set()
    boxes: set[str] = set()
    persons: set[str] = set()
    filled: set[tuple[str, str, str]] = set()

    comp = _Csv(out / "compounds.csv", COMPOUND_HEADER)
    if "compounds" in inputs:
        source, items = inputs["compounds"]
        summary = Summary("compounds")
        to_row = make_transform("compounds", settings, secret, sender)
        for row in _dedupe("compounds", source, items, to_row, {}, quarantine, summary):
            comp.write({**row.props, "LABEL": "Compound"})
            compounds_known.add(row.key)
        plan.summaries["compounds"] = summary

    reg = _Csv(out / "registrations.csv", REG_HEADER)
    per = _Csv(out / "persons.csv", PERSON_HEADER)
    rel_headers = {t.lower(): r.import_header() for t, r in RELATIONSHIPS.items()}
    rels = {name: _Csv(out / f"rel_{name}.csv", header) for name, header in rel_headers.items()}
    if "registrations" in inputs:
        source, items = inputs["registrations"]
        summary = Summary("registrations")
        to_row = make_transform("registrations", settings, secret, sender)
        for row in _dedupe("registrations", source, items, to_row, {}, quarantine, summary):
            p = row.props
            reg.write({**p, "LABEL": "Registration"})
            links = row.links
            person = links["person"]
            if person["person_id"] not in persons:
                persons.add(person["person_id"])
                per.write({**person, "LABEL": "Person"})
            tubes.add(links["tube_code"])
            rels["into_tube"].write(_rel(row.key, links["tube_code"], "INTO_TUBE"))
            rels["of_person"].write(_rel(row.key, person["person_id"], "OF_PERSON"))
            if links["box_code"] is not None:
                boxes.add(links["box_code"])
                rels["in_box"].write(_rel(row.key, links["box_code"], "IN_BOX"))
            if links["compound_code"] is not None:
                compound_refs.add(links["compound_code"])
                rels["at_compound"].write(_rel(row.key, links["compound_code"], "AT_COMPOUND"))
            if None not in (links["box_code"], links["compound_code"], links["day"]):
                key = (links["box_code"], links["compound_code"], links["day"])
                if key not in filled:
                    filled.add(key)
                    rels["filled_at"].write(
                        {"START_ID": key[0], "END_ID": key[1], "day": key[2], "TYPE": "FILLED_AT"}
                    )
        plan.summaries["registrations"] = summary

    res = _Csv(out / "results.csv", RESULT_HEADER)
    if "results" in inputs:
        source, items = inputs["results"]
        summary = Summary("results")
        to_row = make_transform("results", settings, secret, sender)
        for row in _dedupe("results", source, items, to_row, {}, quarantine, summary):
            res.write({**row.props, "LABEL": "Result"})
            tubes.add(row.links["tube_code"])
            rels["for_tube"].write(_rel(row.key, row.links["tube_code"], "FOR_TUBE"))
        plan.summaries["results"] = summary

    for code in sorted(compound_refs - compounds_known):
        comp.write({"code": code, "LABEL": "Compound"})
    _single(out / "tubes.csv", tubes, "Tube")
    _single(out / "boxes.csv", boxes, "Box")
    q = _Csv(out / "quarantine.csv", QUARANTINE_HEADER)
    now = datetime.now(UTC)
    for item in quarantine.values():
        q.write({**item.as_props(), "at": now, "LABEL": "Quarantine"})
    meta = _Csv(out / "meta.csv", NODES["Meta"].import_header())
    meta.write({"key": "person_id_secret", "value": secret, "LABEL": "Meta"})
    for f in (comp, reg, per, res, q, meta, *rels.values()):
        f.close()
    plan.files = sorted(p.name for p in out.iterdir())
    return plan


def _rel(start: str, end: str, kind: str) -> dict[str, Any]:
    return {"START_ID": start, "END_ID": end, "TYPE": kind}


def _single(path: Path, values: set[str], label: str) -> None:
    node = NODES[label]
    f = _Csv(path, node.import_header())
    for v in sorted(values):
        f.write({node.key: v, "LABEL": label})
    f.close()


def import_args(out: Path, database: str) -> list[str]:
    nodes = [
        "compounds",
        "registrations",
        "persons",
        "results",
        "tubes",
        "boxes",
        "quarantine",
        "meta",
    ]
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
    args += [f"--nodes={out / (n + '.csv')}" for n in nodes]
    args += [f"--relationships={p}" for p in sorted(out.glob("rel_*.csv"))]
    return args


def dispatch_all(gw: Gateway, page: int = 1000) -> int:
    """Residence fallbacks, then tasks for every positive and invalid result, as the online
    loader does."""
    unknown = [r["record_id"] for r in gw.read("registrations_without_known_compound")]
    for start in range(0, len(unknown), page):
        ids = unknown[start : start + page]

        def refresh(tx: ManagedTransaction, c: list[str] = ids) -> None:
            gw.run_in(tx, "refresh_residences", record_ids=c)

        gw.write_tx(refresh)
    keys = [r["key"] for r in gw.read("results_to_dispatch")]
    for start in range(0, len(keys), page):
        chunk = keys[start : start + page]

        def work(tx: ManagedTransaction, c: list[str] = chunk) -> None:
            changes = tasks.dispatch(gw, tx, c)
            outbox.append(gw, tx, outbox.task_events(gw, tx, changes.created, changes.updated))

        gw.write_tx(work)
    return len(keys)
