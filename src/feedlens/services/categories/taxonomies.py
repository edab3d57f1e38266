"""Taxonomies ready to score with: the shipped default, and compiling (phrase embeddings, WordNet ids)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib import resources

import numpy as np

from feedlens.core.taxonomy import Taxonomy, parse_taxonomy
from feedlens.runtime.store import ModelStore
from feedlens.runtime.text_encoder import ConceptTable, TextEncoder, concept_table
from feedlens.services.categories.zero_shot import CompiledTaxonomy, compile_taxonomy


def default_taxonomy_text() -> str:
    """The shipped default taxonomy's YAML, comments included (`feedlens taxonomy default`)."""
    return resources.files("feedlens").joinpath("data/taxonomies/social-media.yaml").read_text("utf-8")


def default_taxonomy() -> Taxonomy:
    """The taxonomy a workspace starts with (src/feedlens/data/taxonomies/social-media.yaml)."""
    return parse_taxonomy(default_taxonomy_text())


class TaxonomyCompiler:
    """Compiles taxonomies (phrase embeddings, WordNet ids) and embeds texts; no database needed, so the
    CLI's `analyze` uses it as well."""

    def __init__(self, store: ModelStore, encoder: TextEncoder) -> None:
        self.store = store
        self.encoder = encoder
        self._table: ConceptTable | None = None
        self._lock = threading.Lock()

    @property
    def table(self) -> ConceptTable:
        with self._lock:
            if self._table is None:
                self._table = concept_table(self.store)
            return self._table

    def compile(self, taxonomy: Taxonomy, version: int) -> CompiledTaxonomy:
        return compile_taxonomy(taxonomy, version, self.encoder, self.table)

    def encode(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """Unit vectors (384,) of the non-blank texts, None for blank ones."""
        present = [i for i, t in enumerate(texts) if t.strip()]
        encoded = list(self.encoder.encode([texts[i] for i in present])) if present else []
        out: list[np.ndarray | None] = [None] * len(texts)
        for i, vector in zip(present, encoded, strict=True):
            out[i] = vector
        return out
