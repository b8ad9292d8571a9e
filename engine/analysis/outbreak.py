"""Outbreak analysis: exposure to any depth, clusters of cases, signals of sampling and lab
trouble, attack rates by ring (the contract's "Outbreak analysis"; queries in
cypher/analysis.cypher). Answers are unmasked and unscoped except for the district filter a
caller passes; engine/usecases/reads.py masks, scopes and audits."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal, TypedDict, cast
from urllib.parse import quote

from engine import domain
from engine.contract import (
    AttackRateJSON,
    ClusterDetailJSON,
    ClusterJSON,
    ClusterRegistrationJSON,
    ClustersJSON,
    ExposureJSON,
    PersonJSON,
    SignalJSON,
    SignalsJSON,
    WindowPersonJSON,
)
from engine.domain import parse_day
from engine.errors import InputError, NotFound
from engine.store.gateway import Gateway
from engine.trace.build import person_in, trace_many

MAX_DEPTH = 4
MAX_DAYS = 21  # an incubation window and a week of follow-up
EXPOSURE_MAX_PAGE = 1000
CLUSTERS_MAX_PAGE = 200
LINK_DAYS = 3  # two registrations at one compound link their persons within this many days
# A tube is positive when a positive result for it was reported from the window's first day up
# to this many days after its last (a result comes after its swab; PCR answers within a day).
REPORT_LAG_DAYS = 7
FOLLOW_DAYS = 7  # attack rates: a positive within this many days after the reference day
LAB_P_THRESHOLD = 0.001
LAB_MIN_POSITIVES = 3
CONSECUTIVE_DAYS = 3
SIGNAL_KINDS = (
    "collector_across_compounds",
    "box_across_compounds",
    "lab_positive_rate",
    "compound_consecutive_days",
)


def _day(value: str) -> date:
    return date.fromisoformat(parse_day(value))


def _shift(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def check_window(since: str, until: str) -> tuple[str, str]:
    """A window of sampling days: since <= until, at most MAX_DAYS days."""
    start, end = _day(since), _day(until)
    if start > end:
        raise InputError(f"since {start} is after until {end}")
    if (end - start).days + 1 > MAX_DAYS:
        raise InputError(f"the window is {(end - start).days + 1} days; at most {MAX_DAYS}")
    return start.isoformat(), end.isoformat()


def _check_range(value: int, low: int, high: int, what: str) -> None:
    if not low <= value <= high:
        raise InputError(f"{what} is {low} to {high}, not {value}")


# ---------------------------------------------------------------- exposure

_CURSOR = re.compile(r"([1-4]):(.{1,128})")


def _exposure_cursor(cursor: str) -> tuple[int, str]:
    if not cursor:
        return 0, ""
    m = _CURSOR.fullmatch(cursor)
    if m is None:
        raise InputError(f"cursor '{cursor[:40]}' is not an exposure cursor; pass next_cursor")
    return int(m.group(1)), m.group(2)


class RingMember(TypedDict):
    depth: int
    person_id: str
    day: str
    tube_code: str


class Subject(TypedDict):
    """A person whose rings are wanted, up to a sampling day (None: their latest)."""

    person_id: str
    until: str | None


class PositiveRegistration(TypedDict):
    """A row of `positive_registrations` (cypher/analysis.cypher)."""

    tube_code: str
    day: str
    pool_size: int | None
    person_id: str
    compound_code: str | None
    compound_district: str | None
    box_code: str | None
    collector_id: str | None
    district: str


class WindowRegistration(TypedDict):
    """A registration of a positive registration's person (`positive_registrations`)."""

    person_id: str
    tube_code: str
    day: str
    pooled: bool
    compound_code: str | None
    compound_district: str | None


# The order of the values of each registration `positive_registrations` answers (lists, not
# records: see cypher/analysis.cypher), of the positive ones and of their persons' others.
POSITIVE_FIELDS = (
    "tube_code",
    "day",
    "pool_size",
    "person_id",
    "compound_code",
    "compound_district",
    "box_code",
    "collector_id",
    "district",
)
WINDOW_FIELDS = ("person_id", "tube_code", "day", "pooled", "compound_code", "compound_district")


