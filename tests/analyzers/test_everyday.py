"""Everyday label scoring and order (analyzers/everyday.py): pure logic on the real vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from feedlens.analyzers.everyday import (
    CALIBRATION_FILE,
    Calibration,
    Found,
    LabelScorer,
    Logistic,
    Membership,
    classifier_features,
    fingerprint,
    logit,
)
from feedlens.core.results import Face, FacesResult
from feedlens.core.results.faces import EMOTIONS
from feedlens.core.results.geometry import Box
from feedlens.core.vocabulary import Vocabulary

IDENTITY = Logistic((1.0, 0.0, 0.0, 0.0, 0.0), 0.0)  # the raw roll-up sum, uncalibrated


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.load()


@pytest.fixture(scope="module")
def scorer(vocabulary: Vocabulary) -> LabelScorer:
    return LabelScorer(vocabulary, vocabulary.imagenet_wnids, IDENTITY, Logistic((1.0,), 0.0))


def _probabilities(vocabulary: Vocabulary, mass: dict[str, float]) -> np.ndarray:
    """A class distribution with `mass` on ImageNet classes by WordNet id, the rest spread evenly."""
    wnids = vocabulary.imagenet_wnids
    p = np.full(len(wnids), (1.0 - sum(mass.values())) / (len(wnids) - len(mass)))
    for wnid, value in mass.items():
        p[wnids.index(wnid)] = value
    return p


def _face(box: Box, happy: float = 0.0, confidence: float = 0.9) -> Face:
    emotions = {e: 0.0 for e in EMOTIONS}
    emotions["happy"], emotions["neutral"] = happy, 1.0 - happy
    return Face(box, confidence, "test", emotions, max(emotions, key=lambda e: emotions[e]))


def test_cat_breeds_roll_up_to_cat_and_its_parents(vocabulary: Vocabulary, scorer: LabelScorer) -> None:
    # tabby, tiger cat, Egyptian cat: mass spread over breeds is still confidently a cat
    p = _probabilities(vocabulary, {"n02123045": 0.3, "n02123159": 0.3, "n02124075": 0.3})
    found = scorer.combine(scorer.from_classifier(p))
    assert found["cat"].score == pytest.approx(0.9, abs=0.02)
    assert found["animal"].score >= found["mammal"].score >= found["cat"].score
    order = scorer.order(found, lead=0.5, min_score=0.1, limit=20)
    assert order[0] == "cat" and order.index("animal") > order.index("mammal")


def test_order_leads_with_specific_labels_of_each_subject(scorer: LabelScorer) -> None:
    found = {
        "cat": Found(0.9),
        "pet": Found(0.92),
        "mammal": Found(0.93),
        "animal": Found(0.95),
        "person": Found(0.8),
        "sport": Found(0.3),
    }
    order = scorer.order(found, lead=0.5, min_score=0.1, limit=20)
    assert order[:2] == ["cat", "person"]  # the subjects first, their parents after
    assert set(order[2:5]) == {"pet", "mammal", "animal"} and order.index("animal") == 4
    assert order[-1] == "sport"  # under the lead line: after every confident label
    assert scorer.order(found, lead=0.5, min_score=0.5, limit=3) == ["cat", "person", "mammal"]


def test_parents_are_raised_to_their_best_child(scorer: LabelScorer) -> None:
    found = scorer.combine({"espresso": Found(0.8, {"classifier"})}, {"coffee": Found(0.3, {"classifier"})})
    assert found["coffee"].score == found["drink"].score == 0.8
    assert found["espresso"].sources == {"classifier"}


def test_faces_make_people_labels(scorer: LabelScorer) -> None:
    small = Box(0.4, 0.1, 0.5, 0.2)  # 1% of the picture
    group = FacesResult.of([_face(small), _face(Box(0.1, 0.1, 0.2, 0.2)), _face(Box(0.6, 0.1, 0.7, 0.2))])
    found = scorer.combine(scorer.from_faces(group))
    assert found["person"].score == pytest.approx(0.9) and found["person"].count == 3
    assert "group" in found and "crowd" not in found and "selfie" not in found and "smile" not in found
    selfie = FacesResult.of([_face(Box(0.2, 0.1, 0.7, 0.6), happy=0.9)])  # one face, a quarter of it
    found = scorer.combine(scorer.from_faces(selfie))
    assert {"selfie", "portrait", "smile", "face", "person"} <= found.keys()
    assert found["face"].score >= found["smile"].score  # a smile is a face
    assert scorer.from_faces(FacesResult.empty()) == {} and scorer.from_faces(None) == {}


def test_a_flat_distribution_is_not_confidently_anything(vocabulary: Vocabulary) -> None:
    """The entropy and largest-class features exist for pictures of nothing ImageNet knows."""
    p = np.full(1000, 1 / 1000)
    raw, features = classifier_features(p, vocabulary.imagenet_matrix(vocabulary.imagenet_wnids)[1])
    assert features.shape == (len(raw), 5)
    assert np.allclose(features[:, 4], 1.0)  # entropy / log(1000) of a uniform distribution
    calibration = Calibration.load()
    classifier = calibration.classifier["efficientnet-lite0-onnx"]
    scorer = LabelScorer(vocabulary, vocabulary.imagenet_wnids, classifier, calibration.faces)
    assert max(f.score for f in scorer.from_classifier(p).values()) < 0.5


def test_the_sparse_roll_up_equals_the_dense_one(vocabulary: Vocabulary) -> None:
    """The precomputed membership (a sparse max per label) gives the dense formula's features exactly."""
    matrix = vocabulary.imagenet_matrix(vocabulary.imagenet_wnids)[1]
    p = np.random.default_rng(3).dirichlet(np.full(1000, 0.05))
    raw, features = classifier_features(p, Membership.of(matrix))
    top = (p[:, None] * matrix).max(axis=0)
    assert np.allclose(raw, np.clip(p @ matrix, 0, 1))
    assert np.allclose(features[:, 2], logit(top))
    assert np.allclose(features[:, 1], np.log(matrix.sum(axis=0)))
    with pytest.raises(ValueError, match="at least one class"):
        Membership.of(np.zeros((3, 2), dtype=np.float32))


def test_the_shipped_calibration_loads_and_says_where_it_came_from(tmp_path: Path) -> None:
    calibration = Calibration.load()
    assert "efficientnet-lite0-onnx" in calibration.classifier
    assert calibration.provenance.get("fitted_by") == "benchmarks/labels_calibration.py"
    data = json.loads(CALIBRATION_FILE.read_text())
    data["faces"]["bias"] = 5.0
    changed = tmp_path / "calibration.json"
    changed.write_text(json.dumps(data))
    assert Calibration.load(changed).faces.bias == 5.0
    assert len(fingerprint()) == 10
