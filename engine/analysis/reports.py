"""The day's positives, exposure rings and the investigator reports."""

from __future__ import annotations

import bisect
import json
import statistics
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import TypedDict, cast
from zoneinfo import ZoneInfo

from neo4j.time import DateTime

from engine import domain
from engine.access.masking import district_part, in_district
from engine.ahead import ordered_map
from engine.contract import PersonJSON, PositiveItemJSON, RingPersonJSON, RingsJSON, TraceJSON
from engine.domain import parse_day
from engine.errors import InputError, NotFound
from engine.loop.tasks import overdue
from engine.store.gateway import Gateway, split_page
from engine.trace.build import person_in, trace_many

RING2_MAX_PAGE = 500


class Pair(TypedDict):
    """A row of `positive_tubes_of_day`."""

    district_code: str
    tube_code: str
    sort_key: str


def _positive_pairs(gw: Gateway, day: str, district: str | None) -> list[Pair]:
    """(residence district, positive tube) pairs of the day, in sort_key order."""
    rows = gw.read("positive_tubes_of_day", day=parse_day(day), district_code=district)
    return cast(list[Pair], rows)


def _with_traces(gw: Gateway, rows: list[Pair], district: str | None) -> list[PositiveItemJSON]:
    """Each pair with the trace of that tube's residents of that district: one set-based
    trace of the rows' tubes."""
    traces = trace_many(gw, sorted({r["tube_code"] for r in rows}))
    items: list[PositiveItemJSON] = []
    for r in rows:
        if r["tube_code"] not in traces:  # purged since the day's pairs were found (retention)
            continue
        trace: TraceJSON
        if district is None:  # the city's view: each district's residents of the whole tube
            trace = traces[r["tube_code"]].copy()
            trace["persons"] = [p for p in trace["persons"] if in_district(p, r["district_code"])]
        else:  # one district's view: nothing of a shared tube's other districts
            trace = district_part(traces[r["tube_code"]], district)
        items.append(
            {
                "district_code": r["district_code"],
                "district": domain.district_name(r["district_code"]),
                "tube_code": r["tube_code"],
                "trace": trace,
            }
        )
    return items