def _records(rows: list[list[Any]], fields: tuple[str, ...]) -> list[Any]:
    return [dict(zip(fields, row, strict=True)) for row in rows]


class _LabPools(TypedDict):
    """A row of `lab_pools_of_day`."""

    lab_code: str
    pools: int
    positive_tubes: list[str]


def _items(row: Mapping[str, Any]) -> list[RingMember]:
    """The ring members of an `exposure_rings` row (its parallel lists), in order."""
    return [
        {"depth": d, "person_id": p, "day": day, "tube_code": t}
        for d, p, day, t in zip(
            row["depths"], row["person_ids"], row["days"], row["tube_codes"], strict=True
        )
    ]


def exposure(
    gw: Gateway,
    person_id: str,
    *,
    depth: int = 3,
    days: int = 14,
    until: str | None = None,
    cursor: str = "",
    limit: int = 100,
    district: str | None = None,
) -> ExposureJSON:
    """Rings 1..depth of co-pool distance around a person inside the window of `days`
    sampling days ending with `until` (default: the person's latest sampling day). One query
    (cypher/analysis.cypher, exposure_rings) finds the rings breadth-first, in page order
    from the cursor on; the page's persons are shaped as in a trace. A district (a district
    key) gets its own residents only; a person not living in it in the window is a 404."""
    _check_range(depth, 1, MAX_DEPTH, "depth")
    _check_range(days, 1, MAX_DAYS, "days")
    _check_range(limit, 1, EXPOSURE_MAX_PAGE, "limit")
    after_depth, after_person = _exposure_cursor(cursor)
    rows = gw.read(
        "exposure_rings",
        subjects=[{"person_id": person_id, "until": parse_day(until) if until else None}],
        days=days,
        depth=depth,
        district=district,
        after_depth=after_depth,
        after_person=after_person,
    )
    # The id is not echoed: a district must not learn whether another district's person exists.
    missing = "No person with this id was swabbed (or not inside your district in the window)."
    row = next(iter(rows), None)  # one subject: its row, none for an unknown person
    if row is None or (district is not None and district not in row["districts"]):
        raise NotFound(missing)
    members = _items(row)
    items, more = members[:limit], len(members) > limit
    traces = trace_many(gw, sorted({i["tube_code"] for i in items}))
    rings: dict[int, list[WindowPersonJSON]] = {k: [] for k in range(1, depth + 1)}
    for i in items:
        person = person_in(traces[i["tube_code"]], i["person_id"])
        if person is not None:  # changed since the query: left out of this page
            rings[i["depth"]].append(_placed(person, i["tube_code"], i["day"]))
    last = items[-1] if items else None
    return {
        "person_id": person_id,
        "since": row["since"],
        "until": row["until"],
        "depth": depth,
        "days": days,
        "rings": [{"depth": k, "persons": rings[k]} for k in sorted(rings)],
        "next_cursor": f"{last['depth']}:{last['person_id']}" if more and last else None,
    }


def _placed(person: PersonJSON, tube_code: str, day: str) -> WindowPersonJSON:
    """A trace person with the tube and day of the registration that placed them."""
    return {**person, "tube_code": tube_code, "day": day}


SUBJECTS_PER_QUERY = 16


def ring_members(
    gw: Gateway, subjects: list[Subject], *, depth: int = 3, days: int = 14
) -> dict[str, list[RingMember]]:
    """Every ring member (depth, person_id, day, tube_code) of many subjects, each
    `{"person_id", "until"}`: a query per SUBJECTS_PER_QUERY subjects (one query for all the
    cases of a window held every ring in one transaction's memory: at 20 k registrations the
    attack rate ran out of it)."""
    out: dict[str, list[RingMember]] = {}
    for at in range(0, len(subjects), SUBJECTS_PER_QUERY):
        rows = gw.read(
            "exposure_rings",
            subjects=subjects[at : at + SUBJECTS_PER_QUERY],
            days=days,
            depth=depth,
            district=None,
            after_depth=0,
            after_person="",
        )
        out.update((r["person_id"], _items(r)) for r in rows)
    return out


