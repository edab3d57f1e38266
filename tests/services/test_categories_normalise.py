"""Unit tests of per-workspace normalisation, the everyday-label bridge, thresholds from labels and the
refresh schedule, on small constructed inputs (no model is loaded)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import numpy as np
import pytest
from sqlalchemy.orm import Session

from feedlens.core.taxonomy import parse_taxonomy
from feedlens.services.categories import workspace_stats as wstats
from feedlens.services.categories.bridge import LabelSpace, bridge_scores, label_vector, relevance, share_out
from feedlens.services.categories.categoriser import Categoriser
from feedlens.services.categories.fusion import SOURCES, Fusion, zero_shot
from feedlens.services.categories.normalise import (
    MIN_SD,
    Moments,
    Prior,
    gap,
    label_matrices,
    label_thresholds,
    standardise,
    statistics,
    zero_shot_trust,
)
from feedlens.services.categories.workspace_stats import REFRESH_UP_TO, needs_refresh
from feedlens.services.categories.zero_shot import CompiledTaxonomy, Evidence
from feedlens.storage import categories as categories_storage

PRIOR = Prior(mean=np.array([[0.2, 0.4]]), sd=np.array([[0.1, 0.2]]), weight=10.0)


def raw_of(*rows: tuple[float, float]) -> np.ndarray:
    """(N, 1, 2): one component, two categories."""
    return np.array(rows, dtype=np.float64)[:, None, :]


def test_an_empty_library_is_read_against_the_prior() -> None:
    mean, sd = statistics(Moments.empty(1, 2), PRIOR)
    np.testing.assert_allclose(mean, PRIOR.mean)
    np.testing.assert_allclose(sd, PRIOR.sd)
    z = standardise(raw_of((0.3, 0.4)), Moments.empty(1, 2), PRIOR)
    np.testing.assert_allclose(z[0, 0], [1.0, 0.0])


def test_one_image_moves_the_statistics_a_little_and_many_move_them_all_the_way() -> None:
    one = Moments.of(raw_of((0.9, 0.9)))
    mean, _ = statistics(one, PRIOR)
    assert mean[0, 0] == pytest.approx((0.9 + 10 * 0.2) / 11)
    rng = np.random.default_rng(0)
    many = raw_of(*[(float(a), float(b)) for a, b in rng.normal(0.6, 0.05, size=(5000, 2))])
    mean, sd = statistics(Moments.of(many), PRIOR)
    assert mean[0] == pytest.approx([0.6, 0.6], abs=0.01) and sd[0] == pytest.approx([0.05, 0.05], abs=0.01)


def test_moments_merge_in_any_order_and_skip_missing_scores() -> None:
    a, b = raw_of((0.1, np.nan), (0.3, 0.5)), raw_of((0.7, 0.2))
    merged = Moments.of(a) + Moments.of(b)
    whole = Moments.of(np.concatenate([b, a]))
    for x, y in ((merged.n, whole.n), (merged.total, whole.total), (merged.total_sq, whole.total_sq)):
        np.testing.assert_allclose(x, y)
    assert merged.n.tolist() == [[3, 2]] and merged.images == 3
    z = standardise(np.concatenate([a, b]), merged, PRIOR)
    assert z[0, 0, 1] == 0.0 and np.isfinite(z).all()  # a missing score is no evidence either way


def test_constant_scores_and_a_category_without_evidence_give_no_signal() -> None:
    flat = Prior(mean=np.zeros((1, 2)), sd=np.zeros((1, 2)), weight=1.0)
    same = raw_of(*[(0.5, 0.0)] * 20)
    z = standardise(same, Moments.of(same), flat)
    assert np.isfinite(z).all()
    assert (z[:, 0, 1] == 0.0).all()  # never any evidence, no prior spread: z is 0, not a division by 0
    assert np.abs(z[:, 0, 0]).max() < 1.0  # identical images are not told apart
    _, sd = statistics(Moments.of(same), flat)
    assert (sd >= MIN_SD).all()


def test_a_category_near_everything_does_not_absorb_the_library() -> None:
    """The issue's failure: raw scores of one category are high for every image. Read against the
    library, that category keeps only the images where it stands out."""
    rng = np.random.default_rng(1)
    n = 200
    truth = rng.integers(0, 2, size=n)
    music = 0.8 + 0.02 * rng.normal(size=n)  # sits near everything
    animals = 0.2 + 0.3 * (truth == 1) + 0.05 * rng.normal(size=n)
    music[truth == 0] += 0.05  # a little higher where it is music
    raw = np.stack([np.stack([music, animals], axis=1), np.full((n, 2), np.nan)], axis=1)  # (N, 2, C)
    feats = np.zeros((n, 2, 10))
    fusion = Fusion(bias=-1.0, labels=1.0, visual=0.0, lead=1.0)
    flat = Prior(mean=np.zeros((2, 2)), sd=np.full((2, 2), 0.1), weight=1.0)
    taxonomy = parse_taxonomy("categories: [music, animals]")
    compiled = CompiledTaxonomy(taxonomy, 1, (np.zeros((1, 4)),) * 2, (frozenset(),) * 2, prior=flat)
    probs, terms = zero_shot(compiled, feats, raw, Moments.of(raw), fusion)
    best = probs.argmax(axis=1)
    assert (best == truth).mean() > 0.9  # column 0 is music (truth 0), column 1 animals
    assert (probs >= 0.5).mean(axis=0).max() < 0.6
    assert terms.shape == (n, 2, len(SOURCES))


def test_lead_over_the_best_other_category() -> None:
    z = np.array([[2.0, 1.0, -1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(gap(z), [[1.0, -1.0, -3.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(gap(np.array([[0.7]])), [[0.7]])  # one category leads by its own score


def test_thresholds_from_labels() -> None:
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.6], [0.2, 0.7], [0.4, 0.1]])
    pos = np.array([[1, 0], [1, 0], [0, 0], [0, 0], [0, 0]], dtype=bool)
    neg = np.array([[0, 0], [0, 0], [1, 0], [1, 0], [1, 0]], dtype=bool)
    default = np.array([0.5, 0.5])
    found = label_thresholds(scores, pos, neg, default)
    # five labels separate at 0.6 (midway between 0.4 and 0.8), blended with the default as four labels
    assert found[0] == pytest.approx((5 * 0.6 + 4 * 0.5) / 9)
    assert found[1] == 0.5  # no labels for the second category: the default stays
    one = label_thresholds(scores, pos & (np.arange(5)[:, None] == 0), neg, default)
    assert one[0] == 0.5  # one positive is not enough
    empty = label_thresholds(np.zeros((0, 2)), np.zeros((0, 2), bool), np.zeros((0, 2), bool), default)
    np.testing.assert_allclose(empty, default)


def test_label_matrices_read_names_without_case_and_other_positives_as_negatives() -> None:
    labelled = {"a": ({"Animals"}, set()), "b": ({"music"}, {"ANIMALS"}), "c": (set(), {"music"})}
    pos, neg = label_matrices(["animals", "music"], labelled, ["a", "b", "c", "unlabelled"])
    assert pos.tolist() == [[True, False], [False, True], [False, False], [False, False]]
    assert neg.tolist() == [[False, True], [True, False], [False, True], [False, False]]


def test_refresh_schedule_doubles_and_stops() -> None:
    def stats(images: int) -> Moments:
        return Moments(np.full((2, 3), float(images)), np.zeros((2, 3)), np.zeros((2, 3)))

    assert not needs_refresh(stats(0), 0)  # an empty workspace has nothing to recompute
    assert needs_refresh(stats(1), 0) and needs_refresh(stats(16), 8) and not needs_refresh(stats(15), 8)
    assert not needs_refresh(stats(REFRESH_UP_TO + 1), 10)


def space() -> LabelSpace:
    # label axes: cat, guitar, sky; vocabulary categories: animals, music, outdoors (which fits nothing)
    vectors = np.eye(3, 4, dtype=np.float32)
    groups = np.array([[0.6, 0.0, 0.0, 0.8], [0.0, 0.6, 0.0, 0.8], [0.0, 0.0, 0.0, 1.0]], dtype=np.float32)
    return LabelSpace(("cat", "guitar", "sky"), vectors, groups, np.array([0, 1, 2]))


def test_bridge_shares_labels_out_between_categories() -> None:
    prototypes: list[np.ndarray] = [np.eye(1, 4, 0), np.eye(1, 4, 1), np.zeros((0, 4))]
    rho = relevance(prototypes, space())
    assert rho.shape == (3, 3) and (rho[2] == 0).all()  # a category with no texts relates to nothing
    weights = share_out(rho)
    assert weights[0, 0] > 0.99 and weights[1, 1] > 0.99  # cat -> first category, guitar -> second
    assert weights[:, 2].max() < 0.7  # sky fits no category well: not all of it goes anywhere
    index = space().index
    labels = np.stack([label_vector({"cat": 0.9, "unknown": 1.0}, index), label_vector({}, index)])
    scores = bridge_scores(labels, weights, np.array([[0.0, 0.0, 0.95], [0.0, 0.0, 0.0]]))
    assert scores[0, 0] == pytest.approx(0.9 * weights[0, 0]) and scores[0, 2] == 0.95  # concepts raise it
    assert scores[1].tolist() == [0.0, 0.0, 0.0]
    assert share_out(np.zeros((0, 3))).shape == (0, 3)


NO_SESSION = cast(Session, None)  # the labels and evidence readers below are stand-ins


def test_workspace_label_thresholds_need_two_labels_a_side_and_are_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taxonomy = parse_taxonomy("categories:\n  - {name: a, phrases: [x]}\n  - {name: b, phrases: [y]}")
    protos = (np.eye(1, 4, 0, dtype=np.float32), np.eye(1, 4, 1, dtype=np.float32))
    compiled = CompiledTaxonomy(taxonomy, 1, protos, (frozenset(), frozenset()))
    categoriser = Categoriser(compiled, fusion=Fusion(bias=0.0, labels=0.0, visual=2.0, lead=0.0))
    # i0-i2 show a (content near a's axis), i3-i5 show b; one image of each side is less clear
    leans = {"i0": 0.9, "i1": 0.8, "i2": 0.6, "i3": 0.4, "i4": 0.2, "i5": 0.1}
    stored = {
        image: Evidence({}, unit_vector(lean, 1.0 - lean), None, "", None, "", None, 0.0)
        for image, lean in leans.items()
    }
    labelled: dict[str, tuple[set[str], set[str]]] = {"i0": ({"a"}, set()), "i3": ({"b"}, set())}
    monkeypatch.setattr(categories_storage, "workspace_labels", lambda session, workspace: labelled)
    read: list[list[str]] = []

    def evidence_of(session: Session, ids: list[str]) -> Mapping[str, Evidence]:
        read.append(ids)
        return {i: stored[i] for i in ids}

    cache = wstats.LabelThresholds()
    assert cache.get(NO_SESSION, 1, categoriser, 0, evidence_of) is None  # one label a side is not enough
    assert read == []  # nothing read when no category can move
    labelled.update({"i1": ({"a"}, set()), "i4": ({"B"}, set()), "i2": (set(), {"b"})})
    found = cache.get(NO_SESSION, 1, categoriser, 0, evidence_of)
    assert found is not None and found.thresholds.shape == (2,) and read == [["i0", "i1", "i2", "i3", "i4"]]
    assert not np.allclose(found.thresholds, categoriser.zero_shot_thresholds())  # the labels moved both
    assert found.trust.tolist() == [1.0, 1.0]  # zero-shot's scores separate both sides' labels perfectly
    assert cache.get(NO_SESSION, 1, categoriser, 0, evidence_of) is found and len(read) == 1  # cached
    cache.get(NO_SESSION, 1, categoriser, 5, evidence_of)  # a recomputation of the statistics reads again
    assert len(read) == 2


def unit_vector(a: float, b: float) -> np.ndarray:
    """(4,) unit vector with `a` on the first axis and `b` on the second."""
    v = np.array([a, b, 0.0, 0.0], dtype=np.float32)
    out: np.ndarray = v / np.linalg.norm(v)
    return out


def test_zero_shot_trust_from_labels() -> None:
    scores = np.array([[0.9, 0.5], [0.8, 0.5], [0.3, 0.5], [0.2, 0.5], [0.85, 0.5]])
    pos = np.array([[1, 1], [1, 1], [0, 0], [0, 0], [0, 0]], dtype=bool)
    neg = ~pos
    neg[:, 0] = [False, False, True, True, False]
    trust = zero_shot_trust(scores, pos, neg)
    assert trust[0] == 1.0  # its scores put both positives above both negatives
    assert trust[1] == 0.0  # the same score for every image: no better than chance
    mixed = zero_shot_trust(scores, pos, ~pos)  # image 4 (0.85) is a negative above one positive (0.8)
    assert mixed[0] == pytest.approx(2 * (5 / 6) - 1)
    few = zero_shot_trust(scores, pos & (np.arange(5)[:, None] == 0), neg)
    assert few.tolist() == [1.0, 1.0]  # one positive is not enough: the prior blend stands
