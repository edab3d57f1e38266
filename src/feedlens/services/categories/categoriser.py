"""Score images against a compiled taxonomy, zero-shot and, where a trained model exists, blended with its
probabilities (the registry's production model, or an older stored category head)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from feedlens.core.results.categories import CategoriesResult, CategoryScore
from feedlens.services.categories.fusion import SOURCES, Fusion, fusion_for, raw_scores, zero_shot
from feedlens.services.categories.heads import BLEND_PRIOR, CategoryHead, head_features
from feedlens.services.categories.normalise import Moments
from feedlens.services.categories.zero_shot import (
    CompiledTaxonomy,
    Evidence,
    contributions,
    features,
    roll_up,
)

HEAD_THRESHOLD = 0.5  # trained heads use balanced class weights: their even odds are their natural cut


@dataclass(frozen=True)
class TrainedModel:
    """The trained model that categorises with zero-shot: the workspace's production model from the model
    registry (`model_id` set; its probabilities (N, K) come with each batch, computed from the images), or
    a category model of the older `category_models` table (`head`: it scores stored features itself).
    `positives` (K,): labelled images of each category it was trained on (the blend's weights)."""

    version: int
    head: CategoryHead | None = None
    categories: tuple[str, ...] = ()
    positives: tuple[int, ...] = ()
    model_id: int | None = None

    def __post_init__(self) -> None:
        if self.head is not None:  # a stored head names its own categories and counts
            object.__setattr__(self, "categories", tuple(self.head.categories))
            object.__setattr__(self, "positives", tuple(int(n) for n in self.head.positives))

    def blend_weights(self, prior: float = BLEND_PRIOR, trust: np.ndarray | None = None) -> np.ndarray:
        """(K,) share of the trained probability in the blended score: n / (n + prior * trust), where
        `trust` (K,) in [0, 1] says how well zero-shot read each category's labels (1 when not given): a
        zero-shot no better than chance on the labels leaves the model alone."""
        n = np.asarray(self.positives, dtype=np.float64)
        weight = prior * (np.ones_like(n) if trust is None else np.asarray(trust, dtype=np.float64))
        out: np.ndarray = np.where(n > 0, n / np.maximum(n + weight, 1e-12), 0.0)
        return out

    def natural_cut(self) -> float:
        """Where the model's own probability assigns a category: even odds for a stored one-vs-rest head;
        for the registry's softmax over K categories, twice the uniform 1 / K (at most even odds), since a
        picture that fits two of seven categories splits its probability between them."""
        if self.head is not None or not self.categories:
            return HEAD_THRESHOLD
        return min(HEAD_THRESHOLD, 2.0 / len(self.categories))

    def predict(self, evidence: Sequence[Evidence], trained: np.ndarray | None) -> np.ndarray | None:
        """(N, K) probabilities: the head's on stored features, else `trained` as given (NaN rows: images
        the model could not score); None when there is nothing to blend."""
        if self.head is not None:
            return self.head.predict(head_features(evidence))
        return trained


@dataclass(frozen=True)
class Scored:
    """One batch's scores: zero-shot (N, C), log-odds terms per source (N, C, S), blended (N, C) or None."""

    zero: np.ndarray
    terms: np.ndarray
    blended: np.ndarray | None

    @property
    def final(self) -> np.ndarray:
        return self.zero if self.blended is None else self.blended


@dataclass(frozen=True)
class Categoriser:
    """`moments`: the workspace's running statistics of the raw scores (normalise.py), this batch
    included; None reads each batch against itself (and the prior). `label_thresholds` (C,): per-category
    thresholds learnt from the workspace's labels, else the fusion's. `threshold` overrides both for every
    category. A trained head's share moves a category's threshold towards the head's 0.5."""

    compiled: CompiledTaxonomy
    threshold: float | None = None
    model: TrainedModel | None = None
    fusion: Fusion | None = None  # None: the shipped one for the taxonomy's space (fusion.fusion_for)
    caption_weight: float = 1.0  # scales the caption's terms: captions vary in how much they describe
    moments: Moments | None = None
    label_thresholds: np.ndarray | None = None
    zero_shot_trust: np.ndarray | None = None  # (C,) from the labels (normalise.zero_shot_trust); None: 1

    @property
    def scoring(self) -> Fusion:
        return self.fusion if self.fusion is not None else fusion_for(self.compiled)

    def zero_shot_thresholds(self) -> np.ndarray:
        """(C,) where zero-shot scores are assigned: the labels' thresholds, else the fusion's."""
        if self.threshold is not None:
            return np.full(len(self.compiled.names), self.threshold)
        if self.label_thresholds is not None:
            return np.asarray(self.label_thresholds, dtype=np.float64)
        return np.full(len(self.compiled.names), self.scoring.threshold)

    def thresholds(self) -> np.ndarray:
        """(C,) assignment threshold of each category."""
        base = self.zero_shot_thresholds()
        if self.model is None or self.threshold is not None:
            return base
        share = dict(zip(self.model.categories, self.model_shares(), strict=True))
        weights = np.array([share.get(name, 0.0) for name in self.compiled.names])
        out: np.ndarray = weights * self.model.natural_cut() + (1.0 - weights) * base
        return out

    def model_shares(self) -> np.ndarray:
        """(K,) the trained model's share of each of its categories' blended score (0 without a model)."""
        if self.model is None:
            return np.zeros(0)
        if self.zero_shot_trust is None:
            return self.model.blend_weights()
        names = self.compiled.names
        trust = [self.zero_shot_trust[names.index(n)] if n in names else 1.0 for n in self.model.categories]
        return self.model.blend_weights(trust=np.asarray(trust))

    def features(self, evidence: Sequence[Evidence]) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, C, F) and raw score components (N, K, C) of a batch."""
        c = len(self.compiled.names)
        if not evidence:
            return np.zeros((0, c, 0)), raw_scores(self.compiled, [], np.zeros((0, c, 0)))
        feats = np.stack([features(self.compiled, e) for e in evidence])
        return feats, raw_scores(self.compiled, evidence, feats)

    def scores(
        self,
        evidence: Sequence[Evidence],
        computed: tuple[np.ndarray, np.ndarray] | None = None,
        trained: np.ndarray | None = None,
    ) -> Scored:
        """Scores of a batch; `computed`: its (features, raw) when the caller has them already; `trained`
        (N, K): a registry model's probabilities of the batch (TrainedModel.predict)."""
        c = len(self.compiled.names)
        if not evidence:
            return Scored(np.zeros((0, c)), np.zeros((0, c, len(SOURCES))), None)
        feats, raw = computed if computed is not None else self.features(evidence)
        moments = self.moments if self.moments is not None else Moments.of(raw)
        zero, terms = zero_shot(self.compiled, feats, raw, moments, self.scoring, self.caption_weight)
        zero = roll_up(self.compiled.taxonomy, zero)
        probabilities = None if self.model is None else self.model.predict(evidence, trained)
        if self.model is None or probabilities is None:
            return Scored(zero, terms, None)
        blended = zero.copy()
        scored = ~np.isnan(probabilities).any(axis=1)  # images without the model's answer stay zero-shot
        weights = self.model_shares()
        for k, name in enumerate(self.model.categories):
            if name in self.compiled.names:  # a model trained before a category was removed
                j = self.compiled.names.index(name)
                mixed = weights[k] * probabilities[:, k] + (1.0 - weights[k]) * zero[:, j]
                blended[:, j] = np.where(scored, mixed, zero[:, j])
        return Scored(zero, terms, roll_up(self.compiled.taxonomy, blended))

    def categorise(
        self,
        evidence: Sequence[Evidence],
        computed: tuple[np.ndarray, np.ndarray] | None = None,
        trained: np.ndarray | None = None,
    ) -> list[CategoriesResult]:
        """One result per image; `trained` (N, K) as for `scores`."""
        scored = self.scores(evidence, computed, trained)
        model = self.model
        probabilities = model.predict(evidence, trained) if model is not None and evidence else None
        head = model if model is not None and probabilities is not None else None
        weights = self.model_shares() if head is not None else None
        thresholds = self.thresholds()
        results = []
        for i in range(len(evidence)):
            scores = []
            known = probabilities is not None and not np.isnan(probabilities[i]).any()
            for c, name in enumerate(self.compiled.names):
                k = head.categories.index(name) if head is not None and name in head.categories else None
                k = k if known else None
                score = float(np.clip(scored.final[i, c], 0.0, 1.0))
                scores.append(
                    CategoryScore(
                        name=name,
                        score=round(score, 6),
                        assigned=bool(round(score, 6) >= thresholds[c]),
                        threshold=round(float(thresholds[c]), 4),
                        evidence=contributions(scored.terms[i, c], SOURCES),
                        zero_shot=round(float(scored.zero[i, c]), 6) if scored.blended is not None else None,
                        trained=round(float(probabilities[i, k]), 6)
                        if probabilities is not None and k is not None
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