# ---------------------------------------------------------------- clusters


class _Sets:
    """Union-find over person ids."""

    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {x: x for x in items}

    def find(self, x: str) -> str:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class _Cluster:
    members: list[str]
    cluster_id: str = ""
    compounds: set[str] = field(default_factory=set)
    districts: set[str] = field(default_factory=set)
    days: set[str] = field(default_factory=set)  # of the members' positive tubes
    pool_links: set[str] = field(default_factory=set)
    compound_links: set[str] = field(default_factory=set)


def cluster_id(person_ids: Iterable[str]) -> str:
    """Stable for the same members: a hash of their sorted ids."""
    digest = hashlib.sha256("\n".join(sorted(person_ids)).encode()).hexdigest()
    return "k_" + digest[:20]


def _segments(entries: list[tuple[str, str]]) -> list[set[str]]:
    """(day, person) entries at one compound, cut where more than LINK_DAYS days pass without
    a registration: each segment's persons are joined through the compound (by chains of
    registrations within LINK_DAYS days of each other, which join what the direct links do)."""
    out: list[set[str]] = []
    last: date | None = None
    for day, person in sorted(entries):
        d = date.fromisoformat(day)
        if last is None or (d - last).days > LINK_DAYS:
            out.append(set())
        out[-1].add(person)
        last = d
    return out


@dataclass
class Clustering:
    since: str
    until: str
    clusters: list[_Cluster]
    # Each member's shown registration: (day, tube_code, residence district) of the earliest
    # registration in a positive tube inside the window.
    shown: dict[str, tuple[str, str, str]]


def find_clusters(gw: Gateway, since: str, until: str) -> Clustering:
    """Every person of a positive tube inside the window, grouped into connected clusters:
    two are linked when registrations of theirs inside the window shared a pooled tube or
    were at the same compound within LINK_DAYS days of each other. Grouped in the server, by
    the procedure tubetrace.clusters (`clusters_of_window`), the rule of `group_clusters`
    (which the tests run on the rows of `positive_registrations` to compare). Largest first,
    then by cluster id."""
    since, until = check_window(since, until)
    rows = gw.read(
        "clusters_of_window",
        since=since,
        until=until,
        reported_until=_shift(until, REPORT_LAG_DAYS),
        link_days=LINK_DAYS,
    ).value()
    shown: dict[str, tuple[str, str, str]] = {}
    found: list[_Cluster] = []
    for row in rows:  # the procedure's fields, in its order
        (members, member_days, member_tubes, member_districts,
         compounds, districts, days, pool_links, compound_links) = row  # fmt: skip
        shown |= zip(members, zip(member_days, member_tubes, member_districts, strict=True),
                     strict=True)  # fmt: skip
        found.append(
            _Cluster(
                members,
                cluster_id(members),
                set(compounds),
                set(districts),
                set(days),
                set(pool_links),
                set(compound_links),
            )
        )
    found.sort(key=lambda c: (-len(c.members), c.cluster_id))
    return Clustering(since, until, found, shown)


def _positive_registrations(
    gw: Gateway, since: str, until: str, reported_until: str, *, members: bool = False
) -> tuple[list[PositiveRegistration], list[WindowRegistration]]:
    """The positive registrations of the window and, with `members`, every registration
    inside it of their persons."""
    row = gw.read(
        "positive_registrations",
        since=since,
        until=until,
        reported_until=reported_until,
        members=members,
    ).row()
    positive: list[PositiveRegistration] = _records(row["positive"], POSITIVE_FIELDS)
    window: list[WindowRegistration] = _records(row["window"], WINDOW_FIELDS)
    return positive, window


