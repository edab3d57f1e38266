"""The everyday-label space and a reference library that needs no images: the prior of category scores.

A workspace with few images cannot say yet what a category's scores usually look like, so normalise.py
shrinks its statistics towards a prior. The prior comes from a reference library built from the label
vocabulary alone: one pseudo-image per ImageNet class, as an image the classifier is fairly sure of would be
stored (its everyday labels and WordNet concepts at `PSEUDO_SCORE`, a content vector made like the
embedding analyzer's: class name, concepts and labels in sentence space; with a CLIP model, the label names
in its text space alone). ImageNet is 40% animals, so each
pseudo-image is weighted to give every vocabulary category (Animals and Pets, Music, ...) the same say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from feedlens.core.vocabulary import Vocabulary
from feedlens.runtime.text_encoder import ConceptTable
from feedlens.services.categories.bridge import LabelSpace, label_vector
from feedlens.services.categories.normalise import Prior

PSEUDO_SCORE = 0.7  # a typical calibrated score of an image's leading labels
MIN_CONCEPT_DEPTH = 4  # as the labels analyzer: concepts nearer WordNet's root are not kept
PARTS = (1.0, 0.5, 0.5)  # class, concepts, labels: the embedding analyzer's weights


def label_space(vocabulary: Vocabulary, name_vectors: np.ndarray, category_vectors: np.ndarray) -> LabelSpace:
    """The vocabulary's labels (file order) with their name vectors (L, D) and their category's index into
    `category_vectors` (K, D), embedded in `vocabulary.categories` order."""
    position = {name: k for k, name in enumerate(vocabulary.categories)}
    labels = list(vocabulary)
    return LabelSpace(
        ids=tuple(label.id for label in labels),
        vectors=np.asarray(name_vectors, dtype=np.float32),
        category_vectors=np.asarray(category_vectors, dtype=np.float32),
        category_of=np.array([position.get(label.category, 0) for label in labels], dtype=np.int64),
    )


@dataclass(frozen=True)
class Reference:
    """Pseudo-images: `labels` (R, L) everyday label scores, `concepts` WordNet scores per pseudo-image,
    `content` (R, D) unit content vectors and `weights` (R,) summing to 1."""

    labels: np.ndarray
    concepts: tuple[Mapping[str, float], ...]
    content: np.ndarray
    weights: np.ndarray


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def build_reference(
    space: LabelSpace, vocabulary: Vocabulary, table: ConceptTable, hierarchy: Mapping[str, Any]
) -> Reference:
    """One pseudo-image per ImageNet class of the `imagenet-hierarchy` artifact (see the module doc)."""
    row = {wnid: i for i, wnid in enumerate(table.wnids)}
    index = space.index
    concepts_meta = hierarchy["concepts"]
    same_space = table.vectors.shape[1] == space.vectors.shape[1]
    labels, concepts, content, groups = [], [], [], []
    for cls, above in zip(hierarchy["classes"], hierarchy["ancestors"], strict=True):
        wnid = cls["wnid"]
        own = vocabulary.from_imagenet(wnid)
        ids = {*own, *(a for label_id in own for a in vocabulary.ancestors(label_id))}
        scores = dict.fromkeys(ids, PSEUDO_SCORE)
        kept = [concepts_meta[a]["wnid"] for a in above if concepts_meta[a]["depth"] >= MIN_CONCEPT_DEPTH]
        labels.append(label_vector(scores, index))
        concepts.append(dict.fromkeys([wnid, *kept], PSEUDO_SCORE))
        nothing = np.zeros(space.vectors.shape[1], dtype=np.float32)
        named = [space.vectors[index[i]] for i in ids if i in index]
        parts = [nothing, nothing, _unit(np.mean(named, axis=0)) if named else nothing]
        if same_space:  # else a CLIP text space: the WordNet phrases (MiniLM) cannot join the label names
            found = [table.vectors[row[w]] for w in kept if w in row]
            parts[0] = table.vectors[row[wnid]]
            parts[1] = _unit(np.mean(found, axis=0)) if found else nothing
        mixed = np.sum([w * _unit(p) for w, p in zip(PARTS, parts, strict=True)], axis=0)
        content.append(_unit(mixed))
        groups.append(vocabulary.label(own[0]).category if own else "")
    kinds, inverse = np.unique(np.array(groups), return_inverse=True)
    counts = np.bincount(inverse)
    weights = 1.0 / (counts[inverse] * len(kinds))
    return Reference(
        labels=np.stack(labels),
        concepts=tuple(concepts),
        content=np.stack(content).astype(np.float32),
        weights=weights / weights.sum(),
    )


def weighted_prior(raw: np.ndarray, weights: np.ndarray) -> Prior:
    """Prior (K, C) from raw components (R, K, C) of the reference's pseudo-images and their weights."""
    w = weights[:, None, None]
    mean = (w * raw).sum(axis=0)
    sd = np.sqrt((w * (raw - mean[None]) ** 2).sum(axis=0))
    return Prior(mean=mean, sd=sd)


def concept_matrix(
    concepts: Sequence[Mapping[str, float]], categories: Sequence[frozenset[str]]
) -> np.ndarray:
    """(R, C) the best score of each category's WordNet concepts in each pseudo-image."""
    out = np.zeros((len(concepts), len(categories)))
    for c, wanted in enumerate(categories):
        if wanted:
            out[:, c] = [max((found.get(w, 0.0) for w in wanted), default=0.0) for found in concepts]
    return out
