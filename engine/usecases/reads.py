"""The use cases every interface calls (API, CLI, console): each checks the reveal rules,
scopes the read to the caller's district, masks by role, and records the audit entry of what
it shows before the answer leaves. Interfaces only parse their input and render the answer."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from contextlib import closing
from typing import TypeVar

from engine import codes, domain
from engine.access.audit import AuditSink
from engine.access.keys import Principal
from engine.access.masking import (
    check_reveal,
    person_view,
    quarantine_view,
    scope_district,
    sees_unmasked,
    trace_view,
)
from engine.analysis import outbreak, reports
from engine.contract import (
    AttackRateJSON,
    ClusterDetailJSON,
    ClusterJSON,
    ClustersJSON,
    ExposureJSON,
    PersonJSON,
    PersonStatusJSON,
    PositiveItemJSON,
    QuarantineItemJSON,
    RingsJSON,
    SignalsJSON,
    StatusChangeJSON,
    TaskJSON,
    TraceJSON,
)
from engine.feed import status
from engine.loop import tasks
from engine.reach import directory
from engine.reach.directory import DirectoryEntry
from engine.store.gateway import Gateway, split_page
from engine.trace.build import trace_tube

T = TypeVar("T")


def _person_ids(persons: Iterable[PersonJSON | None]) -> list[str]:
    return [p["person_id"] for p in persons if p is not None]


def _reason(reveal: bool, reason: str | None) -> str | None:
    return reason if reveal else None


def _how_shown(who: Principal, reveal: bool) -> str:
    """The audit entry's detail of a read that can be revealed."""
    return "cli" if who.is_cli else ("revealed" if reveal else "masked")


def _mask_tasks(items: list[TaskJSON], who: Principal, reveal: bool) -> list[TaskJSON]:
    for item in items:
        if item["person"] is not None:
            item["person"] = person_view(item["person"], who, reveal)
    return items


def read_trace(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    tube_code: str,
    *,
    reveal: bool = False,
    reason: str | None = None,
) -> TraceJSON:
    check_reveal(who, reveal, reason)
    missing = f"No tube with code '{tube_code}' was registered or reported."
    view = trace_view(trace_tube(gw, tube_code), who, reveal, missing)
    log.record(
        who,
        "trace",
        target=tube_code,
        person_ids=_person_ids(view["persons"]),
        reason=_reason(reveal, reason),
        detail=_how_shown(who, reveal),
    )
    return view


def read_traces(
    gw: Gateway, log: AuditSink, who: Principal, tube_codes: list[str], *, action: str
) -> list[TraceJSON]:
    """Several traces for an export (unmasked: the CLI only), one audit entry."""
    views = [trace_view(trace_tube(gw, code), who, True, "") for code in tube_codes]
    log.record(
        who,
        action,
        target=", ".join(tube_codes)[:200],
        person_ids=_person_ids([p for v in views for p in v["persons"]]),
    )
    return views


def read_tasks_page(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    district: str,
    *,
    status: str | None = None,
    cursor: str = "",
    limit: int = 100,
    reveal: bool = False,
    reason: str | None = None,
) -> tuple[list[TaskJSON], str | None]:
    check_reveal(who, reveal, reason)
    scoped = scope_district(who, district)
    assert scoped is not None
    items, next_cursor = tasks.tasks_page(gw, scoped, status, cursor, limit)
    _mask_tasks(items, who, reveal)
    log.record(
        who,
        "district_tasks",
        target=scoped,
        person_ids=_person_ids([i["person"] for i in items]),
        reason=_reason(reveal, reason),
    )
    return items, next_cursor


def read_all_tasks(
    gw: Gateway, log: AuditSink, who: Principal, district: str, status: str | None = None
) -> list[TaskJSON]:
    """Every page of a district's queue (the CLI), audited once before it is shown."""
    scoped = scope_district(who, district)
    assert scoped is not None
    items = _mask_tasks(tasks.all_tasks(gw, scoped, status), who, False)
    log.record(
        who, "district_tasks", target=scoped, person_ids=_person_ids([i["person"] for i in items])
    )
    return items


def move_task(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    task_id: str,
    *,
    to: str,
    outcome: str | None,
    note: str | None,
) -> TaskJSON:
    task = tasks.task_view(gw, tasks.transition(gw, task_id, who, to, outcome, note))
    _mask_tasks([task], who, False)
    log.record(
        who,
        "task_transition",
        target=task_id,
        person_ids=_person_ids([task["person"]]),
        detail=f"to {to}" + (f" ({outcome})" if outcome else ""),
    )
    return task


def _positive_items(
    items: list[PositiveItemJSON], who: Principal, reveal: bool
) -> list[PositiveItemJSON]:
    for item in items:
        item["trace"]["persons"] = [person_view(p, who, reveal) for p in item["trace"]["persons"]]
    return items


