"""The FastAPI app factory: wiring in the lifespan, routers, problem handlers, middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from feedlens.api import problems, web
from feedlens.api.compat import gcv_router, rekognition_router
from feedlens.api.middleware import JsonDepthGuard, MetricsMiddleware, RequestGuard
from feedlens.api.routers import (
    analytics,
    analyze,
    batches,
    brands,
    categories,
    feedback,
    health,
    images,
    insights,
    learning,
    models,
    people,
    review,
    search,
    session,
)
from feedlens.api.state import AppState, Metrics
from feedlens.config import Settings, load_settings
from feedlens.services.coalescing import CoalescingIngestor
from feedlens.services.factory import Services, build_services
from feedlens.services.inference import InferenceGate
from feedlens.services.training.runs import RunQueue

log = logging.getLogger(__name__)


def build_state(services: Services, metrics: Metrics) -> AppState:
    """The API's state over the wired services; the schema is brought up to date first."""
    settings = services.settings
    services.database.migrate()
    return AppState(
        services=services,
        limiter=services.rate_limiter(),
        gate=InferenceGate(settings.api.inference_workers, settings.api.queue_size),
        coalescer=CoalescingIngestor(services.default_ingestor),
        metrics=metrics,
        runs=RunQueue(),
        session_secret=services.session_secret(),
    )


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The app over `services` (the CLI passes the ones it already loaded for `serve --demo`), or over
    services built from `settings` in the lifespan."""
    metrics = Metrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        wired = services if services is not None else await run_in_threadpool(build_services, settings)
        state = await run_in_threadpool(build_state, wired, metrics)
        app.state.feedlens = state
        await run_in_threadpool(wired.ingest_pipeline.load)  # models load before traffic, not on it
        state.ready = True
        if settings.jobs_worker:
            wired.jobs.start()  # resumes jobs left pending by a previous run
        log.info("feedlens ready (%s database)", wired.database.backend)
        try:
            yield
        finally:
            state.runs.close()
            state.gate.shutdown()
            state.probes.shutdown(wait=False)
            wired.close()

    app = FastAPI(
        title="feedlens",
        version="0.1.0",
        summary="Recognise and categorise social-media images on your own machine.",
        lifespan=lifespan,
        # the docs pages are the web module's: FastAPI's own load Swagger UI and ReDoc from a CDN
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    for module in (
        health,
        analyze,
        images,
        batches,
        search,
        categories,
        brands,
        models,
        learning,
        analytics,
        session,
    ):
        app.include_router(module.router)
    for module in (feedback, review):  # issue 8: corrections and the moderation review queue
        app.include_router(module.router)
    app.include_router(insights.router)  # audience insights (docs/insights.md)
    app.include_router(people.router)  # people from faces, opt-in per workspace (docs/faces.md)
    app.include_router(rekognition_router.router)
    app.include_router(gcv_router.router)  # Google Cloud Vision REST (docs/compat.md)
    web.install(app)  # the web app at / (docs/ui.md)
    app.add_middleware(JsonDepthGuard)  # inside the size cap: it buffers a body already known to fit
    app.add_middleware(RequestGuard, max_bytes=settings.api.max_request_bytes)
    app.add_middleware(rekognition_router.RekognitionErrors)  # outside RequestGuard: rewrites its answers
    app.add_middleware(gcv_router.GoogleErrors)  # the same for the Google Cloud Vision paths
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory: `uvicorn --factory feedlens.api.app:app_from_environment`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(load_settings())
