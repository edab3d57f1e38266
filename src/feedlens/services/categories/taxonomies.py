"""Taxonomies ready to score with: the shipped default, and compiling (phrase embeddings, WordNet ids, the
everyday-label bridge's weights and the prior of the category scores)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources

import numpy as np

from feedlens.analyzers.everyday import fingerprint
from feedlens.core.files import write_atomic
from feedlens.core.taxonomy import Taxonomy, parse_taxonomy
from feedlens.core.vocabulary import Vocabulary
from feedlens.runtime.store import ModelStore
from feedlens.runtime.text_encoder import ConceptTable, TextEncoder, concept_table
from feedlens.services.categories.bridge import LabelSpace, bridge_scores, relevance, share_out
from feedlens.services.categories.normalise import Prior
from feedlens.services.categories.reference import (
    Reference,
    build_reference,
    concept_matrix,
    label_space,
    weighted_prior,
)
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
        self._space: LabelSpace | None = None
        self._reference: Reference | None = None
        self._lock = threading.Lock()
        self._built = threading.Lock()

    @property
    def table(self) -> ConceptTable:
        with self._lock:
            if self._table is None:
                self._table = concept_table(self.store)
            return self._table

    def compile(self, taxonomy: Taxonomy, version: int) -> CompiledTaxonomy:
        """Phrase embeddings, WordNet ids, the bridge's (C, L) weights and the prior of the raw scores."""
        base = compile_taxonomy(taxonomy, version, self.encoder, self.table)
        space, reference = self.space_and_reference()
        weights = share_out(relevance(base.prototypes, space))
        return replace(
            base,
            bridge=weights,
            label_index=space.index,
            prior=prior_of(base, weights, reference),
            joint=self.encoder.version.startswith("clip:"),
        )

    def space_and_reference(self) -> tuple[LabelSpace, Reference]:
        """The vocabulary in sentence space and the reference library, built once per compiler."""
        table = self.table
        with self._built:
            if self._space is None or self._reference is None:
                vocabulary = Vocabulary.load()
                names = self._label_vectors([label.name for label in vocabulary])
                groups = self.encoder.encode(list(vocabulary.categories))
                self._space = label_space(vocabulary, names, groups)
                hierarchy = json.loads(self.store.path("imagenet-hierarchy").read_text())
                self._reference = build_reference(self._space, vocabulary, table, hierarchy)
            return self._space, self._reference

    def _label_vectors(self, names: list[str]) -> np.ndarray:
        """(L, D) embeddings of the label names, kept beside the models (the embedding analyzer's file: the
        same names in the same order, so whichever runs first makes it for both)."""
        path = self.store.root / ".cache" / f"label-vectors-{fingerprint()}-{self.encoder.version}.npy"
        try:
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape == (len(names), self.encoder.dim):
                return np.asarray(vectors, dtype=np.float32)
        except (OSError, ValueError):
            pass  # not made yet on this machine, or damaged: made again
        vectors = self.encoder.encode(names, batch_size=128)
        write_atomic(path, lambda f: np.save(f, vectors, allow_pickle=False))
        return np.asarray(vectors, dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """Unit vectors (384,) of the non-blank texts, None for blank ones."""
        present = [i for i, t in enumerate(texts) if t.strip()]
        encoded = list(self.encoder.encode([texts[i] for i in present])) if present else []
        out: list[np.ndarray | None] = [None] * len(texts)
        for i, vector in zip(present, encoded, strict=True):
            out[i] = vector
        return out


def prior_of(compiled: CompiledTaxonomy, weights: np.ndarray, reference: Reference) -> Prior:
    """The prior (K, C) of a taxonomy's raw score components: their weighted mean and sd over the
    reference library's pseudo-images (fusion.raw_scores' components, in its order)."""
    concepts = concept_matrix(reference.concepts, compiled.concepts)
    bridge = bridge_scores(reference.labels, weights, concepts)
    visual = np.stack(
        [
            (reference.content @ p.T).max(axis=1) if len(p) else np.zeros(len(reference.content))
            for p in compiled.prototypes
        ],
        axis=1,
    )
    return weighted_prior(np.stack([bridge, visual], axis=1), reference.weights)
