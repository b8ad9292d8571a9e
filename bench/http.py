"""Where the HTTP time of a trace goes, and the trace route before and after, in one run.

    python -m bench.http [--scale 20000] [--samples 500] [--seconds 5]   # or ./dev bench --http

"Before" is the trace route as it was (bench.http:before_app: a sync endpoint, sync
dependencies, FastAPI validating and encoding the response model: five worker-thread hops per
request); "after" is the app's own (api/routers/tubes.py: async dependencies, one thread hop
for the database call, the view, the audit record, the check against the response model and
the encoding). Both run as uvicorn processes over the same managed Neo4j; their answers must
be byte-identical. Also prints the parts of a trace measured in-process."""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import anyio
import httpx
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from rich.console import Console
from rich.table import Table

from api import models
from api.app import create_app
from api.routers.tubes import TRACE_JSON
from api.security import KeyCache, RateLimiter, bearer
from bench.measure import pct
from engine.access import audit
from engine.access.keys import Principal
from engine.access.masking import trace_view
from engine.settings import Settings
from engine.store.gateway import Gateway
from engine.trace.build import trace_many, trace_tube

OUT = Path(__file__).parent / "out"
TRACE_PATH = "/v1/tubes/{tube_code}/trace"


def _gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def _audit(request: Request) -> audit.AuditWriter:
    writer: audit.AuditWriter = request.app.state.audit
    return writer


def _reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The old, sync key check (the same rules as api.security.require)."""
    if credentials is None:
        raise HTTPException(401, "An API key is required: send 'Authorization: Bearer KEY'.")
    keys: KeyCache = request.app.state.key_cache
    who = keys.authenticate(request.app.state.gateway, credentials.credentials)
    if who is None:
        raise HTTPException(401, "The API key is unknown or revoked.")
    limiter: RateLimiter = request.app.state.rate_limiter
    if not limiter.allow(who.key_id):
        raise HTTPException(429, "Too many requests for this key; slow down and retry.")
    if who.role not in ("investigator", "district"):
        raise HTTPException(403, f"A {who.role} key cannot use this endpoint.")
    return who


def before_app(settings: Settings | None = None, gateway: Gateway | None = None) -> FastAPI:
    """The app with the trace route as it was before the HTTP work of issue 12."""
    app = create_app(settings, gateway)
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", "") != TRACE_PATH]

    @app.get(TRACE_PATH, response_model=models.Trace)
    def get_trace(
        tube_code: str,
        gw: Annotated[Gateway, Depends(_gateway)],
        who: Annotated[Principal, Depends(_reader)],
        log: Annotated[audit.AuditWriter, Depends(_audit)],
        reveal: bool = False,
        reason: Annotated[str | None, Query(max_length=512)] = None,
    ) -> dict[str, Any]:
        if reveal and (who.role != "investigator" or not (reason or "").strip()):
            raise HTTPException(403 if who.role != "investigator" else 422, "reveal")
        missing = f"No tube with code '{tube_code}' was registered or reported."
        view = trace_view(trace_tube(gw, tube_code), who, reveal, missing)
        log.record(
            who,
            "trace",
            target=tube_code,
            person_ids=[p["person_id"] for p in view["persons"]],
            reason=reason if reveal else None,
            detail="revealed" if reveal else "masked",
        )
        return view

    return app


def _median_ms(fn: Any, args: list[Any]) -> float:
    out = []
    for a in args:
        t = time.perf_counter()
        fn(a)
        out.append((time.perf_counter() - t) * 1000)
    return pct(out, 0.5)


def thread_hop_ms(n: int = 2000) -> float:
    """One `run_in_threadpool` round trip of a no-op, on an event loop, median."""
    times: list[float] = []

    async def main() -> None:
        for _ in range(n):
            t = time.perf_counter()
            await anyio.to_thread.run_sync(lambda: None)
            times.append((time.perf_counter() - t) * 1000)

    anyio.run(main)
    return pct(times, 0.5)


def parts(gw: Gateway, who: Principal, codes: list[str]) -> dict[str, float]:
    """The server's work for one trace, part by part, in-process (median ms)."""
    traces = {c: trace_tube(gw, c) for c in codes}
    views = {c: trace_view(traces[c], who, False, "") for c in codes}
    valid = {c: TRACE_JSON.validate_python(views[c]) for c in codes}
    return {
        "driver_and_build_ms": _median_ms(lambda c: trace_tube(gw, c), codes),
        "view_ms": _median_ms(lambda c: trace_view(traces[c], who, False, ""), codes),
        "validate_ms": _median_ms(lambda c: TRACE_JSON.validate_python(views[c]), codes),
        "dump_json_ms": _median_ms(lambda c: TRACE_JSON.dump_json(valid[c]), codes),
        "json_dumps_ms": _median_ms(
            lambda c: json.dumps(views[c], ensure_ascii=False, separators=(",", ":")), codes
        ),
        "thread_hop_ms": thread_hop_ms(),
    }


