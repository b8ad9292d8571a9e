"""The closed loop: tasks created from results, linked to retests, moved through their
lifecycle by district units and investigators, and listed per residence district."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypedDict, cast

from neo4j import ManagedTransaction
from neo4j.time import DateTime

from engine import codes, domain
from engine.access.keys import Principal
from engine.access.masking import has_investigator_rights, task_visible
from engine.contract import (
    CompoundJSON,
    ContactRouteJSON,
    HistoryJSON,
    Outcome,
    PersonJSON,
    ResidenceCompoundJSON,
    TaskJSON,
    TaskKind,
    TaskStatus,
    TraceJSON,
)
from engine.errors import InputError, NotFound, TransitionError
from engine.feed import outbox
from engine.records import StoredHistory, StoredTask
from engine.store.gateway import Gateway, split_page
from engine.trace.build import person_in, trace_many

STATUSES = tuple(s.value for s in TaskStatus)
OUTCOMES = tuple(o.value for o in Outcome)
KINDS = tuple(k.value for k in TaskKind)
UNASSIGNED = domain.UNASSIGNED
# Moves a district unit or an investigator may make; `closed` from retest_collected carries
# released or confirmed. An investigator may also close any open task (closed_by_investigator).
ALLOWED = {
    "pending": ("acknowledged", "unreachable"),
    "acknowledged": ("contacted", "unreachable"),
    "contacted": ("retest_collected", "unreachable"),
    "unreachable": ("contacted",),
    "retest_collected": ("closed",),
    "closed": (),
}


# An open task older than this is overdue: the console's queue marks it, the timeliness
# report counts it.
OVERDUE_AFTER = timedelta(hours=24)


def overdue(status: str, created_at: datetime | None, now: datetime) -> bool:
    if status == TaskStatus.CLOSED or created_at is None:
        return False
    return now - created_at > OVERDUE_AFTER


def task_id(person_id: str, tube_code: str, kind: str) -> str:
    digest = hashlib.sha256(f"{person_id}|{tube_code}|{kind}".encode()).hexdigest()
    return "k_" + digest[:24]


def _history(
    status: str, at: datetime, actor: str, note: str | None, outcome: str | None = None
) -> str:
    entry = {"status": status, "at": domain.iso(at), "actor": actor, "note": note}
    if outcome is not None:
        entry["outcome"] = outcome
    return json.dumps(entry, ensure_ascii=False)


class Member(TypedDict):
    """A registration of a resulted tube, as `dispatch_context` lists it."""

    person_id: str
    record_id: str
    pool_size: int | None
    day: str | None
    collected_at: DateTime | None
    compound_code: str | None
    district_code: str | None


class DispatchContext(TypedDict):
    """A `dispatch_context` row: a result, its tube's members and their open tasks."""

    key: str
    result: str | None
    reported_at: DateTime | None
    day: str | None
    tube_code: str
    members: list[Member]
    retest_tasks: list[str]
    open_resample_tasks: list[str]
    open_case_tasks: list[str]
    person_open_tasks: list[str]


class _TaskProps(TypedDict):
    task_id: str
    kind: str
    status: str
    outcome: str | None
    tube_code: str
    person_id: str
    record_id: str
    district_code: str
    compound_code: str | None
    result_at: DateTime | None
    collected_at: DateTime | None
    result_day: str | None
    repeat_positive_pool: bool
    sort_key: str


class TaskUpsert(TypedDict):
    """A row of `upsert_tasks`."""

    task_id: str
    person_id: str
    tube_code: str
    history: str
    props: _TaskProps


class Case(TypedDict):
    """A row of `confirm_cases`."""

    person_id: str
    tube_code: str
    collected_at: DateTime | None
    compound_code: str | None


@dataclass
class DispatchPlan:
    """What a batch of results does to the task graph; computed without touching it."""

    upserts: list[TaskUpsert] = field(default_factory=list)
    closes: list[tuple[list[str], str, str]] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    positive_persons: list[str] = field(default_factory=list)


@dataclass
class TaskChanges:
    """Tasks a transaction created or changed: their `task.*` events go to the outbox."""

    created: set[str] = field(default_factory=set)
    updated: set[str] = field(default_factory=set)

    def add(self, other: TaskChanges) -> None:
        self.created |= other.created
        self.updated |= other.updated


