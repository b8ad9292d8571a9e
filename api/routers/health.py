"""Liveness and database reachability."""

from __future__ import annotations

from fastapi import APIRouter

from api import models
from api.deps import GatewayDep

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=models.Health)
def healthz(gw: GatewayDep) -> models.Health:
    try:
        gw.read("ping")
        return models.Health(status="ok", neo4j="up")
    except Exception:  # noqa: BLE001 - liveness must answer whatever the driver raises
        return models.Health(status="degraded", neo4j="down")
