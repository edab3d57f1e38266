"""Per-workspace normalisation of zero-shot category scores, and thresholds from a workspace's labels.

Why: some category descriptions sit near everything in sentence space (or near labels that most pictures
get), so their raw scores are high for every image and such a category absorbs a library. Each category's
raw score is therefore read against the workspace's own distribution of that score: a z-score
`(x - mean_c) / sd_c`, with `mean_c` and `sd_c` the running statistics of that category over the
workspace's images (updated as images arrive, stored in `category_stats`).

A small library must still work, so the statistics are shrunk towards a prior (`Prior`: a mean and a
standard deviation per category, from a reference library that needs no data, see reference.py) with the
weight of `PRIOR_IMAGES` images: with no image the prior alone speaks, with 240 images it has two thirds of
the say and with 5,000 a tenth. The prior is itself corrected for wording (it is each category's own score
distribution over a reference library), and a heavier prior keeps a library that is mostly one category
from reading that category as ordinary (docs/categories.md, "Limits").
A category whose scores never vary (no evidence for it anywhere) gets z = 0 rather than a division by zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

PRIOR_IMAGES = 500.0  # the prior counts as this many images (fitted with fusion.FUSION)
MIN_SD = 1e-3  # floor of a standard deviation (scores are cosines and probabilities, so 1e-3 is "constant")
MIN_LABELS = 2  # labelled positives (and negatives) a category needs before its labels move its threshold
LABEL_PRIOR = 4.0  # the default threshold counts as this many labelled images when blending with the labels'


@dataclass(frozen=True, slots=True)
class Moments:
    """Running sums of scores per (component, category): `n` (K, C) images counted, `total` (K, C) sum of
    scores, `total_sq` (K, C) sum of squares. Sums add and subtract, so batches merge in any order."""

    n: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray

    @classmethod
    def empty(cls, components: int, categories: int) -> Moments:
        shape = (components, categories)
        return cls(np.zeros(shape), np.zeros(shape), np.zeros(shape))

    @classmethod
    def of(cls, raw: np.ndarray) -> Moments:
        """Moments of raw scores (N, K, C); NaN marks a missing score (not counted)."""
        present = np.isfinite(raw)
        values = np.where(present, raw, 0.0)
        return cls(present.sum(axis=0).astype(np.float64), values.sum(axis=0), (values**2).sum(axis=0))

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    @property
    def images(self) -> int:
        """Images counted (the most any score saw)."""
        return int(self.n.max()) if self.n.size else 0


@dataclass(frozen=True, slots=True)
class Prior:
    """What a category's raw score looks like before the workspace has said anything: mean and sd, (K, C)."""

    mean: np.ndarray
    sd: np.ndarray
    weight: float = PRIOR_IMAGES


def statistics(moments: Moments, prior: Prior) -> tuple[np.ndarray, np.ndarray]:
    """Shrunk mean and sd (K, C): the workspace's moments pooled with `prior.weight` pseudo-images drawn
    from the prior (their mean and second moment), so n = 0 gives the prior and large n the workspace."""
    w = prior.weight
    n = moments.n + w
    mean = (moments.total + w * prior.mean) / np.maximum(n, 1e-12)
    second = (moments.total_sq + w * (prior.sd**2 + prior.mean**2)) / np.maximum(n, 1e-12)
    sd = np.sqrt(np.maximum(second - mean**2, 0.0))
    return mean, np.maximum(sd, MIN_SD)


def standardise(raw: np.ndarray, moments: Moments, prior: Prior) -> np.ndarray:
    """Raw scores (N, K, C) -> z-scores (N, K, C) against the shrunk statistics; a missing (NaN) score and
    a category whose scores do not vary give 0 (no evidence either way)."""
    mean, sd = statistics(moments, prior)
    z = (raw - mean[None]) / sd[None]
    flat = (sd <= MIN_SD * 1.0001)[None] & np.ones_like(z, dtype=bool)
    return np.where(np.isfinite(z) & ~flat, z, 0.0)