def group_clusters(
    since: str,
    until: str,
    positive: list[PositiveRegistration],
    registrations: list[WindowRegistration],
) -> Clustering:
    """The clusters of the window from its positive registrations (`positive_registrations`,
    in day and tube order) and their persons' registrations inside it
    (`positive_registrations` with members); pure (the benchmark feeds it PostgreSQL's rows)."""
    shown: dict[str, tuple[str, str, str]] = {}
    positive_days: dict[str, set[str]] = defaultdict(set)
    for pos in positive:  # ordered by day, tube_code: the first is the earliest
        shown.setdefault(pos["person_id"], (pos["day"], pos["tube_code"], pos["district"]))
        positive_days[pos["person_id"]].add(pos["day"])
    members = sorted(shown)
    regs: dict[str, list[WindowRegistration]] = defaultdict(list)
    for r in registrations:
        regs[r["person_id"]].append(r)
    sets = _Sets(members)
    pools: dict[str, set[str]] = defaultdict(set)
    at_compound: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for person, own in regs.items():
        for r in own:
            if r["pooled"]:
                pools[r["tube_code"]].add(person)
            if r["compound_code"] is not None:
                at_compound[r["compound_code"]].append((r["day"], person))
    linked_pools = {tube: ps for tube, ps in pools.items() if len(ps) > 1}
    linked_compounds: list[tuple[str, set[str]]] = []
    for tube_persons in linked_pools.values():
        first, *rest = sorted(tube_persons)
        for other in rest:
            sets.union(first, other)
    for code, entries in at_compound.items():
        for segment in _segments(entries):
            if len(segment) > 1:
                linked_compounds.append((code, segment))
                first, *rest = sorted(segment)
                for other in rest:
                    sets.union(first, other)
    groups: dict[str, list[str]] = defaultdict(list)
    for person in members:
        groups[sets.find(person)].append(person)
    by_root = {root: _Cluster(sorted(ps)) for root, ps in groups.items()}
    for c in by_root.values():
        c.cluster_id = cluster_id(c.members)
        for person in c.members:
            c.days |= positive_days[person]
            for r in regs.get(person, []):
                if r["compound_code"] is not None:
                    c.compounds.add(r["compound_code"])
                if r["compound_district"] is not None:
                    c.districts.add(r["compound_district"])
    for tube, ps in linked_pools.items():
        by_root[sets.find(next(iter(ps)))].pool_links.add(tube)
    for code, segment in linked_compounds:
        by_root[sets.find(next(iter(segment)))].compound_links.add(code)
    clusters = sorted(by_root.values(), key=lambda c: (-len(c.members), c.cluster_id))
    return Clustering(since, until, clusters, shown)


def _cluster_cursor(cursor: str) -> tuple[int, str] | None:
    if not cursor:
        return None
    size, _, cid = cursor.partition(":")
    if not size.isascii() or not size.isdigit() or not cid or len(size) > 9:
        raise InputError(f"cursor '{cursor[:40]}' is not a clusters cursor; pass next_cursor")
    return int(size), cid


def _visible(c: _Cluster, found: Clustering, district: str | None) -> list[str]:
    """The members a caller sees: all, or a district's own residents."""
    if district is None:
        return c.members
    return [p for p in c.members if found.shown[p][2] == district]


def _member_persons(
    gw: Gateway, found: Clustering, person_ids: list[str]
) -> dict[str, WindowPersonJSON]:
    """Each member as a trace person, from the registration shown for them."""
    traces = trace_many(gw, sorted({found.shown[p][1] for p in person_ids}))
    out: dict[str, WindowPersonJSON] = {}
    for p in person_ids:
        day, tube, _ = found.shown[p]
        person = person_in(traces[tube], p) if tube in traces else None
        if person is not None:
            out[p] = _placed(person, tube, day)
    return out


