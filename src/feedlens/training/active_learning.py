"""Active learning: which unlabelled images to label next, from a model's class probabilities and embeddings.

Uncertainty, per image from its (K,) class probabilities, each in [0, 1] (0 = certain; 1 = as unsure as a
K-way guess can be, except least confidence, whose maximum is 1 - 1/K):

- least confidence: 1 - p1 (p1 >= p2 >= ... the sorted probabilities);
- margin: 1 - (p1 - p2), the best-versus-second-best gap (Scheffer et al. 2001); with K = 1 it is 0;
- entropy: -sum p log p / log K (0 when K = 1).

Diversity (`select`). Taking the n most uncertain images often gives n near-copies: a burst of similar posts
sits on the same decision boundary, and labelling one of them teaches the model nearly all the others would.
So, after Zhdanov's "Diverse mini-batch active learning" (2019): the `candidate_factor * n` most uncertain
images are clustered with k-means into n clusters (L2-normalised embeddings, so distance is cosine-like,
each image weighted by its uncertainty so centroids lean to the uncertain regions); picks go round-robin over
the clusters, most uncertain cluster first, each time the cluster's most uncertain image not yet taken. With
k = n that is one pick per cluster unless k-means finds fewer distinct clusters (duplicates). The prefilter
keeps the picks uncertain; the clustering spreads them. Limit: a group of near-copies larger than the
candidate set fills it and is then split by k-means; raise `candidate_factor` for such pools.

`random` is the baseline: a seeded uniform sample that ignores probabilities and embeddings.
Errors are `ActiveLearningError`, with stable codes (`ActiveLearningCode`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from feedlens.core.errors import FeedlensError

CANDIDATE_FACTOR = 10  # Zhdanov (2019) prefilters 10x the batch
MINIBATCH_ABOVE = 5000  # candidates beyond which MiniBatchKMeans replaces full k-means (speed)
SUM_TOLERANCE = 1e-3  # float32 softmax rows sum to 1 within ~1e-6; more is a caller error, not rounding


class Strategy(StrEnum):
    """How uncertain an image is (or `random`). Stable strings."""

    LEAST_CONFIDENCE = "least_confidence"
    MARGIN = "margin"
    ENTROPY = "entropy"
    RANDOM = "random"


class ActiveLearningCode(StrEnum):
    """Why an active-learning request was refused. Stable strings."""

    UNKNOWN_STRATEGY = "unknown_strategy"
    BAD_PROBABILITIES = "bad_probabilities"
    BAD_EMBEDDINGS = "bad_embeddings"
    BAD_ARGUMENT = "bad_argument"


class ActiveLearningError(FeedlensError):
    """Bad input to active learning: the caller's fault. `code` is an `ActiveLearningCode` value."""

    http_status = 422

    def __init__(self, code: ActiveLearningCode, message: str) -> None:
        super().__init__(message)
        self.code = code.value
        self.al_code = code


def parse_strategy(name: str | Strategy) -> Strategy:
    """The `Strategy` named `name`; `ActiveLearningError(unknown_strategy)` listing the valid names."""
    try:
        return Strategy(name)
    except ValueError:
        valid = ", ".join(s.value for s in Strategy)
        raise ActiveLearningError(
            ActiveLearningCode.UNKNOWN_STRATEGY, f"unknown strategy {name!r}; valid: {valid}"
        ) from None


