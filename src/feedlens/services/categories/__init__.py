"""Categories: team taxonomies, zero-shot categorisation, trained category models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from feedlens.services.categories.categoriser import Categoriser, TrainedModel
from feedlens.services.categories.service import CategoryError, CategoryService, TrainReport
from feedlens.services.categories.taxonomies import TaxonomyCompiler, default_taxonomy, default_taxonomy_text
from feedlens.services.categories.zero_shot import CompiledTaxonomy, Evidence

if TYPE_CHECKING:
    from feedlens.runtime.text_encoder import TextEncoder
    from feedlens.services.factory import Services

__all__ = [
    "Categoriser",
    "CategoryError",
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
    return CategoryService(services.database, TaxonomyCompiler(services.store, encoder), services.settings)
