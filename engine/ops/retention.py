"""Retention (storage limitation): the personal data of sampling days older than the window goes.

The window is the `keep_days` sampling days ending with `today`; every day before its oldest
day is purged, in four steps, each safe to stop and to run again:

1. Aggregate. Each day not yet marked gets its aggregates (per compound and per district:
   tubes pooled and single, positive tubes, registrations, persons, statuses, tasks by outcome;
   and the rows of the reports read by day) and its `RetentionDay` marker, in one transaction,
   before anything is deleted. Every day is aggregated before any tube goes: a tube swabbed on
   one day and reported on the next feeds the next day's reports.
2. Tubes. The unit is the tube: it goes whole (registrations, results, closed tasks) when none
   of its registrations or results is inside the window, nobody in it is a confirmed case or has
   an open task, and no case or open task points at it. A batch of tubes per transaction,
   locked and checked again inside it, while the API and the loads go on.
3. What is left. Persons and boxes of the tubes that went are marked `RetentionPending` in the
   same transaction; each is then deleted when nothing is left to it (a person with a
   directory entry stays), and a person who stays loses the days that have no registration
   left. A run stopped between 2 and 3 finds the marks and finishes them.
4. Events. The outbox loses its oldest events, in order, while they are older than the window
   (with the webhook deliveries made of them); the number of the last one deleted is kept, and a
   feed cursor before it is expired (`CursorExpired`).

`--dry-run` walks the same steps without writing: steps 2-4 are judged by the same queries and
rules, with the tubes that would go held in memory."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TypedDict, cast
from zoneinfo import ZoneInfo

from neo4j import ManagedTransaction

from engine import domain
from engine.access.keys import Principal
from engine.analysis import reports
from engine.errors import DatabaseUnavailable, InputError
from engine.feed import outbox
from engine.settings import Settings
from engine.store.gateway import Gateway

log = logging.getLogger("tubetrace.retention")

LABELS = (
    "Registration",
    "Result",
    "Tube",
    "Task",
    "Person",
    "PersonDay",
    "Box",
    "Event",
    "Delivery",
)
STORED_REPORTS = ("completeness", "household-separation", "timeliness")
TUBE_BATCH = 500  # tubes per transaction: ~6,000 nodes of a 10-person pool round
EVENT_BATCH = 5000


class PurgeJSON(TypedDict):
    """A purge's report as `tubetrace retention purge --json` and the log line show it."""

    today: str
    keep_days: int
    oldest_kept_day: str
    dry_run: bool
    deleted: dict[str, int]
    kept_for_open_tasks: int
    kept_cases: int
    aggregated_days: list[str]


class _Verdict(TypedDict):
    """A row of `retention_tube_verdicts`: a tube, and whether (and why) it is kept."""

    code: str
    kept: str | None  # case, open_task, or None: it goes
    registrations: int
    results: int
    tasks: int
    persons: list[str]
    boxes: list[str]


class _Held(TypedDict):
    day: str | None
    tube: str


class _Day(TypedDict):
    day: str | None


class PersonFacts(TypedDict):
    """A row of `retention_person_facts`: what still holds a person."""

    person_id: str
    protected: bool
    directory: bool
    registrations: list[_Held]
    task_tubes: list[str]
    days: list[_Day]


class BoxFacts(TypedDict):
    """A row of `retention_box_facts`: the tubes a box still holds."""

    box_code: str
    tubes: list[str]


@dataclass
class PurgeReport:
    """What a purge deleted (or, dry, would delete) and what it kept for cases and tasks."""

    today: str
    keep_days: int
    oldest_kept_day: str
    dry_run: bool
    deleted: Counter[str] = field(default_factory=Counter)
    kept_for_open_tasks: int = 0  # registrations older than the window kept for open tasks
    kept_cases: int = 0  # registrations older than the window kept for confirmed cases
    aggregated_days: list[str] = field(default_factory=list)

    def as_json(self) -> PurgeJSON:
        return {
            "today": self.today,
            "keep_days": self.keep_days,
            "oldest_kept_day": self.oldest_kept_day,
            "dry_run": self.dry_run,
            "deleted": {label: int(self.deleted[label]) for label in LABELS},
            "kept_for_open_tasks": self.kept_for_open_tasks,
            "kept_cases": self.kept_cases,
            "aggregated_days": list(self.aggregated_days),
        }