def check_proba(proba: Any, tolerance: float = SUM_TOLERANCE) -> np.ndarray:
    """`proba` as float64 (N, K) after checking it: finite, >= 0, rows summing to 1 within `tolerance`."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ActiveLearningError(
            ActiveLearningCode.BAD_PROBABILITIES, f"probabilities must have shape (N, K>=1), got {p.shape}"
        )
    if not np.isfinite(p).all():
        rows = np.flatnonzero(~np.isfinite(p).all(axis=1))
        raise ActiveLearningError(
            ActiveLearningCode.BAD_PROBABILITIES, f"{len(rows)} rows hold NaN or inf (first: row {rows[0]})"
        )
    if (p < 0).any():
        rows = np.flatnonzero((p < 0).any(axis=1))
        raise ActiveLearningError(
            ActiveLearningCode.BAD_PROBABILITIES,
            f"{len(rows)} rows hold negative values (first: row {rows[0]})",
        )
    off = np.abs(p.sum(axis=1) - 1.0) > tolerance
    if off.any():
        first = int(np.flatnonzero(off)[0])
        raise ActiveLearningError(
            ActiveLearningCode.BAD_PROBABILITIES,
            f"{int(off.sum())} rows do not sum to 1 (row {first} sums to {p[first].sum():.6g}); "
            "pass softmax probabilities, not logits",
        )
    return p


def least_confidence(proba: Any) -> np.ndarray:
    """(N, K) probabilities -> (N,) 1 - max probability."""
    p = check_proba(proba)
    return np.asarray(1.0 - p.max(axis=1))


def margin(proba: Any) -> np.ndarray:
    """(N, K) probabilities -> (N,) 1 - (p1 - p2), the gap between the two most likely classes."""
    p = check_proba(proba)
    if p.shape[1] == 1:
        return np.zeros(len(p))  # one class: nothing to choose between
    top2 = np.sort(p, axis=1)[:, -2:]
    return np.asarray(1.0 - (top2[:, 1] - top2[:, 0]))


def entropy(proba: Any) -> np.ndarray:
    """(N, K) probabilities -> (N,) Shannon entropy divided by log K, in [0, 1]."""
    p = check_proba(proba)
    k = p.shape[1]
    if k == 1:
        return np.zeros(len(p))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)  # 0 log 0 = 0
    return np.asarray(np.clip(-terms.sum(axis=1) / np.log(k), 0.0, 1.0))


def uncertainty(proba: Any, strategy: Strategy | str) -> np.ndarray:
    """(N,) uncertainty of each row of (N, K) `proba` by `strategy` (not `random`, which has none)."""
    measure = parse_strategy(strategy)
    if measure is Strategy.RANDOM:
        raise ActiveLearningError(ActiveLearningCode.BAD_ARGUMENT, "`random` is not an uncertainty measure")
    fn = {Strategy.LEAST_CONFIDENCE: least_confidence, Strategy.MARGIN: margin, Strategy.ENTROPY: entropy}
    return fn[measure](proba)


@dataclass(frozen=True, slots=True)
class Pick:
    """One image to label and why: its uncertainty (None for `random`) and its cluster among the candidates
    (None without diversity). `rank` 0 is labelled first."""

    index: int
    rank: int
    uncertainty: float | None
    cluster: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "rank": self.rank,
            "uncertainty": self.uncertainty,
            "cluster": self.cluster,
        }


@dataclass(frozen=True)
class Selection:
    """The picks in labelling order, and how they were chosen."""

    picks: tuple[Pick, ...]
    strategy: Strategy
    diversity: bool
    candidates: int  # how many images the clustering saw (0 without diversity)
    clusters: int  # how many non-empty clusters it found

    @property
    def indices(self) -> np.ndarray:
        """(n,) int64 row indices into the pool, in labelling order."""
        return np.array([p.index for p in self.picks], dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy.value,
            "diversity": self.diversity,
            "candidates": self.candidates,
            "clusters": self.clusters,
            "picks": [p.to_dict() for p in self.picks],
        }


def _check_embeddings(embeddings: Any, n_rows: int) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != n_rows or (n_rows and x.shape[1] == 0):
        raise ActiveLearningError(
            ActiveLearningCode.BAD_EMBEDDINGS, f"embeddings must have shape ({n_rows}, D>=1), got {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ActiveLearningError(ActiveLearningCode.BAD_EMBEDDINGS, "embeddings hold NaN or inf")
    return x


def _cluster(x: np.ndarray, weights: np.ndarray, k: int, seed: int) -> np.ndarray:
    """(M, D) embeddings -> (M,) cluster ids in [0, k), uncertainty-weighted k-means on unit vectors."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.preprocessing import normalize

    if k <= 1 or len(x) <= 1:
        return np.zeros(len(x), dtype=np.int64)
    unit = normalize(x)  # zero rows stay zero
    w = weights + 1e-6  # all-certain candidates (weights 0) must still count
    if len(x) > MINIBATCH_ABOVE:
        model: KMeans | MiniBatchKMeans = MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=1024)
    else:
        model = KMeans(k, random_state=seed, n_init=3)
    with warnings.catch_warnings():  # duplicates give fewer distinct clusters than k: handled by round-robin
        warnings.simplefilter("ignore", ConvergenceWarning)
        return np.asarray(model.fit_predict(unit, sample_weight=w), dtype=np.int64)


