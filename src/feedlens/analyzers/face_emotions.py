"""Face crops for the FER mini-Xception emotion model (64x64 grey, FER2013's framing)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from feedlens.core.results import Box

# A square around the face box, grown by this fraction of its longer side per side. 0.2 gave sensible
# results on the sample faces (astronaut happy, Grace Hopper neutral); tighter crops made Grace Hopper
# angry/sad, because FER2013's training faces include the forehead and chin with a little context.
EMOTION_MARGIN = 0.2
EMOTION_INPUT = 64


def emotion_crop(gray: np.ndarray, box: Box, margin: float = EMOTION_MARGIN) -> np.ndarray:
    """(H, W) uint8 image + face box -> (64, 64) uint8 square crop around the face, grown by `margin`;
    parts beyond the image border repeat the edge pixels."""
    height, width = gray.shape
    x0, y0, x1, y1 = box.x0 * width, box.y0 * height, box.x1 * width, box.y1 * height
    side = max(x1 - x0, y1 - y0, 1.0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    size = max(1, round(side))
    # Pad only as far as the crop reaches past the border (a bounded copy, whatever the image's size).
    x_lo, y_lo = max(0, left), max(0, top)
    x_hi, y_hi = min(width, left + size), min(height, top + size)
    if x_hi <= x_lo or y_hi <= y_lo:
        return np.zeros((EMOTION_INPUT, EMOTION_INPUT), dtype=np.uint8)
    inside = gray[y_lo:y_hi, x_lo:x_hi]
    crop = np.pad(inside, ((y_lo - top, top + size - y_hi), (x_lo - left, left + size - x_hi)), mode="edge")
    interpolation = cv2.INTER_AREA if size > EMOTION_INPUT else cv2.INTER_LINEAR
    return cv2.resize(crop, (EMOTION_INPUT, EMOTION_INPUT), interpolation=interpolation)


def to_fer_input(crops: Sequence[np.ndarray]) -> np.ndarray:
    """(64, 64) uint8 crops -> (N, 64, 64, 1) float32 as (x / 255 - 0.5) * 2, the FER model's input."""
    if not crops:
        return np.zeros((0, EMOTION_INPUT, EMOTION_INPUT, 1), dtype=np.float32)
    batch = np.stack(crops).astype(np.float32)[..., None]
    return (batch / 255.0 - 0.5) * 2.0
