"""The one place objects are wired together, for the API and the CLI alike.

settings -> model store -> decoder -> analyzers -> pipelines, and settings -> database + blob store ->
library, search, categories, brands, training, review ... Every component is built on first use and then
shared, so `feedlens keys create` touches only the database, a server that never trains never imports
torch, and one text encoder serves search, categories and analysis.

Heavy modules are imported inside the builders below, never at the top of this file.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedlens.analyzers.registry import analyzer_type, check_names, enabled_analyzers, resolve
from feedlens.config import Settings
from feedlens.core.errors import UnknownAnalyzerError
from feedlens.core.files import check_writable
from feedlens.images import ImageDecoder
from feedlens.runtime.manifest import Manifest
from feedlens.runtime.store import ModelStore
from feedlens.storage.blobs import BlobStore
from feedlens.storage.database import Database

if TYPE_CHECKING:
    import numpy as np

    from feedlens.analyzers.base import Analyzer
    from feedlens.core.filters import ImageFilter
    from feedlens.core.vocabulary import Vocabulary
    from feedlens.runtime.calibration import Measurement
    from feedlens.runtime.text_encoder import TextEncoder
    from feedlens.services.access import AccessService, RateLimiter
    from feedlens.services.analytics import AnalyticsService
    from feedlens.services.brands.service import BrandService
    from feedlens.services.categories import CategoryService
    from feedlens.services.faces.identity import FaceIdentityService
    from feedlens.services.faces.people import PeopleService
    from feedlens.services.feedback import CorrectionService, ReviewService
    from feedlens.services.feedback.learning import ActiveLearning
    from feedlens.services.fetch import SafeFetcher
    from feedlens.services.ingest import Ingestor
    from feedlens.services.insights import InsightsService
    from feedlens.services.jobs import JobService
    from feedlens.services.library import Library
    from feedlens.services.pipeline import Pipeline
    from feedlens.services.search import SearchService
    from feedlens.services.training import TrainingService

log = logging.getLogger(__name__)

CommitHook = Callable[[int, list[str]], None]


class Services:
    """The wired application. Core parts are made at once (cheap: nothing connects or loads); every
    other component is a cached property built on first use, thread-safely, and shared afterwards."""

    def __init__(
        self,
        settings: Settings,
        store: ModelStore,
        decoder: ImageDecoder,
        database: Database,
        blobs: BlobStore,
    ) -> None:
        self.settings = settings
        self.store = store
        self.decoder = decoder
        self.database = database
        self.blobs = blobs
        # Analyzer instances shared by every pipeline made with the service's own settings, so a server
        # holding pipelines for several analyzer subsets loads each model once.
        self._analyzers: dict[str, Analyzer[Any, Any]] = {}
        self._lock = threading.RLock()  # builders may build what they depend on

    def with_settings(self, settings: Settings | None = None) -> Services:
        """A fresh wiring (no component carried over: as after a restart), with other settings if given.
        The model store and decoder are shared; so are the database and blob store unless `settings`
        name another database or data folder (then the caller migrates the new database)."""
        settings = settings or self.settings
        same_db = settings.database == self.settings.database
        database = self.database if same_db else Database(settings.database)
        same_blobs = settings.blobs_dir == self.settings.blobs_dir
        blobs = self.blobs if same_blobs else BlobStore(settings.blobs_dir)
        fresh = Services(settings, self.store, self.decoder, database, blobs)
        # Where only the data location differs, the loaded models carry over (they hold no data).
        if _models_of(settings) == _models_of(self.settings):
            fresh._analyzers = self._analyzers
            if "text_encoder" in self.__dict__:
                fresh.__dict__["text_encoder"] = self.text_encoder
        return fresh

    # -- pipelines ------------------------------------------------------------------------------------
    @cached_property
    def analyzers(self) -> tuple[str, ...]:
        """The analyzers switched on (FEEDLENS_ANALYZERS, default all): what ingest runs."""
        return enabled_analyzers(self.settings.analyzers)

    def followers(self, name: str) -> list[str]:
        """The analyzers switched on whose results change with `name`'s (they depend on it or draw on it,
        directly or through another): refreshed whenever it is."""
        found: list[str] = []
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for n in self.analyzers:
                cls = analyzer_type(n)
                if n not in found and n != name and current in (*cls.depends_on, *cls.uses, *cls.reads):
                    found.append(n)
                    frontier.append(n)
        return [n for n in self.analyzers if n in found]

    def pipeline(
        self,
        analyzer_names: Sequence[str] | None = None,
        settings: Settings | None = None,
        decode_like_ingest: bool = False,
        helpers: bool = True,
    ) -> Pipeline:
        """A pipeline for these analyzers (default: every one switched on); `settings` overrides the
        service's own for this pipeline only. `helpers`: analyzers the named ones draw on when present
        (labels uses faces, objects and poses) run too if switched on; off for a bare, cheaper pipeline.

        `decode_like_ingest`: decode at the size ingest decodes at. Results that are compared with stored
        ones (visual vectors of an upload, reanalysis) depend on the decoded size (JPEG draft scale, box
        reduction): "similar to this photo" must find the photo itself at cosine 1.0, not 0.94.
        """
        from feedlens.services.pipeline import Pipeline

        if analyzer_names is None:
            analyzer_names = self.analyzers
        if not analyzer_names:
            raise UnknownAnalyzerError("no analyzer selected")
        names = resolve(check_names(analyzer_names, self.analyzers), self.analyzers if helpers else ())
        if settings is None:
            with self._lock:
                for name in names:
                    if name not in self._analyzers:
                        self._analyzers[name] = analyzer_type(name)(self.store, self.settings)
                analyzers = [self._analyzers[n] for n in names]
        else:
            analyzers = [analyzer_type(n)(self.store, settings) for n in names]
        threads = (settings or self.settings).threads_per_worker
        pipeline = Pipeline(self.decoder, analyzers, threads=threads, report=analyzer_names)
        if decode_like_ingest:
            pipeline.decode_size = max(pipeline.decode_size, self.ingest_pipeline.decode_size)
        return pipeline

    @cached_property
    def ingest_pipeline(self) -> Pipeline:
        """The analyzers switched on: what ingest, jobs and the demo run."""
        return self.pipeline(self.analyzers)

    @cached_property
    def upload_pipeline(self) -> Pipeline:
        """`labels` alone, decoded as ingest decodes: the visual vector of an upload ("similar to this")."""
        return self.pipeline(["labels"], decode_like_ingest=True, helpers=False)

    def visual_vector(self, source: bytes | Path, name: str = "") -> np.ndarray:
        """The unit visual vector (1280,) of an image that is not stored, computed exactly as for stored
        ones ("similar to this photo"); a bad image raises its ImageError."""
        from feedlens.core.results import LabelsResult
        from feedlens.services.search import visual_vector

        report = self.upload_pipeline.analyze_one(source, name)
        labels = report.results.get("labels")
        if not report.ok or not isinstance(labels, LabelsResult):
            raise report.failure()
        return visual_vector(labels)

    @cached_property
    def current_versions(self) -> dict[str, str]:
        """Analyzer -> the version the default pipeline would store now (to mark stored results stale)."""
        return self.ingest_pipeline.versions()

    # -- components -----------------------------------------------------------------------------------
    @cached_property
    def access(self) -> AccessService:
        from feedlens.services.access import AccessService

        return AccessService(self.database)

    @cached_property
    def vocabulary(self) -> Vocabulary:
        """The everyday label vocabulary (package data), for filters, trends and the cloud APIs."""
        from feedlens.core.vocabulary import Vocabulary

        return Vocabulary.load()

    def resolve_filters(self, filters: ImageFilter) -> ImageFilter:
        """What a `label=` filter means: the everyday labels its word names (with their aliases and
        plurals: "kittens" is Cat) and the word itself as a raw class name ("tabby")."""
        if not filters.label:
            return filters
        ids = self.vocabulary.find(filters.label)
        return dataclasses.replace(filters, label_terms=(*ids, filters.label.strip().lower()))

    @cached_property
    def text_encoder(self) -> TextEncoder:
        """The one text encoder, shared by search, categories and `analyze`: the CLIP text tower when
        FEEDLENS_CLIP__* names a CLIP model (its image tower makes the content vectors), else MiniLM."""
        threads = self.settings.threads_per_worker
        if self.settings.clip.enabled:
            from feedlens.runtime.clip import ClipTextEncoder, clip_models

            return ClipTextEncoder(clip_models(self.settings.clip, threads))
        from feedlens.runtime.text_encoder import MiniLMEncoder

        return MiniLMEncoder(self.store, threads=threads)

    @cached_property
    def library(self) -> Library:
        from feedlens.services.library import Library

        with self._lock:
            library = Library(self.database, self.blobs, self.decoder, self.settings)
            # erasure reaches the search indexes from every entry point, CLI included
            library.erasure_hooks.append(self._forget_in_search)
            return library

    def _forget_in_search(self, workspace: int, image_ids: Sequence[str]) -> None:
        # bound late: building the library must not build search (and load its text encoder)
        self.search.forget(workspace, image_ids)

    @cached_property
    def search(self) -> SearchService:
        from feedlens.index.store import IndexStore
        from feedlens.services.search import SearchService

        with self._lock:
            indexes = IndexStore(self.settings.index_dir, backend=self.settings.search.backend)
            encoder = self.text_encoder
            return SearchService(self.database, indexes, encoder, self.settings, encoder.version)

    @cached_property
    def categories(self) -> CategoryService:
        from feedlens.services.categories import CategoryService, TaxonomyCompiler

        with self._lock:
            compiler = TaxonomyCompiler(self.store, self.text_encoder)
            # the registry's production model drives the categories (services/categories/models.py)
            models = lambda: self.training.category_models  # noqa: E731
            return CategoryService(self.database, compiler, self.settings, models=models)

    @cached_property
    def brands(self) -> BrandService:
        from feedlens.services.brands.service import BrandService

        return BrandService(self.database, self.blobs, self.decoder, self.settings)

    @cached_property
    def training(self) -> TrainingService:
        from feedlens.services.training import TrainingService

        # the category service (and its text encoder) is built only when a dataset needs the taxonomy
        return TrainingService(
            self.database, self.blobs, self.decoder, self.store, self.settings, lambda: self.categories
        )

    @cached_property
    def review(self) -> ReviewService:
        from feedlens.services.feedback import ReviewService

        return ReviewService(self.database, self.settings)

    @cached_property
    def corrections(self) -> CorrectionService:
        from feedlens.services.feedback import CorrectionService

        with self._lock:
            return CorrectionService(self.database, self.categories, self.review)

    @cached_property
    def learning(self) -> ActiveLearning:
        from feedlens.services.feedback.learning import ActiveLearning

        with self._lock:
            return ActiveLearning(self.database, self.training, self.settings)

    @cached_property
    def analytics(self) -> AnalyticsService:
        from feedlens.services.analytics import AnalyticsService

        return AnalyticsService(self.database, self.settings.review.hide_unreviewed, self.vocabulary)

    @cached_property
    def insights(self) -> InsightsService:
        """Audience insights (docs/insights.md): sentiment, monitoring, alerts, places, recommendations."""
        from feedlens.services.insights import InsightsService

        return InsightsService(self.database, self.blobs, self.settings)

    @cached_property
    def face_identity(self) -> FaceIdentityService:
        """Face identity (docs/faces.md): off per workspace until switched on; faceres loads on first use."""
        from feedlens.services.faces.identity import build_identity

        return build_identity(self.database, self.store, self.settings.threads_per_worker)

    @cached_property
    def face_people(self) -> PeopleService:
        """People from faces (docs/faces.md): only for workspaces that switched face identity on."""
        from feedlens.services.faces.people import PeopleService

        with self._lock:
            return PeopleService(self.face_identity, self.database, self.blobs, self.decoder)

    @cached_property
    def fetcher(self) -> SafeFetcher:
        from feedlens.services.fetch import SafeFetcher

        return SafeFetcher(self.settings.fetch)

    # -- ingest ---------------------------------------------------------------------------------------
    @cached_property
    def after_ingest(self) -> CommitHook:
        """What every committed ingest batch triggers, in this order."""
        from feedlens.services.ingest import chain_hooks

        with self._lock:
            return chain_hooks(
                self.search.after_ingest,  # captions fused into search vectors
                self.categories.after_ingest,  # zero-shot / trained categories
                self.brands.after_ingest,  # logos and mentions
                self.training.server.after_ingest,  # the production model's predictions (A/B)
                self.review.after_ingest,  # the moderation review queue
                self.insights.after_ingest,  # sentiment, places and alert rules (after brands)
                self.face_people.after_ingest,  # people from faces, where identity is on (docs/faces.md)
            )

    def ingestor(self, analyzer_names: Sequence[str] | None = None) -> Ingestor:
        """An ingestor over the default analyzers (with every after-ingest hook), or over a custom set
        (no hooks: a custom set stores only what was asked for)."""
        from feedlens.services.ingest import Ingestor

        if analyzer_names is None:
            return self.default_ingestor
        pipeline = self.pipeline(analyzer_names)
        return Ingestor(self.library, pipeline, self.fetcher, self.settings.batch_size)

    @cached_property
    def default_ingestor(self) -> Ingestor:
        from feedlens.services.ingest import Ingestor

        with self._lock:
            return Ingestor(
                self.library, self.ingest_pipeline, self.fetcher, self.settings.batch_size, self.after_ingest
            )

    @cached_property
    def jobs(self) -> JobService:
        from feedlens.services.jobs import JobService

        with self._lock:
            return JobService(self.library, self.default_ingestor)

    def calibrate_batches(self) -> list[Measurement]:
        """Measure the best forward batch of every batched model the switched-on analyzers use, on this
        machine and thread count, and record it for them (runtime/calibration.py)."""
        from feedlens.runtime.calibration import calibrate

        models: dict[str, tuple[int, ...] | None] = {}
        for analyzer in self.pipeline(self.analyzers).analyzers:
            model = analyzer.batch_model()
            if model is not None:
                models[model] = analyzer.batch_sample
        return calibrate(self.store, self.settings.threads_per_worker, models)

    # -- lifecycle ------------------------------------------------------------------------------------
    def rate_limiter(self) -> RateLimiter:
        """Per-key rate limits: in the database on PostgreSQL (shared by every API replica on it), in
        memory on SQLite (one process)."""
        from feedlens.services.access import RateLimiter, SharedRateLimiter

        api = self.settings.api
        if self.database.engine.dialect.name == "postgresql":
            return SharedRateLimiter(self.database, api.rate_per_minute, api.burst)
        return RateLimiter(api.rate_per_minute, api.burst)

    def session_secret(self) -> bytes:
        """The key that signs web-app session cookies, shared by every process on this data folder (API
        replicas: a cookie from one works on all); a per-process one where the folder cannot be written
        (then a restart logs browsers out, as before, and `serve`'s storage check says why)."""
        from feedlens.storage.secrets import shared_secret

        try:
            return shared_secret(self.settings.data_root / "secrets", "web-session")
        except OSError as error:
            log.warning("web sessions stay with this process: %s", error)
            return secrets.token_bytes(32)

    def check_storage(self) -> None:
        """Raise StorageError when the data folder cannot be written or the database cannot be migrated
        (a full or read-only disk): `serve` checks before it listens, `/readyz` on every probe."""
        for folder in (self.settings.data_root, self.settings.blobs_dir, self.settings.index_dir):
            check_writable(folder)
        self.database.migrate()

    def close(self) -> None:
        """Release what was built: index files saved, HTTP client and database connections closed."""
        built = self.__dict__
        if "jobs" in built:
            self.jobs.stop()
        if "search" in built:
            self.search.flush()
        if "fetcher" in built:
            self.fetcher.close()
        if "insights" in built:
            self.insights.close()  # the alert webhooks' HTTP client
        self.database.dispose()


def _models_of(settings: Settings) -> dict[str, Any]:
    """The settings that shape analyzers and the text encoder: everything but where data lives."""
    return settings.model_dump(exclude={"data_dir", "database_url"})


def build_services(settings: Settings) -> Services:
    """Wire everything; nothing is loaded or connected until first used."""
    from feedlens.runtime.conversions import default_converters

    store = ModelStore(settings.models_dir, Manifest.load(), default_converters())
    return Services(
        settings=settings,
        store=store,
        decoder=ImageDecoder(settings.decode),
        database=Database(settings.database),
        blobs=BlobStore(settings.blobs_dir),
    )
