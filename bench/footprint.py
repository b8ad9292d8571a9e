"""Where the bytes go (issue 22 item 1; docs/footprint.md).

`measure(server, gw, registrations)`, called by bench/run.py at every size: the store's bytes
on disk per registration, apart by part (the store's record files, each index by name, the
transaction logs) and its nodes, relationships and properties per registration.

`./dev bench --footprint`: what one label, property, relationship or index costs. Each probe
writes 20,000 nodes (or relationships) holding one kind of value, as the loaders write them,
into an empty managed server whose store files grow a page at a time (no preallocation), and
measures what each file grew by after a checkpoint."""

from __future__ import annotations

import argparse
import json
import shutil
import string
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.devdb import connect
from engine.server.managed import ManagedServer
from engine.settings import Settings
from engine.store.gateway import Gateway

# The record files of the store (neostore.*), by what they hold.
STORE_FILES = {
    "neostore.nodestore.db": "nodes",
    "neostore.nodestore.db.labels": "node labels (dynamic)",
    "neostore.relationshipstore.db": "relationships",
    "neostore.relationshipgroupstore.db": "relationship groups",
    "neostore.relationshipgroupstore.degrees.db": "relationship groups",
    "neostore.propertystore.db": "properties",
    "neostore.propertystore.db.strings": "long strings (dynamic, 128-byte blocks)",
    "neostore.propertystore.db.arrays": "arrays (dynamic, 128-byte blocks)",
    "neostore.counts.db": "counts",
}


# Neo4j's queue of freed record ids waiting for the transactions that could still see them
# (id-buffer.tmp.N, 50 MiB segments, each deleted once read; emptied at every start): temporary,
# not records. It grows with what is deleted, so a store under retention carries up to ~50 MiB.
ID_BUFFER = "freed-id buffer (id-buffer.tmp, temporary)"


def _store_part(name: str) -> str:
    if name.endswith(".id"):
        return "id files"
    if name.startswith("id-buffer.tmp"):
        return ID_BUFFER
    return STORE_FILES.get(name, "other (tokens, schema, ...)")


def index_names(gw: Gateway) -> dict[str, str]:
    """Index directory (its id) -> index name."""
    return {str(r["id"]): r["name"] for r in gw.read("footprint_indexes")}


def disk_parts(server: ManagedServer, names: dict[str, str], database: str) -> dict[str, Any]:
    """Bytes of the database's files: the store's record files by what they hold, each index
    by name (`schema/index/<provider>/<id>`), the transaction logs."""
    db = server.data_dir / "databases" / database
    store: Counter[str] = Counter()
    indexes: Counter[str] = Counter()
    for path in db.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(db).parts
        size = path.stat().st_size
        if rel[0] == "schema" and len(rel) > 3:
            indexes[names.get(rel[3], f"index {rel[3]}")] += size
        else:
            store[_store_part(path.name)] += size
    logs = sum(
        p.stat().st_size
        for p in (server.data_dir / "transactions" / database).rglob("*")
        if p.is_file()
    )
    return {"store": dict(store), "indexes": dict(indexes), "transaction_logs": logs}


def on_disk(parts: dict[str, Any], registrations: int) -> dict[str, Any]:
    """`disk_parts` per registration."""
    n = max(registrations, 1)
    store = sum(parts["store"].values())
    indexes = sum(parts["indexes"].values())
    logs = parts["transaction_logs"]
    return {
        "total": (store + indexes + logs) / n,
        "store": store / n,
        "indexes": indexes / n,
        "transaction_logs": logs / n,
        "store_files": {k: v / n for k, v in sorted(parts["store"].items())},
        "index_files": {
            k: v / n for k, v in sorted(parts["indexes"].items(), key=lambda kv: -kv[1])
        },
    }


def logical(gw: Gateway, registrations: int) -> dict[str, Any]:
    """Nodes, relationships and properties per registration (reads every node and
    relationship once: minutes at 26 M)."""
    n = max(registrations, 1)
    counts = gw.read("footprint_counts").row()
    labels = {r["label"]: r for r in gw.read("footprint_by_label")}
    return {
        "nodes_per_registration": counts["nodes"] / n,
        "relationships_per_registration": counts["relationships"] / n,
        "properties_per_registration": (
            counts["node_properties"] + counts["relationship_properties"]
        )
        / n,
        "by_label_per_registration": {
            k: {"nodes": r["nodes"] / n, "properties": r["properties"] / n}
            for k, r in sorted(labels.items())
        },
    }


