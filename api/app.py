"""FastAPI app: thin views over engine functions. No Cypher here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import models
from api.security import KeyCache, RateLimiter, require
from engine import audit, reports, tasks
from engine.db import Gateway, connect, split_page
from engine.errors import DatabaseUnavailable, NotFound, TransitionError, TubetraceError
from engine.keys import Principal
from engine.settings import Settings, get_settings
from engine.trace import trace_tube
from engine.views import person_view, trace_view
from loaders import write

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_ROWS = 5000
MAX_STRING = 512


class BodyLimit:
    """Refuse a request body over the limit whole, before anything is parsed or written."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(self.limit, send)


class _BodyTooLarge(Exception):
    pass


async def _too_large(limit: int, send: Send) -> None:
    body = JSONResponse(
        status_code=413,
        content={
            "error": "payload_too_large",
            "message": f"The request body is larger than {limit} bytes; nothing was stored. "
            "Send it in smaller batches.",
        },
    )
    await body({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def get_gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def get_audit(request: Request) -> audit.AuditWriter:
    writer: audit.AuditWriter = request.app.state.audit
    return writer


def get_app_settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
AuditDep = Annotated[audit.AuditWriter, Depends(get_audit)]
Reader = Annotated[Principal, Depends(require("investigator", "district"))]
Investigator = Annotated[Principal, Depends(require("investigator"))]
Collector = Annotated[Principal, Depends(require("collector"))]
Lab = Annotated[Principal, Depends(require("lab"))]
Admin = Annotated[Principal, Depends(require("admin"))]
RevealQ = Annotated[bool, Query(description="investigators only: unmasked identity")]
ReasonQ = Annotated[
    str | None, Query(max_length=MAX_STRING, description="why identity is revealed (audited)")
]


def check_reveal(who: Principal, reveal: bool, reason: str | None) -> None:
    if not reveal:
        return
    if who.role != "investigator":
        raise HTTPException(403, "Only investigator keys may ask for reveal=true.")
    if not reason or not reason.strip():
        raise HTTPException(422, "reveal=true needs a reason=TEXT; the read is audited.")


def _check_batch(records: list[dict[str, Any]]) -> None:
    if len(records) > MAX_ROWS:
        raise models.LimitExceeded(
            f"The batch has {len(records)} records; at most {MAX_ROWS} are accepted per request. "
            "Nothing was stored."
        )
    for i, rec in enumerate(records):
        for key, value in rec.items():
            if isinstance(value, str) and len(value) > MAX_STRING:
                raise models.LimitExceeded(
                    f"Record {i}, field '{key}' is {len(value)} characters long; at most "
                    f"{MAX_STRING} are accepted. Nothing was stored."
                )


def create_app(settings: Settings | None = None, gateway: Gateway | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = gateway is None
        app.state.gateway = gateway or connect(settings)
        app.state.settings = settings
        app.state.rate_limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)
        app.state.key_cache = KeyCache(settings.key_cache_ttl_s)
        audit.prune(app.state.gateway, settings.audit_retention_days)
        app.state.audit = audit.AuditWriter(app.state.gateway)
        try:
            yield
        finally:
            app.state.audit.close()
            if own:
                app.state.gateway.close()

    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": models.Error, "description": text}
        for code, text in (
            (401, "no key, or an unknown or revoked key"),
            (403, "the key's role may not"),
            (404, "absent, or outside the key's district"),
            (409, "a transition not allowed"),
            (413, "over a size limit; nothing stored"),
            (422, "invalid request"),
            (429, "too many requests for this key"),
            (503, "Neo4j does not answer"),
        )
    }
    app = FastAPI(
        title="tubetrace",
        version="0.1.0",
        lifespan=lifespan,
        responses=errors,
        description="Traceback of pooled PCR tubes: tube -> box -> compound -> persons.",
    )
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"error": "not_found", "message": str(exc)})

    @app.exception_handler(TransitionError)
    async def conflict(_: Request, exc: TransitionError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"error": "conflict", "message": str(exc)})

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        names = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            409: "conflict",
            413: "payload_too_large",
            422: "invalid",
            429: "rate_limited",
        }
        return JSONResponse(
            status_code=exc.status_code,
            headers=exc.headers,
            content={"error": names.get(exc.status_code, "error"), "message": str(exc.detail)},
        )

    @app.exception_handler(models.LimitExceeded)
    async def limit(_: Request, exc: models.LimitExceeded) -> JSONResponse:
        return JSONResponse(
            status_code=413, content={"error": "limit_exceeded", "message": str(exc)}
        )

    @app.exception_handler(DatabaseUnavailable)
    async def unavailable(_: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return JSONResponse(
            status_code=503, content={"error": "database_unavailable", "message": str(exc)}
        )

    @app.exception_handler(TubetraceError)
    async def other(_: Request, exc: TubetraceError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": "invalid", "message": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            status_code=422,
            content={
                "error": "invalid_request",
                "message": f"The request is not valid at {where or 'body'}: "
                f"{first.get('msg', 'invalid')}. Nothing was stored.",
                "details": [
                    {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg")}
                    for e in exc.errors()[:20]
                ],
            },
        )

    @app.get("/healthz", response_model=models.Health, tags=["ops"])
    def healthz(gw: GatewayDep) -> models.Health:
        try:
            gw.read("ping")
            return models.Health(status="ok", neo4j="up")
        except Exception:  # noqa: BLE001 - liveness must answer whatever the driver raises
            return models.Health(status="degraded", neo4j="down")

    @app.get("/v1/tubes/{tube_code}/trace", response_model=models.Trace, tags=["trace"])
    def get_trace(
        tube_code: str,
        gw: GatewayDep,
        who: Reader,
        log: AuditDep,
        reveal: RevealQ = False,
        reason: ReasonQ = None,
    ) -> dict[str, Any]:
        check_reveal(who, reveal, reason)
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

    def _load(
        kind: str,
        records: list[dict[str, Any]],
        gw: Gateway,
        s: Settings,
        who: Principal,
        log: audit.AuditWriter,
    ) -> models.LoadAnswer:
        _check_batch(records)
        items = [(i, rec) for i, rec in enumerate(records)]
        summary = write.load_records(gw, kind, items, "request", s, keep_outcomes=True)
        log.record(who, f"load_{kind}", target=f"{len(records)} records", detail=summary.line())
        return models.LoadAnswer(
            summary=models.LoadSummary(**summary.counts()),
            outcomes=[
                models.RecordOutcome(
                    index=o.line or 0, key=o.key, status=o.status, flags=o.flags, reason=o.reason
                )
                for o in summary.outcomes
            ],
        )

    @app.post("/v1/registrations", response_model=models.LoadAnswer, tags=["load"])
    def post_registrations(
        body: list[models.RegistrationIn],
        gw: GatewayDep,
        s: SettingsDep,
        who: Collector,
        log: AuditDep,
    ) -> models.LoadAnswer:
        return _load(
            "registrations", [r.model_dump(exclude_none=True) for r in body], gw, s, who, log
        )

    @app.post("/v1/results", response_model=models.LoadAnswer, tags=["load"])
    def post_results(
        body: list[models.ResultIn], gw: GatewayDep, s: SettingsDep, who: Lab, log: AuditDep
    ) -> models.LoadAnswer:
        return _load("results", [r.model_dump(exclude_none=True) for r in body], gw, s, who, log)

    @app.get("/v1/quarantine", response_model=models.QuarantinePage, tags=["load"])
    def get_quarantine(
        gw: GatewayDep,
        who: Investigator,
        log: AuditDep,
        cursor: Annotated[str, Query(max_length=64)] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        items = write.list_quarantine(gw, after=cursor, limit=limit + 1)
        log.record(who, "quarantine", target=f"after {cursor or 'start'}")
        items, more = split_page(items, limit)
        for item in items:
            item["at"] = item["at"].to_native().isoformat() if item.get("at") else None
        return {"items": items, "next_cursor": items[-1]["qkey"] if more else None}

    @app.get("/v1/districts/{district_code}/tasks", response_model=models.TaskPage, tags=["tasks"])
    def get_district_tasks(
        district_code: Annotated[str, Path(pattern=r"^(\d{6}|unassigned)$")],
        gw: GatewayDep,
        who: Reader,
        log: AuditDep,
        status: Annotated[str | None, Query(max_length=32)] = None,
        cursor: Annotated[str, Query(max_length=128)] = "",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        reveal: RevealQ = False,
        reason: ReasonQ = None,
    ) -> dict[str, Any]:
        check_reveal(who, reveal, reason)
        if who.role == "district" and district_code != who.district:
            raise NotFound(f"No district '{district_code}'.")
        items, next_cursor = tasks.tasks_page(gw, district_code, status, cursor, limit)
        for item in items:
            if item["person"] is not None:
                item["person"] = person_view(item["person"], who, reveal)
        log.record(
            who,
            "district_tasks",
            target=district_code,
            person_ids=[i["person"]["person_id"] for i in items if i["person"]],
            reason=reason if reveal else None,
        )
        return {"items": items, "next_cursor": next_cursor}

    @app.post("/v1/tasks/{task_id}/transitions", response_model=models.Task, tags=["tasks"])
    def post_transition(
        task_id: Annotated[str, Path(max_length=64)],
        body: models.TransitionIn,
        gw: GatewayDep,
        who: Reader,
        log: AuditDep,
    ) -> dict[str, Any]:
        tasks.transition(gw, task_id, who, body.to, body.outcome, body.note)
        task = tasks.get_task(gw, task_id, who)
        if task["person"] is not None:
            task["person"] = person_view(task["person"], who, False)
        log.record(
            who,
            "task_transition",
            target=task_id,
            person_ids=[task["person"]["person_id"]] if task["person"] else [],
            detail=f"to {body.to}" + (f" ({body.outcome})" if body.outcome else ""),
        )
        return task

    @app.get("/v1/positives", response_model=models.PositivesPage, tags=["tasks"])
    def get_positives(
        gw: GatewayDep,
        who: Reader,
        log: AuditDep,
        date: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")],
        cursor: Annotated[str, Query(max_length=128)] = "",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        reveal: RevealQ = False,
        reason: ReasonQ = None,
    ) -> dict[str, Any]:
        check_reveal(who, reveal, reason)
        district = who.district if who.role == "district" else None
        items, next_cursor = reports.positives_page(gw, date, district, cursor, limit)
        for item in items:
            item["trace"]["persons"] = [
                person_view(p, who, reveal) for p in item["trace"]["persons"]
            ]
        log.record(
            who,
            "positives",
            target=date,
            person_ids=[p["person_id"] for i in items for p in i["trace"]["persons"]],
            reason=reason if reveal else None,
        )
        return {"items": items, "next_cursor": next_cursor}

    @app.get("/v1/persons/{person_id}/rings", response_model=models.Rings, tags=["tasks"])
    def get_rings(
        person_id: Annotated[str, Path(max_length=64)],
        gw: GatewayDep,
        who: Investigator,
        log: AuditDep,
        cursor: Annotated[str, Query(max_length=128)] = "",
        limit: Annotated[int, Query(ge=1, le=reports.RING2_MAX_PAGE)] = 100,
        depth: Annotated[int, Query(ge=1, le=2)] = 2,
        reveal: RevealQ = False,
        reason: ReasonQ = None,
    ) -> dict[str, Any]:
        check_reveal(who, reveal, reason)
        answer = reports.rings(gw, person_id, cursor, limit)
        answer["ring1"] = [person_view(p, who, reveal) for p in answer["ring1"]]
        if depth < 2:
            answer["ring2"] = {"items": [], "next_cursor": None}
        answer["ring2"]["items"] = [person_view(p, who, reveal) for p in answer["ring2"]["items"]]
        log.record(
            who,
            "rings",
            target=person_id,
            person_ids=[p["person_id"] for p in answer["ring1"]]
            + [p["person_id"] for p in answer["ring2"]["items"]],
            reason=reason if reveal else None,
        )
        return answer

    @app.get("/v1/reports/{report}", response_model=models.Report, tags=["reports"])
    def get_report(
        report: Annotated[
            str,
            Path(
                pattern=r"^(completeness|household-separation|"
                r"zoning|timeliness)$"
            ),
        ],
        gw: GatewayDep,
        s: SettingsDep,
        who: Reader,
        log: AuditDep,
        date: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")],
    ) -> dict[str, Any]:
        district = who.district if who.role == "district" else None
        rows = reports.run_report(gw, report, date, s.timezone, district)
        log.record(who, f"report_{report}", target=date)
        return {"report": report, "date": date, "items": rows, "next_cursor": None}

    @app.get("/v1/audit", response_model=models.AuditPage, tags=["security"])
    def get_audit(
        gw: GatewayDep,
        who: Admin,
        log: AuditDep,
        since: datetime | None = None,
        key: Annotated[str | None, Query(max_length=64)] = None,
        cursor: Annotated[str, Query(max_length=64)] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        if since is not None and since.tzinfo is None:
            raise HTTPException(422, "since needs a UTC offset, e.g. 2022-04-09T00:00:00+08:00.")
        log.flush()
        rows = audit.entries(gw, since=since, key_id=key, after=cursor, limit=limit + 1)
        rows, more = split_page(rows, limit)
        return {"items": rows, "next_cursor": rows[-1]["audit_id"] if more else None}

    return app