def local_today(tz: str) -> date:
    return datetime.now(ZoneInfo(tz)).date()


def oldest_kept_day(today: date, keep_days: int) -> date:
    """The first day of the window of `keep_days` sampling days ending with `today`."""
    if keep_days < 1:
        raise InputError("--keep-days is at least 1 (the window ends with today)")
    return today - timedelta(days=keep_days - 1)


def data_days(gw: Gateway, before: str) -> list[str]:
    """The days before `before` with registrations (by sampling day) or results (by
    reporting day), oldest first."""
    days: list[str] = []
    day = gw.read("retention_next_day", after="").value()
    while day is not None and day < before:
        days.append(day)
        day = gw.read("retention_next_day", after=day).value()
    return days


# ---------------------------------------------------------------- 1. aggregates


def _district_of(codes: dict[str, str], compound_code: str | None) -> str:
    return codes.get(compound_code or "", domain.UNASSIGNED)


def day_aggregates(gw: Gateway, day: str, tz: str) -> list[dict[str, str | int]]:
    """A sampling day's aggregates per compound and per district, and the rows of the reports
    read by day (`STORED_REPORTS`), as `DayAggregate` properties (no personal data)."""
    districts = {c["code"]: c["district_code"] for c in gw.read("known_compounds")}
    by: dict[tuple[str, str], Counter[str]] = {}

    def add(scope: str, code: str, counts: dict[str, int]) -> None:
        by.setdefault((scope, code), Counter()).update(counts)

    for r in gw.read("retention_day_tube_stats", day=day):
        counts = {
            "registrations": r["registrations"],
            "tubes_pooled": r["tubes_pooled"],
            "tubes_single": r["tubes"] - r["tubes_pooled"],
            "positive_tubes": r["positive_tubes"],
            **{f"tasks_{k}": v for k, v in r["tasks"].items()},
        }
        add("compound", r["compound_code"] or "", counts)
        add("district", _district_of(districts, r["compound_code"]), counts)
    for r in gw.read("retention_day_person_stats", day=day):
        counts = {"persons": r["persons"], **{f"status_{k}": v for k, v in r["statuses"].items()}}
        add("compound", r["compound_code"] or "", counts)
        add("district", _district_of(districts, r["compound_code"]), counts)
    rows: list[dict[str, str | int]] = [
        {"key": f"{day}|{scope}|{code}", "day": day, "scope": scope, "code": code, **counts}
        for (scope, code), counts in sorted(by.items())
    ]
    for name in STORED_REPORTS:
        answer = reports.run_report(gw, name, day, tz, live=True)
        rows.append(
            {
                "key": reports.stored_report_key(day, name),
                "day": day,
                "scope": "report",
                "code": name,
                "rows": json.dumps(answer, ensure_ascii=False),
            }
        )
    return rows


def _aggregate(gw: Gateway, days: list[str], keep_days: int, tz: str, dry_run: bool) -> list[str]:
    """Aggregates and markers of the days not marked yet; the days aggregated."""
    marked = {r["day"] for r in gw.read("retention_markers")}
    done = []
    for day in days:
        if day in marked:
            continue
        done.append(day)
        if dry_run:
            continue
        codes = [r["code"] for r in gw.read("retention_day_tubes", day=day)]
        marker = {
            "state": "aggregated",
            "keep_days": keep_days,
            "tube_min": codes[0] if codes else None,
            "tube_max": codes[-1] if codes else None,
            "aggregated_at": datetime.now(UTC),
        }
        gw.write(
            "retention_store_day", day=day, aggregates=day_aggregates(gw, day, tz), marker=marker
        )
    return done


# ---------------------------------------------------------------- 2. tubes


@dataclass
class _Pass:
    """A purge's state across its steps."""

    report: PurgeReport
    cutoff: str
    batch: int
    seen: set[str] = field(default_factory=set)  # tubes judged by this run
    doomed: set[str] = field(default_factory=set)  # dry run: the tubes that would go
    persons: set[str] = field(default_factory=set)  # dry run: whose tubes would go
    boxes: set[str] = field(default_factory=set)


