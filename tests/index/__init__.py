"""Tests of the vector indexes, with a shared generator of clustered test vectors."""

from __future__ import annotations

import numpy as np


def clustered(n: int, dim: int, seed: int = 0, clusters: int = 50, spread: float = 0.6) -> np.ndarray:
    """Unit vectors from a Gaussian mixture: `clusters` random centres, each point centre + spread * noise.

    Neighbours are meaningful (a point's nearest are mostly its cluster's) without being trivially apart.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    points = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, dim)).astype(np.float32)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def image_ids(n: int, start: int = 0) -> list[str]:
    """Ids shaped like image ids (24 hex digits)."""
    return [f"{i:024x}" for i in range(start, start + n)]


def recall(found: list[list[tuple[str, float]]], truth: list[list[tuple[str, float]]]) -> float:
    """Mean share of each true top-k that was found."""
    hits = [
        len({i for i, _ in f} & {i for i, _ in t}) / max(len(t), 1) for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits))


def assert_same(got: list[list[tuple[str, float]]], want: list[list[tuple[str, float]]]) -> None:
    """Same ids in the same order, scores equal to float32 rounding."""
    assert [[i for i, _ in row] for row in got] == [[i for i, _ in row] for row in want]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose([s for _, s in g], [s for _, s in w], atol=1e-5)