def measure(server: ManagedServer, gw: Gateway, registrations: int) -> dict[str, Any]:
    """The footprint per registration. Call it on a server started again (a clean stop
    checkpoints: the store files hold every page, where a running server's page cache holds
    what the transaction logs already have)."""
    parts = disk_parts(server, index_names(gw), gw.database)
    return {"bytes_per_registration": on_disk(parts, registrations)} | logical(gw, registrations)


def rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The footprint's lines of the benchmark's table."""
    b = result["bytes_per_registration"]
    out = [
        (
            "  store files / indexes / tx logs (bytes per registration)",
            f"{b['store']:.0f} / {b['indexes']:.0f} / {b['transaction_logs']:.0f}",
        ),
        (
            "  nodes / relationships / properties per registration",
            f"{result['nodes_per_registration']:.2f} / "
            f"{result['relationships_per_registration']:.2f} / "
            f"{result['properties_per_registration']:.1f}",
        ),
    ]
    for name, v in sorted(b["store_files"].items(), key=lambda kv: -kv[1])[:6]:
        out.append((f"    {name}", f"{v:.0f}"))
    for name, v in list(b["index_files"].items())[:5]:
        out.append((f"    index {name}", f"{v:.0f}"))
    return out


# ---------------------------------------------------------------- probes: one kind at a time

CST = timezone(timedelta(hours=8))
N = 20_000
CHECKPOINT_WAIT_S = 3.0
RAW = (
    '{"box_code":"B00002","collected_at":"2022-04-09T17:10:00+08:00","collector_id":"V0001",'
    '"compound_code":"C00002","id_number":"310112196807122780","id_type":"resident_id",'
    '"method":"nucleic_code","name":"徐涛","phone":"19988955436","pool_size":"10",'
    '"record_id":"R%09d","tube_code":"T%09d"}'
)
HEX = string.hexdigits[:16]


def _hex(i: int, n: int) -> str:
    return "".join(HEX[(i * 7919 + k * 104729) % 16] for k in range(n))


# name -> (what it is, the value of node i)
PROBES: dict[str, tuple[str, Any]] = {
    "node": ("a node with a label, no property", None),
    "day": ("'2022-04-09' (Registration.day, Result.day, PersonDay.day)", lambda i: "2022-04-09"),
    "record_id": ("'R000000067' (10 letters and digits)", lambda i: f"R{i:09d}"),
    "reg_key": ("'file/R000000067' (Registration.reg_key)", lambda i: f"file/R{i:09d}"),
    "person_id": ("'p_' + 24 hex (Person.person_id)", lambda i: "p_" + _hex(i, 24)),
    "person_day_key": (
        "person_id + '|' + day (PersonDay.key)",
        lambda i: "p_" + _hex(i, 24) + "|2022-04-09",
    ),
    "name": ("'徐涛' (a Chinese name)", lambda i: "徐涛"),
    "phone": ("'19988955436'", lambda i: f"1{i:010d}"),
    "id_number": ("'310112196807122780'", lambda i: f"310112196807{i:06d}"),
    "method": ("'nucleic_code'", lambda i: "nucleic_code"),
    "content_hash": ("64 hex (content_hash)", lambda i: _hex(i, 64)),
    "result_key": ("32 hex (Result.result_key)", lambda i: _hex(i, 32)),
    "raw": ("the JSON of a registration line, ~330 bytes (raw)", lambda i: RAW % (i, i)),
    "collected_at": (
        "a datetime with its offset (collected_at, reported_at, since)",
        lambda i: datetime(2022, 4, 9, 8, i % 60, tzinfo=CST),
    ),
    "occurred_at": (
        "an ISO timestamp as text (Event.occurred_at)",
        lambda i: datetime(2022, 4, 9, 10, i % 60, tzinfo=CST).isoformat() + ".123456",
    ),
    "pool_size": ("an integer, 10", lambda i: 10),
    "seq": ("an integer of the outbox, up to 2^31", lambda i: 100_000_000 + i),
    "ct_value": ("a float, 28.5", lambda i: 28.5),
    "known": ("a boolean", lambda i: True),
    "flags": ("['missing_phone'] (a list of strings)", lambda i: ["missing_phone"]),
    "flags_two": (
        "['invalid_id_number', 'missing_phone']",
        lambda i: ["invalid_id_number", "missing_phone"],
    ),
    "registration_props": (
        "the 21 properties of a stored registration (a typical one)",
        lambda i: {
            "reg_key": f"file/R{i:09d}",
            "sender": "file",
            "record_id": f"R{i:09d}",
            "collected_at": datetime(2022, 4, 9, 8, i % 60, tzinfo=CST),
            "day": "2022-04-09",
            "compound_code": "C00002",
            "box_code": "B00002",
            "tube_code": f"T{i // 10:09d}",
            "pool_size": 10,
            "method": "nucleic_code",
            "id_type": "resident_id",
            "name": "徐涛",
            "phone": f"1{i:010d}",
            "collector_id": "V0001",
            "content_hash": _hex(i, 64),
            "raw": RAW % (i, i),
            "source": "registrations.csv",
            "line": i + 2,
        },
    ),
    "person_day_props": (
        "the 6 properties of a person's day (PersonDay)",
        lambda i: {
            "key": "p_" + _hex(i, 24) + "|2022-04-09",
            "person_id": "p_" + _hex(i, 24),
            "day": "2022-04-09",
            "status": "negative",
            "since": datetime(2022, 4, 9, 20, i % 60, 1, 123456, tzinfo=CST),
            "district_code": "310115",
        },
    ),
    "event_props": (
        "the 8 properties of a status.changed event (Event)",
        lambda i: {
            "seq": 100_000_000 + i,
            "event_id": f"evt_{100_000_000 + i}",
            "type": "status.changed",
            "occurred_at": "2026-12-06T18:45:17.194471+00:00",
            "person_id": "p_" + _hex(i, 24),
            "day": "2022-04-09",
            "status": "negative",
            "previous_status": "pending",
            "district_code": "310115",
        },
    ),
    "result_props": (
        "the 11 properties of a stored result (Result)",
        lambda i: {
            "result_key": _hex(i, 32),
            "tube_code": f"T{i:09d}",
            "result": "negative",
            "reported_at": datetime(2022, 4, 9, 19, i % 60, tzinfo=CST),
            "day": "2022-04-09",
            "lab_code": "LAB02",
            "content_hash": _hex(i, 64),
            "raw": '{"lab_code":"LAB02","reported_at":"2022-04-09T19:10:00+08:00",'
            f'"result":"negative","tube_code":"T{i:09d}"}}',
            "source": "results.csv",
            "line": i + 2,
        },
    ),
    # Since the footprint cuts (issue 22): what the write path stores now.
    "registration_now_props": (
        "a stored registration now (no raw, sender, codes, id_type, source, line; a 32-hex "
        "digest, method as a code; 11 properties)",
        lambda i: (
            {
                k: v
                for k, v in PROBES["registration_props"][1](i).items()
                if k
                not in (
                    "raw",
                    "sender",
                    "compound_code",
                    "box_code",
                    "tube_code",
                    "id_type",
                    "source",
                    "line",
                )
            }
            | {"content_hash": _hex(i, 32), "method": "1"}
        ),
    ),
    "person_day_now_props": (
        "a person's day now (no key, no person_id, since a local time in UTC; 4 properties)",
        lambda i: (
            {
                k: v
                for k, v in PROBES["person_day_props"][1](i).items()
                if k not in ("key", "person_id")
            }
            | {"since": datetime(2022, 4, 9, 12, i % 60, 1, 123456)}
        ),
    ),
    "event_now_props": (
        "a status.changed event now (no event_id, no type, occurred_at a datetime; 7 properties)",
        lambda i: (
            {k: v for k, v in PROBES["event_props"][1](i).items() if k not in ("event_id", "type")}
            | {"occurred_at": datetime(2026, 12, 6, 18, 45, 17, 194471, tzinfo=UTC)}
        ),
    ),
    "result_now_props": (
        "a stored result now (no raw, source, line; 32-hex digest; 8 properties)",
        lambda i: (
            {
                k: v
                for k, v in PROBES["result_props"][1](i).items()
                if k not in ("raw", "source", "line")
            }
            | {"content_hash": _hex(i, 32)}
        ),
    ),
}
# Indexes: (label, property) probed with N distinct values (day: one value for all).
INDEX_PROBES = {
    "range index on a unique key (reg_key)": "reg_key",
    "range index on day (one value)": "day",
    "range index on person_id": "person_id",
    "range index on PersonDay.key (37 characters)": "person_day_key",
    "range index on an integer (seq)": "seq",
}


def _files(server: ManagedServer) -> Counter[str]:
    db = server.data_dir / "databases" / "neo4j"
    found: Counter[str] = Counter()
    for path in db.rglob("*"):
        if path.is_file():
            rel = path.relative_to(db).parts
            found["indexes" if rel[0] == "schema" else _store_part(path.name)] += (
                path.stat().st_size
            )
    return found


def _settled(server: ManagedServer) -> Counter[str]:
    """The files' sizes once a checkpoint wrote every page (checkpoints every second here)."""
    last = _files(server)
    while True:
        time.sleep(CHECKPOINT_WAIT_S)
        now = _files(server)
        if now == last:
            return now
        last = now


