"""Bytes per registration and online rows/s of two trees side by side, in one run.

    ./dev bench --compare REV [--sizes 1000000] [--prefix 20000] [--work DIR]

REV (a commit, e.g. the tree before a footprint change) is checked out in a git worktree under
the work folder; this tree is the other side. One city is generated; then, per size:
- online load, interleaved (REV, this tree, REV, this tree): compounds, then the first
  `--prefix` registrations into an empty managed server, as `./dev bench` measures it;
- the whole round bulk-imported and dispatched, the server stopped cleanly and started
  again, its files measured (bench/footprint.py); then the next round's `--prefix`
  registrations loaded online onto the full store (statuses, events, transaction logs) and
  measured again.
Each side runs in its own process with its own tree first on the path (this file's worker
mode), so the measurement code of both is the same. Prints a table, writes
bench/out/sidebyside.json."""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "sidebyside.json"


# ------------------------------------------------------------------ worker (either tree)


def _worker(mode: str, home: Path, city: Path, prefix: int) -> dict[str, Any]:
    from rich.console import Console

    from bench import footprint
    from bench.devdb import connect
    from bench.measure import store_bytes

    # The benchmark's next round, as the tree being measured writes it (bench/run.py runs
    # this module for --compare: looked up by name, not imported, to stay out of a circle).
    next_round = importlib.import_module("bench.run").next_round
    from engine.server.managed import ManagedServer
    from engine.settings import Settings
    from loaders import write
    from loaders.bulk import bulk_load
    from loaders.read import read_file

    shutil.rmtree(home, ignore_errors=True)
    s = Settings().model_copy(update={"home": home})
    server = ManagedServer(s)
    res: dict[str, Any] = {}
    regs = city / "registrations.csv"
    try:
        if mode == "online":
            gw = connect(s)
            comps = read_file(city / "compounds.csv", "compounds")
            write.load_records(gw, "compounds", comps, "compounds.csv", s)
            t = time.perf_counter()
            write.load_records(
                gw,
                "registrations",
                islice(read_file(regs, "registrations"), prefix),
                "registrations.csv",
                s,
            )
            res["online_rows_s"] = prefix / (time.perf_counter() - t)
            gw.close()
            return res
        bulk_load(s, "all", city, Console(file=io.StringIO()))

        def registrations(gw: Any) -> int:
            return sum(r["n"] for r in gw.read("count_by_label") if r["label"] == "Registration")

        for step in ("bulk", "next_round"):
            if step == "next_round":
                gw = connect(s)
                t = time.perf_counter()
                write.load_records(
                    gw,
                    "registrations",
                    next_round(islice(read_file(regs, "registrations"), prefix)),
                    "registrations-next.csv",
                    s,
                )
                res["online_next_rows_s"] = prefix / (time.perf_counter() - t)
                gw.close()
            server.stop()
            server.start()
            gw = connect(s)
            n = registrations(gw)
            res[step] = footprint.measure(server, gw, n) | {
                "registrations": n,
                "store_and_logs_bytes": store_bytes(server),
            }
            gw.close()
        return res
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


# ------------------------------------------------------------------ driver


def _run_side(tree: Path, mode: str, home: Path, city: Path, prefix: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    # This file run from the tree's folder (`-c`: the folder first on the path), so that the
    # tree's own packages are measured; an older tree need not have this file.
    code = (
        "import runpy, sys; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, __file__, "--worker", mode, str(home), str(city)]
        + [str(prefix)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"{tree} {mode} failed:\n{out.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return answer


def _tree(rev: str, work: Path) -> Path:
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    tree = work / f"tree-{sha}"
    if not tree.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), sha],
            check=True,
            capture_output=True,
        )
    return tree


def _bpr(side: dict[str, Any], step: str) -> dict[str, float]:
    b = side[step]["bytes_per_registration"]
    return {k: b[k] for k in ("total", "store", "indexes", "transaction_logs")}


def main(argv: list[str]) -> None:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # figures as they come, also into a file
    if argv[:1] == ["--worker"]:
        mode, home, city, prefix = argv[1], Path(argv[2]), Path(argv[3]), int(argv[4])
        print(json.dumps(_worker(mode, home, city, prefix), default=str))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--compare", required=True, help="the other tree's revision")
    ap.add_argument("--sizes", default="1000000")
    ap.add_argument("--prefix", type=int, default=20_000)
    ap.add_argument("--work", type=Path, default=ROOT / ".tubetrace" / "sidebyside")
    args = ap.parse_args(argv)
    from loaders.generate import generate_city

    args.work.mkdir(parents=True, exist_ok=True)
    trees = {"before": _tree(args.compare, args.work), "after": ROOT}
    results: dict[str, Any] = {"compare": args.compare, "sizes": {}}
    for n in (int(x) for x in args.sizes.split(",")):
        city = args.work / f"city-{n}"
        shutil.rmtree(city, ignore_errors=True)
        generate_city(city, seed=2022, registrations=n, positive_rate=0.01, mix_pools=True)
        size: dict[str, Any] = {"before": {}, "after": {}}
        for rnd in range(2):
            for side, tree in trees.items():
                r = _run_side(tree, "online", args.work / f"home-{side}", city, args.prefix)
                size[side].setdefault("online_rows_s", []).append(r["online_rows_s"])
                print(f"{n:,} online {side} #{rnd + 1}: {r['online_rows_s']:,.0f} rows/s")
        for side, tree in trees.items():
            r = _run_side(tree, "footprint", args.work / f"home-{side}", city, args.prefix)
            size[side] |= r
            print(
                f"{n:,} {side}: bytes/registration after the bulk import "
                f"{r['bulk']['bytes_per_registration']['total']:,.0f}, after the next round "
                f"{r['next_round']['bytes_per_registration']['total']:,.0f}; next round "
                f"{r['online_next_rows_s']:,.0f} rows/s"
            )
        shutil.rmtree(city, ignore_errors=True)
        results["sizes"][str(n)] = size
        _print(n, size)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2, default=str))
    print(f"saved {OUT}")


def _print(n: int, size: dict[str, Any]) -> None:
    b, a = size["before"], size["after"]
    print(f"\n{n:,} registrations: before | after | after / before")
    for step in ("bulk", "next_round"):
        for part, before in _bpr(b, step).items():
            after = _bpr(a, step)[part]
            ratio = after / before if before else float("nan")
            print(f"  {step:10} {part:17} {before:8,.0f} | {after:8,.0f} | {ratio:5.2f}")
    rates = ", ".join(f"{x:,.0f}" for x in b["online_rows_s"])
    rates_after = ", ".join(f"{x:,.0f}" for x in a["online_rows_s"])
    print(f"  online rows/s (empty store)  {rates} | {rates_after}")
    before_next, after_next = b["online_next_rows_s"], a["online_next_rows_s"]
    print(f"  online rows/s (next round)   {before_next:,.0f} | {after_next:,.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
