"""A peak hour through the public HTTP API: sampling apps, labs, 16 district systems and
investigators at once, against a running uvicorn over a managed Neo4j in its own home.

    ./dev bench --replay [--scale 100000]      # or: python -m bench.replay --scale 100000

The generated city's first day is bulk-imported (yesterday's round, with its open tasks); the
second day is the peak hour: its registrations are posted by the sampling apps in batches of
50-500, each tube's results by a lab once its registrations are in, while district systems poll
their queues every few seconds and move tasks, and investigators trace tubes. Prints per
endpoint requests/s, p50/p99 and errors, and the result-to-queue latency: from a positive
result's POST returning to its tasks being visible in its district's queue (a probe that reads
the queue from the result's position on, for a sample of positive tubes)."""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import os
import queue
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bench.measure import pct
from loaders.generate import DISTRICT_WEIGHTS

OUT = Path(__file__).parent / "out"
REPLAY_DAY = "2022-04-10"


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass
class Traffic:
    """The peak hour's records, as the apps and labs would send them."""

    registrations: list[dict[str, Any]]
    results: list[dict[str, Any]]
    trace_codes: list[str]  # tubes of the earlier round, for investigators
    districts: list[str]  # Shanghai's 16 districts (and any other with a compound)
    compound_district: dict[str, str]

    @property
    def labs(self) -> list[str]:
        """The lab codes the results name: the replay's lab key is bound to them."""
        return sorted({r["lab_code"] for r in self.results if r.get("lab_code")})


def split_city(city: Path, base: Path, day: str = REPLAY_DAY) -> Traffic:
    """The city's files without `day` go to `base` (to load first); `day` is the replay."""
    base.mkdir(parents=True, exist_ok=True)
    shutil.copy(city / "compounds.csv", base / "compounds.csv")
    compounds = _read_csv(city / "compounds.csv")
    replay: dict[str, list[dict[str, Any]]] = {}
    trace_codes: set[str] = set()
    for kind, stamp in (("registrations", "collected_at"), ("results", "reported_at")):
        with (city / f"{kind}.csv").open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            out = base / f"{kind}.csv"
            with out.open("w", encoding="utf-8", newline="") as wf:
                writer = csv.DictWriter(wf, fieldnames=fields)
                writer.writeheader()
                replay[kind] = []
                for rec in reader:
                    if (rec.get(stamp) or "").startswith(day):
                        replay[kind].append({k: v for k, v in rec.items() if v})
                    else:
                        writer.writerow(rec)
                        if kind == "results" and rec.get("tube_code"):
                            trace_codes.add(rec["tube_code"])  # a result always makes a tube
    return Traffic(
        registrations=replay["registrations"],
        results=replay["results"],
        trace_codes=sorted(trace_codes),
        districts=sorted({c["district_code"] for c in compounds} | set(DISTRICT_WEIGHTS)),
        compound_district={c["compound_code"]: c["district_code"] for c in compounds},
    )


@dataclass
class Recorder:
    """Every request's time and status, by endpoint."""

    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(
        self, client: httpx.Client, endpoint: str, method: str, url: str, **kw: Any
    ) -> httpx.Response | None:
        t = time.perf_counter()
        try:
            resp: httpx.Response | None = client.request(method, url, **kw)
            status = resp.status_code if resp is not None else 0
        except httpx.HTTPError:
            resp, status = None, 0
        ms = (time.perf_counter() - t) * 1000
        with self.lock:
            self.times[endpoint].append(ms)
            self.statuses[endpoint][status] += 1
        return resp


def _client(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=600.0
    )


def _utc(stamp: str) -> str:
    return datetime.fromisoformat(stamp).astimezone(UTC).isoformat()


