"""`tubetrace serve --workers 2`: a console session works on both workers and after a restart
of the API, a logout on one worker ends it on both; the webhook worker runs in one process
only; /metrics (answered by either worker) counts the requests of both."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from engine.access.keys import create_key
from engine.store.gateway import Gateway
from tests.helpers import CONSOLE_CSRF, bearer, console_login, free_port

pytestmark = pytest.mark.slow
PAGE = "/console/districts/310115/tasks"


def serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.3)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def log_lines(log: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("{")
    ]


def pid_of(log: Path, request_id: str) -> int:
    """The worker that answered a request, from its log line."""
    for _ in range(50):
        for line in log_lines(log):
            if line.get("request_id") == request_id and line.get("message") == "request":
                return int(str(line["pid"]))
        time.sleep(0.1)
    raise AssertionError(f"no log line for {request_id}")


def on_fresh_connections(
    url: str, cookies: httpx.Cookies, log: Path, n: int, tag: str
) -> tuple[list[int], set[int]]:
    """`n` page requests, each on a new connection (the kernel hands each to either worker):
    their statuses and the workers that answered."""
    statuses, pids = [], set()
    for i in range(n):
        rid = f"{tag}-{i}-{time.time_ns()}"
        resp = httpx.get(url + PAGE, cookies=cookies, headers={"X-Request-ID": rid}, timeout=60)
        statuses.append(resp.status_code)
        pids.add(pid_of(log, rid))
    return statuses, pids


def test_sessions_are_shared_by_workers_and_kept_across_restarts(
    gw: Gateway, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    district = create_key(gw, role="district", district="310115").secret
    ops = create_key(gw, role="ops", district=None).secret
    env = subprocess_env | {
        "TUBETRACE_RATE_PER_SECOND": "1000",
        "TUBETRACE_RATE_BURST": "1000",
        "TUBETRACE_WEBHOOKS": "1",
        "TUBETRACE_WEBHOOK_ALLOW_PRIVATE": "1",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first, second = tmp_path / "serve-1.log", tmp_path / "serve-2.log"
    proc = serve(env, port, first)
    try:
        client = console_login(url, district)
        cookies = client.cookies
        statuses, pids = [], set()
        for round_ in range(10):  # until both workers answered
            got, seen = on_fresh_connections(url, cookies, first, 6, f"a{round_}")
            statuses += got
            pids |= seen
            if len(pids) == 2:
                break
        assert len(pids) == 2, pids
        assert set(statuses) == {200}, statuses
        scraped = httpx.get(url + "/metrics", headers=bearer(ops), timeout=60).text
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in scraped.splitlines()
            if line.startswith("tubetrace_http_requests_total{")
            and 'route="/console/districts/{district_code}/tasks"' in line
            and 'status="200"' in line
        )
        assert counted >= len(statuses)  # both workers' requests, whichever answered
        holders = [ln for ln in log_lines(first) if "runs the webhook worker" in str(ln["message"])]
        assert len(holders) == 1, holders  # one process of two posts webhooks
    finally:
        stop(proc)

    proc = serve(env, port, second)  # the same port, a new pair of processes
    try:
        statuses, pids = on_fresh_connections(url, cookies, second, 8, "b")
        assert set(statuses) == {200}, statuses  # the same cookie, after the restart
        page = httpx.get(url + PAGE, cookies=cookies, timeout=60)
        token = CONSOLE_CSRF.search(page.text)
        assert token, page.text[:300]
        rid = f"logout-{time.time_ns()}"
        out = httpx.post(
            url + "/console/logout",
            data={"csrf": token.group(1)},
            cookies=cookies,
            headers={"X-Request-ID": rid},
            timeout=60,
        )
        assert out.status_code == 303
        logged_out_by = pid_of(second, rid)
        statuses, pids = [], set()
        for round_ in range(10):
            got, seen = on_fresh_connections(url, cookies, second, 6, f"c{round_}")
            statuses += got
            pids |= seen
            if len(pids) == 2:
                break
        assert len(pids) == 2 and logged_out_by in pids
        assert set(statuses) == {303}, statuses  # to the login page, on both workers
    finally:
        stop(proc)
    print(
        f"\nworkers: a session on both of 2 workers, kept across a restart, ended on both by a "
        f"logout on worker {logged_out_by}; /metrics counted {counted:.0f} page requests"
    )
