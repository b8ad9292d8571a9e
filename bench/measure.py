"""What every benchmark measures with: percentiles, a timed call, a store's size on disk, and
a script run from a given source tree (the before/after of a change, side by side)."""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine.server.managed import ManagedServer


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank); NaN of no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    """Seconds taken by fn(*args), and its answer."""
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


class KeepAlive:
    """A district system's plain HTTP/1.1 client: one kept-alive connection (the standard
    library's). `httpx` spends ~0.33 ms of Python per request on this machine (measured
    against a bare ASGI app: 0.42 ms a request, against 0.09 ms with this client), which is
    the caller's choice, not what the API adds; the benchmark prints both."""

    def __init__(self, port: int, key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {key}"}

    def get(self, path: str) -> bytes:
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return body


def store_bytes(server: ManagedServer) -> int:
    """The database's store and transaction logs on disk."""
    return sum(
        p.stat().st_size
        for sub in ("databases/neo4j", "transactions/neo4j")
        for p in (server.data_dir / sub).rglob("*")
        if p.is_file()
    )


def drop_os_cache() -> bool:
    """Flush and drop the OS page cache (needs root): the next read of the store is from
    disk. False where it cannot."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def run_in_tree(tree: Path, code: str, *args: str) -> str:
    """`python -c code tree args...` in `tree`, its stdout; the code puts `sys.argv[1]` (the
    tree) first on `sys.path`, so the tree's own packages are the ones imported."""
    done = subprocess.run(
        [sys.executable, "-c", code, str(tree), *args],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def side_by_side(doc: str, rounds: int) -> argparse.ArgumentParser:
    """The arguments every before/after script takes: the two source trees and `--rounds`
    (each script adds its own)."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=rounds)
    return parser


def trees(args: argparse.Namespace) -> dict[str, Path]:
    """The two trees of `side_by_side`'s arguments, by name, in the order they run."""
    return {"before": args.before.resolve(), "after": args.after.resolve()}