def _task(kind: str, member: Member, ctx: DispatchContext, now: datetime, note: str) -> TaskUpsert:
    tube_code = ctx["tube_code"]
    reported_at = ctx["reported_at"]
    tid = task_id(member["person_id"], tube_code, kind)
    utc = (reported_at.to_native() if isinstance(reported_at, DateTime) else now).astimezone(UTC)
    district = member["district_code"] or UNASSIGNED
    return {
        "task_id": tid,
        "person_id": member["person_id"],
        "tube_code": tube_code,
        "history": _history("pending", now, "system", note),
        "props": {
            "task_id": tid,
            "kind": kind,
            "status": "pending",
            "outcome": None,
            "tube_code": tube_code,
            "person_id": member["person_id"],
            "record_id": member["record_id"],
            "district_code": district,
            "compound_code": member["compound_code"],
            "result_at": reported_at,
            "collected_at": member["collected_at"],
            "result_day": ctx["day"],
            "repeat_positive_pool": False,
            "sort_key": f"1|{utc.isoformat()}|{tid}",
        },
    }


def plan_dispatch(contexts: list[DispatchContext], now: datetime) -> DispatchPlan:
    plan = DispatchPlan()
    for ctx in contexts:
        members = ctx["members"]
        tube = ctx["tube_code"]
        result = ctx["result"]
        pooled = _is_pooled(ctx)
        if result == "invalid":
            for m in members:
                plan.upserts.append(
                    _task("resample", m, ctx, now, f"tube {tube} result invalid: resample")
                )
        elif result == "positive" and pooled:
            for m in members:
                plan.upserts.append(
                    _task("follow_up", m, ctx, now, f"member of positive pooled tube {tube}")
                )
                plan.positive_persons.append(m["person_id"])
            if ctx["open_resample_tasks"]:
                plan.closes.append(
                    (
                        ctx["open_resample_tasks"],
                        "superseded",
                        f"tube {tube} later reported positive",
                    )
                )
        elif result == "positive" and members:
            member = members[0]
            if ctx["retest_tasks"]:
                plan.closes.append(
                    (ctx["retest_tasks"], "confirmed", f"single-tube retest {tube} positive")
                )
                if ctx["open_case_tasks"]:
                    # Reported before its pool's positive result: the case task it opened then
                    # is this confirmed follow-up (the order in which results arrive does not
                    # leave two open tasks for one positive tube).
                    plan.closes.append(
                        (
                            ctx["open_case_tasks"],
                            "superseded",
                            f"single-tube retest {tube} confirmed a follow-up",
                        )
                    )
            elif not ctx["person_open_tasks"]:
                plan.upserts.append(_task("case", member, ctx, now, f"positive single tube {tube}"))
            plan.cases.append(
                {
                    "person_id": member["person_id"],
                    "tube_code": tube,
                    "collected_at": member["collected_at"],
                    "compound_code": member["compound_code"],
                }
            )
        elif result == "negative" and ctx["retest_tasks"]:
            plan.closes.append(
                (ctx["retest_tasks"], "released", f"single-tube retest {tube} negative")
            )
    return plan


def _is_pooled(ctx: DispatchContext) -> bool:
    """A tube is pooled when a registration declares it so, or when it holds several persons
    whatever they declared (their follow-up must not wait for a clean declaration)."""
    members = ctx["members"]
    return len(members) > 1 or any(domain.is_pooled(m["pool_size"]) for m in members)


def _apply(
    gw: Gateway, tx: ManagedTransaction, plan: DispatchPlan, now: datetime, changes: TaskChanges
) -> None:
    if plan.upserts:
        for r in gw.run_in(tx, "upsert_tasks", tasks=plan.upserts, now=now):
            (changes.created if r["created"] else changes.updated).add(r["task_id"])
    if plan.closes:
        # One statement for every close (a day's retests are tens of thousands); a task in
        # two closes is closed by the first, as one statement per close would.
        closes: dict[str, dict[str, str]] = {}
        for task_ids, outcome, note in plan.closes:
            for tid in task_ids:
                closes.setdefault(tid, {"task_id": tid, "outcome": outcome, "note": note})
        ordered = [closes[tid] for tid in sorted(closes)]  # one lock order for every writer
        rows = gw.run_in(tx, "close_tasks", closes=ordered, now=now, at=domain.iso(now))
        changes.updated |= {r["task_id"] for r in rows}
    if plan.cases:
        gw.run_in(tx, "confirm_cases", cases=plan.cases, now=now)
    if plan.positive_persons:
        gw.run_in(tx, "mark_repeat_positive", person_ids=sorted(set(plan.positive_persons)))