def run_replay(
    base_url: str,
    keys: dict[str, Any],
    traffic: Traffic,
    *,
    collectors: int = 2,
    labs: int = 1,
    investigators: int = 2,
    poll_s: float = 3.0,
    probe_sample: int = 200,
    seed: int = 12,
) -> dict[str, Any]:
    """Drive the API with every kind of client at once; return the figures and the checks.

    keys: {"collector", "lab", "investigator": secret, "districts": {code: secret}}."""
    rng = random.Random(seed)
    rec = Recorder()
    stop = threading.Event()
    regs = traffic.registrations
    # Registration batches of 50-500, as the sampling apps send them.
    batches: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
    i = 0
    while i < len(regs):
        n = rng.randint(50, 500)
        batches.put(regs[i : i + n])
        i += n
    for _ in range(collectors):
        batches.put(None)
    waiting = Counter(r["tube_code"] for r in regs if r.get("tube_code"))
    results_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for x in traffic.results:
        results_of[x.get("tube_code", "")].append(x)
    ready: queue.Queue[dict[str, Any] | None] = queue.Queue()
    for code, xs in results_of.items():
        if code not in waiting:  # no registration today: the lab sends it at once
            for x in xs:
                ready.put(x)
    lock = threading.Lock()
    # The persons of each tube, to know which tubes' tasks a probe can count exactly.
    members: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in regs:
        if r.get("tube_code"):
            members[r["tube_code"]].append(r)
    positives_posted: list[str] = []
    probes: queue.Queue[tuple[str, str, str, int, float] | None] = queue.Queue()
    latencies: list[float] = []
    probe_misses: list[str] = []
    sample_left = [probe_sample]

    def clean_pool(code: str) -> tuple[str, int] | None:
        """(district, persons) when the tube's tasks can be counted exactly in one queue."""
        ms = members.get(code, [])
        if len(ms) < 2:
            return None
        ids = [(m.get("id_type"), m.get("id_number")) for m in ms]
        districts = {traffic.compound_district.get(m.get("compound_code", "")) for m in ms}
        rids = [m.get("record_id") for m in ms]
        if None in districts or len(districts) != 1 or len(set(ids)) != len(ids):
            return None
        if any(not m.get("id_number") for m in ms) or len(set(rids)) != len(rids):
            return None
        return districts.pop() or "", len(ms)

    def collector() -> None:
        client = _client(base_url, keys["collector"])
        while (batch := batches.get()) is not None:
            resp = rec.call(
                client, "POST /v1/registrations", "POST", "/v1/registrations", json=batch
            )
            if resp is None or resp.status_code != 200:
                continue
            done = []
            with lock:
                for r in batch:
                    code = r.get("tube_code")
                    if code:
                        waiting[code] -= 1
                        if waiting[code] == 0:
                            done.append(code)
            for code in done:
                for x in results_of.get(code, []):
                    ready.put(x)
        client.close()

    def lab() -> None:
        client = _client(base_url, keys["lab"])
        finished = False
        while not finished:
            batch: list[dict[str, Any]] = []
            deadline = time.perf_counter() + 0.3
            while len(batch) < 100:
                try:
                    x = ready.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    break
                if x is None:
                    finished = True
                    break
                batch.append(x)
            if not batch:
                continue
            resp = rec.call(client, "POST /v1/results", "POST", "/v1/results", json=batch)
            returned = time.perf_counter()
            if resp is None or resp.status_code != 200:
                continue
            for x in batch:
                if x.get("result") != "positive":
                    continue
                code = x["tube_code"]
                pool = clean_pool(code)
                if pool is None and len(members.get(code, [])) < 2:
                    continue  # a single-tube retest: no follow-up tasks
                with lock:
                    positives_posted.append(code)
                    take = pool is not None and sample_left[0] > 0
                    if take:
                        sample_left[0] -= 1
                if take and pool is not None:
                    probes.put((code, pool[0], _utc(x["reported_at"]), pool[1], returned))
        client.close()

    def probe_once(client: httpx.Client, code: str, district: str, utc: str) -> int:
        """The tube's tasks in the queue from the result's position on: first those listed
        first as repeat positives (sort key 0|...), then the others (1|...)."""
        seen = 0
        for prefix, limit in (("0", 20), ("1", 100)):
            cursor: str | None = f"{prefix}|{utc}|"
            pages = 0
            while cursor and pages < 5:
                resp = rec.call(
                    client,
                    "GET /v1/districts/{d}/tasks (probe)",
                    "GET",
                    f"/v1/districts/{district}/tasks",
                    params={"cursor": cursor, "limit": limit},
                )
                if resp is None or resp.status_code != 200:
                    return seen
                page = resp.json()
                items = page["items"]
                if prefix == "0":  # past the repeat positives the queue starts over at 1|...
                    items = list(
                        itertools.takewhile(lambda t: "repeat_positive_pool" in t["flags"], items)
                    )
                seen += sum(1 for t in items if t["tube_code"] == code)
                pages += 1
                if len(items) < limit or _utc_of(items[-1]) > utc:
                    break
                cursor = page["next_cursor"]
        return seen

    def prober() -> None:
        client = _client(base_url, keys["investigator"])
        while (job := probes.get()) is not None:
            code, district, utc, expected, returned = job
            seen = 0
            give_up = returned + 60.0
            while time.perf_counter() < give_up:
                seen = probe_once(client, code, district, utc)
                if seen >= expected:
                    break
                time.sleep(0.02)
            if seen >= expected:
                latencies.append((time.perf_counter() - returned) * 1000)
            else:
                probe_misses.append(code)
        client.close()

    def district_system(code: str, key: str, offset: float) -> None:
        client = _client(base_url, key)
        if stop.wait(offset):
            return
        while not stop.is_set():
            for status, to in (("pending", "acknowledged"), ("acknowledged", "contacted")):
                resp = rec.call(
                    client,
                    "GET /v1/districts/{d}/tasks",
                    "GET",
                    f"/v1/districts/{code}/tasks",
                    params={"status": status, "limit": 50},
                )
                if resp is None or resp.status_code != 200:
                    continue
                for task in resp.json()["items"][:5]:
                    rec.call(
                        client,
                        "POST /v1/tasks/{id}/transitions",
                        "POST",
                        f"/v1/tasks/{task['task_id']}/transitions",
                        json={"to": to, "note": "replay"},
                    )
            stop.wait(poll_s)
        client.close()

    def investigator(w: int) -> None:
        client = _client(base_url, keys["investigator"])
        pick = random.Random(w)
        while not stop.is_set() and traffic.trace_codes:
            code = pick.choice(traffic.trace_codes)
            rec.call(client, "GET /v1/tubes/{t}/trace", "GET", f"/v1/tubes/{code}/trace")
            stop.wait(0.02)
        client.close()

    started = time.perf_counter()
    uploaders = [threading.Thread(target=collector) for _ in range(collectors)]
    lab_threads = [threading.Thread(target=lab) for _ in range(labs)]
    probe_threads = [threading.Thread(target=prober) for _ in range(2)]
    n_districts = len(keys["districts"])
    background = [
        threading.Thread(target=district_system, args=(d, k, poll_s * j / max(1, n_districts)))
        for j, (d, k) in enumerate(sorted(keys["districts"].items()))
    ] + [threading.Thread(target=investigator, args=(w,)) for w in range(investigators)]
    for t in uploaders + lab_threads + probe_threads + background:
        t.start()
    for t in uploaders:
        t.join()
    with lock:  # tubes whose registrations never all arrived: their results go now
        for code, left in waiting.items():
            if left > 0:
                for x in results_of.get(code, []):
                    ready.put(x)
    for _ in lab_threads:
        ready.put(None)
    for t in lab_threads:
        t.join()
    for _ in probe_threads:
        probes.put(None)
    for t in probe_threads:
        t.join()
    stop.set()
    for t in background:
        t.join()
    wall = time.perf_counter() - started
    missing = tasks_missing(base_url, keys["investigator"], traffic, positives_posted, members)
    endpoints = {}
    for name, times in sorted(rec.times.items()):
        statuses = rec.statuses[name]
        ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
        conflicts = statuses.get(409, 0)
        endpoints[name] = {
            "requests": len(times),
            "requests_s": len(times) / wall,
            "p50_ms": pct(times, 0.5),
            "p99_ms": pct(times, 0.99),
            "errors": len(times) - ok - conflicts,
            "conflicts": conflicts,
            "statuses": {str(s): n for s, n in sorted(statuses.items())},
        }
    return {
        "seconds": wall,
        "registrations_posted": len(regs),
        "results_posted": len(traffic.results),
        "rows_s": (len(regs) + len(traffic.results)) / wall,
        "district_systems": n_districts,
        "endpoints": endpoints,
        "result_to_queue": {
            "probed": len(latencies) + len(probe_misses),
            "visible": len(latencies),
            "p50_ms": pct(latencies, 0.5),
            "p99_ms": pct(latencies, 0.99),
            "max_ms": max(latencies) if latencies else float("nan"),
        },
        "positive_pools_posted": len(positives_posted),
        "positive_pools_without_tasks": missing,
        "errors": sum(e["errors"] for e in endpoints.values()),
    }


