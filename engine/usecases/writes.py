"""The write use cases every interface calls (API, CLI, demo): each makes its change and records
the audit entry of it before the answer leaves. Interfaces only parse their input, call one of
these and render what it returns. The reads, and the task moves (they answer the task as
its caller may see it), are in `engine.usecases.reads`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date
from typing import Protocol, TypeVar

from engine.access import keys
from engine.access.audit import AuditSink
from engine.access.keys import Principal
from engine.contract import DirectoryRemovalJSON
from engine.errors import Forbidden
from engine.ops import retention
from engine.push import egress, webhooks
from engine.reach import directory
from engine.store.gateway import Gateway


class Counted(Protocol):
    """What a load reports: its kind and its counts as one line (the loaders' `Summary`)."""

    @property
    def kind(self) -> str: ...

    def line(self) -> str: ...


C = TypeVar("C", bound=Counted)


def load(log: AuditSink, who: Principal, store: Callable[[], C], *, target: str) -> C:
    """Records of one kind stored by `store` (the loaders' `load_records`, handed in: engine/
    does not import loaders/); the entry names what was sent (`target`) and holds the counts."""
    summary = store()
    _loaded(log, who, summary, target)
    return summary


def load_results(
    log: AuditSink,
    who: Principal,
    lab_codes: Iterable[object],
    store: Callable[[], C],
    *,
    target: str,
) -> C:
    """A lab's results: refused whole, before anything is stored, unless every record names
    one of the key's lab codes (Forbidden; the interface audits the refusal); then `load`."""
    keys.check_lab_codes(who, lab_codes)
    return load(log, who, store, target=target)


def bulk_loaded(
    log: AuditSink, who: Principal, summaries: Iterable[Counted], *, target: str
) -> None:
    """The bulk import writes with the database stopped (neo4j-admin): the bulk loader hands
    its summaries here once the database is back, and each kind gets the entry `load` makes."""
    for summary in summaries:
        _loaded(log, who, summary, target)


def _loaded(log: AuditSink, who: Principal, summary: Counted, target: str) -> None:
    log.record(who, f"load_{summary.kind}", target=target[:200], detail=summary.line())


def create_key(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    *,
    role: str,
    district: str | None,
    label: str | None = None,
    labs: Iterable[str] | None = None,
) -> keys.CreatedKey:
    """A new key; the entry names it and its role (never its secret)."""
    key = keys.create_key(gw, role=role, district=district, label=label, labs=labs)
    log.record(who, "key_create", target=key.key_id, detail=role)
    return key


def remove_directory_entry(
    gw: Gateway, log: AuditSink, who: Principal, entry_key: str
) -> DirectoryRemovalJSON:
    """A directory entry deleted (a wrong or hostile one); the person's tasks move as for late
    data. The entry names the key and the person, and how many tasks moved."""
    removed = directory.remove(gw, entry_key)
    log.record(
        who,
        "directory_remove",
        target=entry_key,
        person_ids=[removed["person_id"]] if removed["person_id"] else [],
        detail=f"{removed['tasks_moved']} tasks moved",
    )
    return removed


def revoke_key(gw: Gateway, log: AuditSink, who: Principal, key_id: str) -> None:
    keys.revoke_key(gw, key_id)
    log.record(who, "key_revoke", target=key_id)


def add_webhook(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    url: str,
    district: str | None,
    events: list[str],
    *,
    allow_private: bool = False,
) -> webhooks.Created:
    """A subscription; the entry names it and its URL (userinfo masked), never its secret."""
    created = webhooks.add(gw, url, district, events, allow_private=allow_private)
    log.record(who, "webhook_add", target=created.webhook_id, detail=egress.masked(url))
    return created


def remove_webhook(gw: Gateway, log: AuditSink, who: Principal, webhook_id: str) -> None:
    webhooks.remove(gw, webhook_id)
    log.record(who, "webhook_remove", target=webhook_id)


def redeliver(gw: Gateway, log: AuditSink, who: Principal, delivery_id: str) -> None:
    webhooks.redeliver(gw, delivery_id)
    log.record(who, "webhook_redeliver", target=delivery_id)


def purge_retention(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    *,
    keep_days: int,
    tz: str,
    today: date | None = None,
    dry_run: bool = False,
    batch: int = retention.TUBE_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> retention.PurgeReport:
    """Delete (or, dry, count) the personal data of sampling days older than the window
    (engine/ops/retention.py); admins only. One audit entry with its counts, after the run."""
    if who.role != "admin":
        raise Forbidden("Only an admin (or the machine's own user) runs the retention purge.")
    report = retention.purge(
        gw,
        keep_days=keep_days,
        tz=tz,
        today=today,
        dry_run=dry_run,
        batch=batch,
        on_batch=on_batch,
    )
    counts = report.as_json()
    log.record(
        who,
        "retention_dry_run" if dry_run else "retention_purge",
        target=f"before {report.oldest_kept_day} ({keep_days} days to {report.today})",
        detail=json.dumps(
            {k: counts[k] for k in ("deleted", "kept_for_open_tasks", "kept_cases")}
            | {"aggregated_days": len(report.aggregated_days)},
            separators=(",", ":"),
        ),
    )
    return report