def select(
    proba: Any,
    embeddings: Any,
    n: int,
    strategy: Strategy | str = Strategy.MARGIN,
    seed: int = 0,
    *,
    diversity: bool = True,
    candidate_factor: int = CANDIDATE_FACTOR,
) -> Selection:
    """The next `n` images to label from a pool of N: (N, K) `proba`, (N, D) `embeddings`.

    n > N gives all N (in order). Ties in uncertainty go to the lower index; `seed` fixes k-means (and the
    `random` sample), so the same inputs and seed give the same picks. `diversity=False`: the n most
    uncertain, no clustering. Raises `ActiveLearningError` for bad inputs.
    """
    measure = parse_strategy(strategy)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ActiveLearningError(ActiveLearningCode.BAD_ARGUMENT, f"n must be an integer >= 0, got {n!r}")
    if candidate_factor < 1:
        raise ActiveLearningError(
            ActiveLearningCode.BAD_ARGUMENT, f"candidate_factor must be >= 1, got {candidate_factor}"
        )
    p = check_proba(proba)
    x = _check_embeddings(embeddings, len(p))
    n = min(int(n), len(p))
    if measure is Strategy.RANDOM:
        chosen = np.random.default_rng(seed).choice(len(p), size=n, replace=False)
        picks = tuple(Pick(int(i), r, None, None) for r, i in enumerate(chosen))
        return Selection(picks, measure, False, 0, 0)
    u = uncertainty(p, measure)
    order = np.argsort(-u, kind="stable")  # most uncertain first, ties by index
    if not diversity or n == 0:
        picks = tuple(Pick(int(i), r, float(u[i]), None) for r, i in enumerate(order[:n]))
        return Selection(picks, measure, False, 0, 0)
    candidates = order[: min(len(p), candidate_factor * n)]
    labels = _cluster(x[candidates], u[candidates], n, seed)
    # members of each cluster, most uncertain first (candidates are already in that order)
    members: dict[int, list[int]] = {}
    for position, cluster in enumerate(labels):
        members.setdefault(int(cluster), []).append(position)
    queue = sorted(members, key=lambda c: members[c][0])  # cluster order: by its most uncertain member
    picks_list: list[Pick] = []
    depth = 0
    while len(picks_list) < n:
        for cluster in queue:
            if depth < len(members[cluster]) and len(picks_list) < n:
                index = int(candidates[members[cluster][depth]])
                picks_list.append(Pick(index, len(picks_list), float(u[index]), cluster))
        depth += 1
    # ids renumbered in pick order so they read 0, 1, 2... whatever k-means called them
    renumber = {c: i for i, c in enumerate(dict.fromkeys(p.cluster for p in picks_list))}
    picks = tuple(Pick(p.index, p.rank, p.uncertainty, renumber[p.cluster]) for p in picks_list)
    return Selection(picks, measure, True, len(candidates), len(members))
