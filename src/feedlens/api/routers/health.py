"""Liveness, readiness and Prometheus metrics (no key needed; expose them only where you scrape)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from feedlens.api.deps import State
from feedlens.api.problems import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: State) -> dict[str, str]:
    """Models loaded and the database answers: ready for traffic."""
    if not state.ready:
        raise Problem(503, "unavailable", "models are still loading")
    try:
        with state.services.database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise Problem(503, "unavailable", f"database unreachable: {type(exc).__name__}") from None
    return {"status": "ready", "database": state.services.database.backend}


@router.get("/metrics")
def metrics(state: State) -> Response:
    state.metrics.inflight.set(state.gate.admitted)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
