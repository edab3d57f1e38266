"""Everything the routes use, built once in the app's lifespan (no module-level globals)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from feedlens.config import Settings
from feedlens.services.access import AccessService, RateLimiter
from feedlens.services.analytics import AnalyticsService
from feedlens.services.brands.service import BrandService
from feedlens.services.categories import CategoryService
from feedlens.services.factory import Services
from feedlens.services.feedback import CorrectionService, ReviewService
from feedlens.services.feedback.learning import ActiveLearning
from feedlens.services.fetch import SafeFetcher
from feedlens.services.inference import InferenceGate
from feedlens.services.ingest import CoalescingIngestor, Ingestor
from feedlens.services.jobs import JobService
from feedlens.services.library import Library
from feedlens.services.search import SearchService
from feedlens.services.training import RunQueue, TrainingService


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    images: Counter
    inflight: Gauge

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()  # our own, not prometheus_client's process-global default
        return cls(
            registry=registry,
            requests=Counter(
                "feedlens_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
            ),
            latency=Histogram(
                "feedlens_http_request_seconds",
                "HTTP request latency",
                ["route"],
                registry=registry,
                buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.3, 0.5, 1, 2.5, 5, 10),
            ),
            images=Counter("feedlens_images_analyzed", "images analysed through the API", registry=registry),
            inflight=Gauge(
                "feedlens_inference_admitted", "inference calls running or queued", registry=registry
            ),
        )


@dataclass
class AppState:
    settings: Settings
    services: Services
    library: Library
    access: AccessService
    limiter: RateLimiter
    gate: InferenceGate
    fetcher: SafeFetcher
    ingestor: Ingestor
    coalescer: CoalescingIngestor  # batches concurrent POST /v1/images into shared forward passes
    jobs: JobService
    metrics: Metrics
    search: SearchService
    categories: CategoryService
    brands: BrandService
    analytics: AnalyticsService
    training: TrainingService
    runs: RunQueue
    learning: ActiveLearning
    review: ReviewService
    corrections: CorrectionService
    ready: bool = False
    # Signs web-app session cookies (api/session.py). Per process: a restart logs browsers out, and no
    # secret has to be configured or kept; a FEEDLENS_ setting would let several servers share sessions.
    session_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