def _grew(server: ManagedServer, write: Any) -> dict[str, float]:
    before = _settled(server)
    write()
    after = _settled(server)
    return {k: (after[k] - before[k]) / N for k in after if after[k] != before[k]}


def probes(work: Path, only: set[str] | None = None) -> dict[str, Any]:
    home = work / "footprint-home"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(
        TUBETRACE_HOME=home, TUBETRACE_NEO4J_HEAP="1g", TUBETRACE_NEO4J_PAGECACHE="512m"
    )
    server = ManagedServer(settings)
    server.conf_dir.mkdir(parents=True, exist_ok=True)
    # Files grow a page (8 KB) at a time, and a checkpoint every second writes every page:
    # what a probe wrote is what the files grew by.
    (server.conf_dir / "extra.conf").write_text(
        "db.store.files.preallocate=false\ndb.checkpoint.interval.time=1s\n"
        "db.checkpoint.interval.tx=1\n"
    )
    server.start()
    out: dict[str, Any] = {"nodes": {}, "relationships": {}, "indexes": {}}
    gw = connect(settings, apply_schema=False)
    try:
        for name, (_, value) in PROBES.items():
            if only and name not in only:
                continue
            if name.endswith("_props"):
                props = [value(i) for i in range(N)]
            else:
                props = [{} if value is None else {"v": value(i)} for i in range(N)]
            out["nodes"][name] = _grew(
                server, lambda p=props: _chunks(gw, "footprint_probe_nodes", p)
            )
            print(name, json.dumps(out["nodes"][name]), file=sys.stderr, flush=True)
        if not only:
            _other_probes(server, gw, out)
    finally:
        gw.close()
        server.stop()
    shutil.rmtree(home, ignore_errors=True)
    return out


