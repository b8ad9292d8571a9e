"""Outbreak analysis against an independent truth (issue 23).

A generated four-day city (the house's seeded generator, pools mixed from day to day) with
planted trouble (a collector and a box across compounds, a lab with many positive pools, a
compound positive three days running) is loaded through the loaders. Exposure rings, clusters
and attack rates are then computed again here, with networkx, straight from the files that
were loaded (their own reading of identities, days and pools: no engine helper), and compared
with the answers of the running API and of the CLI.

The city is loaded once for the module (`city`); every test here reads it and none writes
anything but audit entries and keys (a test that needs another database belongs elsewhere)."""

from __future__ import annotations

import csv
import json
import math
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from itertools import combinations
from pathlib import Path
from typing import Any

import httpx
import networkx as nx
import pytest

from bench.devdb import wipe
from engine.access import audit
from engine.access.keys import create_key
from engine.analysis.outbreak import binomial_tail
from engine.settings import Settings
from engine.store.gateway import Gateway
from loaders.generate import generate_city
from loaders.transform import REGISTRATION_FIELDS, RESULT_FIELDS
from tests.helpers import cli, load

CST = timezone(timedelta(hours=8))
DAYS = ("2022-04-09", "2022-04-10", "2022-04-11", "2022-04-12")
D = DAYS[2]  # the day of the planted signals
Who = tuple[str, str]  # (id_type, id_number) as the engine keys a person


# ---------------------------------------------------------------- the city and its files


def _plant(folder: Path) -> tuple[Path, Path]:
    """Registrations and results of planted trouble, each tube three new persons."""
    regs: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []

    def tube(
        code: str, day: str, compound: str, box: str, collector: str, *who: int, **kw: str
    ) -> None:
        """A tube of three new persons, or of the persons numbered `who` (single when one)."""
        for person in who or (None, None, None):
            n = len(regs) + 1
            number = f"EP{n:07d}" if person is None else f"EQ{person:05d}"
            regs.append(
                {
                    "record_id": f"RP{n:05d}",
                    "collected_at": f"{day}T15:{n % 60:02d}:00+08:00",
                    "compound_code": compound,
                    "box_code": box,
                    "tube_code": code,
                    "pool_size": 1 if len(who) == 1 else 10,
                    "method": "nucleic_code",
                    "id_type": "passport",
                    "id_number": number,
                    "name": f"植入{number}",
                    "phone": f"139{n:08d}",
                    "collector_id": collector,
                }
            )
        results.append(
            {
                "tube_code": code,
                "result": kw.get("result", "positive"),
                "reported_at": f"{day}T22:00:00+08:00",
                "lab_code": kw.get("lab", "LAB01"),
            }
        )

    # One collector's positive pools at two compounds; one box's from two compounds.
    tube("PX-COL-1", D, "C00003", "BX-COL-1", "V-CONTAM")
    tube("PX-COL-2", D, "C00005", "BX-COL-2", "V-CONTAM")
    tube("PX-BOX-1", D, "C00006", "BX-MIX", "V-BOX-1")
    tube("PX-BOX-2", D, "C00007", "BX-MIX", "V-BOX-2")
    # A lab reporting 10 of its 12 pools positive on D.
    for i in range(1, 13):
        tube(
            f"PX-LAB-{i:02d}",
            D,
            "C00010",
            "BX-LAB",
            "V-LAB",
            lab="LAB-HOT",
            result="positive" if i <= 10 else "negative",
        )
    # Secondary cases: 1 is confirmed on day 2 (its pool of day 1 positive); 2, of its pool,
    # is in a positive pool on day 4 (ring 1, positive within 7 days); 3, of its pool too, was
    # pooled with 6 on day 1, and 6 is in a positive pool on day 3 (ring 2, positive).
    chain = ("C00012", "BX-CHAIN", "V-CHAIN")
    tube("PX-CHAIN-A", DAYS[0], *chain, 1, 2, 3)
    tube("PX-CHAIN-S1", DAYS[1], *chain, 1)
    tube("PX-CHAIN-B", DAYS[3], *chain, 2, 4, 5)
    tube("PX-CHAIN-C", DAYS[0], *chain, 3, 6, result="negative")
    tube("PX-CHAIN-D", DAYS[2], *chain, 6, 7)
    # A compound with a positive pool on three days running, up to D.
    for day in DAYS[:3]:
        tube(f"PX-RUN-{day[-2:]}", day, "C00011", "BX-RUN", "V-RUN")
    reg_path, res_path = folder / "planted.csv", folder / "planted-results.csv"
    for path, fields, rows in (
        (reg_path, REGISTRATION_FIELDS, regs),
        (res_path, RESULT_FIELDS, results),
    ):
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(fields))
            w.writeheader()
            w.writerows(rows)
    return reg_path, res_path