def dispatch(gw: Gateway, tx: ManagedTransaction, result_keys: list[str]) -> TaskChanges:
    """Run in the loader's transaction: results and their tasks commit together.

    Pooled results go first; new tasks then pick up single-tube retests that were registered
    (and perhaps reported) before them; single-tube results go last, so the order in which
    files arrive does not change the outcome."""
    changes = TaskChanges()
    if not result_keys:
        return changes
    now = datetime.now(UTC)
    contexts = cast(
        list[DispatchContext], gw.run_in(tx, "dispatch_context", result_keys=result_keys)
    )
    pooled = [c for c in contexts if _is_pooled(c)]
    single_keys = [c["key"] for c in contexts if not _is_pooled(c)]
    plan = plan_dispatch(pooled, now)
    _apply(gw, tx, plan, now, changes)
    if plan.upserts:
        linked = gw.run_in(
            tx,
            "link_earlier_retests",
            task_ids=[u["task_id"] for u in plan.upserts],
            now=now,
            at=domain.iso(now),
        )
        changes.updated |= {r["task_id"] for r in linked}
        single_keys += [r["key"] for r in linked if r["key"] and r["key"] not in single_keys]
    if single_keys:
        singles = cast(
            list[DispatchContext], gw.run_in(tx, "dispatch_context", result_keys=single_keys)
        )
        _apply(gw, tx, plan_dispatch(singles, now), now, changes)
    changes.updated -= changes.created
    return changes


def after_registrations(
    gw: Gateway, tx: ManagedTransaction, single_keys: list[str], resulted_keys: list[str]
) -> TaskChanges:
    """Single-tube retests move open tasks to retest_collected; registrations arriving after
    their tube's result are dispatched too (a retest's negative result then releases its
    task). Registrations by their
    (source, record_id) key (`reg_key`): `single_keys` those of pool size 1, `resulted_keys`
    those whose tube has a result that can move a task (the others can do neither)."""
    changes = TaskChanges()
    now = datetime.now(UTC)
    if single_keys:
        rows = gw.run_in(tx, "link_retests", reg_keys=single_keys, now=now, at=domain.iso(now))
        changes.updated |= {r["task_id"] for r in rows}
    if resulted_keys:
        rows = gw.run_in(tx, "result_keys_of_registrations", reg_keys=resulted_keys)
        changes.add(dispatch(gw, tx, [r["key"] for r in rows]))
    changes.updated -= changes.created
    return changes


def _check_transition(task: StoredTask, who: Principal, to: str, outcome: str | None) -> None:
    current = task["status"]
    if to not in STATUSES:
        raise InputError(f"unknown status '{to}'; statuses are {', '.join(STATUSES)}")
    if outcome is not None and outcome not in OUTCOMES:
        raise InputError(f"unknown outcome '{outcome}'; outcomes are {', '.join(OUTCOMES)}")
    if to != "closed" and outcome is not None:
        raise TransitionError(f"only a move to 'closed' carries an outcome, not '{to}'")
    if to == "closed" and outcome == "closed_by_investigator":
        if not has_investigator_rights(who):
            raise TransitionError("only an investigator may close a task as closed_by_investigator")
        if current == "closed":
            raise TransitionError("the task is already 'closed'")
        return
    allowed = ALLOWED[current]
    if to not in allowed:
        options = ", ".join(allowed) or "nothing (it is closed)"
        extra = (
            "; an investigator may also close it (outcome closed_by_investigator)"
            if current != "closed"
            else ""
        )
        raise TransitionError(f"a task in '{current}' can move to {options}{extra}, not to '{to}'")
    if to == "closed" and outcome not in ("released", "confirmed"):
        raise TransitionError("closing after a retest needs outcome 'released' or 'confirmed'")


def _resent(
    task: StoredTask, who: Principal, to: str, outcome: str | None, note: str | None
) -> bool:
    """The very move that made the task what it is, sent again by the same key (a retry after a
    lost answer): it changes nothing and answers the task as it is."""
    history = task.get("history") or []
    if task["status"] != to or task.get("outcome") != outcome or not history:
        return False
    last = json.loads(history[-1])
    return bool(last.get("actor") == who.key_id and last.get("note") == note)