def read_positives_page(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    day: str,
    *,
    district: str | None = None,
    cursor: str = "",
    limit: int = 100,
    reveal: bool = False,
    reason: str | None = None,
    action: str = "positives",
) -> tuple[list[PositiveItemJSON], str | None]:
    check_reveal(who, reveal, reason)
    scoped = scope_district(who, district)
    items, next_cursor = reports.positives_page(gw, day, scoped, cursor, limit)
    return _shown_positives(log, who, day, items, action, reveal, reason), next_cursor


def _shown_positives(
    log: AuditSink,
    who: Principal,
    day: str,
    items: list[PositiveItemJSON],
    action: str,
    reveal: bool,
    reason: str | None,
) -> list[PositiveItemJSON]:
    """A page of the day's positives as `who` may see it, audited before it is shown."""
    _positive_items(items, who, reveal)
    log.record(
        who,
        action,
        target=day,
        person_ids=_person_ids([p for i in items for p in i["trace"]["persons"]]),
        reason=_reason(reveal, reason),
    )
    return items


def stream_positives(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    day: str,
    *,
    district: str | None = None,
    page: int = 500,
    action: str = "positives",
) -> Generator[PositiveItemJSON]:
    """Every positive of the day in one pass, page by page; each page is audited before it
    is yielded. The day and the district are checked here, before anything is read or
    written (a caller streaming JSON has not begun its envelope). Closing it closes the pass
    at once."""
    day = domain.parse_day(day)
    scoped = scope_district(who, district)
    if scoped is not None:
        codes.check_district(scoped)
    return _positives(gw, log, who, day, scoped, page, action)


def _positives(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    day: str,
    district: str | None,
    page: int,
    action: str,
) -> Generator[PositiveItemJSON]:
    with closing(reports.positives_pages(gw, day, district, page)) as pages:
        for items in pages:
            yield from _shown_positives(log, who, day, items, action, False, None)


def read_rings(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    person_id: str,
    *,
    cursor: str = "",
    limit: int = 100,
    depth: int = 2,
    reveal: bool = False,
    reason: str | None = None,
) -> RingsJSON:
    check_reveal(who, reveal, reason)
    answer = reports.rings(gw, person_id, cursor, limit)
    answer["ring1"] = [person_view(p, who, reveal) for p in answer["ring1"]]
    if depth < 2:
        answer["ring2"] = {"items": [], "next_cursor": None}
    answer["ring2"]["items"] = [person_view(p, who, reveal) for p in answer["ring2"]["items"]]
    log.record(
        who,
        "rings",
        target=person_id,
        person_ids=_person_ids(answer["ring1"]) + _person_ids(answer["ring2"]["items"]),
        reason=_reason(reveal, reason),
    )
    return answer


def read_exposure(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    person_id: str,
    *,
    depth: int = 3,
    days: int = 14,
    until: str | None = None,
    cursor: str = "",
    limit: int = 100,
    reveal: bool = False,
    reason: str | None = None,
) -> ExposureJSON:
    """Exposure rings to any depth; a district key reaches its own residents only (the
    person, and the ring members it is shown)."""
    check_reveal(who, reveal, reason)
    answer = outbreak.exposure(
        gw,
        person_id,
        depth=depth,
        days=days,
        until=until,
        cursor=cursor,
        limit=limit,
        district=scope_district(who, None),
    )
    shown: list[PersonJSON] = []
    for ring in answer["rings"]:
        ring["persons"] = [person_view(p, who, reveal) for p in ring["persons"]]
        shown += ring["persons"]
    log.record(
        who,
        "exposure",
        target=f"{person_id} depth {depth} {answer['since']}..{answer['until']}",
        person_ids=[person_id, *_person_ids(shown)],
        reason=_reason(reveal, reason),
        detail=_how_shown(who, reveal),
    )
    return answer


def _shown_clusters(
    log: AuditSink,
    who: Principal,
    clusters: Sequence[ClusterJSON],
    target: str,
    reveal: bool,
    reason: str | None,
) -> None:
    for c in clusters:
        c["persons"] = [person_view(p, who, reveal) for p in c["persons"]]
    log.record(
        who,
        "clusters",
        target=target,
        person_ids=_person_ids([p for c in clusters for p in c["persons"]]),
        reason=_reason(reveal, reason),
        detail=_how_shown(who, reveal),
    )


def read_clusters(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    since: str,
    until: str,
    *,
    cursor: str = "",
    limit: int = 50,
    reveal: bool = False,
    reason: str | None = None,
) -> ClustersJSON:
    """A page of the window's clusters of cases; a district key sees the clusters with its
    own residents in them, and only those residents."""
    check_reveal(who, reveal, reason)
    answer = outbreak.clusters(
        gw, since, until, cursor=cursor, limit=limit, district=scope_district(who, None)
    )
    target = f"{answer['since']}..{answer['until']} after {cursor or 'start'}"
    _shown_clusters(log, who, answer["clusters"], target, reveal, reason)
    return answer