def _judge(p: _Pass, verdicts: list[_Verdict]) -> list[_Verdict]:
    """The tubes that go; counts what they take and what is kept for cases and tasks."""
    going = []
    for v in verdicts:
        p.seen.add(v["code"])
        if v["kept"] == "case":
            p.report.kept_cases += v["registrations"]
        elif v["kept"] == "open_task":
            p.report.kept_for_open_tasks += v["registrations"]
        elif v["kept"] is None:
            going.append(v)
    return going


def _count_going(p: _Pass, going: list[_Verdict]) -> None:
    for v in going:
        p.report.deleted.update(
            {
                "Tube": 1,
                "Registration": v["registrations"],
                "Result": v["results"],
                "Task": v["tasks"],
            }
        )


def _tube_batch(gw: Gateway, p: _Pass, codes: list[str]) -> tuple[list[str], list[str]]:
    """One batch in one transaction: the tubes and their persons locked, judged again, and
    those that go deleted. Returns the persons and boxes they leave to look at."""

    def work(tx: ManagedTransaction) -> list[_Verdict]:
        gw.run_in(tx, "retention_lock_tubes", codes=codes)
        gw.run_in(tx, "status_lock_persons", tube_codes=codes)
        verdicts = cast(
            list[_Verdict],
            gw.run_in(tx, "retention_tube_verdicts", codes=codes, cutoff=p.cutoff),
        )
        going = [v for v in verdicts if v["kept"] is None]
        if going:
            gw.run_in(tx, "retention_delete_tubes", codes=[v["code"] for v in going])
        return verdicts

    going = _judge(p, gw.write_tx(work, "a retention batch"))
    _count_going(p, going)
    persons = sorted({pid for v in going for pid in v["persons"]})
    boxes = sorted({b for v in going for b in v["boxes"]})
    return persons, boxes


def _purge_tubes(
    gw: Gateway, p: _Pass, days: list[str], on_batch: Callable[[int], None] | None
) -> None:
    for day in days:
        codes = [r["code"] for r in gw.read("retention_day_tubes", day=day)]
        codes = [c for c in codes if c not in p.seen and c not in p.doomed]
        for start in range(0, len(codes), p.batch):
            chunk = codes[start : start + p.batch]
            if p.report.dry_run:
                verdicts = gw.read("retention_tube_verdicts", codes=chunk, cutoff=p.cutoff)
                going = _judge(p, cast(list[_Verdict], verdicts))
                _count_going(p, going)
                p.doomed.update(v["code"] for v in going)
                p.persons.update(pid for v in going for pid in v["persons"])
                p.boxes.update(b for v in going for b in v["boxes"])
                continue
            persons, boxes = _tube_batch(gw, p, chunk)
            if on_batch is not None:  # tests stop the database here, before step 3
                on_batch(len(chunk))
            _leftovers(gw, p, persons, boxes)


# ---------------------------------------------------------------- 3. what is left


def leftovers(
    persons: Iterable[PersonFacts],
    boxes: Iterable[BoxFacts],
    doomed: set[str],
    cutoff: str,
) -> tuple[list[str], int, list[str], list[str]]:
    """What goes once the `doomed` tubes went (a real run: they are gone, `doomed` is empty):
    a person with nothing left (no registration or task, not a case, no open task, no
    directory entry) with all its days; a staying person's days older than the window with no
    registration left; a box with no registration left. Returns (persons, their days,
    the days of staying persons as `person_id|day`, boxes)."""
    gone_persons: list[str] = []
    gone_with_them = 0
    gone_days: list[str] = []
    for f in persons:
        tubes = {r["tube"] for r in f["registrations"]} | set(f["task_tubes"])
        if not f["protected"] and not f["directory"] and tubes <= doomed:
            gone_persons.append(f["person_id"])
            gone_with_them += len(f["days"])
            continue
        for d in f["days"]:
            same_day = {r["tube"] for r in f["registrations"] if r["day"] == d["day"]}
            if d["day"] is not None and d["day"] < cutoff and same_day <= doomed:
                gone_days.append(f"{f['person_id']}|{d['day']}")
    gone_boxes = [b["box_code"] for b in boxes if set(b["tubes"]) <= doomed]
    return gone_persons, gone_with_them, gone_days, gone_boxes


