"""Categories: team taxonomies, zero-shot categorisation blended with the registry's production model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from feedlens.services.categories.categoriser import Categoriser, TrainedModel
from feedlens.services.categories.models import CategoryModels, TrainReport
from feedlens.services.categories.service import CategoryError, CategoryService
from feedlens.services.categories.taxonomies import TaxonomyCompiler, default_taxonomy, default_taxonomy_text
from feedlens.services.categories.zero_shot import CompiledTaxonomy, Evidence

if TYPE_CHECKING:
    from feedlens.runtime.text_encoder import TextEncoder
    from feedlens.services.factory import Services

__all__ = [
    "Categoriser",
    "CategoryError",
    "CategoryModels",
    "CategoryService",
    "CompiledTaxonomy",
    "Evidence",
    "TaxonomyCompiler",
    "TrainReport",
    "TrainedModel",
    "build_categories",
    "default_taxonomy",
    "default_taxonomy_text",
]


def build_categories(services: Services, encoder: TextEncoder) -> CategoryService:
    """The category service over the services' database, sharing the search service's text encoder."""
    compiler = TaxonomyCompiler(services.store, encoder)
    return CategoryService(
        services.database, compiler, services.settings, models=lambda: services.training.category_models
    )
