"""Running the service: `serve` (several workers), `backup` and `restore`."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from cli.render import err, out, styled
from engine.settings import get_settings


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            envvar="TUBETRACE_WORKERS",
            help="API processes (uvicorn workers); sessions, jobs and metrics are shared",
        ),
    ] = 1,
) -> None:
    """Run the HTTP API (and the console, webhooks and daily jobs)."""
    import uvicorn

    from api.observe import uvicorn_log_config

    settings = get_settings()
    # The CLI quiets the gateway's warnings for one-shot commands (cli.main); a server's log
    # keeps them: "the database does not answer" and "answers again" are what on-call reads.
    logging.getLogger("tubetrace.db").setLevel(logging.NOTSET)
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its request counters here; /metrics (answered by any worker)
        # adds them up. Made fresh for each start: counters begin at zero with the processes.
        metrics_dir = tempfile.mkdtemp(prefix="tubetrace-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            # The request log (api.observe) is the access log: uvicorn's own would print raw
            # paths with their query strings.
            access_log=False,
            log_config=uvicorn_log_config(settings.log_format),
            log_level="info",
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def backup(
    folder: Annotated[Path, typer.Argument(help="a new (or empty) folder for the backup")],
) -> None:
    """Back up the managed server: dump (Neo4j stopped meanwhile), journals, manifest."""
    from engine.ops import backup as backups

    report = backups.backup(get_settings(), folder)
    m = report.manifest
    phases = m["downtime_phases_s"]
    out.print(
        f"backup in {folder}: {m['counts']['nodes']} nodes, {m['counts']['relationships']} "
        f"relationships, {len(m['files']) - 1} audit journals; the database was down "
        f"{report.downtime_s:.1f} s (stop {phases['stop']:.1f}, copy {phases['copy']:.1f}, "
        f"start {phases['start']:.1f}); the dump took {report.dump_s:.1f} s while it served",
        highlight=False,
    )


def restore(
    folder: Annotated[Path, typer.Argument(help="a folder written by `tubetrace backup`")],
    force: Annotated[bool, typer.Option("--force", help="replace a home that holds data")] = False,
) -> None:
    """Restore a backup into TUBETRACE_HOME (checked first; a home with data needs --force)."""
    from engine.ops import backup as backups

    report = backups.restore(get_settings(), folder, force=force)
    for warning in report.warnings:
        err.print(styled("yellow", "warning:", f" {warning}"), highlight=False)
    m = report.manifest
    out.print(
        f"restored the backup of {m['created_at']}: {report.counts['nodes']} nodes, "
        f"{report.counts['relationships']} relationships, {report.journal_entries} audit "
        f"entries replayed from its journals; the database was down {report.downtime_s:.1f} s",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("backup")(backup)
    app.command("restore")(restore)
