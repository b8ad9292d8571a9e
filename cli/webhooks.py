"""`tubetrace webhooks ...`: subscriptions of district systems and the delivery log."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from cli.connection import gateway, me
from cli.render import out, print_json
from engine.access.audit import DirectAudit
from engine.push import webhooks
from engine.settings import get_settings
from engine.usecases import writes

webhooks_app = typer.Typer(help="Webhooks to district systems.", no_args_is_help=True)


@webhooks_app.command("add")
def add(
    url: Annotated[str, typer.Option(help="where events are posted")],
    events: Annotated[str, typer.Option(help="task.created,task.updated,status.changed")],
    district: Annotated[
        str | None, typer.Option(help="only this district's tasks and residents")
    ] = None,
) -> None:
    """Subscribe; the id and the signing secret are printed once."""
    allow_private = get_settings().webhook_allow_private
    with gateway() as gw:
        names = [e.strip() for e in events.split(",") if e.strip()]
        created = writes.add_webhook(
            gw, DirectAudit(gw), me(), url, district, names, allow_private=allow_private
        )
    out.print(f"webhook id {created.webhook_id}", highlight=False)
    sys.stdout.write(f"secret {created.secret}\n")


@webhooks_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List subscriptions (never their secrets; userinfo in a URL masked) and the state of
    each endpoint: active, parked (after repeated failures, until a time) or probing."""
    with gateway() as gw:
        hooks = webhooks.list_all(gw, get_settings().webhook_breaker_failures)
    if as_json:
        print_json({"items": hooks, "next_cursor": None})
        return
    table = Table("webhook id", "url", "district", "events", "created", "state", "last error")
    for h in hooks:
        state = h["state"]
        if state == "parked":
            state = f"parked until {h['parked_until']} ({h['failures']} failures in a row)"
        table.add_row(
            h["webhook_id"],
            h["url"],
            h["district_code"] or "city",
            ",".join(h["events"]),
            h["created_at"] or "",
            state,
            (h["last_error"] or "") if h["failures"] else "",
        )
    out.print(table)


@webhooks_app.command("remove")
def remove(webhook_id: str) -> None:
    """Stop a subscription (its delivery log stays)."""
    with gateway() as gw:
        writes.remove_webhook(gw, DirectAudit(gw), me(), webhook_id)
    out.print(f"webhook {webhook_id} removed")


@webhooks_app.command("deliveries")
def deliveries(
    failed: Annotated[bool, typer.Option("--failed", help="only the failed ones")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The delivery log: attempts, status and last error of each delivery."""
    with gateway() as gw:
        rows = webhooks.deliveries(gw, failed_only=failed)
    if as_json:
        print_json({"items": rows, "next_cursor": None})
        return
    table = Table("delivery id", "webhook", "event", "type", "status", "attempts", "last error")
    for d in rows:
        table.add_row(
            d["delivery_id"],
            d["webhook_id"],
            d["event_id"],
            d["event_type"],
            d["status"],
            str(d["attempts"]),
            (d["last_error"] or "")
            + (
                f" (endpoint parked until {d['webhook_parked_until']})"
                if d["webhook_parked_until"]
                else ""
            ),
        )
    out.print(table)


@webhooks_app.command("redeliver")
def redeliver(delivery_id: str) -> None:
    """Send a delivery again (with the same webhook-id), whatever its status."""
    with gateway() as gw:
        writes.redeliver(gw, DirectAudit(gw), me(), delivery_id)
    out.print(f"delivery {delivery_id} queued again")
