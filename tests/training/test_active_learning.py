"""Active learning on constructed pools whose uncertainties and clusters are known by construction."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from feedlens.core.errors import FeedlensError
from feedlens.training.active_learning import (
    ActiveLearningError,
    Strategy,
    entropy,
    least_confidence,
    margin,
    parse_strategy,
    select,
    uncertainty,
)

# Rows chosen so the three measures rank them differently (values worked out by hand below).
ROWS = {
    "f": [0.40, 0.40, 0.20, 0.00],  # LC 0.60, margin 1.00, entropy 0.761
    "g": [0.50, 0.20, 0.15, 0.15],  # LC 0.50, margin 0.70, entropy 0.893
    "h": [0.45, 0.20, 0.20, 0.15],  # LC 0.55, margin 0.75, entropy 0.929
    "i": [0.70, 0.30, 0.00, 0.00],  # LC 0.30, margin 0.60, entropy 0.441
    "j": [0.48, 0.47, 0.05, 0.00],  # LC 0.52, margin 0.99, entropy 0.618
    "sure": [1.00, 0.00, 0.00, 0.00],
}
NAMES = list(ROWS)
PROBA = np.array(list(ROWS.values()))


def _entropy(row: list[float]) -> float:
    return -sum(p * math.log(p) for p in row if p > 0) / math.log(len(row))


def test_measures_match_their_definitions() -> None:
    np.testing.assert_allclose(least_confidence(PROBA), [0.6, 0.5, 0.55, 0.3, 0.52, 0.0])
    np.testing.assert_allclose(margin(PROBA), [1.0, 0.7, 0.75, 0.6, 0.99, 0.0])
    np.testing.assert_allclose(entropy(PROBA), [_entropy(r) for r in ROWS.values()])
    assert entropy(np.full((1, 4), 0.25))[0] == pytest.approx(1.0)
    assert entropy(PROBA)[-1] == 0.0


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (Strategy.LEAST_CONFIDENCE, ["f", "h", "j"]),
        (Strategy.MARGIN, ["f", "j", "h"]),
        (Strategy.ENTROPY, ["h", "g", "f"]),
    ],
)
def test_each_measure_picks_its_most_uncertain_rows_in_order(strategy: Strategy, expected: list[str]) -> None:
    embeddings = np.random.default_rng(0).normal(size=(len(PROBA), 8))
    chosen = select(PROBA, embeddings, 3, strategy, diversity=False)
    assert [NAMES[i] for i in chosen.indices] == expected
    scores = uncertainty(PROBA, strategy)
    assert [p.uncertainty for p in chosen.picks] == pytest.approx([scores[NAMES.index(n)] for n in expected])
    assert [p.rank for p in chosen.picks] == [0, 1, 2]


def _clustered_pool() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Five groups on orthogonal axes: group 0 is 30 near-copies (noise 1e-3) and the most uncertain of all;
    groups 1-4 have 10 looser members each, less uncertain. -> (proba, embeddings, group)."""
    rng = np.random.default_rng(42)
    sizes = [30, 10, 10, 10, 10]
    group = np.repeat(np.arange(5), sizes)
    axes = np.eye(16)[group] * 5.0
    noise = np.where(group[:, None] == 0, 1e-3, 0.3)
    embeddings = axes + rng.normal(size=axes.shape) * noise
    u = np.where(group == 0, rng.uniform(0.90, 0.99, len(group)), rng.uniform(0.30, 0.80, len(group)))
    # a 3-class row with margin exactly u: (1 - 2u/3, u/3, u/3), so p1 - p2 = 1 - u
    proba = np.stack([1.0 - 2 * u / 3, u / 3, u / 3], axis=1)
    np.testing.assert_allclose(margin(proba), u)
    return proba, embeddings, group


