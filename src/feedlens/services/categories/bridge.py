"""The everyday-label bridge: from a category's words to the everyday labels that show it, and from an
image's labels to a score per category.

Category side (once per taxonomy). Each category's texts (name, description, phrases) are compared in
sentence space with every label of the vocabulary (core/vocabulary.py: 978 everyday labels) twice: with the
label's name, and with the name of the label's vocabulary category ("Music", "Plants and Flowers"...), so
"guitar" belongs to a category described as "musical instruments and concerts" through the category
"Music" even where the two words sit apart. A vocabulary category carries dozens of labels at once, so it
has to fit better than a single label name: its cosine counts less GROUP_MARGIN ("Apparel and
Accessories" sits 0.56 from "sports, games, athletes, balls and sports equipment", and clothes are not
sport). Relevance rho(c, l) is the larger of the two. Labels are then
shared out between the taxonomy's categories by a softmax over categories with a "none of them" option:

    w(c, l) = exp(rho(c, l) / T) / (exp(NONE / T) + sum_c' exp(rho(c', l) / T))

so a label goes to the category it fits best and to none when it fits none well (Person, Sky), and a
category whose words sit near everything does not collect every label: it has to win them.

Image side. An image's everyday labels (calibrated scores; classifier, faces, objects and poses, parents
scored at least as high as their children) give `bridge(c) = max_l w(c, l) * score(l)`, raised to the
WordNet roll-up of the category's `concepts` where the taxonomy names any.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Fitted with the fusion (fusion.FUSION): cosines 0.03 apart give a label e (2.7) times more weight, and
# a label must come within 0.35 of a category (MiniLM: unrelated words ~0.1-0.3) to belong to it at all.
TEMPERATURE = 0.03
NONE = 0.35
GROUP_MARGIN = 0.15  # what a vocabulary category's cosine gives up against a label name's (see above)


@dataclass(frozen=True, slots=True)
class LabelSpace:
    """The vocabulary in sentence space: `ids` (L,) label ids, `vectors` (L, D) unit embeddings of the
    label names, `category_vectors` (K, D) of the vocabulary's category names and `category_of` (L,) int,
    each label's vocabulary category."""

    ids: tuple[str, ...]
    vectors: np.ndarray
    category_vectors: np.ndarray
    category_of: np.ndarray

    @property
    def index(self) -> dict[str, int]:
        return {label_id: i for i, label_id in enumerate(self.ids)}


def relevance(prototypes: Sequence[np.ndarray], space: LabelSpace) -> np.ndarray:
    """(C, L) cosine of each category's closest text with each label's name or vocabulary category."""
    out = np.zeros((len(prototypes), len(space.ids)), dtype=np.float64)
    for c, texts in enumerate(prototypes):
        if not len(texts):
            continue
        names = (texts @ space.vectors.T).max(axis=0)  # (L,)
        groups = (texts @ space.category_vectors.T).max(axis=0)  # (K,)
        out[c] = np.maximum(names, groups[space.category_of] - GROUP_MARGIN)
    return out


def share_out(rho: np.ndarray, temperature: float = TEMPERATURE, none: float = NONE) -> np.ndarray:
    """(C, L) relevance -> (C, L) weights: a softmax over categories with a "none" option (see above)."""
    if rho.size == 0:
        return rho.copy()
    top = np.maximum(rho.max(axis=0, keepdims=True), none)
    e = np.exp((rho - top) / temperature)
    out: np.ndarray = e / (np.exp((none - top) / temperature) + e.sum(axis=0, keepdims=True))
    return out


def label_vector(labels: Mapping[str, float], index: Mapping[str, int]) -> np.ndarray:
    """An image's everyday labels {id: score} -> (L,) scores in the label space's order (0 if absent)."""
    out = np.zeros(len(index), dtype=np.float64)
    for label_id, score in labels.items():
        i = index.get(label_id)
        if i is not None:
            out[i] = max(out[i], score)
    return out


def bridge_scores(
    label_scores: np.ndarray,
    weights: np.ndarray,
    concept_scores: np.ndarray | None = None,
) -> np.ndarray:
    """(N, L) label scores x (C, L) weights -> (N, C) max_l w * score, raised to `concept_scores` (N, C),
    the WordNet roll-up of each category's `concepts` (0 where it names none)."""
    out = np.zeros((len(label_scores), len(weights)))
    for i, row in enumerate(label_scores):
        found = np.flatnonzero(row)  # an image keeps ~20 labels: only those columns are read
        if len(found) and len(weights):
            out[i] = (weights[:, found] * row[found][None, :]).max(axis=1)
    if concept_scores is not None:
        out = np.maximum(out, concept_scores)
    return out
