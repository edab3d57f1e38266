"""Training inputs without torch: images or their loaders, labels, and the inference preprocessing.

Kept free of torch so that serving an exported model (export.OnnxClassifier) needs only ONNX Runtime.
The eval preprocessing is exactly the `labels` analyzer's (shorter side 256, centre crop 224,
(x - 127) / 128), so a probe can be trained on the pooled features that analyzer already stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from feedlens.analyzers.labels import CROP, INPUT_MEAN, INPUT_STD, RESIZE
from feedlens.core.imageops import resize_and_center_crop, to_nchw

# An image in memory, or a callable that loads it when needed (so a large set is never all decoded at once).
ImageLike = Image.Image | Callable[[], Image.Image]


def load_image(item: ImageLike) -> Image.Image:
    """The RGB image behind `item`."""
    image = item() if callable(item) else item
    return image if image.mode == "RGB" else image.convert("RGB")


def eval_array(images: Sequence[Image.Image], size: int = CROP) -> np.ndarray:
    """(N, 3, size, size) float32 for inference: shorter side to size * 256/224, centre crop, normalised.

    With size 224 this is the `labels` analyzer's preprocessing, pixel for pixel.
    """
    resize = round(size * RESIZE / CROP)
    crops = [resize_and_center_crop(im, resize, size, Image.Resampling.BILINEAR) for im in images]
    return to_nchw(crops, INPUT_MEAN, INPUT_STD)


@dataclass(frozen=True)
class LabelledImages:
    """Images (or loaders) with integer labels in [0, K)."""

    images: Sequence[ImageLike]
    labels: Sequence[int]

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)


def check_labels(data: LabelledImages, num_classes: int, what: str, *, every_class: bool) -> np.ndarray:
    """The labels as int64 (N,); a ValueError naming the problem for an empty set or a bad label."""
    labels = np.asarray(data.labels, dtype=np.int64)
    if len(labels) == 0:
        raise ValueError(f"the {what} set is empty")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"{what} labels must lie in [0, {num_classes}), found {labels.min()}..{labels.max()}"
        )
    missing = sorted(set(range(num_classes)) - set(labels.tolist()))
    if every_class and missing:
        raise ValueError(f"classes {missing} have no {what} images")
    return labels