def _cluster_json(c: _Cluster, persons: list[WindowPersonJSON]) -> ClusterJSON:
    return {
        "cluster_id": c.cluster_id,
        "size": len(c.members),
        "persons": persons,
        "compounds": sorted(c.compounds),
        "districts": sorted(c.districts),
        "first_day": min(c.days),
        "last_day": max(c.days),
        "links": {"pool": len(c.pool_links), "compound": len(c.compound_links)},
    }


def clusters(
    gw: Gateway,
    since: str,
    until: str,
    *,
    cursor: str = "",
    limit: int = 50,
    district: str | None = None,
) -> ClustersJSON:
    """One page of the window's clusters, largest first; a district sees the clusters with
    residents of its own, and only those residents (sizes, compounds and links stay whole)."""
    _check_range(limit, 1, CLUSTERS_MAX_PAGE, "limit")
    after = _cluster_cursor(cursor)
    found = find_clusters(gw, since, until)
    page: list[tuple[_Cluster, list[str]]] = []
    more = False
    for c in found.clusters:
        if after is not None and (-len(c.members), c.cluster_id) <= (-after[0], after[1]):
            continue
        visible = _visible(c, found, district)
        if not visible:
            continue
        if len(page) == limit:
            more = True
            break
        page.append((c, visible))
    persons = _member_persons(gw, found, [p for _, vis in page for p in vis])
    items = [
        _cluster_json(c, sorted((persons[p] for p in vis if p in persons), key=_by_day))
        for c, vis in page
    ]
    last = page[-1][0] if page else None
    return {
        "since": found.since,
        "until": found.until,
        "clusters": items,
        "next_cursor": f"{len(last.members)}:{last.cluster_id}" if more and last else None,
    }


def _by_day(person: WindowPersonJSON) -> tuple[str, str]:
    return person["day"], person["person_id"]


def cluster(
    gw: Gateway, since: str, until: str, wanted: str, *, district: str | None = None
) -> ClusterDetailJSON:
    """One cluster of the window with what draws it: its members' registrations inside the
    window (person, compound, day, tube, pooled) for the console's graph."""
    found = find_clusters(gw, since, until)
    c = next((c for c in found.clusters if c.cluster_id == wanted), None)
    visible = _visible(c, found, district) if c is not None else []
    if c is None or not visible:
        raise NotFound(f"No cluster '{wanted[:40]}' between {found.since} and {found.until}.")
    persons = _member_persons(gw, found, visible)
    shown = set(visible)
    window: list[WindowRegistration] = _records(
        gw.read(
            "window_registrations", person_ids=visible, since=found.since, until=found.until
        ).value(),
        WINDOW_FIELDS,
    )
    regs: dict[str, list[WindowRegistration]] = defaultdict(list)
    for r in window:
        regs[r["person_id"]].append(r)
    registrations: list[ClusterRegistrationJSON] = [
        {
            "person_id": p,
            "tube_code": r["tube_code"],
            "day": r["day"],
            "pooled": r["pooled"],
            "compound_code": r["compound_code"],
            "linking_pool": r["tube_code"] in c.pool_links,
        }
        for p in c.members
        if p in shown
        for r in sorted(regs.get(p, []), key=lambda r: (r["day"], r["tube_code"]))
    ]
    answer = _cluster_json(c, sorted(persons.values(), key=_by_day))
    return {
        **answer,
        "since": found.since,
        "until": found.until,
        "registrations": registrations,
    }


# ---------------------------------------------------------------- signals


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (no overflow at any n)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    logs = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
        for i in range(k, n + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(x - top) for x in logs))


def _trace_urls(tubes: list[str]) -> list[str]:
    return [f"/v1/tubes/{quote(t, safe='')}/trace" for t in tubes]


def _signal(kind: str, subject: str, evidence: dict[str, object], tubes: list[str]) -> SignalJSON:
    tubes = sorted(set(tubes))
    return {
        "kind": kind,
        "subject": subject,
        "evidence": evidence,
        "tubes": tubes,
        "traces": _trace_urls(tubes),
    }


