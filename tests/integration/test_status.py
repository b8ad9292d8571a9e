"""Person status per sampling day and the status-changes feed, on the real Neo4j."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.devdb import wipe
from engine.access.keys import Principal, create_key
from engine.errors import NotFound
from engine.feed import status
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import all_tube_codes, trace_tube
from loaders import write
from loaders.generate import generate_city
from loaders.read import read_file
from tests.helpers import (
    D1,
    D2,
    IDS,
    RETEST_HEADER,
    load,
    load_compounds,
    reg,
    status_scenario,
)

INVESTIGATOR = Principal("inv", "investigator")
PUDONG = Principal("pd", "district", "310115")
HUANGPU = Principal("hp", "district", "310101")
EXPECTED = {
    ("A", D1): "released",
    ("A", D2): "negative",
    ("B", D1): "positive",
    ("B", D2): "positive",
    ("C", D1): "pooled_positive",
    ("D", D1): "negative",
    ("E", D1): "negative",
    ("F", D1): "negative",  # invalid, but a later sample of F has a result
    ("F", D2): "negative",
    ("G", D1): "resample",
    ("H", D2): "negative",
}


def final_statuses(gw: Gateway) -> dict[tuple[str, str], str]:
    """The statuses as the feed tells them (replayed in order), checked against the stored."""
    by_id = {v: k for k, v in IDS.items()}
    last: dict[tuple[str, str], str] = {}
    by_pid: dict[str, str] = {}
    cursor: str | None = ""
    while cursor is not None:
        items, cursor = status.changes_page(gw, cursor, 3)
        for c in items:
            key = (by_id[c["person"]["id_number"]], c["day"])
            # Each change starts where the previous change of that person-day ended.
            assert c["previous_status"] == last.get(key), c
            last[key] = c["status"]
            by_pid[f"{c['person']['person_id']}|{c['day']}"] = c["status"]
    stored = {r["key"]: r["status"] for r in gw.read("all_person_days", after="", limit=1000)}
    assert stored == by_pid
    return last


def test_statuses_follow_the_contract_table(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    load_compounds(gw, settings)
    for kind, path in status_scenario(tmp_path):
        load(gw, settings, kind, path)
    assert final_statuses(gw) == EXPECTED


def test_any_arrival_order_gives_the_same_statuses(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    files = status_scenario(tmp_path)
    orders = list(itertools.permutations(files))
    outcomes = set()
    for order in orders:
        wipe(gw)
        gw._secret = None
        gw.apply_schema()
        load_compounds(gw, settings)
        for kind, path in order:
            load(gw, settings, kind, path)
        got = final_statuses(gw)
        assert got == EXPECTED, [p.name for _, p in order]
        # What the loader told from a new registration alone is what the whole history gives.
        assert status.refresh_tubes(gw, list(all_tube_codes(gw))) == 0
        outcomes.add(tuple(sorted(got.items())))
    print(f"\nstatus: {len(orders)} arrival orders, {len(outcomes)} distinct final statuses")
    assert len(outcomes) == 1


def test_pooled_day_moves_pending_pooled_positive_released(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    load_compounds(gw, settings)
    files = dict((p.stem, (k, p)) for k, p in status_scenario(tmp_path))
    for name in ("day1", "late", "results", "day2"):
        load(gw, settings, *files[name])
    items, _ = status.changes_page(gw, "", 1000)
    a_day1 = [c for c in items if c["person"]["id_number"] == IDS["A"] and c["day"] == D1]
    assert [c["status"] for c in a_day1] == ["pending", "pooled_positive", "released"]
    assert [c["change_id"] for c in items] == sorted(c["change_id"] for c in items)
    pid = a_day1[0]["person"]["person_id"]
    answer = status.person_status(gw, pid, D1, INVESTIGATOR)
    assert answer["status"] == "released" and answer["date"] == D1
    assert answer["since"] == a_day1[-1]["changed_at"]
    assert [t["tube_code"] for t in answer["tubes"]] == ["P1"]
    assert status.person_status(gw, pid, D1, PUDONG)["status"] == "released"
    with pytest.raises(NotFound):
        status.person_status(gw, pid, D1, HUANGPU)  # not a Huangpu resident
    with pytest.raises(NotFound):
        status.person_status(gw, pid, "2022-04-11", INVESTIGATOR)


def test_a_result_without_a_readable_time_is_never_the_latest(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    """A lab's second answer for a tube without a readable reported_at (stored, flagged) does
    not outrank the dated one: the pool stays positive for its persons and in its trace."""
    load_compounds(gw, settings)
    files = dict((p.stem, (k, p)) for k, p in status_scenario(tmp_path))
    load(gw, settings, *files["day1"])
    load(gw, settings, *files["results"])
    for at in ("", "yesterday"):
        undated = tmp_path / f"undated{len(at)}.csv"
        undated.write_text(f"tube_code,result,reported_at,lab_code\nP1,negative,{at},L3\n")
        assert load(gw, settings, "results", undated).flagged == 1
    assert final_statuses(gw)[("A", D1)] == "pooled_positive"
    trace = trace_tube(gw, "P1")
    assert (trace["tube"]["result"], trace["tube"]["reported_at"]) == (
        "positive",
        f"{D1}T20:00:00+08:00",
    )
    assert [r["reported_at"] for r in trace["tube"]["results"]][-1] == f"{D1}T20:00:00+08:00"
    assert len(trace["tube"]["results"]) == 3


def test_status_api_and_feed_for_the_health_code_role(
    gw: Gateway, settings: Settings, tmp_path: Path, api_url: str
) -> None:
    load_compounds(gw, settings)
    for kind, path in status_scenario(tmp_path):
        load(gw, settings, kind, path)
    health = create_key(gw, role="health_code", district=None).secret
    inv = create_key(gw, role="investigator", district=None).secret
    huangpu = create_key(gw, role="district", district="310101").secret
    seen: list[dict[str, Any]] = []
    cursor = ""
    pages = 0
    while True:
        resp = httpx.get(
            f"{api_url}/v1/status-changes",
            params={"cursor": cursor, "limit": 4},
            headers={"Authorization": f"Bearer {health}"},
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages += 1
        seen += body["items"]
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    ids = [c["change_id"] for c in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and pages > 2
    assert all(c["person"]["id_number"] in IDS.values() for c in seen)  # full numbers
    # No names unless TUBETRACE_STATUS_FEED_NAMES asks for them (the stored events have them).
    assert all(c["person"]["name"] is None for c in seen)
    assert any(c["person"]["name"] for c in status.changes_page(gw, "", 1000)[0])
    # Resumable: from a cursor in the middle, exactly the rest.
    mid = str(ids[5])
    rest = httpx.get(
        f"{api_url}/v1/status-changes",
        params={"cursor": mid, "limit": 500},
        headers={"Authorization": f"Bearer {health}"},
    ).json()["items"]
    assert [c["change_id"] for c in rest] == ids[6:]
    # A cursor that is not a change_id is a 422, never a 500: beyond 64 bits (the driver's
    # OverflowError), a superscript digit (isdigit() but not int()), other scripts' digits.
    for bad in ("9" * 26, "9223372036854775808", "\u00b2", "\u0661\u0662", "-5", "1e5"):
        answer = httpx.get(
            f"{api_url}/v1/status-changes",
            params={"cursor": bad},
            headers={"Authorization": f"Bearer {health}"},
        )
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["error"] == "invalid_input"
    # That role sees nothing else.
    assert (
        httpx.get(
            f"{api_url}/v1/tubes/P1/trace", headers={"Authorization": f"Bearer {health}"}
        ).status_code
        == 403
    )
    assert (
        httpx.get(
            f"{api_url}/v1/status-changes", headers={"Authorization": f"Bearer {inv}"}
        ).status_code
        == 403
    )
    d = next(c for c in seen if c["person"]["id_number"] == IDS["D"])
    pid = d["person"]["person_id"]
    url = f"{api_url}/v1/persons/{pid}/status"
    answer = httpx.get(url, params={"date": D1}, headers={"Authorization": f"Bearer {inv}"})
    assert answer.status_code == 200 and answer.json()["status"] == "negative"
    assert set(answer.json()) == {"person_id", "date", "status", "since", "tubes"}
    own = httpx.get(url, params={"date": D1}, headers={"Authorization": f"Bearer {huangpu}"})
    assert own.status_code == 200  # D lives at C2, Huangpu
    a = next(c for c in seen if c["person"]["id_number"] == IDS["A"])
    other = httpx.get(
        f"{api_url}/v1/persons/{a['person']['person_id']}/status",
        params={"date": D1},
        headers={"Authorization": f"Bearer {huangpu}"},
    )
    assert other.status_code == 404 and set(other.json()) >= {"error", "message"}
    # Each page read is audited.
    admin = create_key(gw, role="admin", district=None).secret
    log = httpx.get(f"{api_url}/v1/audit", headers={"Authorization": f"Bearer {admin}"}).json()
    assert sum(e["action"] == "status_changes" for e in log["items"]) == pages + 1


def _reg(
    rid: str, day: str, hour: int, tube: str, members: int, result: str | None
) -> dict[str, Any]:
    from datetime import datetime, timedelta

    at = datetime.fromisoformat(f"{day}T00:00:00+08:00") + timedelta(hours=hour)
    return {
        "record_id": rid,
        "tube_code": tube,
        "day": day,
        "collected_at": at.astimezone(UTC),
        "pool_size": 10 if members > 1 else 1,
        "name": "x",
        "members": members,
        "max_pool": 10 if members > 1 else 1,
        "result": result,
        "reported_at": None,
        "district_code": None,
    }


def test_derive_without_a_database() -> None:
    def days(*regs: dict[str, Any]) -> dict[str, str]:
        return {d.day: d.status for d in status.derive("p", list(regs))}

    pool = _reg("a", D1, 8, "P", 10, "positive")
    # A retest with no result yet, or an invalid one, keeps the pool's day pooled_positive.
    assert days(pool, _reg("b", D2, 9, "S", 1, None)) == {D1: "pooled_positive", D2: "pending"}
    assert days(pool, _reg("b", D2, 9, "S", 1, "invalid"))[D1] == "pooled_positive"
    # The same-day retest counts too; the earliest decisive retest decides.
    assert days(pool, _reg("b", D1, 12, "S", 1, "negative")) == {D1: "released"}
    assert (
        days(pool, _reg("b", D2, 9, "S", 1, "positive"), _reg("c", D2, 10, "S2", 1, "negative"))[D1]
        == "positive"
    )
    # A later pooled sample does not release a positive pool.
    assert days(pool, _reg("b", D2, 9, "Q", 10, "negative"))[D1] == "pooled_positive"
    # Invalid: resample until a later sample has a result, then that sample's status.
    bad = _reg("a", D1, 8, "I", 10, "invalid")
    assert days(bad) == {D1: "resample"}
    assert days(bad, _reg("b", D2, 9, "S", 1, "positive"))[D1] == "positive"
    # Several tubes on one day: the most urgent status shows.
    assert days(_reg("a", D1, 8, "N", 10, "negative"), _reg("b", D1, 9, "M", 10, None)) == {
        D1: "pending"
    }
    # A tube known with one member of declared pool size 1 is a single tube.
    assert days(_reg("a", D1, 8, "S", 1, "positive")) == {D1: "positive"}
    # A registration without a day (bad collected_at) has no status of its own.
    assert status.derive("p", [_reg("a", D1, 8, "S", 1, None) | {"day": None}]) == []


def test_registrations_and_results_at_once_give_the_statuses_of_one_after_the_other(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    """Two sampling apps and a lab send the same day at the same moment, in small batches:
    the person-days end as a load one file after the other leaves them, and as the
    whole-history derivation gives them (a registration's status is told from its new tube
    alone only while that tube has no result, under its tube's lock). A day's stored district
    is the one it had when its status last changed (a residence that arrives later moves the
    tasks, not the day), so only statuses are compared."""
    city = tmp_path / "city"
    generate_city(city, seed=7, registrations=1200, positive_rate=0.2)
    small = settings.model_copy(update={"batch_size": 40})
    regs = list(read_file(city / "registrations.csv", "registrations"))
    results = list(read_file(city / "results.csv", "results"))

    def send(kind: str, items: list[Any], sender: str) -> None:
        write.load_records(gw, kind, items, f"{sender}.csv", small, sender=sender)

    load(gw, small, "compounds", city / "compounds.csv")
    with ThreadPoolExecutor(3) as pool:
        done = [
            pool.submit(send, "registrations", regs[0::2], "app-a"),
            pool.submit(send, "registrations", regs[1::2], "app-b"),
            pool.submit(send, "results", results, "lab"),
        ]
        for f in done:
            f.result()
    together = person_days(gw)
    assert together == derived_person_days(gw)
    assert status.refresh_tubes(gw, list(all_tube_codes(gw))) == 0
    secret = gw.secret()  # the same person ids in the second load
    wipe(gw)
    gw.apply_schema()
    gw.write("ensure_secret", key="person_id_secret", value=secret)
    load(gw, small, "compounds", city / "compounds.csv")
    send("registrations", regs[0::2], "app-a")
    send("registrations", regs[1::2], "app-b")
    send("results", results, "lab")
    apart = person_days(gw)
    assert together == apart
    assert {s for _, s in apart} >= {"negative", "pooled_positive", "released", "positive"}
    print(f"\nstatus: {len(apart)} person-days equal loaded at once and one after the other")


def person_days(gw: Gateway) -> list[tuple[str, str]]:
    rows = gw.read("all_person_days", after="", limit=1_000_000)
    return sorted((r["key"], r["status"]) for r in rows)


def derived_person_days(gw: Gateway) -> list[tuple[str, str]]:
    """Every person-day as `status.derive` gives it from the whole graph."""
    pids = sorted({key.split("|")[0] for key, _ in person_days(gw)})
    out = []
    for row in gw.read("status_inputs", person_ids=pids, tube_codes=None):
        days = status.derive(row["person_id"], row["regs"])
        out += [(f"{d.person_id}|{d.day}", d.status) for d in days]
    return sorted(out)


def test_a_time_zone_changed_between_loads_leaves_no_status_behind(
    gw: Gateway, settings: Settings, tmp_path: Path
) -> None:
    """A's pool P9 is swabbed at 01:00 in Shanghai (day 04-10); the single retest S9, three
    hours later, is loaded after the installation's time zone became UTC, so its day says
    04-09. Its negative comes first, then the pool's positive: the refresh of P9 derives day
    04-10 from its own day on, and must still see the later retest (status_inputs reads what
    was swabbed after a tube that reads later samples, whatever its day)."""
    load_compounds(gw, settings)
    pool = tmp_path / "pool.csv"
    pool.write_text(RETEST_HEADER + reg("A9", f"{D2}T01:00:00+08:00", "C1", "P9", 10, "A"))
    load(gw, settings, "registrations", pool)
    utc = settings.model_copy(update={"timezone": "UTC"})
    retest = tmp_path / "retest.csv"
    retest.write_text(RETEST_HEADER + reg("A10", f"{D1}T20:00:00+00:00", "C1", "S9", 1, "A"))
    load(gw, utc, "registrations", retest)
    for tube, result in (("S9", "negative"), ("P9", "positive")):
        results = tmp_path / f"{tube}.csv"
        results.write_text(
            f"tube_code,result,reported_at,lab_code\n{tube},{result},{D2}T20:00:00+08:00,L1\n"
        )
        load(gw, settings, "results", results)
    stored = dict(person_days(gw))
    assert [s for k, s in stored.items() if k.endswith(D2)] == ["released"]
    assert person_days(gw) == derived_person_days(gw)
