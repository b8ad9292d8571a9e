"""Helpers shared by the test modules (test files never import each other)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench import devdb
from engine.push import webhooks
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.store.querybook import QueryBook
from loaders import write as loader_write
from loaders.read import read_file

DATA = Path(__file__).parent / "data"
# The tests' queries (dumps, counts, tampering: tests/cypher/, not shipped) on top of the
# product's and the benchmark's (bench/devdb.py, with `wipe`).
TEST_BOOK: QueryBook = devdb.dev_book(Path(__file__).parent / "cypher")


def connect_test(settings: Settings, **options: Any) -> Gateway:
    """`engine.store.gateway.connect` with the tests' queries."""
    return devdb.connect(settings, queries=TEST_BOOK, **options)


# Test records as the contract's files and API take them: one builder per kind, every field of
# the contract given a plausible value; a test names only what it is about.
def registration(**over: Any) -> dict[str, Any]:
    """A collector's registration record (a pooled tube of 10 at compound C1, box B1)."""
    return {
        "record_id": "R1",
        "collected_at": "2022-04-09T08:15:00+08:00",
        "compound_code": "C1",
        "box_code": "B1",
        "tube_code": "T1",
        "pool_size": 10,
        "method": "nucleic_code",
        "id_type": "resident_id",
        "id_number": "310115198001010016",
        "name": "张三",
        "phone": "13812345678",
    } | over


def day_registration(
    record_id: str, tube: str, pool: int, day: str, person: str, **over: Any
) -> dict[str, Any]:
    """A registration of `day` (08:15 local) into `tube`, of the person whose passport number
    is made from the letter `person`."""
    return (
        registration(
            record_id=record_id,
            tube_code=tube,
            pool_size=pool,
            collected_at=f"{day}T08:15:00+08:00",
            id_type="passport",
            id_number=f"E{person}0001",
        )
        | over
    )


def directory_entry(**over: Any) -> dict[str, Any]:
    """A population directory entry (a census entry naming nothing but the person)."""
    return {
        "id_type": "resident_id",
        "id_number": "310115198001010016",
        "name": "",
        "phone": "",
        "phone_owner": "",
        "residence_compound_code": "",
        "source": "census",
        "updated_at": "2022-04-01T00:00:00+08:00",
    } | over


def load(gw: Gateway, settings: Settings, kind: str, path: Path) -> loader_write.Summary:
    return loader_write.load_records(gw, kind, read_file(path, kind), path.name, settings)


def load_city(gw: Gateway, settings: Settings) -> None:
    load(gw, settings, "compounds", DATA / "compounds.csv")
    load(gw, settings, "registrations", DATA / "registrations.csv")
    load(gw, settings, "results", DATA / "results.jsonl")


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def count(gw: Gateway, label: str) -> int:
    return {r["label"]: r["n"] for r in gw.read("count_by_label")}.get(label, 0)


def quarantined(gw: Gateway, limit: int = 500) -> list[dict[str, Any]]:
    """The quarantine as stored, unmasked and unaudited (the product reads it through
    engine.usecases.reads.read_quarantine_page)."""
    return [r["item"] for r in gw.read("list_quarantine", after="", limit=limit)]


RETEST_HEADER = (
    "record_id,collected_at,compound_code,box_code,tube_code,pool_size,method,"
    "id_type,id_number,name,phone\n"
)


def retest(
    tmp_path: Path, record_id: str, tube: str, id_number: str, at: str = "2022-04-10T10:00:00+08:00"
) -> Path:
    return write(
        tmp_path,
        f"{record_id}.csv",
        RETEST_HEADER + f"{record_id},{at},C1,RB1,{tube},1,nucleic_code,resident_id,{id_number},x,"
        "13800000000\n",
    )


def result(tmp_path: Path, tube: str, value: str, at: str = "2022-04-10T20:00:00+08:00") -> Path:
    return write(
        tmp_path,
        f"res-{tube}-{value}-{at[:10]}.csv",
        f"tube_code,result,reported_at,lab_code\n{tube},{value},{at},LAB01\n",
    )


def _op(plan: Any) -> str:
    return str(plan["operatorType"].split("@")[0])


def operators(plan: Any) -> list[str]:
    details = str(plan.get("args", {}).get("Details", ""))[:80]
    found = [_op(plan) + (f" [{details}]" if "Index" in plan["operatorType"] else "")]
    for child in plan.get("children", []):
        found += operators(child)
    return found


def first_operator(plan: Any) -> str:
    while plan.get("children"):
        plan = plan["children"][0]
    return _op(plan)  # the leaf that runs first