@dataclass(frozen=True)
class Reg:
    who: Who
    tube: str
    day: str | None
    pool: int | None
    compound: str | None


def _text(value: str | None) -> str | None:
    """As the contract says every field is read: NFKC, trimmed, empty is not given."""
    if value is None:
        return None
    value = unicodedata.normalize("NFKC", value).strip()
    return value or None


def _who(id_type: str | None, id_number: str) -> Who:
    """(id_type, upper-cased number); a 15-digit resident ID in its 18-digit form (GB 11643)."""
    n = id_number.upper()
    if id_type == "resident_id" and len(n) == 15 and n.isdigit():
        first17 = n[:6] + "19" + n[6:]
        weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
        n = (
            first17
            + "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]
        )
    return (id_type or "unknown", n)


def _day(collected_at: str | None) -> str | None:
    try:
        at = datetime.fromisoformat(collected_at or "")
    except ValueError:
        return None
    return at.astimezone(CST).date().isoformat() if at.tzinfo is not None else None


def read_registrations(paths: list[Path]) -> list[Reg]:
    """Every stored registration of the files: the first version of a record id wins, a line
    without a tube or an ID number is not one this test needs."""
    seen: set[str] = set()
    out: list[Reg] = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                v = {k: _text(x) for k, x in row.items() if k is not None}
                rid = v.get("record_id")
                if not v.get("tube_code") or not v.get("id_number"):
                    continue
                if rid is not None:
                    if rid in seen:
                        continue
                    seen.add(rid)
                pool = v.get("pool_size")
                out.append(
                    Reg(
                        who=_who(v.get("id_type"), v["id_number"] or ""),
                        tube=v["tube_code"] or "",
                        day=_day(v.get("collected_at")),
                        pool=int(pool) if pool is not None and pool.isdigit() else None,
                        compound=v.get("compound_code"),
                    )
                )
    return out


def read_results(paths: list[Path]) -> list[dict[str, str | None]]:
    rows: list[dict[str, str | None]] = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as fh:
            rows += [{k: _text(x) for k, x in r.items() if k} for r in csv.DictReader(fh)]
    return [r for r in rows if r.get("tube_code")]


@dataclass
class City:
    regs: list[Reg]
    results: list[dict[str, str | None]]
    positive: set[str]
    districts: dict[str, str]  # compound -> district
    inv: str  # an investigator key
    ids: dict[Who, str]  # person -> person_id, as the API names them

    def of(self, who: Who) -> list[Reg]:
        return [r for r in self.regs if r.who == who]


