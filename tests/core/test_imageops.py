from __future__ import annotations

import numpy as np
from PIL import Image

from feedlens.core.imageops import center_crop, resize_shorter_side, softmax, to_nchw


def test_resize_shorter_side_keeps_aspect() -> None:
    out = resize_shorter_side(Image.new("RGB", (4000, 3000)), 256, Image.Resampling.BILINEAR)
    assert out.size == (341, 256)
    tall = resize_shorter_side(Image.new("RGB", (5, 5000)), 256, Image.Resampling.BILINEAR)
    assert tall.size == (256, 256000)


def test_center_crop_takes_the_middle() -> None:
    image = Image.new("RGB", (300, 224), (0, 0, 0))
    image.paste((255, 0, 0), (38, 0, 262, 224))
    crop = np.asarray(center_crop(image, 224))
    assert crop.shape == (224, 224, 3) and (crop[..., 0] == 255).all()


def test_to_nchw_layout_and_normalisation() -> None:
    a = Image.new("RGB", (4, 2), (255, 127, 0))
    batch = to_nchw([a, a], mean=127.0, std=128.0)
    assert batch.shape == (2, 3, 2, 4) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0, :, 0, 0], [1.0, 0.0, -127 / 128])


def test_softmax_is_stable_and_normalised() -> None:
    p = softmax(np.array([[1000.0, 1000.0, -1000.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0.0])