def assert_seek_without_scans(plan: Any) -> None:
    ops = operators(plan)
    assert first_operator(plan) in ("NodeUniqueIndexSeek", "NodeIndexSeek"), " / ".join(ops)
    assert not [op for op in ops if op.split(" ")[0].endswith("Scan")], " / ".join(ops)


def _inputs(plan: Any) -> list[Any]:
    """The children that feed an operator its rows: an Apply's right side runs once per row
    of its left side (a bounded subquery), so only the left side counts."""
    children = list(plan.get("children", []))
    return children[:1] if _op(plan).endswith("Apply") else children


def _unbounded_sorts(plan: Any) -> list[str]:
    def limited(p: Any) -> bool:
        return any(_op(c) == "Limit" or limited(c) for c in _inputs(p))

    found = [_op(plan)] if _op(plan) in ("Sort", "Top") and not limited(plan) else []
    for child in _inputs(plan):
        found += _unbounded_sorts(child)
    return found


def assert_no_unbounded_sort(plan: Any) -> None:
    """No Sort or Top over everything its input reads: a page is read in index order and
    stops at its limit (a sort after the limit, of one page, is fine; PartialSort/PartialTop
    only order ties within index order)."""
    assert not _unbounded_sorts(plan), " / ".join(operators(plan))