@pytest.fixture(scope="module")
def city(
    session_gateway: Gateway, settings: Settings, api_url: str, tmp_path_factory: Any
) -> Iterator[City]:
    gw = session_gateway
    secret = gw.secret()
    wipe(gw)
    gw.apply_schema()
    gw.write("ensure_secret", key="person_id_secret", value=secret)
    folder = tmp_path_factory.mktemp("analysis-city")
    generate_city(folder, seed=2304, registrations=1000, days=4, positive_rate=0.05, mix_pools=True)
    planted_regs, planted_results = _plant(folder)
    load(gw, settings, "compounds", folder / "compounds.csv")
    reg_files = [folder / "registrations.csv", planted_regs]
    res_files = [folder / "results.csv", planted_results]
    for path in reg_files:
        load(gw, settings, "registrations", path)
    for path in res_files:
        load(gw, settings, "results", path)
    with (folder / "compounds.csv").open(encoding="utf-8") as fh:
        districts = {r["compound_code"]: r["district_code"] for r in csv.DictReader(fh)}
    results = read_results(res_files)
    inv = create_key(gw, role="investigator", district=None).secret
    yield City(
        regs=read_registrations(reg_files),
        results=results,
        positive={str(r["tube_code"]) for r in results if r.get("result") == "positive"},
        districts=districts,
        inv=inv,
        ids={},
    )


