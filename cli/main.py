"""The `tubetrace` command line. Run by the machine's own user: it sees data unmasked."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import closing
from datetime import UTC
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cli import ops
from cli.analysis import analysis_report, clusters_cmd, exposure_cmd
from cli.connection import gateway, me
from cli.directory import directory_app
from cli.exits import Exit, code_for
from cli.render import err, out, print_json, print_trace, render_json, styled
from cli.retention import retention_app
from cli.webhooks import webhooks_app
from engine import contract
from engine.access.audit import DirectAudit
from engine.errors import TubetraceError
from engine.model import RecordKind
from engine.settings import get_settings
from engine.usecases import reads, writes
from loaders import write

app = typer.Typer(
    help="Traceback of pooled PCR tubes on Neo4j.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
neo4j_app = typer.Typer(help="The managed local Neo4j server.", no_args_is_help=True)
app.add_typer(neo4j_app, name="neo4j")
keys_app = typer.Typer(help="API keys and their roles.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(retention_app, name="retention")
app.add_typer(directory_app, name="directory")
audit_app = typer.Typer(help="The audit log (list with no sub-command) and its check.")
app.add_typer(audit_app, name="audit")


def fail(message: str, code: int = Exit.ERROR) -> NoReturn:
    err.print(styled("red", "error:", f" {message}"), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@neo4j_app.command("start")
def neo4j_start() -> None:
    """Start the managed server (provisioned from Maven Central on first use)."""
    from engine.server.managed import ManagedServer

    info = ManagedServer(get_settings()).start()
    out.print(info.describe(), highlight=False)


@neo4j_app.command("stop")
def neo4j_stop() -> None:
    """Stop the managed server."""
    from engine.server.managed import ManagedServer

    stopped = ManagedServer(get_settings()).stop()
    out.print("Neo4j stopped." if stopped else "Neo4j was not running.")


@neo4j_app.command("status")
def neo4j_status() -> None:
    """Say whether the managed server runs, and where."""
    from engine.server.managed import ManagedServer

    info = ManagedServer(get_settings()).status()
    out.print(info.describe(), highlight=False)
    if not info.running:
        raise typer.Exit(Exit.DATABASE_UNAVAILABLE)


@app.command("load")
def load(
    kind: Annotated[
        str,
        typer.Argument(
            help="compounds, registrations, results, directory (or all, "
            "with --bulk: PATH is a folder of the three)"
        ),
    ],
    path: Annotated[Path, typer.Argument(help="a .csv, .jsonl or .xlsx file")],
    bulk: Annotated[
        bool, typer.Option("--bulk", help="initial import into an empty database with neo4j-admin")
    ] = False,
    encoding: Annotated[
        str | None,
        typer.Option(help="text encoding of a CSV/JSON Lines file (default: detected)"),
    ] = None,
    source: Annotated[
        str,
        typer.Option(
            help="who sent the registrations: their record ids are unique per source "
            "(letters, digits, '_', '.', '-')"
        ),
    ] = "file",
) -> None:
    """Load an input file; prints read, stored, duplicates, conflicts, updated, flagged,
    quarantined."""
    from engine import domain
    from loaders.read import count_lines, read_file

    if not domain.SOURCE_RE.fullmatch(source):
        fail(f"--source '{source}' must be 1-64 letters, digits, '_', '.' or '-'", Exit.USAGE)

    if bulk:
        from loaders.bulk import bulk_load

        bulk_load(
            get_settings(),
            kind,
            path,
            out,
            encoding,
            sender=source,
            on_loaded=lambda gw, summaries: writes.bulk_loaded(
                DirectAudit(gw), me(), summaries, target=f"{path.name} (bulk)"
            ),
        )
        return
    if kind == "all":
        fail(
            "'all' is the initial import of a folder into an empty database: add --bulk. "
            "Onto a database with data, load each file in turn: compounds, registrations, "
            "results (tubetrace load compounds FILE, ...)",
            Exit.USAGE,
        )
    if kind not in set(RecordKind):
        fail(f"unknown kind '{kind}'; use {', '.join(RecordKind)}", Exit.USAGE)
    items = read_file(path, kind, encoding)
    total = max(count_lines(path) - (1 if path.suffix.lower() == ".csv" else 0), 0)
    settings = get_settings()
    with (
        gateway(settings) as gw,
        Progress(
            TextColumn(f"loading {kind}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=total < settings.batch_size,
        ) as progress,
    ):
        task = progress.add_task("load", total=total)
        summary = writes.load(
            DirectAudit(gw),
            me(),
            lambda: write.load_records(
                gw,
                kind,
                items,
                path.name,
                settings,
                on_batch=lambda n: progress.advance(task, n),
                sender=source,
            ),
            target=path.name,
        )
    out.print(summary.line(), highlight=False)


@app.command("quarantine")
def quarantine(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List quarantined lines: file or request, line, field and reason."""
    with gateway() as gw:
        items, _ = reads.read_quarantine_page(gw, DirectAudit(gw), me(), limit=1_000_000)
    if as_json:
        print_json(contract.QuarantinePage.model_validate({"items": items, "next_cursor": None}))
        return
    table = Table("kind", "source", "line", "field", "reason", "raw")
    for item in items:
        table.add_row(
            item["kind"],
            item["source"],
            str(item["line"] or ""),
            item["field"] or "",
            item["reason"],
            (item["raw"] or "")[:60],
        )
    out.print(table)
    out.print(f"{len(items)} quarantined")


