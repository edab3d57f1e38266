"""Trained category models: a linear probe per category on stored embeddings and caption features,
blended with zero-shot by how many labels the category has.

Features per image (2048,): the backbone's visual vector (1280), the content vector (384) and the caption
embedding (384, zeros without a caption), each unit norm. One-vs-rest logistic regression with balanced
class weights: a team's labels are rarely balanced and a category with 5 examples among 200 would
otherwise never fire.

Blend: score = a * trained + (1 - a) * zero_shot with a = n / (n + BLEND_PRIOR), n the category's
positive labels: two labels give the trained model half the say, ten labels 5/6. The prior was measured
on the development split (docs/categories.md): with as few as 5 labels per category the trained model is
already better than zero-shot there, so it takes over quickly.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from feedlens.services.categories.zero_shot import Evidence

VISUAL_DIM, CONTENT_DIM, CAPTION_DIM = 1280, 384, 384
DIM = VISUAL_DIM + CONTENT_DIM + CAPTION_DIM
BLEND_PRIOR = 2.0  # best of 1, 2, 5, 10, 20 on the development split (docs/categories.md)
REGULARISATION_C = 10.0  # sklearn's C: best of 0.1, 1 and 10 (with that prior) on the development split


class TrainingDataError(ValueError):
    """Not enough labels to train anything (every category needs a positive and a negative example)."""


def head_features(evidence: Sequence[Evidence]) -> np.ndarray:
    """(N, 1280 + 2T) float32: visual | content | caption, zeros for a missing part. T is the text
    encoder's dimension (384 for MiniLM; a configured CLIP model's otherwise), read off the vectors."""
    text = next((len(e.content) for e in evidence if e.content is not None), CONTENT_DIM)
    out = np.zeros((len(evidence), VISUAL_DIM + 2 * text), dtype=np.float32)
    for i, item in enumerate(evidence):
        if item.visual is not None:
            out[i, :VISUAL_DIM] = item.visual
        if item.content is not None:
            out[i, VISUAL_DIM : VISUAL_DIM + text] = item.content
        if item.caption_vector is not None:
            out[i, VISUAL_DIM + text :] = item.caption_vector
    return out


@dataclass(frozen=True)
class CategoryHead:
    """One logistic classifier per category it was trained for (others stay zero-shot only)."""

    categories: tuple[str, ...]
    coef: np.ndarray  # (K, DIM) float64
    intercept: np.ndarray  # (K,)
    positives: np.ndarray  # (K,) int: labelled examples of each category

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N, DIM) -> (N, K) probabilities."""
        z = x.astype(np.float64) @ self.coef.T + self.intercept
        out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))
        return out

    def blend_weights(self, prior: float = BLEND_PRIOR) -> np.ndarray:
        """(K,) share of the trained probability in the blended score."""
        n = self.positives.astype(np.float64)
        return n / (n + prior)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            categories=np.array(self.categories, dtype=str),
            coef=self.coef,
            intercept=self.intercept,
            positives=self.positives,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CategoryHead:
        with np.load(io.BytesIO(data), allow_pickle=False) as saved:  # no pickled objects from the database
            return cls(
                categories=tuple(str(c) for c in saved["categories"]),
                coef=saved["coef"].astype(np.float64),
                intercept=saved["intercept"].astype(np.float64),
                positives=saved["positives"].astype(np.int64),
            )


def train_head(
    x: np.ndarray, labels: Sequence[set[str]], categories: Sequence[str], c: float = REGULARISATION_C
) -> CategoryHead:
    """Fit one classifier per category that has at least one positive and one negative example.

    `x` (N, DIM); `labels[i]` the categories image i belongs to (an image labelled only with other
    categories is a negative). Raises TrainingDataError when no category can be trained.
    """
    from sklearn.linear_model import LogisticRegression  # ~1 s to import: only when a head is trained

    if len(x) != len(labels):
        raise ValueError("one label set per feature row")
    trained, coefs, intercepts, counts = [], [], [], []
    for name in categories:
        y = np.array([name in s for s in labels])
        if y.all() or not y.any():
            continue
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
        model.fit(x, y)
        trained.append(name)
        coefs.append(model.coef_[0])
        intercepts.append(model.intercept_[0])
        counts.append(int(y.sum()))
    if not trained:
        raise TrainingDataError(
            "no category has both a labelled example and a labelled image of another category"
        )
    return CategoryHead(
        categories=tuple(trained),
        coef=np.stack(coefs).astype(np.float64),
        intercept=np.array(intercepts, dtype=np.float64),
        positives=np.array(counts, dtype=np.int64),
    )