def get(api_url: str, key: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(
        api_url + path, params=params, headers={"Authorization": f"Bearer {key}"}, timeout=120
    )


REVEAL = {"reveal": "true", "reason": "issue 23 test"}


def person_id(city: City, api_url: str, who: Who, tube: str) -> str:
    """The API's id of a person, read from the trace of a tube they are in."""
    if who not in city.ids:
        trace = get(api_url, city.inv, f"/v1/tubes/{tube}/trace", **REVEAL).json()
        for p in trace["persons"]:
            city.ids[(p["id_type"], p["id_number"])] = p["person_id"]
    return city.ids[who]


def _who_of(p: dict[str, Any]) -> Who:
    return (p["id_type"], p["id_number"])


def _shift(day: str, n: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()


# ---------------------------------------------------------------- the independent truth


def rings_truth(
    regs: list[Reg], subject: Who, since: str, until: str, depth: int
) -> dict[int, dict[Who, tuple[str, str]]]:
    """Ring k: persons at co-pool distance k (2k steps person-tube-person in the bipartite
    graph of the window's pooled registrations), each with the earliest (day, tube) of theirs
    in a tube at distance 2k - 1."""
    g: nx.Graph = nx.Graph()
    for r in regs:
        if r.day is not None and since <= r.day <= until and r.pool is not None and r.pool > 1:
            g.add_edge(("p", r.who), ("t", r.tube))
    rings: dict[int, dict[Who, tuple[str, str]]] = {k: {} for k in range(1, depth + 1)}
    if ("p", subject) not in g:
        return rings
    dist = nx.single_source_shortest_path_length(g, ("p", subject), cutoff=2 * depth)
    for r in regs:
        d = dist.get(("p", r.who))
        if not d or r.day is None or not since <= r.day <= until or not (r.pool or 0) > 1:
            continue
        if dist.get(("t", r.tube)) == d - 1:
            found = rings[d // 2].get(r.who)
            rings[d // 2][r.who] = min(found, (r.day, r.tube)) if found else (r.day, r.tube)
    return rings


@dataclass
class TrueCluster:
    members: frozenset[Who]
    first_day: str
    last_day: str
    compounds: set[str]
    districts: set[str]
    pool_links: set[str]
    compound_links: set[str]


def clusters_truth(city: City, since: str, until: str) -> dict[frozenset[Who], TrueCluster]:
    """Members: every person of a positive tube inside the window. Linked: any two of their
    registrations inside the window in one pooled tube, or at one compound within 3 days."""
    inside = [r for r in city.regs if r.day is not None and since <= r.day <= until]
    members = {r.who for r in inside if r.tube in city.positive}
    g: nx.Graph = nx.Graph()
    g.add_nodes_from(members)
    pooled: dict[str, set[Who]] = defaultdict(set)
    at: dict[str, list[tuple[str, Who]]] = defaultdict(list)
    for r in inside:
        if r.who not in members:
            continue
        if r.pool is not None and r.pool > 1:
            pooled[r.tube].add(r.who)
        if r.compound is not None:
            at[r.compound].append((str(r.day), r.who))
    pool_edges: dict[str, list[tuple[Who, Who]]] = {}
    for tube, ps in pooled.items():
        pool_edges[tube] = list(combinations(sorted(ps), 2))
        g.add_edges_from(pool_edges[tube])
    compound_edges: dict[str, list[tuple[Who, Who]]] = defaultdict(list)
    for code, entries in at.items():
        for (d1, a), (d2, b) in combinations(entries, 2):
            gap = abs((date.fromisoformat(d1) - date.fromisoformat(d2)).days)
            if a != b and gap <= 3:
                compound_edges[code].append((a, b))
                g.add_edge(a, b)
    out: dict[frozenset[Who], TrueCluster] = {}
    for component in nx.connected_components(g):
        ms = frozenset(component)
        days = [str(r.day) for r in inside if r.who in ms and r.tube in city.positive]
        codes = {str(r.compound) for r in inside if r.who in ms and r.compound is not None}
        out[ms] = TrueCluster(
            members=ms,
            first_day=min(days),
            last_day=max(days),
            compounds=codes,
            districts={city.districts[c] for c in codes if c in city.districts},
            pool_links={t for t, es in pool_edges.items() if es and es[0][0] in ms},
            compound_links={c for c, es in compound_edges.items() if any(a in ms for a, _ in es)},
        )
    return out


# ---------------------------------------------------------------- exposure


def _subjects(city: City) -> list[tuple[Who, str]]:
    """Persons to trace from: a resident of the first tube, the person typed with full-width
    digits in the planted messy tube, a person of a tube shared by two compounds (two
    districts), a planted collector's person, and a confirmed case (a positive retest)."""
    first = next(r for r in city.regs if r.tube == "T000000001")
    messy = [r for r in city.regs if r.tube == "TX-MESSY"]
    split = next(r for r in city.regs if r.tube == "TX-SPLIT")
    planted = next(r for r in city.regs if r.tube == "PX-COL-1")
    case = next(r for r in city.regs if r.pool == 1 and r.tube in city.positive)
    return [(r.who, r.tube) for r in (first, messy[-1], split, planted, case)]


def api_rings(
    api_url: str, key: str, pid: str, **params: Any
) -> tuple[dict[str, Any], dict[int, dict[Who, tuple[str, str]]]]:
    resp = get(api_url, key, f"/v1/persons/{pid}/exposure", limit=1000, **REVEAL, **params)
    assert resp.status_code == 200, resp.text[:300]
    body = resp.json()
    assert body["next_cursor"] is None
    rings = {
        ring["depth"]: {_who_of(p): (p["day"], p["tube_code"]) for p in ring["persons"]}
        for ring in body["rings"]
    }
    return body, rings


def test_exposure_rings_equal_networkx_over_the_files(city: City, api_url: str) -> None:
    compared = persons = 0
    for who, tube in _subjects(city):
        pid = person_id(city, api_url, who, tube)
        latest = max(str(r.day) for r in city.of(who) if r.day is not None)
        for depth, days, until in (
            (1, 14, None),
            (2, 14, None),
            (3, 14, None),
            (4, 14, None),
            (3, 2, DAYS[1]),
            (4, 21, DAYS[3]),
        ):
            params: dict[str, Any] = {"depth": depth, "days": days}
            if until is not None:
                params["until"] = until
            body, got = api_rings(api_url, city.inv, pid, **params)
            end = until or latest
            since = _shift(end, -(days - 1))
            assert (body["since"], body["until"]) == (since, end)
            truth = rings_truth(city.regs, who, since, end, depth)
            assert sorted(got) == list(range(1, depth + 1))
            for k in truth:
                # The same persons, each placed by the same (day, tube) registration.
                assert got[k] == truth[k], (who, depth, days, k)
                persons += len(got[k])
            everyone = [w for k in got for w in got[k]]
            assert len(everyone) == len(set(everyone)) and who not in everyone
            compared += 1
    print(f"\nexposure: {compared} answers equal to networkx, {persons} ring persons")
    assert persons > 200


def test_exposure_pages_cli_and_api_agree(
    city: City, api_url: str, subprocess_env: dict[str, str]
) -> None:
    who, tube = _subjects(city)[0]
    pid = person_id(city, api_url, who, tube)
    whole, _ = api_rings(api_url, city.inv, pid, depth=4)
    # Paged by 7: the same persons, in the same order, ring by ring.
    paged: dict[int, list[dict[str, Any]]] = defaultdict(list)
    cursor, pages = "", 0
    while True:
        resp = get(
            api_url,
            city.inv,
            f"/v1/persons/{pid}/exposure",
            depth=4,
            limit=7,
            cursor=cursor,
            **REVEAL,
        )
        body = resp.json()
        pages += 1
        for ring in body["rings"]:
            paged[ring["depth"]] += ring["persons"]
        if not body["next_cursor"]:
            break
        cursor = body["next_cursor"]
    assert pages > 3
    assert {r["depth"]: r["persons"] for r in whole["rings"]} == dict(paged)
    # The CLI (the machine's user: unmasked) answers what the API answers with reveal=true.
    done = cli(subprocess_env, "exposure", pid, "--depth", "4", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == whole
    # Bad input: a sentence, not a 500.
    for params in (
        {"depth": 5},
        {"days": 0},
        {"days": 22},
        {"until": "2022-4-1"},
        {"cursor": "nonsense"},
    ):
        resp = get(api_url, city.inv, f"/v1/persons/{pid}/exposure", **params)
        assert resp.status_code == 422, (params, resp.text)
        assert resp.json()["error"] == "invalid_input"
    assert get(api_url, city.inv, "/v1/persons/p_nobody/exposure").status_code == 404


def test_exposure_is_masked_scoped_and_audited(
    city: City, api_url: str, session_gateway: Gateway
) -> None:
    # A person of the tube two compounds of two districts filled: rings cross districts.
    split = [r for r in city.regs if r.tube == "TX-SPLIT"]
    by_district = defaultdict(list)
    for r in split:
        by_district[city.districts[str(r.compound)]].append(r)
    assert len(by_district) == 2
    home, away = sorted(by_district)
    subject = by_district[home][0].who
    pid = person_id(city, api_url, subject, "TX-SPLIT")
    _, truth = api_rings(api_url, city.inv, pid, depth=2)
    everyone = get(api_url, city.inv, f"/v1/persons/{pid}/exposure", depth=2).json()
    shown = [p for ring in everyone["rings"] for p in ring["persons"]]
    assert {p["residence"]["district_code"] for p in shown} == {home, away}
    revealed = {w for ring in truth.values() for w in ring}
    # An investigator without reveal: ID numbers and phones masked.
    assert not any(_who_of(p) in revealed for p in shown)
    assert all("*" in (p["phone"] or "*") for p in shown)
    # A district key: only its own residents, phones of its own unmasked.
    own = create_key(session_gateway, role="district", district=home).secret
    mine = get(api_url, own, f"/v1/persons/{pid}/exposure", depth=2).json()
    mine_shown = [p for ring in mine["rings"] for p in ring["persons"]]
    assert mine_shown and {p["residence"]["district_code"] for p in mine_shown} == {home}
    assert sorted(p["person_id"] for p in mine_shown) == sorted(
        p["person_id"] for p in shown if p["residence"]["district_code"] == home
    )
    assert all(p["phone"] is None or "*" not in p["phone"] for p in mine_shown)
    # The other district: the person is not its resident: 404, the id not echoed.
    other = create_key(session_gateway, role="district", district=away).secret
    refused = get(api_url, other, f"/v1/persons/{pid}/exposure", depth=2)
    assert refused.status_code == 404 and pid not in refused.text
    # Senders have no business here; reveal needs a reason.
    lab = create_key(session_gateway, role="lab", district=None, labs=["LAB01"]).secret
    assert get(api_url, lab, f"/v1/persons/{pid}/exposure").status_code == 403
    bad = get(api_url, city.inv, f"/v1/persons/{pid}/exposure", reveal="true")
    assert bad.status_code == 422
    # Every read is audited with the persons it showed.
    shown_ids = {p["person_id"] for p in mine_shown}
    for _ in range(50):
        entries = [
            e
            for e in audit.entries(session_gateway, since=None, key_id=None, limit=5000)
            if e["action"] == "exposure" and e["role"] == "district"
        ]
        if entries:
            break
        time.sleep(0.2)
    assert entries and set(entries[-1]["person_ids"]) == shown_ids | {pid}


# ---------------------------------------------------------------- clusters


def api_clusters(api_url: str, key: str, since: str, until: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    cursor = ""
    while True:
        resp = get(api_url, key, "/v1/clusters", since=since, until=until, cursor=cursor, **params)
        assert resp.status_code == 200, resp.text[:300]
        body = resp.json()
        assert (body["since"], body["until"]) == (since, until)
        items += body["clusters"]
        if not body["next_cursor"]:
            return items
        cursor = body["next_cursor"]


def test_clusters_equal_networkx_components(city: City, api_url: str) -> None:
    checked = 0
    for since, until in ((DAYS[0], DAYS[3]), (DAYS[1], DAYS[2]), (D, D)):
        truth = clusters_truth(city, since, until)
        got = api_clusters(api_url, city.inv, since, until, limit=3, **REVEAL)
        sizes = [c["size"] for c in got]
        assert sizes == sorted(sizes, reverse=True)  # largest first
        by_members = {frozenset(_who_of(p) for p in c["persons"]): c for c in got}
        assert len(by_members) == len(got)
        assert set(by_members) == set(truth), (since, until)
        for members, t in truth.items():
            c = by_members[members]
            assert c["size"] == len(members)
            assert (c["first_day"], c["last_day"]) == (t.first_day, t.last_day)
            assert set(c["compounds"]) == t.compounds
            assert set(c["districts"]) == t.districts
            assert c["links"] == {"pool": len(t.pool_links), "compound": len(t.compound_links)}
        checked += len(truth)
        # Stable ids: the same members, the same id.
        again = api_clusters(api_url, city.inv, since, until)
        assert [c["cluster_id"] for c in again] == [c["cluster_id"] for c in got]
    print(f"\nclusters: {checked} clusters equal to networkx's components over 3 windows")
    assert checked > 10
    # More than 21 days, or backwards: a sentence.
    for since, until in (("2022-03-01", DAYS[3]), (DAYS[2], DAYS[0])):
        resp = get(api_url, city.inv, "/v1/clusters", since=since, until=until)
        assert resp.status_code == 422 and resp.json()["error"] == "invalid_input"


def test_clusters_are_masked_and_scoped_and_the_cli_agrees(
    city: City, api_url: str, session_gateway: Gateway, subprocess_env: dict[str, str]
) -> None:
    since, until = DAYS[0], DAYS[3]
    everything = api_clusters(api_url, city.inv, since, until)
    revealed = api_clusters(api_url, city.inv, since, until, **REVEAL)
    unmasked = {_who_of(p) for c in revealed for p in c["persons"]}
    masked = [p for c in everything for p in c["persons"]]
    assert masked and not any(_who_of(p) in unmasked for p in masked)
    district = city.districts["C00003"]
    key = create_key(session_gateway, role="district", district=district).secret
    mine = api_clusters(api_url, key, since, until)
    expected = {
        c["cluster_id"]: sorted(
            p["person_id"] for p in c["persons"] if p["residence"]["district_code"] == district
        )
        for c in everything
    }
    expected = {k: v for k, v in expected.items() if v}
    assert (
        expected
        and {c["cluster_id"]: sorted(p["person_id"] for p in c["persons"]) for c in mine}
        == expected
    )
    sizes = {c["cluster_id"]: c["size"] for c in everything}
    assert all(c["size"] == sizes[c["cluster_id"]] for c in mine)
    nobody = create_key(session_gateway, role="district", district="310101").secret
    assert api_clusters(api_url, nobody, since, until) == []
    done = cli(subprocess_env, "clusters", "--since", since, "--until", until, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "since": since,
        "until": until,
        "clusters": revealed,
        "next_cursor": None,
    }


def test_console_draws_a_cluster(city: City, api_url: str) -> None:
    from tests.helpers import console_login

    client = console_login(api_url, city.inv)
    page = client.get("/console/clusters", params={"since": DAYS[0], "until": DAYS[3]})
    assert page.status_code == 200
    biggest = api_clusters(api_url, city.inv, DAYS[0], DAYS[3])[0]
    assert biggest["cluster_id"] in page.text
    one = client.get(
        f"/console/clusters/{biggest['cluster_id']}", params={"since": DAYS[0], "until": DAYS[3]}
    )
    assert one.status_code == 200 and 'id="graph"' in one.text
    data = client.get(
        f"/console/data/clusters/{biggest['cluster_id']}",
        params={"since": DAYS[0], "until": DAYS[3]},
    ).json()
    nodes = {n["data"]["id"]: n["data"] for n in data["elements"]["nodes"]}
    cases = [n for n in nodes.values() if n["kind"] == "case"]
    assert len(cases) == biggest["size"]
    assert {n["label"] for n in nodes.values() if n["kind"] == "compound"} == set(
        biggest["compounds"]
    )
    assert all(n["day"] in DAYS for n in cases)
    for e in data["elements"]["edges"]:
        assert e["data"]["source"] in nodes and e["data"]["target"] in nodes
        assert e["data"]["day"] in DAYS
    assert client.get("/console/clusters/k_0").status_code == 404


# ---------------------------------------------------------------- signals and attack rates


def _exact_tail(k: int, n: int, p: Fraction) -> float:
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def test_binomial_tail_equals_the_exact_sum() -> None:
    for k, n, p in (
        (3, 12, Fraction(1, 20)),
        (10, 12, Fraction(7, 46)),
        (0, 5, Fraction(1, 2)),
        (40, 400, Fraction(1, 50)),
        (13, 12, Fraction(1, 3)),
    ):
        assert math.isclose(binomial_tail(k, n, float(p)), _exact_tail(k, n, p), rel_tol=1e-9)


def test_planted_signals_are_found(
    city: City, api_url: str, subprocess_env: dict[str, str]
) -> None:
    resp = get(api_url, city.inv, "/v1/reports/signals", date=D)
    assert resp.status_code == 200, resp.text
    found = resp.json()["signals"]
    by_kind: dict[str, dict[str, Any]] = defaultdict(dict)
    for s in found:
        by_kind[s["kind"]][s["subject"]] = s
        assert s["traces"] == [f"/v1/tubes/{t}/trace" for t in s["tubes"]]
    collector = by_kind["collector_across_compounds"]
    assert set(collector) == {"V-CONTAM"}
    assert collector["V-CONTAM"]["evidence"]["compounds"] == ["C00003", "C00005"]
    assert collector["V-CONTAM"]["tubes"] == ["PX-COL-1", "PX-COL-2"]
    box = by_kind["box_across_compounds"]
    assert set(box) == {"BX-MIX"} and box["BX-MIX"]["tubes"] == ["PX-BOX-1", "PX-BOX-2"]
    lab = by_kind["lab_positive_rate"]
    assert set(lab) == {"LAB-HOT"}
    evidence = lab["LAB-HOT"]["evidence"]
    assert (evidence["pools"], evidence["positive_pools"]) == (12, 10)
    assert lab["LAB-HOT"]["tubes"] == [f"PX-LAB-{i:02d}" for i in range(1, 11)]
    # The other labs' pools of the day, from the files: the test's own p-value.
    pooled = {r.tube for r in city.regs if (r.pool or 0) > 1}
    others = {
        str(r["tube_code"])
        for r in city.results
        if r["lab_code"] != "LAB-HOT"
        and (r["reported_at"] or "")[:10] == D
        and r["tube_code"] in pooled
    }
    other_pos = {
        t
        for t in others
        if any(
            x["tube_code"] == t
            and x["result"] == "positive"
            and x["lab_code"] != "LAB-HOT"
            and (x["reported_at"] or "")[:10] == D
            for x in city.results
        )
    }
    assert (evidence["other_labs_pools"], evidence["other_labs_positive_pools"]) == (
        len(others),
        len(other_pos),
    )
    p0 = Fraction(len(other_pos) + 1, len(others) + 2)
    assert math.isclose(evidence["p_value"], _exact_tail(10, 12, p0), rel_tol=1e-9)
    assert evidence["p_value"] < 0.001
    run = by_kind["compound_consecutive_days"]["C00011"]
    assert run["evidence"]["days"][-3:] == list(DAYS[:3])
    assert {"PX-RUN-09", "PX-RUN-10", "PX-RUN-11"} <= set(run["tubes"])
    # The day before has none of them (the run is 2 days long then; the plants are on D).
    before = get(api_url, city.inv, "/v1/reports/signals", date=DAYS[1]).json()["signals"]
    assert not {"V-CONTAM", "BX-MIX", "LAB-HOT", "C00011"} & {s["subject"] for s in before}
    done = cli(subprocess_env, "report", "signals", "--date", D, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == resp.json()
    print(f"\nsignals of {D}: {len(found)} ({', '.join(sorted(by_kind))})")


def test_attack_rates_equal_networkx(
    city: City, api_url: str, subprocess_env: dict[str, str]
) -> None:
    since, until = DAYS[0], DAYS[3]
    positive_days: dict[Who, set[str]] = defaultdict(set)
    cases: dict[Who, str] = {}
    for r in sorted(city.regs, key=lambda r: str(r.day)):
        if r.day is None or r.tube not in city.positive:
            continue
        positive_days[r.who].add(r.day)
        if r.pool == 1 and since <= r.day <= until:
            cases.setdefault(r.who, r.day)
    closest: dict[Who, tuple[int, str]] = {}
    for case, day in cases.items():
        for k, ring in rings_truth(city.regs, case, _shift(day, -13), day, 3).items():
            for who in ring:
                closest[who] = min(closest.get(who, (k, day)), (k, day))
    rows = {k: [0, 0] for k in (1, 2, 3)}
    for who, (k, day) in closest.items():
        rows[k][0] += 1
        rows[k][1] += any(day < d <= _shift(day, 7) for d in positive_days[who])
    first: dict[Who, str] = {}
    for r in city.regs:
        if r.day is not None and since <= r.day <= until:
            first[r.who] = min(first.get(r.who, r.day), r.day)
    city_pos = sum(
        any(f < d <= _shift(f, 7) for d in positive_days[who]) for who, f in first.items()
    )
    done = cli(
        subprocess_env, "report", "attack-rate", "--since", since, "--until", until, "--json"
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["cases"] == len(cases) > 0
    assert rows[1][1] > 0 and rows[2][1] > 0  # the planted secondary cases are found
    assert [(r["depth"], r["persons"], r["positives"]) for r in got["rings"]] == [
        (k, n, pos) for k, (n, pos) in rows.items()
    ]
    assert (got["city"]["persons"], got["city"]["positives"]) == (len(first), city_pos)
    assert got == get(api_url, city.inv, "/v1/reports/attack-rate", since=since, until=until).json()
    print(
        "\nattack rates: "
        + ", ".join(f"ring {r['depth']} {r['positives']}/{r['persons']}" for r in got["rings"])
        + f", city {city_pos}/{len(first)}"
    )
