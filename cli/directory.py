"""`tubetrace directory ...`: a person's population-directory entries, and removing a wrong or
hostile one (the person's tasks then move as for late data)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.connection import gateway, me
from cli.render import out, print_json
from engine.access.audit import DirectAudit
from engine.usecases import reads, writes

directory_app = typer.Typer(
    help="The population directory: list a person's entries, remove one.", no_args_is_help=True
)


@directory_app.command("list")
def list_cmd(
    person_id: Annotated[str, typer.Argument(help="the person's id, as in a trace")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A person's directory entries with their keys (audited)."""
    with gateway() as gw:
        items = reads.read_directory_entries(gw, DirectAudit(gw), me(), person_id)
    if as_json:
        print_json({"items": items, "next_cursor": None})
        return
    table = Table("entry key", "source", "phone", "owner", "residence", "updated", "flags")
    for e in items:
        table.add_row(
            e["entry_key"],
            e.get("source") or "",
            e.get("phone") or "",
            e.get("phone_owner") or "",
            e.get("residence_compound_code") or "",
            e.get("updated_at") or "",
            ", ".join(e["flags"]),
        )
    out.print(table)


@directory_app.command("remove")
def remove_cmd(
    entry_key: Annotated[str, typer.Argument(help="the entry's key (directory list)")],
) -> None:
    """Remove one entry; the person's residence and tasks are worked out again (audited)."""
    with gateway() as gw:
        removed = writes.remove_directory_entry(gw, DirectAudit(gw), me(), entry_key)
    out.print(
        f"directory entry {removed['entry_key']} removed; "
        f"{removed['tasks_moved']} tasks moved to another district",
        highlight=False,
    )