@app.command("trace")
def trace(tube_code: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Trace one tube to its box, compound and every person swabbed into it."""
    with gateway() as gw:  # an unknown tube: NotFound, exit 4 (main)
        result = reads.read_trace(gw, DirectAudit(gw), me(), tube_code)
    if as_json:
        print_json(contract.Trace.model_validate(result))
    else:
        print_trace(result)


@app.command("tasks")
def tasks_cmd(
    district: Annotated[str, typer.Option(help="district code, or 'unassigned'")],
    status: Annotated[str | None, typer.Option(help="only tasks in this status")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A district's follow-up queue: repeat positives first, then oldest result first."""
    with gateway() as gw:
        items = reads.read_all_tasks(gw, DirectAudit(gw), me(), district, status)
    if as_json:
        print_json(contract.TaskPage.model_validate({"items": items, "next_cursor": None}))
        return
    table = Table("task", "kind", "status", "tube", "name", "phone", "compound", "flags")
    for t in items:
        p, c = t["person"], t["compound"]
        flags = sorted(set(t["flags"]) | set(p["flags"] if p else []))
        table.add_row(
            t["task_id"],
            t["kind"],
            t["status"] + (f" ({t['outcome']})" if t["outcome"] else ""),
            t["tube_code"],
            (p["name"] if p else None) or "",
            (p["phone"] if p else None) or "",
            (c["code"] if c else None) or "",
            ", ".join(flags),
        )
    out.print(table)
    out.print(f"{len(items)} tasks in {district}", highlight=False)


@app.command("positives")
def positives_cmd(
    date: Annotated[str, typer.Option(help="YYYY-MM-DD, the day results were reported")],
    district: Annotated[str | None, typer.Option(help="only this residence district")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The day's positive tubes with their traces, by residence district (streamed)."""
    with (
        gateway() as gw,
        # Closed before the driver: the pages being traced end on a live connection.
        closing(
            reads.stream_positives(gw, DirectAudit(gw), me(), date, district=district)
        ) as stream,
    ):
        if as_json:
            # The envelope is written as it streams: constant memory at any size.
            sys.stdout.write('{"items": [')
            for i, item in enumerate(stream):
                sys.stdout.write(
                    ("," if i else "")
                    + "\n"
                    + render_json(contract.PositiveItem.model_validate(item))
                )
            sys.stdout.write('\n], "next_cursor": null}\n')
            return
        current = None
        tubes = persons = 0
        for item in stream:
            if item["district_code"] != current:
                current = item["district_code"]
                out.print(
                    styled("bold", f"\n{current} {item['district'] or ''}", ""), highlight=False
                )
            t = item["trace"]
            tubes += 1
            persons += len(t["persons"])
            out.print(
                f"  {item['tube_code']}  pool {t['tube']['pool_size']}  "
                f"{len(t['persons'])} residents  compound "
                f"{t['compound']['code'] if t['compound'] else None}  {', '.join(t['flags'])}",
                highlight=False,
            )
        out.print(
            f"\n{tubes} positive tubes, {persons} residents to follow up on {date}", highlight=False
        )


@app.command("report")
def report_cmd(
    name: Annotated[
        str,
        typer.Argument(
            help="completeness, household-separation, zoning, timeliness, signals "
            "(--date) or attack-rate (--since, --until)"
        ),
    ],
    date: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    district: Annotated[str | None, typer.Option(help="only this district")] = None,
    since: Annotated[str | None, typer.Option(help="attack-rate: the first day")] = None,
    until: Annotated[str | None, typer.Option(help="attack-rate: the last day")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Investigator reports: completeness, household separation, zoning, loop timeliness;
    the day's signals of sampling and lab trouble; attack rates by exposure ring."""
    if name in ("signals", "attack-rate"):
        analysis_report(name, date, since, until, as_json)
        return
    if date is None:
        fail(f"report {name} needs --date YYYY-MM-DD", Exit.USAGE)
    settings = get_settings()
    with gateway(settings) as gw:
        rows = reads.read_report(
            gw, DirectAudit(gw), me(), name, date, tz=settings.timezone, district=district
        )
    if as_json:
        print_json({"report": name, "date": date, "items": rows, "next_cursor": None})
        return
    if not rows:
        out.print(f"no rows for {name} on {date}")
        return
    table = Table(*rows[0].keys())
    for r in rows:
        table.add_row(
            *(
                json.dumps(v, ensure_ascii=False)
                if isinstance(v, dict)
                else ("" if v is None else str(v))
                for v in r.values()
            )
        )
    out.print(table)


@app.command("rings")
def rings_cmd(person_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Exposure rings of a confirmed case: ring 1 its pool, ring 2 its compound that day."""
    from engine.analysis import reports

    with gateway() as gw:
        answer = reads.read_rings(
            gw, DirectAudit(gw), me(), person_id, limit=reports.RING2_MAX_PAGE
        )
    if as_json:
        print_json(contract.Rings.model_validate(answer))
        return
    out.print(f"Case {person_id}: pools {', '.join(answer['case']['pool_tubes'])}", highlight=False)
    for ring, people in (("ring 1", answer["ring1"]), ("ring 2", answer["ring2"]["items"])):
        table = Table("tube", "name", "phone", "compound", title=ring)
        for p in people:
            table.add_row(
                p["tube_code"],
                p["name"] or "",
                p["phone"] or "",
                p["residence"]["compound_code"] or "",
            )
        out.print(table)


app.command("exposure")(exposure_cmd)
app.command("clusters")(clusters_cmd)


@app.command("export")
def export_cmd(
    tube: Annotated[str | None, typer.Argument(help="a tube code")] = None,
    date: Annotated[str | None, typer.Option(help="all positive tubes of this day")] = None,
    fmt: Annotated[str, typer.Option("--format", help="graphml or cytoscape")] = "graphml",
    output: Annotated[Path | None, typer.Option("--out", help="file to write")] = None,
) -> None:
    """Write trace subgraphs for Gephi (GraphML) or Cytoscape (JSON); the console draws the same."""
    from engine.trace import export

    if (tube is None) == (date is None):
        fail("give either a TUBE or --date D", Exit.USAGE)
    if fmt not in ("graphml", "cytoscape"):
        fail("--format is graphml or cytoscape", Exit.USAGE)
    with gateway() as gw:
        log = DirectAudit(gw)
        if tube is not None:
            traces = reads.read_traces(gw, log, me(), [tube], action="export")
        else:
            assert date is not None
            with closing(reads.stream_positives(gw, log, me(), date, action="export")) as stream:
                traces = [i["trace"] for i in stream]
    target = output or Path(f"{tube or date}.{'graphml' if fmt == 'graphml' else 'cyjs'}")
    nodes, edges = export.write(traces, target, fmt)
    out.print(f"wrote {nodes} nodes and {edges} edges to {target}", highlight=False)


@keys_app.command("create")
def keys_create(
    role: Annotated[
        str,
        typer.Option(help="investigator, district, collector, lab, admin, health_code or ops"),
    ],
    district: Annotated[
        str | None, typer.Option(help="the district code of a district key")
    ] = None,
    label: Annotated[str | None, typer.Option(help="who holds the key")] = None,
    lab: Annotated[
        str | None,
        typer.Option(help="a lab key's lab codes, e.g. LAB01,LAB02: its results name one"),
    ] = None,
) -> None:
    """Create a key; its secret is printed once and stored only as a hash."""
    with gateway() as gw:
        key = writes.create_key(
            gw,
            DirectAudit(gw),
            me(),
            role=role,
            district=district,
            label=label,
            labs=[lab] if lab else None,
        )
    scope = key.district or ",".join(key.labs)
    out.print(f"key id {key.key_id} ({key.role}{' ' + scope if scope else ''})", highlight=False)
    sys.stdout.write(key.secret + "\n")


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List keys (never their secrets)."""
    from engine.access.keys import ShownKey, list_keys
    from engine.domain import iso

    with gateway() as gw:
        keys = list_keys(gw)
    rows: list[ShownKey] = [
        {**k, "created_at": iso(k["created_at"]), "revoked_at": iso(k["revoked_at"])} for k in keys
    ]
    if as_json:
        print_json({"items": rows, "next_cursor": None})
        return
    table = Table("key id", "role", "district", "labs", "label", "created", "revoked")
    for k in rows:
        labs = ",".join(k.get("labs") or [])
        table.add_row(
            k["key_id"],
            k["role"],
            k["district"] or "",
            labs or ("none: refused, make it again with --lab" if k["role"] == "lab" else ""),
            k["label"] or "",
            k["created_at"] or "",
            k["revoked_at"] or "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once."""
    with gateway() as gw:
        writes.revoke_key(gw, DirectAudit(gw), me(), key_id)
    out.print(f"key {key_id} revoked")


@audit_app.callback(invoke_without_command=True)
def audit_log(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time with offset")] = None,
    key: Annotated[str | None, typer.Option(help="only this key id")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The audit log: who read which personal data, and every write."""
    from engine import domain
    from engine.access import audit

    if ctx.invoked_subcommand is not None:
        return

    when = domain.parse_timestamp(since) if since else None
    if since and when is None:
        fail(
            "--since needs an ISO 8601 time with offset, e.g. 2022-04-09T00:00:00+08:00", Exit.USAGE
        )
    try:  # in UTC, as the API does: the database keeps offsets up to 18 hours only
        when = when.astimezone(UTC) if when else None
    except OverflowError:
        fail("--since is outside the calendar once moved to UTC; give a later time.", Exit.USAGE)
    with gateway() as gw:
        rows = []
        after = ""
        while page := audit.entries(gw, since=when, key_id=key, after=after, limit=1000):
            rows += page
            after = page[-1]["audit_id"]
    if as_json:
        print_json({"items": rows, "next_cursor": None})
        return
    table = Table("at", "key", "role", "action", "target", "persons", "reason")
    for e in rows:
        table.add_row(
            e["at"],
            e["key_id"]
            or (f"{e['claimed_key_id']} (claimed, unverified)" if e.get("claimed_key_id") else "-"),
            e["role"],
            e["action"],
            e["target"] or "",
            str(len(e["person_ids"])),
            e["reason"] or "",
        )
    out.print(table)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain: report every gap (a deleted entry) and every edit."""
    from engine.access import audit

    with gateway() as gw:
        report = audit.verify(gw)
    for problem in report.problems:
        out.print(problem, highlight=False)
    if report.intact:
        out.print(f"audit log intact: {report.checked} entries, chain head {report.head_seq}")
        return
    out.print(
        f"audit log NOT intact: {len(report.problems)} problems in {report.checked} entries",
        highlight=False,
    )
    raise typer.Exit(Exit.AUDIT_BROKEN)


@app.command("generate")
def generate_cmd(
    out_dir: Annotated[Path, typer.Argument(help="folder to write the three files into")],
    registrations: Annotated[int, typer.Option(help="about how many registrations")] = 3000,
    seed: int = 20220409,
    days: int = 2,
    positive_rate: Annotated[
        float, typer.Option(help="share of positive pooled tubes (retests on top)")
    ] = 0.02,
    messy_rate: Annotated[float, typer.Option(help="share of messy registrations")] = 0.03,
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
) -> None:
    """Generate a synthetic city round (deterministic from the seed, streamed to disk)."""
    from loaders.generate import generate_city

    if fmt not in ("csv", "jsonl"):
        fail("--format is csv or jsonl", Exit.USAGE)
    stats = generate_city(
        out_dir,
        seed=seed,
        registrations=registrations,
        days=days,
        positive_rate=positive_rate,
        messy_rate=messy_rate,
        fmt=fmt,
    )
    out.print(
        f"{stats.registrations} registrations, {stats.tubes} tubes, {stats.compounds} "
        f"compounds, {stats.results} results ({stats.positive_tubes} positive) "
        f"in {out_dir}",
        highlight=False,
    )


@app.command("demo")
def demo(
    host: str = "127.0.0.1",
    port: int = 8000,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
    seed: int = 20220409,
) -> None:
    """Provision Neo4j, generate and load a small city, trace a positive tube, serve the API."""
    from cli.demo import run_demo

    run_demo(get_settings(), out, host=host, port=port, serve_api=serve_api, seed=seed)


ops.register(app)  # serve, backup, restore


def main() -> None:
    # The driver's and the gateway's warnings (a retried transaction) are not for the user:
    # an outage ends as one sentence from the error below.
    logging.getLogger("neo4j").setLevel(logging.CRITICAL)
    logging.getLogger("tubetrace.db").setLevel(logging.ERROR)
    try:
        app()
    except TubetraceError as exc:
        err.print(styled("red", "error:", f" {exc}"), highlight=False, soft_wrap=True)
        sys.exit(code_for(exc))
