"""Augmentation: seeded, each transform wired in, and the eval transform is the labels analyzer's."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from feedlens.analyzers.labels import LabelsAnalyzer
from feedlens.core.imageops import to_nchw
from feedlens.training.augment import AugmentConfig, Augmenter, eval_batch, view_seed
from feedlens.training.inputs import eval_array

# Every random op off, and a crop that keeps the whole (square) image: the pipeline is a plain resize.
IDENTITY = AugmentConfig(
    crop_scale=(1.0, 1.0),
    crop_ratio=(1.0, 1.0),
    p_flip=0.0,
    p_rotation=0.0,
    p_colour=0.0,
    p_blur=0.0,
    p_noise=0.0,
    p_jpeg=0.0,
)
LOW, HIGH = (0 - 127) / 128, (255 - 127) / 128  # the normalised range of 8-bit pixels


@pytest.fixture(scope="module")
def square(chelsea: Image.Image) -> Image.Image:
    return chelsea.crop((75, 0, 375, 300))


def test_views_are_reproducible_and_leave_the_callers_generator_alone(chelsea: Image.Image) -> None:
    augment = Augmenter()
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a, b = augment(chelsea, 7), augment(chelsea, 7)
    assert torch.equal(torch.rand(3), expected_next)  # forked: the caller's stream did not move
    assert a.shape == (3, 224, 224) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert float(a.min()) >= LOW - 1e-6 and float(a.max()) <= HIGH + 1e-6
    others = [augment(chelsea, s) for s in (8, 9, 10)]
    assert all(not torch.allclose(a, o) for o in others)
    assert augment.batch([chelsea, chelsea], [7, 8]).shape == (2, 3, 224, 224)


def test_view_seeds_differ_per_image_and_variant() -> None:
    seeds = {view_seed(0, i, v) for i in range(50) for v in range(4)}
    assert len(seeds) == 200
    assert view_seed(0, 3, 1) == view_seed(0, 3, 1) != view_seed(1, 3, 1)


def test_identity_config_is_a_resize(square: Image.Image) -> None:
    view = Augmenter(IDENTITY)(square, 0)
    reference = torch.from_numpy(
        to_nchw([square.resize((224, 224), Image.Resampling.BILINEAR)], 127.0, 128.0)
    )[0]
    # The whole picture at 224 px; only the resampling path differs: mean error under 3 grey levels.
    assert float((view - reference).abs().mean()) * 128 < 3.0


@pytest.mark.parametrize(
    "change",
    [
        {"p_flip": 1.0},
        {"p_rotation": 1.0, "rotation_degrees": 30.0},
        {"p_colour": 1.0},
        {"p_blur": 1.0, "blur_sigma": (2.0, 2.0)},
        {"p_noise": 1.0},
        {"p_jpeg": 1.0, "jpeg_quality": (10.0, 10.0)},
        {"crop_scale": (0.3, 0.3)},
    ],
    ids=lambda c: next(iter(c)),
)
def test_each_augmentation_changes_the_image(square: Image.Image, change: dict[str, Any]) -> None:
    base = Augmenter(IDENTITY)(square, 0)
    changed = Augmenter(dataclasses.replace(IDENTITY, **change))(square, 0)
    assert float((changed - base).abs().mean()) * 128 > 2.0, change


def test_flip_is_a_mirror(square: Image.Image) -> None:
    base = Augmenter(IDENTITY)(square, 0)
    flipped = Augmenter(dataclasses.replace(IDENTITY, p_flip=1.0))(square, 0)
    assert torch.allclose(flipped, torch.flip(base, dims=[2]), atol=1e-5)


def test_eval_transform_is_the_labels_analyzers(labels: LabelsAnalyzer, chelsea: Image.Image) -> None:
    images = [chelsea, chelsea.rotate(90, expand=True), chelsea.resize((1200, 700))]
    np.testing.assert_array_equal(eval_array(images), labels.preprocess(images, {}))
    assert torch.equal(eval_batch(images), torch.from_numpy(labels.preprocess(images, {})))