def _utc_of(task: dict[str, Any]) -> str:
    at = task.get("result_at")
    return _utc(at) if at else ""


def tasks_missing(
    base_url: str,
    key: str,
    traffic: Traffic,
    positives: list[str],
    members: dict[str, list[dict[str, Any]]],
) -> list[str]:
    """Every posted positive pool has a follow-up task for each of its persons (counted by
    distinct ID; tubes with an anonymous member need at least one task)."""
    client = _client(base_url, key)
    found: dict[str, set[str]] = defaultdict(set)
    for district in [*traffic.districts, "unassigned"]:
        cursor: str | None = ""
        while cursor is not None:
            resp = client.get(
                f"/v1/districts/{district}/tasks", params={"cursor": cursor, "limit": 500}
            )
            resp.raise_for_status()
            page = resp.json()
            for t in page["items"]:
                if t["kind"] == "follow_up":
                    found[t["tube_code"]].add(t["task_id"])
            cursor = page["next_cursor"]
    client.close()
    missing = []
    for code in positives:
        ms = members.get(code, [])
        ids = {(m.get("id_type"), m.get("id_number")) for m in ms}
        exact = all(m.get("id_number") for m in ms)
        need = len(ids) if exact else 1
        if len(found.get(code, ())) < need:
            missing.append(code)
    return missing


