"""Liveness, readiness and Prometheus metrics (no key needed; expose them only where you scrape).

Both probes stay off the inference path: `/healthz` runs on the event loop itself, and `/readyz` does its
blocking checks (a database query, a probe file) on a thread pool of its own, so a burst of analysis
requests queued on the shared pool cannot make the orchestrator think the process hung.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from feedlens.api.deps import State
from feedlens.api.problems import Problem
from feedlens.api.state import AppState
from feedlens.core.errors import StorageError

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _readiness(state: AppState) -> str | None:
    """Why the server cannot take traffic, or None: the database answers and the data folder takes a
    write (a full or read-only disk makes every upload fail, so a load balancer should look elsewhere)."""
    try:
        with state.services.database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"database unreachable: {type(exc).__name__}"
    try:
        state.services.check_storage()
    except StorageError as exc:
        return exc.message
    return None


@router.get("/readyz")
async def readyz(state: State) -> dict[str, str]:
    """Models loaded, the database answers and the data folder is writable: ready for traffic."""
    if not state.ready:
        raise Problem(503, "unavailable", "models are still loading")
    problem = await asyncio.get_running_loop().run_in_executor(state.probes, _readiness, state)
    if problem is not None:
        raise Problem(503, "unavailable", problem)
    return {"status": "ready", "database": state.services.database.backend}


@router.get("/metrics")
def metrics(state: State) -> Response:
    state.metrics.inflight.set(state.gate.admitted)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