def throughput(fn: Any, args: list[str], workers: int, seconds: float) -> float:
    done = [0] * workers
    stop = time.perf_counter() + seconds

    def run(w: int) -> None:
        rng = random.Random(w)
        while time.perf_counter() < stop:
            fn(w, rng.choice(args))
            done[w] += 1

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from bench.replay import _free_port, start_api
    from engine.access.keys import create_key
    from engine.server.managed import ManagedServer
    from engine.store.gateway import connect
    from engine.trace.build import all_tube_codes
    from loaders.bulk import bulk_load
    from loaders.generate import generate_city

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--work", type=Path, default=OUT / "http-work")
    args = parser.parse_args(argv)
    settings = Settings()
    if settings.neo4j_uri:
        sys.exit("runs its own managed server; unset NEO4J_URI")
    shutil.rmtree(args.work, ignore_errors=True)
    home, city = args.work / "home", args.work / "city"
    s = settings.model_copy(update={"home": home})
    generate_city(city, seed=2022, registrations=args.scale, positive_rate=0.01)
    bulk_load(s, "all", city, Console(file=io.StringIO()))
    server = ManagedServer(s)
    gw = connect(s)
    key = create_key(gw, role="investigator", district=None)
    who = Principal(key_id=key.key_id, role="investigator", district=None)
    codes = list(all_tube_codes(gw))
    rng = random.Random(3)
    sample = [rng.choice(codes) for _ in range(args.samples)]
    ports = {"before": _free_port(), "after": _free_port()}
    procs = {
        "before": start_api(
            home, ports["before"], args.work / "before.log", "bench.http:before_app"
        ),
        "after": start_api(home, ports["after"], args.work / "after.log"),
    }
    res: dict[str, Any] = {"scale": args.scale}
    try:
        clients = {
            name: [
                httpx.Client(
                    base_url=f"http://127.0.0.1:{port}",
                    headers={"Authorization": f"Bearer {key.secret}"},
                )
                for _ in range(2)
            ]
            for name, port in ports.items()
        }
        for code in sample[:200]:
            trace_many(gw, [code])
            for name in ports:
                clients[name][0].get(f"/v1/tubes/{code}/trace").raise_for_status()
        ms: dict[str, list[float]] = {"driver": [], "before": [], "after": []}
        mismatched = 0
        for code in sample:
            t = time.perf_counter()
            trace_many(gw, [code])
            ms["driver"].append((time.perf_counter() - t) * 1000)
            bodies = {}
            for name in ("before", "after"):
                t = time.perf_counter()
                resp = clients[name][0].get(f"/v1/tubes/{code}/trace")
                ms[name].append((time.perf_counter() - t) * 1000)
                resp.raise_for_status()
                bodies[name] = resp.content
            mismatched += bodies["before"] != bodies["after"]
        res["byte_identical"] = f"{len(sample) - mismatched}/{len(sample)}"
        for name, values in ms.items():
            res[f"{name}_p50_ms"] = pct(values, 0.5)
            res[f"{name}_p99_ms"] = pct(values, 0.99)
        for name in ("before", "after"):
            res[f"{name}_minus_driver_p50_ms"] = res[f"{name}_p50_ms"] - res["driver_p50_ms"]
        res["driver_traces_s"] = throughput(
            lambda w, c: trace_many(gw, [c]), codes, 2, args.seconds
        )
        for name in ("before", "after"):
            res[f"{name}_traces_s"] = throughput(
                lambda w, c, n=name: clients[n][w].get(f"/v1/tubes/{c}/trace").raise_for_status(),
                codes,
                2,
                args.seconds,
            )
        res["parts"] = parts(gw, who, sample[:300])
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(timeout=30)
        gw.close()
        server.stop()
    print_http(res)
    OUT.mkdir(exist_ok=True)
    (OUT / "http.json").write_text(json.dumps(res, indent=2))
    shutil.rmtree(args.work, ignore_errors=True)
    return res


def print_http(res: dict[str, Any]) -> None:
    table = Table(title=f"HTTP trace, before / after ({res['scale']:,} registrations)")
    table.add_column("figure")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    table.add_row(
        "HTTP p50 / p99 (ms)",
        f"{res['before_p50_ms']:.2f} / {res['before_p99_ms']:.2f}",
        f"{res['after_p50_ms']:.2f} / {res['after_p99_ms']:.2f}",
    )
    table.add_row(
        "HTTP minus driver p50 (ms, goal <=1)",
        f"{res['before_minus_driver_p50_ms']:.2f}",
        f"{res['after_minus_driver_p50_ms']:.2f}",
    )
    table.add_row(
        "traces/s, 2 workers",
        f"{res['before_traces_s']:.0f}",
        f"{res['after_traces_s']:.0f}",
    )
    table.add_row(
        "driver p50 (ms) / traces/s", f"{res['driver_p50_ms']:.2f}", f"{res['driver_traces_s']:.0f}"
    )
    table.add_row("answers byte-identical", res["byte_identical"], "")
    Console(width=120).print(table)
    parts_table = Table(title="a trace's server work, in-process (median ms)")
    parts_table.add_column("part")
    parts_table.add_column("ms", justify="right")
    for name, value in res["parts"].items():
        parts_table.add_row(name.removesuffix("_ms"), f"{value:.3f}")
    Console(width=120).print(parts_table)


if __name__ == "__main__":
    main()