def test_diversity_spreads_picks_over_clusters_not_near_copies() -> None:
    proba, embeddings, group = _clustered_pool()
    u = margin(proba)
    plain = select(proba, embeddings, 5, Strategy.MARGIN, diversity=False)
    assert set(group[plain.indices]) == {0}  # uncertainty alone: five near-copies
    diverse = select(proba, embeddings, 5, Strategy.MARGIN, seed=3)
    # one pick per group, and each the most uncertain member of its group among the 50 candidates
    candidates = set(np.argsort(-u, kind="stable")[:50].tolist())
    expected = {
        max((i for i in candidates if group[i] == g), key=lambda i: u[i])
        for g in range(5)
        if any(group[i] == g for i in candidates)
    }
    assert set(diverse.indices.tolist()) == expected
    assert len(expected) == 5  # the construction puts every group among the candidates
    first = diverse.picks[0]
    assert group[first.index] == 0 and first.index == int(np.argmax(u))  # most uncertain cluster first
    assert [p.cluster for p in diverse.picks] == [0, 1, 2, 3, 4]
    assert diverse.candidates == 50 and diverse.clusters == 5
    assert [p.uncertainty for p in diverse.picks] == pytest.approx(sorted(u[diverse.indices], reverse=True))
    json.dumps(diverse.to_dict())  # the reasons an API shows


def test_picks_round_robin_when_clusters_run_short() -> None:
    # 4 distinct points, each duplicated: k-means finds at most 4 clusters for n = 6
    base = np.eye(4)
    embeddings = np.repeat(base, 3, axis=0)
    u = np.linspace(0.9, 0.1, 12)
    proba = np.stack([1 - u / 2, u / 2], axis=1)  # margin = u
    chosen = select(proba, embeddings, 6, Strategy.MARGIN)
    assert len(set(chosen.indices.tolist())) == 6
    point = chosen.indices // 3
    assert set(point[:4].tolist()) == {0, 1, 2, 3}  # every cluster once before any twice


def test_selection_is_reproducible_for_a_seed() -> None:
    rng = np.random.default_rng(7)
    proba = rng.dirichlet(np.ones(5), size=200)
    embeddings = rng.normal(size=(200, 32))
    for strategy in Strategy:
        a = select(proba, embeddings, 12, strategy, seed=5)
        b = select(proba, embeddings, 12, strategy, seed=5)
        assert a == b
    r1 = select(proba, embeddings, 12, Strategy.RANDOM, seed=1).indices
    r2 = select(proba, embeddings, 12, Strategy.RANDOM, seed=2).indices
    assert not np.array_equal(r1, r2) and len(set(r1.tolist())) == 12


def test_edge_cases() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=4)
    embeddings = rng.normal(size=(4, 8))
    assert sorted(select(proba, embeddings, 10).indices.tolist()) == [0, 1, 2, 3]  # n > N: all of them
    assert len(select(proba, embeddings, 0).picks) == 0
    empty = select(np.zeros((0, 3)), np.zeros((0, 8)), 5)
    assert empty.picks == () and empty.indices.shape == (0,)
    one_class = np.ones((6, 1))
    picked = select(one_class, rng.normal(size=(6, 4)), 3, Strategy.ENTROPY)
    assert len(picked.picks) == 3 and all(p.uncertainty == 0.0 for p in picked.picks)
    assert margin(one_class).tolist() == [0.0] * 6


@pytest.mark.parametrize(
    ("proba", "embeddings", "n", "strategy", "code"),
    [
        ([[0.5, np.nan]], [[1.0]], 1, "margin", "bad_probabilities"),
        ([[1.2, -0.2]], [[1.0]], 1, "margin", "bad_probabilities"),
        ([[2.0, 1.0]], [[1.0]], 1, "margin", "bad_probabilities"),  # logits, not probabilities
        ([0.5, 0.5], [[1.0]], 1, "margin", "bad_probabilities"),  # 1-D
        ([[0.5, 0.5]], [[1.0], [2.0]], 1, "margin", "bad_embeddings"),
        ([[0.5, 0.5]], [[np.inf]], 1, "margin", "bad_embeddings"),
        ([[0.5, 0.5]], [[1.0]], -1, "margin", "bad_argument"),
        ([[0.5, 0.5]], [[1.0]], 1, "confusion", "unknown_strategy"),
    ],
)
def test_bad_inputs_raise_typed_errors(
    proba: object, embeddings: object, n: int, strategy: str, code: str
) -> None:
    with pytest.raises(ActiveLearningError) as caught:
        select(proba, embeddings, n, strategy)
    assert caught.value.code == code
    assert isinstance(caught.value, FeedlensError) and caught.value.to_dict()["code"] == code


def test_strategy_names() -> None:
    assert parse_strategy("entropy") is Strategy.ENTROPY
    with pytest.raises(ActiveLearningError, match="least_confidence, margin, entropy, random"):
        parse_strategy("max_entropy")
    with pytest.raises(ActiveLearningError) as caught:
        uncertainty(PROBA, "random")
    assert caught.value.code == "bad_argument"