def print_report(report: dict[str, Any], title: str, console: Console | None = None) -> None:
    console = console or Console(width=150)
    table = Table(title=title)
    for col in (
        "endpoint",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors (goal 0)",
        "409",
        "statuses",
    ):
        table.add_column(col, justify="left" if col == "endpoint" else "right")
    for name, e in report["endpoints"].items():
        table.add_row(
            name,
            f"{e['requests']:,}",
            f"{e['requests_s']:.1f}",
            f"{e['p50_ms']:.1f}",
            f"{e['p99_ms']:.1f}",
            str(e["errors"]),
            str(e["conflicts"]),
            " ".join(f"{k}:{v}" for k, v in e["statuses"].items()),
        )
    console.print(table)
    q = report["result_to_queue"]
    console.print(
        f"{report['registrations_posted']:,} registrations and {report['results_posted']:,} "
        f"results posted in {report['seconds']:.1f} s ({report['rows_s']:.0f} rows/s) with "
        f"{report['district_systems']} district systems polling; "
        f"result-to-queue latency (goal p99 <= 1000 ms), {q['visible']}/{q['probed']} probed "
        f"positive tubes visible: p50 {q['p50_ms']:.0f} ms, p99 {q['p99_ms']:.0f} ms, "
        f"max {q['max_ms']:.0f} ms; positive pools posted {report['positive_pools_posted']}, "
        f"without their tasks {len(report['positive_pools_without_tasks'])}; "
        f"errors {report['errors']}."
    )


def start_api(
    home: Path, port: int, log: Path, factory: str = "api.app:create_app"
) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        TUBETRACE_HOME=str(home),
        TUBETRACE_RATE_PER_SECOND="1000000",
        TUBETRACE_RATE_BURST="1000000",
    )
    fh = log.open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            factory,
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        stdout=fh,
        stderr=subprocess.STDOUT,
    )
    for _ in range(240):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"uvicorn did not answer; see {log}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from engine.access.keys import create_key
    from engine.server.managed import ManagedServer
    from engine.settings import Settings
    from engine.store.gateway import connect
    from loaders.bulk import bulk_load
    from loaders.generate import generate_city  # noqa: I001

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=100_000, help="registrations, both days")
    parser.add_argument("--collectors", type=int, default=2)
    parser.add_argument("--labs", type=int, default=1)
    parser.add_argument("--investigators", type=int, default=2)
    parser.add_argument("--poll", type=float, default=3.0, help="district polling interval (s)")
    parser.add_argument("--work", type=Path, default=OUT / "replay-work")
    args = parser.parse_args(argv)
    settings = Settings()
    if settings.neo4j_uri:
        sys.exit("the replay runs its own managed server; unset NEO4J_URI")
    shutil.rmtree(args.work, ignore_errors=True)
    home, city, base = args.work / "home", args.work / "city", args.work / "base"
    s = settings.model_copy(update={"home": home})
    print(f"replay: generating {args.scale:,} registrations, importing the first day ...")
    generate_city(city, seed=2022, registrations=args.scale, positive_rate=0.01, mix_pools=True)
    traffic = split_city(city, base)
    bulk_load(s, "all", base, Console(file=io.StringIO()))
    server = ManagedServer(s)
    gw = connect(s)
    keys: dict[str, Any] = {
        role: create_key(
            gw, role=role, district=None, labs=traffic.labs if role == "lab" else None
        ).secret
        for role in ("collector", "lab", "investigator")
    }
    keys["districts"] = {
        d: create_key(gw, role="district", district=d).secret for d in traffic.districts
    }
    gw.close()
    port = _free_port()
    api = start_api(home, port, args.work / "uvicorn.log")
    try:
        print(
            f"replay: {len(traffic.registrations):,} registrations and "
            f"{len(traffic.results):,} results of {REPLAY_DAY} through http://127.0.0.1:{port}"
        )
        report = run_replay(
            f"http://127.0.0.1:{port}",
            keys,
            traffic,
            collectors=args.collectors,
            labs=args.labs,
            investigators=args.investigators,
            poll_s=args.poll,
        )
    finally:
        api.terminate()
        api.wait(timeout=30)
        server.stop()
    report["scale"] = args.scale
    print_report(report, f"peak-hour replay, {args.scale:,}-registration city, {REPLAY_DAY}")
    OUT.mkdir(exist_ok=True)
    (OUT / "replay.json").write_text(json.dumps(report, indent=2))
    shutil.rmtree(args.work, ignore_errors=True)
    return report


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
