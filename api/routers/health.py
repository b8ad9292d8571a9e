"""Liveness and database reachability: 200 when Neo4j answers, 503 (with Retry-After) when not."""

from __future__ import annotations

from fastapi import APIRouter

from api import models
from api.deps import GatewayDep

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=models.Health)
def healthz(gw: GatewayDep) -> models.Health:
    gw.read("ping")  # DatabaseUnavailable -> 503 database_unavailable, Retry-After
    return models.Health(status="ok", neo4j="up")