def _across_compounds(
    kind: str, rows: list[PositiveRegistration], key: Literal["collector_id", "box_code"]
) -> list[SignalJSON]:
    """Collectors (or boxes) whose positive tubes of the day come from several compounds: a
    tube comes from the compound most of its registrations name (one mistyped compound code
    in a tube is a flag of the trace, not a signal)."""
    named: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        if r["compound_code"] is not None:
            named[r["tube_code"]][r["compound_code"]] += 1
    home = {t: min(c, key=lambda x: (-c[x], x)) for t, c in named.items()}
    by: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in rows:
        subject = r[key]
        if subject is not None and r["tube_code"] in home:
            by[subject][home[r["tube_code"]]].add(r["tube_code"])
    out = []
    for subject, per in sorted(by.items()):
        if len(per) < 2:
            continue
        tubes = sorted({t for ts in per.values() for t in ts})
        evidence: dict[str, object] = {
            "compounds": sorted(per),
            "positive_tubes": len(tubes),
            "tubes_by_compound": {c: sorted(ts) for c, ts in sorted(per.items())},
        }
        out.append(_signal(kind, subject, evidence, tubes))
    return out


def _lab_signals(rows: list[_LabPools]) -> list[SignalJSON]:
    """Labs whose share of positive pools of the day is far above the other labs': a
    one-sided binomial test of the lab's positives among its pools against the other labs'
    pooled rate (with one positive and one negative added, so that a day when the others
    found none still gives a rate), signalled at p < LAB_P_THRESHOLD with at least
    LAB_MIN_POSITIVES positives."""
    total_n = sum(r["pools"] for r in rows)
    total_k = sum(len(r["positive_tubes"]) for r in rows)
    out = []
    for r in rows:
        n, k = r["pools"], len(r["positive_tubes"])
        other_n, other_k = total_n - n, total_k - k
        if other_n == 0 or k < LAB_MIN_POSITIVES:
            continue
        p0 = (other_k + 1) / (other_n + 2)
        p_value = binomial_tail(k, n, p0)
        if p_value >= LAB_P_THRESHOLD or k / n <= p0:
            continue
        evidence: dict[str, object] = {
            "pools": n,
            "positive_pools": k,
            "rate": round(k / n, 4),
            "other_labs_pools": other_n,
            "other_labs_positive_pools": other_k,
            "other_labs_rate": round(other_k / other_n, 4),
            "test": "one-sided binomial P(X >= positive_pools | pools, (other positives + 1) "
            "/ (other pools + 2))",
            "p_value": p_value,
            "threshold": LAB_P_THRESHOLD,
            "min_positives": LAB_MIN_POSITIVES,
        }
        out.append(_signal("lab_positive_rate", r["lab_code"], evidence, r["positive_tubes"]))
    return out


def _consecutive(rows: list[PositiveRegistration], day: str) -> list[SignalJSON]:
    """Compounds with positive tubes on CONSECUTIVE_DAYS or more consecutive sampling days
    ending with `day`."""
    by: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in rows:
        if r["compound_code"] is not None:
            by[r["compound_code"]][r["day"]].add(r["tube_code"])
    out = []
    for code, per_day in sorted(by.items()):
        run: list[str] = []
        d = day
        while d in per_day:
            run.insert(0, d)
            d = _shift(d, -1)
        if len(run) < CONSECUTIVE_DAYS:
            continue
        tubes = sorted({t for x in run for t in per_day[x]})
        evidence: dict[str, object] = {
            "days": run,
            "consecutive_days": len(run),
            "positive_tubes_by_day": {x: len(per_day[x]) for x in run},
        }
        out.append(_signal("compound_consecutive_days", code, evidence, tubes))
    return out