def transition(
    gw: Gateway, task_id_: str, who: Principal, to: str, outcome: str | None, note: str | None
) -> StoredTask:
    """Validate and apply one move, atomically: the task's write lock is taken before its status
    is read, so of concurrent moves exactly one wins each step and the others see its result (a
    409 naming the status). The same move sent again by the same key changes nothing."""

    codes.check_text(note, "note", multiline=True)

    def work(tx: ManagedTransaction) -> StoredTask:
        task: StoredTask | None = gw.run_in(tx, "lock_task", task_id=task_id_).value_or_none()
        if task is None or not task_visible(task, who):
            raise NotFound(f"No task with id '{task_id_}'.")
        if _resent(task, who, to, outcome, note):
            return task.copy()
        try:
            _check_transition(task, who, to, outcome)
        except TransitionError as e:
            raise TransitionError(_with_status(str(e), task["status"])) from None
        if to == "closed" and outcome == "closed_by_investigator" and not (note or "").strip():
            raise TransitionError("closing as closed_by_investigator needs a note")
        now = datetime.now(UTC)
        entry = _history(to, now, who.key_id, note, outcome)
        moved: StoredTask | None = gw.run_in(
            tx,
            "set_task_status",
            task_id=task_id_,
            expected=task["status"],
            status=to,
            outcome=outcome,
            entry=entry,
            now=now,
        ).value_or_none()
        if moved is None:
            raise TransitionError("the task changed meanwhile; read it again and retry")
        outbox.append(gw, tx, outbox.task_events(gw, tx, set(), {task_id_}, now))
        return moved.copy()

    return gw.write_tx(work)


def _with_status(message: str, status: str) -> str:
    return message if f"'{status}'" in message else f"{message} (the task is '{status}')"


def contact_route(person: PersonJSON | None) -> ContactRouteJSON:
    """How the district unit reaches the person: the first of the person's `contacts`, else
    through the residence compound's phone (the residents' committee)."""
    if person and person.get("contacts"):
        return {"contact_via": "phone", "contact_phone": None}
    residence = person["residence"] if person else None
    return {
        "contact_via": "compound",
        "contact_phone": residence["contact_phone"] if residence else None,
    }


def task_json(task: StoredTask, trace: TraceJSON | None) -> TaskJSON:
    person = None
    compound: CompoundJSON | ResidenceCompoundJSON | None = None
    if trace is not None:
        # The task's own person: the registration the task was made from first.
        person = person_in(trace, task.get("person_id"), task.get("record_id"))
        compound = trace["compound"]
        if person is not None and person["residence"]["compound_code"] != (
            compound["code"] if compound else None
        ):
            compound = {
                "code": person["residence"]["compound_code"],
                "address": person["residence"]["address"],
                "district_code": person["residence"]["district_code"],
                "contact_phone": person["residence"]["contact_phone"],
            }
    flags = ["repeat_positive_pool"] if task.get("repeat_positive_pool") else []
    return {
        **contact_route(person),
        "task_id": task["task_id"],
        "status": task["status"],
        "outcome": task.get("outcome"),
        "kind": task["kind"],
        "tube_code": task["tube_code"],
        "district_code": task["district_code"],
        "person": person,
        "compound": compound,
        "flags": flags,
        "result_at": domain.iso(task.get("result_at")),
        "created_at": domain.iso(task["created_at"]),
        "updated_at": domain.iso(task["updated_at"]),
        "history": [_history_json(h) for h in task.get("history") or []],
    }


def _history_json(text: str) -> HistoryJSON:
    e: StoredHistory = json.loads(text)
    return {
        "status": e["status"],
        "at": e["at"],
        "actor": e["actor"],
        "note": e.get("note"),
        "outcome": e.get("outcome"),
    }


def tasks_page(
    gw: Gateway, district: str, status: str | None, cursor: str, limit: int
) -> tuple[list[TaskJSON], str | None]:
    if status is not None and status not in STATUSES:
        raise InputError(f"unknown status '{status}'; statuses are {', '.join(STATUSES)}")
    rows: list[StoredTask] = [
        r["task"]
        for r in gw.read(
            "district_tasks", district_code=district, status=status, after=cursor, limit=limit + 1
        )
    ]
    rows, more = split_page(rows, limit)
    traces = trace_many(gw, sorted({t["tube_code"] for t in rows}))
    items = [task_json(t, traces.get(t["tube_code"])) for t in rows]
    return items, (rows[-1]["sort_key"] if more and rows else None)


def all_tasks(
    gw: Gateway, district: str, status: str | None = None, page: int = 500
) -> list[TaskJSON]:
    items: list[TaskJSON] = []
    cursor: str | None = ""
    while cursor is not None:
        more, cursor = tasks_page(gw, district, status, cursor, page)
        items += more
    return items


def task_view(gw: Gateway, task: StoredTask) -> TaskJSON:
    """A task as stored (for example as a transition left it) in its JSON shape."""
    return task_json(task, trace_many(gw, [task["tube_code"]]).get(task["tube_code"]))


def get_task(gw: Gateway, task_id_: str, who: Principal) -> TaskJSON:
    task: StoredTask | None = gw.read("get_task", task_id=task_id_).value_or_none()
    if task is None or not task_visible(task, who):
        raise NotFound(f"No task with id '{task_id_}'.")
    return task_view(gw, task)
