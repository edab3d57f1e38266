"""Everything the routes use, built once in the app's lifespan (no module-level globals)."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from feedlens.config import Settings
from feedlens.services.access import RateLimiter
from feedlens.services.coalescing import CoalescingIngestor
from feedlens.services.factory import Services
from feedlens.services.inference import InferenceGate
from feedlens.services.training.runs import RunQueue


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
    """What the API adds to the wired services (services/factory.py): admission, rate limits, request
    batching, training runs in the background, metrics and the session secret."""

    services: Services
    limiter: RateLimiter
    gate: InferenceGate
    coalescer: CoalescingIngestor  # batches concurrent POST /v1/images into shared forward passes
    metrics: Metrics
    runs: RunQueue
    ready: bool = False
    # Signs web-app session cookies (api/session.py). build_state passes the data folder's shared one
    # (Services.session_secret: every replica accepts every replica's cookies); a fresh one otherwise.
    session_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    # /readyz's blocking checks run here, never queued behind inference on the shared thread pool
    probes: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz"), repr=False
    )

    @property
    def settings(self) -> Settings:
        return self.services.settings
