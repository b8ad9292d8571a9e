"""What the loaders mark so that a trace and a load read no person's whole window
(docs/campaign.md): a duplicate registration (one person in two pooled tubes on one day) on
both registrations, whichever came first, and an `unplaced` person (a registration at no
known compound: only such a person's registrations can need a residence fallback). A store
from before gets both from the schema's backfills, and its traces do not change."""

from __future__ import annotations

from typing import Any

from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_many
from loaders import write
from tests.helpers import day_registration

D1, D2 = "2022-04-09", "2022-04-10"


def _load(gw: Gateway, settings: Settings, kind: str, rows: list[dict[str, Any]]) -> None:
    items = [(i + 1, r) for i, r in enumerate(rows)]
    summary = write.load_records(gw, kind, items, "test", settings)
    assert summary.stored == len(rows)


def _marks(gw: Gateway) -> tuple[list[str], list[str]]:
    row = gw.read("registration_marks")[0]
    return sorted(row["duplicates"]), sorted(row["unplaced"])


def test_marks_online_and_backfilled(gw: Gateway, settings: Settings) -> None:
    _load(
        gw,
        settings,
        "compounds",
        [{"compound_code": "C1", "name": "一村", "address": "路1号", "district_code": "310115"}],
    )
    # A's first pooled tube of D1; B at a compound without master data, E at none (box B1
    # then holds C1 and CX on D1).
    _load(
        gw,
        settings,
        "registrations",
        [
            day_registration("A1", "T1", 10, D1, "A"),
            day_registration("B1", "T1", 10, D1, "B", compound_code="CX"),
            day_registration("E1", "T3", 10, D2, "E", compound_code=""),
        ],
    )
    b, e = _pid(gw, "T1", "B1"), _pid(gw, "T3", "E1")
    assert _marks(gw) == ([], sorted([b, e]))
    # Later, in its own transaction: A in a second pooled tube the same day (both are marked),
    # A pooled again on D2 and on a day that cannot be read (neither is a duplicate); C in a
    # single tube and a pooled one on D1 (not one either: a single tube is a retest); D twice
    # in one pooled tube; F in two pooled tubes in this one batch; B at C1 on D2 (its D1
    # residence falls back to C1).
    _load(
        gw,
        settings,
        "registrations",
        [
            day_registration("A2", "T2", 10, D1, "A"),
            day_registration("A3", "T3", 10, D2, "A"),
            day_registration("A4", "T5", 10, D1, "A", collected_at="yesterday"),
            day_registration("C1", "T2", 10, D1, "C"),
            day_registration("C2", "T4", 1, D1, "C"),
            day_registration("D1", "T2", 10, D1, "D"),
            day_registration("D2", "T2", 10, D1, "D"),
            day_registration("F1", "T1", 10, D1, "F"),
            day_registration("F2", "T2", 10, D1, "F"),
            day_registration("B2", "T3", 10, D2, "B"),
        ],
    )
    tubes = ["T1", "T2", "T3", "T4", "T5"]
    before = trace_many(gw, tubes)
    flags = {p["record_id"]: p["flags"] for t in before.values() for p in t["persons"]}
    dup = "duplicate_registration"
    assert {r for r, f in flags.items() if dup in f} == {"A1", "A2", "F1", "F2"}
    assert "invalid_collected_at" in flags["A4"]
    marked = sorted(f"file/{r}" for r in ("A1", "A2", "F1", "F2"))
    assert _marks(gw) == (marked, sorted([b, e]))
    b1 = next(p for p in before["T1"]["persons"] if p["record_id"] == "B1")
    assert (b1["residence"]["compound_code"], b1["residence"]["source"]) == ("C1", "registration")
    # A box's compounds of the day, counted once per box and day of the tube.
    boxed = {code for code, t in before.items() if "box_multiple_compounds" in t["flags"]}
    assert boxed == {"T1", "T2", "T4"}
    # The trace reads the mark: without it, no duplicate.
    gw.write("forget_registration_marks")
    assert _marks(gw) == ([], [])
    assert not any(dup in p["flags"] for t in trace_many(gw, tubes).values() for p in t["persons"])
    # A store from before the marks: the backfills set the same, the traces do not change.
    gw.apply_schema()
    assert _marks(gw) == (marked, sorted([b, e]))
    assert trace_many(gw, tubes) == before
    # Done once: a mark removed afterwards stays removed (the Meta nodes say it was done).
    gw.write("forget_registration_marks")
    gw.write("registration_marks_done")
    gw.apply_schema()
    assert _marks(gw) == ([], [])


def _pid(gw: Gateway, tube: str, record_id: str) -> str:
    persons = trace_many(gw, [tube])[tube]["persons"]
    return next(p["person_id"] for p in persons if p["record_id"] == record_id)


def test_last_day_spares_the_window_and_stays_a_bound(gw: Gateway, settings: Settings) -> None:
    """A registration of a day later than every day its person has reads no window (the
    batch's own registrations are the only others that day); any other day walks it."""
    d0, d3 = "2022-04-08", "2022-04-11"

    def last_days() -> dict[str, str]:
        return {r["person_id"]: r["last_day"] for r in gw.read("person_last_days")}

    def duplicates() -> list[str]:
        return _marks(gw)[0]

    _load(gw, settings, "registrations", [day_registration("X2", "T1", 10, D2, "X")])
    x = _pid(gw, "T1", "X2")
    assert last_days() == {x: D2}
    # An earlier day, later: the window is walked, the bound stays.
    _load(gw, settings, "registrations", [day_registration("X1", "T2", 10, D1, "X")])
    assert last_days() == {x: D2} and duplicates() == []
    # Another pooled tube of the bound's day: walked, X2 found.
    _load(gw, settings, "registrations", [day_registration("X3", "T3", 10, D2, "X")])
    assert duplicates() == ["file/X2", "file/X3"]
    # A person without the bound (a bulk import, an older store): the first load walks the
    # window and sets the latest day of all, not its own.
    gw.write("forget_last_days")
    _load(gw, settings, "registrations", [day_registration("X0", "T4", 10, d0, "X")])
    assert last_days() == {x: D2}
    # A later day: no walk; two pooled tubes of it in one batch are still found.
    _load(
        gw,
        settings,
        "registrations",
        [day_registration("X4", "T5", 10, d3, "X"), day_registration("X5", "T6", 10, d3, "X")],
    )
    assert last_days() == {x: d3}
    assert duplicates() == ["file/X2", "file/X3", "file/X4", "file/X5"]
    flags = {
        p["record_id"]: p["flags"]
        for t in trace_many(gw, ["T1", "T2", "T3", "T4", "T5", "T6"]).values()
        for p in t["persons"]
    }
    dup = "duplicate_registration"
    assert {r for r, f in flags.items() if dup in f} == {"X2", "X3", "X4", "X5"}
