"""The audit log: durable before the answer (kill -9 loses nothing), tamper-evident (a hash
chain that `tubetrace audit verify` checks), and every read of personal data audited, the
CLI's included."""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time
from pathlib import Path

import httpx

from bench.devdb import wipe
from engine.access import audit
from engine.access.audit import DirectAudit
from engine.access.keys import Principal, create_key
from engine.settings import Settings
from engine.store.gateway import Gateway
from tests.helpers import DATA, bearer, cli, load, load_city, result, retest, start_api


def audit_count(gw: Gateway, action: str | None = None, key_id: str | None = None) -> int:
    return int(gw.read("count_audit", action=action, key_id=key_id)[0]["n"])


def test_kill_9_right_after_answers_loses_no_audit_entry(
    gw: Gateway, settings: Settings, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    load_city(gw, settings)
    inv = create_key(gw, role="investigator", district=None)
    env = subprocess_env | {"TUBETRACE_RATE_PER_SECOND": "5000", "TUBETRACE_RATE_BURST": "5000"}
    proc, url = start_api(env, tmp_path / "api-1.log")
    n = 300
    took = []
    try:
        with httpx.Client(base_url=url, headers=bearer(inv.secret), timeout=30) as client:
            for _ in range(n):
                start = time.perf_counter()
                resp = client.get("/v1/tubes/T1/trace")
                took.append(time.perf_counter() - start)
                assert resp.status_code == 200
        os.kill(proc.pid, signal.SIGKILL)  # right after the last answer
    finally:
        proc.kill()
        proc.wait(timeout=30)
    in_db_at_kill = audit_count(gw, "trace", inv.key_id)
    proc, url = start_api(env, tmp_path / "api-2.log")  # replays the dead API's journal
    try:
        after = audit_count(gw, "trace", inv.key_id)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    p50 = statistics.median(took) * 1000
    print(
        f"\naudit durability: {n} reads, {in_db_at_kill} entries in Neo4j at kill -9, "
        f"{after} after restart; entries lost: {n - after}; trace p50 {p50:.1f} ms"
    )
    assert after == n
    assert audit.verify(gw).intact


def test_verify_reports_a_deleted_and_an_edited_entry(
    gw: Gateway, subprocess_env: dict[str, str]
) -> None:
    log = DirectAudit(gw)
    who = Principal("k1", "investigator")
    for i in range(5):
        log.record(who, "trace", target=f"T{i}", person_ids=[f"p_{i}"])
    assert [e["seq"] for e in audit_chain(gw)] == [1, 2, 3, 4, 5]
    ok = cli(subprocess_env, "audit", "verify")
    assert ok.returncode == 0 and "intact" in ok.stdout, ok.stdout + ok.stderr
    gw.write("tamper_delete_audit", seq=2)
    gw.write("tamper_edit_audit", seq=4, target="T-other")
    done = cli(subprocess_env, "audit", "verify")
    print("\n" + done.stdout)
    assert done.returncode == 7, done.stdout + done.stderr
    assert "gap: entry 2 missing" in done.stdout
    assert "edit: entry 4" in done.stdout
    report = audit.verify(gw)
    assert len(report.problems) == 2 and report.checked == 4


def test_pruning_is_not_a_gap_and_the_cli_shares_the_chain(gw: Gateway) -> None:
    log = DirectAudit(gw)
    for i in range(3):
        log.record(Principal("k1", "admin"), "key_create", target=str(i))
    assert audit.prune(gw, -1) == 3  # everything is "past retention"
    log.record(Principal("k1", "admin"), "key_create", target="3")
    report = audit.verify(gw)
    assert report.intact and report.checked == 1 and report.head_seq == 4


def test_pruning_stops_at_the_first_entry_kept(gw: Gateway) -> None:
    """A journal replayed late: seq 3 has an older time than seq 2. Pruning takes seq 1 only;
    seq 3 goes once seq 2 has; the chain stays intact either way."""
    who = Principal("k1", "admin")
    entries = [audit.make_entry(who, "key_create", target=str(i)) for i in range(3)]
    entries[0]["at"] = entries[2]["at"] = "2000-01-01T00:00:00Z"
    assert audit.append_chained(gw, entries) == 3
    assert audit.prune(gw, 365) == 1
    report = audit.verify(gw)
    assert report.intact and report.checked == 2, report.problems


def test_a_wipe_while_an_api_flushes_leaves_an_intact_chain(gw: Gateway) -> None:
    """The test suite's own hazard, and a real one for benchmarks: the session's API flushes
    its journal every 0.2 s, so its entries can land while the next test wipes the database.
    The chain must come out whole (nothing of the old chain, or a fresh chain from seq 1)."""
    who = Principal("k-flush", "investigator")
    stop = threading.Event()
    errors: list[BaseException] = []

    def flusher() -> None:
        try:
            while not stop.is_set():  # an API flushes every 0.2 s; this one much more often
                audit.append_chained(gw, [audit.make_entry(who, "trace") for _ in range(3)])
                time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for _ in range(3):
        gw.write("filler_nodes", n=30_000)  # a wipe of several transactions
        thread = threading.Thread(target=flusher)
        thread.start()
        time.sleep(0.2)
        try:
            wipe(gw)
        finally:
            time.sleep(0.2)
            stop.set()
            thread.join(timeout=30)
            assert not thread.is_alive()
            stop.clear()
        assert not errors, errors
        report = audit.verify(gw)
        assert report.intact, report.problems[:5]
        assert report.checked == report.head_seq > 0  # seqs 1..head, each once


def audit_chain(gw: Gateway) -> list[dict[str, object]]:
    return [r["entry"] for r in gw.read("audit_chain_page", after=0, limit=1000)]


def test_cli_reads_of_personal_data_are_audited(
    gw: Gateway, settings: Settings, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    load_city(gw, settings)
    load(gw, settings, "registrations", retest(tmp_path, "RT1", "S1", "310115198201010213"))
    load(gw, settings, "results", result(tmp_path, "S1", "positive"))
    trace = cli(subprocess_env, "trace", "T1", "--json")
    assert trace.returncode == 0, trace.stderr
    case = next(p for p in json.loads(trace.stdout)["persons"] if p["record_id"] == "R03")
    runs = {
        "trace": ["trace", "T1"],
        "district_tasks": ["tasks", "--district", "310115"],
        "positives": ["positives", "--date", "2022-04-09", "--json"],
        "rings": ["rings", case["person_id"]],
        "export": ["export", "T1", "--out", str(tmp_path / "t1.graphml")],
        "quarantine": ["quarantine"],
    }
    for args in runs.values():
        done = cli(subprocess_env, *args)
        assert done.returncode == 0, (args, done.stderr)
    entries = audit.entries(gw, since=None, key_id=None, limit=1000)
    by_action: dict[str, list[dict[str, object]]] = {}
    for e in entries:
        by_action.setdefault(str(e["action"]), []).append(e)
    for action in runs:
        assert action in by_action, (action, sorted(by_action))
        assert all(str(e["key_id"]).startswith("cli:") for e in by_action[action])
    for action in ("trace", "district_tasks", "positives", "rings", "export"):
        assert by_action[action][-1]["person_ids"], action
    assert len(by_action["trace"]) == 2  # the --json run and the table run
    assert audit.verify(gw).intact


def test_cli_positives_checks_its_day_and_district_before_it_writes(
    gw: Gateway, settings: Settings, subprocess_env: dict[str, str]
) -> None:
    """A bad --date or --district is one sentence and exit 1 with nothing on stdout (the JSON
    envelope used to be begun first, leaving a broken file), as the API refuses them (422): a
    district typo is not a day without positives, and 20220409 is not YYYY-MM-DD."""
    load_city(gw, settings)
    bad = {
        ("--date", "2022-02-30"): "not a date",
        ("--date", "20220409"): "not a date",
        ("--date", "2100-01-01"): "outside",
        ("--district", "310101x"): "not a district code",
        ("--district", "999999"): "no district 999999",
    }
    for (flag, value), said in bad.items():
        args = ["positives", "--date", "2022-04-09", "--json", flag, value]
        done = cli(subprocess_env, *args)
        assert done.returncode == 1 and done.stdout == "", (args, done.stdout[:200])
        assert said in done.stderr and "Traceback" not in done.stderr, done.stderr[-1000:]
    done = cli(subprocess_env, "positives", "--date", "2022-04-09", "--district", "310115")
    assert done.returncode == 0, done.stderr[-1000:]


def test_cli_audit_since_at_the_calendar_edges_is_a_sentence(
    gw: Gateway, subprocess_env: dict[str, str]
) -> None:
    """`audit --since` moves the time to UTC as the API does: the calendar's edges are a usage
    error (exit 2, one sentence; was a traceback) and an offset beyond the database's 18 hours
    still reads the log (was 'the database failed')."""
    for since in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        done = cli(subprocess_env, "audit", "--since", since)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert "outside the calendar" in done.stderr
    done = cli(subprocess_env, "audit", "--since", "2022-01-01T00:00:00+23:00", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["next_cursor"] is None


def test_cli_writes_are_audited_with_what_they_wrote(
    gw: Gateway, subprocess_env: dict[str, str]
) -> None:
    """`tubetrace load` leaves an entry with its counts (it left none), as do `keys create` and
    `keys revoke`: every write goes through the engine's write use cases
    (engine.usecases.writes)."""
    done = cli(subprocess_env, "load", "compounds", str(DATA / "compounds.csv"))
    assert done.returncode == 0, done.stderr[-2000:]
    printed = done.stdout.strip()  # "compounds: read N, stored N, ..."
    assert printed.startswith("compounds: read ")
    created = cli(
        subprocess_env, "keys", "create", "--role", "lab", "--lab", "LAB01", "--label", "audited"
    )
    assert created.returncode == 0, created.stderr[-2000:]
    key_id = created.stdout.split()[2]
    assert cli(subprocess_env, "keys", "revoke", key_id).returncode == 0
    entries = [e for e in audit.entries(gw, since=None, key_id=None) if e["action"] != "denied"]
    writes = [(e["action"], e["target"], e["detail"]) for e in entries]
    assert writes == [
        ("load_compounds", "compounds.csv", printed),
        ("key_create", key_id, "lab"),
        ("key_revoke", key_id, None),
    ]
    assert all(str(e["key_id"]).startswith("cli:") for e in entries)
    assert audit.verify(gw).intact