def read_cluster(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    since: str,
    until: str,
    cluster_id: str,
    *,
    reveal: bool = False,
    reason: str | None = None,
) -> ClusterDetailJSON:
    """One cluster with its members' registrations (the console's graph), scoped as above."""
    check_reveal(who, reveal, reason)
    answer = outbreak.cluster(gw, since, until, cluster_id, district=scope_district(who, None))
    _shown_clusters(log, who, [answer], f"{cluster_id} {since}..{until}", reveal, reason)
    return answer


def read_signals(gw: Gateway, log: AuditSink, who: Principal, day: str) -> SignalsJSON:
    """The day's signals (no personal data: tubes, compounds, boxes, collectors, labs)."""
    answer = outbreak.signals(gw, day)
    log.record(who, "report_signals", target=answer["date"])
    return answer


def read_attack_rate(
    gw: Gateway, log: AuditSink, who: Principal, since: str, until: str
) -> AttackRateJSON:
    """Secondary attack rates by ring against the city's (counts only)."""
    answer = outbreak.attack_rate(gw, since, until)
    log.record(who, "report_attack_rate", target=f"{answer['since']}..{answer['until']}")
    return answer


def read_report(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    name: str,
    day: str,
    *,
    tz: str,
    district: str | None = None,
) -> Sequence[reports.ReportRow]:
    scoped = scope_district(who, district)
    rows = reports.run_report(gw, name, day, tz, scoped)
    log.record(who, f"report_{name}", target=day)
    return rows


def read_quarantine_page(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    *,
    cursor: str = "",
    limit: int = 200,
    reveal: bool = False,
    reason: str | None = None,
) -> tuple[list[QuarantineItemJSON], str | None]:
    """Quarantined lines, masked like every answer; the audit entry names the persons shown."""
    check_reveal(who, reveal, reason)
    rows: list[QuarantineItemJSON] = [
        r["item"] for r in gw.read("list_quarantine", after=cursor, limit=limit + 1)
    ]
    items, more = split_page(rows, limit)
    secret = gw.secret()
    shown: list[QuarantineItemJSON] = []
    person_ids: set[str] = set()
    for item in items:
        view, ids = quarantine_view(item, who, reveal, secret)
        view["at"] = domain.iso(view.get("at"))
        shown.append(view)
        person_ids.update(ids)
    log.record(
        who,
        "quarantine",
        target=f"after {cursor or 'start'}",
        person_ids=sorted(person_ids),
        reason=_reason(reveal, reason),
        detail=_how_shown(who, reveal),
    )
    return shown, (items[-1]["qkey"] if more and items else None)


def read_directory_entries(
    gw: Gateway, log: AuditSink, who: Principal, person_id: str
) -> list[DirectoryEntry]:
    """A person's directory entries with their keys (the operator's, to remove a wrong one):
    unmasked for the machine's own user, masked for anyone else; audited."""
    items = directory.entries(gw, person_id)
    if not sees_unmasked(who, False):
        for item in items:
            item["phone"] = domain.mask_phone(item.get("phone"))
            item["name"] = domain.mask_name(item.get("name"))
    log.record(
        who,
        "directory_entries",
        target=person_id,
        person_ids=[person_id] if items else [],
        detail=f"{len(items)} entries",
    )
    return items


def read_person_status(
    gw: Gateway, log: AuditSink, who: Principal, person_id: str, day: str
) -> PersonStatusJSON:
    """A person's status on a day; a district sees only its own residents."""
    answer = status.person_status(gw, person_id, day, who)
    log.record(who, "person_status", target=f"{person_id} {day}", person_ids=[person_id])
    return answer


def read_status_changes(
    gw: Gateway,
    log: AuditSink,
    who: Principal,
    *,
    cursor: str = "",
    limit: int = 500,
    with_names: bool = False,
) -> tuple[list[StatusChangeJSON], str | None]:
    """The health-code system's feed of status changes; the entry names every person in it.
    The health code is keyed by the ID number: a name goes out only when the installation asks
    for it (`TUBETRACE_STATUS_FEED_NAMES=1`), else `name` is null (data minimisation)."""
    items, next_cursor = status.changes_page(gw, cursor, limit)
    if not with_names:
        for item in items:
            item["person"]["name"] = None
    log.record(
        who,
        "status_changes",
        target=f"after {cursor or 'start'}",
        person_ids=sorted({i["person"]["person_id"] for i in items}),
        detail=f"{len(items)} changes",
    )
    return items, next_cursor


def sign_in(log: AuditSink, who: Principal) -> None:
    """A console session started with `who`'s key."""
    log.record(who, "console_login", detail="session started")


def refused(
    log: AuditSink,
    who: Principal,
    *,
    asked: str,
    status: int,
    message: str,
    claimed_key_id: str | None = None,
) -> None:
    """A refused attempt, audited like an answered one: who (a key only when proven; else
    keys.NOBODY, with the key id the caller typed as `claimed_key_id`, unverified), what it
    asked for (method and path), the status it got and why."""
    log.record(
        who,
        "denied",
        target=asked[:300],
        status=f"denied_{status}",
        detail=message[:300],
        claimed_key_id=claimed_key_id or None,
    )
