"""The one place objects are wired together: settings -> model store -> decoder -> analyzers -> pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from feedlens.analyzers.registry import DEFAULT_ANALYZERS, create_analyzers
from feedlens.config import Settings
from feedlens.images import ImageDecoder
from feedlens.runtime.conversions import default_converters
from feedlens.runtime.manifest import Manifest
from feedlens.runtime.store import ModelStore
from feedlens.services.pipeline import Pipeline


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: ModelStore
    decoder: ImageDecoder

    def pipeline(
        self, analyzer_names: Sequence[str] = DEFAULT_ANALYZERS, settings: Settings | None = None
    ) -> Pipeline:
        """A pipeline for these analyzers; `settings` overrides the service's own for this pipeline only."""
        settings = settings or self.settings
        analyzers = create_analyzers(analyzer_names, self.store, settings)
        threads = settings.threads_per_worker
        return Pipeline(self.decoder, analyzers, threads=threads, report=analyzer_names)


def build_services(settings: Settings) -> Services:
    store = ModelStore(settings.models_dir, Manifest.load(), default_converters())
    return Services(settings=settings, store=store, decoder=ImageDecoder(settings.decode))
