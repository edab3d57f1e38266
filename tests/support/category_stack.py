"""A real categorising stack (models shared with the session's `services`) over a fresh library, for the
service tests of categories, feedback, learning and training; and the default taxonomy's names."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from feedlens.analyzers.registry import DEFAULT_ANALYZERS
from feedlens.core.filters import ImageFilter
from feedlens.core.results.categories import CategoriesResult
from feedlens.services.access import AccessService
from feedlens.services.categories import CategoryService
from feedlens.services.factory import Services
from feedlens.services.fetch import SafeFetcher
from feedlens.services.ingest import IngestItem, Ingestor, chain_hooks
from feedlens.services.library import Library
from feedlens.storage import repositories as repo

# What training on stored features needs: the classifier's features and the search vectors zero-shot uses.
TRAINING_ANALYZERS = ("labels", "embedding")
PETS, FOOD, TEXT, PEOPLE = "animals & pets", "food & drink", "text & memes & screenshots", "people & selfies"


@dataclasses.dataclass
class Stack:
    services: Services
    categories: CategoryService
    ingestor: Ingestor
    fetcher: SafeFetcher
    workspace: int

    def ingest(self, items: Sequence[IngestItem], workspace: int | None = None) -> dict[str, str]:
        outcomes = list(self.ingestor.ingest(workspace or self.workspace, items))
        assert all(o.status != "failed" for o in outcomes), [o.error for o in outcomes]
        return {o.item.source: str(o.image_id) for o in outcomes}

    def result(self, image_id: str) -> CategoriesResult | dict:  # type: ignore[type-arg]
        with self.services.database.session() as session:
            return repo.current_analyses(session, [image_id])[image_id]["categories"].result

    def filtered(self, category: str, workspace: int | None = None) -> set[str]:
        with self.services.database.session() as session:
            images, _ = repo.list_images(
                session, workspace or self.workspace, ImageFilter(category=category), 100, None
            )
            return {i.id for i in images}


def build_stack(
    services: Services, data_dir: Path, database_url: str, analyzers: Sequence[str] = DEFAULT_ANALYZERS
) -> Stack:
    """`analyzers` (default: every default one), search and categories wired to a migrated database at
    `database_url`. Tests of training on stored features pass TRAINING_ANALYZERS: the same results for
    what they check, at a fraction of the ingest time (no objects, poses, faces or OCR)."""
    update = {"data_dir": data_dir, "database_url": database_url, "analyzers": tuple(analyzers)}
    settings = services.settings.model_copy(update=update)
    wired = services.with_settings(settings)
    database = wired.database
    database.migrate()
    library = Library(database, wired.blobs, wired.decoder, settings)
    search, categories = wired.search, wired.categories
    fetcher = SafeFetcher(settings.fetch)
    ingestor = Ingestor(
        library,
        wired.pipeline(tuple(analyzers)),
        fetcher,
        8,
        after_commit=chain_hooks(search.after_ingest, categories.after_ingest),
    )
    workspace = AccessService(database).create_workspace("team")
    return Stack(wired, categories, ingestor, fetcher, workspace)
