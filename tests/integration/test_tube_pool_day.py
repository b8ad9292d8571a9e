"""A tube's `pool_day` (engine/model.py): what the outbreak queries judge a tube by instead of
reading its registrations (issue 23, item 5). The online load sets it as the bulk import does
(tests/system/test_bulk.py), leaves it unset where the registrations disagree, and a store
that had none gets it from the schema's backfill; exposure through a tube without one
follows the rule registration by registration."""

from __future__ import annotations

from typing import Any

from engine.analysis import outbreak
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_tube
from loaders import write
from tests.helpers import day_registration

D1, D2 = "2022-04-09", "2022-04-10"


def _load(gw: Gateway, settings: Settings, rows: list[dict[str, Any]]) -> None:
    items = [(i + 1, r) for i, r in enumerate(rows)]
    summary = write.load_records(gw, "registrations", items, "test", settings)
    assert summary.stored == len(rows)


def _pool_days(gw: Gateway) -> dict[str, str | None]:
    return {r["code"]: r["pool_day"] for r in gw.read("tube_pool_days")}


def _ids(gw: Gateway, *tubes: str) -> dict[str, str]:
    """Passport letter -> person_id, from the traces of the tubes."""
    return {
        p["id_number"][1]: p["person_id"] for tube in tubes for p in trace_tube(gw, tube)["persons"]
    }


def _rings(gw: Gateway, person_id: str, until: str, days: int) -> list[tuple[Any, ...]]:
    subject: outbreak.Subject = {"person_id": person_id, "until": until}
    items = outbreak.ring_members(gw, [subject], depth=3, days=days)[person_id]
    return [(i["depth"], i["person_id"], i["day"], i["tube_code"]) for i in items]


def test_pool_day_online_disagreement_and_backfill(gw: Gateway, settings: Settings) -> None:
    _load(
        gw,
        settings,
        [
            day_registration("R1", "T1", 10, D1, "A"),
            day_registration("R2", "T1", 10, D1, "B"),
            day_registration("R3", "T2", 10, D1, "C"),
            day_registration("R4", "T2", 10, D2, "D"),  # the days disagree
            day_registration("R5", "T3", 10, D1, "E"),
            day_registration("R6", "T3", 1, D1, "F"),  # the pool sizes disagree
            day_registration("R7", "T4", 1, D1, "G"),  # a single tube
        ],
    )
    assert _pool_days(gw) == {"T1": D1, "T2": None, "T3": None, "T4": None}
    # A later load (its own transaction) into a tube of one day: no longer one day.
    _load(
        gw,
        settings,
        [day_registration("R8", "T1", 10, D2, "H"), day_registration("R9", "T5", 10, D2, "A")],
    )
    expected = {"T1": None, "T2": None, "T3": None, "T4": None, "T5": D2}
    assert _pool_days(gw) == expected
    # A store from before: the backfill sets them once, then leaves them alone.
    gw.write("forget_tube_pool_days")
    assert set(_pool_days(gw).values()) == {None}
    gw.apply_schema()
    assert _pool_days(gw) == expected
    # Exposure through the tubes without a pool_day, registration by registration: T2's C
    # (D1) is outside D's one-day window and inside its two-day one; A was in T1 on D1 (then
    # alone in T5), T1 holds B (D1) and H (D2).
    ids = _ids(gw, "T1", "T2")
    assert _rings(gw, ids["D"], D2, 1) == []
    assert _rings(gw, ids["D"], D2, 2) == [(1, ids["C"], D1, "T2")]
    assert _rings(gw, ids["A"], D2, 1) == []
    two_days = _rings(gw, ids["A"], D2, 2)
    assert two_days == sorted([(1, ids["B"], D1, "T1"), (1, ids["H"], D2, "T1")])
