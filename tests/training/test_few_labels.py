"""Few labels: every label trains and the figures are cross-validated; what training says about itself
(early stop, too few test images, int8's verdict, small classes, promotion) says it plainly."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from feedlens.training.advice import (
    accuracy_text,
    int8_verdict,
    promotion_warnings,
    stopped_early,
    training_notes,
    wilson,
)
from feedlens.training.crossval import cross_validates, folds, out_of_fold
from feedlens.training.datasets import LabelledDataset, from_labels
from feedlens.training.recipe import TrainOptions, split_of
from feedlens.training.splits import class_report


def _ids(counts: dict[str, int]) -> LabelledDataset:
    return from_labels([(f"{c}-{n:03d}", c) for c, k in counts.items() for n in range(k)], list(counts))


def test_five_labels_per_class_all_train_and_folds_hold_every_class() -> None:
    data = _ids({"a": 5, "b": 5, "c": 7})
    assert cross_validates(data, "probe", "stratified")
    assert not cross_validates(data, "finetune", "stratified") and not cross_validates(
        data, "probe", "stable"
    )
    assert cross_validates(_ids({"a": 10, "b": 12}), "probe", "stratified")  # below CV_BELOW = 20
    assert not cross_validates(_ids({"a": 20, "b": 22}), "probe", "stratified")
    assert not cross_validates(_ids({"a": 1, "b": 5}), "probe", "stratified")  # one label cannot be scored
    parts = split_of(data, TrainOptions())
    assert len(parts.train) == 17 and not parts.val and not parts.test
    fold = folds(parts.train, 0)
    assert set(fold) == set(range(5))
    for k in range(5):  # every fold scores every class and leaves every class to train on
        held = Counter(i.label for i, f in zip(parts.train, fold, strict=True) if f == k)
        assert set(held) == {"a", "b", "c"}
    assert folds(parts.train, 0) == fold  # deterministic
    assert folds([*parts.train, parts.train[0]], 0)[-1] == fold[0]  # a copy shares its item's fold


def test_out_of_fold_probabilities_never_saw_their_item() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 6)
    features = rng.normal(size=(18, 8)) + 6.0 * np.eye(3, 8)[labels]  # separable clusters
    fold = [n % 3 for n in range(18)]
    proba = out_of_fold(features, labels, 3, fold)
    assert proba.shape == (18, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert (proba.argmax(axis=1) == labels).mean() > 0.8


def test_the_largest_class_is_never_under_represented() -> None:
    report = class_report(_ids({"a": 6, "b": 4, "c": 1}))
    assert [w.split()[1] for w in report.warnings if w.startswith("class")] == ["'c'"]  # 1 < 0.2 * 6
    assert report.warnings[-1].startswith("few labels: every class has fewer than 10 images")
    assert class_report(_ids({"a": 30, "b": 28})).warnings == []


def test_accuracy_is_not_a_figure_on_a_handful_of_images() -> None:
    assert accuracy_text({"accuracy": 0.0, "n": 1, "evaluated_on": "test"}).startswith(
        "accuracy not measured: the test set is too small (1 images"
    )
    shown = accuracy_text({"accuracy": 0.8, "macro_f1": 0.75, "n": 40, "evaluated_on": "cross-validation"})
    assert shown.startswith("accuracy 0.800 (95% range 0.65-0.90), macro-F1 0.750, cross-validated over 40")
    low, high = wilson(1.0, 10)
    assert high == 1.0 and 0.6 < low < 0.8


def test_training_says_why_it_stopped_and_why_int8_went() -> None:
    history = [{"epoch": 0}, *({"epoch": e, "best": e == 1} for e in range(1, 6))]
    training = {"options": {"mode": "finetune", "epochs": 15}, "history": history}
    assert stopped_early(training) == (
        "training stopped early after epoch 5 of 15: the validation loss had not improved for 4 epochs, so "
        "more epochs would not help; the model of epoch 1 (the best) is kept"
    )
    assert stopped_early({**training, "history": [*history, *({"epoch": e} for e in range(6, 16))]}) is None
    unlike = {
        "kept": False,
        "accuracy_change_points": 0.0,
        "agreement": 0.9,
        "min_agreement": 0.98,
        "agreement_images": 60,
        "max_loss_points": 1.0,
        "test_images": 5,
    }
    verdict = int8_verdict(unlike)
    assert verdict is not None and "+0.0" not in verdict and "90% of 60 images (98% needed)" in verdict
    lost = int8_verdict({**unlike, "accuracy_change_points": -4.0, "agreement": 0.99})
    assert lost is not None and "lost 4.0 accuracy points on 5 images (1 allowed)" in lost
    notes = training_notes({**training, "compression": unlike}, {"n": 3, "evaluated_on": "test"})
    assert len(notes) == 3 and "too small to measure accuracy (3 images)" in notes[1]


@pytest.mark.parametrize(
    ("metrics", "warned"),
    [
        ({"accuracy": 0.0, "n": 40}, "low accuracy"),
        ({"accuracy": 1.0, "n": 2}, "unknown"),
        ({"accuracy": 0.9, "n": 40}, None),
    ],
)
def test_promoting_a_weak_model_warns(metrics: dict[str, float], warned: str | None) -> None:
    found = promotion_warnings({"version": 3, "metrics": metrics})
    assert (warned in found[0]) if warned else found == []
