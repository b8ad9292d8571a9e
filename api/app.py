"""FastAPI app: thin views over engine functions, one router per resource. No Cypher here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import console, docs, errors
from api.metrics import Metrics, observe_request
from api.middleware import NoStore
from api.observe import RequestLog, setup_logging
from api.routers import analysis as analysis_routes
from api.routers import audit as audit_routes
from api.routers import health, ingest, persons, positives, quarantine, reports, tasks, tubes
from api.routers import metrics as metrics_routes
from api.routers import status as status_routes
from api.security import KeyCache, RateLimiter
from engine.access import audit
from engine.ops import jobs, retention
from engine.push import webhooks
from engine.settings import Settings, get_settings
from engine.store.gateway import Gateway, connect
from engine.usecases import writes

log = logging.getLogger("tubetrace.api")

ROUTERS = (
    health.router,
    tubes.router,
    ingest.router,
    quarantine.router,
    tasks.router,
    positives.router,
    persons.router,
    analysis_routes.router,  # before reports: /v1/reports/signals is not a daily report
    reports.router,
    audit_routes.router,
    status_routes.router,
    metrics_routes.router,
)


def create_app(settings: Settings | None = None, gateway: Gateway | None = None) -> FastAPI:
    settings = settings or get_settings()
    setup_logging(settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = gateway is None
        # A database that is down at launch is an outage like any other: the API starts,
        # answers 503 meanwhile, and applies the schema when the database first answers.
        app.state.gateway = gateway or connect(settings, wait=False)
        app.state.settings = settings
        app.state.rate_limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)
        app.state.key_cache = KeyCache(settings.key_cache_ttl_s)
        app.state.metrics = Metrics(app.state.gateway, settings)
        app.state.audit = audit.AuditWriter(
            app.state.gateway, settings.home, fsync=settings.audit_fsync
        )
        # Once across every API process (engine.ops.jobs, a lease in the database): webhook
        # deliveries, off the request path in the worker's own threads, and the audit log's
        # retention, daily.
        gw = app.state.gateway
        app.state.jobs = jobs.Jobs(
            gw,
            webhooks=(lambda: webhooks.Worker(gw, settings).start())
            if settings.webhooks_enabled
            else None,
            daily={"audit-retention": lambda: audit.prune(gw, settings.audit_retention_days)},
        ).start()
        # The daily retention run (docs/retention.md): on when TUBETRACE_RETENTION_DAYS is set.
        purges = (
            retention.Job(
                app.state.gateway,
                settings,
                lambda today, on_batch: writes.purge_retention(
                    app.state.gateway,
                    app.state.audit,
                    retention.SYSTEM,
                    keep_days=settings.retention_days,
                    tz=settings.timezone,
                    today=today,
                    on_batch=on_batch,
                ),
            ).start()
            if retention.job_enabled(settings)
            else None
        )
        try:
            yield
        finally:
            if purges is not None:
                purges.close()
            app.state.jobs.close()
            app.state.audit.close()
            if own:
                app.state.gateway.close()

    app = FastAPI(
        title="tubetrace",
        version="0.1.0",
        lifespan=lifespan,
        responses=errors.OPENAPI_ERRORS,
        docs_url=None,  # served by api.docs from the package's own assets
        redoc_url=None,
        description="Traceback of pooled PCR tubes: tube -> box -> compound -> persons.",
    )
    errors.install(app)
    app.add_middleware(NoStore)
    docs.install(app)
    for router in ROUTERS:
        app.include_router(router)
    console.mount(app)
    # Added last: the outermost middleware, so that every answer carries the request id and
    # every request, refused or not, is logged and counted once.
    app.add_middleware(RequestLog, observe=observe_request)
    return app