def gap(z: np.ndarray) -> np.ndarray:
    """(N, C) -> (N, C): each category's lead over the best other category of the same image (positive only
    for the image's best category). One category alone leads by its own score."""
    if z.shape[1] < 2:
        return z.copy()
    order = np.sort(z, axis=1)
    best, second = order[:, -1:], order[:, -2:-1]
    other = np.where(z >= best, second, best)
    out: np.ndarray = z - other
    return out


def label_thresholds(
    scores: np.ndarray,
    positives: np.ndarray,
    negatives: np.ndarray,
    default: np.ndarray,
) -> np.ndarray:
    """Per-category thresholds (C,) from a workspace's labels.

    `scores` (N, C) are the labelled images' scores; `positives` / `negatives` (N, C) bool say which
    category each image was labelled as showing / not showing (an image labelled with other categories
    only counts as a negative). A category with at least MIN_LABELS of each gets the threshold that gives
    the best F1 on its labelled images (midway between neighbouring scores), blended with `default` (C,)
    as if the default were LABEL_PRIOR more labelled images; others keep `default`.
    """
    out = np.asarray(default, dtype=np.float64).copy()
    for c in range(scores.shape[1]):
        pos, neg = scores[positives[:, c], c], scores[negatives[:, c], c]
        if len(pos) < MIN_LABELS or len(neg) < MIN_LABELS:
            continue
        best = _best_f1_threshold(pos, neg)
        n = len(pos) + len(neg)
        out[c] = (n * best + LABEL_PRIOR * out[c]) / (n + LABEL_PRIOR)
    return np.clip(out, 0.01, 0.99)


def zero_shot_trust(scores: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """(C,) how far a workspace's labels say zero-shot can be trusted, per category, in [0, 1].

    `scores` (N, C) are the labelled images' zero-shot scores, `positives` / `negatives` (N, C) as for
    `label_thresholds`. Zero-shot never learnt from these labels, so how well its scores separate a
    category's labelled positives from its negatives is an honest measure: 2 * AUC - 1 (0 at chance or
    worse). A category with fewer than MIN_LABELS of either keeps 1 (the prior blend stands). It sets how
    much zero-shot counts beside a trained model (Categoriser): on a source where zero-shot reads the
    categories badly (wallpapers, bench:categories-kshot) the labels' model carries the answer.
    """
    out = np.ones(scores.shape[1])
    for c in range(scores.shape[1]):
        pos, neg = scores[positives[:, c], c], scores[negatives[:, c], c]
        if len(pos) < MIN_LABELS or len(neg) < MIN_LABELS:
            continue
        above = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
        out[c] = float(np.clip(2.0 * above - 1.0, 0.0, 1.0))
    return out


def _best_f1_threshold(pos: np.ndarray, neg: np.ndarray) -> float:
    values = np.unique(np.concatenate([pos, neg]))
    cuts = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    best, best_f1 = float(cuts[0]), -1.0
    for cut in cuts:
        tp = float((pos >= cut).sum())
        fp, fn = float((neg >= cut).sum()), float((pos < cut).sum())
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(cut), f1
    return best


def label_matrices(
    names: Sequence[str], labelled: Mapping[str, tuple[set[str], set[str]]], ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(positives, negatives) (N, C) bool for images `ids` from {image: (shown, not shown)} (category names
    compared without regard to case); an image labelled with other categories only is a negative."""
    index = {name.casefold(): c for c, name in enumerate(names)}
    pos = np.zeros((len(ids), len(names)), dtype=bool)
    neg = np.zeros_like(pos)
    for i, image_id in enumerate(ids):
        shown, hidden = labelled.get(image_id, (set(), set()))
        for name in shown:
            if name.casefold() in index:
                pos[i, index[name.casefold()]] = True
        for name in hidden:
            if name.casefold() in index:
                neg[i, index[name.casefold()]] = True
        if pos[i].any():
            neg[i] |= ~pos[i]
    return pos, neg