class DayPairs:
    """Each day's (district, tube) pairs as the last first page of `/v1/positives` found them,
    for the pages after it, in this process. Finding them reads the residence of every member
    of every positive tube of the day (about 0.5 s at 52,000 tubes), whichever district asks,
    so the city's list is kept and a district's pages are cut from it (its pairs are one run
    of the list: the sort key starts with the district). At most `days` days, each for
    `ttl_s`; held on the gateway (`Gateway.memo`), so a wiped database starts without."""

    def __init__(self, ttl_s: float = 60.0, days: int = 4) -> None:
        self.ttl_s = ttl_s
        self.days = days
        self._kept: OrderedDict[str, tuple[float, list[Pair], list[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, gw: Gateway, day: str, fresh: bool) -> tuple[list[Pair], list[str]]:
        """The day's pairs and their sort keys: found again if `fresh` or none are kept."""
        now = monotonic()
        with self._lock:
            for old in [d for d, (at, _, _) in self._kept.items() if now - at >= self.ttl_s]:
                del self._kept[old]
            found = None if fresh else self._kept.get(day)
            if found is not None:
                self._kept.move_to_end(day)
                return found[1], found[2]
        rows = _positive_pairs(gw, day, None)
        keys = [r["sort_key"] for r in rows]
        with self._lock:
            self._kept[day] = (now, rows, keys)
            self._kept.move_to_end(day)
            while len(self._kept) > self.days:
                self._kept.popitem(last=False)
        return rows, keys


def positives_page(
    gw: Gateway, day: str, district: str | None, cursor: str, limit: int
) -> tuple[list[PositiveItemJSON], str | None]:
    """One page of (residence district, positive tube) pairs of the day after `cursor`, each
    with its trace (read per page). The first page (no cursor) finds the day's pairs; the pages
    after it read them as the latest first page of that day in this process found them
    (`DayPairs`), so paging through a day costs one search, not one a page; a tube that turns
    positive meanwhile is on the next first page. Another process (or an expired list) finds
    them again: the cursor works either way."""
    memo = gw.memo.setdefault("positives", DayPairs())
    assert isinstance(memo, DayPairs)
    pairs, keys = memo.get(gw, parse_day(day), fresh=not cursor)
    lo, hi = 0, len(keys)
    if district is not None:  # "|" < "}": the district's run of the city's sorted keys
        lo = bisect.bisect_left(keys, district + "|")
        hi = bisect.bisect_left(keys, district + "}", lo)
    start = max(lo, bisect.bisect_right(keys, cursor, lo, hi))
    rows = pairs[start : min(start + limit, hi)]
    more = start + limit < hi
    return _with_traces(gw, rows, district), (rows[-1]["sort_key"] if more and rows else None)


PAGE_WORKERS = 2  # pages traced at once, in order: one waits on the server while one is built


def positives_pages(
    gw: Gateway,
    day: str,
    district: str | None = None,
    page: int = 500,
    workers: int = PAGE_WORKERS,
) -> Generator[list[PositiveItemJSON]]:
    """The whole day in one set-based pass: every pair in one query (a few bytes per positive
    tube), then the traces `page` pairs at a time, in order, `workers` pages at once (a pass
    holds that many connections; a page's read waits on the server, or the disk, while
    another's traces are built). A day without positives is one empty page (its read is
    audited all the same). A caller that stops early waits for the pages being traced."""
    rows = _positive_pairs(gw, day, district)
    chunks = [rows[s : s + page] for s in range(0, max(len(rows), 1), page)]
    if workers < 2 or len(chunks) == 1:
        for chunk in chunks:
            yield _with_traces(gw, chunk, district)
        return
    traced = ordered_map(lambda c: _with_traces(gw, c, district), chunks, workers, "positives")
    with closing(traced) as pages:
        yield from pages


def positives_stream(
    gw: Gateway, day: str, district: str | None = None, page: int = 500
) -> Iterator[PositiveItemJSON]:
    for items in positives_pages(gw, day, district, page):
        yield from items


REACH = ("own_phone", "directory", "compound", "none")


def reach(person: PersonJSON) -> str:
    """How a person can be reached: by the registration's own phone, only through a
    directory phone, only through the residence compound's phone, or not at all."""
    contacts = person.get("contacts") or []
    if contacts and contacts[0]["source"] == "registration":
        return "own_phone"
    if contacts:
        return "directory"
    if person["residence"]["contact_phone"]:
        return "compound"
    return "none"


def reach_of_positive_pools(gw: Gateway, day: str) -> dict[tuple[str, str, str], str]:
    """(tube, person, record_id) -> reach, for every member of the day's positive pooled tubes
    (a record_id alone may be two senders', two persons)."""
    found: dict[tuple[str, str, str], str] = {}
    for item in positives_stream(gw, day):
        trace = item["trace"]
        if (trace["tube"]["pool_size"] or 0) > 1 or len(trace["persons"]) > 1:
            for p in trace["persons"]:
                found[(item["tube_code"], p["person_id"], p["record_id"])] = reach(p)
    return found


class CompletenessRow(TypedDict):
    district_code: str
    district: str | None
    positive_pooled_tubes: int
    persons: int
    usable_phone_share: float | None
    invalid_id_numbers: int
    unknown_compounds: int
    over_filled_tubes: int
    duplicate_registrations: int
    reachable_by_own_phone: int
    reachable_only_through_directory: int
    reachable_only_through_compound: int
    unreachable: int
    reachable_share: float | None


class SeparationRow(TypedDict):
    registered_district_code: str | None
    registered_district: str | None
    residence_district_code: str | None
    residence_district: str | None
    persons: int


class ZoneRow(TypedDict):
    compound_code: str
    name: str | None
    district_code: str | None
    zone: str
    last_case_collected_at: str | None


class Quantiles(TypedDict):
    median: float | None
    p90: float | None


class TimelinessRow(TypedDict):
    district_code: str
    district: str | None
    tasks: int
    result_to_acknowledged_hours: Quantiles
    result_to_closed_hours: Quantiles
    open_older_than_24h: int


ReportRow = CompletenessRow | SeparationRow | ZoneRow | TimelinessRow


def completeness(gw: Gateway, day: str, district: str | None = None) -> list[CompletenessRow]:
    """Is the data complete enough to reach everyone in the day's positive pools?"""
    acc: dict[str, Counter[str]] = defaultdict(Counter)
    for item in positives_stream(gw, day, district):
        c = acc[item["district_code"]]
        trace = item["trace"]
        pooled = (trace["tube"]["pool_size"] or 0) > 1 or len(trace["persons"]) > 1
        if not pooled:
            continue
        c["tubes"] += 1
        c["over_filled_tubes"] += "over_pool_size" in trace["flags"]
        for p in trace["persons"]:
            flags = set(p["flags"])
            c["persons"] += 1
            c["usable_phone"] += p["phone"] is not None and "invalid_phone" not in flags
            c["reach_" + reach(p)] += 1
            c["invalid_id_numbers"] += "invalid_id_number" in flags
            c["unknown_compounds"] += "unknown_compound" in flags
            c["duplicate_registrations"] += "duplicate_registration" in flags
    rows: list[CompletenessRow] = []
    for code in sorted(acc):
        c = acc[code]
        if not c["tubes"]:
            continue
        rows.append(
            {
                "district_code": code,
                "district": domain.district_name(code),
                "positive_pooled_tubes": c["tubes"],
                "persons": c["persons"],
                "usable_phone_share": round(c["usable_phone"] / c["persons"], 4)
                if c["persons"]
                else None,
                "invalid_id_numbers": c["invalid_id_numbers"],
                "unknown_compounds": c["unknown_compounds"],
                "over_filled_tubes": c["over_filled_tubes"],
                "duplicate_registrations": c["duplicate_registrations"],
                "reachable_by_own_phone": c["reach_own_phone"],
                "reachable_only_through_directory": c["reach_directory"],
                "reachable_only_through_compound": c["reach_compound"],
                "unreachable": c["reach_none"],
                "reachable_share": round(1 - c["reach_none"] / c["persons"], 4)
                if c["persons"]
                else None,
            }
        )
    return rows


def household_separation(gw: Gateway, day: str, district: str | None = None) -> list[SeparationRow]:
    pairs: Counter[tuple[str | None, str | None]] = Counter()
    for item in positives_stream(gw, day, district):
        for p in item["trace"]["persons"]:
            if p["household_separated"]:
                pairs[(p["registered_district_code"], p["residence"]["district_code"])] += 1
    return [
        {
            "registered_district_code": reg,
            "registered_district": domain.district_name(reg),
            "residence_district_code": res,
            "residence_district": domain.district_name(res),
            "persons": n,
        }
        for (reg, res), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def zone_for(last_case_day: date | None, on: date) -> str:
    """sealed: a case collected in the last 7 days (on-6 .. on); controlled: none in 7 but
    some in 14 (on-13 .. on-7); precaution: none in 14."""
    if last_case_day is None:
        return "precaution"
    age = (on - last_case_day).days
    if age < 0:
        return "precaution"
    if age < 7:
        return "sealed"
    if age < 14:
        return "controlled"
    return "precaution"


def zoning(gw: Gateway, day: str, tz: str, district: str | None = None) -> list[ZoneRow]:
    on = date.fromisoformat(parse_day(day))
    end = datetime.combine(on + timedelta(days=1), time(0), tzinfo=ZoneInfo(tz)) - timedelta(
        microseconds=1
    )
    last: dict[str, DateTime] = {
        r["compound_code"]: r["last_case"]
        for r in gw.read("cases_until", until=end.astimezone(UTC))
    }
    rows: list[ZoneRow] = []
    for c in gw.read("known_compounds"):
        if district is not None and c["district_code"] != district:
            continue
        case_at = last.get(c["code"])
        case_day = (
            date.fromisoformat(domain.local_day(case_at.to_native(), tz))
            if case_at is not None
            else None
        )
        rows.append(
            {
                "compound_code": c["code"],
                "name": c["name"],
                "district_code": c["district_code"],
                "zone": zone_for(case_day, on),
                "last_case_collected_at": domain.iso(case_at),
            }
        )
    return rows


def _hours(a_ms: int | None, b_ms: int | None) -> float | None:
    """Hours from `a_ms` to `b_ms` (epoch milliseconds)."""
    if a_ms is None or b_ms is None:
        return None
    return (b_ms - a_ms) / 3_600_000


def _quantiles(values: list[float]) -> Quantiles:
    if not values:
        return {"median": None, "p90": None}
    if len(values) == 1:
        return {"median": round(values[0], 2), "p90": round(values[0], 2)}
    qs = statistics.quantiles(values, n=10, method="inclusive")
    return {"median": round(statistics.median(values), 2), "p90": round(qs[8], 2)}


def timeliness(
    gw: Gateway, day: str, district: str | None = None, now: datetime | None = None
) -> list[TimelinessRow]:
    now = now or datetime.now(UTC)
    by: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    old_open: Counter[str] = Counter()
    for r in gw.read("tasks_of_day", day=parse_day(day), district_code=district):
        code = r["district_code"]
        by[code]["n"].append(1)
        ack = _hours(r["result_ms"], r["acknowledged_ms"])
        closed = _hours(r["result_ms"], r["closed_ms"])
        if ack is not None:
            by[code]["ack"].append(ack)
        if closed is not None:
            by[code]["closed"].append(closed)
        created = r["created_ms"]
        at = None if created is None else datetime.fromtimestamp(created / 1000, UTC)
        if overdue(r["status"], at, now):
            old_open[code] += 1
    return [
        {
            "district_code": code,
            "district": domain.district_name(code),
            "tasks": len(v["n"]),
            "result_to_acknowledged_hours": _quantiles(v["ack"]),
            "result_to_closed_hours": _quantiles(v["closed"]),
            "open_older_than_24h": old_open[code],
        }
        for code, v in sorted(by.items())
    ]


def rings(gw: Gateway, person_id: str, cursor: str = "", limit: int = 100) -> RingsJSON:
    """Ring 1: the others in the case's pooled tubes. Ring 2: people swabbed at the same
    compound the same day (paged, at most RING2_MAX_PAGE a page)."""
    if limit > RING2_MAX_PAGE:
        raise InputError(f"limit is at most {RING2_MAX_PAGE}")
    found = gw.read("case_of_person", person_id=person_id).row_or_none()
    if found is None or found["case"] is None:
        raise NotFound(f"Person '{person_id}' is not a confirmed case.")
    pools = sorted(found["pools"])
    traces = trace_many(gw, pools)
    ring1 = [
        _in_tube(p, code)
        for code in pools
        for p in traces[code]["persons"]
        if p["person_id"] != person_id
    ]
    ring2_rows, more = split_page(
        gw.read(
            "ring_same_compound_day",
            person_id=person_id,
            pools=pools,
            after=cursor,
            limit=limit + 1,
        ),
        limit,
    )
    ring2_traces = trace_many(gw, sorted({r["tube_code"] for r in ring2_rows}))
    ring2: list[RingPersonJSON] = []
    for r in ring2_rows:
        # The registration's own person: a record_id alone may be two senders' (two persons).
        person = person_in(ring2_traces[r["tube_code"]], r["person_id"], r["record_id"])
        if person is not None:  # changed since the query: left out of this page
            ring2.append(_in_tube(person, r["tube_code"]))
    case = found["case"]
    return {
        "person_id": person_id,
        "case": {
            "confirmed_at": domain.iso(case["confirmed_at"]),
            "collected_at": domain.iso(case["collected_at"]),
            "compound_code": case["compound_code"],
            "pool_tubes": pools,
        },
        "ring1": ring1,
        "ring2": {"items": ring2, "next_cursor": ring2_rows[-1]["reg_key"] if more else None},
    }


def _in_tube(person: PersonJSON, tube_code: str) -> RingPersonJSON:
    """A trace person with the tube that placed them in the ring."""
    return {**person, "tube_code": tube_code}


REPORTS = ("completeness", "household-separation", "zoning", "timeliness")


# Where a stored report row names its district: a district's report is its rows.
STORED_DISTRICT = {
    "completeness": "district_code",
    "household-separation": "residence_district_code",
    "timeliness": "district_code",
}


def stored_report_key(day: str, report: str) -> str:
    return f"{day}|report|{report}"


def stored_report(
    gw: Gateway, report: str, day: str, district: str | None
) -> Sequence[ReportRow] | None:
    """A purged day's report as it answered before its data was deleted (engine/ops/retention.py
    stored the city's rows); None for a day not purged. Zoning needs none: it reads cases and
    compounds, which are never purged."""
    if report not in STORED_DISTRICT:
        return None
    stored = gw.read("retention_stored_report", key=stored_report_key(day, report)).value_or_none()
    if stored is None:
        return None
    rows: list[ReportRow] = json.loads(stored)
    if district is None:
        return rows
    return [r for r in rows if r.get(STORED_DISTRICT[report]) == district]


def run_report(
    gw: Gateway,
    report: str,
    day: str,
    tz: str,
    district: str | None = None,
    *,
    live: bool = False,
) -> Sequence[ReportRow]:
    """A report of a day: from the data, or for a day the retention purged, from the rows it
    stored before (`live` reads the data whatever the day)."""
    if report not in REPORTS:
        raise InputError(f"unknown report '{report}'; reports are {', '.join(REPORTS)}")
    if not live:
        stored = stored_report(gw, report, parse_day(day), district)
        if stored is not None:
            return stored
    if report == "completeness":
        return completeness(gw, day, district)
    if report == "household-separation":
        return household_separation(gw, day, district)
    if report == "zoning":
        return zoning(gw, day, tz, district)
    return timeliness(gw, day, district)
