"""Trace latency over HTTP (p50), the audit entry included, for one or more source trees side
by side: how much the durable audit journal costs per read.

    TUBETRACE_HOME=... python -m bench.trace_p50 --rounds 3 --n 200 OLD_TREE NEW_TREE \\
        NEW_TREE,TUBETRACE_AUDIT_FSYNC=false NEW_TREE,--loop=asyncio,--http=h11

A `,NAME=VALUE` after a tree is an environment setting; a `,--option=VALUE` is passed to
uvicorn. Each round also times the same trace through the driver, in process: the HTTP layer's
share is the difference.

Uses the managed Neo4j of TUBETRACE_HOME (or NEO4J_URI); loads the small test city there
(wiping that database first), then starts `uvicorn api.app:create_app` from each tree in turn."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.devdb import connect, wipe
from engine.access.keys import create_key
from engine.settings import Settings
from engine.trace.build import trace_many
from loaders import write
from loaders.read import read_file

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def serve(
    tree: Path, port: int, extra: dict[str, str], options: list[str]
) -> subprocess.Popen[bytes]:
    env = os.environ | {"TUBETRACE_RATE_PER_SECOND": "5000", "TUBETRACE_RATE_BURST": "5000"}
    env |= extra
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port)]
        + ["--log-level", "warning", *options],
        cwd=tree,
        env=env | {"PYTHONPATH": str(tree)},
    )
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"uvicorn from {tree} did not answer")


def p50(spec: str, secret: str, n: int, port: int) -> float:
    """`spec` is a source tree, optionally followed by `,NAME=VALUE` environment settings."""
    tree, *pairs = spec.split(",")
    options = [p for p in pairs if p.startswith("--")]
    env = dict(p.split("=", 1) for p in pairs if not p.startswith("--"))
    proc = serve(Path(tree).resolve(), port, env, options)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=60,
        ) as client:
            for _ in range(20):  # warm-up
                client.get("/v1/tubes/T1/trace").raise_for_status()
            took = []
            for _ in range(n):
                start = time.perf_counter()
                client.get("/v1/tubes/T1/trace").raise_for_status()
                took.append(time.perf_counter() - start)
        return statistics.median(took) * 1000
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("trees", nargs="+", help="DIR or DIR,NAME=VALUE,...")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    settings = Settings()
    gw = connect(settings)
    wipe(gw)
    gw.apply_schema()
    for kind, name in (
        ("compounds", "compounds.csv"),
        ("registrations", "registrations.csv"),
        ("results", "results.jsonl"),
    ):
        write.load_records(gw, kind, read_file(DATA / name, kind), name, settings)
    secret = create_key(gw, role="investigator", district=None).secret
    gw.close()
    figures: dict[str, list[float]] = {tree: [] for tree in args.trees}
    driver: list[float] = []
    gw = connect(settings)
    for _ in range(args.rounds):  # interleaved, so that the machine's load hits both alike
        for tree in args.trees:
            figures[tree].append(p50(tree, secret, args.n, args.port))
        took = []
        for _ in range(args.n):
            start = time.perf_counter()
            trace_many(gw, ["T1"])
            took.append(time.perf_counter() - start)
        driver.append(statistics.median(took) * 1000)
    gw.close()
    base = statistics.median(driver)
    print(f"driver p50 {base:.2f} ms ({', '.join(f'{v:.2f}' for v in driver)})")
    for tree, values in figures.items():
        rounds = ", ".join(f"{v:.2f}" for v in values)
        print(
            f"trace p50 {statistics.median(values):.2f} ms ({rounds}), "
            f"HTTP minus driver {statistics.median(values) - base:.2f} ms: {tree}"
        )


if __name__ == "__main__":
    main()