def _facts(
    gw: Gateway, persons: list[str], boxes: list[str]
) -> tuple[list[PersonFacts], list[BoxFacts]]:
    found_p: list[PersonFacts] = []
    found_b: list[BoxFacts] = []
    for start in range(0, len(persons), 2000):
        rows = gw.read("retention_person_facts", person_ids=persons[start : start + 2000])
        found_p += cast(list[PersonFacts], rows)
    for start in range(0, len(boxes), 2000):
        rows = gw.read("retention_box_facts", box_codes=boxes[start : start + 2000])
        found_b += cast(list[BoxFacts], rows)
    return found_p, found_b


def _leftovers(gw: Gateway, p: _Pass, persons: list[str], boxes: list[str]) -> None:
    """A real run: what the tubes that went left with nothing goes, each checked under lock
    by the rule of `leftovers` (the tubes are gone); then these persons and boxes are no
    longer pending."""

    def work(tx: ManagedTransaction) -> Counter[str]:
        n: Counter[str] = Counter()
        if persons:
            row = gw.run_in(tx, "retention_delete_persons", person_ids=persons).row()
            n.update({"Person": row["persons"], "PersonDay": row["person_days"] or 0})
            days = gw.run_in(
                tx, "retention_delete_person_days", person_ids=persons, cutoff=p.cutoff
            ).value()
            n.update({"PersonDay": days})
        if boxes:
            gone = gw.run_in(tx, "retention_delete_boxes", box_codes=boxes, cutoff=p.cutoff)
            n.update({"Box": gone.value()})
        gw.run_in(tx, "retention_settle", person_ids=persons, box_codes=boxes)
        return n

    p.report.deleted.update(gw.write_tx(work, "a retention batch"))


def _pending(gw: Gateway, p: _Pass) -> None:
    """Persons and boxes a stopped run left pending: finished first (a real run), or judged
    with the rest (a dry run, which changes nothing: one read of them all)."""
    if p.report.dry_run:
        rows = gw.read("retention_pending", limit=2**62)
        p.persons.update(r["person_id"] for r in rows if r["person_id"] is not None)
        p.boxes.update(r["box_code"] for r in rows if r["box_code"] is not None)
        return
    while rows := gw.read("retention_pending", limit=p.batch):
        persons = sorted({r["person_id"] for r in rows if r["person_id"] is not None})
        boxes = sorted({r["box_code"] for r in rows if r["box_code"] is not None})
        _leftovers(gw, p, persons, boxes)


def _dry_leftovers(gw: Gateway, p: _Pass) -> None:
    facts_p, facts_b = _facts(gw, sorted(p.persons), sorted(p.boxes))
    gone_p, with_them, gone_days, gone_b = leftovers(facts_p, facts_b, p.doomed, p.cutoff)
    p.report.deleted.update(
        {"Person": len(gone_p), "PersonDay": with_them + len(gone_days), "Box": len(gone_b)}
    )


# ---------------------------------------------------------------- 4. events


def _delivery_bound(seq: int) -> str:
    """Delivery ids below this one are those of events up to `seq` (engine/push/webhooks.py)."""
    return f"dl_{seq + 1:012d}"


def _purge_events(gw: Gateway, p: _Pass, window_start: datetime) -> None:
    after = start = outbox.events_through(gw)
    while True:
        rows = gw.read(
            "retention_old_events",
            after=after,
            cutoff=p.cutoff,
            window_start=window_start,
            limit=EVENT_BATCH,
        )
        old = 0
        while old < len(rows) and rows[old]["old"]:
            old += 1
        if old:
            through = int(rows[old - 1]["seq"])
            if not p.report.dry_run:
                _delete_events(gw, p, through)
            else:
                p.report.deleted["Event"] += old
            after = through
        if old < len(rows) or len(rows) < EVENT_BATCH:
            break
    if p.report.dry_run and after > start:
        left = gw.read("retention_count_deliveries", bound=_delivery_bound(after))
        p.report.deleted["Delivery"] += int(left.value())


