"""`tubetrace retention purge`: delete the personal data of sampling days older than the window."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.table import Table

from cli.connection import gateway, me
from cli.render import err, out, print_json, styled
from engine.access.audit import DirectAudit
from engine.settings import get_settings
from engine.usecases import writes

retention_app = typer.Typer(
    help="Retention: the personal data of old sampling days (docs/retention.md).",
    no_args_is_help=True,
)


@retention_app.command("purge")
def purge(
    keep_days: Annotated[
        int | None,
        typer.Option(
            "--keep-days",
            help="sampling days kept, ending with --today (default TUBETRACE_RETENTION_DAYS, 28)",
        ),
    ] = None,
    today: Annotated[
        str | None,
        typer.Option(help="YYYY-MM-DD, the window's last day (default: today in the time zone)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the same counts, delete nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Delete registrations, results, person-days, events and deliveries of the sampling days
    before the window, and the persons, tubes and boxes left with nothing; keep confirmed
    cases, open tasks and what they point at. Each day's aggregates are kept first, so the
    reports of a purged day answer as before. Safe to stop and to run again."""
    settings = get_settings()
    days = keep_days if keep_days is not None else settings.retention_days
    if days < 1:
        err.print(
            styled(
                "red",
                "error:",
                " TUBETRACE_RETENTION_DAYS is 0 (retention off): give --keep-days N",
            ),
            highlight=False,
        )
        raise typer.Exit(2)
    try:
        on = date.fromisoformat(today) if today else None
    except ValueError:
        err.print(styled("red", "error:", f" --today '{today}' is not YYYY-MM-DD"), highlight=False)
        raise typer.Exit(2) from None
    with gateway(settings) as gw:
        report = writes.purge_retention(
            gw,
            DirectAudit(gw),
            me(),
            keep_days=days,
            tz=settings.timezone,
            today=on,
            dry_run=dry_run,
        )
    answer = report.as_json()
    if as_json:
        print_json(answer)
        return
    verb = "would delete" if dry_run else "deleted"
    out.print(
        f"Window: {days} sampling days, {answer['oldest_kept_day']} to {answer['today']}; "
        f"days aggregated: {', '.join(answer['aggregated_days']) or 'none'}",
        highlight=False,
    )
    table = Table("label", verb)
    for label, n in answer["deleted"].items():
        table.add_row(label, str(n))
    out.print(table)
    out.print(
        f"kept older than the window: {answer['kept_cases']} registrations of confirmed "
        f"cases, {answer['kept_for_open_tasks']} for open tasks",
        highlight=False,
    )
