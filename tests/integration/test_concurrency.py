"""Concurrent moves of one task over HTTP: exactly one winner per step, a legal history."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx

from engine.access.keys import CLI, create_key
from engine.loop import tasks
from engine.settings import Settings
from engine.store.gateway import Gateway
from tests.helpers import bearer, load_city, registration

THREADS = 20
ROUNDS = 3
# What the district unit and the investigator try at once; legal and illegal moves mixed.
MOVES: list[tuple[str, str | None, str]] = [
    ("acknowledged", None, "district"),
    ("unreachable", None, "district"),
    ("contacted", None, "district"),
    ("retest_collected", None, "district"),
    ("closed", "released", "district"),
    ("pending", None, "district"),
    ("acknowledged", None, "investigator"),
    ("contacted", None, "investigator"),
    ("unreachable", None, "investigator"),
    ("closed", "confirmed", "investigator"),
]


def legal_step(start: str, entry: dict[str, Any]) -> bool:
    to, outcome = entry["status"], entry.get("outcome")
    if start == "closed" or to == start:
        return False
    if to == "closed" and outcome in ("closed_by_investigator", "superseded"):
        return True
    if entry["actor"] == "system":
        return to == "retest_collected" or (
            to == "closed" and start == "retest_collected" and outcome in ("released", "confirmed")
        )
    if to == "closed":
        return start == "retest_collected" and outcome in ("released", "confirmed")
    return to in tasks.ALLOWED[start]


def illegal_steps(history: list[dict[str, Any]]) -> int:
    bad = 0 if history and history[0]["status"] == "pending" else 1
    for before, entry in zip(history, history[1:], strict=False):
        bad += not legal_step(before["status"], entry)
    return bad


def single(record_id: str, tube: str, id_number: str) -> dict[str, Any]:
    return registration(
        record_id=record_id,
        collected_at="2022-04-10T10:00:00+08:00",
        box_code="RB1",
        tube_code=tube,
        pool_size=1,
        id_number=id_number,
        name="x",
        phone="13800000000",
    )


def test_concurrent_moves_have_one_winner_per_step(
    gw: Gateway, settings: Settings, api_url: str
) -> None:
    load_city(gw, settings)
    heads = {
        "district": bearer(create_key(gw, role="district", district="310115").secret),
        "investigator": bearer(create_key(gw, role="investigator", district=None).secret),
        "collector": bearer(create_key(gw, role="collector", district=None).secret),
        "lab": bearer(create_key(gw, role="lab", district=None, labs=["LAB01", "LAB02"]).secret),
    }
    queue = tasks.all_tasks(gw, "310115", "pending")
    pending = queue[:3]
    assert len(pending) == 3
    statuses: Counter[int] = Counter()
    wins: dict[str, list[str]] = {t["task_id"]: [] for t in pending}
    requests = 0
    with httpx.Client(timeout=60) as client:
        for n, task in enumerate(pending):
            tid = task["task_id"]
            id_number = task["person"]["id_number"]
            for rnd in range(ROUNDS):
                jobs: list[tuple[str, Any, str]] = []
                for i in range(THREADS):
                    to, outcome, role = MOVES[(i + rnd * 3 + n) % len(MOVES)]
                    if rnd == 2 and i < 2:
                        to, outcome, role = "closed", "closed_by_investigator", "investigator"
                    note = f"t{n} r{rnd} i{i}"
                    body = {"to": to, "outcome": outcome, "note": note}
                    jobs.append((f"/v1/tasks/{tid}/transitions", body, role))
                # The system moves the same task at the same time: a retest registered (task 1
                # and 2), then the retest's results from two labs (task 2).
                if n >= 1 and rnd == 1:
                    reg = [single(f"RT{n}", f"S{n}", id_number)]
                    jobs[-2:] = [("/v1/registrations", reg, "collector")] * 2
                if n == 2 and rnd == 2:
                    jobs[-2:] = [
                        (
                            "/v1/results",
                            [
                                {
                                    "tube_code": f"S{n}",
                                    "result": value,
                                    "reported_at": "2022-04-11T09:00:00+08:00",
                                    "lab_code": lab,
                                }
                            ],
                            "lab",
                        )
                        for value, lab in (("negative", "LAB01"), ("positive", "LAB02"))
                    ]
                barrier = threading.Barrier(len(jobs))
                answers: list[httpx.Response | None] = [None] * len(jobs)

                def send(
                    barrier: threading.Barrier,
                    answers: list[httpx.Response | None],
                    i: int,
                    path: str,
                    body: Any,
                    role: str,
                ) -> None:
                    barrier.wait()
                    answers[i] = client.post(api_url + path, json=body, headers=heads[role])

                threads = [
                    threading.Thread(target=send, args=(barrier, answers, i, *job))
                    for i, job in enumerate(jobs)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                requests += len(jobs)
                for (path, body, _), resp in zip(jobs, answers, strict=True):
                    assert resp is not None
                    statuses[resp.status_code] += 1
                    assert resp.status_code in (200, 409), resp.text
                    if "transitions" not in path:
                        continue
                    if resp.status_code == 200:
                        history = resp.json()["history"]
                        assert history[-1]["note"] == body["note"], "a 200 that did not move"
                        wins[tid].append(body["note"])
                    else:
                        message = resp.json()["message"]
                        assert any(f"'{s}'" in message for s in tasks.STATUSES), message
    illegal = 0
    for task in pending:
        final = tasks.get_task(gw, task["task_id"], CLI)
        history = final["history"]
        illegal += illegal_steps(history)
        user_notes = [h["note"] for h in history if h["actor"] != "system"]
        assert sorted(user_notes) == sorted(wins[task["task_id"]])
        assert final["status"] == history[-1]["status"]
        closed_at = [i for i, h in enumerate(history) if h["status"] == "closed"]
        assert closed_at in ([], [len(history) - 1])
        print(
            f"task {task['task_id']}: "
            + " -> ".join(
                h["status"] + (f"({h['outcome']})" if h.get("outcome") else "") for h in history
            )
        )
    winners = sum(len(w) for w in wins.values())
    print(
        f"concurrency: {requests} requests ({ROUNDS} rounds x {THREADS} x {len(pending)} tasks), "
        f"answers {dict(statuses)}, winners {winners}, illegal history steps {illegal}"
    )
    assert illegal == 0
    assert winners >= len(pending)
    # The last round closed every task (investigator) unless the system closed it first.
    assert all(tasks.get_task(gw, t["task_id"], CLI)["status"] == "closed" for t in pending)