def _other_probes(server: ManagedServer, gw: Gateway, out: dict[str, Any]) -> None:
    """Relationships, and indexes built over nodes or kept up while loading."""
    out["relationships"]["relationship"] = _grew(
        server, lambda: _chunks(gw, "footprint_probe_rels", [{}] * N)
    )
    out["relationships"]["relationship with a short string property"] = _grew(
        server, lambda: _chunks(gw, "footprint_probe_rels", [{"day": "2022-04-09"}] * N)
    )
    for label, prop in INDEX_PROBES.items():
        _, value = PROBES[prop]
        values = [value(i) for i in range(N)]
        for how in ("built over the nodes", "kept up while loading"):
            gw.run_auto("footprint_drop_probe_index")
            gw.write("footprint_drop_indexed")
            out["indexes"][f"{label}, {how}"] = _grew(
                server, lambda v=values, h=how: _index(gw, v, h.startswith("built"))
            )


def _chunks(gw: Gateway, query: str, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 5000):
        gw.write(query, rows=rows[start : start + 5000])


def _index(gw: Gateway, values: list[Any], built: bool) -> None:
    if not built:
        gw.run_auto("footprint_probe_index")
    _chunks(gw, "footprint_probe_indexed", [{"v": v} for v in values])
    if built:
        gw.run_auto("footprint_probe_index")
    gw.run_auto("footprint_await_index")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path(__file__).parent / "out" / "work")
    parser.add_argument("--only", default="", help="comma-separated node probes (default all)")
    args = parser.parse_args(argv)
    found = probes(args.work, {x for x in args.only.split(",") if x} or None)
    console = Console(width=140)
    table = Table(
        title=f"bytes on disk per node or relationship ({N:,} of each, after a checkpoint)"
    )
    for col in (
        "probe",
        "what",
        "nodes",
        "relationships",
        "properties",
        "long strings",
        "arrays",
        "indexes",
        "other",
    ):
        table.add_column(col)
    main_parts = (
        "nodes",
        "relationships",
        "properties",
        "long strings (dynamic, 128-byte blocks)",
        "arrays (dynamic, 128-byte blocks)",
        "indexes",
    )
    for group in ("nodes", "relationships", "indexes"):
        for name, grew in found[group].items():
            what = PROBES[name][0] if group == "nodes" else ""
            other = sum(v for k, v in grew.items() if k not in main_parts)
            table.add_row(
                name,
                what,
                *(f"{grew.get(k, 0):.1f}" for k in main_parts),
                f"{other:.1f}",
            )
    console.print(table)
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    target = out / ("footprint-only.json" if args.only else "footprint.json")
    target.write_text(json.dumps(found, indent=2))
    print(f"saved {target}", file=sys.stderr)