def graph_fingerprint(gw: Gateway) -> tuple[dict[str, int], str]:
    """Node counts per label and a hash of every property of every node and relationship."""
    counts = {r["label"]: r["n"] for r in gw.read("count_by_label")}

    def norm(value: Any) -> Any:
        if hasattr(value, "iso_format"):
            return value.iso_format()
        if isinstance(value, dict):
            return {k: norm(v) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [norm(v) for v in value]
        return value

    nodes = sorted(
        json.dumps(norm(r), sort_keys=True, ensure_ascii=False) for r in gw.read("dump_nodes")
    )
    rels = sorted(
        json.dumps(norm(r), sort_keys=True, ensure_ascii=False)
        for r in gw.read("dump_relationships")
    )
    digest = hashlib.sha256("\n".join(nodes + rels).encode()).hexdigest()
    return counts, digest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Fault tools for the reliability tests.
# A Bolt COMMIT message: chunk size 2, struct with no fields (0xB0), signature 0x12, end marker.
BOLT_COMMIT = b"\x00\x02\xb0\x12\x00\x00"


class CommitDroppingProxy:
    """Forwards 127.0.0.1:port to a Bolt server. When armed, the next COMMIT is forwarded to
    the server and then both sides are cut before the server's answer reaches the client."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self.armed = threading.Event()
        self.dropped = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            cut = threading.Event()
            threading.Thread(
                target=self._pipe, args=(client, server, True, cut), daemon=True
            ).start()
            threading.Thread(
                target=self._pipe, args=(server, client, False, cut), daemon=True
            ).start()

    def _pipe(
        self, src: socket.socket, dst: socket.socket, upstream: bool, cut: threading.Event
    ) -> None:
        try:
            while data := src.recv(65536):
                if cut.is_set():
                    continue  # the server's answer to COMMIT is swallowed
                if upstream and self.armed.is_set() and BOLT_COMMIT in data:
                    self.armed.clear()
                    cut.set()
                    self.dropped += 1
                    dst.sendall(data)
                    time.sleep(0.5)  # the server commits; its SUCCESS is never relayed
                    for s in (src, dst):
                        s.shutdown(socket.SHUT_RDWR)
                        s.close()
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass


# A small two-day city for person statuses and webhooks (tests/integration/test_status.py).
D1 = "2022-04-09"
D2 = "2022-04-10"

# person letter -> passport number
IDS = {c: f"E{c}0001" for c in "ABCDEFGH"}


def reg(rid: str, at: str, compound: str, tube: str, pool: int, person: str) -> str:
    return (
        f"{rid},{at},{compound},BX{tube},{tube},{pool},nucleic_code,passport,{IDS[person]},"
        f"name{person},1380000000{ord(person) % 10}\n"
    )


def status_scenario(tmp_path: Path) -> list[tuple[str, Path]]:
    """Pools on day 1: P1 (A, B, C) positive, P2 (D, E) negative, P3 (F, G) invalid.
    Day 2: A retested alone negative, B alone positive, F in pool P4 (with H) negative.
    C's registration arrives late, in its own file."""
    files = {
        "day1": [
            reg("A1", f"{D1}T08:00:00+08:00", "C1", "P1", 10, "A"),
            reg("B1", f"{D1}T08:01:00+08:00", "C1", "P1", 10, "B"),
            reg("D1", f"{D1}T08:02:00+08:00", "C2", "P2", 10, "D"),
            reg("E1", f"{D1}T08:03:00+08:00", "C2", "P2", 10, "E"),
            reg("F1", f"{D1}T08:04:00+08:00", "C1", "P3", 10, "F"),
            reg("G1", f"{D1}T08:05:00+08:00", "C1", "P3", 10, "G"),
        ],
        "late": [reg("C1", f"{D1}T08:00:30+08:00", "C1", "P1", 10, "C")],
        "day2": [
            reg("A2", f"{D2}T09:00:00+08:00", "C1", "S1", 1, "A"),
            reg("B2", f"{D2}T09:01:00+08:00", "C1", "S2", 1, "B"),
            reg("F2", f"{D2}T09:02:00+08:00", "C1", "P4", 10, "F"),
            reg("H2", f"{D2}T09:03:00+08:00", "C1", "P4", 10, "H"),
        ],
    }
    out: list[tuple[str, Path]] = []
    for name, lines in files.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(RETEST_HEADER + "".join(lines))
        out.append(("registrations", path))
    results = tmp_path / "results.csv"
    results.write_text(
        "tube_code,result,reported_at,lab_code\n"
        f"P1,positive,{D1}T20:00:00+08:00,L1\n"
        f"P2,negative,{D1}T20:00:00+08:00,L1\n"
        f"P3,invalid,{D1}T20:00:00+08:00,L1\n"
        f"S1,negative,{D2}T20:00:00+08:00,L1\n"
        f"S2,positive,{D2}T20:00:00+08:00,L1\n"
        f"P4,negative,{D2}T20:00:00+08:00,L1\n"
    )
    out.append(("results", results))
    return out


def load_compounds(gw: Gateway, settings: Settings) -> None:
    load(gw, settings, "compounds", DATA / "compounds.csv")


# ---------------------------------------------------------------- browsers and the console

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CONSOLE_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def console_login(api_url: str, secret: str) -> httpx.Client:
    """A client with a web-console session, logged in through the form like a browser."""
    client = httpx.Client(base_url=api_url, follow_redirects=False, timeout=30)
    form = client.get("/console/login")
    token = CONSOLE_CSRF.search(form.text)
    assert token, form.text[:300]
    resp = client.post(
        "/console/login", data={"key": secret, "csrf": token.group(1), "next": "/console/"}
    )
    assert resp.status_code == 303, (resp.status_code, resp.text[:300])
    return client


def spawn_api(
    env: dict[str, str], log_path: Path, log_level: str = "warning"
) -> tuple[subprocess.Popen[bytes], str]:
    """`uvicorn api.app:create_app` as a subprocess on a free port, not waited for."""
    port = free_port()
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory"]
            + ["--port", str(port), "--log-level", log_level],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return proc, f"http://127.0.0.1:{port}"


def start_api(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`spawn_api`, returned once `/healthz` answers 200."""
    import httpx

    proc, url = spawn_api(env, log_path)
    for _ in range(240):
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError("uvicorn did not answer")


# Webhook receivers and settings shared by the webhook tests.
ALL = ["task.created", "task.updated", "status.changed"]


class Receiver:
    """A real HTTP receiver on a fixed port that can go down and come back."""

    def __init__(self, port: int, delay_s: float = 0.0) -> None:
        self.port = port
        self.delay_s = delay_s
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.arrived = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> Receiver:
        got, delay, receiver = self.got, self.delay_s, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                receiver.arrived += 1
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if delay:
                    time.sleep(delay)
                got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def fast(settings: Settings, **extra: Any) -> Settings:
    update = {
        "webhook_timeout_s": 2.0,
        "webhook_backoff_base_s": 0.3,
        "webhook_backoff_max_s": 1.5,
        "webhook_give_up_s": 120.0,
        "webhook_poll_s": 0.1,
        "webhook_concurrency": 4,
        "webhook_park_s": 1.0,
        "rate_per_second": 1000.0,
        "rate_burst": 1000,
    }
    return settings.model_copy(update=update | extra)


def subscribe(gw: Gateway, url: str, district: str | None) -> webhooks.Created:
    """Every event type; the receivers here listen on 127.0.0.1 (a private address)."""
    return webhooks.add(gw, url, district, ALL, allow_private=True)


def wait_until(check: Callable[[], bool], timeout_s: float = 90.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")
