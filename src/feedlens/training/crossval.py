"""Few labels: train on all of them and measure by k-fold cross-validation instead of a held-out split.

With 5 labels per category a 70/15/15 split learns from 3 and reports a score on one or two test images
per category: a number that means nothing. Below `CV_BELOW` labels in the smallest category a probe is
trained on every label, and its figures come from stratified k-fold cross-validation of the same recipe
(the linear head refitted on k-1 folds, scored on the fold left out), so every label is scored once by a
model that never saw it. The folds share one pass of the backbone: features are computed once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from feedlens.training.datasets import Item, LabelledDataset

# The smallest category has fewer labels than this: train on all, cross-validate. At 10 labels a category a
# 70/15/15 split trains on 7 and picks C on one or two validation images per category; training on all 10
# scored 0.73 against 0.70 on Tux Paint stamps, 0.98 against 0.97 on GCompris images (bench:categories-kshot).
CV_BELOW = 20
MAX_FOLDS = 5
# Fine-tuning holds back validation and test images (70/15/15) and stops early on the validation loss:
# below this many labels per category that is one image or none per part, so it learns from noise.
FINETUNE_MIN_LABELS = 10


def cross_validates(data: LabelledDataset, mode: str, split: str) -> bool:
    """Whether `train_model` trains on every label and cross-validates (probe, stratified split, the
    smallest category between 2 and CV_BELOW - 1 labels; one label cannot be scored by a model without it)."""
    smallest = min(data.counts().values())
    return mode == "probe" and split == "stratified" and 2 <= smallest < CV_BELOW


def finetune_shortfall(counts: dict[str, int]) -> str | None:
    """Why `counts` (category -> labelled images) are too few to fine-tune on, or None when enough."""
    short = {name: n for name, n in counts.items() if n < FINETUNE_MIN_LABELS}
    if not short:
        return None
    listed = ", ".join(
        f"{name!r} has {n} ({FINETUNE_MIN_LABELS - n} more)" for name, n in sorted(short.items())
    )
    return (
        f"fine-tuning needs at least {FINETUNE_MIN_LABELS} labelled images in every category: {listed}; "
        "label more, or train a probe (--mode probe), which learns from every label you have"
    )


def folds(items: Sequence[Item], seed: str | int) -> list[int]:
    """The fold (0..k-1) of each item, k = min(MAX_FOLDS, smallest class): within each class the items are
    ordered by sha256(seed, key) and dealt round-robin, so every fold holds every class and every training
    part keeps at least one item of each. Copies of one item (oversampling) share its fold."""
    labels = {item.key: item.label for item in items}
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    k = max(2, min(MAX_FOLDS, *counts.values()))
    order = sorted(
        labels, key=lambda key: (labels[key], hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest())
    )
    fold_of: dict[str, int] = {}
    dealt: dict[str, int] = {}
    for key in order:
        fold_of[key] = dealt.get(labels[key], 0) % k
        dealt[labels[key]] = dealt.get(labels[key], 0) + 1
    return [fold_of[item.key] for item in items]


def out_of_fold(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    fold: Sequence[int],
    class_weights: Sequence[float] | None = None,
) -> np.ndarray:
    """(N, K) probabilities of each item from a linear head fitted without its fold; `features` (N, D)."""
    from feedlens.training.probe import fit_linear_head

    fold_of = np.asarray(fold)
    out = np.zeros((len(labels), num_classes), dtype=np.float64)
    with threadpool_limits(1):  # small problems: threaded BLAS only spins
        for k in sorted(set(fold)):
            held = fold_of == k
            w, b = fit_linear_head(features[~held], labels[~held], num_classes, class_weights=class_weights)
            logits = features[held].astype(np.float64) @ w.T.astype(np.float64) + b
            logits -= logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            out[held] = e / e.sum(axis=1, keepdims=True)
    return out
