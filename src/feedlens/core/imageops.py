"""Pure image operations on Pillow images and numpy arrays (no I/O, no models)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image


def resize_shorter_side(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """Scale so the shorter side equals `size`, keeping the aspect ratio (never below 1 px)."""
    w, h = image.size
    scale = size / min(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if new == image.size:
        return image
    # reducing_gap: a cheap integer box-reduce first, then the filter; near-identical quality, much faster
    # when shrinking a lot.
    return image.resize(new, resample, reducing_gap=3.0)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """Crop the central `size` x `size` square (the image must be at least that big on both sides)."""
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def to_nchw(images: Sequence[Image.Image], mean: float, std: float) -> np.ndarray:
    """Stack equally sized RGB images into a float32 batch, shape (N, 3, H, W), as (x - mean) / std."""
    batch = np.stack([np.asarray(im, dtype=np.float32) for im in images])  # (N, H, W, 3)
    batch -= mean
    batch /= std
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits, numerically stable."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return out
