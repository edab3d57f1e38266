"""Score images against a compiled taxonomy, zero-shot and, where a trained model exists, blended."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from feedlens.core.results.categories import CategoriesResult, CategoryScore
from feedlens.services.categories.heads import CategoryHead, head_features
from feedlens.services.categories.zero_shot import (
    FEATURES,
    SOURCE_OF,
    CompiledTaxonomy,
    Evidence,
    FusionWeights,
    contributions,
    features,
    fusions,
    roll_up,
    zero_shot,
)

CAPTION_COLUMNS = [
    i for i, name in enumerate(FEATURES) if SOURCE_OF[name] == "caption" or name == "keyword_caption"
]
HEAD_THRESHOLD = 0.5  # trained heads use balanced class weights: their even odds are their natural cut


@dataclass(frozen=True)
class TrainedModel:
    version: int
    head: CategoryHead


@dataclass(frozen=True)
class Categoriser:
    """`threshold` None: each category is assigned at its own threshold (its zero-shot model's, moved
    towards the trained head's 0.5 by the head's share of the blend); a number overrides that for all."""

    compiled: CompiledTaxonomy
    threshold: float | None = None
    model: TrainedModel | None = None
    fusion: Sequence[FusionWeights] | None = None  # per category; default `fusions(compiled)`
    caption_weight: float = 1.0  # scales the caption's features: captions vary in how much they describe

    def thresholds(self) -> np.ndarray:
        """(C,) assignment threshold of each category."""
        models = fusions(self.compiled) if self.fusion is None else self.fusion
        base = np.array([m.threshold if self.threshold is None else self.threshold for m in models])
        if self.model is None or self.threshold is not None:
            return base
        share = dict(zip(self.model.head.categories, self.model.head.blend_weights(), strict=True))
        weights = np.array([share.get(name, 0.0) for name in self.compiled.names])
        out: np.ndarray = weights * HEAD_THRESHOLD + (1.0 - weights) * base
        return out

    def scores(self, evidence: Sequence[Evidence]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Zero-shot (N, C), log-odds terms (N, C, F), and the blended scores (N, C) or None."""
        if not evidence:
            c = len(self.compiled.names)
            return np.zeros((0, c)), np.zeros((0, c, 0)), None
        feats = np.stack([features(self.compiled, e) for e in evidence])
        if self.caption_weight != 1.0:
            feats[..., CAPTION_COLUMNS] *= self.caption_weight
        zero, terms = zero_shot(self.compiled, feats, self.fusion)
        if self.model is None:
            return zero, terms, None
        blended = zero.copy()
        trained = self.model.head.predict(head_features(evidence))
        weights = self.model.head.blend_weights()
        for k, name in enumerate(self.model.head.categories):
            if name in self.compiled.names:  # a model trained before a category was removed
                c = self.compiled.names.index(name)
                blended[:, c] = weights[k] * trained[:, k] + (1.0 - weights[k]) * zero[:, c]
        return zero, terms, roll_up(self.compiled.taxonomy, blended)

    def categorise(self, evidence: Sequence[Evidence]) -> list[CategoriesResult]:
        zero, terms, blended = self.scores(evidence)
        final = zero if blended is None else blended
        head = self.model.head if self.model is not None else None
        trained = head.predict(head_features(evidence)) if head is not None and evidence else None
        weights = head.blend_weights() if head is not None else None
        thresholds = self.thresholds()
        results = []
        for i in range(len(evidence)):
            scores = []
            for c, name in enumerate(self.compiled.names):
                k = head.categories.index(name) if head is not None and name in head.categories else None
                score = float(np.clip(final[i, c], 0.0, 1.0))
                scores.append(
                    CategoryScore(
                        name=name,
                        score=round(score, 6),
                        assigned=bool(score >= thresholds[c]),
                        threshold=round(float(thresholds[c]), 4),
                        evidence=contributions(terms[i, c]),
                        zero_shot=round(float(zero[i, c]), 6) if blended is not None else None,
                        trained=round(float(trained[i, k]), 6)
                        if trained is not None and k is not None
                        else None,
                        weight=round(float(weights[k]), 4) if weights is not None and k is not None else 0.0,
                    )
                )
            results.append(
                CategoriesResult.of(
                    self.compiled.taxonomy.name,
                    self.compiled.version,
                    self.model.version if self.model is not None else None,
                    scores,
                )
            )
        return results