def _unexplained(rows: list[PositiveRegistration]) -> list[PositiveRegistration]:
    """The positive registrations without the expected ones: a single tube of a person who
    was in a positive pooled tube in the FOLLOW_DAYS days before (a retest a retest team
    takes at every compound with a positive pool)."""
    pooled: dict[str, list[date]] = defaultdict(list)
    for r in rows:
        if domain.is_pooled(r["pool_size"]):
            pooled[r["person_id"]].append(date.fromisoformat(r["day"]))

    def expected(r: PositiveRegistration) -> bool:
        if domain.is_pooled(r["pool_size"]):
            return False
        d = date.fromisoformat(r["day"])
        return any(0 <= (d - x).days <= FOLLOW_DAYS for x in pooled.get(r["person_id"], []))

    return [r for r in rows if not expected(r)]


def signals(gw: Gateway, day: str) -> SignalsJSON:
    """The day's signals of sampling and lab trouble (see docs/analysis.md): collectors and
    boxes whose positive tubes of the day come from several compounds, labs with far more
    positive pools than the others, compounds positive several days running. Retests of the
    persons of positive pools are expected positives, not evidence (`_unexplained`)."""
    day = parse_day(day)
    since = _shift(day, -(MAX_DAYS - 1))
    rows = _unexplained(_positive_registrations(gw, since, day, _shift(day, REPORT_LAG_DAYS))[0])
    today = [r for r in rows if r["day"] == day]
    found = (
        _across_compounds("collector_across_compounds", today, "collector_id")
        + _across_compounds("box_across_compounds", today, "box_code")
        + _lab_signals(cast(list[_LabPools], gw.read("lab_pools_of_day", day=day)))
        + _consecutive(rows, day)
    )
    return {"date": day, "signals": found}


# ---------------------------------------------------------------- attack rates


def _share(positives: int, persons: int) -> float | None:
    return round(positives / persons, 4) if persons else None


def attack_rate(gw: Gateway, since: str, until: str) -> AttackRateJSON:
    """For the cases of the window (persons with a positive single tube sampled inside it,
    on their first such day), the persons of rings 1-3 (as in `exposure`, the 14 days up to
    the case's day) with a positive tube, single or pooled, sampled within FOLLOW_DAYS days
    after the case's day; each person counted once, in the closest ring of any case (the
    earliest case on a tie). Against the city: every person swabbed inside the window, and
    those with a positive within FOLLOW_DAYS days after their first day in it."""
    since, until = check_window(since, until)
    last = _shift(until, FOLLOW_DAYS)
    rows, _ = _positive_registrations(gw, since, last, _shift(last, REPORT_LAG_DAYS))
    positive_days: dict[str, set[str]] = defaultdict(set)
    cases: dict[str, str] = {}
    for r in rows:
        positive_days[r["person_id"]].add(r["day"])
        if r["pool_size"] == 1 and r["day"] <= until:
            cases.setdefault(r["person_id"], r["day"])  # rows are in day order
    members = ring_members(
        gw, [{"person_id": p, "until": d} for p, d in sorted(cases.items())], depth=3, days=14
    )
    closest: dict[str, tuple[int, str]] = {}
    for case, items in members.items():
        for i in items:
            here = (i["depth"], cases[case])
            if i["person_id"] not in closest or here < closest[i["person_id"]]:
                closest[i["person_id"]] = here
    counts = {k: [0, 0] for k in (1, 2, 3)}
    for person, (depth, case_day) in closest.items():
        window = (case_day, _shift(case_day, FOLLOW_DAYS))
        counts[depth][0] += 1
        counts[depth][1] += any(window[0] < d <= window[1] for d in positive_days[person])
    city = gw.read("city_attack_rate", since=since, until=until).row()
    return {
        "since": since,
        "until": until,
        "cases": len(cases),
        "follow_days": FOLLOW_DAYS,
        "rings": [
            {"depth": k, "persons": n, "positives": pos, "share": _share(pos, n)}
            for k, (n, pos) in counts.items()
        ],
        "city": {
            "persons": city["persons"],
            "positives": city["positives"],
            "share": _share(city["positives"], city["persons"]),
        },
    }