def _delete_events(gw: Gateway, p: _Pass, through: int) -> None:
    bound = _delivery_bound(through)
    while n := int(gw.write("retention_delete_deliveries", bound=bound, limit=EVENT_BATCH).value()):
        p.report.deleted["Delivery"] += n
    while n := int(gw.write("retention_delete_events", through=through, limit=EVENT_BATCH).value()):
        p.report.deleted["Event"] += n


# ---------------------------------------------------------------- the purge


def purge(
    gw: Gateway,
    *,
    keep_days: int,
    tz: str,
    today: date | None = None,
    dry_run: bool = False,
    batch: int = TUBE_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> PurgeReport:
    """Purge the sampling days before the window of `keep_days` days ending with `today`
    (default: today in `tz`). Idempotent: a second run deletes nothing; a stopped run, run
    again, ends as one run would have."""
    today = today or local_today(tz)
    cutoff = oldest_kept_day(today, keep_days).isoformat()
    report = PurgeReport(today.isoformat(), keep_days, cutoff, dry_run)
    days = data_days(gw, cutoff)
    report.aggregated_days = _aggregate(gw, days, keep_days, tz, dry_run)
    p = _Pass(report, cutoff, batch)
    _pending(gw, p)
    _purge_tubes(gw, p, days, on_batch)
    if dry_run:
        _dry_leftovers(gw, p)
    window_start = datetime.combine(date.fromisoformat(cutoff), time(0), tzinfo=ZoneInfo(tz))
    _purge_events(gw, p, window_start.astimezone(UTC))
    if not dry_run and days:
        gw.write("retention_mark_purged", days=days, now=datetime.now(UTC))
    return report


# ---------------------------------------------------------------- the serve job


def job_enabled(settings: Settings) -> bool:
    """The daily run inside `tubetrace serve`: on when TUBETRACE_RETENTION_DAYS is set (in the
    environment or `.env`) to a number of days; 0 (or unset) leaves it off."""
    return "retention_days" in settings.model_fields_set and settings.retention_days > 0


# The job's purge: (today, on_batch) -> report; on_batch is called after each batch of tubes.
Runner = Callable[[date, Callable[[int], None]], PurgeReport]
SYSTEM = Principal("system:retention", "admin")  # who the serve job's audit entries name


class Stopped(Exception):
    """The serve job's run ended early because the server stops."""


class Job:
    """Once a day inside `tubetrace serve`: the day's run is claimed in the database by one
    process (a failed or stalled run is claimed again after `stale_s`); `run(today)` purges and
    records the audit entry (engine.usecases.writes.purge_retention)."""

    def __init__(
        self,
        gw: Gateway,
        settings: Settings,
        run: Runner,
        poll_s: float = 300.0,
        stale_s: float = 3600.0,
    ) -> None:
        self.gw = gw
        self.tz = settings.timezone
        self.run = run
        self.poll_s = poll_s
        self.stale_s = stale_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention-job", daemon=True)

    def start(self) -> Job:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _check_stop(self, _: int) -> None:
        """Between two batches: a server that stops ends the run (the next one resumes it)."""
        if self._stop.is_set():
            raise Stopped("the server stops; the retention run resumes at its next start")

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.once()
            except (DatabaseUnavailable, Stopped) as exc:
                log.warning("retention job: %s", exc)
            except Exception:  # noqa: BLE001 - the job outlives a failed run
                log.exception("retention run failed; claimed again later")
            self._stop.wait(self.poll_s)

    def once(self) -> PurgeReport | None:
        """Claim and run today's purge; None when another process has it (or it ran)."""
        today = local_today(self.tz)
        now = datetime.now(UTC)
        stale = now - timedelta(seconds=self.stale_s)
        claimed = self.gw.write(
            "retention_claim_run", today=today.isoformat(), now=now, stale=stale
        )
        if not claimed:
            return None
        state = "failed"
        try:
            report = self.run(today, self._check_stop)
            state = "done"
        finally:
            self.gw.write(
                "retention_run_done",
                today=today.isoformat(),
                state=state,
                now=datetime.now(UTC) if state == "done" else datetime(1970, 1, 1, tzinfo=UTC),
            )
        log.info("retention run: %s", json.dumps(report.as_json()))
        return report
