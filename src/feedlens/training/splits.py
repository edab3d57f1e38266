"""Splitting a labelled dataset (stratified, seeded, stable across machines) and its class balance:
counts and warnings per class and part, balanced class weights, minority oversampling."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from feedlens.training.datasets import Item, LabelledDataset


@dataclass(frozen=True)
class Split:
    """Disjoint train/validation/test items of `dataset`, each sorted by key."""

    dataset: LabelledDataset
    train: tuple[Item, ...]
    val: tuple[Item, ...]
    test: tuple[Item, ...]
    seed: str
    val_fraction: float
    test_fraction: float

    def parts(self) -> dict[str, tuple[Item, ...]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def _order(seed: str, key: str) -> str:
    return hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest()


def _round(x: float) -> int:
    return math.floor(x + 0.5)  # half up: Python's round() is half-to-even, a surprise in counts


def _check_fractions(val: float, test: float) -> None:
    if val < 0 or test < 0 or val + test >= 1:
        raise ValueError(f"need val >= 0, test >= 0 and val + test < 1, got val={val}, test={test}")


def split(
    dataset: LabelledDataset, val: float = 0.15, test: float = 0.15, seed: str | int = "feedlens"
) -> Split:
    """Stratified split, the same on every machine: within each class items are ordered by
    sha256(seed, key); the first round(n * test) go to test, the next round(n * val) to validation, the rest
    to train. Every class keeps >= 1 item in train, and >= 1 in validation and in test (when that fraction is
    > 0) once it has >= 3 items."""
    _check_fractions(val, test)
    seed = str(seed)
    parts: dict[str, list[Item]] = {"train": [], "val": [], "test": []}
    for name in dataset.classes:
        members = sorted((i for i in dataset.items if i.label == name), key=lambda i: _order(seed, i.key))
        n = len(members)
        n_test, n_val = _round(n * test), _round(n * val)
        if n >= 3:
            n_test, n_val = max(n_test, 1 if test > 0 else 0), max(n_val, 1 if val > 0 else 0)
        while n_test + n_val > n - 1:  # train keeps one; shrink the larger share (validation on ties)
            if n_val >= n_test:
                n_val -= 1
            else:
                n_test -= 1
        parts["test"] += members[:n_test]
        parts["val"] += members[n_test : n_test + n_val]
        parts["train"] += members[n_test + n_val :]
    ordered = {k: tuple(sorted(v, key=lambda i: i.key)) for k, v in parts.items()}
    return Split(dataset, ordered["train"], ordered["val"], ordered["test"], seed, val, test)


def stable_split(
    dataset: LabelledDataset, val: float = 0.15, test: float = 0.15, seed: str | int = "feedlens"
) -> Split:
    """A split in which each item's part depends on the item alone: u = sha256(seed, key) as a number in
    [0, 1); test if u < `test`, validation if u < `test + val`, else train. Growing the dataset never moves
    an existing item to another part, so models retrained as labels arrive (the feedback loop) are all
    evaluated on data none of them trained on. The one exception: a class with no training item gets its
    highest-u item moved to train (a model cannot learn a class it never sees)."""
    _check_fractions(val, test)
    seed = str(seed)
    parts: dict[str, list[Item]] = {"train": [], "val": [], "test": []}
    for name in dataset.classes:
        members = sorted((i for i in dataset.items if i.label == name), key=lambda i: _order(seed, i.key))
        share = [int(_order(seed, i.key)[:16], 16) / 16**16 for i in members]
        chosen: dict[str, list[Item]] = {"test": [], "val": [], "train": []}
        for item, u in zip(members, share, strict=True):
            chosen["test" if u < test else "val" if u < test + val else "train"].append(item)
        if not chosen["train"]:
            donor = "val" if chosen["val"] else "test"
            chosen["train"].append(chosen[donor].pop())  # members are in u order: pop() is the highest u
        for part, items in chosen.items():
            parts[part] += items
    ordered = {k: tuple(sorted(v, key=lambda i: i.key)) for k, v in parts.items()}
    return Split(dataset, ordered["train"], ordered["val"], ordered["test"], seed, val, test)


@dataclass(frozen=True)
class ClassReport:
    """Counts per class (total and per split part), imbalance and warnings about under-represented classes."""

    counts: dict[str, dict[str, int]]  # class -> {"total", "train", "val", "test"}
    imbalance_ratio: float  # largest class / smallest class (totals)
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "imbalance_ratio": self.imbalance_ratio, "warnings": self.warnings}


def class_report(data: LabelledDataset | Split, min_count: int = 10, min_share: float = 0.2) -> ClassReport:
    """A class is under-represented when it has fewer than `min_share` of the largest class's items, or
    fewer than `min_count` while the largest has `min_count` or more; each one gets a warning naming the
    remedy (class weights or resampling). The largest class never is. When every class is under
    `min_count`, one warning says the whole set is small instead of blaming each class."""
    dataset = data.dataset if isinstance(data, Split) else data
    totals = dataset.counts()
    counts: dict[str, dict[str, int]] = {name: {"total": n} for name, n in totals.items()}
    if isinstance(data, Split):
        for part, items in data.parts().items():
            found = Counter(i.label for i in items)
            for name in dataset.classes:
                counts[name][part] = found[name]
    largest = max(totals.values())
    warnings = [
        f"class {name!r} is under-represented: {n} images (largest class {largest}); "
        "use class weights or resampling, and expect its metrics to be noisy"
        for name, n in totals.items()
        if n < min_share * largest or n < min_count <= largest
    ]
    if largest < min_count:
        warnings.append(
            f"few labels: every class has fewer than {min_count} images (from {min(totals.values())} to "
            f"{largest}); label more to make the model and its figures dependable"
        )
    return ClassReport(counts, largest / min(totals.values()), warnings)


def class_weights(items: Sequence[Item], classes: Sequence[str]) -> np.ndarray:
    """Balanced weights n / (k * n_c), shape (k,), float64, in `classes` order; 0 for a class absent here."""
    found = Counter(i.label for i in items)
    n, k = len(items), len(classes)
    return np.array([n / (k * found[c]) if found[c] else 0.0 for c in classes], dtype=np.float64)


def resample(data: Split, seed: str | int | None = None) -> Split:
    """The split with its train part oversampled so every class has as many items as the largest; validation
    and test untouched. Extra copies cycle through the class in sha256(seed, "resample", key) order, so each
    item is repeated floor or ceil of the same count, identically on every machine."""
    seed = data.seed if seed is None else str(seed)
    by_class: dict[str, list[Item]] = {}
    for item in data.train:
        by_class.setdefault(item.label, []).append(item)
    target = max(len(v) for v in by_class.values())
    out: list[Item] = []
    for members in by_class.values():
        ordered = sorted(members, key=lambda i: _order(f"{seed}\0resample", i.key))
        extra = target - len(members)
        out += members + ordered * (extra // len(members)) + ordered[: extra % len(members)]
    return replace(data, train=tuple(sorted(out, key=lambda i: i.key)))
