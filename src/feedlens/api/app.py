"""The FastAPI app factory: wiring in the lifespan, routers, problem handlers, middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from feedlens.analyzers.registry import DEFAULT_ANALYZERS
from feedlens.api import problems, web
from feedlens.api.compat import gcv_router, rekognition_router
from feedlens.api.middleware import MetricsMiddleware, RequestGuard
from feedlens.api.routers import (
    analytics,
    analyze,
    batches,
    brands,
    categories,
    feedback,
    health,
    images,
    learning,
    models,
    review,
    search,
    session,
)
from feedlens.api.state import AppState, Metrics
from feedlens.config import Settings, load_settings
from feedlens.services.access import AccessService, RateLimiter
from feedlens.services.analytics import AnalyticsService
from feedlens.services.brands.service import BrandService
from feedlens.services.categories import build_categories
from feedlens.services.factory import build_services
from feedlens.services.feedback import CorrectionService, ReviewService
from feedlens.services.feedback.learning import ActiveLearning
from feedlens.services.fetch import SafeFetcher
from feedlens.services.inference import InferenceGate
from feedlens.services.ingest import CoalescingIngestor, Ingestor, chain_hooks
from feedlens.services.jobs import JobService
from feedlens.services.library import Library
from feedlens.services.search import build_search
from feedlens.services.training import RunQueue, TrainingService

log = logging.getLogger(__name__)


def build_state(settings: Settings, metrics: Metrics) -> AppState:
    services = build_services(settings)
    services.database.migrate()
    library = Library(services.database, services.blobs, services.decoder, settings)
    search = build_search(services)
    library.erasure_hooks.append(search.forget)
    categories = build_categories(services, search.encoder)
    brands = BrandService(services.database, services.blobs, services.decoder, settings)
    training = TrainingService(
        services.database, services.blobs, services.decoder, services.store, settings, categories
    )
    review = ReviewService(services.database, settings)
    fetcher = SafeFetcher(settings.fetch)
    ingestor = Ingestor(
        library,
        services.pipeline(DEFAULT_ANALYZERS),
        services.decoder,
        fetcher,
        settings.batch_size,
        after_commit=chain_hooks(
            search.after_ingest,
            categories.after_ingest,
            brands.after_ingest,
            training.server.after_ingest,
            review.after_ingest,
        ),
    )
    return AppState(
        settings=settings,
        services=services,
        library=library,
        access=AccessService(services.database),
        limiter=RateLimiter(settings.api.rate_per_minute, settings.api.burst),
        gate=InferenceGate(settings.api.inference_workers, settings.api.queue_size),
        fetcher=fetcher,
        ingestor=ingestor,
        coalescer=CoalescingIngestor(ingestor),
        jobs=JobService(library, ingestor),
        metrics=metrics,
        search=search,
        categories=categories,
        brands=brands,
        analytics=AnalyticsService(services.database, settings.review.hide_unreviewed),
        training=training,
        runs=RunQueue(),
        learning=ActiveLearning(services.database, training, settings),
        review=review,
        corrections=CorrectionService(services.database, categories, review),
    )


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(build_state, settings, metrics)
        app.state.feedlens = state
        await run_in_threadpool(state.ingestor.pipeline.load)  # models load before traffic, not on it
        state.ready = True
        if settings.jobs_worker:
            state.jobs.start()  # resumes jobs left pending by a previous run
        log.info("feedlens ready (%s database)", state.services.database.backend)
        try:
            yield
        finally:
            state.jobs.stop()
            state.runs.close()
            state.search.flush()
            state.gate.shutdown()
            state.fetcher.close()
            state.services.database.dispose()

    app = FastAPI(
        title="feedlens",
        version="0.1.0",
        summary="Recognise and categorise social-media images on your own machine.",
        lifespan=lifespan,
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
    app.include_router(rekognition_router.router)
    app.include_router(gcv_router.router)  # Google Cloud Vision REST (docs/compat.md)
    web.install(app)  # the web app at / (docs/ui.md)
    app.add_middleware(RequestGuard, max_bytes=settings.api.max_request_bytes)
    app.add_middleware(rekognition_router.RekognitionErrors)  # outside RequestGuard: rewrites its answers
    app.add_middleware(gcv_router.GoogleErrors)  # the same for the Google Cloud Vision paths
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory: `uvicorn --factory feedlens.api.app:app_from_environment`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(load_settings())
