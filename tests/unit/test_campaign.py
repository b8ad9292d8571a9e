"""The campaign benchmark's pure parts (bench/campaign.py): a day's records made from day 1's,
and the goals judged within the run."""

from __future__ import annotations

from bench.campaign import Day, goals, growers, records_bytes, shifted
from bench.footprint import ID_BUFFER


def test_a_later_day_has_new_ids_and_tubes_the_same_boxes_and_its_own_date() -> None:
    day1 = [
        (2, {"record_id": "R1", "tube_code": "T1", "box_code": "B1",
             "collected_at": "2022-04-09T08:15:00+08:00"}),
        (3, {"record_id": "", "tube_code": "T1", "collected_at": "not a time"}),
        (4, "a quarantined line stays as it is"),
    ]  # fmt: skip
    day3 = list(shifted(day1, 2, "D03-", ("record_id", "tube_code")))  # type: ignore[arg-type]
    assert day3[0] == (
        2,
        {"record_id": "D03-R1", "tube_code": "D03-T1", "box_code": "B1",
         "collected_at": "2022-04-11T08:15:00+08:00"},
    )  # fmt: skip
    # A missing record id stays missing (the loader keys it by its content), a bad time bad.
    assert day3[1] == (3, {"record_id": "", "tube_code": "D03-T1", "collected_at": "not a time"})
    assert day3[2] == day1[2]
    assert day1[0][1]["record_id"] == "R1"  # day 1's records are not changed


def day(n: int, store: int, trace: float, positives: float, rows_s: float | None) -> Day:
    return Day(
        day=f"2022-04-{8 + n:02d}",
        registrations_loaded=1000,
        registrations_stored=1000 * min(n, 3),
        store_bytes=store,
        tx_log_bytes=0,
        bytes_per_registration=store / (1000 * min(n, 3)),
        online_rows_s=rows_s,
        retests=0,
        trace_p50_ms=trace,
        trace_p99_ms=trace * 2,
        positives_s=positives,
        positive_tubes=1,
        queue_page_ms=1.0,
        purge_s=0.1,
        purged_registrations=0,
        seconds=1.0,
    )


def test_goals_are_ratios_within_the_run() -> None:
    steady = [day(1, 100, 2.0, 1.0, None), day(2, 200, 2.0, 1.0, 1000.0)]
    steady += [day(n, 300, 2.2, 1.1, 950.0) for n in (3, 4, 5)]
    assert [ok for _, _, ok in goals(steady, keep_days=2)] == [True] * 5
    growing = steady[:4] + [day(5, 400, 3.0, 1.0, 500.0)]
    verdicts = {name: ok for name, _, ok in goals(growing, keep_days=2)}
    assert list(verdicts.values()) == [False, False, False, True, False]
    assert goals(steady[:2], keep_days=2)[0][2] is None  # too short to say


def test_the_store_is_also_judged_without_neo4js_freed_id_buffer() -> None:
    """id-buffer.tmp grows with every purge until its 50 MiB segment is read and deleted: the
    records stay flat while the store on disk grows."""
    days = [day(n, 300 + 40 * n, 2.0, 1.0, 1000.0) for n in (1, 2, 3, 4, 5)]
    for d, n in zip(days, (1, 2, 3, 4, 5), strict=True):
        d.store_files = {"properties": 300, ID_BUFFER: 40 * n}
    verdicts = [ok for _, _, ok in goals(days, keep_days=2)]
    assert verdicts[:2] == [False, True]
    assert records_bytes(days[-1]) == 300


def test_growers_name_the_files_indexes_and_labels_that_grew_once_the_window_is_full() -> None:
    days = [day(n, 100, 2.0, 1.0, 1000.0) for n in (1, 2, 3, 4)]
    files = [
        {"nodes": 50, "properties": 10, "id files": 5},
        {"nodes": 80, "properties": 10, "id files": 5},  # day keep + 1: the base
        {"nodes": 80, "properties": 30, "id files": 6},
        {"nodes": 80, "properties": 70, "id files": 4},
    ]
    for d, f, n in zip(days, files, (1, 2, 3, 4), strict=True):
        d.store_files = f
        d.index_files = {"reg_key": 7} if n < 4 else {"reg_key": 9, "event_seq": 1}
        d.labels = {"Registration": 10, "Quarantine": n}
    rows = growers(days, keep_days=1)
    assert rows == [
        ("file properties", 10, 70, 60),
        ("index reg_key", 7, 9, 2),
        ("file id files", 5, 4, -1),
        ("index event_seq", 0, 1, 1),
        ("nodes :Quarantine", 2, 4, 2),
    ]
    assert growers(days[:1], keep_days=1) == []
