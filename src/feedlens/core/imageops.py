"""Pure image operations on Pillow images and numpy arrays (no I/O, no models)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageFilter


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


def resize_and_center_crop(
    image: Image.Image, resize: int, crop: int, resample: Image.Resampling
) -> Image.Image:
    """The classifiers' evaluation crop: shorter side to `resize`, then the central `crop` square. The
    central square of the original is cut first, so a 16x75000 strip is never scaled up to 256x1.2M
    pixels: memory stays at the model input's whatever the shape (the region kept is the same)."""
    w, h = image.size
    short = min(w, h)
    left, top = (w - short) // 2, (h - short) // 2
    square = image.crop((left, top, left + short, top + short)) if w != h else image
    return center_crop(square.resize((resize, resize), resample, reducing_gap=3.0), crop)


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


def obscure(image: Image.Image, box: tuple[int, int, int, int], method: str) -> None:
    """Blur or pixelate `box` (x0, y0, x1, y1 in pixels) of an RGB image in place, beyond recognition.

    The strength scales with the box so a large face is not merely softened: Gaussian radius is a quarter
    of the box's shorter side; pixelation leaves at most 4 blocks across the shorter side (8 kept a text
    line readable).
    """
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(image.width, box[2]), min(image.height, box[3])
    if x1 <= x0 or y1 <= y0:
        return
    region = image.crop((x0, y0, x1, y1))
    short = min(region.size)
    if method == "pixelate":
        block = max(1, short // 4)
        small = region.resize(
            (max(1, region.width // block), max(1, region.height // block)), Image.Resampling.BOX
        )
        region = small.resize(region.size, Image.Resampling.NEAREST)
    elif method == "blur":
        # Two passes: one wide blur leaves the face's low-frequency layout, a second flattens it further.
        radius = max(2.0, short / 4)
        region = region.filter(ImageFilter.GaussianBlur(radius)).filter(ImageFilter.GaussianBlur(radius))
    else:
        raise ValueError(f"unknown redaction method {method!r}")
    image.paste(region, (x0, y0))
