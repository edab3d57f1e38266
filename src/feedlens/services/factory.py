"""The one place objects are wired together: settings -> model store -> decoder -> analyzers -> pipeline,
and settings -> database + blob store -> library."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from feedlens.analyzers.base import Analyzer
from feedlens.analyzers.registry import DEFAULT_ANALYZERS, analyzer_type, resolve
from feedlens.config import Settings
from feedlens.core.errors import UnknownAnalyzerError
from feedlens.images import ImageDecoder
from feedlens.runtime.conversions import default_converters
from feedlens.runtime.manifest import Manifest
from feedlens.runtime.store import ModelStore
from feedlens.services.pipeline import Pipeline
from feedlens.storage.blobs import BlobStore
from feedlens.storage.database import Database


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: ModelStore
    decoder: ImageDecoder
    database: Database
    blobs: BlobStore
    # Analyzer instances shared by every pipeline made with the service's own settings, so a server
    # holding pipelines for several analyzer subsets loads each model once.
    _analyzers: dict[str, Analyzer[Any, Any]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def pipeline(
        self, analyzer_names: Sequence[str] = DEFAULT_ANALYZERS, settings: Settings | None = None
    ) -> Pipeline:
        """A pipeline for these analyzers; `settings` overrides the service's own for this pipeline only."""
        if not analyzer_names:
            raise UnknownAnalyzerError("no analyzer selected")
        names = resolve(analyzer_names)  # unknown names fail here
        if settings is None:
            with self._lock:
                for name in names:
                    if name not in self._analyzers:
                        self._analyzers[name] = analyzer_type(name)(self.store, self.settings)
                analyzers = [self._analyzers[n] for n in names]
        else:
            analyzers = [analyzer_type(n)(self.store, settings) for n in names]
        threads = (settings or self.settings).threads_per_worker
        return Pipeline(self.decoder, analyzers, threads=threads, report=analyzer_names)


def build_services(settings: Settings) -> Services:
    """Wire everything; nothing is loaded or connected until first used."""
    store = ModelStore(settings.models_dir, Manifest.load(), default_converters())
    return Services(
        settings=settings,
        store=store,
        decoder=ImageDecoder(settings.decode),
        database=Database(settings.database),
        blobs=BlobStore(settings.blobs_dir),
    )
